namespace Runtime.Nn.Models;

/// <summary>The residual block a <see cref="ResNet"/> stacks: two 3x3 convolutions, or the 1x1-3x3-1x1 bottleneck.</summary>
public enum ResNetBlock
{
    Basic,
    Bottleneck,
}

/// <summary>
/// The 3x3 convolution of a residual block (its <c>conv2</c>) as a <see cref="ResNet"/> would build it: stage 1..4
/// (layer1..layer4, feature maps c2..c5), channels, stride, dilation (= padding) and groups; no bias. A ResNet's
/// <c>blockConv2</c> factory may return another layer for it (a deformable convolution, DCNv1 / DCNv2).
/// </summary>
public readonly record struct BlockConvSpec(int Stage, int InChannels, int OutChannels, int Stride, int Dilation, int Groups);

/// <summary>A residual block of a <see cref="ResNet"/> stage; <see cref="Expansion"/> is its output width over its planes.</summary>
public abstract class ResidualBlock : UnaryModule
{
    /// <summary>The 1x1 convolution and norm that bring the identity to the block's output shape, or null.</summary>
    public Sequential? Downsample { get; protected init; }

    /// <summary>The norm whose weight zero_init_residual sets to zero (the block's last).</summary>
    internal abstract UnaryModule LastNorm { get; }

    /// <summary>
    /// relu(norm(conv(x)) + identity(input)), identity being the <see cref="Downsample"/> projection or the input:
    /// the block's last convolution with its residual epilogue, fused in inference when conv is a plain
    /// <see cref="Conv2d"/> (<see cref="Conv2d.ForwardNorm"/>); temporaries are disposed as soon as they are used.
    /// </summary>
    protected Tensor Residual(UnaryModule conv, UnaryModule norm, Tensor x, Tensor input)
    {
        Tensor? projected = Downsample?.Forward(input);
        using (projected)
        {
            var identity = projected ?? input;
            if (conv is Conv2d c) return c.ForwardNorm(x, norm, identity, relu: true);
            using var branch = ConvNorm(conv, norm, x);
            return branch.AddRelu(identity);
        }
    }

    /// <summary>conv -> norm -> relu, disposing the intermediates (one fused convolution in inference when conv is a plain <see cref="Conv2d"/>).</summary>
    protected static Tensor ConvNormRelu(UnaryModule conv, UnaryModule norm, Tensor x)
    {
        if (conv is Conv2d c) return c.ForwardNorm(x, norm, relu: true);
        using var y = conv.Forward(x);
        return BatchNormFold.Unfused(y, norm, relu: true);
    }

    /// <summary>conv -> norm, disposing the intermediate.</summary>
    protected static Tensor ConvNorm(UnaryModule conv, UnaryModule norm, Tensor x)
    {
        if (conv is Conv2d c) return c.ForwardNorm(x, norm);
        using var y = conv.Forward(x);
        return norm.Forward(y);
    }
}

/// <summary>torchvision's BasicBlock (ResNet-18/34): 3x3 conv (stride) -> norm -> relu -> 3x3 conv -> norm, plus the identity, relu.</summary>
public sealed class BasicBlock : ResidualBlock
{
    public const int Expansion = 1;

    /// <param name="conv2">The second 3x3 convolution (planes to planes, stride 1) when it is not a plain <see cref="Conv2d"/>.</param>
    public BasicBlock(int inPlanes, int planes, int stride, Sequential? downsample, int groups, int baseWidth, int dilation,
        Func<int, UnaryModule> normLayer, DType dtype, Device? device, Generator? generator, UnaryModule? conv2 = null)
    {
        if (groups != 1 || baseWidth != 64)
            throw new ArgumentException($"BasicBlock only supports groups = 1 and baseWidth = 64, got groups = {groups}, baseWidth = {baseWidth}", nameof(groups));
        if (dilation > 1)
            throw new ArgumentException($"BasicBlock does not support dilation > 1 (got {dilation}); use Bottleneck blocks to replace strides with dilation", nameof(dilation));
        ArgumentNullException.ThrowIfNull(normLayer);
        Conv1 = RegisterModule("conv1", new Conv2d(inPlanes, planes, 3, stride, 1, bias: false, dtype: dtype, device: device, generator: generator));
        Bn1 = RegisterModule("bn1", normLayer(planes));
        RegisterModule("relu", new ReLU());
        Conv2 = RegisterModule("conv2", conv2 ?? new Conv2d(planes, planes, 3, 1, 1, bias: false, dtype: dtype, device: device, generator: generator));
        Bn2 = RegisterModule("bn2", normLayer(planes));
        if (downsample != null) Downsample = RegisterModule("downsample", downsample);
    }

    public Conv2d Conv1 { get; }
    public UnaryModule Bn1 { get; }
    /// <summary>The second 3x3 convolution: a <see cref="Conv2d"/> unless the block was given another layer.</summary>
    public UnaryModule Conv2 { get; }
    public UnaryModule Bn2 { get; }
    internal override UnaryModule LastNorm => Bn2;

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var a = ConvNormRelu(Conv1, Bn1, input);
        return Residual(Conv2, Bn2, a, input);
    }
}

/// <summary>
/// torchvision's Bottleneck (ResNet-50/101, "v1.5"): 1x1 conv -> 3x3 conv carrying the stride, groups and
/// dilation -> 1x1 conv to planes * 4, each followed by a norm, relu between; width = planes * baseWidth / 64 * groups.
/// </summary>
public sealed class Bottleneck : ResidualBlock
{
    public const int Expansion = 4;

    /// <param name="conv2">The 3x3 convolution (width to width, the block's stride, dilation and groups) when it is not a plain <see cref="Conv2d"/>.</param>
    public Bottleneck(int inPlanes, int planes, int stride, Sequential? downsample, int groups, int baseWidth, int dilation,
        Func<int, UnaryModule> normLayer, DType dtype, Device? device, Generator? generator, UnaryModule? conv2 = null)
    {
        ArgumentNullException.ThrowIfNull(normLayer);
        int width = (int)(planes * (baseWidth / 64.0)) * groups;
        Conv1 = RegisterModule("conv1", new Conv2d(inPlanes, width, 1, bias: false, dtype: dtype, device: device, generator: generator));
        Bn1 = RegisterModule("bn1", normLayer(width));
        Conv2 = RegisterModule("conv2", conv2 ?? new Conv2d(width, width, 3, stride, dilation, dilation, groups, bias: false, dtype: dtype, device: device, generator: generator));
        Bn2 = RegisterModule("bn2", normLayer(width));
        Conv3 = RegisterModule("conv3", new Conv2d(width, planes * Expansion, 1, bias: false, dtype: dtype, device: device, generator: generator));
        Bn3 = RegisterModule("bn3", normLayer(planes * Expansion));
        RegisterModule("relu", new ReLU());
        if (downsample != null) Downsample = RegisterModule("downsample", downsample);
    }

    public Conv2d Conv1 { get; }
    public UnaryModule Bn1 { get; }
    /// <summary>The 3x3 convolution: a <see cref="Conv2d"/> unless the block was given another layer.</summary>
    public UnaryModule Conv2 { get; }
    public UnaryModule Bn2 { get; }
    public Conv2d Conv3 { get; }
    public UnaryModule Bn3 { get; }
    internal override UnaryModule LastNorm => Bn3;

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var a = ConvNormRelu(Conv1, Bn1, input);
        using var b = ConvNormRelu(Conv2, Bn2, a);
        return Residual(Conv3, Bn3, b, input);
    }
}

/// <summary>
/// torchvision.models.ResNet: stem (7x7/2 conv, norm, relu, 3x3/2 max pool), four stages of residual blocks
/// (64, 128, 256, 512 planes; stages 2-4 halve the resolution, or dilate instead when asked), global average
/// pool and a linear classifier. State-dict keys are torchvision's (<c>conv1.weight</c>, <c>bn1.running_mean</c>,
/// <c>layer1.0.conv1.weight</c>, <c>layer1.0.downsample.0.weight</c>, <c>fc.weight</c>, ...), so its checkpoints load as they are.
/// </summary>
/// <remarks>
/// <para><paramref name="normLayer"/> builds the norm for a channel count (default <see cref="BatchNorm2d"/>; torchvision's
/// detection backbones use <see cref="FrozenBatchNorm2d"/>, see <see cref="FrozenBatchNorm"/>). <c>groups</c> and
/// <c>widthPerGroup</c> give ResNeXt and wide ResNets. Initialisation is torchvision's: convolutions
/// kaiming_normal_(fan_out, relu), norms weight 1 and bias 0, the classifier PyTorch's Linear default, and with
/// <c>zeroInitResidual</c> each block's last norm weight 0.</para>
/// <para><c>blockConv2</c> may replace the 3x3 convolution (<c>conv2</c>) of chosen blocks by another layer (the
/// deformable backbones of DCNv1 / DCNv2 do; the layer keeps the key prefix <c>layerN.i.conv2</c>): it gets each
/// block's <see cref="BlockConvSpec"/> and returns null for a plain convolution. A replacement's own <c>weight</c> is
/// initialised as the plain convolutions are; its sub-layers (e.g. an offset convolution) keep their own initialisation.</para>
/// <para>Inference (eval mode under <see cref="Autograd.GradMode.NoGrad"/>): every convolution followed by its norm
/// (stem, blocks, downsample projections) runs as one convolution with the norm folded into its weight and bias, the
/// block's residual sum and ReLU in its epilogue (<see cref="Conv2d.ForwardNorm"/>; a replaced <c>conv2</c> runs
/// unfused). <c>SetInferenceFusion(false)</c> runs the layers one by one instead, for comparison.</para>
/// </remarks>
public sealed class ResNet : UnaryModule
{
    private readonly List<Sequential> _stages = new();
    private readonly HashSet<Module> _replaced = new(ReferenceEqualityComparer.Instance);
    private readonly Func<BlockConvSpec, UnaryModule?>? _blockConv2;
    private int _inPlanes = 64;
    private int _dilation = 1;
    private int _stage;

    public ResNet(ResNetBlock block, int[] layers, int numClasses = 1000, bool zeroInitResidual = false, int groups = 1, int widthPerGroup = 64,
        bool[]? replaceStrideWithDilation = null, Func<int, UnaryModule>? normLayer = null,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null, int[]? widths = null, bool includeClassifier = true,
        Func<BlockConvSpec, UnaryModule?>? blockConv2 = null)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Length != 4 || layers.Any(n => n <= 0))
            throw new ArgumentException($"layers must give four positive block counts, got [{string.Join(", ", layers)}]", nameof(layers));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numClasses);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(groups);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(widthPerGroup);
        widths ??= [64, 128, 256, 512];
        if (widths.Length != 4 || widths.Any(w => w <= 0))
            throw new ArgumentException($"widths must give four positive stage widths, got [{string.Join(", ", widths)}]", nameof(widths));
        replaceStrideWithDilation ??= [false, false, false];
        if (replaceStrideWithDilation.Length != 3)
            throw new ArgumentException($"replaceStrideWithDilation must have 3 entries (stages 2-4), got {replaceStrideWithDilation.Length}", nameof(replaceStrideWithDilation));
        normLayer ??= c => new BatchNorm2d(c, dtype: dtype, device: device);
        Block = block;
        Layers = (int[])layers.Clone();
        Widths = (int[])widths.Clone();
        _inPlanes = widths[0];
        Groups = groups;
        WidthPerGroup = widthPerGroup;
        _blockConv2 = blockConv2;

        Conv1 = RegisterModule("conv1", new Conv2d(3, widths[0], 7, 2, 3, bias: false, dtype: dtype, device: device, generator: generator));
        Bn1 = RegisterModule("bn1", normLayer(widths[0]));
        RegisterModule("relu", new ReLU());
        MaxPool = RegisterModule("maxpool", new MaxPool2d(3, 2, 1));
        int[] planes = widths;
        for (int i = 0; i < 4; i++)
        {
            _stage = i + 1;
            var stage = MakeLayer(block, planes[i], layers[i], i == 0 ? 1 : 2, i > 0 && replaceStrideWithDilation[i - 1], normLayer, dtype, device, generator);
            _stages.Add(RegisterModule($"layer{i + 1}", stage));
        }
        if (includeClassifier)
        {
            AvgPool = RegisterModule("avgpool", new AdaptiveAvgPool2d(1));
            Fc = RegisterModule("fc", new Linear(widths[3] * ExpansionOf(block), numClasses, dtype: dtype, device: device, generator: generator));
        }

        var replaced = NamedModules().Where(m => _replaced.Contains(m.Module)).Select(m => m.Name + ".").ToArray();
        foreach (var (name, m) in NamedModules())
        {
            if (replaced.Any(r => name.StartsWith(r, StringComparison.Ordinal))) continue;
            if (_replaced.Contains(m))
            {
                foreach (var (pname, p) in m.NamedParameters())
                    if (pname == "weight") Init.KaimingNormal_(p, mode: "fan_out", nonlinearity: "relu", generator: generator);
            }
            else if (m is Conv2d conv) Init.KaimingNormal_(conv.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
            else if (m is BatchNorm2d { Weight: { } w, Bias: { } b }) { Init.Ones_(w); Init.Zeros_(b); }
            else if (m is GroupNorm { Weight: { } gw, Bias: { } gb }) { Init.Ones_(gw); Init.Zeros_(gb); }
        }
        if (zeroInitResidual)
            foreach (var (_, m) in NamedModules())
                if (m is ResidualBlock rb && rb.LastNorm.StateDict().TryGetValue("weight", out var lw))
                    Init.Zeros_(lw);
    }

    public ResNetBlock Block { get; }
    public IReadOnlyList<int> Layers { get; }
    /// <summary>The planes of the four stages (torchvision: 64, 128, 256, 512); the stem has the first stage's width.</summary>
    public IReadOnlyList<int> Widths { get; }
    public int Groups { get; }
    public int WidthPerGroup { get; }
    public Conv2d Conv1 { get; }
    public UnaryModule Bn1 { get; }
    public MaxPool2d MaxPool { get; }
    public Sequential Layer1 => _stages[0];
    public Sequential Layer2 => _stages[1];
    public Sequential Layer3 => _stages[2];
    public Sequential Layer4 => _stages[3];
    /// <summary>The global pool, absent in a body built without the classifier (a detection backbone).</summary>
    public AdaptiveAvgPool2d? AvgPool { get; }
    /// <summary>The classifier, absent in a body built without it (a detection backbone: no <c>fc.*</c> keys).</summary>
    public Linear? Fc { get; }

    /// <summary>Channels of the c2..c5 feature maps (layer1..layer4 outputs): the stage widths (64, 128, 256, 512) times the block expansion.</summary>
    public IReadOnlyList<int> FeatureChannels => Widths.Select(w => w * ExpansionOf(Block)).ToArray();

    private static int ExpansionOf(ResNetBlock block) => block == ResNetBlock.Basic ? BasicBlock.Expansion : Bottleneck.Expansion;

    /// <summary>A norm-layer factory for <paramref name="normLayer"/>: torchvision.ops.FrozenBatchNorm2d (eps 1e-5), as its detection backbones use.</summary>
    public static Func<int, UnaryModule> FrozenBatchNorm(DType dtype = DType.Float32, Device? device = null) =>
        c => new FrozenBatchNorm2d(c, dtype: dtype, device: device);

    private Sequential MakeLayer(ResNetBlock block, int planes, int blocks, int stride, bool dilate, Func<int, UnaryModule> normLayer,
        DType dtype, Device? device, Generator? generator)
    {
        int expansion = ExpansionOf(block);
        int previousDilation = _dilation;
        if (dilate)
        {
            _dilation *= stride;
            stride = 1;
        }
        Sequential? downsample = null;
        if (stride != 1 || _inPlanes != planes * expansion)
            downsample = new Sequential(
                new Conv2d(_inPlanes, planes * expansion, 1, stride, bias: false, dtype: dtype, device: device, generator: generator),
                normLayer(planes * expansion));
        var stage = new Sequential(NewBlock(block, _inPlanes, planes, stride, downsample, previousDilation, normLayer, dtype, device, generator));
        _inPlanes = planes * expansion;
        for (int i = 1; i < blocks; i++)
            stage.Append(NewBlock(block, _inPlanes, planes, 1, null, _dilation, normLayer, dtype, device, generator));
        return stage;
    }

    private ResidualBlock NewBlock(ResNetBlock block, int inPlanes, int planes, int stride, Sequential? downsample, int dilation,
        Func<int, UnaryModule> normLayer, DType dtype, Device? device, Generator? generator)
    {
        // The 3x3 convolution the block would build: BasicBlock's conv2 is planes -> planes at stride 1 (its conv1
        // carries the stride); Bottleneck's is width -> width with the block's stride, dilation and groups.
        int width = (int)(planes * (WidthPerGroup / 64.0)) * Groups;
        var spec = block == ResNetBlock.Basic
            ? new BlockConvSpec(_stage, planes, planes, 1, 1, 1)
            : new BlockConvSpec(_stage, width, width, stride, dilation, Groups);
        var conv2 = _blockConv2?.Invoke(spec);
        if (conv2 != null) _replaced.Add(conv2);
        return block switch
        {
            ResNetBlock.Basic => new BasicBlock(inPlanes, planes, stride, downsample, Groups, WidthPerGroup, dilation, normLayer, dtype, device, generator, conv2),
            _ => new Bottleneck(inPlanes, planes, stride, downsample, Groups, WidthPerGroup, dilation, normLayer, dtype, device, generator, conv2),
        };
    }

    private static void CheckInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 || input.Size(1) != 3)
            throw new ArgumentException($"ResNet expects images [N, 3, H, W], got [{string.Join(", ", input.Shape.ToArray())}]", nameof(input));
    }

    private Tensor Stem(Tensor input)
    {
        using var r = Conv1.ForwardNorm(input, Bn1, relu: true);
        return MaxPool.Forward(r);
    }

    /// <summary>Class logits [N, numClasses] for images [N, 3, H, W].</summary>
    public override Tensor Forward(Tensor input)
    {
        CheckInput(input);
        if (Fc == null || AvgPool == null)
            throw new InvalidOperationException("this ResNet was built without its classifier (a detection body); use ForwardFeatures");
        var x = Stem(input);
        foreach (var stage in _stages)
        {
            using var prev = x;
            x = stage.Forward(prev);
        }
        using (x)
        {
            using var pooled = AvgPool.Forward(x);
            using var flat = pooled.Flatten(1);
            return Fc.Forward(flat);
        }
    }

    /// <summary>
    /// The outputs of layer1..layer4 (c2..c5, strides 4, 8, 16, 32 unless dilated) for images [N, 3, H, W], as
    /// torchvision's IntermediateLayerGetter returns them to an FPN; the caller disposes them. The classifier is not run.
    /// </summary>
    public Tensor[] ForwardFeatures(Tensor input)
    {
        CheckInput(input);
        var features = new Tensor[4];
        using var stem = Stem(input);
        var x = stem;
        for (int i = 0; i < 4; i++) x = features[i] = _stages[i].Forward(x);
        return features;
    }

    /// <summary>torchvision's resnet18: BasicBlock, [2, 2, 2, 2].</summary>
    public static ResNet ResNet18(int numClasses = 1000, bool zeroInitResidual = false, Func<int, UnaryModule>? normLayer = null,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null) =>
        new(ResNetBlock.Basic, [2, 2, 2, 2], numClasses, zeroInitResidual, normLayer: normLayer, dtype: dtype, device: device, generator: generator);

    /// <summary>torchvision's resnet34: BasicBlock, [3, 4, 6, 3].</summary>
    public static ResNet ResNet34(int numClasses = 1000, bool zeroInitResidual = false, Func<int, UnaryModule>? normLayer = null,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null) =>
        new(ResNetBlock.Basic, [3, 4, 6, 3], numClasses, zeroInitResidual, normLayer: normLayer, dtype: dtype, device: device, generator: generator);

    /// <summary>torchvision's resnet50: Bottleneck, [3, 4, 6, 3].</summary>
    public static ResNet ResNet50(int numClasses = 1000, bool zeroInitResidual = false, bool[]? replaceStrideWithDilation = null,
        Func<int, UnaryModule>? normLayer = null, DType dtype = DType.Float32, Device? device = null, Generator? generator = null) =>
        new(ResNetBlock.Bottleneck, [3, 4, 6, 3], numClasses, zeroInitResidual, 1, 64, replaceStrideWithDilation, normLayer, dtype, device, generator);

    /// <summary>torchvision's resnet101: Bottleneck, [3, 4, 23, 3].</summary>
    public static ResNet ResNet101(int numClasses = 1000, bool zeroInitResidual = false, bool[]? replaceStrideWithDilation = null,
        Func<int, UnaryModule>? normLayer = null, DType dtype = DType.Float32, Device? device = null, Generator? generator = null) =>
        new(ResNetBlock.Bottleneck, [3, 4, 23, 3], numClasses, zeroInitResidual, 1, 64, replaceStrideWithDilation, normLayer, dtype, device, generator);

    /// <summary>torchvision's resnext50_32x4d: Bottleneck, [3, 4, 6, 3], 32 groups of width 4.</summary>
    public static ResNet ResNeXt50_32x4d(int numClasses = 1000, Func<int, UnaryModule>? normLayer = null,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null) =>
        new(ResNetBlock.Bottleneck, [3, 4, 6, 3], numClasses, false, 32, 4, null, normLayer, dtype, device, generator);

    /// <summary>torchvision's wide_resnet50_2: Bottleneck, [3, 4, 6, 3], inner width doubled.</summary>
    public static ResNet WideResNet50_2(int numClasses = 1000, Func<int, UnaryModule>? normLayer = null,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null) =>
        new(ResNetBlock.Bottleneck, [3, 4, 6, 3], numClasses, false, 1, 128, null, normLayer, dtype, device, generator);
}
