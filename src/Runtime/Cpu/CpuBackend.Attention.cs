using System.Numerics;
using System.Runtime.Intrinsics;
using Runtime.Backends;

namespace Runtime.Cpu;

// Fused scaled dot-product attention (FlashAttention-2 style). Work is split into independent tasks:
// the forward and the dq pass take (batch*head, block of query rows); the dk/dv pass takes
// (batch*head, block of keys). Each task walks the other axis in tiles in a fixed order, so the scores
// are recomputed tile by tile (never an L x S buffer) and every output element is summed by one thread
// in one order: the same bits on one thread or many. The row products are SIMD dot products and axpys
// (512- or 256-bit vectors, scalar tail).
internal sealed unsafe partial class CpuBackend
{
    private const int AttnQueryBlock = 32;
    private const int AttnKeyTile = 128;
    private const int AttnKeyBlock = 32;

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

        /// <summary>The last key query <paramref name="i"/> may see (causal: i), plus one.</summary>
        public int KeyEnd(int i) => Causal ? Math.Min(S, i + 1) : S;
    }

    /// <summary>Masked, scaled scores s[j - j0] of query row <paramref name="qi"/> against keys [j0, j1).</summary>
    private static void AttnScores<T>(in AttnGeom g, int bh, int i, T* qi, T* kb, int j0, int j1, T* s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T scale = T.CreateTruncating(g.Scale);
        int jEnd = Math.Min(j1, g.KeyEnd(i));
        for (int j = j0; j < jEnd; j++) s[j - j0] = scale * AttnDot(qi, kb + (long)j * g.D, g.D);
        for (int j = Math.Max(jEnd, j0); j < j1; j++) s[j - j0] = T.NegativeInfinity;
        if (g.Kind == AttentionMaskKind.Boolean)
        {
            byte* m = (byte*)g.MaskPtr + g.MaskRow(bh, i);
            for (int j = j0; j < jEnd; j++)
                if (m[j * g.Ss] == 0) s[j - j0] = T.NegativeInfinity;
        }
        else if (g.Kind == AttentionMaskKind.Additive)
        {
            T* m = (T*)g.MaskPtr + g.MaskRow(bh, i);
            for (int j = j0; j < jEnd; j++) s[j - j0] += m[j * g.Ss];
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
        int blocks = (g.L + AttnQueryBlock - 1) / AttnQueryBlock;
        long tasks = (long)g.B * g.H * blocks;
        CpuParallel.For(tasks, 1, (t0, t1) =>
        {
            var accBuf = new T[AttnQueryBlock * g.Dv];
            var mBuf = new T[AttnQueryBlock];
            var lBuf = new T[AttnQueryBlock];
            var sBuf = new T[AttnKeyTile];
            fixed (T* acc = accBuf)
            fixed (T* m = mBuf)
            fixed (T* l = lBuf)
            fixed (T* s = sBuf)
            {
                for (long t = t0; t < t1; t++)
                {
                    int bh = (int)(t / blocks), i0 = (int)(t % blocks) * AttnQueryBlock;
                    int rows = Math.Min(AttnQueryBlock, g.L - i0);
                    T* qb = (T*)pq + (long)bh * g.L * g.D;
                    T* kb = (T*)pk + (long)bh * g.S * g.D;
                    T* vb = (T*)pv + (long)bh * g.S * g.Dv;
                    new Span<T>(acc, rows * g.Dv).Clear();
                    for (int r = 0; r < rows; r++)
                    {
                        m[r] = T.NegativeInfinity;
                        l[r] = T.Zero;
                    }
                    int keyEnd = g.KeyEnd(i0 + rows - 1);
                    for (int j0 = 0; j0 < keyEnd; j0 += AttnKeyTile)
                    {
                        int j1 = Math.Min(keyEnd, j0 + AttnKeyTile);
                        for (int r = 0; r < rows; r++)
                        {
                            int i = i0 + r;
                            AttnScores(g, bh, i, qb + (long)i * g.D, kb, j0, j1, s);
                            T mt = T.NegativeInfinity;
                            for (int j = 0; j < j1 - j0; j++) mt = T.Max(mt, s[j]);
                            T mNew = T.Max(m[r], mt);
                            if (T.IsNegativeInfinity(mNew)) continue; // nothing visible yet
                            T* ar = acc + (long)r * g.Dv;
                            if (m[r] != mNew)
                            {
                                T alpha = T.Exp(m[r] - mNew);
                                AttnScale(ar, alpha, g.Dv);
                                l[r] *= alpha;
                                m[r] = mNew;
                            }
                            T sum = T.Zero;
                            for (int j = 0; j < j1 - j0; j++)
                            {
                                T p = T.Exp(s[j] - mNew);
                                if (p == T.Zero) continue;
                                sum += p;
                                AttnAxpy(ar, p, vb + (long)(j0 + j) * g.Dv, g.Dv);
                            }
                            l[r] += sum;
                        }
                    }
                    for (int r = 0; r < rows; r++)
                    {
                        int i = i0 + r;
                        T* o = (T*)po + ((long)bh * g.L + i) * g.Dv;
                        T* ar = acc + (long)r * g.Dv;
                        if (l[r] > T.Zero)
                        {
                            T inv = T.One / l[r];
                            for (int c = 0; c < g.Dv; c++) o[c] = ar[c] * inv;
                            ((T*)pl)[(long)bh * g.L + i] = m[r] + T.Log(l[r]);
                        }
                        else
                        {
                            // Every key masked: zeros (torch's explicit softmax would give NaN).
                            for (int c = 0; c < g.Dv; c++) o[c] = T.Zero;
                            ((T*)pl)[(long)bh * g.L + i] = T.NegativeInfinity;
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

    private static void AttentionBackwardFor<T>(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale, TensorView output, TensorView logSumExp,
        TensorView gradOutput, TensorView gradQ, TensorView gradK, TensorView gradV) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var g = new AttnGeom(q, k, v, mask, scale);
        nint pq = Ptr(q), pk = Ptr(k), pv = Ptr(v), po = Ptr(output), pl = Ptr(logSumExp), pdo = Ptr(gradOutput);
        nint pdq = Ptr(gradQ), pdk = Ptr(gradK), pdv = Ptr(gradV);
        long rowsAll = (long)g.B * g.H * g.L;
        T sc = T.CreateTruncating(scale);
        // Drow[i] = dout[i] . out[i]: the softmax backward's row term.
        var drowBuf = new T[rowsAll];
        fixed (T* drowFixed = drowBuf)
        {
            nint pdr = (nint)drowFixed;
            CpuParallel.For(rowsAll, Math.Max(1, 4096 / Math.Max(1, g.Dv)), (r0, r1) =>
            {
                for (long r = r0; r < r1; r++) ((T*)pdr)[r] = AttnDot((T*)pdo + r * g.Dv, (T*)po + r * g.Dv, g.Dv);
            });

            // dq: per (batch*head, query block), keys in tiles.
            int qBlocks = (g.L + AttnQueryBlock - 1) / AttnQueryBlock;
            CpuParallel.For((long)g.B * g.H * qBlocks, 1, (t0, t1) =>
            {
                var sBuf = new T[AttnKeyTile];
                fixed (T* s = sBuf)
                {
                    for (long t = t0; t < t1; t++)
                    {
                        int bh = (int)(t / qBlocks), i0 = (int)(t % qBlocks) * AttnQueryBlock;
                        int rows = Math.Min(AttnQueryBlock, g.L - i0);
                        T* qb = (T*)pq + (long)bh * g.L * g.D;
                        T* kb = (T*)pk + (long)bh * g.S * g.D;
                        T* vb = (T*)pv + (long)bh * g.S * g.Dv;
                        T* dqb = (T*)pdq + (long)bh * g.L * g.D;
                        new Span<T>(dqb + (long)i0 * g.D, rows * g.D).Clear();
                        int keyEnd = g.KeyEnd(i0 + rows - 1);
                        for (int j0 = 0; j0 < keyEnd; j0 += AttnKeyTile)
                        {
                            int j1 = Math.Min(keyEnd, j0 + AttnKeyTile);
                            for (int r = 0; r < rows; r++)
                            {
                                int i = i0 + r;
                                long row = (long)bh * g.L + i;
                                T lse = ((T*)pl)[row];
                                if (T.IsNegativeInfinity(lse)) continue;
                                T dr = ((T*)pdr)[row];
                                T* doi = (T*)pdo + row * g.Dv;
                                T* dqi = dqb + (long)i * g.D;
                                AttnScores(g, bh, i, qb + (long)i * g.D, kb, j0, j1, s);
                                for (int j = 0; j < j1 - j0; j++)
                                {
                                    T p = T.Exp(s[j] - lse);
                                    if (p == T.Zero) continue;
                                    T ds = p * (AttnDot(doi, vb + (long)(j0 + j) * g.Dv, g.Dv) - dr);
                                    AttnAxpy(dqi, ds, kb + (long)(j0 + j) * g.D, g.D);
                                }
                            }
                        }
                        AttnScale(dqb + (long)i0 * g.D, sc, rows * g.D);
                    }
                }
            });

            // dk, dv: per (batch*head, key block), queries in order.
            int kBlocks = (g.S + AttnKeyBlock - 1) / AttnKeyBlock;
            CpuParallel.For((long)g.B * g.H * kBlocks, 1, (t0, t1) =>
            {
                var sBuf = new T[AttnKeyBlock];
                fixed (T* s = sBuf)
                {
                    for (long t = t0; t < t1; t++)
                    {
                        int bh = (int)(t / kBlocks), j0 = (int)(t % kBlocks) * AttnKeyBlock;
                        int j1 = Math.Min(g.S, j0 + AttnKeyBlock);
                        T* qb = (T*)pq + (long)bh * g.L * g.D;
                        T* kb = (T*)pk + (long)bh * g.S * g.D;
                        T* vb = (T*)pv + (long)bh * g.S * g.Dv;
                        T* dkb = (T*)pdk + (long)bh * g.S * g.D;
                        T* dvb = (T*)pdv + (long)bh * g.S * g.Dv;
                        new Span<T>(dkb + (long)j0 * g.D, (j1 - j0) * g.D).Clear();
                        new Span<T>(dvb + (long)j0 * g.Dv, (j1 - j0) * g.Dv).Clear();
                        // Causal: queries before the block's first key see none of it.
                        for (int i = g.Causal ? Math.Min(j0, g.L) : 0; i < g.L; i++)
                        {
                            long row = (long)bh * g.L + i;
                            T lse = ((T*)pl)[row];
                            if (T.IsNegativeInfinity(lse)) continue;
                            T dr = ((T*)pdr)[row];
                            T* qi = qb + (long)i * g.D;
                            T* doi = (T*)pdo + row * g.Dv;
                            AttnScores(g, bh, i, qi, kb, j0, j1, s);
                            for (int j = j0; j < j1; j++)
                            {
                                T p = T.Exp(s[j - j0] - lse);
                                if (p == T.Zero) continue;
                                AttnAxpy(dvb + (long)j * g.Dv, p, doi, g.Dv);
                                T ds = p * (AttnDot(doi, vb + (long)j * g.Dv, g.Dv) - dr);
                                AttnAxpy(dkb + (long)j * g.D, ds, qi, g.D);
                            }
                        }
                        AttnScale(dkb + (long)j0 * g.D, sc, (j1 - j0) * g.D);
                    }
                }
            });
        }
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

    /// <summary>y += alpha * x over n elements.</summary>
    private static void AttnAxpy<T>(T* y, T alpha, T* x, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            var a = Vector512.Create(alpha);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
                AttnFma(a, Vector512.Load(x + i), Vector512.Load(y + i)).Store(y + i);
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            var a = Vector256.Create(alpha);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
                AttnFma(a, Vector256.Load(x + i), Vector256.Load(y + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] += alpha * x[i];
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
