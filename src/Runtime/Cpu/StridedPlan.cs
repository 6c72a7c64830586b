namespace Runtime.Cpu;

/// <summary>Visits one contiguous-ish row of a strided loop: element offsets of up to four operands and a length.</summary>
internal interface IRowKernel
{
    void Run(long o0, long o1, long o2, long o3, long n, long s0, long s1, long s2, long s3);
}

/// <summary>
/// An N-d loop over a shape shared by up to four operands with their own element strides. Size-1 dims are
/// dropped and dims that are contiguous for every operand are merged, so most loops become one long row.
/// </summary>
internal sealed class StridedPlan
{
    public readonly long[] Shape;
    public readonly long[][] Strides;
    public readonly long Total;

    private StridedPlan(long[] shape, long[][] strides, long total)
    {
        Shape = shape;
        Strides = strides;
        Total = total;
    }

    public static StridedPlan Create(int[] shape, params long[][] strides)
    {
        var dims = new List<int>();
        long total = 1;
        for (int d = 0; d < shape.Length; d++)
        {
            total *= shape[d];
            if (shape[d] != 1) dims.Add(d);
        }
        var outShape = new List<long>();
        var outStrides = new List<long>[strides.Length];
        for (int j = 0; j < strides.Length; j++) outStrides[j] = new List<long>();
        foreach (var d in dims)
        {
            int last = outShape.Count - 1;
            bool merge = last >= 0;
            for (int j = 0; j < strides.Length && merge; j++)
                merge = outStrides[j][last] == strides[j][d] * shape[d];
            if (merge)
            {
                outShape[last] *= shape[d];
                for (int j = 0; j < strides.Length; j++) outStrides[j][last] = strides[j][d];
            }
            else
            {
                outShape.Add(shape[d]);
                for (int j = 0; j < strides.Length; j++) outStrides[j].Add(strides[j][d]);
            }
        }
        if (outShape.Count == 0)
        {
            outShape.Add(total == 0 ? 0 : 1);
            for (int j = 0; j < strides.Length; j++) outStrides[j].Add(1);
        }
        var s = new long[strides.Length][];
        for (int j = 0; j < strides.Length; j++) s[j] = outStrides[j].ToArray();
        return new StridedPlan(outShape.ToArray(), s, total);
    }

    private long Stride(int operand, int d) => operand < Strides.Length ? Strides[operand][d] : 0;

    /// <summary>Runs the kernel over linear positions [start, end) in row-major order of the plan's shape.</summary>
    public void Iterate<TKernel>(long start, long end, ref TKernel kernel) where TKernel : struct, IRowKernel
    {
        int r = Shape.Length;
        Span<long> idx = stackalloc long[r];
        long rem = start;
        for (int d = r - 1; d >= 0; d--)
        {
            idx[d] = rem % Shape[d];
            rem /= Shape[d];
        }
        long o0 = 0, o1 = 0, o2 = 0, o3 = 0;
        for (int d = 0; d < r; d++)
        {
            o0 += idx[d] * Stride(0, d);
            o1 += idx[d] * Stride(1, d);
            o2 += idx[d] * Stride(2, d);
            o3 += idx[d] * Stride(3, d);
        }
        long inner = Shape[r - 1];
        long s0 = Stride(0, r - 1), s1 = Stride(1, r - 1), s2 = Stride(2, r - 1), s3 = Stride(3, r - 1);
        long pos = start;
        while (pos < end)
        {
            long n = Math.Min(inner - idx[r - 1], end - pos);
            kernel.Run(o0, o1, o2, o3, n, s0, s1, s2, s3);
            pos += n;
            idx[r - 1] += n;
            o0 += n * s0; o1 += n * s1; o2 += n * s2; o3 += n * s3;
            int d = r - 1;
            while (d >= 0 && idx[d] == Shape[d])
            {
                o0 -= idx[d] * Stride(0, d); o1 -= idx[d] * Stride(1, d);
                o2 -= idx[d] * Stride(2, d); o3 -= idx[d] * Stride(3, d);
                idx[d] = 0;
                d--;
                if (d < 0) break;
                idx[d]++;
                o0 += Stride(0, d); o1 += Stride(1, d); o2 += Stride(2, d); o3 += Stride(3, d);
            }
        }
    }

    /// <summary>Runs the kernel over the whole plan, split across cores when large.</summary>
    public void Run<TKernel>(TKernel kernel, long grain = 1 << 15) where TKernel : struct, IRowKernel
    {
        if (Total == 0) return;
        if (Total <= grain || CpuParallel.Threads == 1)
        {
            Iterate(0, Total, ref kernel);
            return;
        }
        var k = kernel;
        CpuParallel.For(Total, grain, (s, e) =>
        {
            var local = k;
            Iterate(s, e, ref local);
        });
    }
}
