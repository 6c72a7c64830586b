namespace Runtime.Tests;

/// <summary>Index-based ops (IndexSelect, Gather, Scatter, masks, Sort, TopK, OneHot): values, gradients, bad input.</summary>
public class IndexingTests
{
    private static Tensor Ar(int n, params int[] shape)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = i;
        return Tensor.From(v, shape.Length == 0 ? [n] : shape);
    }

    private static Tensor L(params long[] v) => Tensor.From(v);

    private static Tensor R(ulong seed, params int[] shape) => TestUtil.RandnF64(shape, seed);

    [Fact]
    public void IndexSelect_RowsColumnsAndNegativeIndices()
    {
        using var a = Ar(12, 3, 4);
        using var i0 = L(2, -1, 0);
        using var rows = a.IndexSelect(0, i0);
        TestUtil.AssertShape(rows, 3, 4);
        TestUtil.AssertClose([8, 9, 10, 11, 8, 9, 10, 11, 0, 1, 2, 3], rows);

        using var i1 = Tensor.From(new int[] { 3, 0, -4, 1 });
        using var cols = a.IndexSelect(1, i1);
        TestUtil.AssertShape(cols, 3, 4);
        var expected = new double[12];
        int[] idx = [3, 0, 0, 1];
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 4; j++) expected[r * 4 + j] = r * 4 + idx[j];
        TestUtil.AssertClose(expected, cols);

        // Non-contiguous source, middle dimension.
        using var b = Ar(24, 2, 3, 4);
        using var bt = b.Transpose(0, 2); // [4, 3, 2]
        using var i2 = L(1, 1);
        using var mid = bt.IndexSelect(1, i2);
        TestUtil.AssertShape(mid, 4, 2, 2);
        var e2 = new List<double>();
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 2; j++)
                for (int i = 0; i < 2; i++) e2.Add(i * 12 + 1 * 4 + k);
        TestUtil.AssertClose(e2.ToArray(), mid);

        using var none = Tensor.From(Array.Empty<long>());
        using var empty = a.IndexSelect(0, none);
        TestUtil.AssertShape(empty, 0, 4);
    }

    [Fact]
    public void Gather_LikeTorch()
    {
        using var t = Tensor.From(new float[] { 1, 2, 3, 4 }, 2, 2);
        using var idx = Tensor.From(new long[] { 0, 0, 1, 0 }, 2, 2);
        using var g1 = t.Gather(1, idx);
        TestUtil.AssertClose([1, 1, 4, 3], g1);

        using var idx0 = Tensor.From(new long[] { 1, 0 }, 1, 2);
        using var g0 = t.Gather(0, idx0);
        TestUtil.AssertShape(g0, 1, 2);
        TestUtil.AssertClose([3, 2], g0);

        // Index smaller than the input off the gather dimension; -1 dim.
        using var a = Ar(12, 3, 4);
        using var ix = Tensor.From(new long[] { 3, 3, 0, 1, 2, 2 }, 2, 3);
        using var g = a.Gather(-1, ix);
        TestUtil.AssertClose([3, 3, 0, 5, 6, 6], g);

        // Int32 index and a transposed input.
        using var at = a.MT; // [4, 3]
        using var ix32 = Tensor.From(new int[] { 2, 0, 1 }, 1, 3);
        using var gt = at.Gather(1, ix32);
        TestUtil.AssertClose([8, 0, 4], gt); // at[0, j] = a[j, 0]
    }

    [Fact]
    public void Scatter_And_ScatterAdd()
    {
        // torch docs example: src = arange(1, 11).reshape(2, 5), index = [[0, 1, 2, 0]].
        var sv = new float[10];
        for (int i = 0; i < 10; i++) sv[i] = i + 1;
        using var src = Tensor.From(sv, 2, 5);
        using var index = Tensor.From(new long[] { 0, 1, 2, 0 }, 1, 4);
        using var z = Tensor.Zeros(3, 5);
        using var s0 = z.Scatter(0, index, src);
        TestUtil.AssertClose([1, 0, 0, 4, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0], s0);
        TestUtil.AssertClose(new double[15], z); // out of place

        using var index1 = Tensor.From(new long[] { 0, 1, 2, 0, 1, 2 }, 2, 3);
        using var s1 = z.Scatter(1, index1, src);
        TestUtil.AssertClose([1, 2, 3, 0, 0, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0], s1);

        using var base1 = Tensor.Ones(5);
        using var ia = L(0, 1, 0, 3, 0);
        using var va = Tensor.From(new float[] { 1, 2, 3, 4, 5 });
        using var sa = base1.ScatterAdd(0, ia, va);
        TestUtil.AssertClose([10, 3, 1, 5, 1], sa); // duplicates accumulate: 1 + 1 + 3 + 5

        using var z2 = Tensor.Zeros([2, 3], DType.Int64);
        using var i2 = Tensor.From(new long[] { 2, 2, 0, 1, 1, 1 }, 2, 3);
        using var v2 = Tensor.From(new long[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var sa2 = z2.ScatterAdd(1, i2, v2);
        Assert.Equal([3L, 0, 3, 0, 15, 0], sa2.ToArray<long>());
    }

    [Fact]
    public void MaskedFill_And_MaskedSelect_Broadcast()
    {
        using var a = Ar(6, 2, 3);
        using var m = Tensor.From(new[] { true, false, true });
        using var f = a.MaskedFill(m, -1);
        TestUtil.AssertClose([-1, 1, -1, -1, 4, -1], f);
        using var mc = Tensor.From(new[] { false, true }, 2, 1);
        using var f2 = a.MaskedFill(mc, 9);
        TestUtil.AssertClose([0, 1, 2, 9, 9, 9], f2);

        using var s = a.MaskedSelect(m);
        TestUtil.AssertShape(s, 4);
        TestUtil.AssertClose([0, 2, 3, 5], s);
        using var s2 = a.MaskedSelect(mc);
        TestUtil.AssertClose([3, 4, 5], s2);

        // Mask bigger than the tensor: the tensor is broadcast.
        using var v = Tensor.From(new float[] { 10, 20, 30 });
        using var big = Tensor.From(new[] { true, false, false, true, true, true }, 2, 3);
        using var s3 = v.MaskedSelect(big);
        TestUtil.AssertClose([10, 10, 20, 30], s3);

        using var none = Tensor.Zeros([2, 3], DType.Bool);
        using var s4 = a.MaskedSelect(none);
        TestUtil.AssertShape(s4, 0);

        using var notBool = Tensor.Ones([3], DType.Int32);
        Assert.Throws<ArgumentException>(() => a.MaskedSelect(notBool));
        Assert.Throws<ArgumentException>(() => a.MaskedFill(notBool, 1));
    }

    [Fact]
    public void Nonzero_RowMajorCoordinates()
    {
        using var a = Tensor.From(new float[] { 0, 1, 0, 2, 0, 3 }, 2, 3);
        using var nz = a.Nonzero();
        Assert.Equal(DType.Int64, nz.DType);
        TestUtil.AssertShape(nz, 3, 2);
        Assert.Equal([0L, 1, 1, 0, 1, 2], nz.ToArray<long>());

        using var z = Tensor.Zeros(4);
        using var nz0 = z.Nonzero();
        TestUtil.AssertShape(nz0, 0, 1);

        using var b = Tensor.From(new[] { false, true, true });
        using var nzb = b.Nonzero();
        Assert.Equal([1L, 2], nzb.ToArray<long>());
    }

    [Fact]
    public void Sort_IsStable_Descending_NaNLast()
    {
        using var a = Tensor.From(new float[] { 3, 1, 2, 1, 3 });
        var (v, i) = a.Sort();
        TestUtil.AssertClose([1, 1, 2, 3, 3], v);
        Assert.Equal([1L, 3, 2, 0, 4], i.ToArray<long>());
        v.Dispose(); i.Dispose();

        (v, i) = a.Sort(descending: true);
        TestUtil.AssertClose([3, 3, 2, 1, 1], v);
        Assert.Equal([0L, 4, 2, 1, 3], i.ToArray<long>());
        v.Dispose(); i.Dispose();

        using var n = Tensor.From(new double[] { 2, double.NaN, 1, double.NaN, 0 });
        (v, i) = n.Sort();
        TestUtil.AssertClose([0, 1, 2, double.NaN, double.NaN], v);
        Assert.Equal([4L, 2, 0, 1, 3], i.ToArray<long>());
        v.Dispose(); i.Dispose();
        (v, i) = n.Sort(descending: true);
        TestUtil.AssertClose([double.NaN, double.NaN, 2, 1, 0], v);
        Assert.Equal([1L, 3, 0, 2, 4], i.ToArray<long>());
        v.Dispose(); i.Dispose();

        // Along the first dimension of a matrix, ints.
        using var m = Tensor.From(new int[] { 5, 1, 2, 5, 3, 0 }, 3, 2);
        (v, i) = m.Sort(0);
        Assert.Equal(DType.Int32, v.DType);
        Assert.Equal([2, 0, 3, 1, 5, 5], v.ToArray<int>());
        Assert.Equal([1L, 2, 2, 0, 0, 1], i.ToArray<long>());
        v.Dispose(); i.Dispose();

        using var arg = a.Argsort(descending: true);
        Assert.Equal([0L, 4, 2, 1, 3], arg.ToArray<long>());
        using var arg2 = m.Argsort(1);
        Assert.Equal([1L, 0, 0, 1, 1, 0], arg2.ToArray<long>());
    }

    [Fact]
    public void TopK_LargestAndSmallest()
    {
        using var a = Tensor.From(new float[] { 1, 5, 3, 5, 2 });
        var (v, i) = a.TopK(2);
        TestUtil.AssertClose([5, 5], v);
        Assert.Equal([1L, 3], i.ToArray<long>());
        v.Dispose(); i.Dispose();
        (v, i) = a.TopK(3, largest: false);
        TestUtil.AssertClose([1, 2, 3], v);
        Assert.Equal([0L, 4, 2], i.ToArray<long>());
        v.Dispose(); i.Dispose();

        using var m = Tensor.From(new float[] { 4, 9, 7, 1, 8, 2 }, 3, 2);
        (v, i) = m.TopK(2, 0);
        TestUtil.AssertShape(v, 2, 2);
        TestUtil.AssertClose([8, 9, 7, 2], v);
        Assert.Equal([2L, 0, 1, 2], i.ToArray<long>());
        v.Dispose(); i.Dispose();

        (v, i) = m.TopK(0);
        TestUtil.AssertShape(v, 3, 0);
        v.Dispose(); i.Dispose();

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => a.TopK(6));
        Assert.Equal("k", ex.ParamName);
    }

    [Fact]
    public void OneHot_Encodes()
    {
        using var c = L(0, 2, 1);
        using var o = c.OneHot();
        Assert.Equal(DType.Int64, o.DType);
        TestUtil.AssertShape(o, 3, 3);
        Assert.Equal([1L, 0, 0, 0, 0, 1, 0, 1, 0], o.ToArray<long>());
        using var o4 = c.OneHot(4);
        TestUtil.AssertShape(o4, 3, 4);
        Assert.Equal([1L, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0], o4.ToArray<long>());
        using var c2 = Tensor.From(new int[] { 1, 0, 0, 1 }, 2, 2);
        using var o2 = c2.OneHot();
        TestUtil.AssertShape(o2, 2, 2, 2);
        Assert.Equal([0L, 1, 1, 0, 1, 0, 0, 1], o2.ToArray<long>());

        Assert.Throws<ArgumentOutOfRangeException>(() => c.OneHot(2));
        using var neg = L(-1, 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => neg.OneHot(3));
        using var f = Tensor.Ones(2);
        Assert.Throws<ArgumentException>(() => f.OneHot());
    }

    // ---------------- bad input ----------------

    [Fact]
    public void BadIndices_ThrowNamedArgumentErrors()
    {
        using var a = Ar(3);
        using var i5 = L(0, 5);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => a.IndexSelect(0, i5));
        Assert.Equal("index", e.ParamName);
        Assert.Contains("5", e.Message);
        Assert.Contains("size 3", e.Message);
        using var im4 = L(-4);
        Assert.Throws<ArgumentOutOfRangeException>(() => a.IndexSelect(0, im4));
        using var fi = Tensor.From(new float[] { 0 });
        Assert.Equal("index", Assert.Throws<ArgumentException>(() => a.IndexSelect(0, fi)).ParamName);
        using var i2d = Tensor.From(new long[] { 0, 1 }, 1, 2);
        Assert.Throws<ArgumentException>(() => a.IndexSelect(0, i2d));
        using var i0 = L(0);
        Assert.Throws<ArgumentOutOfRangeException>(() => a.IndexSelect(1, i0));

        using var m = Ar(6, 2, 3);
        using var gi = Tensor.From(new long[] { 0, 3 }, 1, 2);
        var ge = Assert.Throws<ArgumentOutOfRangeException>(() => m.Gather(1, gi));
        Assert.Equal("index", ge.ParamName);
        Assert.Contains("3", ge.Message);
        using var gneg = Tensor.From(new long[] { -1 }, 1, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Gather(1, gneg));
        using var gbig = Tensor.Zeros([3, 1], DType.Int64);
        var shapeErr = Assert.Throws<ArgumentException>(() => m.Gather(1, gbig));
        Assert.Equal("index", shapeErr.ParamName);
        Assert.Contains("[3, 1]", shapeErr.Message);
        using var g1d = L(0);
        Assert.Throws<ArgumentException>(() => m.Gather(1, g1d));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Gather(2, gi));

        using var src = Tensor.Ones(1, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Scatter(1, gi, src));
        using var srcInt = Tensor.Ones([1, 2], DType.Int64);
        using var ok = Tensor.From(new long[] { 0, 2 }, 1, 2);
        Assert.Equal("source", Assert.Throws<ArgumentException>(() => m.Scatter(1, ok, srcInt)).ParamName);
        using var srcSmall = Tensor.Ones(1, 1);
        Assert.Throws<ArgumentException>(() => m.ScatterAdd(1, ok, srcSmall));

        using var src1d = Tensor.Ones(2);
        var rank = Assert.Throws<ArgumentException>(() => m.Scatter(1, ok, src1d));
        Assert.Equal("source", rank.ParamName);
        Assert.Contains("rank 1", rank.Message);

        using var scalar = Tensor.Scalar(5);
        using var three = L(0, 0, 0);
        Assert.Equal("index", Assert.Throws<ArgumentException>(() => scalar.IndexSelect(0, three)).ParamName);
        using (var sel = scalar.IndexSelect(0, i0)) Assert.Equal(5, sel.Item());

        Assert.Throws<ArgumentOutOfRangeException>(() => m.Sort(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TopK(1, -3));
        using var badMask = Tensor.Ones([4], DType.Bool);
        Assert.Throws<ArgumentException>(() => m.MaskedSelect(badMask));
        Assert.Throws<ArgumentException>(() => m.MaskedFill(badMask, 0));
    }

    // ---------------- gradients ----------------

    [Fact]
    public void Grad_IndexSelectWithRepeatedIndices()
    {
        using var idx = L(2, 0, 2, -1);
        TestUtil.GradCheck(x => x[0].IndexSelect(0, idx), [R(40, 3, 2)]);
        TestUtil.GradCheck(x => x[0].IndexSelect(1, idx), [R(41, 2, 3)]);
        using var idx1 = L(1, 1);
        TestUtil.GradCheck(x => { using var t = x[0].MT; return t.IndexSelect(1, idx1); }, [R(42, 2, 3)]);
    }

    [Fact]
    public void Grad_Gather()
    {
        using var idx = Tensor.From(new long[] { 0, 0, 2, 1, 1, 1 }, 2, 3);
        TestUtil.GradCheck(x => x[0].Gather(1, idx), [R(43, 3, 3)]);
        using var idx0 = Tensor.From(new long[] { 2, 2, 0, 1 }, 2, 2);
        TestUtil.GradCheck(x => x[0].Gather(0, idx0), [R(44, 3, 3)]);
    }

    [Fact]
    public void Grad_ScatterBothInputs_And_ScatterAdd()
    {
        // Distinct targets within each row, so the overwrite is well defined.
        using var idx = Tensor.From(new long[] { 2, 0, 1, 3 }, 2, 2);
        TestUtil.GradCheck(x => x[0].Scatter(1, idx, x[1]), [R(45, 2, 4), R(46, 2, 3)]);
        using var idx0 = Tensor.From(new long[] { 1, 0, 2 }, 1, 3);
        TestUtil.GradCheck(x => x[0].Scatter(0, idx0, x[1]), [R(47, 3, 3), R(48, 2, 3)]);
        using var dup = Tensor.From(new long[] { 0, 0, 1, 0, 2, 2 }, 2, 3);
        TestUtil.GradCheck(x => x[0].ScatterAdd(1, dup, x[1]), [R(49, 2, 3), R(50, 2, 3)]);
        TestUtil.GradCheck(x => { using var s = x[0].ScatterAdd(1, dup, x[1]); return s * s; }, [R(51, 2, 3), R(52, 2, 4)]);
    }

    [Fact]
    public void Grad_MaskedFillAndMaskedSelect()
    {
        using var m = Tensor.From(new[] { true, false, false, true, true, false }, 2, 3);
        TestUtil.GradCheck(x => x[0].MaskedFill(m, 2.5), [R(53, 2, 3)]);
        using var row = Tensor.From(new[] { false, true, true });
        TestUtil.GradCheck(x => x[0].MaskedFill(row, -1), [R(54, 2, 3)]);
        TestUtil.GradCheck(x => x[0].MaskedSelect(m), [R(55, 2, 3)]);
        TestUtil.GradCheck(x => x[0].MaskedSelect(row), [R(56, 2, 3)]);
        TestUtil.GradCheck(x => x[0].MaskedSelect(m), [R(57, 3)]); // tensor broadcast to the mask
    }

    private static Tensor Values((Tensor Values, Tensor Indices) r)
    {
        r.Indices.Dispose();
        return r.Values;
    }

    [Fact]
    public void Grad_SortAndTopKValues()
    {
        TestUtil.GradCheck(x => Values(x[0].Sort()), [R(58, 3, 5)]);
        TestUtil.GradCheck(x => Values(x[0].Sort(0, descending: true)), [R(59, 4, 2)]);
        TestUtil.GradCheck(x => Values(x[0].TopK(2)), [R(60, 3, 5)]);
        TestUtil.GradCheck(x => Values(x[0].TopK(2, 0, largest: false)), [R(61, 4, 3)]);
    }

    [Fact]
    public void IndexSelect_WithAStridedInt64Index()
    {
        // A strided Int64 index view (here every other element) used to be read as if contiguous.
        using var x = Tensor.From(new float[] { 10, 11, 12, 13, 14, 15 }).RequiresGrad_();
        using var all = Tensor.From(new long[] { 0, 5, 1, 4, 2, 2 });
        using var idx = all.Slice(0, 0, 6, 2);
        using var y = x.IndexSelect(0, idx);
        Assert.Equal([10f, 11, 12], y.ToArray<float>());
        using var s = (y * y).Sum();
        s.Backward();
        TestUtil.AssertClose([20, 22, 24, 0, 0, 0], x.Grad!);
    }
}
