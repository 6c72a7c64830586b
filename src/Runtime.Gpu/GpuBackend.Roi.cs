using System.Runtime.InteropServices;
using Runtime.Backends;

namespace Runtime.Gpu;

// RoIAlign and RoIPool (Kernels/roi.k). Forward: one work-item per output element. Backward: one
// work-item per input element, gathering from the rois listed for its 16x16 tile. The tile lists are
// built here from a host copy of the rois (K x 5 numbers): each roi, in index order, is entered in
// every tile of its image that its footprint (the pixels any of its samples or bins can touch, widened
// by two pixels) overlaps, so every list is in roi order and the sums have a fixed order.
public abstract partial class GpuBackend
{
    /// <summary>The RoiGeom struct of roi.k, passed by value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct RoiGeom(long N, long C, long H, long W, long K, long PH, long PW, long Sampling, long Aligned, long TilesH, long TilesW);

    private const int RoiTile = 16;

    private static RoiGeom RoiGeometryOf(int[] features, int k, RoiGeometry g) =>
        new(features[0], features[1], features[2], features[3], k, g.PooledH, g.PooledW, g.SamplingRatio, g.Aligned ? 1 : 0,
            (features[2] + RoiTile - 1) / RoiTile, (features[3] + RoiTile - 1) / RoiTile);

    private KernelArgs Scale(KernelArgs a, DType t, double scale) => t == DType.Float32 ? a.Add((float)scale) : a.Add(scale);

    public void RoiAlign(TensorView x, TensorView rois, TensorView y, RoiGeometry geometry)
    {
        lock (Gate)
        {
            Enter();
            Require(x.DType, "RoiAlign");
            var k = Kernel("roi", GpuDialect.TypeDefines(x.DType), "roi_align");
            var args = Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(rois)).I64(rois.Offset).Buffer(Buf(y)).I64(y.Offset)
                .Add(RoiGeometryOf(x.Shape, rois.Shape[0], geometry));
            LaunchItems(k, y.NumEl, Scale(args, x.DType, geometry.SpatialScale));
        }
    }

    public void RoiPool(TensorView x, TensorView rois, TensorView y, TensorView argmax, RoiGeometry geometry)
    {
        lock (Gate)
        {
            Enter();
            Require(x.DType, "RoiPool");
            var k = Kernel("roi", GpuDialect.TypeDefines(x.DType), "roi_pool");
            var args = Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(rois)).I64(rois.Offset).Buffer(Buf(y)).I64(y.Offset)
                .Buffer(Buf(argmax)).I64(argmax.Offset).Add(RoiGeometryOf(x.Shape, rois.Shape[0], geometry));
            LaunchItems(k, y.NumEl, Scale(args, x.DType, geometry.SpatialScale));
        }
    }

    public void RoiAlignBackward(TensorView gradOutput, TensorView rois, TensorView gradInput, RoiGeometry geometry) =>
        RoiBackward("roi_align_backward", gradOutput, rois, null, gradInput, geometry);

    public void RoiPoolBackward(TensorView gradOutput, TensorView rois, TensorView argmax, TensorView gradInput, RoiGeometry geometry) =>
        RoiBackward("roi_pool_backward", gradOutput, rois, argmax, gradInput, geometry);

    private void RoiBackward(string name, TensorView gradOutput, TensorView rois, TensorView? argmax, TensorView gradInput, RoiGeometry geometry)
    {
        lock (Gate)
        {
            Enter();
            Require(gradOutput.DType, name);
            var geom = RoiGeometryOf(gradInput.Shape, rois.Shape[0], geometry);
            var (start, list) = RoiTileLists(ReadRois(rois), gradInput.Shape, geom, geometry, pool: argmax != null);
            using var startBuf = new GpuBuffer(this, start.Length * 4L);
            using var listBuf = new GpuBuffer(this, Math.Max(1, list.Length) * 4L);
            RawUpload(MemoryMarshal.AsBytes(start.AsSpan()), startBuf.Handle, 0);
            if (list.Length > 0) RawUpload(MemoryMarshal.AsBytes(list.AsSpan()), listBuf.Handle, 0);
            var k = Kernel("roi", GpuDialect.TypeDefines(gradOutput.DType), name);
            var args = Args().Buffer(Buf(gradOutput)).I64(gradOutput.Offset).Buffer(Buf(rois)).I64(rois.Offset);
            if (argmax is TensorView a) args.Buffer(Buf(a)).I64(a.Offset);
            args.Buffer(startBuf.Handle).Buffer(listBuf.Handle).Buffer(Buf(gradInput)).I64(gradInput.Offset).Add(geom);
            LaunchItems(k, gradInput.NumEl, Scale(args, gradOutput.DType, geometry.SpatialScale));
        }
    }

    /// <summary>The rois (or any contiguous float view) as doubles, read back to the host.</summary>
    private double[] ReadRois(TensorView rois)
    {
        int es = rois.DType.SizeOf();
        var bytes = new byte[rois.NumEl * es];
        if (bytes.Length > 0) RawDownload(Buf(rois), rois.Offset * es, bytes);
        return rois.DType == DType.Float32
            ? MemoryMarshal.Cast<byte, float>(bytes).ToArray().Select(v => (double)v).ToArray()
            : MemoryMarshal.Cast<byte, double>(bytes).ToArray();
    }

    // Modulated deformable RoI pooling. The same geometry struct, plus gamma after the scale; the optional offset and
    // mask stand in as unread buffers (flag 0) when absent.
    private KernelArgs DeformRoiArgs(KernelArgs a, TensorView? offset, TensorView? mask, TensorView fallback)
    {
        var o = offset ?? fallback;
        var m = mask ?? fallback;
        return a.Buffer(Buf(o)).I64(o.Offset).I32(offset is null ? 0 : 1).Buffer(Buf(m)).I64(m.Offset).I32(mask is null ? 0 : 1);
    }

    private KernelArgs ScaleGamma(KernelArgs a, DType t, DeformRoiGeometry g) =>
        t == DType.Float32 ? a.Add((float)g.Roi.SpatialScale).Add((float)g.Gamma) : a.Add(g.Roi.SpatialScale).Add(g.Gamma);

    public void DeformRoiPool(TensorView x, TensorView rois, TensorView? offset, TensorView? mask, TensorView y, DeformRoiGeometry geometry)
    {
        lock (Gate)
        {
            Enter();
            Require(x.DType, "DeformRoiPool");
            var k = Kernel("roi", GpuDialect.TypeDefines(x.DType), "deform_roi_pool");
            var args = DeformRoiArgs(Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(rois)).I64(rois.Offset), offset, mask, x)
                .Buffer(Buf(y)).I64(y.Offset).Add(RoiGeometryOf(x.Shape, rois.Shape[0], geometry.Roi));
            LaunchItems(k, y.NumEl, ScaleGamma(args, x.DType, geometry));
        }
    }

    public void DeformRoiPoolBackward(TensorView gradOutput, TensorView rois, TensorView? offset, TensorView? mask, TensorView gradInput, DeformRoiGeometry geometry)
    {
        lock (Gate)
        {
            Enter();
            Require(gradOutput.DType, "DeformRoiPoolBackward");
            var geom = RoiGeometryOf(gradInput.Shape, rois.Shape[0], geometry.Roi);
            var shifts = offset is TensorView o ? ReadRois(o) : null;
            var (start, list) = RoiTileLists(ReadRois(rois), gradInput.Shape, geom, geometry.Roi, pool: false, shifts, geometry.Gamma);
            using var startBuf = new GpuBuffer(this, start.Length * 4L);
            using var listBuf = new GpuBuffer(this, Math.Max(1, list.Length) * 4L);
            RawUpload(MemoryMarshal.AsBytes(start.AsSpan()), startBuf.Handle, 0);
            if (list.Length > 0) RawUpload(MemoryMarshal.AsBytes(list.AsSpan()), listBuf.Handle, 0);
            var k = Kernel("roi", GpuDialect.TypeDefines(gradOutput.DType), "deform_roi_pool_backward");
            var args = DeformRoiArgs(Args().Buffer(Buf(gradOutput)).I64(gradOutput.Offset).Buffer(Buf(rois)).I64(rois.Offset), offset, mask, gradOutput)
                .Buffer(startBuf.Handle).Buffer(listBuf.Handle).Buffer(Buf(gradInput)).I64(gradInput.Offset).Add(geom);
            LaunchItems(k, gradInput.NumEl, ScaleGamma(args, gradOutput.DType, geometry));
        }
    }

    public void DeformRoiPoolBackwardCoord(TensorView gradOutput, TensorView x, TensorView rois, TensorView? offset, TensorView? mask,
        TensorView? gradOffset, TensorView? gradMask, DeformRoiGeometry geometry)
    {
        if (gradOffset is null && gradMask is null) return;
        lock (Gate)
        {
            Enter();
            Require(x.DType, "DeformRoiPoolBackwardCoord");
            var k = Kernel("roi", GpuDialect.TypeDefines(x.DType), "deform_roi_pool_coord");
            var go = gradOffset ?? gradMask!.Value;
            var gm = gradMask ?? gradOffset!.Value;
            var args = DeformRoiArgs(Args().Buffer(Buf(gradOutput)).I64(gradOutput.Offset).Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(rois)).I64(rois.Offset),
                    offset, mask, x)
                .Buffer(Buf(go)).I64(go.Offset).I32(gradOffset is null ? 0 : 1).Buffer(Buf(gm)).I64(gm.Offset).I32(gradMask is null ? 0 : 1)
                .Add(RoiGeometryOf(x.Shape, rois.Shape[0], geometry.Roi));
            LaunchItems(k, (long)rois.Shape[0] * geometry.Roi.PooledH * geometry.Roi.PooledW, ScaleGamma(args, x.DType, geometry));
        }
    }

    /// <summary>
    /// CSR lists of the rois whose footprint overlaps each tile: the rois of tile t are
    /// list[start[t] .. start[t + 1]), in index order. Tiles are numbered (image, tile row, tile column).
    /// </summary>
    /// <remarks>
    /// With <paramref name="offsets"/> (deformable RoI pooling, [K, 2, PH, PW]) a roi's footprint is widened by the
    /// extreme shifts of its bins, <paramref name="gamma"/> * roi size * offset (non-finite offsets move samples off
    /// the map and are left out).
    /// </remarks>
    private static (int[] Start, int[] List) RoiTileLists(double[] rois, int[] features, RoiGeom geom, RoiGeometry g, bool pool,
        double[]? offsets = null, double gamma = 0)
    {
        int n = features[0], h = features[2], w = features[3];
        int k = rois.Length / 5;
        long tilesPerImage = geom.TilesH * geom.TilesW;
        var start = new int[checked((int)(n * tilesPerImage + 1))];
        var rects = new (int Image, int R0, int R1, int C0, int C1)[k];
        for (int i = 0; i < k; i++)
        {
            double b = rois[i * 5];
            rects[i] = (-1, 0, -1, 0, -1);
            if (!(b >= 0 && b < n)) continue;
            var (dy0, dy1) = offsets is null ? (0.0, 0.0) : Shifts(offsets, i, 1, rois[i * 5 + 2], rois[i * 5 + 4], g, gamma);
            var (dx0, dx1) = offsets is null ? (0.0, 0.0) : Shifts(offsets, i, 0, rois[i * 5 + 1], rois[i * 5 + 3], g, gamma);
            var (r0, r1) = Footprint(rois[i * 5 + 2], rois[i * 5 + 4], g, pool, h, dy0, dy1);
            var (c0, c1) = Footprint(rois[i * 5 + 1], rois[i * 5 + 3], g, pool, w, dx0, dx1);
            if (r0 > r1 || c0 > c1) continue;
            rects[i] = ((int)b, r0 / RoiTile, r1 / RoiTile, c0 / RoiTile, c1 / RoiTile);
        }
        long total = 0;
        foreach (var (img, r0, r1, c0, c1) in rects)
        {
            if (img < 0) continue;
            for (int tr = r0; tr <= r1; tr++)
                for (int tc = c0; tc <= c1; tc++)
                    start[img * tilesPerImage + tr * geom.TilesW + tc + 1]++;
            total += (long)(r1 - r0 + 1) * (c1 - c0 + 1);
        }
        if (total > int.MaxValue) throw new NotSupportedException($"RoI backward: {total} (roi, tile) pairs, more than 32-bit lists hold");
        for (int t = 1; t < start.Length; t++) start[t] += start[t - 1];
        var list = new int[total];
        var fill = start.ToArray();
        for (int i = 0; i < k; i++)
        {
            var (img, r0, r1, c0, c1) = rects[i];
            if (img < 0) continue;
            for (int tr = r0; tr <= r1; tr++)
                for (int tc = c0; tc <= c1; tc++)
                    list[fill[img * tilesPerImage + tr * geom.TilesW + tc]++] = i;
        }
        return (start, list);
    }

    /// <summary>The smallest and largest shift of roi k's bins along one axis (channel 0: x, 1: y), finite ones only.</summary>
    private static (double Min, double Max) Shifts(double[] offsets, int k, int channel, double a, double b, RoiGeometry g, double gamma)
    {
        int bins = g.PooledH * g.PooledW;
        double off = g.Aligned ? 0.5 : 0;
        double size = (b * g.SpatialScale - off) - (a * g.SpatialScale - off);
        if (!g.Aligned) size = Math.Max(size, 1);
        double min = 0, max = 0;
        for (int e = 0; e < bins; e++)
        {
            double s = gamma * size * offsets[(long)k * 2 * bins + channel * bins + e];
            if (!double.IsFinite(s)) continue;
            min = Math.Min(min, s);
            max = Math.Max(max, s);
        }
        return (min, max);
    }

    /// <summary>
    /// The pixels [first, last] of one axis that a roi from coordinate a to b can touch: RoIAlign's samples
    /// lie between its start and end, and each reaches the pixels on either side; RoIPool's bins cover
    /// the rounded roi. Two pixels of margin absorb the element type's rounding.
    /// </summary>
    private static (int First, int Last) Footprint(double a, double b, RoiGeometry g, bool pool, int size, double shiftMin = 0, double shiftMax = 0)
    {
        double s = g.SpatialScale, lo, hi;
        if (pool)
        {
            lo = Math.Round(a * s, MidpointRounding.AwayFromZero);
            hi = lo + Math.Max(Math.Round(b * s, MidpointRounding.AwayFromZero) - lo + 1, 1);
        }
        else
        {
            double off = g.Aligned ? 0.5 : 0;
            double start = a * s - off, end = b * s - off;
            if (!g.Aligned) end = start + Math.Max(end - start, 1);
            lo = Math.Min(start, end) + shiftMin;
            hi = Math.Max(start, end) + shiftMax;
        }
        lo = Math.Floor(lo) - 2;
        hi = Math.Ceiling(hi) + 2;
        if (!(lo <= size - 1) || !(hi >= 0)) return (1, 0);
        return ((int)Math.Max(lo, 0), (int)Math.Min(hi, size - 1));
    }
}
