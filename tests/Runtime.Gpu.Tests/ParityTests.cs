using Runtime.Backends;

namespace Runtime.Gpu.Tests;

/// <summary>
/// Every kernel path against the CPU backend at sizes that take it: split reductions, long sorts
/// (global network), long prefix sums, odd matrix shapes and the CUDA tile shape, repeated indices,
/// loops of more than eight dims.
/// </summary>
public class ParityTests
{
    private static Tensor R(ulong seed, params int[] shape) => Parity.Randn(seed, DType.Float32, shape);

    private static Tensor R64(ulong seed, params int[] shape) => Parity.Randn(seed, DType.Float64, shape);

    [GpuTheory]
    [InlineData(1, 300_000, 1)]     // one long row: split into parts, then the parts reduced
    [InlineData(3, 50_000, 1)]
    [InlineData(7, 9_000, 40)]      // columns and a long k
    [InlineData(64, 33, 5)]
    [InlineData(2, 1, 1000)]
    public void Reductions(int outer, int k, int inner)
    {
        using var x = R(1, outer, k, inner);
        Parity.Check("sum", t => t[0].Sum(1), [x], 1e-4, 1e-3);
        Parity.Check("max", t => t[0].Max(1).Values, [x]);
        Parity.Check("min", t => t[0].Min(1).Values, [x]);
        Parity.Check("argmax", t => t[0].Argmax(1), [x]);
        Parity.Check("argmin", t => t[0].Argmin(1), [x]);
        using var small = x * 0.001 + 1.0;
        Parity.Check("prod", t => t[0].Prod([1]), [small], 1e-4, 1e-6);
        using var xd = x.To(DType.Float64);
        Parity.Check("sum f64", t => t[0].Sum(1), [xd], 1e-10, 1e-10);
        using var xi = (x * 100.0).To(DType.Int64);
        Parity.Check("sum i64", t => t[0].Sum(1), [xi]);
        Parity.Check("max i64", t => t[0].Max(1).Values, [xi]);
        using var b = x.Gt(0.5);
        Parity.Check("any", t => t[0].Any([1]), [b]);
        Parity.Check("all", t => t[0].All([1]), [b]);
    }

    [GpuFact]
    public void ArgReduce_FirstIndex_TiesAndNaN()
    {
        var v = new float[3 * 700];
        for (int i = 0; i < v.Length; i++) v[i] = (i * 7919) % 13;            // many ties of the maximum 12
        v[700 + 400] = float.NaN;                                             // row 1: first NaN wins
        v[700 + 650] = float.NaN;
        v[1400 + 3] = float.PositiveInfinity;
        using var x = Tensor.From(v).To(Device.Cpu).Reshape(3, 700);
        Parity.Check("argmax", t => t[0].Argmax(1), [x]);
        Parity.Check("argmin", t => t[0].Argmin(1), [x]);
        Parity.Check("argmax dim0", t => t[0].Argmax(0), [x]);
        Parity.Check("max NaN", t => t[0].Max(1).Values, [x]);
    }

    [GpuFact]
    public void ArgReduce_LongRows_SplitIntoParts()
    {
        var v = new float[2 * 100_000];
        for (int i = 0; i < v.Length; i++) v[i] = (i * 7919) % 1000;         // the maximum 999 recurs: first index wins
        v[100_000 + 70_000] = float.NaN;                                      // row 1: the NaN, even late in the row
        v[100_000 + 90_000] = float.NaN;
        using var x = Tensor.From(v).To(Device.Cpu).Reshape(2, 100_000);
        Parity.Check("argmax long", t => t[0].Argmax(1), [x]);
        Parity.Check("argmin long", t => t[0].Argmin(1), [x]);
        using var flat = x.Narrow(0, 0, 1).Contiguous();
        Parity.Check("argmax all", t => t[0].Argmax(), [flat]);
        using var xi = Tensor.Where(x.Ne(x), Tensor.Zeros([1], DType.Float32, Device.Cpu), x).To(DType.Int64);
        Parity.Check("argmax long i64", t => t[0].Argmax(1), [xi]);
    }

    [GpuTheory]
    [InlineData(4, 1000, 1, false)]
    [InlineData(3, 17, 50, false)]
    [InlineData(2, 3000, 3, true)]
    [InlineData(5, 1, 7, true)]
    public void Softmax(int outer, int k, int inner, bool log)
    {
        using var x = R(2, outer, k, inner);
        using var big = x * 30.0;
        Parity.Check("softmax", t => log ? t[0].LogSoftmax(1) : t[0].Softmax(1), [big], 1e-5, 1e-6);
        using var xd = big.To(DType.Float64);
        Parity.Check("softmax f64", t => log ? t[0].LogSoftmax(1) : t[0].Softmax(1), [xd], 1e-12, 1e-12);
    }

    [GpuFact]
    public void Softmax_InfinitiesAndNaN()
    {
        using var x = Tensor.From(new float[] { float.NegativeInfinity, float.NegativeInfinity, 1, 2, float.PositiveInfinity, 0, float.NaN, 1 })
            .To(Device.Cpu).Reshape(4, 2);
        Parity.Check("softmax special", t => t[0].Softmax(1), [x]);
        Parity.Check("log_softmax special", t => t[0].LogSoftmax(1), [x]);
    }

    [GpuTheory]
    [InlineData(3, 5000, 1)]    // rows scanned in chunks by one group each
    [InlineData(1, 33, 1)]
    [InlineData(4, 300, 9)]     // columns
    [InlineData(2, 5000, 3)]    // few long columns: transposed into rows
    public void CumSum(int outer, int k, int inner)
    {
        using var x = R(3, outer, k, inner);
        // Float32 running sums reach ~sqrt(k) = 70 here and the scan adds in another order than the CPU's
        // sequential loop: differences of ~1e-6 of that magnitude are inherent (float64 below is tight).
        Parity.Check("cumsum", t => t[0].CumSum(1), [x], 1e-4, 1e-3);
        using var xd = x.To(DType.Float64);
        Parity.Check("cumsum f64", t => t[0].CumSum(1), [xd], 1e-10, 1e-10);
        using var xi = (x * 1000.0).To(DType.Int64);
        Parity.Check("cumsum i64", t => t[0].CumSum(1), [xi]);
        using var x32 = (x * 1000.0).To(DType.Int32);
        Parity.Check("cumsum i32", t => t[0].CumSum(1), [x32]);
    }

    [GpuTheory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(1, 67, 131, 45)]
    [InlineData(3, 64, 64, 64)]
    [InlineData(2, 130, 7, 300)]
    [InlineData(1, 5, 9, 0)]
    public void MatMul(int batch, int m, int n, int k)
    {
        using var a = R(4, batch, m, k);
        using var b = R(5, batch, k, n);
        double tol = 1e-5 * Math.Max(1, Math.Sqrt(k));
        Parity.Check("matmul", t => t[0].MatMul(t[1]), [a, b], tol, tol);
        Parity.Check("matmul aT", t => t[0].MT.Contiguous().MT.MatMul(t[1]), [a, b], tol, tol);
        Parity.Check("matmul bT", t => t[0].MatMul(t[1].MT.Contiguous().MT), [a, b], tol, tol);
        using var bb = R(6, k, n);
        Parity.Check("matmul broadcast batch", t => t[0].MatMul(t[1]), [a, bb], tol, tol);
        using var ad = a.To(DType.Float64);
        using var bd = b.To(DType.Float64);
        Parity.Check("matmul f64", t => t[0].MatMul(t[1]), [ad, bd], 1e-12, 1e-12);
        using var ai = (a * 10.0).To(DType.Int64);
        using var bi = (b * 10.0).To(DType.Int64);
        Parity.Check("matmul i64", t => t[0].MatMul(t[1]), [ai, bi]);
        using var a32 = (a * 10.0).To(DType.Int32);
        using var b32 = (b * 10.0).To(DType.Int32);
        Parity.Check("matmul i32", t => t[0].MatMul(t[1]), [a32, b32]);
    }

    [GpuFact]
    public void MatMul_WithTheCudaTileShape()
    {
        // The CUDA backend uses 128x128x8 tiles with 8x8 per thread for float32: run that shape here too.
        var b = GpuTestDevice.Backend;
        b.MatMulTilesOverride = (128, 128, 8, 8, 8);
        try
        {
            using var x = R(7, 2, 200, 77);
            using var y = R(8, 2, 77, 130);
            Parity.Check("matmul 128 tiles", t => t[0].MatMul(t[1]), [x, y], 1e-4, 1e-4);
            Parity.Check("matmul 128 tiles, transposed", t => t[1].MT.MatMul(t[0].MT), [x, y], 1e-4, 1e-4);
        }
        finally
        {
            b.MatMulTilesOverride = null;
        }
    }

    [GpuTheory]
    [InlineData(1, 5, false)]
    [InlineData(4, 1000, false)]
    [InlineData(3, 2048, true)]
    [InlineData(2, 5000, false)]   // longer than one group sorts in local memory: the global network
    [InlineData(1, 70_000, true)]
    public void Sort_IsStable(int rows, int n, bool descending)
    {
        // Few distinct values: stability decides the indices.
        using var r = R(9, rows, n);
        using var x = (r * 3.0).Round();
        Parity.Check("sort values", t => t[0].Sort(1, descending).Values, [x]);
        Parity.Check("sort indices", t => t[0].Sort(1, descending).Indices, [x]);
        using var xi = x.To(DType.Int64);
        Parity.Check("sort i64 indices", t => t[0].Sort(1, descending).Indices, [xi]);
        using var xd = x.To(DType.Float64);
        Parity.Check("sort f64 indices", t => t[0].Sort(1, descending).Indices, [xd]);
    }

    [GpuFact]
    public void Sort_NaNIsLargest()
    {
        using var x = Tensor.From(new float[] { 3, float.NaN, 1, float.NegativeInfinity, float.NaN, 1, 2, float.PositiveInfinity, 0 }).To(Device.Cpu);
        Parity.Check("asc", t => t[0].Sort(0).Indices, [x]);
        Parity.Check("desc", t => t[0].Sort(0, descending: true).Indices, [x]);
        Parity.Check("topk", t => t[0].TopK(4).Indices, [x]);
    }

    [GpuFact]
    public void IndexSelect_And_IndexAdd_WithRepeatedIndices()
    {
        using var x = R(10, 6, 50, 3).RequiresGrad_();
        var idx = new long[4000];
        for (int i = 0; i < idx.Length; i++) idx[i] = (i * 37) % 50;
        using var index = Tensor.From(idx).To(Device.Cpu);
        Parity.Check("index_select", t => t[0].IndexSelect(1, t[1]), [x.Detach(), index]);
        // The gradient of IndexSelect is IndexAdd: sources of each row summed in index order.
        Tensor Grad(Tensor[] t)
        {
            using var xs = t[0].Detach().RequiresGrad_();
            using var y = xs.IndexSelect(1, t[1]);
            using var w = Tensor.Arange(0, y.NumEl, 1, DType.Float32, y.Device).Reshape(y.Shape.ToArray()) * 0.001;
            using var s = (y * w).Sum();
            s.Backward();
            return xs.Grad!;
        }
        Parity.Check("index_add", Grad, [x.Detach(), index], 1e-5, 1e-4);
        using var xd = x.Detach().To(DType.Float64);
        Parity.Check("index_add f64", Grad, [xd, index], 1e-12, 1e-12);
    }

    [GpuFact]
    public void Gather_Scatter_ScatterAdd_InOrder()
    {
        using var x = R(11, 5, 8, 6);
        var iv = new long[5 * 30 * 6];
        for (int i = 0; i < iv.Length; i++) iv[i] = (i * 13 + i / 7) % 8;
        using var index = Tensor.From(iv).To(Device.Cpu).Reshape(5, 30, 6);
        using var src = R(12, 5, 30, 6);
        Parity.Check("gather", t => t[0].Gather(1, t[1]), [x, index]);
        Parity.Check("scatter (last write wins)", t => t[0].Scatter(1, t[1], t[2]), [x, index, src]);
        Parity.Check("scatter_add", t => t[0].ScatterAdd(1, t[1], t[2]), [x, index, src], 1e-5, 1e-5);
        using var index0 = Tensor.From(iv.Select(v => v % 5).ToArray()).To(Device.Cpu).Reshape(5, 30, 6);
        using var src0 = R(13, 5, 30, 6);
        using var x0 = R(14, 5, 8, 6);
        Parity.Check("scatter_add dim 0", t => t[0].ScatterAdd(0, t[1].Narrow(1, 0, 8), t[2].Narrow(1, 0, 8)), [x0, index0, src0], 1e-5, 1e-5);
        using var xi = (x * 10.0).To(DType.Int64);
        using var si = (src * 10.0).To(DType.Int64);
        Parity.Check("scatter_add i64", t => t[0].ScatterAdd(1, t[1], t[2]), [xi, index, si]);
    }

    [GpuFact]
    public void Copy_OfMoreThanEightDims_AndNegativeStrides()
    {
        // Eleven dims of size 2, permuted so that no two merge: the host splits the loop.
        using var x = R(15, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2);
        Parity.Check("permute 11-d", t => t[0].Permute(10, 8, 6, 4, 2, 0, 9, 7, 5, 3, 1).Contiguous(), [x]);
        Parity.Check("add 11-d", t => t[0].Permute(10, 8, 6, 4, 2, 0, 9, 7, 5, 3, 1) + t[0], [x]);
        using var m = R(16, 7, 9, 5);
        Parity.Check("flip", t => t[0].Flip(0, 2), [m]);
        Parity.Check("flip to int", t => t[0].Flip(1).To(DType.Int32), [m * 10.0]);
        Parity.Check("slice step", t => t[0].Slice(1, 1, 9, 3).Contiguous(), [m]);
    }

    [GpuFact]
    public void Conversions_MatchTheCpu()
    {
        var v = new double[] { 0, -0.0, 1.5, -1.5, 2.5, -2.7, 1e10, -1e10, 3e9, double.NaN, double.PositiveInfinity, double.NegativeInfinity, 0.49999997, 1e-40 };
        using var x = Tensor.From(v).To(Device.Cpu);
        foreach (var to in new[] { DType.Bool, DType.Int32, DType.Int64, DType.Float32 })
            Parity.Check($"f64 -> {to}", t => t[0].To(to), [x]);
        using var f = x.To(DType.Float32);
        foreach (var to in new[] { DType.Bool, DType.Int32, DType.Int64, DType.Float64 })
            Parity.Check($"f32 -> {to}", t => t[0].To(to), [f]);
        using var l = Tensor.From(new long[] { 0, 1, -1, long.MaxValue, long.MinValue, 1L << 40, (1L << 53) + 1 }).To(Device.Cpu);
        foreach (var to in new[] { DType.Bool, DType.Int32, DType.Float32, DType.Float64 })
            Parity.Check($"i64 -> {to}", t => t[0].To(to), [l]);
    }

    [GpuFact]
    public void FillValues_MatchTheCpu()
    {
        foreach (var t in new[] { DType.Bool, DType.Int32, DType.Int64, DType.Float32, DType.Float64 })
            foreach (var v in new[] { 0.0, -0.0, 1.0, -2.5, 0.1, 3e9, double.NaN, double.NegativeInfinity })
            {
                using var c = Tensor.Full([3], v, t, Device.Cpu);
                using var g = Tensor.Full([3], v, t, Parity.Gpu);
                Parity.AssertSame($"fill {v} {t}", c, g);
            }
    }
}

/// <summary>Scatter along a dim with few long columns: the sorted path (one work-item per target).</summary>
public class ScatterSortedTests
{
    [GpuTheory]
    [InlineData(20_000, 100, true)]
    [InlineData(20_000, 100, false)]
    [InlineData(5_000, 3, true)]
    [InlineData(3_000, 7000, false)]
    public void OneDimension_ManyIndices(int m, int targets, bool accumulate)
    {
        var iv = new long[m];
        for (int i = 0; i < m; i++) iv[i] = (long)((i * 2654435761L) % targets);
        using var index = Tensor.From(iv).To(Device.Cpu);
        using var src = Parity.Randn(21, DType.Float32, m);
        using var x = Parity.Randn(22, DType.Float32, targets);
        Parity.Check(accumulate ? "scatter_add 1-d" : "scatter 1-d", t => accumulate ? t[0].ScatterAdd(0, t[1], t[2]) : t[0].Scatter(0, t[1], t[2]),
            [x, index, src], 1e-5, 1e-4);
    }

    [GpuFact]
    public void FewColumns_AlongDim0_AndStridedIndex()
    {
        var iv = new long[4000 * 3];
        for (int i = 0; i < iv.Length; i++) iv[i] = (i * 7 + i / 5) % 50;
        using var index = Tensor.From(iv).To(Device.Cpu).Reshape(4000, 3);
        using var src = Parity.Randn(23, DType.Float64, 4000, 3);
        using var x = Parity.Randn(24, DType.Float64, 50, 4);
        Parity.Check("scatter_add dim 0", t => t[0].ScatterAdd(0, t[1], t[2]), [x, index, src], 1e-12, 1e-12);
        Parity.Check("scatter dim 0", t => t[0].Scatter(0, t[1], t[2]), [x, index, src]);
        using var xi = Tensor.Zeros([50, 4], DType.Int64, Device.Cpu);
        using var si = (src * 100.0).To(DType.Int64);
        Parity.Check("scatter_add i64, transposed index", t => t[0].MT.Contiguous().ScatterAdd(1, t[1].MT, t[2].MT), [xi, index, si]);
    }
}
