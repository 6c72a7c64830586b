namespace Runtime.Nn;

/// <summary>Max over kH x kW windows of [N, C, H, W] (or [C, H, W]); padding counts as -infinity; stride defaults to the kernel size.</summary>
public sealed class MaxPool2d : UnaryModule
{
    public MaxPool2d(int kernelSize, int? stride = null, int padding = 0, int dilation = 1, bool ceilMode = false)
        : this((kernelSize, kernelSize), stride is { } s ? (s, s) : null, (padding, padding), (dilation, dilation), ceilMode) { }

    public MaxPool2d((int H, int W) kernelSize, (int H, int W)? stride, (int H, int W) padding, (int H, int W) dilation, bool ceilMode = false)
    {
        PoolChecks.Geometry(kernelSize, stride, padding);
        if (dilation.H <= 0 || dilation.W <= 0) throw new ArgumentOutOfRangeException(nameof(dilation), dilation, "dilation must be positive");
        KernelSize = kernelSize;
        Stride = stride ?? kernelSize;
        Padding = padding;
        Dilation = dilation;
        CeilMode = ceilMode;
    }

    public (int H, int W) KernelSize { get; }
    public (int H, int W) Stride { get; }
    public (int H, int W) Padding { get; }
    public (int H, int W) Dilation { get; }
    public bool CeilMode { get; }

    public override Tensor Forward(Tensor input)
    {
        PoolChecks.Input(input, nameof(MaxPool2d));
        return input.MaxPool2d(KernelSize, Stride, Padding, Dilation, CeilMode);
    }

    /// <summary>The maxima and their Int64 positions (h * W + w within each plane), as torch's return_indices = True.</summary>
    public (Tensor Values, Tensor Indices) ForwardWithIndices(Tensor input)
    {
        PoolChecks.Input(input, nameof(MaxPool2d));
        return input.MaxPool2dWithIndices(KernelSize, Stride, Padding, Dilation, CeilMode);
    }

    public override string ToString() => $"MaxPool2d(kernel={KernelSize}, stride={Stride}, padding={Padding}, dilation={Dilation}, ceil_mode={CeilMode})";
}

/// <summary>Mean over kH x kW windows; torch's ceil_mode, count_include_pad and divisor_override.</summary>
public sealed class AvgPool2d : UnaryModule
{
    public AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null)
        : this((kernelSize, kernelSize), stride is { } s ? (s, s) : null, (padding, padding), ceilMode, countIncludePad, divisorOverride) { }

    public AvgPool2d((int H, int W) kernelSize, (int H, int W)? stride, (int H, int W) padding, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null)
    {
        PoolChecks.Geometry(kernelSize, stride, padding);
        if (divisorOverride is <= 0) throw new ArgumentOutOfRangeException(nameof(divisorOverride), divisorOverride, "divisor override must be positive");
        KernelSize = kernelSize;
        Stride = stride ?? kernelSize;
        Padding = padding;
        CeilMode = ceilMode;
        CountIncludePad = countIncludePad;
        DivisorOverride = divisorOverride;
    }

    public (int H, int W) KernelSize { get; }
    public (int H, int W) Stride { get; }
    public (int H, int W) Padding { get; }
    public bool CeilMode { get; }
    public bool CountIncludePad { get; }
    public int? DivisorOverride { get; }

    public override Tensor Forward(Tensor input)
    {
        PoolChecks.Input(input, nameof(AvgPool2d));
        return input.AvgPool2d(KernelSize, Stride, Padding, CeilMode, CountIncludePad, DivisorOverride);
    }

    public override string ToString() => $"AvgPool2d(kernel={KernelSize}, stride={Stride}, padding={Padding}, ceil_mode={CeilMode}, count_include_pad={CountIncludePad})";
}

/// <summary>Averages each plane into an outH x outW grid of windows [floor(i*H/outH), ceil((i+1)*H/outH)), as torch.</summary>
public sealed class AdaptiveAvgPool2d : UnaryModule
{
    public AdaptiveAvgPool2d(int outputSize) : this((outputSize, outputSize)) { }

    public AdaptiveAvgPool2d((int H, int W) outputSize)
    {
        if (outputSize.H < 0 || outputSize.W < 0) throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, "output size must be non-negative");
        OutputSize = outputSize;
    }

    public (int H, int W) OutputSize { get; }

    public override Tensor Forward(Tensor input)
    {
        PoolChecks.Input(input, nameof(AdaptiveAvgPool2d));
        return input.AdaptiveAvgPool2d(OutputSize);
    }

    public override string ToString() => $"AdaptiveAvgPool2d(output_size={OutputSize})";
}

/// <summary>
/// torch.nn.Upsample: resizes [N, C, H, W] (or [C, H, W]) to a fixed size or by a scale factor with nearest
/// (torch's legacy "nearest") or bilinear sampling; <c>alignCorners</c> is only meaningful for bilinear.
/// The functional form is <see cref="Tensor.Interpolate((int H, int W), InterpolationMode, bool?)"/>.
/// </summary>
public sealed class Upsample : UnaryModule
{
    /// <summary>Resizes to <paramref name="size"/>.</summary>
    public Upsample((int H, int W) size, InterpolationMode mode = InterpolationMode.Nearest, bool? alignCorners = null)
    {
        if (size.H <= 0 || size.W <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "size must be positive");
        CheckAlign(mode, alignCorners);
        Size = size;
        Mode = mode;
        AlignCorners = alignCorners;
    }

    /// <summary>Resizes by <paramref name="scaleFactor"/> (output side floor(side * scale)).</summary>
    public Upsample((double H, double W) scaleFactor, InterpolationMode mode = InterpolationMode.Nearest, bool? alignCorners = null, bool recomputeScaleFactor = false)
    {
        if (!(scaleFactor.H > 0) || !(scaleFactor.W > 0) || double.IsInfinity(scaleFactor.H) || double.IsInfinity(scaleFactor.W))
            throw new ArgumentOutOfRangeException(nameof(scaleFactor), scaleFactor, "scale factor must be positive and finite");
        CheckAlign(mode, alignCorners);
        ScaleFactor = scaleFactor;
        Mode = mode;
        AlignCorners = alignCorners;
        RecomputeScaleFactor = recomputeScaleFactor;
    }

    /// <summary>Resizes by the same <paramref name="scaleFactor"/> on both axes.</summary>
    public Upsample(double scaleFactor, InterpolationMode mode = InterpolationMode.Nearest, bool? alignCorners = null)
        : this((scaleFactor, scaleFactor), mode, alignCorners) { }

    private static void CheckAlign(InterpolationMode mode, bool? alignCorners)
    {
        if (alignCorners != null && mode != InterpolationMode.Bilinear)
            throw new ArgumentException($"alignCorners can only be set for bilinear mode, got mode {mode}", nameof(alignCorners));
    }

    public (int H, int W)? Size { get; }
    public (double H, double W)? ScaleFactor { get; }
    public InterpolationMode Mode { get; }
    public bool? AlignCorners { get; }
    public bool RecomputeScaleFactor { get; }

    public override Tensor Forward(Tensor input)
    {
        PoolChecks.Input(input, nameof(Upsample));
        return Size is { } size
            ? input.Interpolate(size, Mode, AlignCorners)
            : input.Interpolate(ScaleFactor!.Value, Mode, AlignCorners, RecomputeScaleFactor);
    }

    public override string ToString() => Size is { } s ? $"Upsample(size={s}, mode={Mode})" : $"Upsample(scale_factor={ScaleFactor}, mode={Mode})";
}

/// <summary>torch.nn.Flatten: merges dims startDim..endDim (default 1..-1).</summary>
public sealed class Flatten(int startDim = 1, int endDim = -1) : UnaryModule
{
    public int StartDim { get; } = startDim;
    public int EndDim { get; } = endDim;

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return input.Flatten(StartDim, EndDim);
    }
}

internal static class PoolChecks
{
    public static void Geometry((int H, int W) kernelSize, (int H, int W)? stride, (int H, int W) padding)
    {
        if (kernelSize.H <= 0 || kernelSize.W <= 0) throw new ArgumentOutOfRangeException(nameof(kernelSize), kernelSize, "kernel size must be positive");
        if (stride is { } s && (s.H <= 0 || s.W <= 0)) throw new ArgumentOutOfRangeException(nameof(stride), stride, "stride must be positive");
        if (padding.H < 0 || padding.W < 0 || padding.H * 2 > kernelSize.H || padding.W * 2 > kernelSize.W)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, $"padding must be between 0 and half the kernel size {kernelSize}");
    }

    public static void Input(Tensor input, string layer)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank is not (3 or 4))
            throw new ArgumentException($"{layer} expects [N, C, H, W] or [C, H, W], got [{string.Join(", ", input.Shape.ToArray())}]", nameof(input));
    }
}
