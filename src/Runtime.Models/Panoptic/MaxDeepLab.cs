using Runtime.Nn.Models;

namespace Runtime.Models.Panoptic;

/// <summary>
/// The raw outputs of a <see cref="MaxDeepLab"/> forward pass (owned; dispose them): per image N mask logit maps at
/// stride 4, N class logit vectors (things + stuff + void last), the L2-normalised pixel features the masks are dot
/// products in (also the instance-discrimination features), and the semantic head's logits at stride 16.
/// </summary>
public sealed class MaxDeepLabOutput : IDisposable
{
    public MaxDeepLabOutput(Tensor maskLogits, Tensor classLogits, Tensor pixelFeatures, Tensor? semanticLogits)
    {
        MaskLogits = maskLogits;
        ClassLogits = classLogits;
        PixelFeatures = pixelFeatures;
        SemanticLogits = semanticLogits;
    }

    /// <summary>[B, N, H/4, W/4]: softmax over N gives each pixel's mask probabilities.</summary>
    public Tensor MaskLogits { get; }

    /// <summary>[B, N, classes + 1], void last.</summary>
    public Tensor ClassLogits { get; }

    /// <summary>[B, D, H/4, W/4], unit length along D.</summary>
    public Tensor PixelFeatures { get; }

    /// <summary>
    /// [B, classes, H/4, W/4] with the auxiliary semantic decoder, else [B, classes, H/16, W/16] (H/8 with output stride
    /// 8); null when the forward pass was asked not to compute it (inference, which does not read it).
    /// </summary>
    public Tensor? SemanticLogits { get; }

    public void Dispose()
    {
        MaskLogits.Dispose();
        ClassLogits.Dispose();
        PixelFeatures.Dispose();
        SemanticLogits?.Dispose();
    }
}

/// <summary>
/// MaX-DeepLab (Wang et al. 2021): end-to-end panoptic segmentation with mask transformers, in DeepLab2's shape with
/// the stacked decoder L = 0.
/// <list type="bullet">
/// <item>Backbone: torchvision's ResNet stem and first two stages (<c>conv1</c>, <c>bn1</c>, <c>layer1</c>,
/// <c>layer2</c> with torchvision's names, so ResNet weights load there), a stride-16 stage <c>layer3</c> whose first
/// block is a strided bottleneck and the rest <see cref="AxialBottleneck"/>s, and a last stage <c>layer4</c> kept at
/// stride 16 and made of <see cref="DualPathBlock"/>s, plus <see cref="MaxDeepLabConfig.ExtraBlocks"/> more
/// (<c>extra</c>). The memory is a learned [memory channels, N] parameter (<c>memory</c>) shared by the batch.</item>
/// <item>Decoder: <see cref="ResizedFuse"/> of the stride-16 output with layer2's (stride 8), a bottleneck, the same
/// with layer1's (stride 4), a bottleneck; bilinear resizing with aligned corners.</item>
/// <item>Heads: pixel features (a 5x5 depthwise-separable convolution and a 1x1 to D, batch norm, L2 normalisation)
/// at stride 4; class logits (a 1x1 + BN + ReLU on the memory, then a linear layer with bias, void's biased to
/// <see cref="MaxDeepLabConfig.VoidPriorProbability"/>); mask logits = pixel features dotted with each slot's mask
/// kernel (1x1 + BN + ReLU, then 1x1 + BN, on the memory), batch-normalised by one shared batch norm; the semantic
/// head on the backbone's stride-16 output.</item>
/// </list>
/// Every stage but the heads' last layers starts its residual branch's last batch norm at zero.
/// </summary>
public sealed class MaxDeepLab : Module
{
    public MaxDeepLab(MaxDeepLabConfig config, Device? device = null, Generator? generator = null, DType dtype = DType.Float32)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int[] w = config.Widths;
        int[] ch = w.Select(x => 4 * x).ToArray();
        int span = config.BackboneSize;
        Init.Normal_(RegisterParameter("memory", Tensor.Zeros([config.MemoryChannels, config.NumSlots], dtype, device)), 0, 1, generator);

        Conv1 = RegisterModule("conv1", new Conv2d(3, w[0], 7, 2, 3, bias: false, dtype: dtype, device: device, generator: generator));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(w[0], dtype: dtype, device: device));
        MaxPool = RegisterModule("maxpool", new MaxPool2d(3, 2, 1));
        int inPlanes = w[0];
        Sequential ConvStage(int planes, int stride, int count)
        {
            var stage = new Sequential();
            for (int i = 0; i < count; i++)
            {
                int s = i == 0 ? stride : 1;
                Sequential? down = null;
                if (s != 1 || inPlanes != planes * 4)
                    down = new Sequential(new Conv2d(inPlanes, planes * 4, 1, s, bias: false, dtype: dtype, device: device, generator: generator),
                        new BatchNorm2d(planes * 4, dtype: dtype, device: device));
                stage.Append(NewBottleneck(inPlanes, planes, s, down, dtype, device, generator));
                inPlanes = planes * 4;
            }
            return stage;
        }
        Layer1 = RegisterModule("layer1", ConvStage(w[0], 1, config.Layers[0]));
        Layer2 = RegisterModule("layer2", ConvStage(w[1], 2, config.Layers[1]));
        Layer3 = RegisterModule("layer3", ConvStage(w[2], config.OutputStride == 16 ? 2 : 1, 1));
        for (int i = 1; i < config.Layers[2]; i++)
            Layer3.Append(new AxialBottleneck(ch[2], w[2], config.AxialHeads, span, dtype, device, generator));
        DualPathBlock Dual(int inChannels) => new(inChannels, w[3], config.AxialHeads, span, config.MemoryChannels,
            config.TransformerFilters, config.TransformerHeads, config.FfnChannels, dtype, device, generator);
        Layer4 = RegisterModule("layer4", new ModuleList());
        for (int i = 0; i < config.Layers[3]; i++) Layer4.Add(Dual(i == 0 ? ch[2] : ch[3]));
        Extra = RegisterModule("extra", new ModuleList());
        for (int i = 0; i < config.ExtraBlocks; i++) Extra.Add(Dual(ch[3]));

        Decoder8 = RegisterModule("decoder8", new ResizedFuse(ch[1], [ch[3], ch[1]], dtype, device, generator));
        Decoder8Block = RegisterModule("decoder8_block", NewBottleneck(ch[1], w[1], 1, null, dtype, device, generator));
        Decoder4 = RegisterModule("decoder4", new ResizedFuse(ch[0], [ch[1], ch[0]], dtype, device, generator));
        Decoder4Block = RegisterModule("decoder4_block", NewBottleneck(ch[0], w[0], 1, null, dtype, device, generator));

        PixelHead = RegisterModule("pixel_head", new PanopticHead(ch[0], config.HeadChannels, config.FeatureDim, dtype, device, generator));
        PixelBn = RegisterModule("pixel_bn", new BatchNorm2d(config.FeatureDim, dtype: dtype, device: device));
        if (config.SemanticDecoder)
            SemanticDecoder = RegisterModule("semantic_decoder", new SemanticDecoder(ch[3], [ch[1], ch[0]], config.SemanticLowLevelChannels, config.AsppChannels,
                config.AtrousRates, config.SemanticDecoderChannels, DropoutGenerator, 0.1, dtype, device, generator));
        SemanticHead = RegisterModule("semantic_head", new PanopticHead(SemanticDecoder?.OutChannels ?? ch[3], config.HeadChannels, config.NumClasses, dtype, device, generator));
        ClassFeature = RegisterModule("class_feature", new PointwiseConvBn(config.MemoryChannels, config.GlobalChannels, relu: true, dtype: dtype, device: device, generator: generator));
        MaskFeature = RegisterModule("mask_feature", new PointwiseConvBn(config.MemoryChannels, config.GlobalChannels, relu: true, dtype: dtype, device: device, generator: generator));
        ClassHead = RegisterModule("class_head", new Linear(config.GlobalChannels, config.NumClasses + 1, dtype: dtype, device: device, generator: generator));
        MaskKernel = RegisterModule("mask_kernel", new PointwiseConvBn(config.GlobalChannels, config.FeatureDim, relu: false, dtype: dtype, device: device, generator: generator));
        MaskBn = RegisterModule("mask_bn", new BatchNorm2d(1, dtype: dtype, device: device));

        // Torchvision's ResNet initialisation for the convolutions, DeepLab2's for the heads.
        foreach (var (_, m) in NamedModules())
            if (m is Conv2d conv && !ReferenceEquals(m, PixelHead.Final) && !ReferenceEquals(m, SemanticHead.Final))
                Init.KaimingNormal_(conv.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
        foreach (var (_, m) in NamedModules())
            if (m is Bottleneck b) Init.Zeros_(((BatchNorm2d)b.Bn3).Weight!);
        Init.Normal_(ClassHead.Weight, 0, 0.01, generator);
        using (GradMode.NoGrad())
        {
            var bias = new double[config.NumClasses + 1];
            bias[^1] = Math.Log(config.NumClasses * config.VoidPriorProbability / (1 - config.VoidPriorProbability));
            using var b = Tensor.From<double>(bias, [bias.Length]).To(ClassHead.Bias!.DType).To(ClassHead.Bias.Device);
            ClassHead.Bias.CopyFrom(b);
        }
        Init.Constant_(MaskBn.Weight!, 0.1);
    }

    private static Bottleneck NewBottleneck(int inPlanes, int planes, int stride, Sequential? downsample, DType dtype, Device? device, Generator? generator) =>
        new(inPlanes, planes, stride, downsample, 1, 64, 1, c => new BatchNorm2d(c, dtype: dtype, device: device), dtype, device, generator);

    public MaxDeepLabConfig Config { get; }

    /// <summary>The learned initial memory [memory channels, N].</summary>
    public Tensor Memory => GetParameter("memory")!;

    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public MaxPool2d MaxPool { get; }
    public Sequential Layer1 { get; }
    public Sequential Layer2 { get; }
    public Sequential Layer3 { get; }
    public ModuleList Layer4 { get; }
    public ModuleList Extra { get; }
    public ResizedFuse Decoder8 { get; }
    public Bottleneck Decoder8Block { get; }
    public ResizedFuse Decoder4 { get; }
    public Bottleneck Decoder4Block { get; }
    public PanopticHead PixelHead { get; }
    public BatchNorm2d PixelBn { get; }
    /// <summary>DeepLab2's auxiliary semantic decoder under the semantic head; null when <see cref="MaxDeepLabConfig.SemanticDecoder"/> is off.</summary>
    public SemanticDecoder? SemanticDecoder { get; }
    public PanopticHead SemanticHead { get; }

    /// <summary>
    /// The random stream of the semantic decoder's dropout (training mode only); a trainer reseeds it each step so a
    /// resumed run repeats the uninterrupted one.
    /// </summary>
    public Generator DropoutGenerator { get; } = new(0x5EED);
    public PointwiseConvBn ClassFeature { get; }
    public PointwiseConvBn MaskFeature { get; }
    public Linear ClassHead { get; }
    public PointwiseConvBn MaskKernel { get; }
    public BatchNorm2d MaskBn { get; }

    public int NumSlots => Config.NumSlots;
    public int NumClasses => Config.NumClasses;

    /// <summary>
    /// Runs the network on normalised images [B, 3, H, W] (H, W at most <see cref="MaxDeepLabConfig.InputSize"/>);
    /// <paramref name="semantic"/> false skips the semantic decoder and head, which only the training loss reads.
    /// </summary>
    public MaxDeepLabOutput Forward(Tensor images, bool semantic = true)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Rank != 4 || images.Size(1) != 3)
            throw new ArgumentException($"MaX-DeepLab expects images [B, 3, H, W], got {Shapes.Format(images.Shape)}", nameof(images));
        if (images.Size(2) > Config.InputSize || images.Size(3) > Config.InputSize)
            throw new ArgumentException($"MaX-DeepLab: images {Shapes.Format(images.Shape)} exceed the configured input size {Config.InputSize} (the axial attention's span)", nameof(images));
        using var scope = new TensorScope();
        int batch = images.Size(0);
        var x = MaxPool.Forward(Conv1.ForwardNorm(images, Bn1, relu: true));
        var c2 = Layer1.Forward(x);
        var c3 = Layer2.Forward(c2);
        var p = Layer3.Forward(c3);
        var memory = Memory.Unsqueeze(0).Expand(batch, Config.MemoryChannels, Config.NumSlots);
        foreach (DualPathBlock block in Layer4) (p, memory) = block.Forward(p, memory);
        var backbone = p;
        foreach (DualPathBlock block in Extra) (p, memory) = block.Forward(p, memory);

        var d8 = Decoder8Block.Forward(Decoder8.Forward([p, c3], (c3.Size(2), c3.Size(3))));
        var d4 = Decoder4Block.Forward(Decoder4.Forward([d8, c2], (c2.Size(2), c2.Size(3))));
        var pixel = PixelHead.Forward(d4, PixelBn);
        var features = L2Normalize(pixel, 1);
        var semanticLogits = !semantic ? null : SemanticHead.Forward(SemanticDecoder is null ? backbone : SemanticDecoder.Forward(backbone, [c3, c2]));

        var classLogits = ClassHead.Forward(ClassFeature.Forward(memory).MT);          // [B, N, C + 1]
        var kernel = MaskKernel.Forward(MaskFeature.Forward(memory));                   // [B, D, N]
        int h4 = features.Size(2), w4 = features.Size(3);
        var similarity = kernel.MT.MatMul(features.Reshape(batch, Config.FeatureDim, h4 * w4)); // [B, N, P]
        var maskLogits = MaskBn.Forward(similarity.Unsqueeze(1)).Reshape(batch, Config.NumSlots, h4, w4);
        return new MaxDeepLabOutput(scope.MoveOut(maskLogits), scope.MoveOut(classLogits), scope.MoveOut(features), semanticLogits is null ? null : scope.MoveOut(semanticLogits));
    }

    /// <summary>
    /// An image [3, H, W] in [0, 1] as the network takes it: resized bilinearly so its longer side is
    /// <see cref="MaxDeepLabConfig.InputSize"/> (DeepLab2's resize to the crop size), normalised with the image mean and
    /// std, and zero-padded at the bottom and right to InputSize x InputSize. Returns the input and the resized size.
    /// </summary>
    public (Tensor Input, int ResizedHeight, int ResizedWidth) Preprocess(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Rank != 3 || image.Size(0) != 3)
            throw new ArgumentException($"expected an RGB image [3, H, W], got {Shapes.Format(image.Shape)}", nameof(image));
        int h = image.Size(1), w = image.Size(2), s = Config.InputSize;
        double scale = (double)s / Math.Max(h, w);
        int rh = Math.Clamp((int)Math.Round(h * scale), 1, s), rw = Math.Clamp((int)Math.Round(w * scale), 1, s);
        using var scope = new TensorScope();
        var x = image.DType == Memory.DType ? image : image.To(Memory.DType);
        if (rh != h || rw != w) x = x.Unsqueeze(0).Interpolate((rh, rw), InterpolationMode.Bilinear, alignCorners: false).Squeeze(0);
        var mean = Tensor.From<float>(Config.ImageMean, [3, 1, 1]).To(Memory.DType).To(image.Device);
        var std = Tensor.From<float>(Config.ImageStd, [3, 1, 1]).To(Memory.DType).To(image.Device);
        var normalised = (x - mean) / std;
        var padded = normalised.Pad([0, s - rw, 0, s - rh]);
        return (scope.MoveOut(padded), rh, rw);
    }

    /// <summary>
    /// Panoptic segmentations of images [3, H, W] in [0, 1] (any sizes) at their own sizes; call <see cref="Module.Eval"/>
    /// first for the running batch statistics. Class indices are the model's (thing + stuff classes).
    /// </summary>
    public IReadOnlyList<PanopticPrediction> Predict(IReadOnlyList<Tensor> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) return [];
        using var _ = GradMode.NoGrad();
        using var scope = new TensorScope();
        var prepared = images.Select(Preprocess).ToArray();
        var batch = Tensor.Stack(prepared.Select(p => p.Input).ToArray());
        using var output = Forward(batch, semantic: false);
        var things = Config.ThingClasses.ToHashSet();
        var results = new List<PanopticPrediction>();
        int n = NumSlots, gh = output.MaskLogits.Size(2), gw = output.MaskLogits.Size(3);
        var maskAll = output.MaskLogits.To(DType.Float32).To(Device.Cpu).ToArray<float>();
        var classAll = output.ClassLogits.To(DType.Float32).To(Device.Cpu).ToArray<float>();
        for (int b = 0; b < images.Count; b++)
        {
            var mask = maskAll.AsSpan(b * n * gh * gw, n * gh * gw);
            var cls = classAll.AsSpan(b * n * (NumClasses + 1), n * (NumClasses + 1));
            results.Add(MaxDeepLabPostProcessor.Process(mask, n, gh, gw, cls, NumClasses, Config.InputSize,
                prepared[b].ResizedHeight, prepared[b].ResizedWidth, images[b].Size(1), images[b].Size(2), things, Config.Inference));
        }
        return results;
    }

    /// <summary>x / max(||x||, 1e-6) along <paramref name="dim"/> (tf.math.l2_normalize's epsilon on the squared norm).</summary>
    public static Tensor L2Normalize(Tensor x, int dim)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var sq = x * x;
        using var sum = sq.Sum(dim, keepDim: true);
        using var clamped = sum.Clamp(min: 1e-12);
        using var inv = clamped.Rsqrt();
        return x * inv;
    }
}

/// <summary>
/// DeepLab2's ResizedFuse for the stacked decoder: every input is brought to the output's channels (inputs of
/// another width: ReLU, 1x1 convolution, BN; inputs of the output's width as they are), resized bilinearly with
/// aligned corners to the output size, and summed. State names: <c>conv{i}.{0,1}</c> for input i.
/// </summary>
public sealed class ResizedFuse : Module
{
    private readonly Sequential?[] _projections;

    public ResizedFuse(int outChannels, int[] inChannels, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(inChannels);
        OutChannels = outChannels;
        InChannels = (int[])inChannels.Clone();
        _projections = new Sequential?[inChannels.Length];
        for (int i = 0; i < inChannels.Length; i++)
        {
            if (inChannels[i] == outChannels) continue;
            _projections[i] = RegisterModule($"conv{i}", new Sequential(
                new Conv2d(inChannels[i], outChannels, 1, bias: false, dtype: dtype, device: device, generator: generator),
                new BatchNorm2d(outChannels, dtype: dtype, device: device)));
        }
    }

    public int OutChannels { get; }
    public IReadOnlyList<int> InChannels { get; }

    public Tensor Forward(IReadOnlyList<Tensor> inputs, (int H, int W) size)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count != _projections.Length)
            throw new ArgumentException($"ResizedFuse: expected {_projections.Length} inputs, got {inputs.Count}", nameof(inputs));
        using var scope = new TensorScope();
        var terms = new List<Tensor>();
        for (int i = 0; i < inputs.Count; i++)
        {
            var x = inputs[i];
            if (x.Size(1) != InChannels[i])
                throw new ArgumentException($"ResizedFuse: input {i} has {x.Size(1)} channels, expected {InChannels[i]}", nameof(inputs));
            if (_projections[i] is { } proj) x = proj.Forward(x.Relu());
            if (x.Size(2) != size.H || x.Size(3) != size.W) x = x.Interpolate(size, InterpolationMode.Bilinear, alignCorners: true);
            terms.Add(x);
        }
        var sum = terms.Count == 1 ? Alias(terms[0]) : terms[0] + terms[1];
        for (int i = 2; i < terms.Count; i++) sum += terms[i];
        return scope.MoveOut(sum);
    }
}

/// <summary>
/// Panoptic-DeepLab's single head as DeepLab2 builds it for MaX-DeepLab: a 5x5 depthwise convolution, BN, ReLU, a 1x1
/// convolution to the head width, BN, ReLU, then a 1x1 convolution with bias to the outputs (weights N(0, 0.01),
/// bias 0). State names: depthwise, depthwise_bn, pointwise, pointwise_bn, final.
/// </summary>
public sealed class PanopticHead : DepthwiseSeparableConv
{
    public PanopticHead(int inChannels, int headChannels, int outChannels, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : base(inChannels, headChannels, 5, dtype, device, generator)
    {
        Final = RegisterModule("final", new Conv2d(headChannels, outChannels, 1, bias: true, dtype: dtype, device: device, generator: generator));
        Init.Normal_(Final.Weight, 0, 0.01, generator);
        Init.Zeros_(Final.Bias!);
    }

    public Conv2d Final { get; }

    public override Tensor Forward(Tensor input) => Forward(input, null);

    /// <summary>The head's output, then <paramref name="norm"/> when given (MaX-DeepLab's pixel head feeds a batch norm, folded into <see cref="Final"/> in inference).</summary>
    public Tensor Forward(Tensor input, UnaryModule? norm)
    {
        using var x = base.Forward(input);
        return norm is null ? Final.Forward(x) : Final.ForwardNorm(x, norm);
    }
}
