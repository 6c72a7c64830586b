using System.Runtime.InteropServices;
using Runtime.Backends;

namespace Runtime.Gpu;

// Modulated deformable convolution (Kernels/deform.k). The products themselves are the IBackend composition
// (DeformComposition: chunks of images, these primitives, the matmul kernels). No kernel uses float atomics: the
// unfolding and the offset/mask gradient write each element from one work-item (the latter summing the channels of
// its group in order), and the input gradient is a gather over stably sorted (target pixel, contribution) keys, so a
// backward pass gives the same bits every run.
public abstract partial class GpuBackend
{
    /// <summary>The DeformGeom struct of deform.k, passed by value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct DeformGeom(long N, long C, long H, long W, long OH, long OW,
        long KH, long KW, long SH, long SW, long PH, long PW, long DH, long DW, long OffsetGroups);

    /// <summary>Work-items deform_im2col aims for when a group's channels are cut into runs (enough to fill a large GPU).</summary>
    private const long ImColumnItems = 1L << 20;

    private static DeformGeom Geometry(DeformGeometry dg)
    {
        var g = dg.Conv;
        return new(g.Batch, g.InChannels, g.Height, g.Width, g.OutHeight, g.OutWidth,
            g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.DilationH, g.DilationW, dg.OffsetGroups);
    }

    private KernelFunction DeformKernel(DType t, string name)
    {
        Require(t, name);
        return Kernel("deform", GpuDialect.TypeDefines(t), name);
    }

    public void DeformIm2Col(TensorView x, TensorView offset, TensorView? mask, TensorView columns, DeformGeometry g)
    {
        lock (Gate)
        {
            Enter();
            var k = DeformKernel(x.DType, "deform_im2col");
            // Without a mask the offset stands in as a buffer that is never read.
            var m = mask ?? offset;
            // Runs of channels per work-item: the whole group when there are enough samples to fill the device, else cut
            // so that about ImColumnItems work-items run (each recomputes its sample's weights, which is cheap).
            long samples = (long)g.MaskChannels * g.Conv.Batch * g.Conv.OutPlane;
            int cpg = g.ChannelsPerOffsetGroup;
            long runs = Math.Clamp(ImColumnItems / Math.Max(1, samples), 1, cpg);
            long chunk = (cpg + runs - 1) / runs;
            LaunchItems(k, samples * ((cpg + chunk - 1) / chunk), Args()
                .Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(offset)).I64(offset.Offset).Buffer(Buf(m)).I64(m.Offset).I32(mask is null ? 0 : 1)
                .Buffer(Buf(columns)).I64(columns.Offset).Add(Geometry(g)).I64(chunk));
        }
    }

    public void DeformCol2Im(TensorView columns, TensorView offset, TensorView? mask, TensorView gx, DeformGeometry g)
    {
        var c = g.Conv;
        long rows = (long)c.Batch * g.OffsetGroups, pairs = (long)g.Taps * c.OutPlane * 4;
        lock (Gate)
        {
            Enter();
            using var keys = new GpuBuffer(this, Math.Max(1, rows * pairs * 8));
            using var sorted = new GpuBuffer(this, Math.Max(1, rows * pairs * 8));
            using var order = new GpuBuffer(this, Math.Max(1, rows * pairs * 8));
            var kk = DeformKernel(gx.DType, "deform_keys");
            LaunchItems(kk, rows * pairs, Args().Buffer(Buf(offset)).I64(offset.Offset).Buffer(keys.Handle).Add(Geometry(g)));
            SortRaw(DType.Int64, keys.Handle, 0, sorted.Handle, 0, order.Handle, 0, rows, pairs, descending: false);
            var m = mask ?? offset;
            var k = DeformKernel(gx.DType, "deform_col2im_sorted");
            LaunchItems(k, gx.NumEl, Args().Buffer(Buf(columns)).I64(columns.Offset).Buffer(Buf(offset)).I64(offset.Offset)
                .Buffer(Buf(m)).I64(m.Offset).I32(mask is null ? 0 : 1).Buffer(sorted.Handle).Buffer(order.Handle)
                .Buffer(Buf(gx)).I64(gx.Offset).Add(Geometry(g)));
        }
    }

    public void DeformCol2ImCoord(TensorView columns, TensorView x, TensorView offset, TensorView? mask, TensorView gOffset, TensorView? gMask, DeformGeometry g)
    {
        lock (Gate)
        {
            Enter();
            var k = DeformKernel(x.DType, "deform_coord");
            var m = mask ?? offset;
            bool wantMask = mask is not null && gMask is not null;
            var gm = wantMask ? gMask!.Value : gOffset;
            LaunchItems(k, (long)g.Conv.Batch * g.MaskChannels * g.Conv.OutPlane, Args()
                .Buffer(Buf(columns)).I64(columns.Offset).Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(offset)).I64(offset.Offset)
                .Buffer(Buf(m)).I64(m.Offset).I32(mask is null ? 0 : 1).Buffer(Buf(gOffset)).I64(gOffset.Offset)
                .Buffer(Buf(gm)).I64(gm.Offset).I32(wantMask ? 1 : 0).Add(Geometry(g)));
        }
    }
}
