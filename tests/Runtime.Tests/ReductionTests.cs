using Runtime.Autograd;

namespace Runtime.Tests;

/// <summary>
/// Reductions, softmax, cumsum: exact or float64-reference values (computed with plain loops here),
/// the SIMD/remainder/parallel kernel paths, gradients, and argument checks.
/// </summary>
public class ReductionTests
{
    // ---------------------------------------------------------------- reference helpers

    private static double[] RandomValues(int n, int seed, double lo = -1, double hi = 1, bool floatExact = false)
    {
        var rng = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++)
        {
            v[i] = lo + (hi - lo) * rng.NextDouble();
            if (floatExact) v[i] = (float)v[i];
        }
        return v;
    }

    private static Tensor F32(double[] v, params int[] shape) => Tensor.From(v.Select(x => (float)x).ToArray(), shape);

    private static Tensor F64(double[] v, params int[] shape) => Tensor.From(v.ToArray(), shape);

    private static long NumEl(int[] shape) => shape.Aggregate(1L, (a, s) => a * s);

    private static int[] Unravel(long flat, int[] shape)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            idx[d] = (int)(flat % shape[d]);
            flat /= shape[d];
        }
        return idx;
    }

    /// <summary>Groups the elements of x by the non-reduced index; returns the groups in row-major output order and the output shape.</summary>
    private static (List<double>[] Groups, int[] Shape) Group(double[] x, int[] shape, int[] dims, bool keepDim)
    {
        int r = shape.Length;
        var nd = dims.Length == 0 ? Enumerable.Range(0, r).ToArray() : dims.Select(d => d < 0 ? d + r : d).ToArray();
        var kept = Enumerable.Range(0, r).Where(d => !nd.Contains(d)).ToArray();
        long outN = kept.Aggregate(1L, (a, d) => a * shape[d]);
        var groups = new List<double>[outN];
        for (long i = 0; i < outN; i++) groups[i] = new List<double>();
        for (long flat = 0; flat < x.Length; flat++)
        {
            var idx = Unravel(flat, shape);
            long o = 0;
            foreach (var d in kept) o = o * shape[d] + idx[d];
            groups[o].Add(x[flat]);
        }
        var outShape = new List<int>();
        for (int d = 0; d < r; d++)
        {
            if (kept.Contains(d)) outShape.Add(shape[d]);
            else if (keepDim) outShape.Add(1);
        }
        return (groups, outShape.ToArray());
    }

    private static (double[] Values, int[] Shape) RefReduce(double[] x, int[] shape, int[] dims, bool keepDim, Func<List<double>, double> f)
    {
        var (g, s) = Group(x, shape, dims, keepDim);
        return (g.Select(f).ToArray(), s);
    }

    private static double RefSum(List<double> v) { double s = 0; foreach (var x in v) s += x; return s; }

    private static double RefLse(List<double> v)
    {
        double m = double.NegativeInfinity;
        foreach (var x in v) m = Math.Max(m, x);
        if (double.IsNegativeInfinity(m)) return double.NegativeInfinity;
        double s = 0;
        foreach (var x in v) s += Math.Exp(x - m);
        return m + Math.Log(s);
    }

    /// <summary>Flat indices of each line along <paramref name="dim"/> (row-major order of the other dims).</summary>
    private static List<long[]> Lines(int[] shape, int dim)
    {
        long inner = 1;
        for (int d = dim + 1; d < shape.Length; d++) inner *= shape[d];
        long outer = 1;
        for (int d = 0; d < dim; d++) outer *= shape[d];
        int k = shape[dim];
        var res = new List<long[]>();
        for (long o = 0; o < outer; o++)
            for (long i = 0; i < inner; i++)
            {
                var line = new long[k];
                for (int j = 0; j < k; j++) line[j] = (o * k + j) * inner + i;
                res.Add(line);
            }
        return res;
    }

    private static double[] RefSoftmax(double[] x, int[] shape, int dim, bool log)
    {
        var y = new double[x.Length];
        foreach (var line in Lines(shape, dim))
        {
            double m = double.NegativeInfinity;
            foreach (var i in line) m = Math.Max(m, x[i]);
            double s = 0;
            foreach (var i in line) s += Math.Exp(x[i] - m);
            foreach (var i in line) y[i] = log ? x[i] - m - Math.Log(s) : Math.Exp(x[i] - m) / s;
        }
        return y;
    }

    private static double[] RefCumSum(double[] x, int[] shape, int dim)
    {
        var y = new double[x.Length];
        foreach (var line in Lines(shape, dim))
        {
            double s = 0;
            foreach (var i in line) { s += x[i]; y[i] = s; }
        }
        return y;
    }

    private static void AssertExact<T>(T[] expected, Tensor actual) where T : unmanaged => Assert.Equal(expected, actual.ToArray<T>());

    // ---------------------------------------------------------------- Sum / Mean / Prod

    [Fact]
    public void Sum_HandValues_AllDimsOneDimKeepDim()
    {
        using var a = Tensor.From(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var all = a.Sum();
        TestUtil.AssertShape(all);
        Assert.Equal(DType.Float32, all.DType);
        Assert.Equal(21.0, all.Item());
        using var allKeep = a.Sum(null, keepDim: true);
        TestUtil.AssertShape(allKeep, 1, 1);
        TestUtil.AssertClose([21], allKeep, 0, 0);
        using var s0 = a.Sum(0);
        TestUtil.AssertShape(s0, 3);
        TestUtil.AssertClose([5, 7, 9], s0, 0, 0);
        using var s1 = a.Sum(1, keepDim: true);
        TestUtil.AssertShape(s1, 2, 1);
        TestUtil.AssertClose([6, 15], s1, 0, 0);
        using var sm1 = a.Sum(-1);
        TestUtil.AssertShape(sm1, 2);
        TestUtil.AssertClose([6, 15], sm1, 0, 0);
        using var sm2 = a.Sum(-2, keepDim: true);
        TestUtil.AssertShape(sm2, 1, 3);
        TestUtil.AssertClose([5, 7, 9], sm2, 0, 0);
        using var both = a.Sum([1, 0]);
        TestUtil.AssertShape(both);
        Assert.Equal(21.0, both.Item());
    }

    public static IEnumerable<object[]> DimSets()
    {
        int[][] sets = [[], [0], [3], [-1], [-4], [1, 2], [2, 3], [0, 1, 2], [0, 2], [1, 3], [0, 3], [0, 1, 3], [-1, -3], [3, 0, 2], [0, 1, 2, 3]];
        foreach (var s in sets)
        {
            yield return [s, false];
            yield return [s, true];
        }
    }

    [Theory]
    [MemberData(nameof(DimSets))]
    public void SumMeanProd_MultiDims_MatchReference(int[] dims, bool keepDim)
    {
        int[] shape = [2, 3, 4, 5];
        var v = RandomValues(120, 11, 0.5, 1.5);
        using var x = F64(v, shape);
        var (es, eshape) = RefReduce(v, shape, dims, keepDim, RefSum);
        using var s = x.Sum(dims, keepDim);
        TestUtil.AssertShape(s, eshape);
        TestUtil.AssertClose(es, s, 1e-12, 1e-12);

        var (em, _) = RefReduce(v, shape, dims, keepDim, g => RefSum(g) / g.Count);
        using var m = x.Mean(dims, keepDim);
        TestUtil.AssertShape(m, eshape);
        TestUtil.AssertClose(em, m, 1e-12, 1e-12);

        var (ep, _) = RefReduce(v, shape, dims, keepDim, g => g.Aggregate(1.0, (a, b) => a * b));
        using var p = x.Prod(dims, keepDim);
        TestUtil.AssertShape(p, eshape);
        TestUtil.AssertClose(ep, p, 1e-12, 1e-10);

        // The same in float32, on a non-contiguous (permuted) view of the data.
        using var xf = F32(v, 5, 4, 3, 2);
        using var xp = xf.Permute(3, 2, 1, 0);
        var vt = new double[120];
        for (int i = 0; i < 120; i++)
        {
            var idx = Unravel(i, shape); // idx into the permuted [2,3,4,5] view = element [idx3, idx2, idx1, idx0] of the [5,4,3,2] base
            vt[i] = (float)v[((idx[3] * 4 + idx[2]) * 3 + idx[1]) * 2 + idx[0]];
        }
        var (esf, _) = RefReduce(vt, shape, dims, keepDim, RefSum);
        using var sf = xp.Sum(dims, keepDim);
        Assert.Equal(DType.Float32, sf.DType);
        TestUtil.AssertShape(sf, eshape);
        TestUtil.AssertClose(esf, sf, 1e-5, 1e-5);
    }

    [Fact]
    public void Sum_IntegerAndBool_GiveInt64()
    {
        using var i32 = Tensor.From(new int[] { 2_000_000_000, 2_000_000_000, -5, 7, 1, 1 }, 3, 2);
        using var s = i32.Sum();
        Assert.Equal(DType.Int64, s.DType);
        AssertExact([4_000_000_000L - 5 + 7 + 2], s);
        using var s0 = i32.Sum(0);
        Assert.Equal(DType.Int64, s0.DType);
        AssertExact([2_000_000_000L - 5 + 1, 2_000_000_000L + 7 + 1], s0);
        using var s1 = i32.Sum(1, keepDim: true);
        TestUtil.AssertShape(s1, 3, 1);
        AssertExact([4_000_000_000L, 2L, 2L], s1);

        using var i64 = Tensor.From(new long[] { long.MaxValue / 2, long.MaxValue / 2, 1, -3 }, 2, 2);
        using var t = i64.Sum(-1);
        Assert.Equal(DType.Int64, t.DType);
        AssertExact([long.MaxValue - 1, -2L], t);

        using var b = Tensor.From(new bool[] { true, false, true, true, true, false }, 2, 3);
        using var bs = b.Sum();
        Assert.Equal(DType.Int64, bs.DType);
        AssertExact([4L], bs);
        using var bs0 = b.Sum(0);
        AssertExact([2L, 1L, 1L], bs0);

        using var ip = Tensor.From(new int[] { 100000, 100000, 3, -2 }, 2, 2);
        using var pr = ip.Prod([1]);
        Assert.Equal(DType.Int64, pr.DType);
        AssertExact([10_000_000_000L, -6L], pr);
    }

    [Fact]
    public void Mean_HandValues_AndIntegerThrows()
    {
        using var a = Tensor.From(new double[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var m = a.Mean();
        Assert.Equal(3.5, m.Item());
        using var m0 = a.Mean(0);
        TestUtil.AssertClose([2.5, 3.5, 4.5], m0, 0, 0);
        using var m1 = a.Mean(-1, keepDim: true);
        TestUtil.AssertShape(m1, 2, 1);
        TestUtil.AssertClose([2, 5], m1, 0, 0);
        using var i = Tensor.From(new int[] { 1, 2 });
        Assert.Throws<ArgumentException>(() => i.Mean());
        using var l = Tensor.From(new long[] { 1, 2 });
        Assert.Throws<ArgumentException>(() => l.Mean(0));
        using var b = Tensor.From(new bool[] { true, false });
        Assert.Throws<ArgumentException>(() => b.Mean());
    }

    [Fact]
    public void Prod_HandValues_AndEmpty()
    {
        using var a = Tensor.From(new float[] { 1, 2, 3, 4, -5, 0.5f }, 2, 3);
        using var p = a.Prod();
        Assert.Equal(-60.0, p.Item());
        using var p0 = a.Prod([0]);
        TestUtil.AssertClose([4, -10, 1.5], p0, 0, 0);
        using var p1 = a.Prod([-1], keepDim: true);
        TestUtil.AssertShape(p1, 2, 1);
        TestUtil.AssertClose([6, -10], p1, 0, 0);

        using var e = Tensor.Zeros([3, 0, 2], DType.Float32);
        using var se = e.Sum(1);
        TestUtil.AssertShape(se, 3, 2);
        TestUtil.AssertClose([0, 0, 0, 0, 0, 0], se, 0, 0);
        using var pe = e.Prod([1]);
        TestUtil.AssertClose([1, 1, 1, 1, 1, 1], pe, 0, 0);
        using var pe2 = e.Prod([0, 1]);
        TestUtil.AssertClose([1, 1], pe2, 0, 0);
        using var se2 = e.Sum([0, 1]);
        TestUtil.AssertClose([0, 0], se2, 0, 0);
        using var sall = e.Sum();
        Assert.Equal(0.0, sall.Item());
        using var snon = e.Sum([0]);
        TestUtil.AssertShape(snon, 0, 2);
        // Non-adjacent reduced dims, one of them empty.
        using var e2 = Tensor.Zeros([0, 3, 2], DType.Float64);
        using var s02 = e2.Sum([0, 2]);
        TestUtil.AssertShape(s02, 3);
        TestUtil.AssertClose([0, 0, 0], s02, 0, 0);
        using var p02 = e2.Prod([2, 0], keepDim: true);
        TestUtil.AssertShape(p02, 1, 3, 1);
        TestUtil.AssertClose([1, 1, 1], p02, 0, 0);
        using var ei = Tensor.Zeros([0, 3], DType.Int32);
        using var eis = ei.Sum([0]);
        Assert.Equal(DType.Int64, eis.DType);
        AssertExact([0L, 0L, 0L], eis);
    }

    [Fact]
    public void Var_Std_HandValues()
    {
        using var a = Tensor.From(new double[] { 1, 2, 3, 4 });
        using var v1 = a.Var();
        Assert.Equal(5.0 / 3, v1.Item(), 12);
        using var v0 = a.Var(null, correction: 0);
        Assert.Equal(1.25, v0.Item(), 12);
        using var s1 = a.Std();
        Assert.Equal(Math.Sqrt(5.0 / 3), s1.Item(), 12);
        using var s0 = a.Std(0, correction: 0);
        Assert.Equal(Math.Sqrt(1.25), s0.Item(), 12);

        using var b = Tensor.From(new float[] { 1, 3, 2, 8, 4, 4 }, 2, 3);
        using var vb = b.Var(1);
        // row 0: mean 2, sq dev 1+1+0 = 2 -> 1; row 1: mean 16/3, sq dev (8/3)^2+(4/3)^2*2 = 96/9 -> 48/9
        TestUtil.AssertClose([1, 48.0 / 9], vb, 1e-6, 1e-6);
        using var vb0 = b.Var(0, correction: 0, keepDim: true);
        TestUtil.AssertShape(vb0, 1, 3);
        TestUtil.AssertClose([12.25, 0.25, 1], vb0, 1e-6, 1e-6);
        using var sb = b.Std(-1, correction: 0);
        TestUtil.AssertClose([Math.Sqrt(2.0 / 3), Math.Sqrt(96.0 / 27)], sb, 1e-6, 1e-6);
    }

    [Theory]
    [InlineData(new int[] { 1, 3 }, 1, false)]
    [InlineData(new int[] { 0, 2 }, 0, true)]
    [InlineData(new int[] { -1 }, 1, true)]
    [InlineData(new int[] { 0, 1, 2, 3 }, 0, false)]
    public void Var_Std_MultiDims_MatchReference(int[] dims, int correction, bool keepDim)
    {
        int[] shape = [2, 3, 4, 5];
        var v = RandomValues(120, 5);
        using var x = F64(v, shape);
        double RefVar(List<double> g)
        {
            double m = RefSum(g) / g.Count, s = 0;
            foreach (var e in g) s += (e - m) * (e - m);
            return s / (g.Count - correction);
        }
        var (ev, es) = RefReduce(v, shape, dims, keepDim, RefVar);
        using var var_ = x.Var(dims, correction, keepDim);
        TestUtil.AssertShape(var_, es);
        TestUtil.AssertClose(ev, var_, 1e-12, 1e-10);
        using var std = x.Std(dims, correction, keepDim);
        TestUtil.AssertClose(ev.Select(Math.Sqrt).ToArray(), std, 1e-12, 1e-10);
    }

    // ---------------------------------------------------------------- Max / Min / Argmax / Argmin

    [Fact]
    public void MaxMinDim_ValuesIndices_TiesFirst()
    {
        using var a = Tensor.From(new float[] { 1, 3, 3, 2, 2, 1 }, 2, 3);
        var (mv, mi) = a.Max(1);
        TestUtil.AssertShape(mv, 2);
        TestUtil.AssertClose([3, 2], mv, 0, 0);
        Assert.Equal(DType.Int64, mi.DType);
        AssertExact([1L, 0L], mi);
        var (nv, ni) = a.Min(-1, keepDim: true);
        TestUtil.AssertShape(nv, 2, 1);
        TestUtil.AssertShape(ni, 2, 1);
        TestUtil.AssertClose([1, 1], nv, 0, 0);
        AssertExact([0L, 2L], ni);
        var (cv, ci) = a.Max(0);
        TestUtil.AssertClose([2, 3, 3], cv, 0, 0);
        AssertExact([1L, 0L, 0L], ci);
        var (dv, di) = a.Min(0);
        TestUtil.AssertClose([1, 2, 1], dv, 0, 0);
        AssertExact([0L, 1L, 1L], di);
        foreach (var t in new[] { mv, mi, nv, ni, cv, ci, dv, di }) t.Dispose();

        using var ints = Tensor.From(new int[] { -7, 4, 4, -9 }, 2, 2);
        var (iv, ii) = ints.Max(1);
        Assert.Equal(DType.Int32, iv.DType);
        AssertExact([4, 4], iv);
        AssertExact([1L, 0L], ii);
        var (jv, ji) = ints.Min(0);
        AssertExact([-7, -9], jv);
        AssertExact([0L, 1L], ji);
    }

    [Fact]
    public void MaxMin_NaNWins()
    {
        using var a = Tensor.From(new double[] { 1, double.NaN, 5, double.NaN, 7, 0 }, 2, 3);
        var (mv, mi) = a.Max(1);
        TestUtil.AssertClose([double.NaN, double.NaN], mv);
        AssertExact([1L, 0L], mi);
        var (nv, ni) = a.Min(1);
        TestUtil.AssertClose([double.NaN, double.NaN], nv);
        AssertExact([1L, 0L], ni);
        var (cv, ci) = a.Max(0);
        TestUtil.AssertClose([double.NaN, double.NaN, 5], cv);
        AssertExact([1L, 0L, 0L], ci);
        using var am = a.Argmax(-1);
        AssertExact([1L, 0L], am);
        using var amin = a.Argmin();
        AssertExact([1L], amin);
        using var all = a.Max();
        Assert.True(double.IsNaN(all.Item()));
        using var allMin = a.Min();
        Assert.True(double.IsNaN(allMin.Item()));
        using var f = Tensor.From(new float[] { 3, 2, float.NaN });
        using var fm = f.Max();
        Assert.True(double.IsNaN(fm.Item()));
        using var fa = f.Argmin();
        AssertExact([2L], fa);
    }

    [Fact]
    public void MaxMinAll_ArgmaxArgmin_WithAndWithoutDim()
    {
        using var a = Tensor.From(new float[] { 4, -1, 9, 9, 0, -1 }, 2, 3);
        using var mx = a.Max();
        TestUtil.AssertShape(mx);
        Assert.Equal(9.0, mx.Item());
        using var mn = a.Min();
        TestUtil.AssertShape(mn);
        Assert.Equal(-1.0, mn.Item());

        using var am = a.Argmax();
        TestUtil.AssertShape(am);
        Assert.Equal(DType.Int64, am.DType);
        AssertExact([2L], am);
        using var amk = a.Argmax(null, keepDim: true);
        TestUtil.AssertShape(amk, 1, 1);
        AssertExact([2L], amk);
        using var an = a.Argmin();
        AssertExact([1L], an);
        using var am0 = a.Argmax(0);
        AssertExact([1L, 1L, 0L], am0);
        using var am1 = a.Argmax(1, keepDim: true);
        TestUtil.AssertShape(am1, 2, 1);
        AssertExact([2L, 0L], am1);
        using var an1 = a.Argmin(-1);
        AssertExact([1L, 2L], an1);
        using var an0 = a.Argmin(-2);
        AssertExact([0L, 0L, 1L], an0);

        // Non-contiguous input: transposed view.
        using var t = a.MT;
        using var tm = t.Argmax(1); // t = [[4, 9], [-1, 0], [9, -1]]
        AssertExact([1L, 1L, 0L], tm);
        using var tmAll = t.Argmax();
        AssertExact([1L], tmAll);
    }

    [Fact]
    public void Max_EmptyDimension_Throws()
    {
        using var e = Tensor.Zeros([2, 0], DType.Float32);
        Assert.Throws<ArgumentException>(() => e.Max(1));
        Assert.Throws<ArgumentException>(() => e.Min(-1));
        Assert.Throws<ArgumentException>(() => e.Argmax(1));
        Assert.Throws<ArgumentException>(() => e.Max());
        Assert.Throws<ArgumentException>(() => e.Argmin());
        // Reducing a non-empty dimension of an empty tensor is fine.
        var (v, i) = e.Max(0);
        TestUtil.AssertShape(v, 0);
        TestUtil.AssertShape(i, 0);
    }

    // ---------------------------------------------------------------- Any / All

    [Fact]
    public void AnyAll_HandValues()
    {
        using var b = Tensor.From(new bool[] { true, false, false, false, true, true }, 2, 3);
        using var any = b.Any();
        Assert.Equal(DType.Bool, any.DType);
        Assert.Equal([true], any.ToArray<bool>());
        using var all = b.All();
        Assert.Equal([false], all.ToArray<bool>());
        using var any1 = b.Any([1]);
        Assert.Equal([true, true], any1.ToArray<bool>());
        using var all0 = b.All([0], keepDim: true);
        TestUtil.AssertShape(all0, 1, 3);
        Assert.Equal([false, false, false], all0.ToArray<bool>());
        using var any0 = b.Any([-2]);
        Assert.Equal([true, true, true], any0.ToArray<bool>());
        using var all1 = b.All([-1]);
        Assert.Equal([false, false], all1.ToArray<bool>());

        using var f = Tensor.From(new float[] { 0, 0, 0.5f, -1, 2, 0, 3, 4 }, 2, 2, 2);
        using var fa = f.Any([0, 2]);
        Assert.Equal([true, true], fa.ToArray<bool>());
        using var fa2 = f.Any([2]);
        Assert.Equal([false, true, true, true], fa2.ToArray<bool>());
        using var fl = f.All([0, 2]);
        Assert.Equal([false, true], fl.ToArray<bool>());
        using var fl2 = f.All([1]);
        Assert.Equal([false, false, true, false], fl2.ToArray<bool>());
        using var i = Tensor.From(new long[] { 3, -2, 7 });
        using var ia = i.All();
        Assert.Equal([true], ia.ToArray<bool>());

        using var e = Tensor.Zeros([0, 2], DType.Bool);
        using var ea = e.Any([0]);
        Assert.Equal([false, false], ea.ToArray<bool>());
        using var el = e.All([0]);
        Assert.Equal([true, true], el.ToArray<bool>());
    }

    [Fact]
    public void AnyAll_LongRows_SimdAndColumnPaths()
    {
        // 1000 bools per row: SIMD main loop (64-byte vectors) plus remainder; [300, 1000] over dim 0 for the inner > 1 path.
        var data = new bool[300 * 1000];
        for (int i = 0; i < data.Length; i++) data[i] = true;
        data[5 * 1000 + 999] = false;    // row 5, last element (remainder)
        data[7 * 1000 + 3] = false;      // row 7
        using var b = Tensor.From(data, 300, 1000);
        using var all = b.All([1]);
        var allv = all.ToArray<bool>();
        for (int r = 0; r < 300; r++) Assert.Equal(r != 5 && r != 7, allv[r]);
        using var allCols = b.All([0]);
        var cv = allCols.ToArray<bool>();
        for (int c = 0; c < 1000; c++) Assert.Equal(c != 999 && c != 3, cv[c]);

        var sparse = new bool[300 * 1000];
        sparse[299 * 1000 + 998] = true;
        using var s = Tensor.From(sparse, 300, 1000);
        using var anyR = s.Any([1]);
        var av = anyR.ToArray<bool>();
        for (int r = 0; r < 300; r++) Assert.Equal(r == 299, av[r]);
        using var anyC = s.Any([0]);
        var ac = anyC.ToArray<bool>();
        for (int c = 0; c < 1000; c++) Assert.Equal(c == 998, ac[c]);
        using var anyAll = s.Any();
        Assert.Equal([true], anyAll.ToArray<bool>());
    }

    // ---------------------------------------------------------------- LogSumExp

    [Fact]
    public void LogSumExp_Stable_WithInfAndLargeValues()
    {
        double ninf = double.NegativeInfinity;
        var v = new double[]
        {
            1000, 1000, 1000,           // naive exp overflows: 1000 + log 3
            ninf, 0, 0,                 // log 2
            ninf, ninf, ninf,           // -inf
            -1000, -1000, -1001,        // underflows naively
            1, 2, 3,
        };
        using var x = F64(v, 5, 3);
        using var l = x.LogSumExp(1);
        TestUtil.AssertShape(l, 5);
        var expected = new[]
        {
            1000 + Math.Log(3), Math.Log(2), ninf, -1000 + Math.Log(2 + Math.Exp(-1)), 3 + Math.Log(1 + Math.Exp(-1) + Math.Exp(-2)),
        };
        TestUtil.AssertClose(expected, l, 1e-12, 1e-13);
        using var lf = F32(v, 5, 3).LogSumExp(-1, keepDim: true);
        TestUtil.AssertShape(lf, 5, 1);
        TestUtil.AssertClose(expected, lf, 1e-4, 1e-6);

        using var c = x.LogSumExp(0);
        var (ec, _) = RefReduce(v, [5, 3], [0], false, RefLse);
        TestUtil.AssertClose(ec, c, 1e-12, 1e-13);
        using var all = x.LogSumExp([0, 1]);
        TestUtil.AssertShape(all);
        Assert.Equal(1000 + Math.Log(3), all.Item(), 9);
    }

    [Theory]
    [InlineData(new int[] { 1, 3 }, false)]
    [InlineData(new int[] { 0, 2 }, true)]
    [InlineData(new int[] { -2 }, false)]
    public void LogSumExp_MultiDims_MatchReference(int[] dims, bool keepDim)
    {
        int[] shape = [2, 3, 4, 5];
        var v = RandomValues(120, 21, -5, 5);
        using var x = F64(v, shape);
        var (e, es) = RefReduce(v, shape, dims, keepDim, RefLse);
        using var l = x.LogSumExp(dims, keepDim);
        TestUtil.AssertShape(l, es);
        TestUtil.AssertClose(e, l, 1e-12, 1e-12);
    }

    // ---------------------------------------------------------------- CumSum

    [Fact]
    public void CumSum_FloatAndInt_HandValues()
    {
        using var a = Tensor.From(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var c1 = a.CumSum(1);
        TestUtil.AssertShape(c1, 2, 3);
        TestUtil.AssertClose([1, 3, 6, 4, 9, 15], c1, 0, 0);
        using var c0 = a.CumSum(0);
        TestUtil.AssertClose([1, 2, 3, 5, 7, 9], c0, 0, 0);
        using var cm = a.CumSum(-1);
        TestUtil.AssertClose([1, 3, 6, 4, 9, 15], cm, 0, 0);

        using var i = Tensor.From(new int[] { 2_000_000_000, 2_000_000_000, -1, 5 }, 2, 2);
        using var ic = i.CumSum(0);
        Assert.Equal(DType.Int64, ic.DType);
        AssertExact([2_000_000_000L, 2_000_000_000L, 1_999_999_999L, 2_000_000_005L], ic);
        using var ic1 = i.CumSum(1);
        AssertExact([2_000_000_000L, 4_000_000_000L, -1L, 4L], ic1);
        using var b = Tensor.From(new bool[] { true, false, true });
        using var bc = b.CumSum(0);
        Assert.Equal(DType.Int64, bc.DType);
        AssertExact([1L, 1L, 2L], bc);

        using var t = a.MT; // [[1,4],[2,5],[3,6]]
        using var tc = t.CumSum(0);
        TestUtil.AssertClose([1, 4, 3, 9, 6, 15], tc, 0, 0);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void CumSum_MatchesReference(int dim)
    {
        int[] shape = [3, 4, 5];
        var v = RandomValues(60, 4);
        using var x = F64(v, shape);
        using var c = x.CumSum(dim);
        TestUtil.AssertClose(RefCumSum(v, shape, dim), c, 1e-12, 1e-12);
    }

    [Fact]
    public void CumSum_LongRows()
    {
        int[] shape = [3, 100003];
        var v = RandomValues(3 * 100003, 8, 0, 1, floatExact: true);
        using var x = F64(v, shape);
        using var c = x.CumSum(1);
        TestUtil.AssertClose(RefCumSum(v, shape, 1), c, 1e-9, 1e-12);
        using var xf = F32(v, shape);
        using var cf = xf.CumSum(-1);
        TestUtil.AssertClose(RefCumSum(v, shape, 1), cf, 1e-3, 1e-4);
        int[] shape2 = [300, 1000];
        using var y = F64(v.AsSpan(0, 300000).ToArray(), shape2);
        using var c0 = y.CumSum(0);
        TestUtil.AssertClose(RefCumSum(v.AsSpan(0, 300000).ToArray(), shape2, 0), c0, 1e-10, 1e-12);
    }

    // ---------------------------------------------------------------- Softmax / LogSoftmax

    [Fact]
    public void Softmax_HandValues()
    {
        using var a = Tensor.From(new double[] { 0, 0, Math.Log(2), Math.Log(3) }, 2, 2);
        using var s = a.Softmax(-1);
        TestUtil.AssertClose([0.5, 0.5, 0.4, 0.6], s, 1e-15, 1e-14);
        using var l = a.LogSoftmax(1);
        TestUtil.AssertClose([Math.Log(0.5), Math.Log(0.5), Math.Log(0.4), Math.Log(0.6)], l, 1e-15, 1e-14);
        using var s0 = a.Softmax(0);
        TestUtil.AssertClose([1.0 / 3, 0.25, 2.0 / 3, 0.75], s0, 1e-15, 1e-14);
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void Softmax_InfAndLargeValues(DType dtype)
    {
        double ninf = double.NegativeInfinity;
        var v = new double[]
        {
            1000, 1000, 999, 0,        // would overflow naively
            ninf, 0, ninf, 0,          // masked entries
            -1000, -1001, -1000, -1e4, // would underflow naively
            ninf, ninf, 5, ninf,
        };
        int[] shape = [4, 4];
        using var x = dtype == DType.Float32 ? F32(v, shape) : F64(v, shape);
        double tol = dtype == DType.Float32 ? 1e-6 : 1e-14;
        var es = RefSoftmax(v, shape, 1, log: false);
        var el = RefSoftmax(v, shape, 1, log: true);
        using var s = x.Softmax(1);
        TestUtil.AssertClose(es, s, tol, tol);
        using var l = x.LogSoftmax(-1);
        TestUtil.AssertClose(el, l, tol, tol * 10);
        Assert.Equal(0.0, s.ToDoubleArray()[4]);
        Assert.True(double.IsNegativeInfinity(l.ToDoubleArray()[4]));

        // The same rows as columns: dim 0 (inner > 1 path).
        using var t = x.MT;
        using var st = t.Softmax(0);
        using var stt = st.MT;
        TestUtil.AssertClose(es, stt, tol, tol);
        using var lt = t.LogSoftmax(0);
        using var ltt = lt.MT;
        TestUtil.AssertClose(el, ltt, tol, tol * 10);

        // A row of all -inf gives NaN (as in PyTorch).
        using var allInf = dtype == DType.Float32 ? F32([ninf, ninf, ninf], 3) : F64([ninf, ninf, ninf], 3);
        using var sa = allInf.Softmax(0);
        Assert.All(sa.ToDoubleArray(), d => Assert.True(double.IsNaN(d)));
    }

    [Theory]
    [InlineData(DType.Float32, 0)]
    [InlineData(DType.Float32, 1)]
    [InlineData(DType.Float32, 2)]
    [InlineData(DType.Float32, -2)]
    [InlineData(DType.Float64, 0)]
    [InlineData(DType.Float64, 1)]
    [InlineData(DType.Float64, -1)]
    public void SoftmaxLogSoftmax_AnyDim_MatchReference(DType dtype, int dim)
    {
        int[] shape = [3, 7, 5];
        var v = RandomValues(105, 31 + dim, -8, 8, floatExact: true);
        v[3] = double.NegativeInfinity;
        v[50] = double.NegativeInfinity;
        v[17] = 200;
        using var x = dtype == DType.Float32 ? F32(v, shape) : F64(v, shape);
        int d = dim < 0 ? dim + 3 : dim;
        double tol = dtype == DType.Float32 ? 2e-6 : 1e-14;
        using var s = x.Softmax(dim);
        Assert.Equal(dtype, s.DType);
        TestUtil.AssertShape(s, shape);
        TestUtil.AssertClose(RefSoftmax(v, shape, d, false), s, tol, tol);
        using var l = x.LogSoftmax(dim);
        TestUtil.AssertClose(RefSoftmax(v, shape, d, true), l, tol * 10, tol);
    }

    [Fact]
    public void Softmax_NonContiguousInput()
    {
        var v = RandomValues(4 * 6 * 5, 12, -3, 3);
        using var x = F64(v, 4, 6, 5);
        using var p = x.Permute(2, 0, 1);          // [5, 4, 6]
        using var sl = p.Slice(2, 1, 6, 2);         // [5, 4, 3] columns 1,3,5
        // Logical values of sl.
        int[] shape = [5, 4, 3];
        var lv = new double[60];
        for (int i = 0; i < 60; i++)
        {
            var idx = Unravel(i, shape);
            lv[i] = v[(idx[1] * 6 + (1 + 2 * idx[2])) * 5 + idx[0]];
        }
        for (int dim = 0; dim < 3; dim++)
        {
            using var s = sl.Softmax(dim);
            TestUtil.AssertClose(RefSoftmax(lv, shape, dim, false), s, 1e-14, 1e-13);
            using var l = sl.LogSoftmax(dim);
            TestUtil.AssertClose(RefSoftmax(lv, shape, dim, true), l, 1e-14, 1e-13);
        }
    }

    [Fact]
    public void Softmax_IntegerThrows()
    {
        using var i = Tensor.From(new int[] { 1, 2 });
        Assert.Throws<ArgumentException>(() => i.Softmax(0));
        Assert.Throws<ArgumentException>(() => i.LogSoftmax(0));
    }

    // ---------------------------------------------------------------- sizes: SIMD main loop, remainder, parallel paths

    [Theory]
    [InlineData(5, 1)]
    [InlineData(9, 7)]
    [InlineData(4, 64)]
    [InlineData(3, 65)]
    [InlineData(5, 127)]
    [InlineData(2000, 33)]
    [InlineData(3, 100003)]
    public void RowReductions_VariousRowLengths(int rows, int len)
    {
        int[] shape = [rows, len];
        int n = rows * len;
        var v = RandomValues(n, rows * 1000 + len, 0, 1, floatExact: true);
        v[n / 2] = 2.5;          // a clear maximum in the middle row
        v[n - 1] = -0.5;         // a clear minimum at the very end (remainder)
        var (es, _) = RefReduce(v, shape, [1], false, RefSum);
        var (emax, _) = RefReduce(v, shape, [1], false, g => g.Max());
        var (emin, _) = RefReduce(v, shape, [1], false, g => g.Min());
        var (else_, _) = RefReduce(v, shape, [1], false, RefLse);
        var argmax = new long[rows];
        var argmin = new long[rows];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 1; j < len; j++)
            {
                if (v[r * len + j] > v[r * len + argmax[r]]) argmax[r] = j;
                if (v[r * len + j] < v[r * len + argmin[r]]) argmin[r] = j;
            }
        }
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            using var x = dtype == DType.Float32 ? F32(v, shape) : F64(v, shape);
            double rtol = dtype == DType.Float32 ? 1e-4 : 1e-12;
            using var s = x.Sum(1);
            TestUtil.AssertClose(es, s, rtol * 0.1, rtol);
            using var m = x.Mean(-1);
            TestUtil.AssertClose(es.Select(e => e / len).ToArray(), m, rtol * 0.1, rtol);
            var (mv, mi) = x.Max(1);
            TestUtil.AssertClose(emax, mv, 0, 0);
            AssertExact(argmax, mi);
            var (nv, ni) = x.Min(1);
            TestUtil.AssertClose(emin, nv, 0, 0);
            AssertExact(argmin, ni);
            using var l = x.LogSumExp(1);
            TestUtil.AssertClose(else_, l, rtol * 0.1, rtol);
            using var sm = x.Softmax(1);
            TestUtil.AssertClose(RefSoftmax(v, shape, 1, false), sm, rtol * 1e-3, rtol);
            using var ls = x.LogSoftmax(1);
            TestUtil.AssertClose(RefSoftmax(v, shape, 1, true), ls, rtol, rtol);
            foreach (var t in new[] { mv, mi, nv, ni }) t.Dispose();
        }
        // Integer sums (exact).
        var iv = v.Select(d => (int)(d * 1000) - 500).ToArray();
        using var xi = Tensor.From(iv, shape);
        using var si = xi.Sum(1);
        var esi = new long[rows];
        for (int i = 0; i < n; i++) esi[i / len] += iv[i];
        AssertExact(esi, si);
        using var li = Tensor.From(iv.Select(q => (long)q).ToArray(), shape);
        var (lmv, lmi) = li.Max(1);
        var elmv = new long[rows];
        for (int r = 0; r < rows; r++)
        {
            elmv[r] = iv[r * len];
            for (int j = 1; j < len; j++) elmv[r] = Math.Max(elmv[r], iv[r * len + j]);
        }
        AssertExact(elmv, lmv);
        lmv.Dispose();
        lmi.Dispose();
    }

    [Fact]
    public void Prod_RowLengths_SimdAndRemainder()
    {
        foreach (int len in new[] { 7, 64, 100 })
        {
            int[] shape = [3, len];
            var v = RandomValues(3 * len, len, 0.9, 1.1, floatExact: true);
            var (ep, _) = RefReduce(v, shape, [1], false, g => g.Aggregate(1.0, (a, b) => a * b));
            using var x = F32(v, shape);
            using var p = x.Prod([1]);
            TestUtil.AssertClose(ep, p, 1e-6, 1e-5);
            using var xd = F64(v, shape);
            using var pd = xd.Prod([1]);
            TestUtil.AssertClose(ep, pd, 1e-14, 1e-12);
            var il = v.Select(d => d > 1 ? 2L : 1L).ToArray();
            using var xi = Tensor.From(il.Select(q => (int)q).ToArray(), 1, 3 * len).Slice(1, 0, Math.Min(60, 3 * len));
            using var pi = xi.Prod();
            long e = 1;
            for (int i = 0; i < Math.Min(60, 3 * len); i++) e *= il[i];
            AssertExact([e], pi);
        }
    }

    [Fact]
    public void Sum_SingleLongRow_ParallelPieces()
    {
        int n = 1 << 17;
        var v = RandomValues(n + 5, 99, 0, 1, floatExact: true);
        var vv = v.AsSpan(0, n).ToArray();
        double e = 0;
        foreach (var d in vv) e += d;
        using var xf = F32(vv, n);
        using var sf = xf.Sum();
        TestUtil.AssertClose([e], sf, 0, 1e-4);
        using var xd = F64(vv, n);
        using var sd = xd.Sum();
        TestUtil.AssertClose([e], sd, 0, 1e-12);
        using var md = xd.Mean();
        TestUtil.AssertClose([e / n], md, 0, 1e-12);
        using var xd2 = F64(vv, 256, 512);
        using var sd2 = xd2.Sum(); // all dims of a 2-D tensor: one row of 1<<17
        TestUtil.AssertClose([e], sd2, 0, 1e-12);

        var iv = vv.Select(d => (int)(d * 1e6)).ToArray();
        long ei = 0;
        foreach (var q in iv) ei += q;
        using var xi = Tensor.From(iv, n);
        using var si = xi.Sum();
        AssertExact([ei], si);

        // Odd length (pieces of unequal size) and the largest element at the very end.
        var w = v.AsSpan(0, n + 5).ToArray();
        w[^1] = 3;
        double ew = 0;
        foreach (var d in w) ew += d;
        using var xw = F64(w, n + 5);
        using var sw = xw.Sum();
        TestUtil.AssertClose([ew], sw, 0, 1e-12);
        using var lw = xw.LogSumExp(0);
        var (el, _) = RefReduce(w, [n + 5], [0], false, RefLse);
        TestUtil.AssertClose(el, lw, 0, 1e-12);
        using var mw = xw.Max();
        Assert.Equal(3.0, mw.Item());
        using var aw = xw.Argmax();
        AssertExact([(long)n + 4], aw);
    }

    [Fact]
    public void Reductions_OverDim0_OfWideMatrix_ColumnPath()
    {
        int[] shape = [300, 1000];
        var v = RandomValues(300_000, 3, -2, 2, floatExact: true);
        var (es, _) = RefReduce(v, shape, [0], false, RefSum);
        var (el, _) = RefReduce(v, shape, [0], false, RefLse);
        var (emax, _) = RefReduce(v, shape, [0], false, g => g.Max());
        var argmax = new long[1000];
        for (int c = 0; c < 1000; c++)
            for (int r = 1; r < 300; r++)
                if (v[r * 1000 + c] > v[argmax[c] * 1000 + c]) argmax[c] = r;
        var (ev, _) = RefReduce(v, shape, [0], false, g =>
        {
            double m = RefSum(g) / g.Count, s = 0;
            foreach (var e in g) s += (e - m) * (e - m);
            return s / (g.Count - 1);
        });
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            using var x = dtype == DType.Float32 ? F32(v, shape) : F64(v, shape);
            double tol = dtype == DType.Float32 ? 1e-4 : 1e-11;
            using var s = x.Sum(0);
            TestUtil.AssertClose(es, s, tol, tol);
            using var sk = x.Sum(0, keepDim: true);
            TestUtil.AssertShape(sk, 1, 1000);
            using var l = x.LogSumExp(0);
            TestUtil.AssertClose(el, l, tol, tol);
            using var var_ = x.Var(0);
            TestUtil.AssertClose(ev, var_, tol, tol);
            var (mv, mi) = x.Max(0);
            TestUtil.AssertClose(emax, mv, 0, 0);
            AssertExact(argmax, mi);
            mv.Dispose();
            mi.Dispose();
            using var sm = x.Softmax(0);
            TestUtil.AssertClose(RefSoftmax(v, shape, 0, false), sm, tol * 1e-2, tol);
        }
        var iv = v.Select(d => (int)(d * 100)).ToArray();
        using var xi = Tensor.From(iv, shape);
        using var si = xi.Sum(0);
        var esi = new long[1000];
        for (int i = 0; i < iv.Length; i++) esi[i % 1000] += iv[i];
        AssertExact(esi, si);
    }

    // ---------------------------------------------------------------- scalars (rank 0)

    [Fact]
    public void RankZero_Reductions()
    {
        using var s = Tensor.Scalar(2.5, DType.Float64);
        using var sum = s.Sum();
        TestUtil.AssertShape(sum);
        Assert.Equal(2.5, sum.Item());
        using var mx = s.Max();
        Assert.Equal(2.5, mx.Item());
        using var am = s.Argmax();
        AssertExact([0L], am);
        using var sm = s.Softmax(0);
        TestUtil.AssertShape(sm);
        Assert.Equal(1.0, sm.Item());
        using var lsm = s.LogSoftmax(-1);
        Assert.Equal(0.0, lsm.Item());
        using var cs = s.CumSum(0);
        TestUtil.AssertShape(cs);
        Assert.Equal(2.5, cs.Item());
        using var s0 = s.Sum(0);
        TestUtil.AssertShape(s0);
        Assert.Equal(2.5, s0.Item());
        using var m0 = s.Mean(0);
        TestUtil.AssertShape(m0);
        Assert.Equal(2.5, m0.Item());
        var (v0, i0) = s.Max(0);
        TestUtil.AssertShape(v0);
        Assert.Equal(2.5, v0.Item());
        AssertExact([0L], i0);
        using var a0 = s.Argmin(0);
        AssertExact([0L], a0);
        var (v1, i1) = s.Min(-1, keepDim: true);
        TestUtil.AssertShape(v1);
        Assert.Equal(2.5, v1.Item());
        using var var0 = s.Var(0, correction: 0);
        Assert.Equal(0.0, var0.Item());
    }

    [Fact]
    public void RankZero_Grads()
    {
        var s = Tensor.Scalar(0.7, DType.Float64);
        TestUtil.GradCheck(x => x[0].Sum(), [s]);
        TestUtil.GradCheck(x => x[0].Sum(0), [s]);
        TestUtil.GradCheck(x => x[0].Mean(0), [s]);
        TestUtil.GradCheck(x => x[0].Prod(), [s]);
        TestUtil.GradCheck(x => x[0].Max(), [s]);
        TestUtil.GradCheck(x => { var (v, i) = x[0].Max(0); i.Dispose(); return v; }, [s]);
        TestUtil.GradCheck(x => x[0].LogSumExp(0), [s]);
        TestUtil.GradCheck(x => x[0].CumSum(0), [s]);
        TestUtil.GradCheck(x => x[0].Softmax(0), [s]);
        TestUtil.GradCheck(x => x[0].LogSoftmax(0), [s]);
    }

    [Fact]
    public void ArgmaxMax_BoolAndInt()
    {
        using var b = Tensor.From(new bool[] { false, true, true, false, false, false }, 2, 3);
        using var am = b.Argmax(1);
        AssertExact([1L, 0L], am);
        using var an = b.Argmin(1);
        AssertExact([0L, 0L], an);
        var (v, i) = b.Max(0);
        Assert.Equal(DType.Bool, v.DType);
        Assert.Equal([false, true, true], v.ToArray<bool>());
        AssertExact([0L, 0L, 0L], i);
        using var l = Tensor.From(new long[] { long.MinValue, long.MaxValue, 0 });
        using var lm = l.Max();
        Assert.Equal([long.MaxValue], lm.ToArray<long>());
        using var ln = l.Argmin();
        AssertExact([0L], ln);
    }

    // ---------------------------------------------------------------- bad input

    [Fact]
    public void OutOfRangeDims_Throw()
    {
        using var x = Tensor.Zeros(2, 3);
        void Check(int dim, Action a)
        {
            var ex = Assert.ThrowsAny<ArgumentOutOfRangeException>(a);
            Assert.Equal(dim, ex.ActualValue);
            Assert.Contains(dim.ToString(), ex.Message);
        }
        Check(2, () => x.Sum(2));
        Check(-3, () => x.Sum([0, -3]));
        Check(5, () => x.Mean(5));
        Check(2, () => x.Var(2));
        Check(-3, () => x.Std(-3));
        Check(2, () => x.Prod([2]));
        Check(2, () => x.Max(2));
        Check(-3, () => x.Min(-3));
        Check(2, () => x.Argmax(2));
        Check(3, () => x.Argmin(3));
        Check(2, () => x.Any([2]));
        Check(-5, () => x.All([-5]));
        Check(2, () => x.LogSumExp(2));
        Check(2, () => x.CumSum(2));
        Check(2, () => x.Softmax(2));
        Check(-3, () => x.LogSoftmax(-3));
        using var s = Tensor.Scalar(1);
        Check(1, () => s.Sum(1));
        Check(-2, () => s.Softmax(-2));
        Assert.Throws<ArgumentException>(() => x.Sum([1, -1]));
    }

    // ---------------------------------------------------------------- gradients (float64 central differences)

    [Fact]
    public void Grad_SumMean()
    {
        var a = TestUtil.RandnF64([2, 3, 4], 1);
        TestUtil.GradCheck(x => x[0].Sum(), [a]);
        TestUtil.GradCheck(x => x[0].Sum([0, 2]), [a]);
        TestUtil.GradCheck(x => x[0].Sum([-1], keepDim: true), [a]);
        TestUtil.GradCheck(x => x[0].Mean([1]), [a]);
        TestUtil.GradCheck(x => x[0].Mean([0, 2], keepDim: true), [a]);
        TestUtil.GradCheck(x => x[0].Mean(), [a]);
        // Non-contiguous inputs inside the function.
        TestUtil.GradCheck(x => { using var p = x[0].Permute(2, 0, 1); return p.Sum([0, 2]); }, [a]);
        TestUtil.GradCheck(x => { using var p = x[0].Slice(2, 0, 4, 2); return p.Mean([1, 2]); }, [a]);
        var b = TestUtil.RandnF64([3, 1], 2);
        TestUtil.GradCheck(x => { using var e = x[0].Expand(2, 3, 4); using var q = e * e; return q.Sum([0, 2]); }, [b]);
    }

    [Fact]
    public void Grad_VarStd()
    {
        var a = TestUtil.RandnF64([3, 5], 3);
        TestUtil.GradCheck(x => x[0].Var(1), [a]);
        TestUtil.GradCheck(x => x[0].Var(0, correction: 0, keepDim: true), [a]);
        TestUtil.GradCheck(x => x[0].Var(), [a]);
        TestUtil.GradCheck(x => x[0].Std(1), [a]);
        TestUtil.GradCheck(x => x[0].Std([0, 1], correction: 0), [a]);
        TestUtil.GradCheck(x => { using var t = x[0].MT; return t.Std(1); }, [a]);
    }

    [Fact]
    public void Grad_Prod()
    {
        var v = RandomValues(24, 17, 0.5, 2);
        for (int i = 0; i < v.Length; i += 3) v[i] = -v[i];
        var a = F64(v, 2, 3, 4);
        TestUtil.GradCheck(x => x[0].Prod([1]), [a]);
        TestUtil.GradCheck(x => x[0].Prod([0, 2], keepDim: true), [a]);
        TestUtil.GradCheck(x => x[0].Prod([2]), [a]);
        var small = F64(v.AsSpan(0, 6).ToArray(), 2, 3);
        TestUtil.GradCheck(x => x[0].Prod(), [small]);
        TestUtil.GradCheck(x => { using var p = x[0].Permute(1, 2, 0); return p.Prod([1]); }, [a]);
    }

    [Fact]
    public void Grad_MaxMin()
    {
        var a = TestUtil.RandnF64([3, 4, 2], 4);
        TestUtil.GradCheck(x => { var (v, i) = x[0].Max(1); i.Dispose(); return v; }, [a]);
        TestUtil.GradCheck(x => { var (v, i) = x[0].Max(-1, keepDim: true); i.Dispose(); return v; }, [a]);
        TestUtil.GradCheck(x => { var (v, i) = x[0].Min(0); i.Dispose(); return v; }, [a]);
        TestUtil.GradCheck(x => x[0].Max(), [a]);
        TestUtil.GradCheck(x => x[0].Min(), [a]);
        TestUtil.GradCheck(x => { using var p = x[0].Permute(2, 0, 1); var (v, i) = p.Max(2); i.Dispose(); return v; }, [a]);
    }

    [Fact]
    public void Grad_LogSumExp()
    {
        var a = TestUtil.RandnF64([3, 4], 5);
        TestUtil.GradCheck(x => x[0].LogSumExp(1), [a]);
        TestUtil.GradCheck(x => x[0].LogSumExp(0, keepDim: true), [a]);
        TestUtil.GradCheck(x => x[0].LogSumExp([0, 1]), [a]);
        var big = F64(RandomValues(6, 3).Select(d => d + 1000).ToArray(), 2, 3);
        TestUtil.GradCheck(x => x[0].LogSumExp(1), [big]);
        TestUtil.GradCheck(x => { using var t = x[0].MT; return t.LogSumExp(1); }, [a]);
    }

    [Fact]
    public void Grad_CumSum()
    {
        var a = TestUtil.RandnF64([3, 4], 6);
        TestUtil.GradCheck(x => x[0].CumSum(0), [a]);
        TestUtil.GradCheck(x => x[0].CumSum(1), [a]);
        TestUtil.GradCheck(x => x[0].CumSum(-1), [a]);
        TestUtil.GradCheck(x => { using var t = x[0].MT; return t.CumSum(1); }, [a]);
        TestUtil.GradCheck(x => { using var s = x[0].Slice(1, 1, 4, 2); return s.CumSum(1); }, [a]);
    }

    [Fact]
    public void Grad_SoftmaxLogSoftmax()
    {
        var a = TestUtil.RandnF64([2, 3, 4], 7);
        foreach (int dim in new[] { 0, 1, 2, -1 })
        {
            TestUtil.GradCheck(x => x[0].Softmax(dim), [a]);
            TestUtil.GradCheck(x => x[0].LogSoftmax(dim), [a]);
        }
        TestUtil.GradCheck(x => { using var p = x[0].Permute(1, 2, 0); return p.Softmax(1); }, [a]);
        TestUtil.GradCheck(x => { using var p = x[0].Slice(2, 0, 4, 2); return p.LogSoftmax(-1); }, [a]);
        var b = TestUtil.RandnF64([3], 8);
        TestUtil.GradCheck(x => { using var e = x[0].Expand(2, 3); return e.Softmax(1); }, [b]);
        TestUtil.GradCheck(x => { using var e = x[0].Expand(2, 3); using var t = e.MT; return t.LogSoftmax(0); }, [b]);
    }
}
