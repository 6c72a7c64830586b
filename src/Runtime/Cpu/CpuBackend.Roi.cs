using System.Numerics;
using Runtime.Backends;

namespace Runtime.Cpu;

// RoIAlign and RoIPool (torchvision 0.14 semantics, see IBackend.Roi.cs). RoIAlign first turns each
// roi into a table of its bilinear samples (four corner positions and weights, samples outside the map
// left out, grouped by bin) and reuses it for every channel. The forward pass runs over (roi, channel)
// pairs in contiguous pieces, a table being rebuilt only when the roi changes. The backward passes run
// over (image, channel) planes: each thread owns whole input-gradient planes and adds the rois of the
// image in index order, so the result does not depend on the number of threads.
internal sealed unsafe partial class CpuBackend
{
    /// <summary>The sampling grid of one roi on the feature map, in the element type as torchvision computes it.</summary>
    private readonly struct RoiBox<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public readonly int Batch;
        public readonly T StartH, StartW, BinH, BinW;
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

    /// <summary>The bilinear samples of one roi, grouped by bin: corner positions (h*W + w) and weights.</summary>
    private sealed class RoiTable<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public int[] BinStart = [];
        public int[] Pos = [];   // 4 per sample
        public T[] Weight = [];  // 4 per sample

        public void Build(in RoiBox<T> box, RoiGeometry g, int h, int w)
        {
            int bins = g.PooledH * g.PooledW;
            if (BinStart.Length < bins + 1) BinStart = new int[bins + 1];
            int gh = Math.Max(box.GridH, 0), gw = Math.Max(box.GridW, 0);
            long most = (long)bins * gh * gw * 4;
            if (most > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(box), $"RoiAlign: a roi has {gh}x{gw} samples per bin, too many to hold");
            if (Pos.Length < most)
            {
                Pos = new int[most];
                Weight = new T[most];
            }
            // The per-axis corners, then their products per sample (torchvision's w1..w4 order).
            Span<int> yl = gh <= 256 ? stackalloc int[gh] : new int[gh], yh = gh <= 256 ? stackalloc int[gh] : new int[gh];
            Span<int> xl = gw <= 256 ? stackalloc int[gw] : new int[gw], xh = gw <= 256 ? stackalloc int[gw] : new int[gw];
            var ly = new T[gh];
            var lx = new T[gw];
            var okY = new bool[gh];
            var okX = new bool[gw];
            int n = 0;
            for (int i = 0; i < g.PooledH; i++)
            {
                for (int a = 0; a < gh; a++)
                    okY[a] = Corners(RoiBox<T>.Sample(box.StartH, box.BinH, i, a, box.GridH), h, out yl[a], out yh[a], out ly[a]);
                for (int j = 0; j < g.PooledW; j++)
                {
                    BinStart[i * g.PooledW + j] = n;
                    for (int b = 0; b < gw; b++)
                        okX[b] = Corners(RoiBox<T>.Sample(box.StartW, box.BinW, j, b, box.GridW), w, out xl[b], out xh[b], out lx[b]);
                    for (int a = 0; a < gh; a++)
                    {
                        if (!okY[a]) continue;
                        T hy = T.One - ly[a];
                        for (int b = 0; b < gw; b++)
                        {
                            if (!okX[b]) continue;
                            T hx = T.One - lx[b];
                            int q = n * 4;
                            Pos[q] = yl[a] * w + xl[b];
                            Pos[q + 1] = yl[a] * w + xh[b];
                            Pos[q + 2] = yh[a] * w + xl[b];
                            Pos[q + 3] = yh[a] * w + xh[b];
                            Weight[q] = hy * hx;
                            Weight[q + 1] = hy * lx[b];
                            Weight[q + 2] = ly[a] * hx;
                            Weight[q + 3] = ly[a] * lx[b];
                            n++;
                        }
                    }
                }
            }
            BinStart[bins] = n;
        }
    }

    public void RoiAlign(TensorView x, TensorView rois, TensorView y, RoiGeometry geometry)
    {
        if (x.DType == DType.Float32) RoiAlignFor<float>(x, rois, y, geometry);
        else RoiAlignFor<double>(x, rois, y, geometry);
    }

    private static void RoiAlignFor<T>(TensorView x, TensorView rois, TensorView y, RoiGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3], k = rois.Shape[0];
        int bins = g.PooledH * g.PooledW;
        long plane = (long)h * w;
        nint px = Ptr(x), pr = Ptr(rois), py = Ptr(y);
        // Work per (roi, channel): about four reads per sample; the grid of the first roi stands for all.
        long perChannel = 4L * bins * Math.Max(1, g.SamplingRatio > 0 ? g.SamplingRatio * g.SamplingRatio : 4);
        CpuParallel.For((long)k * c, Math.Max(1, (1L << 15) / perChannel), (s, e) =>
        {
            var table = new RoiTable<T>();
            int built = -1;
            RoiBox<T> box = default;
            for (long t = s; t < e; t++)
            {
                int r = (int)(t / c), ch = (int)(t % c);
                if (r != built)
                {
                    box = new RoiBox<T>((T*)pr + r * 5L, g, n);
                    if (box.Batch >= 0) table.Build(box, g, h, w);
                    built = r;
                }
                T* yo = (T*)py + t * bins;
                if (box.Batch < 0)
                {
                    new Span<T>(yo, bins).Clear();
                    continue;
                }
                T* xp = (T*)px + ((long)box.Batch * c + ch) * plane;
                fixed (int* pos = table.Pos)
                fixed (T* wt = table.Weight)
                fixed (int* start = table.BinStart)
                {
                    for (int b = 0; b < bins; b++)
                    {
                        T acc = T.Zero;
                        for (int q = start[b] * 4, end = start[b + 1] * 4; q < end; q += 4)
                            acc += wt[q] * xp[pos[q]] + wt[q + 1] * xp[pos[q + 1]] + wt[q + 2] * xp[pos[q + 2]] + wt[q + 3] * xp[pos[q + 3]];
                        yo[b] = acc / box.Count;
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

    private static void RoiAlignBackwardFor<T>(TensorView gradOutput, TensorView rois, TensorView gradInput, RoiGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = gradInput.Shape[0], c = gradInput.Shape[1], h = gradInput.Shape[2], w = gradInput.Shape[3], k = rois.Shape[0];
        int bins = g.PooledH * g.PooledW;
        long plane = (long)h * w;
        nint pg = Ptr(gradOutput), pr = Ptr(rois), px = Ptr(gradInput);
        var byImage = RoisByImage((T*)pr, k, n);
        // Pieces of whole (image, channel) planes; within a piece, per image, each roi's table serves all its channels.
        CpuParallel.For((long)n * c, 1, (s, e) =>
        {
            var table = new RoiTable<T>();
            new Span<T>((T*)px + s * plane, checked((int)((e - s) * plane))).Clear();
            for (long p = s; p < e;)
            {
                int img = (int)(p / c), c0 = (int)(p % c);
                int c1 = (int)Math.Min(c, e - (long)img * c);
                foreach (int r in byImage[img])
                {
                    var box = new RoiBox<T>((T*)pr + r * 5L, g, n);
                    table.Build(box, g, h, w);
                    fixed (int* pos = table.Pos)
                    fixed (T* wt = table.Weight)
                    fixed (int* start = table.BinStart)
                    {
                        for (int ch = c0; ch < c1; ch++)
                        {
                            T* gx = (T*)px + ((long)img * c + ch) * plane;
                            T* gy = (T*)pg + ((long)r * c + ch) * bins;
                            for (int b = 0; b < bins; b++)
                            {
                                T gb = gy[b];
                                for (int q = start[b] * 4, end = start[b + 1] * 4; q < end; q += 4)
                                {
                                    gx[pos[q]] += gb * wt[q] / box.Count;
                                    gx[pos[q + 1]] += gb * wt[q + 1] / box.Count;
                                    gx[pos[q + 2]] += gb * wt[q + 2] / box.Count;
                                    gx[pos[q + 3]] += gb * wt[q + 3] / box.Count;
                                }
                            }
                        }
                    }
                }
                p = (long)img * c + c1;
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
        // torchvision starts a non-empty bin's maximum at -FLT_MAX, whatever the dtype.
        T lowest = T.CreateTruncating(-float.MaxValue);
        CpuParallel.For((long)k * c, Math.Max(1, (1L << 15) / Math.Max(1, plane / Math.Max(1, bins))), (s, e) =>
        {
            var binsOf = new (int H0, int H1, int W0, int W1)[bins];
            int built = -1, batch = -1;
            for (long t = s; t < e; t++)
            {
                int r = (int)(t / c), ch = (int)(t % c);
                T* rp = (T*)pr + r * 5L;
                if (r != built)
                {
                    double b = double.CreateTruncating(rp[0]);
                    batch = b >= 0 && b < n ? (int)b : -1;
                    for (int i = 0; i < g.PooledH; i++)
                        for (int j = 0; j < g.PooledW; j++)
                            binsOf[i * g.PooledW + j] = PoolBin(rp, g, i, j, h, w);
                    built = r;
                }
                T* yo = (T*)py + t * bins;
                int* ao = (int*)pa + t * bins;
                if (batch < 0)
                {
                    new Span<T>(yo, bins).Clear();
                    new Span<int>(ao, bins).Fill(-1);
                    continue;
                }
                T* xp = (T*)px + ((long)batch * c + ch) * plane;
                for (int b = 0; b < bins; b++)
                {
                    var (h0, h1, w0, w1) = binsOf[b];
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
        });
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
