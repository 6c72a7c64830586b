using System.Runtime.InteropServices;
using Runtime.Backends;

namespace Runtime.Gpu;

// Convolution primitives (Kernels/conv.k). The products Conv2d, Conv2dGradInput and Conv2dGradWeight are the
// IBackend compositions: these kernels unfold a chunk of images into a column buffer, the matmul kernels multiply
// it with the weight (one batch entry per group), and col2im folds gradient columns back (gather, deterministic).
public abstract partial class GpuBackend
{
    /// <summary>The ConvGeom struct of conv.k, passed by value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct ConvGeom(long N, long C, long H, long W, long OH, long OW,
        long KH, long KW, long SH, long SW, long PH, long PW, long DH, long DW);

    private static ConvGeom Geometry(Conv2dGeometry g) =>
        new(g.Batch, g.InChannels, g.Height, g.Width, g.OutHeight, g.OutWidth,
            g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.DilationH, g.DilationW);

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
}
