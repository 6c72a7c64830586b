using System.Numerics;
using System.Runtime.Intrinsics;
using Runtime.Backends;

namespace Runtime.Cpu;

// Fused scaled dot-product attention (FlashAttention-2 style). Work is split into independent tasks:
// the forward and the dq pass take (batch*head, block of query rows); the dk/dv pass takes
// (batch*head, block of keys). Each task walks the other axis in tiles in a fixed order, so the scores
// are recomputed tile by tile (never an L x S buffer: one 64 x 128 tile per thread) and every output
// element is summed by one thread in one order: the same bits on one thread or many. The tile products
// (Q K^T, P V, dO V^T, dS K, P^T dO, dS^T Q) are the packed GEMM on one thread; the online softmax
// rescaling and exponentials are 256-bit SIMD with a scalar tail.
internal sealed unsafe partial class CpuBackend
{
    // Tile sizes: the forward and dq pass take 64 query rows against 128-key tiles, the dk/dv pass 64 keys
    // against 128-query tiles. Each tile product is the packed GEMM on one thread.
    private const int AttnRows = 64;
    private const int AttnCols = 128;

    /// <summary>Geometry and mask of one attention call, shared by its tasks.</summary>
    private readonly struct AttnGeom
    {
        public AttnGeom(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale)
        {
            B = q.Shape[0]; H = q.Shape[1]; L = q.Shape[2]; D = q.Shape[3]; S = k.Shape[2]; Dv = v.Shape[3];
            Scale = scale;
            Kind = mask.Kind;
            Causal = mask.Causal;
            if (Kind != AttentionMaskKind.None)
            {
                MaskPtr = Ptr(mask.View);
                var st = mask.View.Strides;
                Sb = st[0]; Sh = st[1]; Sl = st[2]; Ss = st[3];
            }
        }

        public readonly int B, H, L, D, S, Dv;
        public readonly double Scale;
        public readonly AttentionMaskKind Kind;
        public readonly bool Causal;
        public readonly nint MaskPtr;
        public readonly long Sb, Sh, Sl, Ss;

        /// <summary>Element offset of mask[b, h, i, 0].</summary>
        public long MaskRow(int bh, int i) => (bh / H) * Sb + (bh % H) * Sh + i * Sl;

        /// <summary>One past the last key query <paramref name="i"/> may see (causal: i + 1).</summary>
        public int KeyEnd(int i) => Causal ? Math.Min(S, i + 1) : S;
    }

    /// <summary>C[m, n] (+)= A[m, k] B[k, n] on this thread, any strides.</summary>
    private static void AttnGemm<T>(int m, int n, int k, T* a, long rsA, long csA, T* b, long rsB, long csB, T* c, long ldc, bool accumulate) where T : unmanaged
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate)
                for (int r = 0; r < m; r++) new Span<T>(c + r * ldc, n).Clear();
            return;
        }
        if (typeof(T) == typeof(float)) Gemm.Sgemm(m, n, k, (float*)a, rsA, csA, (float*)b, rsB, csB, (float*)c, ldc, accumulate, 1);
        else Gemm.Dgemm(m, n, k, (double*)a, rsA, csA, (double*)b, rsB, csB, (double*)c, ldc, accumulate, 1);
    }

    /// <summary>
    /// Turns raw products s[0..n) of query <paramref name="i"/> with keys [j0, j0 + n) into masked, scaled
    /// scores (hidden keys: -infinity).
    /// </summary>
    private static void AttnMaskRow<T>(in AttnGeom g, int bh, int i, T* s, int j0, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int live = Math.Clamp(g.KeyEnd(i) - j0, 0, n);
        AttnScale(s, T.CreateTruncating(g.Scale), live);
        for (int j = live; j < n; j++) s[j] = T.NegativeInfinity;
        if (g.Kind == AttentionMaskKind.Boolean)
        {
            byte* m = (byte*)g.MaskPtr + g.MaskRow(bh, i) + j0 * g.Ss;
            for (int j = 0; j < live; j++)
                if (m[j * g.Ss] == 0) s[j] = T.NegativeInfinity;
        }
        else if (g.Kind == AttentionMaskKind.Additive)
        {
            T* m = (T*)g.MaskPtr + g.MaskRow(bh, i) + j0 * g.Ss;
            for (int j = 0; j < live; j++) s[j] += m[j * g.Ss];
        }
    }

    public void Attention(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale, TensorView output, TensorView logSumExp)
    {
        if (q.DType == DType.Float32) AttentionFor<float>(q, k, v, mask, scale, output, logSumExp);
        else AttentionFor<double>(q, k, v, mask, scale, output, logSumExp);
    }

    private static void AttentionFor<T>(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale, TensorView output, TensorView logSumExp)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new AttnGeom(q, k, v, mask, scale);
        nint pq = Ptr(q), pk = Ptr(k), pv = Ptr(v), po = Ptr(output), pl = Ptr(logSumExp);
        int blocks = (g.L + AttnRows - 1) / AttnRows;
        CpuParallel.For((long)g.B * g.H * blocks, 1, (t0, t1) =>
        {
            var accBuf = new T[AttnRows * g.Dv];
            var mBuf = new T[AttnRows];
            var lBuf = new T[AttnRows];
            var sBuf = new T[AttnRows * AttnCols];
            fixed (T* acc = accBuf)
            fixed (T* m = mBuf)
            fixed (T* l = lBuf)
            fixed (T* sp = sBuf)
            {
                for (long t = t0; t < t1; t++)
                {
                    int bh = (int)(t / blocks), i0 = (int)(t % blocks) * AttnRows;
                    int rows = Math.Min(AttnRows, g.L - i0);
                    T* qb = (T*)pq + ((long)bh * g.L + i0) * g.D;
                    T* kb = (T*)pk + (long)bh * g.S * g.D;
                    T* vb = (T*)pv + (long)bh * g.S * g.Dv;
                    new Span<T>(acc, rows * g.Dv).Clear();
                    for (int r = 0; r < rows; r++)
                    {
                        m[r] = T.NegativeInfinity;
                        l[r] = T.Zero;
                    }
                    int keyEnd = g.KeyEnd(i0 + rows - 1);
                    for (int j0 = 0; j0 < keyEnd; j0 += AttnCols)
                    {
                        int nk = Math.Min(AttnCols, keyEnd - j0);
                        // S = Q K^T for this tile.
                        AttnGemm(rows, nk, g.D, qb, g.D, 1, kb + (long)j0 * g.D, 1, g.D, sp, AttnCols, false);
                        for (int r = 0; r < rows; r++)
                        {
                            T* s = sp + r * AttnCols;
                            AttnMaskRow(g, bh, i0 + r, s, j0, nk);
                            T mt = T.NegativeInfinity;
                            for (int j = 0; j < nk; j++) mt = T.Max(mt, s[j]);
                            T mNew = T.Max(m[r], mt);
                            if (T.IsNegativeInfinity(mNew))
                            {
                                // Nothing visible yet: the row adds nothing.
                                new Span<T>(s, nk).Clear();
                                continue;
                            }
                            if (m[r] != mNew)
                            {
                                T alpha = T.Exp(m[r] - mNew);
                                AttnScale(acc + (long)r * g.Dv, alpha, g.Dv);
                                l[r] *= alpha;
                                m[r] = mNew;
                            }
                            l[r] += AttnExpRow(s, nk, mNew);
                        }
                        // acc += P V.
                        AttnGemm(rows, g.Dv, nk, sp, AttnCols, 1, vb + (long)j0 * g.Dv, g.Dv, 1, acc, g.Dv, true);
                    }
                    for (int r = 0; r < rows; r++)
                    {
                        long row = (long)bh * g.L + i0 + r;
                        T* o = (T*)po + row * g.Dv;
                        T* ar = acc + (long)r * g.Dv;
                        if (l[r] > T.Zero)
                        {
                            T inv = T.One / l[r];
                            for (int c = 0; c < g.Dv; c++) o[c] = ar[c] * inv;
                            ((T*)pl)[row] = m[r] + T.Log(l[r]);
                        }
                        else
                        {
                            // Every key masked: zeros (torch's explicit softmax would give NaN).
                            for (int c = 0; c < g.Dv; c++) o[c] = T.Zero;
                            ((T*)pl)[row] = T.NegativeInfinity;
                        }
                    }
                }
            }
        });
    }

    public void AttentionBackward(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale, TensorView output, TensorView logSumExp,
        TensorView gradOutput, TensorView gradQ, TensorView gradK, TensorView gradV)
    {
        if (q.DType == DType.Float32) AttentionBackwardFor<float>(q, k, v, mask, scale, output, logSumExp, gradOutput, gradQ, gradK, gradV);
        else AttentionBackwardFor<double>(q, k, v, mask, scale, output, logSumExp, gradOutput, gradQ, gradK, gradV);
    }

    /// <summary>
    /// Recomputes the probabilities of a tile: S (raw products, [rows, n] with row stride ld) becomes
    /// P = exp(masked scaled score - lse), then dP (dout . v products, same layout) becomes dS = P (dP - D).
    /// </summary>
    private static void AttnGradTile<T>(in AttnGeom g, int bh, int i0, int rows, int j0, int n, T* s, T* dp, int ld, T* lse, T* drow)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            T* sr = s + (long)r * ld;
            T* dr = dp + (long)r * ld;
            T rowLse = lse[r];
            if (T.IsNegativeInfinity(rowLse))
            {
                new Span<T>(sr, n).Clear();
                new Span<T>(dr, n).Clear();
                continue;
            }
            AttnMaskRow(g, bh, i0 + r, sr, j0, n);
            AttnExpRow(sr, n, rowLse);
            T dd = drow[r];
            for (int j = 0; j < n; j++) dr[j] = sr[j] * (dr[j] - dd);
        }
    }

    private static void AttentionBackwardFor<T>(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale, TensorView output, TensorView logSumExp,
        TensorView gradOutput, TensorView gradQ, TensorView gradK, TensorView gradV) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new AttnGeom(q, k, v, mask, scale);
        nint pq = Ptr(q), pk = Ptr(k), pv = Ptr(v), po = Ptr(output), pl = Ptr(logSumExp), pdo = Ptr(gradOutput);
        nint pdq = Ptr(gradQ), pdk = Ptr(gradK), pdv = Ptr(gradV);
        long rowsAll = (long)g.B * g.H * g.L;
        T sc = T.CreateTruncating(scale);
        int d = g.D, dv = g.Dv;
        // Drow[i] = dout[i] . out[i]: the softmax backward's row term (linear in L).
        var drowBuf = new T[rowsAll];
        fixed (T* drowFixed = drowBuf)
        {
            nint pdr = (nint)drowFixed;
            CpuParallel.For(rowsAll, Math.Max(1, 4096 / Math.Max(1, dv)), (r0, r1) =>
            {
                for (long r = r0; r < r1; r++) ((T*)pdr)[r] = AttnDot((T*)pdo + r * dv, (T*)po + r * dv, dv);
            });

            // dq: per (batch*head, block of query rows), key tiles in order.
            int qBlocks = (g.L + AttnRows - 1) / AttnRows;
            CpuParallel.For((long)g.B * g.H * qBlocks, 1, (t0, t1) =>
            {
                var sBuf = new T[AttnRows * AttnCols];
                var dpBuf = new T[AttnRows * AttnCols];
                fixed (T* sp = sBuf)
                fixed (T* dpp = dpBuf)
                {
                    for (long t = t0; t < t1; t++)
                    {
                        int bh = (int)(t / qBlocks), i0 = (int)(t % qBlocks) * AttnRows;
                        int rows = Math.Min(AttnRows, g.L - i0);
                        long rowBase = (long)bh * g.L + i0;
                        T* qb = (T*)pq + rowBase * d;
                        T* dob = (T*)pdo + rowBase * dv;
                        T* kb = (T*)pk + (long)bh * g.S * d;
                        T* vb = (T*)pv + (long)bh * g.S * dv;
                        T* dqb = (T*)pdq + rowBase * d;
                        new Span<T>(dqb, rows * d).Clear();
                        int keyEnd = g.KeyEnd(i0 + rows - 1);
                        for (int j0 = 0; j0 < keyEnd; j0 += AttnCols)
                        {
                            int nk = Math.Min(AttnCols, keyEnd - j0);
                            AttnGemm(rows, nk, d, qb, d, 1, kb + (long)j0 * d, 1, d, sp, AttnCols, false);
                            AttnGemm(rows, nk, dv, dob, dv, 1, vb + (long)j0 * dv, 1, dv, dpp, AttnCols, false);
                            AttnGradTile(g, bh, i0, rows, j0, nk, sp, dpp, AttnCols, (T*)pl + rowBase, (T*)pdr + rowBase);
                            // dq += dS K.
                            AttnGemm(rows, d, nk, dpp, AttnCols, 1, kb + (long)j0 * d, d, 1, dqb, d, true);
                        }
                        AttnScale(dqb, sc, rows * d);
                    }
                }
            });

            // dk, dv: per (batch*head, block of keys), query tiles in order.
            int kBlocks = (g.S + AttnRows - 1) / AttnRows;
            CpuParallel.For((long)g.B * g.H * kBlocks, 1, (t0, t1) =>
            {
                var sBuf = new T[AttnCols * AttnRows];
                var dpBuf = new T[AttnCols * AttnRows];
                fixed (T* sp = sBuf)
                fixed (T* dpp = dpBuf)
                {
                    for (long t = t0; t < t1; t++)
                    {
                        int bh = (int)(t / kBlocks), j0 = (int)(t % kBlocks) * AttnRows;
                        int nk = Math.Min(AttnRows, g.S - j0);
                        T* qb = (T*)pq + (long)bh * g.L * d;
                        T* dob = (T*)pdo + (long)bh * g.L * dv;
                        T* kb = (T*)pk + ((long)bh * g.S + j0) * d;
                        T* vb = (T*)pv + ((long)bh * g.S + j0) * dv;
                        T* dkb = (T*)pdk + ((long)bh * g.S + j0) * d;
                        T* dvb = (T*)pdv + ((long)bh * g.S + j0) * dv;
                        new Span<T>(dkb, nk * d).Clear();
                        new Span<T>(dvb, nk * dv).Clear();
                        // Causal: queries before the block's first key see none of it.
                        for (int i0 = g.Causal ? Math.Min(j0, g.L) : 0; i0 < g.L; i0 += AttnCols)
                        {
                            int nq = Math.Min(AttnCols, g.L - i0);
                            long rowBase = (long)bh * g.L + i0;
                            AttnGemm(nq, nk, d, qb + (long)i0 * d, d, 1, kb, 1, d, sp, AttnRows, false);
                            AttnGemm(nq, nk, dv, dob + (long)i0 * dv, dv, 1, vb, 1, dv, dpp, AttnRows, false);
                            AttnGradTile(g, bh, i0, nq, j0, nk, sp, dpp, AttnRows, (T*)pl + rowBase, (T*)pdr + rowBase);
                            // dv += P^T dout, dk += dS^T q.
                            AttnGemm(nk, dv, nq, sp, 1, AttnRows, dob + (long)i0 * dv, dv, 1, dvb, dv, true);
                            AttnGemm(nk, d, nq, dpp, 1, AttnRows, qb + (long)i0 * d, d, 1, dkb, d, true);
                        }
                        AttnScale(dkb, sc, nk * d);
                    }
                }
            });
        }
    }

    /// <summary>s[j] = exp(s[j] - sub) for j &lt; n; returns their sum (a fixed order).</summary>
    private static T AttnExpRow<T>(T* s, int n, T sub) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        T sum = T.Zero;
        if (Vector256.IsHardwareAccelerated)
        {
            if (typeof(T) == typeof(float))
            {
                float* f = (float*)s;
                var sv = Vector256.Create(float.CreateTruncating(sub));
                var acc = Vector256<float>.Zero;
                for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                {
                    var e = Vector256.Exp(Vector256.Load(f + i) - sv);
                    e.Store(f + i);
                    acc += e;
                }
                sum = T.CreateTruncating(Vector256.Sum(acc));
            }
            else
            {
                double* f = (double*)s;
                var sv = Vector256.Create(double.CreateTruncating(sub));
                var acc = Vector256<double>.Zero;
                for (; i <= n - Vector256<double>.Count; i += Vector256<double>.Count)
                {
                    var e = Vector256.Exp(Vector256.Load(f + i) - sv);
                    e.Store(f + i);
                    acc += e;
                }
                sum = T.CreateTruncating(Vector256.Sum(acc));
            }
        }
        for (; i < n; i++)
        {
            T e = T.Exp(s[i] - sub);
            s[i] = e;
            sum += e;
        }
        return sum;
    }

    /// <summary>a . b over n elements.</summary>
    private static T AttnDot<T>(T* a, T* b, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        T sum = T.Zero;
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            var acc = Vector512<T>.Zero;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
                acc = AttnFma(Vector512.Load(a + i), Vector512.Load(b + i), acc);
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            var acc = Vector256<T>.Zero;
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
                acc = AttnFma(Vector256.Load(a + i), Vector256.Load(b + i), acc);
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>y *= alpha over n elements.</summary>
    private static void AttnScale<T>(T* y, T alpha, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var a = Vector256.Create(alpha);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count) (Vector256.Load(y + i) * a).Store(y + i);
        }
        for (; i < n; i++) y[i] *= alpha;
    }

    private static Vector512<T> AttnFma<T>(Vector512<T> a, Vector512<T> b, Vector512<T> c) where T : unmanaged =>
        typeof(T) == typeof(float)
            ? Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    private static Vector256<T> AttnFma<T>(Vector256<T> a, Vector256<T> b, Vector256<T> c) where T : unmanaged =>
        typeof(T) == typeof(float)
            ? Vector256.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector256.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
}
