using Runtime.Backends;

namespace Runtime.Gpu;

// Non-maximum suppression (Kernels/nms.k): a bitmask of which later box each box would suppress,
// built by blocks of 64 x 64 boxes in parallel, then one work-group walks it in order.
public abstract partial class GpuBackend
{
    private const int NmsBlock = 64;

    public long Nms(TensorView boxes, TensorView? classes, TensorView keep, double iouThreshold)
    {
        long n = boxes.Shape[0];
        if (n == 0) return 0;
        var t = boxes.DType;
        long blocks = (n + NmsBlock - 1) / NmsBlock;
        var count = new byte[8];
        lock (Gate)
        {
            Enter();
            Require(t, "Nms");
            var defines = GpuDialect.TypeDefines(t);
            var maskKernel = Kernel("nms", defines, "nms_mask");
            var reduceKernel = Kernel("nms", defines, "nms_reduce");
            using var mask = new GpuBuffer(this, n * blocks * 8);
            using var removed = new GpuBuffer(this, blocks * 8);
            using var total = new GpuBuffer(this, 8);
            var args = Args().Buffer(Buf(boxes)).I64(boxes.Offset);
            if (classes is TensorView c) args.Buffer(Buf(c)).I64(c.Offset).I32(1);
            else args.Buffer(Buf(boxes)).I64(0).I32(0);
            args.I64(n).I64(blocks);
            if (t == DType.Float32) args.Add(NmsThreshold.Below(iouThreshold));
            else args.Add(iouThreshold);
            args.Buffer(mask.Handle);
            LaunchGroups(maskKernel, blocks * blocks, NmsBlock, args);
            LaunchGroups(reduceKernel, 1, NmsBlock, Args().Buffer(mask.Handle).I64(n).I64(blocks).Buffer(removed.Handle)
                .Buffer(Buf(keep)).I64(keep.Offset).Buffer(total.Handle));
            RawDownload(total.Handle, 0, count);
        }
        return BitConverter.ToInt64(count);
    }
}
