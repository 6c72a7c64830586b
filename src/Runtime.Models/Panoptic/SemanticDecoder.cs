using Runtime.Nn.Models;

namespace Runtime.Models.Panoptic;

/// <summary>
/// A depthwise-separable convolution as DeepLab2 stacks it: a k x k depthwise convolution, BN, ReLU, then a 1x1
/// convolution to <c>outChannels</c>, BN, ReLU ("same" padding, no biases). State names: depthwise, depthwise_bn,
/// pointwise, pointwise_bn.
/// </summary>
public class DepthwiseSeparableConv : UnaryModule
{
    public DepthwiseSeparableConv(int inChannels, int outChannels, int kernel = 5, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        if (kernel <= 0 || kernel % 2 == 0) throw new ArgumentOutOfRangeException(nameof(kernel), kernel, "the kernel must be odd and positive");
        Depthwise = RegisterModule("depthwise", new Conv2d(inChannels, inChannels, kernel, 1, kernel / 2, groups: inChannels, bias: false, dtype: dtype, device: device, generator: generator));
        DepthwiseBn = RegisterModule("depthwise_bn", new BatchNorm2d(inChannels, dtype: dtype, device: device));
        Pointwise = RegisterModule("pointwise", new Conv2d(inChannels, outChannels, 1, bias: false, dtype: dtype, device: device, generator: generator));
        PointwiseBn = RegisterModule("pointwise_bn", new BatchNorm2d(outChannels, dtype: dtype, device: device));
    }

    public Conv2d Depthwise { get; }
    public BatchNorm2d DepthwiseBn { get; }
    public Conv2d Pointwise { get; }
    public BatchNorm2d PointwiseBn { get; }

    public override Tensor Forward(Tensor input)
    {
        using var x = Depthwise.ForwardNorm(input, DepthwiseBn, relu: true);
        return Pointwise.ForwardNorm(x, PointwiseBn, relu: true);
    }
}

/// <summary>
/// Atrous spatial pyramid pooling as DeepLab2 builds it: a 1x1 convolution, three 3x3 convolutions dilated by the
/// atrous rates, and image pooling (global average, 1x1 convolution, broadcast back), each with BN and ReLU; their
/// concatenation projected by a 1x1 convolution + BN + ReLU, then dropout in training. State names: conv, atrous{1,2,3},
/// pool, project (each a convolution <c>.0</c> and a BN <c>.1</c>).
/// </summary>
public sealed class Aspp : UnaryModule
{
    private readonly Sequential[] _branches;

    public Aspp(int inChannels, int outChannels, int[] atrousRates, double dropout = 0.1, Generator? dropoutGenerator = null, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(atrousRates);
        if (atrousRates.Length != 3 || atrousRates.Any(r => r <= 0))
            throw new ArgumentException($"ASPP needs three positive atrous rates, got [{string.Join(", ", atrousRates)}]", nameof(atrousRates));
        Sequential ConvBn(int cin, int k, int dilation) => new(
            new Conv2d(cin, outChannels, k, 1, dilation * (k / 2), dilation, bias: false, dtype: dtype, device: device, generator: generator),
            new BatchNorm2d(outChannels, dtype: dtype, device: device));
        _branches =
        [
            RegisterModule("conv", ConvBn(inChannels, 1, 1)),
            RegisterModule("atrous1", ConvBn(inChannels, 3, atrousRates[0])),
            RegisterModule("atrous2", ConvBn(inChannels, 3, atrousRates[1])),
            RegisterModule("atrous3", ConvBn(inChannels, 3, atrousRates[2])),
        ];
        Pool = RegisterModule("pool", ConvBn(inChannels, 1, 1));
        Project = RegisterModule("project", ConvBn(5 * outChannels, 1, 1));
        Dropout = RegisterModule("dropout", new Dropout(dropout, dropoutGenerator));
    }

    public Sequential Pool { get; }
    public Sequential Project { get; }
    public Dropout Dropout { get; }

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = new TensorScope();
        var parts = new List<Tensor>();
        foreach (var branch in _branches) parts.Add(ConvBnRelu(branch, input));
        var pooled = ConvBnRelu(Pool, input.Mean([2, 3], keepDim: true));
        parts.Add(pooled.Expand(pooled.Size(0), pooled.Size(1), input.Size(2), input.Size(3)));
        var projected = ConvBnRelu(Project, Tensor.Cat(parts, 1));
        return scope.MoveOut(Dropout.Forward(projected));
    }

    /// <summary>A [convolution, BN] pair followed by ReLU, folded in inference.</summary>
    internal static Tensor ConvBnRelu(Sequential convBn, Tensor x) => ((Conv2d)convBn[0]).ForwardNorm(x, (BatchNorm2d)convBn[1], relu: true);
}

/// <summary>
/// DeepLab2's auxiliary semantic decoder for MaX-DeepLab with L = 0 (Panoptic-DeepLab's single decoder): ASPP on the
/// backbone's output, then for each lower-level feature (stride 8, then 4) a 1x1 projection + BN + ReLU of that
/// feature, the decoded features resized to it (bilinear, aligned corners), concatenated with it and fused by a 5x5
/// depthwise-separable convolution (DeepLab2's dropout 0.1 after the ASPP by default). The semantic head reads its
/// stride-4 output, so the semantic loss supervises the high-resolution stages directly. State names: aspp, low{i}
/// (<c>.0</c> convolution, <c>.1</c> BN), fuse{i}.
/// </summary>
public sealed class SemanticDecoder : Module
{
    private readonly Sequential[] _low;
    private readonly DepthwiseSeparableConv[] _fuse;

    public SemanticDecoder(int inChannels, int[] lowLevelChannels, int[] lowLevelProjections, int asppChannels, int[] atrousRates, int outChannels,
        Generator? dropoutGenerator = null, double dropout = 0.1, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(lowLevelChannels);
        ArgumentNullException.ThrowIfNull(lowLevelProjections);
        if (lowLevelChannels.Length != lowLevelProjections.Length)
            throw new ArgumentException($"{lowLevelChannels.Length} low-level features but {lowLevelProjections.Length} projection widths", nameof(lowLevelProjections));
        Aspp = RegisterModule("aspp", new Aspp(inChannels, asppChannels, atrousRates, dropout, dropoutGenerator, dtype, device, generator));
        _low = new Sequential[lowLevelChannels.Length];
        _fuse = new DepthwiseSeparableConv[lowLevelChannels.Length];
        int channels = asppChannels;
        for (int i = 0; i < lowLevelChannels.Length; i++)
        {
            _low[i] = RegisterModule($"low{i}", new Sequential(
                new Conv2d(lowLevelChannels[i], lowLevelProjections[i], 1, bias: false, dtype: dtype, device: device, generator: generator),
                new BatchNorm2d(lowLevelProjections[i], dtype: dtype, device: device)));
            _fuse[i] = RegisterModule($"fuse{i}", new DepthwiseSeparableConv(channels + lowLevelProjections[i], outChannels, 5, dtype, device, generator));
            channels = outChannels;
        }
        OutChannels = channels;
    }

    public Aspp Aspp { get; }

    /// <summary>The width of <see cref="Forward"/>'s output.</summary>
    public int OutChannels { get; }

    /// <summary>Decodes <paramref name="high"/> with the lower-level features, highest stride first.</summary>
    public Tensor Forward(Tensor high, IReadOnlyList<Tensor> lowLevel)
    {
        ArgumentNullException.ThrowIfNull(high);
        ArgumentNullException.ThrowIfNull(lowLevel);
        if (lowLevel.Count != _low.Length)
            throw new ArgumentException($"SemanticDecoder: expected {_low.Length} low-level features, got {lowLevel.Count}", nameof(lowLevel));
        using var scope = new TensorScope();
        var x = Aspp.Forward(high);
        for (int i = 0; i < _low.Length; i++)
        {
            var low = Aspp.ConvBnRelu(_low[i], lowLevel[i]);
            if (x.Size(2) != low.Size(2) || x.Size(3) != low.Size(3))
                x = x.Interpolate((low.Size(2), low.Size(3)), InterpolationMode.Bilinear, alignCorners: true);
            x = _fuse[i].Forward(Tensor.Cat([x, low], 1));
        }
        return scope.MoveOut(x);
    }
}
