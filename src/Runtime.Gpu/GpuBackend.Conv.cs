using System.Runtime.InteropServices;
using Runtime.Backends;

namespace Runtime.Gpu;

// Convolutions (Kernels/conv.k). Depthwise convolutions run direct kernels; every other geometry takes the IBackend
// composition (ConvComposition): these im2col kernels unfold a chunk of images into a column buffer, the matmul
// kernels multiply it with the weight (one batch entry per group), and col2im folds gradient columns back. Every
// kernel writes each output element from one work-item (gathers, no atomics), so results are the same every run.
public abstract partial class GpuBackend
{
    /// <summary>The ConvGeom struct of conv.k, passed by value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct ConvGeom(long N, long C, long H, long W, long OH, long OW,
        long KH, long KW, long SH, long SW, long PH, long PW, long DH, long DW);

    /// <summary>The depthwise weight-gradient kernel's work-group size (conv.k's CONV_MAX_LOCAL).</summary>
    private const int ConvReduceLocal = 256;

    private static ConvGeom Geometry(Conv2dGeometry g) =>
        new(g.Batch, g.InChannels, g.Height, g.Width, g.OutHeight, g.OutWidth,
            g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.DilationH, g.DilationW);

    private static bool IsDepthwise(Conv2dGeometry g) => g.InPerGroup == 1 && g.Groups > 1;

    private KernelFunction ConvKernel(DType t, string name)
    {
        Require(t, name);
        return Kernel("conv", GpuDialect.TypeDefines(t), name);
    }

    public void Im2Col(TensorView x, TensorView columns, Conv2dGeometry g)
    {
        lock (Gate)
        {
            Enter();
            var k = ConvKernel(x.DType, "im2col");
            LaunchItems(k, columns.NumEl, Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(columns)).I64(columns.Offset).Add(Geometry(g)));
        }
    }

    public void Col2Im(TensorView columns, TensorView x, Conv2dGeometry g)
    {
        lock (Gate)
        {
            Enter();
            var k = ConvKernel(x.DType, "col2im");
            LaunchItems(k, x.NumEl, Args().Buffer(Buf(columns)).I64(columns.Offset).Buffer(Buf(x)).I64(x.Offset).Add(Geometry(g)));
        }
    }

    public void Conv2d(TensorView x, TensorView weight, TensorView? bias, TensorView y, Conv2dGeometry g)
    {
        if (!IsDepthwise(g))
        {
            ConvComposition.Conv2d(this, x, weight, bias, y, g);
            return;
        }
        lock (Gate)
        {
            Enter();
            var k = ConvKernel(x.DType, "depthwise");
            // Without a bias the weight stands in as a buffer that is never read.
            var b = bias ?? weight;
            LaunchItems(k, y.NumEl, Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(weight)).I64(weight.Offset)
                .Buffer(Buf(b)).I64(b.Offset).I32(bias is null ? 0 : 1).Buffer(Buf(y)).I64(y.Offset).Add(Geometry(g)).I64(g.OutChannels));
        }
    }

    public void Conv2dGradInput(TensorView gy, TensorView weight, TensorView gx, Conv2dGeometry g)
    {
        if (!IsDepthwise(g))
        {
            ConvComposition.Conv2dGradInput(this, gy, weight, gx, g);
            return;
        }
        lock (Gate)
        {
            Enter();
            var k = ConvKernel(gy.DType, "depthwise_grad_input");
            LaunchItems(k, gx.NumEl, Args().Buffer(Buf(gy)).I64(gy.Offset).Buffer(Buf(weight)).I64(weight.Offset)
                .Buffer(Buf(gx)).I64(gx.Offset).Add(Geometry(g)).I64(g.OutChannels));
        }
    }

    public void Conv2dGradWeight(TensorView x, TensorView gy, TensorView gw, Conv2dGeometry g)
    {
        if (!IsDepthwise(g))
        {
            ConvComposition.Conv2dGradWeight(this, x, gy, gw, g);
            return;
        }
        lock (Gate)
        {
            Enter();
            var k = ConvKernel(gy.DType, "depthwise_grad_weight");
            // The tree needs a power-of-two group no larger than the buffer.
            int local = ConvReduceLocal;
            while (local > k.MaxLocalSize) local /= 2;
            LaunchGroups(k, gw.NumEl, local, Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(gy)).I64(gy.Offset)
                .Buffer(Buf(gw)).I64(gw.Offset).Add(Geometry(g)).I64(g.OutChannels));
        }
    }
}
