using System.Numerics;
using System.Runtime.Intrinsics;
using Runtime.Backends;

namespace Runtime.Cpu;

// Non-maximum suppression. The boxes come sorted by decreasing score and are copied into packed
// columns (x1, y1, x2, y2, area, position). Two exact algorithms, chosen by size:
// - Compaction (small sets, negative thresholds, non-finite coordinates): the first alive box is
//   kept, its IoU with all the others is computed a vector at a time, and the survivors are compacted
//   to the front; each kept box costs one pass over the boxes it has not yet lost to.
// - Grid (at least GridMinBoxes boxes, threshold >= 0, finite coordinates): an IoU above a
//   non-negative threshold needs a positive intersection, so two boxes can only interact if their
//   extents share a cell of a uniform grid (cell ~ the mean box size). Boxes are visited in score
//   order and compared only with the kept boxes registered in the cells they cover (a box covering
//   many cells is compared with every kept box, and when kept it is compared with every later box).
//   Same pairs, same IoU formula, so the same kept set, at a cost near N x (kept boxes nearby).
// With classes, each class is suppressed on its own (one bucket per class, in score order) and the
// kept positions are merged back into score order.
internal sealed unsafe partial class CpuBackend
{
    public long Nms(TensorView boxes, TensorView? classes, TensorView keep, double iouThreshold)
    {
        int n = boxes.Shape[0];
        if (n == 0) return 0;
        long* kept = (long*)Ptr(keep);
        if (classes is not TensorView cls)
            return boxes.DType == DType.Float32
                ? NmsRun<float>((float*)Ptr(boxes), null, n, NmsThreshold.Below(iouThreshold), kept)
                : NmsRun<double>((double*)Ptr(boxes), null, n, iouThreshold, kept);

        // Bucket the positions by class (a stable counting pass), so each class runs alone.
        long* c = (long*)Ptr(cls);
        var buckets = new Dictionary<long, List<int>>();
        for (int i = 0; i < n; i++)
        {
            if (!buckets.TryGetValue(c[i], out var list)) buckets[c[i]] = list = new List<int>();
            list.Add(i);
        }
        var isKept = new bool[n];
        var scratch = new long[n];
        fixed (long* s = scratch)
        {
            foreach (var members in buckets.Values)
            {
                var pos = members.ToArray();
                long count;
                fixed (int* p = pos)
                {
                    count = boxes.DType == DType.Float32
                        ? NmsRun<float>((float*)Ptr(boxes), p, pos.Length, NmsThreshold.Below(iouThreshold), s)
                        : NmsRun<double>((double*)Ptr(boxes), p, pos.Length, iouThreshold, s);
                }
                for (long k = 0; k < count; k++) isKept[s[k]] = true;
            }
        }
        long total = 0;
        for (int i = 0; i < n; i++)
            if (isKept[i]) kept[total++] = i;
        return total;
    }

    /// <summary>
    /// Greedy NMS of the boxes at <paramref name="positions"/> (null: 0..n-1), in that order; writes the
    /// kept positions (in order) and returns their count.
    /// </summary>
    private static long NmsRun<T>(T* boxes, int* positions, int n, T threshold, long* kept) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int lanes = Vector256<T>.Count;
        int cap = n + lanes;
        var buffer = new T[5 * cap];
        var posBuffer = new int[cap];
        fixed (T* cols = buffer)
        fixed (int* pos = posBuffer)
        {
            T* x1 = cols, y1 = cols + cap, x2 = cols + 2 * cap, y2 = cols + 3 * cap, area = cols + 4 * cap;
            for (int i = 0; i < n; i++)
            {
                int p = positions == null ? i : positions[i];
                T* b = boxes + 4L * p;
                x1[i] = b[0];
                y1[i] = b[1];
                x2[i] = b[2];
                y2[i] = b[3];
                area[i] = (b[2] - b[0]) * (b[3] - b[1]);
                pos[i] = p;
            }
            if (n >= GridMinBoxes && threshold >= T.Zero && AllFinite(cols, n, cap))
            {
                long found = GridNms(x1, y1, x2, y2, area, pos, n, threshold, kept);
                if (found >= 0) return found;
            }
            long count = 0;
            int alive = n;
            bool simd = Vector256.IsHardwareAccelerated;
            while (alive > 0)
            {
                kept[count++] = pos[0];
                T bx1 = x1[0], by1 = y1[0], bx2 = x2[0], by2 = y2[0], ba = area[0];
                int w = 0, r = 1;
                if (simd)
                {
                    var vx1 = Vector256.Create(bx1);
                    var vy1 = Vector256.Create(by1);
                    var vx2 = Vector256.Create(bx2);
                    var vy2 = Vector256.Create(by2);
                    var va = Vector256.Create(ba);
                    var vt = Vector256.Create(threshold);
                    for (; r + lanes <= alive; r += lanes)
                    {
                        var cx1 = Vector256.Load(x1 + r);
                        var cy1 = Vector256.Load(y1 + r);
                        var cx2 = Vector256.Load(x2 + r);
                        var cy2 = Vector256.Load(y2 + r);
                        var ca = Vector256.Load(area + r);
                        var iw = Vector256.Max(Vector256.Min(vx2, cx2) - Vector256.Max(vx1, cx1), Vector256<T>.Zero);
                        var ih = Vector256.Max(Vector256.Min(vy2, cy2) - Vector256.Max(vy1, cy1), Vector256<T>.Zero);
                        var inter = iw * ih;
                        var iou = inter / (va + ca - inter);
                        // Survivors: not (iou > t), so a NaN IoU survives as in the scalar loop.
                        uint survive = ~Vector256.GreaterThan(iou, vt).ExtractMostSignificantBits() & ((1u << lanes) - 1);
                        if (survive == (1u << lanes) - 1 && w + 1 == r)
                        {
                            // All survive and nothing was dropped before them: shift the block down by one.
                            cx1.Store(x1 + w);
                            cy1.Store(y1 + w);
                            cx2.Store(x2 + w);
                            cy2.Store(y2 + w);
                            ca.Store(area + w);
                            for (int l = 0; l < lanes; l++) pos[w + l] = pos[r + l];
                            w += lanes;
                            continue;
                        }
                        while (survive != 0)
                        {
                            int l = BitOperations.TrailingZeroCount(survive);
                            survive &= survive - 1;
                            int src = r + l;
                            x1[w] = x1[src];
                            y1[w] = y1[src];
                            x2[w] = x2[src];
                            y2[w] = y2[src];
                            area[w] = area[src];
                            pos[w] = pos[src];
                            w++;
                        }
                    }
                }
                for (; r < alive; r++)
                {
                    T iw = T.Max(T.Min(bx2, x2[r]) - T.Max(bx1, x1[r]), T.Zero);
                    T ih = T.Max(T.Min(by2, y2[r]) - T.Max(by1, y1[r]), T.Zero);
                    T inter = iw * ih;
                    T iou = inter / (ba + area[r] - inter);
                    if (iou > threshold) continue;
                    x1[w] = x1[r];
                    y1[w] = y1[r];
                    x2[w] = x2[r];
                    y2[w] = y2[r];
                    area[w] = area[r];
                    pos[w] = pos[r];
                    w++;
                }
                alive = w;
            }
            return count;
        }
    }

    /// <summary>Fewest boxes for which the grid pays for its set-up.</summary>
    private const int GridMinBoxes = 512;

    /// <summary>A box covering more grid cells than this is compared with every box instead.</summary>
    private const int GridBigCells = 16;

    private static bool AllFinite<T>(T* cols, int n, int cap) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < n; i++)
                if (!T.IsFinite(cols[(long)c * cap + i])) return false;
        return true;
    }

    /// <summary>The grid algorithm (see the top of the file); -1 when the boxes span more than a double can hold.</summary>
    private static long GridNms<T>(T* x1, T* y1, T* x2, T* y2, T* area, int* pos, int n, T threshold, long* kept) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double minX = double.PositiveInfinity, minY = double.PositiveInfinity, maxX = double.NegativeInfinity, maxY = double.NegativeInfinity, sizes = 0;
        for (int i = 0; i < n; i++)
        {
            double a = double.CreateTruncating(x1[i]), b = double.CreateTruncating(y1[i]), c = double.CreateTruncating(x2[i]), d = double.CreateTruncating(y2[i]);
            minX = Math.Min(minX, Math.Min(a, c));
            maxX = Math.Max(maxX, Math.Max(a, c));
            minY = Math.Min(minY, Math.Min(b, d));
            maxY = Math.Max(maxY, Math.Max(b, d));
            sizes += Math.Max(Math.Max(c - a, d - b), 0);
        }
        double spanX = maxX - minX, spanY = maxY - minY;
        if (!double.IsFinite(spanX) || !double.IsFinite(spanY)) return -1; // extents beyond double: the caller compacts instead
        double cell = sizes / n;
        if (!(cell > 0) || double.IsInfinity(cell)) cell = Math.Max(Math.Max(spanX, spanY), 1);
        // At most about 2n cells.
        while ((spanX / cell + 1) * (spanY / cell + 1) > 2.0 * n + 16) cell *= 2;
        int gw = (int)(spanX / cell) + 1, gh = (int)(spanY / cell) + 1;
        double inv = 1 / cell;
        // Monotone in the coordinate, so a < b gives Cell(a) <= Cell(b).
        int CellX(T v) => Math.Clamp((int)Math.Floor((double.CreateTruncating(v) - minX) * inv), 0, gw - 1);
        int CellY(T v) => Math.Clamp((int)Math.Floor((double.CreateTruncating(v) - minY) * inv), 0, gh - 1);

        var head = new int[gw * gh];
        Array.Fill(head, -1);
        var next = new List<int>(4 * n);
        var entry = new List<int>(4 * n);
        var keptAt = new List<int>();  // every kept box (column index)
        var bigKept = new List<int>(); // kept boxes covering many cells
        long count = 0;
        for (int i = 0; i < n; i++)
        {
            int cx0 = CellX(x1[i]), cx1 = CellX(x2[i]), cy0 = CellY(y1[i]), cy1 = CellY(y2[i]);
            long cells = cx1 < cx0 || cy1 < cy0 ? 0 : (long)(cx1 - cx0 + 1) * (cy1 - cy0 + 1);
            bool suppressed = false;
            foreach (int j in bigKept)
                if (Suppresses(j, i)) { suppressed = true; break; }
            if (!suppressed)
            {
                if (cells > GridBigCells)
                {
                    foreach (int j in keptAt)
                        if (Suppresses(j, i)) { suppressed = true; break; }
                }
                else
                {
                    for (int cy = cy0; cy <= cy1 && !suppressed; cy++)
                        for (int cx = cx0; cx <= cx1 && !suppressed; cx++)
                            for (int e = head[cy * gw + cx]; e >= 0; e = next[e])
                                if (Suppresses(entry[e], i)) { suppressed = true; break; }
                }
            }
            if (suppressed) continue;
            kept[count++] = pos[i];
            keptAt.Add(i);
            if (cells > GridBigCells) bigKept.Add(i);
            else
            {
                for (int cy = cy0; cy <= cy1; cy++)
                    for (int cx = cx0; cx <= cx1; cx++)
                    {
                        int c = cy * gw + cx;
                        next.Add(head[c]);
                        entry.Add(i);
                        head[c] = next.Count - 1;
                    }
            }
        }
        return count;

        // The kept box j suppresses box i: the IoU of the contract (kept box's area first), in T.
        bool Suppresses(int j, int i)
        {
            T iw = T.Max(T.Min(x2[j], x2[i]) - T.Max(x1[j], x1[i]), T.Zero);
            T ih = T.Max(T.Min(y2[j], y2[i]) - T.Max(y1[j], y1[i]), T.Zero);
            T inter = iw * ih;
            return inter / (area[j] + area[i] - inter) > threshold;
        }
    }
}
