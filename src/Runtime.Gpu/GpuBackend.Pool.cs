using System.Runtime.InteropServices;
using Runtime.Backends;

namespace Runtime.Gpu;

// Pooling and resampling (Kernels/pool.k). The views are contiguous [P, H, W] planes; forward kernels
// run one work-item per output, backward kernels one per input element (gathers, deterministic).
public abstract partial class GpuBackend
{
    /// <summary>The PoolGeom struct of pool.k, passed by value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct PoolGeom(long Planes, long H, long W, long OH, long OW,
        long KH, long KW, long SH, long SW, long PH, long PW, long DH, long DW);

    private static PoolGeom Geometry(TensorView input, TensorView output, PoolWindow k) =>
        new(input.Shape[0], input.Shape[1], input.Shape[2], output.Shape[1], output.Shape[2],
            k.KernelH, k.KernelW, k.StrideH, k.StrideW, k.PadH, k.PadW, k.DilationH, k.DilationW);

    private KernelFunction PoolKernel(DType t, string name)
    {
        Require(t, name);
        return Kernel("pool", GpuDialect.TypeDefines(t), name);
    }

    public void MaxPool2d(TensorView x, TensorView y, TensorView indices, PoolWindow window)
    {
        lock (Gate)
        {
            Enter();
            var k = PoolKernel(x.DType, "max_pool");
            LaunchItems(k, y.NumEl, Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(y)).I64(y.Offset).Buffer(Buf(indices)).I64(indices.Offset)
                .Add(Geometry(x, y, window)));
        }
    }

    public void MaxPool2dBackward(TensorView gradOutput, TensorView indices, TensorView gradInput, PoolWindow window)
    {
        lock (Gate)
        {
            Enter();
            var k = PoolKernel(gradOutput.DType, "max_pool_backward");
            LaunchItems(k, gradInput.NumEl, Args().Buffer(Buf(gradOutput)).I64(gradOutput.Offset).Buffer(Buf(indices)).I64(indices.Offset)
                .Buffer(Buf(gradInput)).I64(gradInput.Offset).Add(Geometry(gradInput, gradOutput, window)));
        }
    }

    public void AvgPool2d(TensorView x, TensorView y, PoolWindow window, bool countIncludePad, int divisorOverride)
    {
        lock (Gate)
        {
            Enter();
            var k = PoolKernel(x.DType, "avg_pool");
            LaunchItems(k, y.NumEl, Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(y)).I64(y.Offset)
                .Add(Geometry(x, y, window)).I32(countIncludePad ? 1 : 0).I64(divisorOverride));
        }
    }

    public void AvgPool2dBackward(TensorView gradOutput, TensorView gradInput, PoolWindow window, bool countIncludePad, int divisorOverride)
    {
        lock (Gate)
        {
            Enter();
            var k = PoolKernel(gradOutput.DType, "avg_pool_backward");
            LaunchItems(k, gradInput.NumEl, Args().Buffer(Buf(gradOutput)).I64(gradOutput.Offset).Buffer(Buf(gradInput)).I64(gradInput.Offset)
                .Add(Geometry(gradInput, gradOutput, window)).I32(countIncludePad ? 1 : 0).I64(divisorOverride));
        }
    }

    public void AdaptiveAvgPool2d(TensorView x, TensorView y) => PlaneKernel("adaptive_avg_pool", x, y, y.NumEl, null);

    public void AdaptiveAvgPool2dBackward(TensorView gradOutput, TensorView gradInput) =>
        PlaneKernel("adaptive_avg_pool_backward", gradOutput, gradInput, gradInput.NumEl, null);

    public void Interpolate(TensorView x, TensorView y, InterpolationMode mode, bool alignCorners, double? scaleH, double? scaleW) =>
        PlaneKernel(mode == InterpolationMode.Nearest ? "upsample_nearest" : "upsample_bilinear", x, y, y.NumEl,
            a => ResampleArgs(a, x.DType, x.Shape, y.Shape, mode, alignCorners, scaleH, scaleW));

    public void InterpolateBackward(TensorView gradOutput, TensorView gradInput, InterpolationMode mode, bool alignCorners, double? scaleH, double? scaleW) =>
        PlaneKernel(mode == InterpolationMode.Nearest ? "upsample_nearest_backward" : "upsample_bilinear_backward", gradOutput, gradInput, gradInput.NumEl,
            a => ResampleArgs(a, gradOutput.DType, gradInput.Shape, gradOutput.Shape, mode, alignCorners, scaleH, scaleW));

    /// <summary>Launches a kernel taking (src, offset, dst, offset, planes, h, w, oh, ow, extra...) over <paramref name="items"/> items.</summary>
    private void PlaneKernel(string name, TensorView src, TensorView dst, long items, Action<KernelArgs>? extra)
    {
        // Forward kernels read the input planes, backward ones write them: the input shape is the larger-named side.
        bool backward = name.EndsWith("_backward", StringComparison.Ordinal);
        var input = backward ? dst : src;
        var output = backward ? src : dst;
        lock (Gate)
        {
            Enter();
            var k = PoolKernel(src.DType, name);
            var args = Args().Buffer(Buf(src)).I64(src.Offset).Buffer(Buf(dst)).I64(dst.Offset)
                .I64(input.Shape[0]).I64(input.Shape[1]).I64(input.Shape[2]).I64(output.Shape[1]).I64(output.Shape[2]);
            extra?.Invoke(args);
            LaunchItems(k, items, args);
        }
    }

    /// <summary>The scale arguments of the resampling kernels, computed as torch does (see CpuBackend.Pool).</summary>
    private static void ResampleArgs(KernelArgs a, DType t, int[] input, int[] output, InterpolationMode mode, bool alignCorners, double? scaleH, double? scaleW)
    {
        if (mode == InterpolationMode.Nearest)
        {
            a.Add(NearestScale(input[1], output[1], scaleH)).Add(NearestScale(input[2], output[2], scaleW));
            return;
        }
        a.I32(alignCorners ? 1 : 0);
        if (t == DType.Float32)
            a.Add((float)LinearRatio(input[1], output[1], alignCorners, scaleH, f32: true)).Add((float)LinearRatio(input[2], output[2], alignCorners, scaleW, f32: true));
        else
            a.Add(LinearRatio(input[1], output[1], alignCorners, scaleH, f32: false)).Add(LinearRatio(input[2], output[2], alignCorners, scaleW, f32: false));
    }

    /// <summary>torch's float nearest ratio: 1/scale when a scale was given, else in/out.</summary>
    private static float NearestScale(int input, int output, double? scale) =>
        scale is double s && s > 0 ? (float)(1.0 / s) : (float)input / output;

    /// <summary>torch's bilinear ratio, in the element type.</summary>
    private static double LinearRatio(int input, int output, bool alignCorners, double? scale, bool f32)
    {
        if (alignCorners) return output > 1 ? f32 ? (float)(input - 1) / (output - 1) : (double)(input - 1) / (output - 1) : 0;
        if (scale is double s && s > 0) return f32 ? (float)(1.0 / s) : 1.0 / s;
        return f32 ? (float)input / output : (double)input / output;
    }
}
