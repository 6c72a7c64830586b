using Runtime.Nn;

namespace Runtime.Vision.Ops;

/// <summary>
/// torchvision.ops.DeformConv2d: parameters weight [Cout, Cin/groups, kH, kW] and bias [Cout], initialised as
/// torchvision's reset_parameters (kaiming_uniform_ with a = sqrt(5); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))); the
/// offset (and optional mask) come from the caller.
/// </summary>
public sealed class DeformConv2d : Module
{
    public DeformConv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : this(inChannels, outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding), (dilation, dilation), groups, bias, dtype, device, generator) { }

    public DeformConv2d(int inChannels, int outChannels, (int H, int W) kernelSize, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation,
        int groups = 1, bool bias = true, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        DeformChecks.Layer(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, 1);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        Groups = groups;
        var w = RegisterParameter("weight", Tensor.Zeros([outChannels, inChannels / groups, kernelSize.H, kernelSize.W], dtype, device));
        var b = bias ? RegisterParameter("bias", Tensor.Zeros([outChannels], dtype, device)) : null;
        if (!bias) RegisterParameter("bias", null, allowNull: true);
        ConvChecks.DefaultInit(w, b, generator); // torchvision's reset_parameters is torch's _ConvNd one
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

    /// <summary>The deformable convolution of <paramref name="input"/> with the given offset (and mask, raw: no sigmoid).</summary>
    public Tensor Forward(Tensor input, Tensor offset, Tensor? mask = null) =>
        DeformConvOps.DeformConv2d(input, offset, Weight, Bias, Stride, Padding, Dilation, mask);

    public override string ToString() =>
        $"DeformConv2d({InChannels}, {OutChannels}, kernel={KernelSize}, stride={Stride}, padding={Padding}, dilation={Dilation}, groups={Groups}, bias={Bias != null})";
}

/// <summary>
/// The DCNv2 layer that predicts its own offsets and mask ("ModulatedDeformConv2dPack"): a plain convolution
/// <c>conv_offset</c> with the same kernel, stride, padding and dilation maps the input to <c>3*G*kH*kW</c> channels,
/// split in three along channels into <c>o1, o2, m</c>; the offset is <c>cat(o1, o2)</c> and the mask <c>sigmoid(m)</c>.
/// conv_offset starts at zero (weight and bias), so a fresh layer samples the regular grid with mask 0.5. The layer's
/// own weight and bias are initialised as <see cref="DeformConv2d"/>'s.
/// </summary>
public sealed class ModulatedDeformConv2d : UnaryModule
{
    public ModulatedDeformConv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        int offsetGroups = 1, bool bias = true, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : this(inChannels, outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding), (dilation, dilation), groups, offsetGroups,
            bias, dtype, device, generator) { }

    public ModulatedDeformConv2d(int inChannels, int outChannels, (int H, int W) kernelSize, (int H, int W) stride, (int H, int W) padding,
        (int H, int W) dilation, int groups = 1, int offsetGroups = 1, bool bias = true, DType dtype = DType.Float32, Device? device = null,
        Generator? generator = null)
    {
        DeformChecks.Layer(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, offsetGroups);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        Groups = groups;
        OffsetGroups = offsetGroups;
        var w = RegisterParameter("weight", Tensor.Zeros([outChannels, inChannels / groups, kernelSize.H, kernelSize.W], dtype, device));
        var b = bias ? RegisterParameter("bias", Tensor.Zeros([outChannels], dtype, device)) : null;
        if (!bias) RegisterParameter("bias", null, allowNull: true);
        ConvChecks.DefaultInit(w, b, generator); // torchvision's reset_parameters is torch's _ConvNd one
        var offsetConv = new Conv2d(inChannels, 3 * offsetGroups * kernelSize.H * kernelSize.W, kernelSize, stride, padding, dilation,
            bias: true, dtype: dtype, device: device, generator: generator);
        Init.Zeros_(offsetConv.Weight);
        Init.Zeros_(offsetConv.Bias!);
        ConvOffset = RegisterModule("conv_offset", offsetConv);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public (int H, int W) KernelSize { get; }
    public (int H, int W) Stride { get; }
    public (int H, int W) Padding { get; }
    public (int H, int W) Dilation { get; }
    public int Groups { get; }
    public int OffsetGroups { get; }
    public Tensor Weight => GetParameter("weight")!;
    public Tensor? Bias => GetParameter("bias");

    /// <summary>The offset-predicting convolution (3*G*kH*kW output channels, zero at start).</summary>
    public Conv2d ConvOffset { get; }

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 || input.Shape[1] != InChannels)
            throw new ArgumentException($"ModulatedDeformConv2d: expected input [batch, {InChannels}, height, width], got {Shapes.Format(input.Shape)}", nameof(input));
        using var predicted = ConvOffset.Forward(input);
        var parts = predicted.Chunk(3, 1);
        try
        {
            using var offset = Tensor.Cat([parts[0], parts[1]], 1);
            using var mask = parts[2].Sigmoid();
            return DeformConvOps.DeformConv2d(input, offset, Weight, Bias, Stride, Padding, Dilation, mask);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    public override string ToString() =>
        $"ModulatedDeformConv2d({InChannels}, {OutChannels}, kernel={KernelSize}, stride={Stride}, padding={Padding}, dilation={Dilation}, groups={Groups}, offset_groups={OffsetGroups}, bias={Bias != null})";
}

/// <summary>
/// The DCNv1 layer that predicts its own offsets (mmcv's <c>DeformConv2dPack</c>): a plain convolution
/// <c>conv_offset</c> with the same kernel, stride, padding and dilation maps the input to the <c>2*G*kH*kW</c> offset
/// channels, used as they are (no mask). conv_offset starts at zero (weight and bias), so a fresh layer is a plain
/// convolution. The layer's own weight and bias are initialised as <see cref="DeformConv2d"/>'s.
/// </summary>
public sealed class DeformConv2dPack : UnaryModule
{
    public DeformConv2dPack(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        int offsetGroups = 1, bool bias = true, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        var k = (kernelSize, kernelSize);
        DeformChecks.Layer(inChannels, outChannels, k, (stride, stride), (padding, padding), (dilation, dilation), groups, offsetGroups);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = k;
        Stride = (stride, stride);
        Padding = (padding, padding);
        Dilation = (dilation, dilation);
        Groups = groups;
        OffsetGroups = offsetGroups;
        var w = RegisterParameter("weight", Tensor.Zeros([outChannels, inChannels / groups, kernelSize, kernelSize], dtype, device));
        var b = bias ? RegisterParameter("bias", Tensor.Zeros([outChannels], dtype, device)) : null;
        if (!bias) RegisterParameter("bias", null, allowNull: true);
        ConvChecks.DefaultInit(w, b, generator);
        var offsetConv = new Conv2d(inChannels, 2 * offsetGroups * kernelSize * kernelSize, kernelSize, stride, padding, dilation,
            bias: true, dtype: dtype, device: device, generator: generator);
        Init.Zeros_(offsetConv.Weight);
        Init.Zeros_(offsetConv.Bias!);
        ConvOffset = RegisterModule("conv_offset", offsetConv);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public (int H, int W) KernelSize { get; }
    public (int H, int W) Stride { get; }
    public (int H, int W) Padding { get; }
    public (int H, int W) Dilation { get; }
    public int Groups { get; }
    public int OffsetGroups { get; }
    public Tensor Weight => GetParameter("weight")!;
    public Tensor? Bias => GetParameter("bias");

    /// <summary>The offset-predicting convolution (2*G*kH*kW output channels, zero at start).</summary>
    public Conv2d ConvOffset { get; }

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 || input.Shape[1] != InChannels)
            throw new ArgumentException($"DeformConv2dPack: expected input [batch, {InChannels}, height, width], got {Shapes.Format(input.Shape)}", nameof(input));
        using var offset = ConvOffset.Forward(input);
        return DeformConvOps.DeformConv2d(input, offset, Weight, Bias, Stride, Padding, Dilation);
    }

    public override string ToString() =>
        $"DeformConv2dPack({InChannels}, {OutChannels}, kernel={KernelSize}, stride={Stride}, padding={Padding}, dilation={Dilation}, groups={Groups}, offset_groups={OffsetGroups}, bias={Bias != null})";
}

internal static class DeformChecks
{
    /// <summary>The convolution layers' channel and geometry checks, plus the offset groups.</summary>
    public static void Layer(int inChannels, int outChannels, (int H, int W) kernelSize, (int H, int W) stride, (int H, int W) padding,
        (int H, int W) dilation, int groups, int offsetGroups)
    {
        ConvChecks.Channels(inChannels, outChannels, groups);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(offsetGroups);
        if (inChannels % offsetGroups != 0)
            throw new ArgumentException($"inChannels ({inChannels}) must be divisible by offsetGroups ({offsetGroups})", nameof(offsetGroups));
        ConvChecks.Geometry(kernelSize, stride, padding, dilation);
    }
}
