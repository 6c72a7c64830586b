using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Runtime.Backends;

namespace Runtime.Cpu;

// RoIAlign and RoIPool (torchvision 0.14 semantics, see IBackend.Roi.cs). RoIAlign first turns each
// roi into tables of its bilinear samples (corner rows and columns with their fractions, samples outside
// the map left out, grouped by bin), built once per call and reused for every channel. All four passes
// run over (image, channel) planes, each plane handled by one thread for every roi of its image: the
// plane stays in cache while the rois read it, and in the backward passes each thread owns whole
// input-gradient planes and adds the rois in index order, so the result does not depend on the number
// of threads (deterministic).
internal sealed unsafe partial class CpuBackend
{
    /// <summary>The sampling grid of one roi on the feature map, in the element type as torchvision computes it.</summary>
    private readonly struct RoiBox<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public readonly int Batch;
        public readonly T StartH, StartW, BinH, BinW;
        /// <summary>The roi's size on the map (at least 1 when not aligned).</summary>
        public readonly T RoiH, RoiW;
        public readonly int GridH, GridW;
        public readonly T Count;

        public RoiBox(T* r, RoiGeometry g, int batches)
        {
            double b = double.CreateTruncating(r[0]);
            Batch = b >= 0 && b < batches ? (int)b : -1;
            T scale = T.CreateTruncating(g.SpatialScale);
            T offset = g.Aligned ? T.CreateTruncating(0.5) : T.Zero;
            StartW = r[1] * scale - offset;
            StartH = r[2] * scale - offset;
            T w = r[3] * scale - offset - StartW, h = r[4] * scale - offset - StartH;
            if (!g.Aligned)
            {
                w = T.Max(w, T.One);
                h = T.Max(h, T.One);
            }
            RoiH = h;
            RoiW = w;
            BinH = h / T.CreateTruncating(g.PooledH);
            BinW = w / T.CreateTruncating(g.PooledW);
            GridH = g.SamplingRatio > 0 ? g.SamplingRatio : int.CreateSaturating(T.Ceiling(h / T.CreateTruncating(g.PooledH)));
            GridW = g.SamplingRatio > 0 ? g.SamplingRatio : int.CreateSaturating(T.Ceiling(w / T.CreateTruncating(g.PooledW)));
            Count = T.CreateTruncating(Math.Max((long)GridH * GridW, 1));
        }

        /// <summary>Sample <paramref name="i"/> of bin <paramref name="bin"/> on one axis: start + bin*size + (i + 0.5)*size/grid.</summary>
        public static T Sample(T start, T size, int bin, int i, int grid) =>
            start + T.CreateTruncating(bin) * size + T.CreateTruncating(i + 0.5f) * size / T.CreateTruncating(grid);
    }

    /// <summary>The bilinear corners of a sample, or false when it lies outside [-1, size] on this axis (or is NaN).</summary>
    private static bool Corners<T>(T v, int size, out int low, out int high, out T frac) where T : unmanaged, IFloatingPointIeee754<T>
    {
        low = high = 0;
        frac = T.Zero;
        if (!(v >= -T.One && v <= T.CreateTruncating(size))) return false;
        if (v <= T.Zero) v = T.Zero;
        low = int.CreateTruncating(v);
        if (low >= size - 1)
        {
            high = low = size - 1;
            v = T.CreateTruncating(low);
        }
        else high = low + 1;
        frac = v - T.CreateTruncating(low);
        return true;
    }

    /// <summary>
    /// The bilinear samples of one roi, axis by axis (a sample's corners and weights are products of its
    /// row and column parts): for bin row i, the valid samples yStart[i] .. yStart[i + 1] with their low
    /// and high rows (times W) and fractions; the same for bin columns. Samples outside the map are left out.
    /// </summary>
    private sealed class RoiSamples<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public int Batch = -1;
        public T Count;
        public int[] YStart = [], YLow = [], YHigh = [], XStart = [], XLow = [], XHigh = [];
        public T[] Ly = [], Lx = [];

        public static RoiSamples<T> Of(T* r, RoiGeometry g, int images, int h, int w)
        {
            var box = new RoiBox<T>(r, g, images);
            var t = new RoiSamples<T> { Batch = box.Batch, Count = box.Count };
            if (box.Batch < 0) return t;
            (t.YStart, t.YLow, t.YHigh, t.Ly) = Axis(box.StartH, box.BinH, g.PooledH, box.GridH, h, w);
            (t.XStart, t.XLow, t.XHigh, t.Lx) = Axis(box.StartW, box.BinW, g.PooledW, box.GridW, w, 1);
            return t;
        }

        private static (int[], int[], int[], T[]) Axis(T start, T bin, int bins, int grid, int size, int stride)
        {
            int gr = Math.Max(grid, 0);
            var first = new int[bins + 1];
            var low = new List<int>(bins * gr);
            var high = new List<int>(bins * gr);
            var frac = new List<T>(bins * gr);
            for (int i = 0; i < bins; i++)
            {
                first[i] = low.Count;
                for (int a = 0; a < gr; a++)
                {
                    if (!Corners(RoiBox<T>.Sample(start, bin, i, a, grid), size, out int lo, out int hi, out T f)) continue;
                    low.Add(lo * stride);
                    high.Add(hi * stride);
                    frac.Add(f);
                }
            }
            first[bins] = low.Count;
            return (first, low.ToArray(), high.ToArray(), frac.ToArray());
        }
    }

    /// <summary>The sample tables of every roi, built in parallel.</summary>
    private static RoiSamples<T>[] AllSamples<T>(T* rois, int k, RoiGeometry g, int images, int h, int w) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var all = new RoiSamples<T>[k];
        nint pr = (nint)rois;
        CpuParallel.For(k, 16, (s, e) =>
        {
            for (long r = s; r < e; r++) all[r] = RoiSamples<T>.Of((T*)pr + r * 5, g, images, h, w);
        });
        return all;
    }

    public void RoiAlign(TensorView x, TensorView rois, TensorView y, RoiGeometry geometry)
    {
        if (x.DType == DType.Float32) RoiAlignFor<float>(x, rois, y, geometry);
        else RoiAlignFor<double>(x, rois, y, geometry);
    }

    /// <summary>
    /// Runs over (image, channel) planes: a plane stays in cache while every roi of its image reads it.
    /// The sums follow torchvision's order (sample rows, then columns; w1*v1 + w2*v2 + w3*v3 + w4*v4).
    /// </summary>
    private static void RoiAlignFor<T>(TensorView x, TensorView rois, TensorView y, RoiGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3], k = rois.Shape[0];
        int ph = g.PooledH, pw = g.PooledW, bins = ph * pw;
        long plane = (long)h * w;
        nint px = Ptr(x), py = Ptr(y);
        var samples = AllSamples((T*)Ptr(rois), k, g, n, h, w);
        var byImage = RoisByImage((T*)Ptr(rois), k, n);
        for (int r = 0; r < k; r++)
            if (samples[r].Batch < 0) new Span<T>((T*)py + (long)r * c * bins, c * bins).Clear();
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
                    fixed (int* ys = t.YStart, yl = t.YLow, yh = t.YHigh, xs = t.XStart, xl = t.XLow, xh = t.XHigh)
                    fixed (T* ly = t.Ly, lx = t.Lx)
                    {
                        for (int i = 0; i < ph; i++)
                            for (int j = 0; j < pw; j++)
                            {
                                T acc = T.Zero;
                                for (int a = ys[i]; a < ys[i + 1]; a++)
                                {
                                    T* lo = xp + yl[a], hi = xp + yh[a];
                                    T fy = ly[a], gy = T.One - fy;
                                    for (int b = xs[j]; b < xs[j + 1]; b++)
                                    {
                                        T fx = lx[b], gx = T.One - fx;
                                        acc += gy * gx * lo[xl[b]] + gy * fx * lo[xh[b]] + fy * gx * hi[xl[b]] + fy * fx * hi[xh[b]];
                                    }
                                }
                                yo[i * pw + j] = acc / t.Count;
                            }
                    }
                }
            }
        });
    }

    /// <summary>The rois of each image in index order (rois whose batch index is out of range are left out).</summary>
    private static int[][] RoisByImage<T>(T* r, int k, int images) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var lists = new List<int>[images];
        for (int i = 0; i < images; i++) lists[i] = new List<int>();
        for (int i = 0; i < k; i++)
        {
            double b = double.CreateTruncating(r[i * 5L]);
            if (b >= 0 && b < images) lists[(int)b].Add(i);
        }
        return lists.Select(l => l.ToArray()).ToArray();
    }

    public void RoiAlignBackward(TensorView gradOutput, TensorView rois, TensorView gradInput, RoiGeometry geometry)
    {
        if (gradOutput.DType == DType.Float32) RoiAlignBackwardFor<float>(gradOutput, rois, gradInput, geometry);
        else RoiAlignBackwardFor<double>(gradOutput, rois, gradInput, geometry);
    }

    /// <summary>Each (image, channel) plane of the gradient is owned by one thread, which adds the rois of the image in index order.</summary>
    private static void RoiAlignBackwardFor<T>(TensorView gradOutput, TensorView rois, TensorView gradInput, RoiGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = gradInput.Shape[0], c = gradInput.Shape[1], h = gradInput.Shape[2], w = gradInput.Shape[3], k = rois.Shape[0];
        int ph = g.PooledH, pw = g.PooledW, bins = ph * pw;
        long plane = (long)h * w;
        nint pg = Ptr(gradOutput), px = Ptr(gradInput);
        var samples = AllSamples((T*)Ptr(rois), k, g, n, h, w);
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
                    fixed (int* ys = t.YStart, yl = t.YLow, yh = t.YHigh, xs = t.XStart, xl = t.XLow, xh = t.XHigh)
                    fixed (T* ly = t.Ly, lx = t.Lx)
                    {
                        for (int i = 0; i < ph; i++)
                            for (int j = 0; j < pw; j++)
                            {
                                T gb = go[i * pw + j];
                                for (int a = ys[i]; a < ys[i + 1]; a++)
                                {
                                    T* lo = gx + yl[a], hi = gx + yh[a];
                                    T fy = ly[a], gy = T.One - fy;
                                    for (int b = xs[j]; b < xs[j + 1]; b++)
                                    {
                                        T fx = lx[b], hx = T.One - fx;
                                        lo[xl[b]] += gb * (gy * hx) / t.Count;
                                        lo[xh[b]] += gb * (gy * fx) / t.Count;
                                        hi[xl[b]] += gb * (fy * hx) / t.Count;
                                        hi[xh[b]] += gb * (fy * fx) / t.Count;
                                    }
                                }
                            }
                    }
                }
            }
        });
    }

    /// <summary>Bin (i, j) of a roi for RoIPool: rows [H0, H1) and columns [W0, W1), clipped to the map.</summary>
    private static (int H0, int H1, int W0, int W1) PoolBin<T>(T* r, RoiGeometry g, int i, int j, int h, int w) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T scale = T.CreateTruncating(g.SpatialScale);
        int sw = int.CreateSaturating(T.Round(r[1] * scale, MidpointRounding.AwayFromZero));
        int sh = int.CreateSaturating(T.Round(r[2] * scale, MidpointRounding.AwayFromZero));
        int ew = int.CreateSaturating(T.Round(r[3] * scale, MidpointRounding.AwayFromZero));
        int eh = int.CreateSaturating(T.Round(r[4] * scale, MidpointRounding.AwayFromZero));
        int rw = (int)Math.Max((long)ew - sw + 1, 1), rh = (int)Math.Max((long)eh - sh + 1, 1);
        T bh = T.CreateTruncating(rh) / T.CreateTruncating(g.PooledH), bw = T.CreateTruncating(rw) / T.CreateTruncating(g.PooledW);
        long h0 = long.CreateSaturating(T.Floor(T.CreateTruncating(i) * bh)), h1 = long.CreateSaturating(T.Ceiling(T.CreateTruncating(i + 1) * bh));
        long w0 = long.CreateSaturating(T.Floor(T.CreateTruncating(j) * bw)), w1 = long.CreateSaturating(T.Ceiling(T.CreateTruncating(j + 1) * bw));
        return ((int)Math.Clamp(h0 + sh, 0, h), (int)Math.Clamp(h1 + sh, 0, h), (int)Math.Clamp(w0 + sw, 0, w), (int)Math.Clamp(w1 + sw, 0, w));
    }

    public void RoiPool(TensorView x, TensorView rois, TensorView y, TensorView argmax, RoiGeometry geometry)
    {
        if (x.DType == DType.Float32) RoiPoolFor<float>(x, rois, y, argmax, geometry);
        else RoiPoolFor<double>(x, rois, y, argmax, geometry);
    }

    private static void RoiPoolFor<T>(TensorView x, TensorView rois, TensorView y, TensorView argmax, RoiGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3], k = rois.Shape[0];
        int bins = g.PooledH * g.PooledW;
        long plane = (long)h * w;
        nint px = Ptr(x), pr = Ptr(rois), py = Ptr(y), pa = Ptr(argmax);
        // The bins of every roi, then (image, channel) planes as RoIAlign.
        var binsOf = new (int H0, int H1, int W0, int W1)[(long)k * bins];
        for (int r = 0; r < k; r++)
            for (int i = 0; i < g.PooledH; i++)
                for (int j = 0; j < g.PooledW; j++)
                    binsOf[(long)r * bins + i * g.PooledW + j] = PoolBin((T*)pr + r * 5L, g, i, j, h, w);
        var byImage = RoisByImage((T*)pr, k, n);
        var listed = new bool[k];
        foreach (var l in byImage) foreach (int r in l) listed[r] = true;
        for (int r = 0; r < k; r++)
            if (!listed[r])
            {
                new Span<T>((T*)py + (long)r * c * bins, c * bins).Clear();
                new Span<int>((int*)pa + (long)r * c * bins, c * bins).Fill(-1);
            }
        // torchvision starts a non-empty bin's maximum at -FLT_MAX, whatever the dtype.
        T lowest = T.CreateTruncating(-float.MaxValue);
        CpuParallel.For((long)n * c, 1, (s, e) =>
        {
            var colMax = new float[w];
            var colRow = new int[w];
            for (long p = s; p < e; p++)
            {
                int img = (int)(p / c), ch = (int)(p % c);
                T* xp = (T*)px + p * plane;
                foreach (int r in byImage[img])
                {
                    T* yo = (T*)py + ((long)r * c + ch) * bins;
                    int* ao = (int*)pa + ((long)r * c + ch) * bins;
                    if (typeof(T) == typeof(float) && Avx.IsSupported)
                    {
                        fixed (float* cm = colMax)
                        fixed (int* cr = colRow)
                            PoolRoiF32((float*)xp, w, binsOf.AsSpan((int)((long)r * bins), bins), g.PooledH, g.PooledW, (float*)yo, ao, cm, cr);
                        continue;
                    }
                    for (int b = 0; b < bins; b++)
                    {
                        var (h0, h1, w0, w1) = binsOf[(long)r * bins + b];
                        bool empty = h1 <= h0 || w1 <= w0;
                        T best = empty ? T.Zero : lowest;
                        int at = -1;
                        for (int yy = h0; yy < h1; yy++)
                            for (int xx = w0; xx < w1; xx++)
                            {
                                int q = yy * w + xx;
                                if (xp[q] > best)
                                {
                                    best = xp[q];
                                    at = q;
                                }
                            }
                        yo[b] = best;
                        ao[b] = at;
                    }
                }
            }
        });
    }

    /// <summary>
    /// RoIPool of one float32 roi over one plane, bin row by bin row: first the maximum of every column
    /// of the roi over the bin row's rows, with the first row that reaches it (8 columns per AVX step;
    /// the ordered compare is false for NaN, so NaN never wins), then each bin takes the best of its
    /// columns, the smallest row and then column among equal values. That is the first maximum in
    /// row-major scan order, as the scalar loop finds it; nothing above -FLT_MAX gives (-FLT_MAX, -1).
    /// </summary>
    private static void PoolRoiF32(float* xp, int w, ReadOnlySpan<(int H0, int H1, int W0, int W1)> bins, int ph, int pw, float* yo, int* ao, float* colMax, int* colRow)
    {
        for (int i = 0; i < ph; i++)
        {
            int h0 = bins[i * pw].H0, h1 = bins[i * pw].H1;
            int c0 = bins[i * pw].W0, c1 = bins[i * pw + pw - 1].W1;
            for (int j = 0; j < pw; j++)
            {
                c0 = Math.Min(c0, bins[i * pw + j].W0);
                c1 = Math.Max(c1, bins[i * pw + j].W1);
            }
            for (int q = c0; q < c1; q++)
            {
                colMax[q] = -float.MaxValue;
                colRow[q] = -1;
            }
            for (int yy = h0; yy < h1; yy++)
            {
                float* row = xp + (long)yy * w;
                int q = c0;
                var rowIndex = Vector256.Create(yy).AsSingle();
                for (; q + 8 <= c1; q += 8)
                {
                    var v = Avx.LoadVector256(row + q);
                    var m = Avx.LoadVector256(colMax + q);
                    var take = Avx.CompareGreaterThan(v, m);
                    Avx.Store(colMax + q, Avx.BlendVariable(m, v, take));
                    Avx.Store((float*)(colRow + q), Avx.BlendVariable(Avx.LoadVector256((float*)(colRow + q)), rowIndex, take));
                }
                for (; q < c1; q++)
                    if (row[q] > colMax[q])
                    {
                        colMax[q] = row[q];
                        colRow[q] = yy;
                    }
            }
            for (int j = 0; j < pw; j++)
            {
                var (b0, b1, w0, w1) = bins[i * pw + j];
                int o = i * pw + j;
                if (b1 <= b0 || w1 <= w0)
                {
                    yo[o] = 0;
                    ao[o] = -1;
                    continue;
                }
                float best = -float.MaxValue;
                int bestRow = -1, bestCol = -1;
                for (int q = w0; q < w1; q++)
                {
                    if (colRow[q] < 0) continue;
                    if (colMax[q] > best || (colMax[q] == best && colRow[q] < bestRow))
                    {
                        best = colMax[q];
                        bestRow = colRow[q];
                        bestCol = q;
                    }
                }
                yo[o] = best;
                ao[o] = bestRow < 0 ? -1 : bestRow * w + bestCol;
            }
        }
    }

    public void RoiPoolBackward(TensorView gradOutput, TensorView rois, TensorView argmax, TensorView gradInput, RoiGeometry geometry)
    {
        if (gradOutput.DType == DType.Float32) RoiPoolBackwardFor<float>(gradOutput, rois, argmax, gradInput, geometry);
        else RoiPoolBackwardFor<double>(gradOutput, rois, argmax, gradInput, geometry);
    }

    private static void RoiPoolBackwardFor<T>(TensorView gradOutput, TensorView rois, TensorView argmax, TensorView gradInput, RoiGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = gradInput.Shape[0], c = gradInput.Shape[1], k = rois.Shape[0];
        long plane = (long)gradInput.Shape[2] * gradInput.Shape[3];
        int bins = g.PooledH * g.PooledW;
        nint pg = Ptr(gradOutput), pr = Ptr(rois), pa = Ptr(argmax), px = Ptr(gradInput);
        var byImage = RoisByImage((T*)pr, k, n);
        CpuParallel.For((long)n * c, 1, (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                int img = (int)(p / c), ch = (int)(p % c);
                T* gx = (T*)px + p * plane;
                new Span<T>(gx, checked((int)plane)).Clear();
                foreach (int r in byImage[img])
                {
                    T* gy = (T*)pg + ((long)r * c + ch) * bins;
                    int* ap = (int*)pa + ((long)r * c + ch) * bins;
                    for (int b = 0; b < bins; b++)
                        if ((uint)ap[b] < (ulong)plane) gx[ap[b]] += gy[b];
                }
            }
        });
    }
}
