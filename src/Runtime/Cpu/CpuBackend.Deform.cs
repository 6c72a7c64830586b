using System.Numerics;
using System.Runtime.Intrinsics.X86;
using Runtime.Backends;

namespace Runtime.Cpu;

/// <summary>
/// Modulated deformable convolution on the CPU. Each image is first copied into zero-bordered planes one pixel wider
/// on every side, so that the four bilinear corners of any sample inside <c>(-1, H) x (-1, W)</c> are in memory and an
/// out-of-image corner simply reads (or, in the backward pass, writes) the zero border: a sample needs one base index
/// and four weights, no per-corner tests. Work is cut into tiles (a band of output rows of one image, as the plain
/// convolution's <see cref="ConvPlan"/> does): the base indices and the mask-scaled bilinear weights of a tile are
/// computed once per (offset group, tap, output position) and reused by every channel of the group to fill the
/// column buffer, which one packed GEMM per weight group multiplies with the weight.
/// Backward, per tile: the columns gradient is W^T x gy (GEMM); the input gradient scatters it into the bordered planes
/// of the image, each channel plane owned by one work item, in a fixed order; the offset and mask gradients sum over
/// the channels of their group in channel order, one work item per (offset group, tap, block of positions); the weight
/// gradient is gy x columns^T, summed over a fixed split of the images whatever the number of threads. Batches whose
/// images share out over the threads run whole images on separate threads with one-thread GEMMs.
/// </summary>
internal sealed unsafe partial class CpuBackend
{
    public void DeformIm2Col(TensorView x, TensorView offset, TensorView? mask, TensorView columns, DeformGeometry g)
    {
        if (x.DType == DType.Float32) DeformIm2ColFor((float*)Ptr(x), (float*)Ptr(offset), mask is { } m ? (float*)Ptr(m) : null, (float*)Ptr(columns), g);
        else DeformIm2ColFor((double*)Ptr(x), (double*)Ptr(offset), mask is { } m ? (double*)Ptr(m) : null, (double*)Ptr(columns), g);
    }

    public void DeformCol2Im(TensorView columns, TensorView offset, TensorView? mask, TensorView gx, DeformGeometry g)
    {
        if (gx.DType == DType.Float32) DeformCol2ImFor((float*)Ptr(columns), (float*)Ptr(offset), mask is { } m ? (float*)Ptr(m) : null, (float*)Ptr(gx), g);
        else DeformCol2ImFor((double*)Ptr(columns), (double*)Ptr(offset), mask is { } m ? (double*)Ptr(m) : null, (double*)Ptr(gx), g);
    }

    public void DeformCol2ImCoord(TensorView columns, TensorView x, TensorView offset, TensorView? mask, TensorView gOffset, TensorView? gMask, DeformGeometry g)
    {
        bool wantMask = mask is not null && gMask is not null;
        if (x.DType == DType.Float32)
            DeformCoordFor((float*)Ptr(columns), (float*)Ptr(x), (float*)Ptr(offset), mask is { } m ? (float*)Ptr(m) : null,
                (float*)Ptr(gOffset), wantMask ? (float*)Ptr(gMask!.Value) : null, g);
        else
            DeformCoordFor((double*)Ptr(columns), (double*)Ptr(x), (double*)Ptr(offset), mask is { } m ? (double*)Ptr(m) : null,
                (double*)Ptr(gOffset), wantMask ? (double*)Ptr(gMask!.Value) : null, g);
    }

    public void DeformConv2d(TensorView x, TensorView offset, TensorView? mask, TensorView weight, TensorView? bias, TensorView y, DeformGeometry g)
    {
        if (x.DType == DType.Float32)
            DeformForward((float*)Ptr(x), (float*)Ptr(offset), mask is { } m ? (float*)Ptr(m) : null, (float*)Ptr(weight),
                bias is { } b ? (float*)Ptr(b) : null, (float*)Ptr(y), g);
        else
            DeformForward((double*)Ptr(x), (double*)Ptr(offset), mask is { } m ? (double*)Ptr(m) : null, (double*)Ptr(weight),
                bias is { } b ? (double*)Ptr(b) : null, (double*)Ptr(y), g);
    }

    public void DeformConv2dBackward(TensorView gy, TensorView x, TensorView offset, TensorView? mask, TensorView weight,
        TensorView? gx, TensorView? gOffset, TensorView? gMask, TensorView? gWeight, DeformGeometry g)
    {
        if (gMask is not null && gOffset is null)
            throw new ArgumentException("DeformConv2dBackward: a mask gradient is computed together with the offset gradient; pass gOffset too", nameof(gMask));
        if (x.DType == DType.Float32)
            DeformBackward((float*)Ptr(gy), (float*)Ptr(x), (float*)Ptr(offset), mask is { } m ? (float*)Ptr(m) : null, (float*)Ptr(weight),
                P<float>(gx), P<float>(gOffset), mask is null ? null : P<float>(gMask), P<float>(gWeight), g);
        else
            DeformBackward((double*)Ptr(gy), (double*)Ptr(x), (double*)Ptr(offset), mask is { } m ? (double*)Ptr(m) : null, (double*)Ptr(weight),
                P<double>(gx), P<double>(gOffset), mask is null ? null : P<double>(gMask), P<double>(gWeight), g);
    }

    private static T* P<T>(TensorView? v) where T : unmanaged => v is { } t ? (T*)Ptr(t) : null;

    // ------------------------------------------------------------------------------------------------
    // Tiles and the sampling table
    // ------------------------------------------------------------------------------------------------

    /// <summary>Positions per block of the offset-gradient loop (its accumulators live on the stack).</summary>
    private const int CoordBlock = 64;

    /// <summary>
    /// The sampling table of one tile: for each (offset group, tap, position q of the tile), the index of the top-left
    /// corner in the bordered plane and the four mask-scaled bilinear weights (top-left, top-right, bottom-left,
    /// bottom-right). A sample outside <c>(-1, H) x (-1, W)</c> (or at a NaN position) gets index 0 and zero weights.
    /// </summary>
    private readonly struct DeformTable<T> : IDisposable where T : unmanaged
    {
        private readonly Scratch<int> _index;
        private readonly Scratch<T> _weights;

        public DeformTable(long entries)
        {
            Entries = entries;
            _index = new Scratch<int>(entries);
            _weights = new Scratch<T>(4 * entries);
        }

        /// <summary>Entries the table holds; the weights are four planes of this length (one per corner).</summary>
        public long Entries { get; }

        public int* Index => _index.Pointer;

        /// <summary>The weights of corner <paramref name="corner"/> (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).</summary>
        public T* Weights(int corner) => _weights.Pointer + corner * Entries;

        public void Dispose()
        {
            _index.Dispose();
            _weights.Dispose();
        }
    }

    /// <summary>Output rows per tile: a band whose column buffer stays near cache size, as the plain convolution cuts it.</summary>
    private static int DeformBandRows(Conv2dGeometry g)
    {
        int k = Math.Max(1, g.ColumnRows);
        long want = Math.Max(1024, (1L << 19) / k);
        int bands = (int)Math.Clamp((g.OutPlane + want - 1) / want, 1, Math.Max(1, g.OutHeight));
        return (g.OutHeight + bands - 1) / bands;
    }

    /// <summary>Copies image planes [C, H, W] into zero-bordered planes [C, H+2, W+2].</summary>
    private static void PadPlanes<T>(T* x, T* xp, int channels, int h, int w, bool parallel) where T : unmanaged
    {
        int wp = w + 2;
        long plane = (long)(h + 2) * wp;
        Run(parallel, channels, Math.Max(1, 16384 / Math.Max(1, (int)plane)), (s, e) =>
        {
            for (long c = s; c < e; c++)
            {
                T* dst = xp + c * plane;
                T* src = x + c * h * w;
                new Span<T>(dst, wp).Clear();
                new Span<T>(dst + (long)(h + 1) * wp, wp).Clear();
                for (int r = 0; r < h; r++)
                {
                    T* d = dst + (long)(r + 1) * wp;
                    d[0] = default;
                    new ReadOnlySpan<T>(src + (long)r * w, w).CopyTo(new Span<T>(d + 1, w));
                    d[w + 1] = default;
                }
            }
        });
    }

    /// <summary>Adds the interior of bordered planes [C, H+2, W+2] to (or copies it into) planes [C, H, W].</summary>
    private static void UnpadPlanes<T>(T* xp, T* x, int channels, int h, int w, bool parallel) where T : unmanaged
    {
        int wp = w + 2;
        long plane = (long)(h + 2) * wp;
        Run(parallel, channels, Math.Max(1, 16384 / Math.Max(1, (int)plane)), (s, e) =>
        {
            for (long c = s; c < e; c++)
                for (int r = 0; r < h; r++)
                    new ReadOnlySpan<T>(xp + c * plane + (long)(r + 1) * wp + 1, w).CopyTo(new Span<T>(x + c * h * w + (long)r * w, w));
        });
    }

    /// <summary>
    /// Fills the sampling table of output rows [r0, r1) of one image from its offset [2*G*K, OH, OW] and mask
    /// [G*K, OH, OW] planes (mask null: 1).
    /// </summary>
    private static void BuildTable<T>(T* off, T* mask, DeformGeometry dg, int r0, int r1, DeformTable<T> table, bool parallel)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = dg.Conv;
        int K = dg.Taps, OW = g.OutWidth, H = g.Height, W = g.Width, wp = W + 2;
        long L = g.OutPlane, span = (long)(r1 - r0) * OW;
        T hT = T.CreateTruncating(H), wT = T.CreateTruncating(W), minus1 = -T.One;
        Run(parallel, (long)dg.OffsetGroups * K, Math.Max(1, 4096 / Math.Max(1, span)), (s, e) =>
        {
            for (long gk = s; gk < e; gk++)
            {
                int og = (int)(gk / K), k = (int)(gk % K), i = k / g.KernelW, j = k % g.KernelW;
                T* dyp = off + ((long)og * 2 * K + 2 * k) * L + (long)r0 * OW;
                T* dxp = dyp + L;
                T* mp = mask == null ? null : mask + gk * L + (long)r0 * OW;
                int* idx = table.Index + gk * span;
                T* w0 = table.Weights(0) + gk * span, w1 = table.Weights(1) + gk * span;
                T* w2 = table.Weights(2) + gk * span, w3 = table.Weights(3) + gk * span;
                for (int r = r0; r < r1; r++)
                {
                    T yBase = T.CreateTruncating(r * g.StrideH - g.PadH + i * g.DilationH);
                    for (int ox = 0; ox < OW; ox++)
                    {
                        long q = (long)(r - r0) * OW + ox;
                        T y = yBase + dyp[q];
                        T x = T.CreateTruncating(ox * g.StrideW - g.PadW + j * g.DilationW) + dxp[q];
                        if (!(y > minus1 && y < hT && x > minus1 && x < wT))
                        {
                            idx[q] = 0;
                            w0[q] = w1[q] = w2[q] = w3[q] = T.Zero;
                            continue;
                        }
                        T fy = T.Floor(y), fx = T.Floor(x);
                        T ly = y - fy, lx = x - fx, hy = T.One - ly, hx = T.One - lx;
                        T m = mp == null ? T.One : mp[q];
                        // Top-left corner (fy, fx) sits at bordered (fy + 1, fx + 1).
                        idx[q] = (int.CreateTruncating(fy) + 1) * wp + int.CreateTruncating(fx) + 1;
                        T mh = m * hy, ml = m * ly;
                        w0[q] = mh * hx;
                        w1[q] = mh * lx;
                        w2[q] = ml * hx;
                        w3[q] = ml * lx;
                    }
                }
            }
        });
    }

    /// <summary>
    /// Columns rows (c*K + k) of channels [0, Cin), positions [0, span) of the tile: the modulated samples of the
    /// bordered planes xp, written at col + row*ld.
    /// </summary>
    private static void FillColumns<T>(T* xp, DeformTable<T> table, T* col, long ld, DeformGeometry dg, long span, bool parallel)
        where T : unmanaged, INumber<T>
    {
        var g = dg.Conv;
        int K = dg.Taps, cpg = dg.ChannelsPerOffsetGroup, wp = g.Width + 2;
        long plane = (long)(g.Height + 2) * wp;
        Run(parallel, g.InChannels, Math.Max(1, 8192 / Math.Max(1, K * span)), (s, e) =>
        {
            for (long c = s; c < e; c++)
            {
                T* src = xp + c * plane;
                long og = c / cpg;
                for (int k = 0; k < K; k++)
                {
                    long e0 = (og * K + k) * span;
                    int* idx = table.Index + e0;
                    T* w0 = table.Weights(0) + e0, w1 = table.Weights(1) + e0, w2 = table.Weights(2) + e0, w3 = table.Weights(3) + e0;
                    T* dst = col + (c * K + k) * ld;
                    long q = 0;
                    if (typeof(T) == typeof(float) && Avx2.IsSupported)
                        q = GatherRowAvx2((float*)src, idx, (float*)w0, (float*)w1, (float*)w2, (float*)w3, (float*)dst, span, wp);
                    for (; q < span; q++)
                    {
                        T* p = src + idx[q];
                        dst[q] = w0[q] * p[0] + w1[q] * p[1] + w2[q] * p[wp] + w3[q] * p[wp + 1];
                    }
                }
            }
        });
    }

    /// <summary>
    /// dst[q] = the four-corner weighted sum of src around idx[q], eight positions at a time with AVX2 gathers; returns
    /// how many positions it did (the caller finishes the rest). Same products and sum order as the scalar loop.
    /// </summary>
    private static long GatherRowAvx2(float* src, int* idx, float* w0, float* w1, float* w2, float* w3, float* dst, long span, int wp)
    {
        long q = 0;
        float* below = src + wp;
        for (; q + 8 <= span; q += 8)
        {
            var i = Avx.LoadVector256(idx + q);
            var a = Avx2.GatherVector256(src, i, 4);
            var b = Avx2.GatherVector256(src + 1, i, 4);
            var c = Avx2.GatherVector256(below, i, 4);
            var d = Avx2.GatherVector256(below + 1, i, 4);
            var v = Avx.Multiply(Avx.LoadVector256(w0 + q), a);
            v = Avx.Add(v, Avx.Multiply(Avx.LoadVector256(w1 + q), b));
            v = Avx.Add(v, Avx.Multiply(Avx.LoadVector256(w2 + q), c));
            v = Avx.Add(v, Avx.Multiply(Avx.LoadVector256(w3 + q), d));
            Avx.Store(dst + q, v);
        }
        return q;
    }

    /// <summary>
    /// One channel's contribution to the offset/mask accumulators of a block, eight positions at a time with AVX2
    /// gathers (the scalar loop of <see cref="CoordTile{T}"/>, same products in the same order); returns how many
    /// positions it did.
    /// </summary>
    private static int CoordRowAvx2(float* src, float* gc, int* idx, float* used, float* inside, float* ly, float* lx, float* hy, float* hx,
        float* accY, float* accX, float* accM, int n, int wp)
    {
        int t = 0;
        float* below = src + wp;
        for (; t + 8 <= n; t += 8)
        {
            var i = Avx.LoadVector256(idx + t);
            var a = Avx2.GatherVector256(src, i, 4);
            var b = Avx2.GatherVector256(src + 1, i, 4);
            var c = Avx2.GatherVector256(below, i, 4);
            var d = Avx2.GatherVector256(below + 1, i, 4);
            var v = Avx.Multiply(Avx.LoadVector256(gc + t), Avx.LoadVector256(used + t));
            var fy = Avx.LoadVector256(ly + t);
            var fx = Avx.LoadVector256(lx + t);
            var gy = Avx.LoadVector256(hy + t);
            var gx = Avx.LoadVector256(hx + t);
            var sy = Avx.Add(Avx.Multiply(fx, Avx.Subtract(d, b)), Avx.Multiply(gx, Avx.Subtract(c, a)));
            Avx.Store(accY + t, Avx.Add(Avx.LoadVector256(accY + t), Avx.Multiply(v, sy)));
            var sx = Avx.Add(Avx.Multiply(fy, Avx.Subtract(d, c)), Avx.Multiply(gy, Avx.Subtract(b, a)));
            Avx.Store(accX + t, Avx.Add(Avx.LoadVector256(accX + t), Avx.Multiply(v, sx)));
            var top = Avx.Add(Avx.Multiply(gx, a), Avx.Multiply(fx, b));
            var bottom = Avx.Add(Avx.Multiply(gx, c), Avx.Multiply(fx, d));
            var bil = Avx.Add(Avx.Multiply(gy, top), Avx.Multiply(fy, bottom));
            var vm = Avx.Multiply(v, Avx.LoadVector256(inside + t));
            Avx.Store(accM + t, Avx.Add(Avx.LoadVector256(accM + t), Avx.Multiply(vm, bil)));
        }
        return t;
    }

    /// <summary>
    /// The adjoint of <see cref="FillColumns{T}"/>: adds each column entry, times its weights, to the corners of the
    /// bordered gradient planes gxp. Each channel plane is owned by one work item, which adds taps and positions in
    /// order, so the sums do not depend on threading.
    /// </summary>
    private static void ScatterColumns<T>(T* col, long ld, DeformTable<T> table, T* gxp, DeformGeometry dg, long span, bool parallel)
        where T : unmanaged, INumber<T>
    {
        var g = dg.Conv;
        int K = dg.Taps, cpg = dg.ChannelsPerOffsetGroup, wp = g.Width + 2;
        long plane = (long)(g.Height + 2) * wp;
        Run(parallel, g.InChannels, Math.Max(1, 8192 / Math.Max(1, K * span)), (s, e) =>
        {
            for (long c = s; c < e; c++)
            {
                T* dst = gxp + c * plane;
                long og = c / cpg;
                for (int k = 0; k < K; k++)
                {
                    long e0 = (og * K + k) * span;
                    int* idx = table.Index + e0;
                    T* w0 = table.Weights(0) + e0, w1 = table.Weights(1) + e0, w2 = table.Weights(2) + e0, w3 = table.Weights(3) + e0;
                    T* src = col + (c * K + k) * ld;
                    for (long q = 0; q < span; q++)
                    {
                        T v = src[q];
                        T* p = dst + idx[q];
                        p[0] += w0[q] * v;
                        p[1] += w1[q] * v;
                        p[wp] += w2[q] * v;
                        p[wp + 1] += w3[q] * v;
                    }
                }
            }
        });
    }

    /// <summary>
    /// Offset (and mask) gradients of output rows [r0, r1) of one image from its columns gradient (at col, row stride
    /// ld) and its bordered input planes xp. One work item per (offset group, tap, block of positions); each sums the
    /// channels of its group in order.
    /// </summary>
    private static void CoordTile<T>(T* col, long ld, T* xp, T* off, T* mask, T* gOff, T* gMask, DeformGeometry dg, int r0, int r1, bool parallel)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = dg.Conv;
        int K = dg.Taps, OW = g.OutWidth, H = g.Height, W = g.Width, wp = W + 2, cpg = dg.ChannelsPerOffsetGroup;
        long L = g.OutPlane, span = (long)(r1 - r0) * OW, plane = (long)(H + 2) * wp;
        long blocks = (span + CoordBlock - 1) / CoordBlock;
        T hT = T.CreateTruncating(H), wT = T.CreateTruncating(W), minus1 = -T.One;
        Run(parallel, (long)dg.OffsetGroups * K * blocks, 1, (s, e) =>
        {
            int* idx = stackalloc int[CoordBlock];
            T* used = stackalloc T[CoordBlock];
            T* inside = stackalloc T[CoordBlock];
            T* ly = stackalloc T[CoordBlock];
            T* lx = stackalloc T[CoordBlock];
            T* hy = stackalloc T[CoordBlock];
            T* hx = stackalloc T[CoordBlock];
            T* m = stackalloc T[CoordBlock];
            T* accY = stackalloc T[CoordBlock];
            T* accX = stackalloc T[CoordBlock];
            T* accM = stackalloc T[CoordBlock];
            for (long item = s; item < e; item++)
            {
                long gk = item / blocks, blk = item % blocks;
                int og = (int)(gk / K), k = (int)(gk % K), i = k / g.KernelW, j = k % g.KernelW;
                long q0 = blk * CoordBlock;
                int n = (int)Math.Min(CoordBlock, span - q0);
                long pos0 = (long)r0 * OW + q0;
                T* dyp = off + ((long)og * 2 * K + 2 * k) * L + pos0;
                T* dxp = dyp + L;
                T* mp = mask == null ? null : mask + gk * L + pos0;
                for (int t = 0; t < n; t++)
                {
                    long pos = pos0 + t;
                    int r = (int)(pos / OW), ox = (int)(pos % OW);
                    T y = T.CreateTruncating(r * g.StrideH - g.PadH + i * g.DilationH) + dyp[t];
                    T x = T.CreateTruncating(ox * g.StrideW - g.PadW + j * g.DilationW) + dxp[t];
                    m[t] = mp == null ? T.One : mp[t];
                    accY[t] = accX[t] = accM[t] = T.Zero;
                    // The slope uses the floor and floor + 1 pixels, out-of-image ones zero: it is non-zero for
                    // floors in [-1, H-1] x [-1, W-1], which the bordered planes hold. Other samples get weight 0
                    // (used) and read the plane's first element harmlessly.
                    T fy = T.Floor(y), fx = T.Floor(x);
                    if (fy >= minus1 && fy < hT && fx >= minus1 && fx < wT)
                    {
                        idx[t] = (int.CreateTruncating(fy) + 1) * wp + int.CreateTruncating(fx) + 1;
                        used[t] = T.One;
                        ly[t] = y - fy;
                        lx[t] = x - fx;
                        // The sample itself (for the mask gradient) is zero on the -1 lines, as the forward pass reads it.
                        inside[t] = y > minus1 && x > minus1 ? T.One : T.Zero;
                    }
                    else
                    {
                        idx[t] = 0;
                        used[t] = inside[t] = ly[t] = lx[t] = T.Zero;
                    }
                    hy[t] = T.One - ly[t];
                    hx[t] = T.One - lx[t];
                }
                for (int c = og * cpg; c < (og + 1) * cpg; c++)
                {
                    T* src = xp + c * plane;
                    T* gc = col + ((long)c * K + k) * ld + q0;
                    int t = 0;
                    if (typeof(T) == typeof(float) && Avx2.IsSupported)
                        t = CoordRowAvx2((float*)src, (float*)gc, idx, (float*)used, (float*)inside, (float*)ly, (float*)lx, (float*)hy, (float*)hx,
                            (float*)accY, (float*)accX, (float*)accM, n, wp);
                    for (; t < n; t++)
                    {
                        T v = gc[t] * used[t];
                        T* p = src + idx[t];
                        T a = p[0], b = p[1], cc = p[wp], d = p[wp + 1];
                        accY[t] += v * (lx[t] * (d - b) + hx[t] * (cc - a));
                        accX[t] += v * (ly[t] * (d - cc) + hy[t] * (b - a));
                        accM[t] += v * inside[t] * (hy[t] * (hx[t] * a + lx[t] * b) + ly[t] * (hx[t] * cc + lx[t] * d));
                    }
                }
                T* gyo = gOff + ((long)og * 2 * K + 2 * k) * L + pos0;
                T* gxo = gyo + L;
                for (int t = 0; t < n; t++)
                {
                    gyo[t] = m[t] * accY[t];
                    gxo[t] = m[t] * accX[t];
                }
                if (gMask != null)
                {
                    T* gm = gMask + gk * L + pos0;
                    for (int t = 0; t < n; t++) gm[t] = accM[t];
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------------
    // The primitives (whole images, columns [Cin*K, N*L])
    // ------------------------------------------------------------------------------------------------

    private static void DeformIm2ColFor<T>(T* x, T* off, T* mask, T* col, DeformGeometry dg) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = dg.Conv;
        long L = g.OutPlane, ld = (long)g.Batch * L, plane = (long)(g.Height + 2) * (g.Width + 2);
        using var xp = new Scratch<T>(g.InChannels * plane);
        using var table = new DeformTable<T>((long)dg.MaskChannels * L);
        for (int n = 0; n < g.Batch; n++)
        {
            PadPlanes(x + (long)n * g.InChannels * g.InPlane, xp.Pointer, g.InChannels, g.Height, g.Width, true);
            BuildTable(off + (long)n * dg.OffsetChannels * L, mask == null ? null : mask + (long)n * dg.MaskChannels * L, dg, 0, g.OutHeight, table, true);
            FillColumns(xp.Pointer, table, col + n * L, ld, dg, L, true);
        }
    }

    private static void DeformCol2ImFor<T>(T* col, T* off, T* mask, T* gx, DeformGeometry dg) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = dg.Conv;
        long L = g.OutPlane, ld = (long)g.Batch * L, plane = (long)(g.Height + 2) * (g.Width + 2);
        using var gxp = new Scratch<T>(g.InChannels * plane);
        using var table = new DeformTable<T>((long)dg.MaskChannels * L);
        for (int n = 0; n < g.Batch; n++)
        {
            new Span<T>(gxp.Pointer, (int)(g.InChannels * plane)).Clear();
            BuildTable(off + (long)n * dg.OffsetChannels * L, mask == null ? null : mask + (long)n * dg.MaskChannels * L, dg, 0, g.OutHeight, table, true);
            ScatterColumns(col + n * L, ld, table, gxp.Pointer, dg, L, true);
            UnpadPlanes(gxp.Pointer, gx + (long)n * g.InChannels * g.InPlane, g.InChannels, g.Height, g.Width, true);
        }
    }

    private static void DeformCoordFor<T>(T* col, T* x, T* off, T* mask, T* gOff, T* gMask, DeformGeometry dg) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = dg.Conv;
        long L = g.OutPlane, ld = (long)g.Batch * L, plane = (long)(g.Height + 2) * (g.Width + 2);
        using var xp = new Scratch<T>(g.InChannels * plane);
        for (int n = 0; n < g.Batch; n++)
        {
            PadPlanes(x + (long)n * g.InChannels * g.InPlane, xp.Pointer, g.InChannels, g.Height, g.Width, true);
            long oo = (long)n * dg.OffsetChannels * L, mo = (long)n * dg.MaskChannels * L;
            CoordTile(col + n * L, ld, xp.Pointer, off + oo, mask == null ? null : mask + mo, gOff + oo, gMask == null ? null : gMask + mo, dg, 0, g.OutHeight, true);
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Forward and backward products, tile by tile
    // ------------------------------------------------------------------------------------------------

    /// <summary>True when whole images go to separate threads (each with one-thread GEMMs), as the plain convolution decides.</summary>
    private static bool DeformImagesInParallel(Conv2dGeometry g)
    {
        int threads = CpuParallel.Threads;
        return threads > 1 && g.Batch >= threads && (g.Batch % threads == 0 || g.Batch >= 4 * threads);
    }

    private static void DeformForward<T>(T* x, T* off, T* mask, T* w, T* bias, T* y, DeformGeometry dg) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = dg.Conv;
        if (DeformImagesInParallel(g))
            Chunked(g.Batch, 1, (s, e) => { for (long n = s; n < e; n++) DeformForwardImage(x, off, mask, w, bias, y, dg, (int)n, 1); });
        else
            for (int n = 0; n < g.Batch; n++) DeformForwardImage(x, off, mask, w, bias, y, dg, n, CpuParallel.Threads);
    }

    private static void DeformForwardImage<T>(T* x, T* off, T* mask, T* w, T* bias, T* y, DeformGeometry dg, int n, int threads)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = dg.Conv;
        int rows = DeformBandRows(g), OW = g.OutWidth, cog = g.OutPerGroup, kg = g.InPerGroup * dg.Taps;
        long L = g.OutPlane, plane = (long)(g.Height + 2) * (g.Width + 2), maxSpan = (long)rows * OW;
        bool par = threads > 1;
        using var xp = new Scratch<T>(g.InChannels * plane);
        using var col = new Scratch<T>(g.ColumnRows * maxSpan);
        using var table = new DeformTable<T>(dg.MaskChannels * maxSpan);
        T* on = off + (long)n * dg.OffsetChannels * L, mn = mask == null ? null : mask + (long)n * dg.MaskChannels * L;
        T* yn = y + (long)n * g.OutChannels * L;
        PadPlanes(x + (long)n * g.InChannels * g.InPlane, xp.Pointer, g.InChannels, g.Height, g.Width, par);
        double macsPerGroup = (double)cog * kg * maxSpan;
        for (int r0 = 0; r0 < g.OutHeight; r0 += rows)
        {
            int r1 = Math.Min(g.OutHeight, r0 + rows);
            long span = (long)(r1 - r0) * OW;
            BuildTable(on, mn, dg, r0, r1, table, par);
            FillColumns(xp.Pointer, table, col.Pointer, span, dg, span, par);
            T* cp = col.Pointer, target = yn + (long)r0 * OW;
            ForEachGroup(g, macsPerGroup, threads, (grp, t) =>
                GemmT(cog, (int)span, kg, w + (long)grp * cog * kg, kg, 1, cp + (long)grp * kg * span, span, 1, target + (long)grp * cog * L, L, false, t));
        }
        if (bias != null)
            Run(par, g.OutChannels, Math.Max(1, 16384 / Math.Max(1, (int)L)), (s, e) =>
            {
                for (long c = s; c < e; c++) AddScalar(yn + c * L, bias[c], (int)L);
            });
    }

    private static void DeformBackward<T>(T* gy, T* x, T* off, T* mask, T* w, T* gx, T* gOff, T* gMask, T* gw, DeformGeometry dg)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = dg.Conv;
        long wsize = (long)g.OutChannels * g.InPerGroup * dg.Taps;
        if (gw != null && g.Batch == 0) new Span<T>(gw, (int)wsize).Clear();
        // The weight gradient is summed over a fixed split of the images (each part in image order, then the parts in
        // order), whether the parts run on separate threads or one after another.
        int parts = Math.Max(1, Math.Min(g.Batch, 4));
        using var partial = new Scratch<T>(gw == null ? 0 : (parts - 1) * wsize);
        T* pp = partial.Pointer;
        void Part(int part, int threads)
        {
            int n0 = (int)((long)g.Batch * part / parts), n1 = (int)((long)g.Batch * (part + 1) / parts);
            T* target = gw == null ? null : part == 0 ? gw : pp + (part - 1) * wsize;
            for (int n = n0; n < n1; n++) DeformBackwardImage(gy, x, off, mask, w, gx, gOff, gMask, target, dg, n, n > n0, threads);
        }
        if (DeformImagesInParallel(g) && g.Batch >= parts)
        {
            if (parts >= CpuParallel.Threads)
                WorkerPool.Run(parts, CpuParallel.Threads, part => Part(part, 1));
            else
                for (int part = 0; part < parts; part++) Part(part, CpuParallel.Threads);
        }
        else
            for (int part = 0; part < parts && g.Batch > 0; part++) Part(part, CpuParallel.Threads);
        if (gw != null)
            for (int part = 1; part < parts; part++) AddTo(gw, pp + (part - 1) * wsize, (int)wsize);
    }

    /// <summary>The gradients of image n, band by band; gw (+)= its weight gradient (accumulating when <paramref name="accumulate"/>).</summary>
    private static void DeformBackwardImage<T>(T* gy, T* x, T* off, T* mask, T* w, T* gx, T* gOff, T* gMask, T* gw, DeformGeometry dg,
        int n, bool accumulate, int threads) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = dg.Conv;
        int rows = DeformBandRows(g), OW = g.OutWidth, cog = g.OutPerGroup, kg = g.InPerGroup * dg.Taps;
        long L = g.OutPlane, plane = (long)(g.Height + 2) * (g.Width + 2), maxSpan = (long)rows * OW;
        bool par = threads > 1, needCols = gx != null || gOff != null;
        using var xp = new Scratch<T>(g.InChannels * plane);
        using var gxp = new Scratch<T>(gx == null ? 0 : g.InChannels * plane);
        using var col = new Scratch<T>(g.ColumnRows * maxSpan);
        using var gcol = new Scratch<T>(needCols ? g.ColumnRows * maxSpan : 0);
        using var table = new DeformTable<T>(dg.MaskChannels * maxSpan);
        long oo = (long)n * dg.OffsetChannels * L, mo = (long)n * dg.MaskChannels * L;
        T* on = off + oo, mn = mask == null ? null : mask + mo;
        T* gyn = gy + (long)n * g.OutChannels * L;
        PadPlanes(x + (long)n * g.InChannels * g.InPlane, xp.Pointer, g.InChannels, g.Height, g.Width, par);
        if (gx != null) new Span<T>(gxp.Pointer, (int)(g.InChannels * plane)).Clear();
        double macsPerGroup = (double)cog * kg * maxSpan;
        for (int r0 = 0; r0 < g.OutHeight; r0 += rows)
        {
            int r1 = Math.Min(g.OutHeight, r0 + rows);
            long span = (long)(r1 - r0) * OW;
            T* source = gyn + (long)r0 * OW;
            if (gw != null || gx != null) BuildTable(on, mn, dg, r0, r1, table, par);
            if (gw != null)
            {
                FillColumns(xp.Pointer, table, col.Pointer, span, dg, span, par);
                T* cp = col.Pointer;
                bool acc = accumulate || r0 > 0;
                ForEachGroup(g, macsPerGroup, threads, (grp, t) =>
                    GemmT(cog, kg, (int)span, source + (long)grp * cog * L, L, 1, cp + (long)grp * kg * span, 1, span, gw + (long)grp * cog * kg, kg, acc, t));
            }
            if (!needCols) continue;
            T* gp = gcol.Pointer;
            // Columns gradient of the band: W_g^T [kg, cog] x gy_g [cog, span].
            ForEachGroup(g, macsPerGroup, threads, (grp, t) =>
                GemmT(kg, (int)span, cog, w + (long)grp * cog * kg, 1, kg, source + (long)grp * cog * L, L, 1, gp + (long)grp * kg * span, span, false, t));
            if (gx != null) ScatterColumns(gp, span, table, gxp.Pointer, dg, span, par);
            if (gOff != null) CoordTile(gp, span, xp.Pointer, on, mn, gOff + oo, gMask == null ? null : gMask + mo, dg, r0, r1, par);
        }
        if (gx != null) UnpadPlanes(gxp.Pointer, gx + (long)n * g.InChannels * g.InPlane, g.InChannels, g.Height, g.Width, par);
    }
}
