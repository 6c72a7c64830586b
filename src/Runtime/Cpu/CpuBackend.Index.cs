using System.Numerics;
using Runtime.Backends;

namespace Runtime.Cpu;

internal sealed unsafe partial class CpuBackend
{
    public void MatMul(TensorView a, TensorView b, TensorView c, bool accumulate)
    {
        int batch = a.Shape[0], m = a.Shape[1], k = a.Shape[2], n = b.Shape[2];
        long sbA = a.Strides[0], rsA = a.Strides[1], csA = a.Strides[2];
        long sbB = b.Strides[0], rsB = b.Strides[1], csB = b.Strides[2];
        int es = a.DType.SizeOf();
        byte* pa = (byte*)Ptr(a), pb = (byte*)Ptr(b), pc = (byte*)Ptr(c);
        long mnk = (long)m * n * Math.Max(k, 1);
        // Many small products: one thread each. Few large ones: each product gets every thread.
        bool perBatch = batch > 1 && mnk < 128L * 128 * 128;
        int inner = perBatch ? 1 : CpuParallel.Threads;
        void One(long i)
        {
            byte* ai = pa + i * sbA * es, bi = pb + i * sbB * es, ci = pc + i * (long)m * n * es;
            switch (a.DType)
            {
                case DType.Float32:
                    Gemm.Sgemm(m, n, k, (float*)ai, rsA, csA, (float*)bi, rsB, csB, (float*)ci, n, accumulate, inner);
                    break;
                case DType.Float64:
                    Gemm.Dgemm(m, n, k, (double*)ai, rsA, csA, (double*)bi, rsB, csB, (double*)ci, n, accumulate, inner);
                    break;
                case DType.Int32: NaiveGemm((int*)ai, rsA, csA, (int*)bi, rsB, csB, (int*)ci, m, n, k, accumulate); break;
                case DType.Int64: NaiveGemm((long*)ai, rsA, csA, (long*)bi, rsB, csB, (long*)ci, m, n, k, accumulate); break;
                default: throw new ArgumentException($"matmul does not support dtype {a.DType.Name()}", nameof(a));
            }
        }
        if (perBatch) CpuParallel.For(batch, 1, (s, e) => { for (long i = s; i < e; i++) One(i); });
        else for (long i = 0; i < batch; i++) One(i);
    }

    private static void NaiveGemm<T>(T* a, long rsA, long csA, T* b, long rsB, long csB, T* c, int m, int n, int k, bool accumulate)
        where T : unmanaged, INumber<T>
    {
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++)
            {
                T acc = accumulate ? c[i * n + j] : T.Zero;
                for (long p = 0; p < k; p++) acc += a[i * rsA + p * csA] * b[p * rsB + j * csB];
                c[i * n + j] = acc;
            }
    }

    public void IndexSelect(TensorView x, TensorView index, TensorView y, int outer, int n, int inner)
    {
        int es = x.DType.SizeOf();
        int m = index.Shape.Length == 0 ? 1 : index.Shape[0];
        byte* px = (byte*)Ptr(x), py = (byte*)Ptr(y);
        long* idx = (long*)Ptr(index);
        long rowBytes = (long)inner * es;
        CpuParallel.For((long)outer * m, Math.Max(1, (1 << 16) / Math.Max(1, rowBytes)), (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                long o = p / m, j = p % m;
                Buffer.MemoryCopy(px + (o * n + idx[j]) * rowBytes, py + p * rowBytes, rowBytes, rowBytes);
            }
        });
    }

    public void IndexAdd(TensorView y, TensorView index, TensorView source, int outer, int n, int inner)
    {
        switch (y.DType)
        {
            case DType.Float32: IndexAddFor<float>(y, index, source, outer, n, inner); break;
            case DType.Float64: IndexAddFor<double>(y, index, source, outer, n, inner); break;
            case DType.Int32: IndexAddFor<int>(y, index, source, outer, n, inner); break;
            case DType.Int64: IndexAddFor<long>(y, index, source, outer, n, inner); break;
            default: throw new ArgumentException($"index_add does not support dtype {y.DType.Name()}", nameof(y));
        }
    }

    private static void IndexAddFor<T>(TensorView y, TensorView index, TensorView source, int outer, int n, int inner) where T : unmanaged, INumber<T>
    {
        int m = index.Shape.Length == 0 ? 1 : index.Shape[0];
        nint py = Ptr(y), ps = Ptr(source);
        long* idx = (long*)Ptr(index);
        // Parallel over outer blocks only, so repeated indices are added in index order: deterministic.
        CpuParallel.For(outer, Math.Max(1, (1 << 15) / Math.Max(1, (long)m * inner)), (s, e) =>
        {
            for (long o = s; o < e; o++)
                for (long j = 0; j < m; j++)
                    FoldInto<T, BinaryFns.Add>((T*)py + (o * n + idx[j]) * inner, (T*)ps + (o * m + j) * inner, inner);
        });
    }

    private struct GatherRow<T> : IRowKernel where T : unmanaged
    {
        public nint Index, X, Y;
        public long DimStride;

        public void Run(long o0, long o1, long o2, long o3, long n, long s0, long s1, long s2, long s3)
        {
            long* idx = (long*)Index + o0;
            T* x = (T*)X + o1;
            T* y = (T*)Y + o2;
            for (long i = 0; i < n; i++) y[i * s2] = x[i * s1 + idx[i * s0] * DimStride];
        }
    }

    public void Gather(TensorView x, int dim, TensorView index, TensorView y)
    {
        var xs = (long[])x.Strides.Clone();
        long dimStride = xs[dim];
        xs[dim] = 0;
        var plan = StridedPlan.Create(index.Shape, index.Strides, xs, y.Strides);
        nint pi = Ptr(index), px = Ptr(x), py = Ptr(y);
        switch (x.DType.SizeOf())
        {
            case 1: plan.Run(new GatherRow<byte> { Index = pi, X = px, Y = py, DimStride = dimStride }); break;
            case 4: plan.Run(new GatherRow<int> { Index = pi, X = px, Y = py, DimStride = dimStride }); break;
            default: plan.Run(new GatherRow<long> { Index = pi, X = px, Y = py, DimStride = dimStride }); break;
        }
    }

    private struct ScatterRow<T> : IRowKernel where T : unmanaged, INumber<T>
    {
        public nint Index, Src, Y;
        public long DimStride;
        public bool Accumulate;

        public void Run(long o0, long o1, long o2, long o3, long n, long s0, long s1, long s2, long s3)
        {
            long* idx = (long*)Index + o0;
            T* src = (T*)Src + o1;
            T* y = (T*)Y + o2;
            if (Accumulate)
                for (long i = 0; i < n; i++) y[i * s2 + idx[i * s0] * DimStride] += src[i * s1];
            else
                for (long i = 0; i < n; i++) y[i * s2 + idx[i * s0] * DimStride] = src[i * s1];
        }
    }

    public void Scatter(TensorView y, int dim, TensorView index, TensorView source, bool accumulate)
    {
        var ys = (long[])y.Strides.Clone();
        long dimStride = ys[dim];
        ys[dim] = 0;
        var plan = StridedPlan.Create(index.Shape, index.Strides, source.Strides, ys);
        nint pi = Ptr(index), ps = Ptr(source), py = Ptr(y);
        // Sequential: positions that share an index are written in a fixed order (deterministic).
        long total = plan.Total;
        switch (y.DType)
        {
            case DType.Float32: { var k = new ScatterRow<float> { Index = pi, Src = ps, Y = py, DimStride = dimStride, Accumulate = accumulate }; plan.Iterate(0, total, ref k); break; }
            case DType.Float64: { var k = new ScatterRow<double> { Index = pi, Src = ps, Y = py, DimStride = dimStride, Accumulate = accumulate }; plan.Iterate(0, total, ref k); break; }
            case DType.Int32: { var k = new ScatterRow<int> { Index = pi, Src = ps, Y = py, DimStride = dimStride, Accumulate = accumulate }; plan.Iterate(0, total, ref k); break; }
            case DType.Int64: { var k = new ScatterRow<long> { Index = pi, Src = ps, Y = py, DimStride = dimStride, Accumulate = accumulate }; plan.Iterate(0, total, ref k); break; }
            default: { var k = new ScatterRow<byte> { Index = pi, Src = ps, Y = py, DimStride = dimStride, Accumulate = accumulate }; plan.Iterate(0, total, ref k); break; }
        }
    }

    public void Sort(TensorView x, TensorView values, TensorView indices, int outer, int n, bool descending)
    {
        switch (x.DType)
        {
            case DType.Float32: SortFor<float>(x, values, indices, outer, n, descending); break;
            case DType.Float64: SortFor<double>(x, values, indices, outer, n, descending); break;
            case DType.Int32: SortFor<int>(x, values, indices, outer, n, descending); break;
            case DType.Int64: SortFor<long>(x, values, indices, outer, n, descending); break;
            default: SortFor<byte>(x, values, indices, outer, n, descending); break;
        }
    }

    private static void SortFor<T>(TensorView x, TensorView values, TensorView indices, int outer, int n, bool descending)
        where T : unmanaged, INumber<T>
    {
        nint px = Ptr(x), pv = Ptr(values), pi = Ptr(indices);
        CpuParallel.For(outer, Math.Max(1, 4096 / Math.Max(1, n)), (s, e) =>
        {
            var keys = new T[n];
            var order = new long[n];
            for (long o = s; o < e; o++)
            {
                T* row = (T*)px + o * n;
                for (int i = 0; i < n; i++) { keys[i] = row[i]; order[i] = i; }
                // NaN sorts as the largest value; ties keep their original order (stable).
                Comparison<long> cmp = descending
                    ? (i, j) => { int c = Compare(keys[j], keys[i]); return c != 0 ? c : i.CompareTo(j); }
                    : (i, j) => { int c = Compare(keys[i], keys[j]); return c != 0 ? c : i.CompareTo(j); };
                order.AsSpan().Sort(cmp);
                T* vr = (T*)pv + o * n;
                long* ir = (long*)pi + o * n;
                for (int i = 0; i < n; i++) { ir[i] = order[i]; vr[i] = keys[order[i]]; }
            }
        });
    }

    private static int Compare<T>(T a, T b) where T : INumber<T>
    {
        bool na = T.IsNaN(a), nb = T.IsNaN(b);
        if (na || nb) return na == nb ? 0 : na ? 1 : -1;
        return a < b ? -1 : a > b ? 1 : 0;
    }
}
