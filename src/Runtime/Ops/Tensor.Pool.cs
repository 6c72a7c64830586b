using Runtime.Backends;

namespace Runtime;

/// <summary>How <see cref="Tensor.Interpolate((int H, int W), InterpolationMode, bool?)"/> reads between pixels.</summary>
public enum InterpolationMode
{
    /// <summary>torch's legacy "nearest": source index floor(dst * in/out) (or dst / scale factor), clamped.</summary>
    Nearest,

    /// <summary>Bilinear over the four nearest pixels, with torch's align_corners rules.</summary>
    Bilinear,
}

// Pooling and resampling over the last two dimensions of [N, C, H, W] or [C, H, W] inputs.
// Shapes, defaults and errors follow torch.nn.functional (torch 1.13).
public sealed partial class Tensor
{
    /// <summary>Max pooling with a square window (stride defaults to the kernel size).</summary>
    public Tensor MaxPool2d(int kernelSize, int? stride = null, int padding = 0, int dilation = 1, bool ceilMode = false) =>
        MaxPool2d((kernelSize, kernelSize), stride is int s ? (s, s) : null, (padding, padding), (dilation, dilation), ceilMode);

    /// <summary>Max pooling (stride null: the kernel size); padding counts as -infinity.</summary>
    public Tensor MaxPool2d((int H, int W) kernelSize, (int H, int W)? stride, (int H, int W) padding, (int H, int W) dilation, bool ceilMode = false)
    {
        var (values, indices) = MaxPool2dWithIndices(kernelSize, stride, padding, dilation, ceilMode);
        indices.Dispose();
        return values;
    }

    /// <summary>Max pooling that also returns, per output, the flat position h*W + w (Int64) of the chosen input in its plane.</summary>
    public (Tensor Values, Tensor Indices) MaxPool2dWithIndices((int H, int W) kernelSize, (int H, int W)? stride, (int H, int W) padding, (int H, int W) dilation, bool ceilMode = false)
    {
        var (lead, planes, h, w) = PoolInput("MaxPool2d");
        var win = PoolWindowOf("MaxPool2d", kernelSize, stride, padding, dilation);
        int oh = PoolOutputSize(h, win.KernelH, win.PadH, win.StrideH, win.DilationH, ceilMode);
        int ow = PoolOutputSize(w, win.KernelW, win.PadW, win.StrideW, win.DilationW, ceilMode);
        CheckPoolOutput("MaxPool2d", h, w, oh, ow);
        var outShape = PoolShape(lead, oh, ow);
        var y = Empty(outShape, DType, Device);
        var idx = Empty(outShape, DType.Int64, Device);
        if (y.NumEl > 0)
        {
            using var x = ContiguousUntracked();
            Backend.MaxPool2d(Planes(x, planes, h, w), Planes(y, planes, oh, ow), Planes(idx, planes, oh, ow), win);
        }
        var inShape = ShapeArray;
        var values = Record(y, "MaxPool2d", [this], [idx], (g, s) =>
        {
            var gx = Empty(inShape, g.DType, g.Device);
            using var gc = g.ContiguousUntracked();
            if (gx.NumEl > 0) g.Backend.MaxPool2dBackward(Planes(gc, planes, oh, ow), Planes(s[0], planes, oh, ow), Planes(gx, planes, h, w), win);
            return [gx];
        });
        return (values, idx);
    }

    /// <summary>Average pooling with a square window (stride defaults to the kernel size).</summary>
    public Tensor AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null) =>
        AvgPool2d((kernelSize, kernelSize), stride is int s ? (s, s) : null, (padding, padding), ceilMode, countIncludePad, divisorOverride);

    /// <summary>
    /// Average pooling. The divisor is <paramref name="divisorOverride"/> when given, else the window
    /// size clipped to the padded input (<paramref name="countIncludePad"/>) or to the input.
    /// </summary>
    public Tensor AvgPool2d((int H, int W) kernelSize, (int H, int W)? stride, (int H, int W) padding, bool ceilMode = false, bool countIncludePad = true, int? divisorOverride = null)
    {
        var (lead, planes, h, w) = PoolInput("AvgPool2d");
        var win = PoolWindowOf("AvgPool2d", kernelSize, stride, padding, (1, 1));
        if (divisorOverride == 0)
            throw new ArgumentOutOfRangeException(nameof(divisorOverride), divisorOverride, "AvgPool2d: divisorOverride must be non-zero");
        int div = divisorOverride ?? 0;
        int oh = PoolOutputSize(h, win.KernelH, win.PadH, win.StrideH, 1, ceilMode);
        int ow = PoolOutputSize(w, win.KernelW, win.PadW, win.StrideW, 1, ceilMode);
        CheckPoolOutput("AvgPool2d", h, w, oh, ow);
        var y = Empty(PoolShape(lead, oh, ow), DType, Device);
        if (y.NumEl > 0)
        {
            using var x = ContiguousUntracked();
            Backend.AvgPool2d(Planes(x, planes, h, w), Planes(y, planes, oh, ow), win, countIncludePad, div);
        }
        var inShape = ShapeArray;
        return Record(y, "AvgPool2d", [this], [], (g, _) =>
        {
            var gx = Empty(inShape, g.DType, g.Device);
            using var gc = g.ContiguousUntracked();
            if (gx.NumEl > 0) g.Backend.AvgPool2dBackward(Planes(gc, planes, oh, ow), Planes(gx, planes, h, w), win, countIncludePad, div);
            return [gx];
        });
    }

    /// <summary>Adaptive average pooling to a square output.</summary>
    public Tensor AdaptiveAvgPool2d(int outputSize) => AdaptiveAvgPool2d((outputSize, outputSize));

    /// <summary>Average pooling into a fixed output size: output row i averages input rows [floor(i*H/OH), ceil((i+1)*H/OH)), likewise for columns.</summary>
    public Tensor AdaptiveAvgPool2d((int H, int W) outputSize)
    {
        var (lead, planes, h, w) = PoolInput("AdaptiveAvgPool2d");
        // As torch, a zero output size gives an empty result (and a zero gradient).
        if (outputSize.H < 0 || outputSize.W < 0)
            throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, $"AdaptiveAvgPool2d: output size must be non-negative, got ({outputSize.H}, {outputSize.W})");
        var (oh, ow) = outputSize;
        var y = Empty(PoolShape(lead, oh, ow), DType, Device);
        if (y.NumEl > 0)
        {
            using var x = ContiguousUntracked();
            Backend.AdaptiveAvgPool2d(Planes(x, planes, h, w), Planes(y, planes, oh, ow));
        }
        var inShape = ShapeArray;
        return Record(y, "AdaptiveAvgPool2d", [this], [], (g, _) =>
        {
            var gx = Empty(inShape, g.DType, g.Device);
            using var gc = g.ContiguousUntracked();
            if (g.NumEl == 0) gx.Fill_(0);
            else if (gx.NumEl > 0) g.Backend.AdaptiveAvgPool2dBackward(Planes(gc, planes, oh, ow), Planes(gx, planes, h, w));
            return [gx];
        });
    }

    /// <summary>Resamples the last two dimensions to <paramref name="size"/> (torch.nn.functional.interpolate with size=...).</summary>
    public Tensor Interpolate((int H, int W) size, InterpolationMode mode = InterpolationMode.Nearest, bool? alignCorners = null)
    {
        var (lead, planes, h, w) = PoolInput("Interpolate");
        bool align = CheckAlignCorners(mode, alignCorners);
        if (size.H < 1 || size.W < 1)
            throw new ArgumentOutOfRangeException(nameof(size), size, $"Interpolate: output size must be positive, got ({size.H}, {size.W}) for input of shape {Shapes.Format(Shape)}");
        return InterpolateImpl(lead, planes, h, w, size.H, size.W, mode, align, null, null);
    }

    /// <summary>
    /// Resamples the last two dimensions by <paramref name="scaleFactor"/>: the output size is
    /// floor(in * scale). Unless <paramref name="recomputeScaleFactor"/>, the source positions use the
    /// given scale (as torch does), otherwise in/out of the rounded sizes.
    /// </summary>
    public Tensor Interpolate((double H, double W) scaleFactor, InterpolationMode mode = InterpolationMode.Nearest, bool? alignCorners = null, bool recomputeScaleFactor = false)
    {
        var (lead, planes, h, w) = PoolInput("Interpolate");
        bool align = CheckAlignCorners(mode, alignCorners);
        if (!(scaleFactor.H > 0) || !(scaleFactor.W > 0) || double.IsInfinity(scaleFactor.H) || double.IsInfinity(scaleFactor.W))
            throw new ArgumentOutOfRangeException(nameof(scaleFactor), scaleFactor, $"Interpolate: scale factors must be positive and finite, got ({scaleFactor.H}, {scaleFactor.W})");
        double oh = Math.Floor(h * scaleFactor.H), ow = Math.Floor(w * scaleFactor.W);
        if (oh < 1 || ow < 1 || oh > int.MaxValue || ow > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(scaleFactor), scaleFactor,
                $"Interpolate: scale factors ({scaleFactor.H}, {scaleFactor.W}) turn input of shape {Shapes.Format(Shape)} into output size ({oh}, {ow}); it must be positive");
        return recomputeScaleFactor
            ? InterpolateImpl(lead, planes, h, w, (int)oh, (int)ow, mode, align, null, null)
            : InterpolateImpl(lead, planes, h, w, (int)oh, (int)ow, mode, align, scaleFactor.H, scaleFactor.W);
    }

    private Tensor InterpolateImpl(int[] lead, int planes, int h, int w, int oh, int ow, InterpolationMode mode, bool align, double? scaleH, double? scaleW)
    {
        var y = Empty(PoolShape(lead, oh, ow), DType, Device);
        if (y.NumEl > 0)
        {
            using var x = ContiguousUntracked();
            Backend.Interpolate(Planes(x, planes, h, w), Planes(y, planes, oh, ow), mode, align, scaleH, scaleW);
        }
        var inShape = ShapeArray;
        return Record(y, mode == InterpolationMode.Nearest ? "UpsampleNearest2d" : "UpsampleBilinear2d", [this], [], (g, _) =>
        {
            var gx = Empty(inShape, g.DType, g.Device);
            using var gc = g.ContiguousUntracked();
            if (gx.NumEl > 0) g.Backend.InterpolateBackward(Planes(gc, planes, oh, ow), Planes(gx, planes, h, w), mode, align, scaleH, scaleW);
            return [gx];
        });
    }

    private static bool CheckAlignCorners(InterpolationMode mode, bool? alignCorners)
    {
        if (mode == InterpolationMode.Nearest && alignCorners != null)
            throw new ArgumentException("Interpolate: alignCorners can only be set with the Bilinear mode", nameof(alignCorners));
        if (mode is not (InterpolationMode.Nearest or InterpolationMode.Bilinear))
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "Interpolate: unknown interpolation mode");
        return alignCorners ?? false;
    }

    /// <summary>Checks a pooling input ([N,C,H,W] or [C,H,W], floating, non-empty planes) and returns its leading dims, plane count and size.</summary>
    private (int[] Lead, int Planes, int H, int W) PoolInput(string op)
    {
        if (Rank is not (3 or 4))
            throw new ArgumentException($"{op}: expected a 3-D [C, H, W] or 4-D [N, C, H, W] input, got shape {Shapes.Format(Shape)}", "input");
        if (!DType.IsFloating())
            throw new ArgumentException($"{op}: expected a Float32 or Float64 input, got {DType.Name()}", "input");
        for (int d = Rank == 4 ? 1 : 0; d < Rank; d++)
            if (_shape[d] == 0)
                throw new ArgumentException($"{op}: expected an input with non-zero channel and spatial sizes, got shape {Shapes.Format(Shape)}", "input");
        var lead = _shape[..^2];
        long planes = 1;
        foreach (var s in lead) planes *= s;
        if (planes > int.MaxValue)
            throw new ArgumentException($"{op}: too many planes ({planes}) in input of shape {Shapes.Format(Shape)}", "input");
        return (lead, (int)planes, _shape[^2], _shape[^1]);
    }

    private static PoolWindow PoolWindowOf(string op, (int H, int W) kernel, (int H, int W)? stride, (int H, int W) padding, (int H, int W) dilation)
    {
        if (kernel.H < 1 || kernel.W < 1)
            throw new ArgumentOutOfRangeException("kernelSize", kernel, $"{op}: kernel size must be positive, got ({kernel.H}, {kernel.W})");
        var s = stride ?? kernel;
        if (s.H < 1 || s.W < 1)
            throw new ArgumentOutOfRangeException(nameof(stride), s, $"{op}: stride must be positive, got ({s.H}, {s.W})");
        if (dilation.H < 1 || dilation.W < 1)
            throw new ArgumentOutOfRangeException(nameof(dilation), dilation, $"{op}: dilation must be positive, got ({dilation.H}, {dilation.W})");
        if (padding.H < 0 || padding.W < 0)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, $"{op}: padding must be non-negative, got ({padding.H}, {padding.W})");
        if (padding.H > kernel.H / 2 || padding.W > kernel.W / 2)
            throw new ArgumentOutOfRangeException(nameof(padding), padding,
                $"{op}: padding should be at most half of the kernel size, got padding ({padding.H}, {padding.W}) and kernel size ({kernel.H}, {kernel.W})");
        return new PoolWindow(kernel.H, kernel.W, s.H, s.W, padding.H, padding.W, dilation.H, dilation.W);
    }

    /// <summary>torch's pooling_output_shape: floor (or ceil) division, and in ceil mode the last window must start inside the input or the left padding.</summary>
    private static int PoolOutputSize(int input, int kernel, int pad, int stride, int dilation, bool ceilMode)
    {
        long span = (long)input + 2L * pad - (long)dilation * (kernel - 1) - 1 + (ceilMode ? stride - 1 : 0);
        long o = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
        if (ceilMode && (o - 1) * stride >= input + pad) o--;
        return (int)Math.Clamp(o, int.MinValue, int.MaxValue);
    }

    private void CheckPoolOutput(string op, int h, int w, int oh, int ow)
    {
        if (oh < 1 || ow < 1)
            throw new ArgumentException($"{op}: input of shape {Shapes.Format(Shape)} gives output size ({oh}, {ow}), which is too small (spatial size ({h}, {w}))", "input");
    }

    private static int[] PoolShape(int[] lead, int oh, int ow) => [.. lead, oh, ow];

    /// <summary>A contiguous tensor seen as a stack of planes [P, H, W].</summary>
    private static TensorView Planes(Tensor t, int planes, int h, int w) =>
        new(t.StorageOrThrow, t._offset, [planes, h, w], [(long)h * w, w, 1], t.DType);
}
