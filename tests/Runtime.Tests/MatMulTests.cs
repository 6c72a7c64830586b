namespace Runtime.Tests;

/// <summary>
/// MatMul with torch.matmul's rank rules, checked against a float64 triple loop written here; strided operands,
/// blocking-boundary sizes, zero sizes, integer dtypes, gradients and argument checks.
/// </summary>
public class MatMulTests
{
    // ---------------------------------------------------------------- reference helpers

    private static double[] RandomValues(int n, int seed, double lo = -1, double hi = 1)
    {
        var rng = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (float)(lo + (hi - lo) * rng.NextDouble()); // float-exact, usable for both dtypes
        return v;
    }

    private static long NumEl(int[] shape) => shape.Aggregate(1L, (a, s) => a * s);

    private static Tensor Make(double[] v, DType dtype, params int[] shape) => dtype switch
    {
        DType.Float32 => Tensor.From(v.Select(x => (float)x).ToArray(), shape),
        DType.Float64 => Tensor.From(v.ToArray(), shape),
        DType.Int32 => Tensor.From(v.Select(x => (int)x).ToArray(), shape),
        DType.Int64 => Tensor.From(v.Select(x => (long)x).ToArray(), shape),
        _ => throw new ArgumentException(dtype.ToString()),
    };

    private static long[] ContiguousStrides(int[] shape)
    {
        var st = new long[shape.Length];
        long acc = 1;
        for (int d = shape.Length - 1; d >= 0; d--) { st[d] = acc; acc *= Math.Max(1, shape[d]); }
        return st;
    }

    /// <summary>The logical (row-major) values of a strided view into <paramref name="data"/>.</summary>
    private static double[] Strided(double[] data, int[] shape, long[] strides, long offset = 0)
    {
        var res = new double[NumEl(shape)];
        var idx = new int[shape.Length];
        for (long flat = 0; flat < res.Length; flat++)
        {
            long rem = flat, pos = offset;
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                idx[d] = (int)(rem % shape[d]);
                rem /= shape[d];
                pos += idx[d] * strides[d];
            }
            res[flat] = data[pos];
        }
        return res;
    }

    /// <summary>torch.matmul in float64 with plain loops: returns values, shape and, per element, sum |a||b| (for error bounds).</summary>
    private static (double[] Values, int[] Shape, double[] AbsSum) RefMatMul(double[] a, int[] sa, double[] b, int[] sb)
    {
        int[] a2 = sa.Length == 1 ? [1, sa[0]] : sa;
        int[] b2 = sb.Length == 1 ? [sb[0], 1] : sb;
        int m = a2[^2], k = a2[^1], n = b2[^1];
        Assert.Equal(k, b2[^2]);
        int[] ba = a2[..^2], bb = b2[..^2];
        int r = Math.Max(ba.Length, bb.Length);
        var batch = new int[r];
        for (int i = 0; i < r; i++)
        {
            int da = i - (r - ba.Length) >= 0 ? ba[i - (r - ba.Length)] : 1;
            int db = i - (r - bb.Length) >= 0 ? bb[i - (r - bb.Length)] : 1;
            Assert.True(da == db || da == 1 || db == 1);
            batch[i] = Math.Max(da, db);
            if (da == 0 || db == 0) batch[i] = 0;
        }
        long nb = NumEl(batch);
        var y = new double[nb * m * n];
        var abs = new double[y.Length];
        var bidx = new int[r];
        for (long t = 0; t < nb; t++)
        {
            long rem = t;
            for (int d = r - 1; d >= 0; d--) { bidx[d] = (int)(rem % batch[d]); rem /= batch[d]; }
            long ao = 0, bo = 0;
            for (int d = 0; d < ba.Length; d++) ao = ao * ba[d] + (ba[d] == 1 ? 0 : bidx[d + r - ba.Length]);
            for (int d = 0; d < bb.Length; d++) bo = bo * bb[d] + (bb[d] == 1 ? 0 : bidx[d + r - bb.Length]);
            ao *= (long)m * k;
            bo *= (long)k * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0, sabs = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double q = a[ao + (long)i * k + p] * b[bo + (long)p * n + j];
                        s += q;
                        sabs += Math.Abs(q);
                    }
                    y[(t * m + i) * n + j] = s;
                    abs[(t * m + i) * n + j] = sabs;
                }
        }
        var shape = batch.ToList();
        if (sa.Length > 1) shape.Add(m);
        if (sb.Length > 1) shape.Add(n);
        return (y, shape.ToArray(), abs);
    }

    /// <summary>Error bound relative to sum |a_p b_p| (the scale of the rounding error of a dot product).</summary>
    private static void AssertMatMulClose((double[] Values, int[] Shape, double[] AbsSum) expected, Tensor actual, DType dtype)
    {
        TestUtil.AssertShape(actual, expected.Shape);
        Assert.Equal(dtype, actual.DType);
        var got = actual.ToDoubleArray();
        Assert.Equal(expected.Values.Length, got.Length);
        double rel = dtype switch { DType.Float32 => 1e-4, DType.Float64 => 1e-12, _ => 0 };
        for (int i = 0; i < got.Length; i++)
        {
            double e = expected.Values[i];
            Assert.True(Math.Abs(got[i] - e) <= rel * (expected.AbsSum[i] + 1e-30) + (rel == 0 ? 0 : 1e-30),
                $"element {i}: expected {e}, got {got[i]}");
        }
    }

    private static void CheckAgainstRef(int[] sa, int[] sb, DType dtype, int seed)
    {
        var av = RandomValues((int)NumEl(sa), seed);
        var bv = RandomValues((int)NumEl(sb), seed + 1);
        if (!dtype.IsFloating())
        {
            av = av.Select(x => Math.Round(x * 10)).ToArray();
            bv = bv.Select(x => Math.Round(x * 10)).ToArray();
        }
        using var a = Make(av, dtype, sa);
        using var b = Make(bv, dtype, sb);
        using var y = a.MatMul(b);
        AssertMatMulClose(RefMatMul(av, sa, bv, sb), y, dtype);
    }

    // ---------------------------------------------------------------- hand values, rank combinations

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    [InlineData(DType.Int32)]
    [InlineData(DType.Int64)]
    public void RankCombinations_HandValues(DType dtype)
    {
        using var v3 = Make([1, 2, 3], dtype, 3);
        using var w3 = Make([4, 5, -6], dtype, 3);
        using var dot = v3.MatMul(w3);
        TestUtil.AssertShape(dot);
        Assert.Equal(dtype, dot.DType);
        Assert.Equal(-4.0, dot.Item());
        using var dot2 = v3.Dot(w3);
        Assert.Equal(-4.0, dot2.Item());

        using var m23 = Make([1, 2, 3, 4, 5, 6], dtype, 2, 3);
        using var v2 = Make([1, 2], dtype, 2);
        using var vm = v2.MatMul(m23);
        TestUtil.AssertShape(vm, 3);
        TestUtil.AssertClose([9, 12, 15], vm, 0, 0);

        using var c = Make([1, 0, -1], dtype, 3);
        using var mv = m23.MatMul(c);
        TestUtil.AssertShape(mv, 2);
        TestUtil.AssertClose([-2, -2], mv, 0, 0);

        using var p = Make([1, 2, 3, 4], dtype, 2, 2);
        using var q = Make([5, 6, 7, 8], dtype, 2, 2);
        using var pq = p.MatMul(q);
        TestUtil.AssertShape(pq, 2, 2);
        TestUtil.AssertClose([19, 22, 43, 50], pq, 0, 0);

        // Batched: [2, 2, 2] x [2, 2, 2].
        using var ba = Make([1, 2, 3, 4, 1, 0, 0, 1], dtype, 2, 2, 2);
        using var bb = Make([5, 6, 7, 8, 2, 3, 4, 5], dtype, 2, 2, 2);
        using var bab = ba.MatMul(bb);
        TestUtil.AssertShape(bab, 2, 2, 2);
        TestUtil.AssertClose([19, 22, 43, 50, 2, 3, 4, 5], bab, 0, 0);

        // 3-D x 2-D and 2-D x 3-D (broadcast of the 2-D operand).
        using var b3q = ba.MatMul(q);
        TestUtil.AssertClose([19, 22, 43, 50, 5, 6, 7, 8], b3q, 0, 0);
        using var pb3 = p.MatMul(bb);
        TestUtil.AssertClose([19, 22, 43, 50, 10, 13, 22, 29], pb3, 0, 0);
        // 1-D x 3-D: [2] x [2, 2, 2] -> [2, 2]; 3-D x 1-D -> [2, 2].
        using var v1b = v2.MatMul(bb);
        TestUtil.AssertShape(v1b, 2, 2);
        TestUtil.AssertClose([19, 22, 10, 13], v1b, 0, 0);
        using var b1v = ba.MatMul(v2);
        TestUtil.AssertShape(b1v, 2, 2);
        TestUtil.AssertClose([5, 11, 1, 2], b1v, 0, 0);
    }

    public static IEnumerable<object[]> ShapeCases() =>
        new (int[], int[])[]
        {
            ([7], [7]),
            ([5], [5, 3]),
            ([4, 5], [5]),
            ([4, 5], [5, 3]),
            ([3, 4, 5], [3, 5, 2]),
            ([2, 1, 3, 4], [5, 4, 2]),
            ([4, 3, 5], [5, 2]),
            ([3, 5], [4, 5, 2]),
            ([5], [2, 3, 5, 4]),
            ([2, 3, 4, 5], [5]),
            ([1, 3, 4], [6, 4, 2]),
            ([2, 1, 1, 3, 4], [3, 1, 4, 2]),
        }.SelectMany(c => new[] { DType.Float32, DType.Float64, DType.Int32, DType.Int64 }.Select(dt => new object[] { c.Item1, c.Item2, dt }));

    [Theory]
    [MemberData(nameof(ShapeCases))]
    public void Shapes_MatchReference(int[] sa, int[] sb, DType dtype) => CheckAgainstRef(sa, sb, dtype, sa.Length * 10 + sb.Length);

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(17, 33, 65)]
    [InlineData(300, 257, 129)]
    [InlineData(1, 500, 3)]
    [InlineData(3, 500, 1)]
    [InlineData(64, 64, 64)]
    [InlineData(65, 1, 257)]
    [InlineData(129, 300, 2)]
    [InlineData(8, 1000, 17)]
    public void BlockingBoundarySizes_MatchReference(int m, int k, int n)
    {
        CheckAgainstRef([m, k], [k, n], DType.Float32, m + k + n);
        CheckAgainstRef([m, k], [k, n], DType.Float64, m * k + n);
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void Batched_ManySmallAndFewLarge(DType dtype)
    {
        CheckAgainstRef([37, 5, 9], [37, 9, 6], dtype, 1);       // per-batch parallel path
        CheckAgainstRef([3, 130, 140], [3, 140, 131], dtype, 2); // each product multi-threaded
        CheckAgainstRef([2, 3, 130, 140], [140, 129], dtype, 3);  // broadcast 2-D operand, large
    }

    [Fact]
    public void IntegerMatMul_Exact()
    {
        var av = Enumerable.Range(0, 12).Select(i => (double)(i * 7 % 11 - 5)).ToArray();
        var bv = Enumerable.Range(0, 20).Select(i => (double)(i * 3 % 13 - 6)).ToArray();
        var (e, _, _) = RefMatMul(av, [3, 4], bv, [4, 5]);
        using var a32 = Make(av, DType.Int32, 3, 4);
        using var b32 = Make(bv, DType.Int32, 4, 5);
        using var y32 = a32.MatMul(b32);
        Assert.Equal(DType.Int32, y32.DType);
        Assert.Equal(e.Select(x => (int)x).ToArray(), y32.ToArray<int>());
        // Int64 values that do not fit in 32 bits.
        using var a64 = Tensor.From(new long[] { 3_000_000_000L, 1, 2, -4_000_000_000L }, 2, 2);
        using var b64 = Tensor.From(new long[] { 2, 1, 3, 5 }, 2, 2);
        using var y64 = a64.MatMul(b64);
        Assert.Equal(DType.Int64, y64.DType);
        Assert.Equal([6_000_000_003L, 3_000_000_005L, 4 - 12_000_000_000L, 2 - 20_000_000_000L], y64.ToArray<long>());
        // Transposed integer operand.
        using var t = b32.MT; // [5, 4]
        using var yt = t.MatMul(a32.MT); // [5, 4] x [4, 3]
        var (et, _, _) = RefMatMul(Strided(bv, [5, 4], [1, 5]), [5, 4], Strided(av, [4, 3], [1, 4]), [4, 3]);
        Assert.Equal(et.Select(x => (int)x).ToArray(), yt.ToArray<int>());
    }

    // ---------------------------------------------------------------- strided operands

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void TransposedPermutedSlicedOperands(DType dtype)
    {
        const int m = 19, k = 37, n = 23;
        var av = RandomValues(k * m, 41);
        var bv = RandomValues(n * k, 42);

        // A = base[k, m].MT, B = base[n, k].MT: both column-major.
        using var abase = Make(av, dtype, k, m);
        using var bbase = Make(bv, dtype, n, k);
        using var at = abase.MT;
        using var bt = bbase.MT;
        var aLogical = Strided(av, [m, k], [1, m]);
        var bLogical = Strided(bv, [k, n], [1, k]);
        using (var y = at.MatMul(bt)) AssertMatMulClose(RefMatMul(aLogical, [m, k], bLogical, [k, n]), y, dtype);

        // Mixed: A transposed, B contiguous [k, n] (re-read bv as [k, n]).
        using var bk = Make(bv, dtype, k, n);
        using (var y = at.MatMul(bk)) AssertMatMulClose(RefMatMul(aLogical, [m, k], bv, [k, n]), y, dtype);

        // Sliced with steps: rows 1, 3, 5, ... of a [2m, k] base and every third column of a [k, 3n] base.
        var sv = RandomValues(2 * m * k, 43);
        var tv = RandomValues(k * 3 * n, 44);
        using var sbase = Make(sv, dtype, 2 * m, k);
        using var tbase = Make(tv, dtype, k, 3 * n);
        using var s = sbase.Slice(0, 1, 2 * m, 2);
        using var t = tbase.Slice(1, 2, 3 * n, 3);
        TestUtil.AssertShape(s, m, k);
        TestUtil.AssertShape(t, k, n);
        var sLogical = Strided(sv, [m, k], [2 * k, 1], k);
        var tLogical = Strided(tv, [k, n], [3 * n, 3], 2);
        using (var y = s.MatMul(t)) AssertMatMulClose(RefMatMul(sLogical, [m, k], tLogical, [k, n]), y, dtype);
        // Column slice with step on the left (column stride 2) and a transposed slice on the right.
        using var s2 = sbase.MT.Slice(1, 0, 2 * m, 2); // [k, m]: sbase[2i, p] at (p, i)
        var s2Logical = Strided(sv, [k, m], [1, 2 * k]);
        using var t2 = tbase.Slice(1, 0, 3 * n, 3).MT; // [n, k]
        var t2Logical = Strided(tv, [n, k], [3, 3 * n]);
        using (var y = t2.MatMul(s2)) AssertMatMulClose(RefMatMul(t2Logical, [n, k], s2Logical, [k, m]), y, dtype);

        // Permuted batch: base [m, 4, k] -> [4, m, k]; base [4, n, k] -> [4, k, n] via MT.
        var pv = RandomValues(m * 4 * k, 45);
        var qv = RandomValues(4 * n * k, 46);
        using var pbase = Make(pv, dtype, m, 4, k);
        using var qbase = Make(qv, dtype, 4, n, k);
        using var pp = pbase.Permute(1, 0, 2);
        using var qq = qbase.MT;
        var pLogical = Strided(pv, [4, m, k], [k, 4 * k, 1]);
        var qLogical = Strided(qv, [4, k, n], [n * k, 1, k]);
        using (var y = pp.MatMul(qq)) AssertMatMulClose(RefMatMul(pLogical, [4, m, k], qLogical, [4, k, n]), y, dtype);

        // Batch dimensions that do not collapse to one stride: base [3, 2, m, k] permuted to [2, 3, m, k].
        var rv = RandomValues(3 * 2 * m * k, 47);
        using var rbase = Make(rv, dtype, 3, 2, m, k);
        using var rr = rbase.Permute(1, 0, 2, 3);
        var rLogical = Strided(rv, [2, 3, m, k], [m * k, 2 * m * k, k, 1]);
        using (var y = rr.MatMul(bk)) AssertMatMulClose(RefMatMul(rLogical, [2, 3, m, k], bv, [k, n]), y, dtype);

        // Expanded (stride-0) operands: a row broadcast over m rows, a batch broadcast by Expand.
        using var row = Make(av.AsSpan(0, k).ToArray(), dtype, 1, k);
        using var rowE = row.Expand(m, k);
        var rowLogical = Strided(av, [m, k], [0, 1]);
        using (var y = rowE.MatMul(bk)) AssertMatMulClose(RefMatMul(rowLogical, [m, k], bv, [k, n]), y, dtype);
        using var atE = at.Expand(3, m, k);
        var atELogical = Strided(av, [3, m, k], [0, 1, m]);
        using (var y = atE.MatMul(bt)) AssertMatMulClose(RefMatMul(atELogical, [3, m, k], bLogical, [k, n]), y, dtype);

        // Stride 0 along k: a column broadcast across k on the left, a row broadcast across k on the right.
        using var colm = Make(av.AsSpan(0, m).ToArray(), dtype, m, 1);
        using var colE = colm.Expand(m, k);
        var colELogical = Strided(av, [m, k], [1, 0]);
        using var rown = Make(bv.AsSpan(0, n).ToArray(), dtype, 1, n);
        using var rowNE = rown.Expand(k, n);
        var rowNELogical = Strided(bv, [k, n], [0, 1]);
        using (var y = colE.MatMul(rowNE)) AssertMatMulClose(RefMatMul(colELogical, [m, k], rowNELogical, [k, n]), y, dtype);
        using (var y = at.MatMul(rowNE)) AssertMatMulClose(RefMatMul(aLogical, [m, k], rowNELogical, [k, n]), y, dtype);

        // 1-D operands that are strided views.
        using var col = abase.Select(1, 3); // [k], stride m
        var colLogical = Strided(av, [k], [m], 3);
        using (var y = col.MatMul(bk)) AssertMatMulClose(RefMatMul(colLogical, [k], bv, [k, n]), y, dtype);
        using (var y = at.MatMul(col)) AssertMatMulClose(RefMatMul(aLogical, [m, k], colLogical, [k]), y, dtype);
        using (var y = col.MatMul(col)) AssertMatMulClose(RefMatMul(colLogical, [k], colLogical, [k]), y, dtype);
    }

    // ---------------------------------------------------------------- zero sizes

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    [InlineData(DType.Int32)]
    [InlineData(DType.Int64)]
    public void ZeroSizes(DType dtype)
    {
        using var a30 = Tensor.Zeros([3, 0], dtype);
        using var b04 = Tensor.Zeros([0, 4], dtype);
        using var k0 = a30.MatMul(b04);
        TestUtil.AssertShape(k0, 3, 4);
        Assert.Equal(dtype, k0.DType);
        Assert.All(k0.ToDoubleArray(), v => Assert.Equal(0.0, v));

        using var a03 = Tensor.Ones([0, 3], dtype);
        using var b34 = Tensor.Ones([3, 4], dtype);
        using var m0 = a03.MatMul(b34);
        TestUtil.AssertShape(m0, 0, 4);
        using var b30 = Tensor.Ones([3, 0], dtype);
        using var a23 = Tensor.Ones([2, 3], dtype);
        using var n0 = a23.MatMul(b30);
        TestUtil.AssertShape(n0, 2, 0);

        using var e = Tensor.Zeros([0], dtype);
        using var d = e.MatMul(e);
        TestUtil.AssertShape(d);
        Assert.Equal(0.0, d.Item());

        using var ba = Tensor.Ones([5, 2, 0], dtype);
        using var bb = Tensor.Ones([5, 0, 3], dtype);
        using var bk0 = ba.MatMul(bb);
        TestUtil.AssertShape(bk0, 5, 2, 3);
        Assert.All(bk0.ToDoubleArray(), v => Assert.Equal(0.0, v));

        using var zb = Tensor.Ones([0, 2, 3], dtype);
        using var z = zb.MatMul(b34);
        TestUtil.AssertShape(z, 0, 2, 4);

        // Output buffer reuse must not leak old values: k = 0 after a real product.
        using var x = Tensor.Ones([4, 4], dtype);
        using var xx = x.MatMul(x);
        using var k0b = a30.MatMul(b04);
        Assert.All(k0b.ToDoubleArray(), v => Assert.Equal(0.0, v));
    }

    // ---------------------------------------------------------------- gradients

    public static IEnumerable<object[]> GradShapes() =>
        new (int[], int[])[]
        {
            ([4], [4]),
            ([3], [3, 2]),
            ([2, 3], [3]),
            ([2, 3], [3, 4]),
            ([2, 3, 4], [2, 4, 2]),
            ([2, 1, 3, 4], [5, 4, 2]),
            ([3, 2, 4], [4, 3]),
            ([2, 3], [4, 3, 2]),
            ([3], [2, 3, 2]),
            ([2, 2, 3], [3]),
        }.Select(c => new object[] { c.Item1, c.Item2 });

    [Theory]
    [MemberData(nameof(GradShapes))]
    public void Grad_RankCombinations(int[] sa, int[] sb)
    {
        var a = TestUtil.RandnF64(sa, 11);
        var b = TestUtil.RandnF64(sb, 12);
        TestUtil.GradCheck(x => x[0].MatMul(x[1]), [a, b]);
    }

    [Fact]
    public void Grad_StridedOperands()
    {
        var a = TestUtil.RandnF64([4, 3], 21); // used as [3, 4] via MT
        var b = TestUtil.RandnF64([2, 4], 22); // used as [4, 2] via MT
        TestUtil.GradCheck(x => { using var at = x[0].MT; using var bt = x[1].MT; return at.MatMul(bt); }, [a, b]);

        var p = TestUtil.RandnF64([3, 2, 4], 23); // permuted to [2, 3, 4]
        var q = TestUtil.RandnF64([4, 5], 24);    // every second column -> [4, 3]
        TestUtil.GradCheck(x =>
        {
            using var pp = x[0].Permute(1, 0, 2);
            using var qs = x[1].Slice(1, 0, 5, 2);
            return pp.MatMul(qs);
        }, [p, q]);

        var r = TestUtil.RandnF64([3, 4], 25);    // expanded to a batch of 2
        var s = TestUtil.RandnF64([2, 4, 2], 26);
        TestUtil.GradCheck(x => { using var re = x[0].Expand(2, 3, 4); return re.MatMul(x[1]); }, [r, s]);

        var v = TestUtil.RandnF64([6], 27);       // strided 1-D: elements 0, 2, 4
        var w = TestUtil.RandnF64([3, 3], 28);
        TestUtil.GradCheck(x => { using var vs = x[0].Slice(0, 0, 6, 2); return vs.MatMul(x[1]); }, [v, w]);
        TestUtil.GradCheck(x => { using var vs = x[0].Slice(0, 1, 6, 2); using var wt = x[1].MT; return wt.MatMul(vs); }, [v, w]);

        // The same tensor on both sides (gradients accumulate).
        var sq = TestUtil.RandnF64([3, 3], 29);
        TestUtil.GradCheck(x => { using var t = x[0].MT; return x[0].MatMul(t); }, [sq]);
    }

    // ---------------------------------------------------------------- bad input

    [Fact]
    public void ShapeMismatch_NamesBothShapes()
    {
        using var a = Tensor.Zeros(2, 3);
        using var b = Tensor.Zeros(4, 5);
        var ex = Assert.Throws<ArgumentException>(() => a.MatMul(b));
        Assert.Contains("[2, 3]", ex.Message);
        Assert.Contains("[4, 5]", ex.Message);

        using var v3 = Tensor.Zeros(3);
        using var v4 = Tensor.Zeros(4);
        ex = Assert.Throws<ArgumentException>(() => v3.MatMul(v4));
        Assert.Contains("[3]", ex.Message);
        Assert.Contains("[4]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => v4.MatMul(a));
        Assert.Contains("[4]", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);

        using var b1 = Tensor.Zeros(2, 3, 4);
        using var b2 = Tensor.Zeros(3, 4, 5);
        ex = Assert.Throws<ArgumentException>(() => b1.MatMul(b2));
        Assert.Contains("[2, 3, 4]", ex.Message);
        Assert.Contains("[3, 4, 5]", ex.Message);
    }

    [Fact]
    public void BadOperands_Throw()
    {
        using var s = Tensor.Scalar(2);
        using var v = Tensor.Zeros(3);
        using var m = Tensor.Zeros(3, 3);
        Assert.Throws<ArgumentException>(() => s.MatMul(v));
        Assert.Throws<ArgumentException>(() => v.MatMul(s));
        using var md = Tensor.Zeros([3, 3], DType.Float64);
        Assert.Throws<ArgumentException>(() => m.MatMul(md));
        using var mb = Tensor.Zeros([3, 3], DType.Bool);
        Assert.Throws<ArgumentException>(() => mb.MatMul(mb));
        Assert.Throws<ArgumentException>(() => m.Dot(v));
        Assert.Throws<ArgumentNullException>(() => m.MatMul(null!));
    }
}
