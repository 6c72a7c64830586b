using System.Numerics;
using Runtime.Backends;

namespace Runtime.Cpu;

// Modulated deformable RoI pooling (DCNv2 section 3, mmcv's deform_roi_pool semantics; see IBackend.Roi.cs). As
// RoIAlign: each roi first becomes tables of its bilinear samples, here per bin (the offset moves each bin on its
// own), built once per call and reused for every channel; the forward and input-gradient passes run over (image,
// channel) planes, each owned by one thread that walks the image's rois in index order (deterministic, no atomics);
// the offset / mask gradients run over (image, block of 16 channels) the same way into partial sums, which are then
// added per roi in block order (a fixed cut: the same bits on any number of threads).
internal sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// The samples of one roi, bin by bin (b = i * PooledW + j): rows YStart[b] .. YStart[b + 1] (low and high rows times W,
    /// fraction, and 1 where the row position moves with the offset, 0 where it is clamped to the map), the same for
    /// columns. Samples outside the map are left out.
    /// </summary>
    private sealed class DeformRoiSamples<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public int Batch = -1;
        public T Count, GammaW, GammaH;
        public int[] YStart = [], YLow = [], YHigh = [], XStart = [], XLow = [], XHigh = [];
        public T[] Ly = [], Lx = [], Dy = [], Dx = [];

        public static DeformRoiSamples<T> Of(T* r, T* offset, DeformRoiGeometry dg, int images, int h, int w)
        {
            var g = dg.Roi;
            var box = new RoiBox<T>(r, g, images);
            T gamma = T.CreateTruncating(dg.Gamma);
            var t = new DeformRoiSamples<T> { Batch = box.Batch, Count = box.Count, GammaW = gamma * box.RoiW, GammaH = gamma * box.RoiH };
            if (box.Batch < 0) return t;
            int bins = g.PooledH * g.PooledW;
            t.YStart = new int[bins + 1];
            t.XStart = new int[bins + 1];
            var yl = new List<int>(bins * box.GridH);
            var yh = new List<int>(bins * box.GridH);
            var ly = new List<T>(bins * box.GridH);
            var dy = new List<T>(bins * box.GridH);
            var xl = new List<int>(bins * box.GridW);
            var xh = new List<int>(bins * box.GridW);
            var lx = new List<T>(bins * box.GridW);
            var dx = new List<T>(bins * box.GridW);
            for (int i = 0; i < g.PooledH; i++)
                for (int j = 0; j < g.PooledW; j++)
                {
                    int b = i * g.PooledW + j;
                    T startW = box.StartW, startH = box.StartH;
                    if (offset != null)
                    {
                        startW += t.GammaW * offset[b];
                        startH += t.GammaH * offset[bins + b];
                    }
                    t.YStart[b] = yl.Count;
                    for (int a = 0; a < box.GridH; a++)
                        Add(RoiBox<T>.Sample(startH, box.BinH, i, a, box.GridH), h, w, yl, yh, ly, dy);
                    t.XStart[b] = xl.Count;
                    for (int a = 0; a < box.GridW; a++)
                        Add(RoiBox<T>.Sample(startW, box.BinW, j, a, box.GridW), w, 1, xl, xh, lx, dx);
                }
            t.YStart[bins] = yl.Count;
            t.XStart[bins] = xl.Count;
            (t.YLow, t.YHigh, t.Ly, t.Dy) = (yl.ToArray(), yh.ToArray(), ly.ToArray(), dy.ToArray());
            (t.XLow, t.XHigh, t.Lx, t.Dx) = (xl.ToArray(), xh.ToArray(), lx.ToArray(), dx.ToArray());
            return t;
        }

        private static void Add(T v, int size, int stride, List<int> low, List<int> high, List<T> frac, List<T> moves)
        {
            if (!Corners(v, size, out int lo, out int hi, out T f)) return;
            low.Add(lo * stride);
            high.Add(hi * stride);
            frac.Add(f);
            // The position is clamped (constant in the offset) at or below 0 and from the last pixel on.
            moves.Add(v > T.Zero && lo < size - 1 ? T.One : T.Zero);
        }
    }

    /// <summary>The most samples (over all rois) the forward tabulates with their weights; beyond it (large adaptive grids) it reads the separable tables.</summary>
    private const long FusedSampleBudget = 1 << 20;

    /// <summary>
    /// The forward's tables of one roi: bin b's samples are Start[b] .. Start[b + 1], each as four plane offsets
    /// (Index[4s ..], corners low-low, low-high, high-low, high-high) and their bilinear weights times mask[b] / count.
    /// </summary>
    private sealed class FusedDeformSamples<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public int[] Start = [], Index = [];
        public T[] Weight = [];

        public static FusedDeformSamples<T> Of(DeformRoiSamples<T> t, T* mask, int bins)
        {
            var f = new FusedDeformSamples<T> { Start = new int[bins + 1] };
            if (t.Batch < 0) return f;
            int total = 0;
            for (int b = 0; b < bins; b++) total += (t.YStart[b + 1] - t.YStart[b]) * (t.XStart[b + 1] - t.XStart[b]);
            f.Index = new int[4 * total];
            f.Weight = new T[4 * total];
            int q = 0;
            for (int b = 0; b < bins; b++)
            {
                f.Start[b] = q / 4;
                T scale = (mask == null ? T.One : mask[b]) / t.Count;
                for (int a = t.YStart[b]; a < t.YStart[b + 1]; a++)
                {
                    T fy = t.Ly[a], gy = T.One - fy;
                    for (int x = t.XStart[b]; x < t.XStart[b + 1]; x++)
                    {
                        T fx = t.Lx[x], gx = T.One - fx;
                        (f.Index[q], f.Index[q + 1], f.Index[q + 2], f.Index[q + 3]) =
                            (t.YLow[a] + t.XLow[x], t.YLow[a] + t.XHigh[x], t.YHigh[a] + t.XLow[x], t.YHigh[a] + t.XHigh[x]);
                        (f.Weight[q], f.Weight[q + 1], f.Weight[q + 2], f.Weight[q + 3]) = (gy * gx * scale, gy * fx * scale, fy * gx * scale, fy * fx * scale);
                        q += 4;
                    }
                }
            }
            f.Start[bins] = q / 4;
            return f;
        }
    }

    private static DeformRoiSamples<T>[] AllDeformSamples<T>(T* rois, T* offset, int k, DeformRoiGeometry g, int images, int h, int w)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var all = new DeformRoiSamples<T>[k];
        nint pr = (nint)rois, po = (nint)offset;
        long per = 2L * g.Roi.PooledH * g.Roi.PooledW;
        CpuParallel.For(k, 16, (s, e) =>
        {
            for (long r = s; r < e; r++)
                all[r] = DeformRoiSamples<T>.Of((T*)pr + r * 5, po == 0 ? null : (T*)po + r * per, g, images, h, w);
        });
        return all;
    }

    public void DeformRoiPool(TensorView x, TensorView rois, TensorView? offset, TensorView? mask, TensorView y, DeformRoiGeometry geometry)
    {
        if (x.DType == DType.Float32) DeformRoiPoolFor<float>(x, rois, offset, mask, y, geometry);
        else DeformRoiPoolFor<double>(x, rois, offset, mask, y, geometry);
    }

    private static void DeformRoiPoolFor<T>(TensorView x, TensorView rois, TensorView? offset, TensorView? mask, TensorView y, DeformRoiGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3], k = rois.Shape[0];
        int bins = g.Roi.PooledH * g.Roi.PooledW;
        long plane = (long)h * w;
        nint px = Ptr(x), py = Ptr(y), pm = mask is TensorView m ? Ptr(m) : 0;
        var samples = AllDeformSamples((T*)Ptr(rois), offset is TensorView o ? (T*)Ptr(o) : null, k, g, n, h, w);
        var byImage = RoisByImage((T*)Ptr(rois), k, n);
        for (int r = 0; r < k; r++)
            if (samples[r].Batch < 0) new Span<T>((T*)py + (long)r * c * bins, c * bins).Clear();
        long fusedSamples = 0;
        foreach (var t in samples) fusedSamples += t.YLow.Length == 0 ? 0 : (long)t.YLow.Length * t.XLow.Length / Math.Max(bins, 1);
        if (fusedSamples <= FusedSampleBudget)
        {
            // The usual case (a fixed sampling ratio): each bin's samples as four corner offsets and weights with the
            // mask and 1 / count folded in, built once per roi, so each channel costs four loads and products per sample.
            var fused = new FusedDeformSamples<T>[k];
            CpuParallel.For(k, 16, (s, e) =>
            {
                for (long r = s; r < e; r++)
                    fused[r] = FusedDeformSamples<T>.Of(samples[r], pm == 0 ? null : (T*)pm + r * bins, bins);
            });
            CpuParallel.For((long)n * c, 1, (s, e) =>
            {
                for (long p = s; p < e; p++)
                {
                    int img = (int)(p / c), ch = (int)(p % c);
                    T* xp = (T*)px + p * plane;
                    foreach (int r in byImage[img])
                    {
                        T* yo = (T*)py + ((long)r * c + ch) * bins;
                        var f = fused[r];
                        fixed (int* start = f.Start, idx = f.Index)
                        fixed (T* wt = f.Weight)
                        {
                            for (int b = 0; b < bins; b++)
                            {
                                T acc = T.Zero;
                                for (int q = 4 * start[b], end = 4 * start[b + 1]; q < end; q += 4)
                                    acc += wt[q] * xp[idx[q]] + wt[q + 1] * xp[idx[q + 1]] + wt[q + 2] * xp[idx[q + 2]] + wt[q + 3] * xp[idx[q + 3]];
                                yo[b] = acc;
                            }
                        }
                    }
                }
            });
            return;
        }
        CpuParallel.For((long)n * c, 1, (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                int img = (int)(p / c), ch = (int)(p % c);
                T* xp = (T*)px + p * plane;
                foreach (int r in byImage[img])
                {
                    var t = samples[r];
                    T* yo = (T*)py + ((long)r * c + ch) * bins;
                    T* mk = pm == 0 ? null : (T*)pm + (long)r * bins;
                    fixed (int* ys = t.YStart, yl = t.YLow, yh = t.YHigh, xs = t.XStart, xl = t.XLow, xh = t.XHigh)
                    fixed (T* ly = t.Ly, lx = t.Lx)
                    {
                        for (int b = 0; b < bins; b++)
                        {
                            T acc = T.Zero;
                            for (int a = ys[b]; a < ys[b + 1]; a++)
                            {
                                T* lo = xp + yl[a], hi = xp + yh[a];
                                T fy = ly[a], gy = T.One - fy;
                                for (int q = xs[b]; q < xs[b + 1]; q++)
                                {
                                    T fx = lx[q], gx = T.One - fx;
                                    acc += gy * gx * lo[xl[q]] + gy * fx * lo[xh[q]] + fy * gx * hi[xl[q]] + fy * fx * hi[xh[q]];
                                }
                            }
                            T v = acc / t.Count;
                            yo[b] = mk == null ? v : mk[b] * v;
                        }
                    }
                }
            }
        });
    }

    public void DeformRoiPoolBackward(TensorView gradOutput, TensorView rois, TensorView? offset, TensorView? mask, TensorView gradInput, DeformRoiGeometry geometry)
    {
        if (gradOutput.DType == DType.Float32) DeformRoiPoolBackwardFor<float>(gradOutput, rois, offset, mask, gradInput, geometry);
        else DeformRoiPoolBackwardFor<double>(gradOutput, rois, offset, mask, gradInput, geometry);
    }

    private static void DeformRoiPoolBackwardFor<T>(TensorView gradOutput, TensorView rois, TensorView? offset, TensorView? mask, TensorView gradInput,
        DeformRoiGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = gradInput.Shape[0], c = gradInput.Shape[1], h = gradInput.Shape[2], w = gradInput.Shape[3], k = rois.Shape[0];
        int bins = g.Roi.PooledH * g.Roi.PooledW;
        long plane = (long)h * w;
        nint pg = Ptr(gradOutput), px = Ptr(gradInput), pm = mask is TensorView m ? Ptr(m) : 0;
        var samples = AllDeformSamples((T*)Ptr(rois), offset is TensorView o ? (T*)Ptr(o) : null, k, g, n, h, w);
        var byImage = RoisByImage((T*)Ptr(rois), k, n);
        CpuParallel.For((long)n * c, 1, (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                int img = (int)(p / c), ch = (int)(p % c);
                T* gx = (T*)px + p * plane;
                new Span<T>(gx, checked((int)plane)).Clear();
                foreach (int r in byImage[img])
                {
                    var t = samples[r];
                    T* go = (T*)pg + ((long)r * c + ch) * bins;
                    T* mk = pm == 0 ? null : (T*)pm + (long)r * bins;
                    fixed (int* ys = t.YStart, yl = t.YLow, yh = t.YHigh, xs = t.XStart, xl = t.XLow, xh = t.XHigh)
                    fixed (T* ly = t.Ly, lx = t.Lx)
                    {
                        for (int b = 0; b < bins; b++)
                        {
                            T gb = mk == null ? go[b] : go[b] * mk[b];
                            for (int a = ys[b]; a < ys[b + 1]; a++)
                            {
                                T* lo = gx + yl[a], hi = gx + yh[a];
                                T fy = ly[a], gy = T.One - fy;
                                for (int q = xs[b]; q < xs[b + 1]; q++)
                                {
                                    T fx = lx[q], hx = T.One - fx;
                                    lo[xl[q]] += gb * (gy * hx) / t.Count;
                                    lo[xh[q]] += gb * (gy * fx) / t.Count;
                                    hi[xl[q]] += gb * (fy * hx) / t.Count;
                                    hi[xh[q]] += gb * (fy * fx) / t.Count;
                                }
                            }
                        }
                    }
                }
            }
        });
    }

    public void DeformRoiPoolBackwardCoord(TensorView gradOutput, TensorView x, TensorView rois, TensorView? offset, TensorView? mask,
        TensorView? gradOffset, TensorView? gradMask, DeformRoiGeometry geometry)
    {
        if (x.DType == DType.Float32) DeformRoiPoolBackwardCoordFor<float>(gradOutput, x, rois, offset, mask, gradOffset, gradMask, geometry);
        else DeformRoiPoolBackwardCoordFor<double>(gradOutput, x, rois, offset, mask, gradOffset, gradMask, geometry);
    }

    /// <summary>Channels per block of the offset / mask gradient: a fixed cut, so the sums do not depend on the thread count.</summary>
    private const int CoordChannelBlock = 16;

    /// <summary>
    /// Two passes. First, one work item per (image, block of <see cref="CoordChannelBlock"/> channels) walks its planes
    /// in order and, per plane, every roi of the image (the plane stays in cache while the rois read it, as in the
    /// forward pass), adding gy times each bin's sample mean and mean slopes along x and y into that block's partial sums.
    /// Then one work item per roi adds the blocks' partial sums in block order and scales them.
    /// </summary>
    private static void DeformRoiPoolBackwardCoordFor<T>(TensorView gradOutput, TensorView x, TensorView rois, TensorView? offset, TensorView? mask,
        TensorView? gradOffset, TensorView? gradMask, DeformRoiGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3], k = rois.Shape[0];
        int bins = g.Roi.PooledH * g.Roi.PooledW;
        long plane = (long)h * w;
        nint pg = Ptr(gradOutput), px = Ptr(x), pm = mask is TensorView m ? Ptr(m) : 0;
        nint pgo = gradOffset is TensorView a ? Ptr(a) : 0, pgm = gradMask is TensorView b0 ? Ptr(b0) : 0;
        var samples = AllDeformSamples((T*)Ptr(rois), offset is TensorView o ? (T*)Ptr(o) : null, k, g, n, h, w);
        var byImage = RoisByImage((T*)Ptr(rois), k, n);
        // Where each roi sits in its image's list, and the partial sums [image][block][local roi, bin, (value, x, y)].
        var local = new int[k];
        foreach (var list in byImage)
            for (int i = 0; i < list.Length; i++) local[list[i]] = i;
        int blocks = (c + CoordChannelBlock - 1) / CoordChannelBlock;
        var partial = new T[n][][];
        for (int img = 0; img < n; img++)
        {
            partial[img] = new T[blocks][];
            for (int bl = 0; bl < blocks; bl++) partial[img][bl] = new T[byImage[img].Length * bins * 3];
        }
        CpuParallel.For((long)n * blocks, 1, (s, e) =>
        {
            for (long item = s; item < e; item++)
            {
                int img = (int)(item / blocks), bl = (int)(item % blocks);
                var rs = byImage[img];
                if (rs.Length == 0) continue;
                fixed (T* sums0 = partial[img][bl])
                {
                    for (int ch = bl * CoordChannelBlock; ch < Math.Min(c, (bl + 1) * CoordChannelBlock); ch++)
                    {
                        T* xp = (T*)px + ((long)img * c + ch) * plane;
                        for (int li = 0; li < rs.Length; li++)
                        {
                            int r = rs[li];
                            var t = samples[r];
                            T* gyr = (T*)pg + ((long)r * c + ch) * bins;
                            T* sums = sums0 + (long)li * bins * 3;
                            fixed (int* ys = t.YStart, yl = t.YLow, yh = t.YHigh, xs = t.XStart, xl = t.XLow, xh = t.XHigh)
                            fixed (T* ly = t.Ly, lx = t.Lx, dy = t.Dy, dx = t.Dx)
                            {
                                for (int b = 0; b < bins; b++)
                                {
                                    T v = T.Zero, vx = T.Zero, vy = T.Zero;
                                    for (int ai = ys[b]; ai < ys[b + 1]; ai++)
                                    {
                                        T* lo = xp + yl[ai], hi = xp + yh[ai];
                                        T fy = ly[ai], gy = T.One - fy;
                                        for (int q = xs[b]; q < xs[b + 1]; q++)
                                        {
                                            T fx = lx[q], hx = T.One - fx;
                                            T v1 = lo[xl[q]], v2 = lo[xh[q]], v3 = hi[xl[q]], v4 = hi[xh[q]];
                                            v += gy * hx * v1 + gy * fx * v2 + fy * hx * v3 + fy * fx * v4;
                                            vx += dx[q] * (gy * (v2 - v1) + fy * (v4 - v3));
                                            vy += dy[ai] * (hx * (v3 - v1) + fx * (v4 - v2));
                                        }
                                    }
                                    T gb = gyr[b];
                                    sums[3 * b] += gb * v;
                                    sums[3 * b + 1] += gb * vx;
                                    sums[3 * b + 2] += gb * vy;
                                }
                            }
                        }
                    }
                }
            }
        });
        CpuParallel.For(k, 16, (s, e) =>
        {
            for (long r = s; r < e; r++)
            {
                var t = samples[r];
                T* go = pgo == 0 ? null : (T*)pgo + r * 2 * bins;
                T* gm = pgm == 0 ? null : (T*)pgm + r * bins;
                T* mk = pm == 0 ? null : (T*)pm + r * bins;
                for (int b = 0; b < bins; b++)
                {
                    T sv = T.Zero, sx = T.Zero, sy = T.Zero;
                    if (t.Batch >= 0)
                    {
                        long at = ((long)local[r] * bins + b) * 3;
                        for (int bl = 0; bl < blocks; bl++)
                        {
                            var p = partial[t.Batch][bl];
                            sv += p[at];
                            sx += p[at + 1];
                            sy += p[at + 2];
                        }
                    }
                    T mb = mk == null ? T.One : mk[b];
                    if (go != null)
                    {
                        go[b] = t.Batch < 0 ? T.Zero : t.GammaW * mb * sx / t.Count;
                        go[bins + b] = t.Batch < 0 ? T.Zero : t.GammaH * mb * sy / t.Count;
                    }
                    if (gm != null) gm[b] = t.Batch < 0 ? T.Zero : sv / t.Count;
                }
            }
        });
    }
}
