using System.Numerics;
using System.Runtime.Intrinsics;
using Runtime.Backends;

namespace Runtime.Cpu;

internal sealed unsafe partial class CpuBackend
{
    public void Reduce(ReduceOp op, TensorView x, TensorView y, int outer, int k, int inner)
    {
        switch (x.DType)
        {
            case DType.Float32: ReduceFor<float>(op, Ptr(x), Ptr(y), outer, k, inner); break;
            case DType.Float64: ReduceFor<double>(op, Ptr(x), Ptr(y), outer, k, inner); break;
            case DType.Int32: ReduceFor<int>(op, Ptr(x), Ptr(y), outer, k, inner); break;
            case DType.Int64: ReduceFor<long>(op, Ptr(x), Ptr(y), outer, k, inner); break;
            default: ReduceFor<byte>(op, Ptr(x), Ptr(y), outer, k, inner); break;
        }
    }

    private static void ReduceFor<T>(ReduceOp op, nint x, nint y, int outer, int k, int inner) where T : unmanaged, INumber<T>
    {
        switch (op)
        {
            case ReduceOp.Sum: Reduce<T, BinaryFns.Add>(x, y, outer, k, inner, T.Zero); break;
            case ReduceOp.Prod: Reduce<T, BinaryFns.Mul>(x, y, outer, k, inner, T.One); break;
            case ReduceOp.Max or ReduceOp.Any: Reduce<T, BinaryFns.Maximum>(x, y, outer, k, inner, T.Zero); break;
            case ReduceOp.Min or ReduceOp.All: Reduce<T, BinaryFns.Minimum>(x, y, outer, k, inner, T.One); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "unknown reduction");
        }
    }

    /// <summary>Folds a contiguous run with TF, SIMD when wide enough; <paramref name="empty"/> for k == 0.</summary>
    private static T FoldRow<T, TF>(T* x, long k, T empty) where T : unmanaged, INumber<T> where TF : struct, IBinaryFn
    {
        if (k == 0) return empty;
        long i = 0;
        T acc;
        if (Vector512.IsHardwareAccelerated && k >= 4 * Vector512<T>.Count)
        {
            int w = Vector512<T>.Count;
            var a0 = Vector512.Load(x); var a1 = Vector512.Load(x + w);
            var a2 = Vector512.Load(x + 2 * w); var a3 = Vector512.Load(x + 3 * w);
            for (i = 4 * w; i <= k - 4 * w; i += 4 * w)
            {
                a0 = TF.V(a0, Vector512.Load(x + i)); a1 = TF.V(a1, Vector512.Load(x + i + w));
                a2 = TF.V(a2, Vector512.Load(x + i + 2 * w)); a3 = TF.V(a3, Vector512.Load(x + i + 3 * w));
            }
            var v = TF.V(TF.V(a0, a1), TF.V(a2, a3));
            acc = v[0];
            for (int j = 1; j < w; j++) acc = TF.F(acc, v[j]);
        }
        else if (Vector256.IsHardwareAccelerated && k >= 4 * Vector256<T>.Count)
        {
            int w = Vector256<T>.Count;
            var a0 = Vector256.Load(x); var a1 = Vector256.Load(x + w);
            var a2 = Vector256.Load(x + 2 * w); var a3 = Vector256.Load(x + 3 * w);
            for (i = 4 * w; i <= k - 4 * w; i += 4 * w)
            {
                a0 = TF.V(a0, Vector256.Load(x + i)); a1 = TF.V(a1, Vector256.Load(x + i + w));
                a2 = TF.V(a2, Vector256.Load(x + i + 2 * w)); a3 = TF.V(a3, Vector256.Load(x + i + 3 * w));
            }
            var v = TF.V(TF.V(a0, a1), TF.V(a2, a3));
            acc = v[0];
            for (int j = 1; j < w; j++) acc = TF.F(acc, v[j]);
        }
        else
        {
            acc = x[0];
            i = 1;
        }
        for (; i < k; i++) acc = TF.F(acc, x[i]);
        return acc;
    }

    /// <summary>acc[i] = TF(acc[i], x[i]) over a contiguous run, SIMD when available.</summary>
    private static void FoldInto<T, TF>(T* acc, T* x, long n) where T : unmanaged, INumber<T> where TF : struct, IBinaryFn
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (int w = Vector512<T>.Count; i <= n - w; i += w) Vector512.Store(TF.V(Vector512.Load(acc + i), Vector512.Load(x + i)), acc + i);
        else if (Vector256.IsHardwareAccelerated)
            for (int w = Vector256<T>.Count; i <= n - w; i += w) Vector256.Store(TF.V(Vector256.Load(acc + i), Vector256.Load(x + i)), acc + i);
        for (; i < n; i++) acc[i] = TF.F(acc[i], x[i]);
    }

    private static void Reduce<T, TF>(nint xp, nint yp, int outer, int k, int inner, T empty)
        where T : unmanaged, INumber<T>
        where TF : struct, IBinaryFn
    {
        if (inner == 1)
        {
            if (outer == 1 && k >= 1 << 16 && CpuParallel.Threads > 1)
            {
                // One long row: fold pieces in parallel, then fold the partial results in order.
                int pieces = CpuParallel.Threads;
                var partial = new T[pieces];
                CpuParallel.For(pieces, 1, (s, e) =>
                {
                    for (long p = s; p < e; p++)
                    {
                        long a = k * p / pieces, b = k * (p + 1) / pieces;
                        partial[p] = FoldRow<T, TF>((T*)xp + a, b - a, empty);
                    }
                });
                T acc = partial[0];
                for (int p = 1; p < pieces; p++) acc = TF.F(acc, partial[p]);
                *(T*)yp = acc;
                return;
            }
            CpuParallel.For(outer, Math.Max(1, (1 << 15) / Math.Max(1, k)), (s, e) =>
            {
                for (long o = s; o < e; o++) ((T*)yp)[o] = FoldRow<T, TF>((T*)xp + o * k, k, empty);
            });
            return;
        }
        long work = (long)outer * inner;
        CpuParallel.For(work, Math.Max(64, (1 << 15) / Math.Max(1, k)), (s, e) =>
        {
            // Pieces are runs of (outer, inner) positions; each run stays inside one outer block.
            long p = s;
            while (p < e)
            {
                long o = p / inner, i0 = p % inner;
                long n = Math.Min(inner - i0, e - p);
                T* acc = (T*)yp + o * inner + i0;
                T* src = (T*)xp + o * (long)k * inner + i0;
                if (k == 0) new Span<T>(acc, (int)n).Fill(empty);
                else
                {
                    Buffer.MemoryCopy(src, acc, n * sizeof(T), n * sizeof(T));
                    for (int kk = 1; kk < k; kk++) FoldInto<T, TF>(acc, src + (long)kk * inner, n);
                }
                p += n;
            }
        });
    }

    public void ArgReduce(bool max, TensorView x, TensorView indices, int outer, int k, int inner)
    {
        switch (x.DType)
        {
            case DType.Float32: ArgReduceFor<float>(max, Ptr(x), Ptr(indices), outer, k, inner); break;
            case DType.Float64: ArgReduceFor<double>(max, Ptr(x), Ptr(indices), outer, k, inner); break;
            case DType.Int32: ArgReduceFor<int>(max, Ptr(x), Ptr(indices), outer, k, inner); break;
            case DType.Int64: ArgReduceFor<long>(max, Ptr(x), Ptr(indices), outer, k, inner); break;
            default: ArgReduceFor<byte>(max, Ptr(x), Ptr(indices), outer, k, inner); break;
        }
    }

    private static void ArgReduceFor<T>(bool max, nint xp, nint ip, int outer, int k, int inner) where T : unmanaged, INumber<T>
    {
        CpuParallel.For((long)outer * inner, Math.Max(1, (1 << 14) / Math.Max(1, k)), (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                long o = p / inner, i = p % inner;
                T* row = (T*)xp + o * (long)k * inner + i;
                T best = row[0];
                long bi = 0;
                // NaN counts as the extreme value (first NaN wins), as in PyTorch.
                bool bestNaN = T.IsNaN(best);
                for (long j = 1; j < k && !bestNaN; j++)
                {
                    T v = row[j * inner];
                    if (T.IsNaN(v)) { bi = j; bestNaN = true; }
                    else if (max ? v > best : v < best) { best = v; bi = j; }
                }
                ((long*)ip)[p] = bi;
            }
        });
    }

    public void Softmax(TensorView x, TensorView y, int outer, int k, int inner, bool log)
    {
        if (x.DType == DType.Float32) SoftmaxFor<float>(Ptr(x), Ptr(y), outer, k, inner, log);
        else SoftmaxFor<double>(Ptr(x), Ptr(y), outer, k, inner, log);
    }

    private static void SoftmaxFor<T>(nint xp, nint yp, int outer, int k, int inner, bool log) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (inner == 1)
        {
            CpuParallel.For(outer, Math.Max(1, (1 << 13) / Math.Max(1, k)), (s, e) =>
            {
                for (long o = s; o < e; o++) SoftmaxRow((T*)xp + o * k, (T*)yp + o * k, k, log);
            });
            return;
        }
        // Softmax over a strided axis: work on column tiles so every pass is a contiguous vector loop.
        const int tile = 512;
        long tilesPerBlock = (inner + tile - 1) / tile;
        CpuParallel.For(outer * tilesPerBlock, Math.Max(1, (1 << 15) / Math.Max(1, (long)k * tile)), (s, e) =>
        {
            var mBuf = new T[tile];
            var sBuf = new T[tile];
            fixed (T* m = mBuf, sum = sBuf)
                for (long p = s; p < e; p++)
                {
                    long o = p / tilesPerBlock, i0 = p % tilesPerBlock * tile;
                    int n = (int)Math.Min(tile, inner - i0);
                    T* xr = (T*)xp + o * (long)k * inner + i0;
                    T* yr = (T*)yp + o * (long)k * inner + i0;
                    new Span<T>(m, n).Fill(T.NegativeInfinity);
                    new Span<T>(sum, n).Clear();
                    for (long j = 0; j < k; j++) FoldInto<T, BinaryFns.Maximum>(m, xr + j * inner, n);
                    for (int i = 0; i < n; i++) if (T.IsInfinity(m[i])) m[i] = T.Zero;
                    for (long j = 0; j < k; j++) ExpShifted(xr + j * inner, m, yr + j * inner, sum, n);
                    if (log)
                    {
                        for (int i = 0; i < n; i++) m[i] += T.Log(sum[i]);
                        for (long j = 0; j < k; j++)
                            for (int i = 0; i < n; i++) yr[j * inner + i] = xr[j * inner + i] - m[i];
                    }
                    else
                    {
                        for (int i = 0; i < n; i++) sum[i] = T.One / sum[i];
                        for (long j = 0; j < k; j++) FoldInto<T, BinaryFns.Mul>(yr + j * inner, sum, n);
                    }
                }
        });
    }

    /// <summary>y[i] = exp(x[i] - m[i]); sum[i] += y[i].</summary>
    private static void ExpShifted<T>(T* x, T* m, T* y, T* sum, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (typeof(T) == typeof(float) && Vector512.IsHardwareAccelerated)
        {
            float* xf = (float*)x, mf = (float*)m, yf = (float*)y, sf = (float*)sum;
            for (; i <= n - 16; i += 16)
            {
                var ev = Vector512.Exp(Vector512.Load(xf + i) - Vector512.Load(mf + i));
                Vector512.Store(ev, yf + i);
                Vector512.Store(Vector512.Load(sf + i) + ev, sf + i);
            }
        }
        else if (typeof(T) == typeof(float) && Vector256.IsHardwareAccelerated)
        {
            float* xf = (float*)x, mf = (float*)m, yf = (float*)y, sf = (float*)sum;
            for (; i <= n - 8; i += 8)
            {
                var ev = Vector256.Exp(Vector256.Load(xf + i) - Vector256.Load(mf + i));
                Vector256.Store(ev, yf + i);
                Vector256.Store(Vector256.Load(sf + i) + ev, sf + i);
            }
        }
        for (; i < n; i++)
        {
            T ev = T.Exp(x[i] - m[i]);
            y[i] = ev;
            sum[i] += ev;
        }
    }

    /// <summary>y[i] = TF(x[i], c) over a contiguous run.</summary>
    private static void FoldRowScalar<T, TF>(T* x, T c, T* y, long n) where T : unmanaged, INumber<T> where TF : struct, IBinaryFn
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var cv = Vector512.Create(c);
            for (int w = Vector512<T>.Count; i <= n - w; i += w) Vector512.Store(TF.V(Vector512.Load(x + i), cv), y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var cv = Vector256.Create(c);
            for (int w = Vector256<T>.Count; i <= n - w; i += w) Vector256.Store(TF.V(Vector256.Load(x + i), cv), y + i);
        }
        for (; i < n; i++) y[i] = TF.F(x[i], c);
    }

    private static void SoftmaxRow<T>(T* x, T* y, long k, bool log) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T m = FoldRow<T, BinaryFns.Maximum>(x, k, T.NegativeInfinity);
        if (T.IsInfinity(m)) m = T.Zero;
        T sum = T.Zero;
        long i = 0;
        if (typeof(T) == typeof(float) && Vector512.IsHardwareAccelerated)
        {
            float* xf = (float*)x, yf = (float*)y;
            var mv = Vector512.Create((float)(object)m);
            var acc = Vector512<float>.Zero;
            for (; i <= k - 16; i += 16)
            {
                var ev = Vector512.Exp(Vector512.Load(xf + i) - mv);
                acc += ev;
                if (!log) Vector512.Store(ev, yf + i);
            }
            sum = (T)(object)Vector512.Sum(acc);
        }
        else if (typeof(T) == typeof(float) && Vector256.IsHardwareAccelerated)
        {
            float* xf = (float*)x, yf = (float*)y;
            var mv = Vector256.Create((float)(object)m);
            var acc = Vector256<float>.Zero;
            for (; i <= k - 8; i += 8)
            {
                var ev = Vector256.Exp(Vector256.Load(xf + i) - mv);
                acc += ev;
                if (!log) Vector256.Store(ev, yf + i);
            }
            sum = (T)(object)Vector256.Sum(acc);
        }
        for (; i < k; i++)
        {
            T ev = T.Exp(x[i] - m);
            sum += ev;
            if (!log) y[i] = ev;
        }
        if (log)
        {
            T ls = m + T.Log(sum);
            FoldRowScalar<T, BinaryFns.Sub>(x, ls, y, k);
        }
        else
        {
            FoldRowScalar<T, BinaryFns.Mul>(y, T.One / sum, y, k);
        }
    }

    public void CumSum(TensorView x, TensorView y, int outer, int k, int inner)
    {
        switch (x.DType)
        {
            case DType.Float32: CumSumFor<float>(Ptr(x), Ptr(y), outer, k, inner); break;
            case DType.Float64: CumSumFor<double>(Ptr(x), Ptr(y), outer, k, inner); break;
            case DType.Int32: CumSumFor<int>(Ptr(x), Ptr(y), outer, k, inner); break;
            default: CumSumFor<long>(Ptr(x), Ptr(y), outer, k, inner); break;
        }
    }

    private static void CumSumFor<T>(nint xp, nint yp, int outer, int k, int inner) where T : unmanaged, INumber<T>
    {
        CpuParallel.For(outer, Math.Max(1, (1 << 14) / Math.Max(1, (long)k * inner)), (s, e) =>
        {
            for (long o = s; o < e; o++)
            {
                T* xr = (T*)xp + o * (long)k * inner, yr = (T*)yp + o * (long)k * inner;
                if (k == 0) continue;
                Buffer.MemoryCopy(xr, yr, (long)inner * sizeof(T), (long)inner * sizeof(T));
                for (long j = 1; j < k; j++)
                {
                    T* prev = yr + (j - 1) * inner, cur = yr + j * inner, src = xr + j * inner;
                    for (long i = 0; i < inner; i++) cur[i] = prev[i] + src[i];
                }
            }
        });
    }
}
