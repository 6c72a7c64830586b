namespace Runtime.Nn;

/// <summary>
/// 2-D convolution over [N, Cin, H, W] (or unbatched [Cin, H, W]) with weight [Cout, Cin/groups, kH, kW]
/// and an optional bias [Cout]; PyTorch's default initialisation (kaiming_uniform_(a = sqrt(5)), bias
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in))). Only zero padding is supported.
/// </summary>
public sealed class Conv2d : UnaryModule
{
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true, string paddingMode = "zeros", DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : this(inChannels, outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding), (dilation, dilation), groups, bias, paddingMode, dtype, device, generator) { }

    public Conv2d(int inChannels, int outChannels, (int H, int W) kernelSize, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation,
        int groups = 1, bool bias = true, string paddingMode = "zeros", DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ConvChecks.Channels(inChannels, outChannels, groups);
        ConvChecks.Geometry(kernelSize, stride, padding, dilation);
        ConvChecks.PaddingMode(paddingMode);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        Groups = groups;
        var w = RegisterParameter("weight", Tensor.Zeros([outChannels, inChannels / groups, kernelSize.H, kernelSize.W], dtype, device));
        ConvChecks.DefaultInit(w, bias ? RegisterParameter("bias", Tensor.Zeros([outChannels], dtype, device)) : null, generator);
        if (!bias) RegisterParameter("bias", null, allowNull: true);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public (int H, int W) KernelSize { get; }
    public (int H, int W) Stride { get; }
    public (int H, int W) Padding { get; }
    public (int H, int W) Dilation { get; }
    public int Groups { get; }
    public Tensor Weight => GetParameter("weight")!;
    public Tensor? Bias => GetParameter("bias");

    public override Tensor Forward(Tensor input)
    {
        ConvChecks.Input(input, InChannels, nameof(Conv2d));
        return input.Conv2d(Weight, Bias, Stride, Padding, Dilation, Groups);
    }

    /// <summary>
    /// <c>norm(Forward(input))</c>, plus <paramref name="residual"/> (shaped like the output) when given, then ReLU
    /// when <paramref name="relu"/>: this convolution, the batch norm it feeds and a residual block's epilogue. When
    /// inference fusion applies (<see cref="BatchNormFold.Applies"/>: fusion on, autograd off, the norm in eval mode
    /// with fixed statistics) the norm is folded into this layer's weight and bias (cached, refolded when any of
    /// them changes) and the bias, residual sum and ReLU are applied as the output is written
    /// (<see cref="Tensor.Conv2dFused"/>); otherwise the layers run one after the other (<see cref="BatchNormFold.Unfused"/>).
    /// </summary>
    public Tensor ForwardNorm(Tensor input, UnaryModule norm, Tensor? residual = null, bool relu = false)
    {
        ArgumentNullException.ThrowIfNull(norm);
        ConvChecks.Input(input, InChannels, nameof(Conv2d));
        if (BatchNormFold.Applies(this, norm))
        {
            _fold ??= new BatchNormFold();
            var (w, b) = _fold.Get(Weight, Bias, norm);
            return input.Conv2dFused(w, b, Stride, Padding, Dilation, Groups, residual, relu);
        }
        using var y = input.Conv2d(Weight, Bias, Stride, Padding, Dilation, Groups);
        return BatchNormFold.Unfused(y, norm, residual, relu);
    }

    private BatchNormFold? _fold;

    /// <summary>The folded weight and bias of <see cref="ForwardNorm"/>'s fused path: null until it has run (and after fusion is turned off or the layer moved).</summary>
    public BatchNormFold? InferenceFold => _fold;

    protected override void ReleaseCaches()
    {
        _fold?.Dispose();
        _fold = null;
    }

    public override string ToString() =>
        $"Conv2d({InChannels}, {OutChannels}, kernel={KernelSize}, stride={Stride}, padding={Padding}, dilation={Dilation}, groups={Groups}, bias={Bias != null})";
}

/// <summary>
/// 2-D transposed convolution with weight [Cin, Cout/groups, kH, kW]; the output side is
/// (H - 1) * stride - 2 * padding + dilation * (k - 1) + outputPadding + 1. PyTorch's default initialisation,
/// whose fan-in for this weight layout is (Cout/groups) * kH * kW.
/// </summary>
public sealed class ConvTranspose2d : UnaryModule
{
    public ConvTranspose2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int outputPadding = 0, int groups = 1,
        bool bias = true, int dilation = 1, string paddingMode = "zeros", DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : this(inChannels, outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding), (outputPadding, outputPadding), groups, bias,
            (dilation, dilation), paddingMode, dtype, device, generator) { }

    public ConvTranspose2d(int inChannels, int outChannels, (int H, int W) kernelSize, (int H, int W) stride, (int H, int W) padding,
        (int H, int W) outputPadding, int groups, bool bias, (int H, int W) dilation, string paddingMode = "zeros",
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ConvChecks.Channels(inChannels, outChannels, groups);
        ConvChecks.Geometry(kernelSize, stride, padding, dilation);
        ConvChecks.PaddingMode(paddingMode);
        ConvChecks.OutputPadding(outputPadding, stride, dilation);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        OutputPadding = outputPadding;
        Dilation = dilation;
        Groups = groups;
        var w = RegisterParameter("weight", Tensor.Zeros([inChannels, outChannels / groups, kernelSize.H, kernelSize.W], dtype, device));
        ConvChecks.DefaultInit(w, bias ? RegisterParameter("bias", Tensor.Zeros([outChannels], dtype, device)) : null, generator);
        if (!bias) RegisterParameter("bias", null, allowNull: true);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public (int H, int W) KernelSize { get; }
    public (int H, int W) Stride { get; }
    public (int H, int W) Padding { get; }
    public (int H, int W) OutputPadding { get; }
    public (int H, int W) Dilation { get; }
    public int Groups { get; }
    public Tensor Weight => GetParameter("weight")!;
    public Tensor? Bias => GetParameter("bias");

    public override Tensor Forward(Tensor input)
    {
        ConvChecks.Input(input, InChannels, nameof(ConvTranspose2d));
        return input.ConvTranspose2d(Weight, Bias, Stride, Padding, OutputPadding, Groups, Dilation);
    }

    /// <summary>
    /// Forward with the output's spatial size chosen among those the stride makes ambiguous, as torch's
    /// <c>forward(input, output_size)</c>: the output padding is derived from <paramref name="outputSize"/>.
    /// </summary>
    public Tensor Forward(Tensor input, (int H, int W) outputSize)
    {
        ConvChecks.Input(input, InChannels, nameof(ConvTranspose2d));
        int h = input.Size(-2), w = input.Size(-1);
        int opH = OutputPaddingFor(h, outputSize.H, KernelSize.H, Stride.H, Padding.H, Dilation.H, "H");
        int opW = OutputPaddingFor(w, outputSize.W, KernelSize.W, Stride.W, Padding.W, Dilation.W, "W");
        return input.ConvTranspose2d(Weight, Bias, Stride, Padding, (opH, opW), Groups, Dilation);
    }

    private static int OutputPaddingFor(int inSize, int wanted, int k, int s, int p, int d, string axis)
    {
        int min = (inSize - 1) * s - 2 * p + d * (k - 1) + 1;
        int max = min + s - 1;
        if (wanted < min || wanted > max)
            throw new ArgumentOutOfRangeException("outputSize", wanted,
                $"ConvTranspose2d can give an output {axis} between {min} and {max} for input {axis} {inSize}, requested {wanted}");
        return wanted - min;
    }

    public override string ToString() =>
        $"ConvTranspose2d({InChannels}, {OutChannels}, kernel={KernelSize}, stride={Stride}, padding={Padding}, output_padding={OutputPadding}, dilation={Dilation}, groups={Groups}, bias={Bias != null})";
}

/// <summary>Argument checks and default initialisation shared by the convolution layers.</summary>
internal static class ConvChecks
{
    public static void Channels(int inChannels, int outChannels, int groups)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(groups);
        if (inChannels % groups != 0)
            throw new ArgumentException($"inChannels ({inChannels}) must be divisible by groups ({groups})", nameof(inChannels));
        if (outChannels % groups != 0)
            throw new ArgumentException($"outChannels ({outChannels}) must be divisible by groups ({groups})", nameof(outChannels));
    }

    public static void Geometry((int H, int W) kernelSize, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation)
    {
        if (kernelSize.H <= 0 || kernelSize.W <= 0) throw new ArgumentOutOfRangeException(nameof(kernelSize), kernelSize, "kernel size must be positive");
        if (stride.H <= 0 || stride.W <= 0) throw new ArgumentOutOfRangeException(nameof(stride), stride, "stride must be positive");
        if (padding.H < 0 || padding.W < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "padding must be non-negative");
        if (dilation.H <= 0 || dilation.W <= 0) throw new ArgumentOutOfRangeException(nameof(dilation), dilation, "dilation must be positive");
    }

    public static void OutputPadding((int H, int W) outputPadding, (int H, int W) stride, (int H, int W) dilation)
    {
        if (outputPadding.H < 0 || outputPadding.W < 0)
            throw new ArgumentOutOfRangeException(nameof(outputPadding), outputPadding, "output padding must be non-negative");
        if ((outputPadding.H >= stride.H && outputPadding.H >= dilation.H) || (outputPadding.W >= stride.W && outputPadding.W >= dilation.W))
            throw new ArgumentOutOfRangeException(nameof(outputPadding), outputPadding,
                $"output padding must be smaller than either stride {stride} or dilation {dilation}");
    }

    public static void PaddingMode(string paddingMode)
    {
        if (paddingMode != "zeros")
            throw new ArgumentException($"only paddingMode \"zeros\" is supported, got \"{paddingMode}\"", nameof(paddingMode));
    }

    public static void Input(Tensor input, int channels, string layer)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank is not (3 or 4) || input.Size(-3) != channels)
            throw new ArgumentException(
                $"{layer} with {channels} input channels expects [N, {channels}, H, W] or [{channels}, H, W], got [{string.Join(", ", input.Shape.ToArray())}]",
                nameof(input));
    }

    /// <summary>torch's reset_parameters of _ConvNd: kaiming_uniform_(a = sqrt(5)) then bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).</summary>
    public static void DefaultInit(Tensor weight, Tensor? bias, Generator? generator)
    {
        Init.KaimingUniform_(weight, a: Math.Sqrt(5), generator: generator);
        if (bias == null) return;
        var (fanIn, _) = Init.CalculateFanInAndFanOut(weight);
        double bound = fanIn > 0 ? 1 / Math.Sqrt(fanIn) : 0;
        Init.Uniform_(bias, -bound, bound, generator);
    }
}
