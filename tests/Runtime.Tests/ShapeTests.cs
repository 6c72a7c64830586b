using Runtime.Autograd;

namespace Runtime.Tests;

/// <summary>Views (shape, strides, offset, shared storage), copying shape ops, and their gradients.</summary>
public class ShapeTests
{
    private static Tensor Ar(int n, params int[] shape)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = i;
        return Tensor.From(v, shape.Length == 0 ? [n] : shape);
    }

    private static double[] Range(int n)
    {
        var r = new double[n];
        for (int i = 0; i < n; i++) r[i] = i;
        return r;
    }

    private static void AssertSharesStorage(Tensor a, Tensor b) => Assert.Same(a.StorageOrThrow, b.StorageOrThrow);

    private static void AssertStrides(Tensor t, params long[] strides) => Assert.Equal(strides, t.Strides.ToArray());

    // ---------------- views ----------------

    [Fact]
    public void View_SharesMemoryAndWritesAreVisible()
    {
        using var a = Ar(12);
        using var v = a.View(3, 4);
        TestUtil.AssertShape(v, 3, 4);
        AssertStrides(v, 4, 1);
        Assert.Equal(0, v.StorageOffset);
        AssertSharesStorage(a, v);
        using (var row = v.Select(0, 1)) row.Fill_(-1);
        TestUtil.AssertClose([0, 1, 2, 3, -1, -1, -1, -1, 8, 9, 10, 11], a);

        using var w = a.View(-1, 6);
        TestUtil.AssertShape(w, 2, 6);
        using var w2 = a.View(2, -1, 3);
        TestUtil.AssertShape(w2, 2, 2, 3);
        AssertStrides(w2, 6, 3, 1);
    }

    [Fact]
    public void View_OfNonViewableThrows_ReshapeCopies()
    {
        using var a = Ar(12, 3, 4);
        using var t = a.Permute(1, 0);
        Assert.Throws<InvalidOperationException>(() => t.View(12));
        using var r = t.Reshape(12);
        Assert.NotSame(a.StorageOrThrow, r.StorageOrThrow);
        var expected = new double[12];
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < 3; i++) expected[j * 3 + i] = i * 4 + j;
        TestUtil.AssertClose(expected, r);
        r.Fill_(100);
        TestUtil.AssertClose(Range(12), a); // the copy is independent

        using var r2 = a.Reshape(2, -1);
        AssertSharesStorage(a, r2); // viewable: no copy
        TestUtil.AssertShape(r2, 2, 6);

        // A transposed tensor whose dims are merged in order stays viewable.
        using var b = Ar(24, 2, 3, 4);
        using var bt = b.Permute(1, 2, 0); // [3, 4, 2] strides [4, 1, 12]
        using var bv = bt.View(12, 2);
        AssertSharesStorage(b, bv);
        AssertStrides(bv, 1, 12);
    }

    [Fact]
    public void Permute_Transpose_MT()
    {
        using var a = Ar(24, 2, 3, 4);
        using var p = a.Permute(2, 0, 1);
        TestUtil.AssertShape(p, 4, 2, 3);
        AssertStrides(p, 1, 12, 4);
        AssertSharesStorage(a, p);
        var expected = new List<double>();
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++) expected.Add(i * 12 + j * 4 + k);
        TestUtil.AssertClose(expected.ToArray(), p);

        using var neg = a.Permute(-1, 0, -2);
        TestUtil.AssertShape(neg, 4, 2, 3);

        using var t = a.Transpose(0, 2);
        TestUtil.AssertShape(t, 4, 3, 2);
        AssertStrides(t, 1, 4, 12);

        using var m = Ar(6, 2, 3);
        using var mt = m.MT;
        TestUtil.AssertShape(mt, 3, 2);
        AssertStrides(mt, 1, 3);
        TestUtil.AssertClose([0, 3, 1, 4, 2, 5], mt);
        Assert.False(mt.IsContiguous);
        using var c = mt.Contiguous();
        Assert.True(c.IsContiguous);
        Assert.NotSame(m.StorageOrThrow, c.StorageOrThrow);
        TestUtil.AssertClose([0, 3, 1, 4, 2, 5], c);
        using var c2 = m.Contiguous();
        AssertSharesStorage(m, c2);

        using var v = Ar(3);
        Assert.Throws<InvalidOperationException>(() => v.MT);
    }

    [Fact]
    public void Slice_StepAndNegativeBounds()
    {
        using var a = Ar(10);
        using var s = a.Slice(0, 1, 8, 3);
        TestUtil.AssertClose([1, 4, 7], s);
        AssertStrides(s, 3);
        Assert.Equal(1, s.StorageOffset);
        AssertSharesStorage(a, s);

        using var n = a.Slice(0, -4, -1);
        TestUtil.AssertClose([6, 7, 8], n);
        Assert.Equal(6, n.StorageOffset);

        using var clip = a.Slice(0, -100, 100, 4);
        TestUtil.AssertClose([0, 4, 8], clip);

        using var empty = a.Slice(0, 5, 2);
        TestUtil.AssertShape(empty, 0);

        using var m = Ar(20, 4, 5);
        using var cols = m.Slice(1, 1, 5, 2);
        TestUtil.AssertShape(cols, 4, 2);
        AssertStrides(cols, 5, 2);
        Assert.Equal(1, cols.StorageOffset);
        TestUtil.AssertClose([1, 3, 6, 8, 11, 13, 16, 18], cols);
        cols.Fill_(-1);
        var expected = Range(20);
        for (int i = 0; i < 4; i++) { expected[i * 5 + 1] = -1; expected[i * 5 + 3] = -1; }
        TestUtil.AssertClose(expected, m);

        Assert.Throws<ArgumentOutOfRangeException>(() => a.Slice(0, 0, 5, 0));
    }

    [Fact]
    public void Narrow_Select_Indexer()
    {
        using var a = Ar(12, 3, 4);
        using var n = a.Narrow(1, 1, 2);
        TestUtil.AssertShape(n, 3, 2);
        AssertStrides(n, 4, 1);
        Assert.Equal(1, n.StorageOffset);
        TestUtil.AssertClose([1, 2, 5, 6, 9, 10], n);
        using var nn = a.Narrow(0, -1, 1);
        TestUtil.AssertClose([8, 9, 10, 11], nn);

        using var col = a.Select(1, -1);
        TestUtil.AssertShape(col, 3);
        AssertStrides(col, 4);
        Assert.Equal(3, col.StorageOffset);
        TestUtil.AssertClose([3, 7, 11], col);

        using var row = a[1];
        TestUtil.AssertShape(row, 4);
        Assert.Equal(4, row.StorageOffset);
        TestUtil.AssertClose([4, 5, 6, 7], row);
        using var last = a[-1];
        TestUtil.AssertClose([8, 9, 10, 11], last);
        using var r2 = a[2];
        using var el = r2[3];
        Assert.Equal(0, el.Rank);
        Assert.Equal(11, el.Item());

        using var src = Tensor.From(new float[] { 100, 200, 300, 400 });
        row.CopyFrom(src);
        col.Fill_(-5);
        TestUtil.AssertClose([0, 1, 2, -5, 100, 200, 300, -5, 8, 9, 10, -5], a);
    }

    [Fact]
    public void Expand_BroadcastsWithZeroStrides()
    {
        using var a = Tensor.From(new float[] { 1, 2, 3 }, 3, 1);
        using var e = a.Expand(2, 3, 4);
        TestUtil.AssertShape(e, 2, 3, 4);
        AssertStrides(e, 0, 1, 0);
        AssertSharesStorage(a, e);
        var expected = new List<double>();
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++) expected.Add(i + 1);
        TestUtil.AssertClose(expected.ToArray(), e);

        using var keep = a.Expand(-1, 5);
        TestUtil.AssertShape(keep, 3, 5);
        a.Fill_(7);
        TestUtil.AssertClose(Enumerable.Repeat(7.0, 15).ToArray(), keep);

        Assert.Throws<ArgumentException>(() => a.Expand(4, 4));
        Assert.Throws<ArgumentException>(() => a.Expand(4));
        using var one = Tensor.Ones(1);
        Assert.Equal("shape", Assert.Throws<ArgumentException>(() => one.Expand(-2)).ParamName);
        Assert.Throws<ArgumentException>(() => one.Expand(-1, 3)); // -1 for a new leading dimension
    }

    [Fact]
    public void Squeeze_Unsqueeze_Flatten()
    {
        using var a = Ar(6, 1, 3, 1, 2);
        using var s = a.Squeeze();
        TestUtil.AssertShape(s, 3, 2);
        AssertSharesStorage(a, s);
        using var s2 = a.Squeeze(2);
        TestUtil.AssertShape(s2, 1, 3, 2);
        using var s3 = a.Squeeze(1); // not size 1: unchanged
        TestUtil.AssertShape(s3, 1, 3, 1, 2);
        using var s4 = a.Squeeze(-2);
        TestUtil.AssertShape(s4, 1, 3, 2);

        using var b = Ar(6, 2, 3);
        using var u0 = b.Unsqueeze(0);
        TestUtil.AssertShape(u0, 1, 2, 3);
        using var u1 = b.Unsqueeze(1);
        TestUtil.AssertShape(u1, 2, 1, 3);
        AssertStrides(u1, 3, 3, 1);
        using var ul = b.Unsqueeze(-1);
        TestUtil.AssertShape(ul, 2, 3, 1);
        AssertSharesStorage(b, ul);
        TestUtil.AssertClose(Range(6), ul);

        using var c = Ar(24, 2, 3, 4);
        using var f1 = c.Flatten(1);
        TestUtil.AssertShape(f1, 2, 12);
        AssertSharesStorage(c, f1);
        using var f = c.Flatten();
        TestUtil.AssertShape(f, 24);
        using var f01 = c.Flatten(0, 1);
        TestUtil.AssertShape(f01, 6, 4);
        using var sc = Tensor.Scalar(5);
        using var fs = sc.Flatten();
        TestUtil.AssertShape(fs, 1);
        // Flatten of a transposed tensor copies.
        using var ct = c.Transpose(1, 2);
        using var fct = ct.Flatten(1);
        var expected = new List<double>();
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 3; j++) expected.Add(i * 12 + j * 4 + k);
        TestUtil.AssertClose(expected.ToArray(), fct);
    }

    [Fact]
    public void Unfold_OverlappingWindowsAreViews()
    {
        using var a = Ar(7);
        using var u = a.Unfold(0, 3, 2);
        TestUtil.AssertShape(u, 3, 3);
        AssertStrides(u, 2, 1);
        AssertSharesStorage(a, u);
        TestUtil.AssertClose([0, 1, 2, 2, 3, 4, 4, 5, 6], u);

        using var m = Ar(10, 2, 5);
        using var um = m.Unfold(1, 2, 1);
        TestUtil.AssertShape(um, 2, 4, 2);
        AssertStrides(um, 5, 1, 1);
        var expected = new List<double>();
        for (int i = 0; i < 2; i++)
            for (int w = 0; w < 4; w++)
                for (int k = 0; k < 2; k++) expected.Add(i * 5 + w + k);
        TestUtil.AssertClose(expected.ToArray(), um);

        using var u0 = m.Unfold(0, 2, 1);
        TestUtil.AssertShape(u0, 1, 5, 2);
        TestUtil.AssertClose([0, 5, 1, 6, 2, 7, 3, 8, 4, 9], u0);
    }

    [Fact]
    public void Movedim_MovesOneDimension()
    {
        using var a = Ar(24, 2, 3, 4);
        using var m = a.Movedim(0, 2);
        TestUtil.AssertShape(m, 3, 4, 2);
        AssertStrides(m, 4, 1, 12);
        AssertSharesStorage(a, m);
        using var m2 = a.Movedim(-1, 0);
        TestUtil.AssertShape(m2, 4, 2, 3);
        AssertStrides(m2, 1, 12, 4);
        var expected = new List<double>();
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                for (int i = 0; i < 2; i++) expected.Add(i * 12 + j * 4 + k);
        TestUtil.AssertClose(expected.ToArray(), m);
    }

    // ---------------- copying shape ops ----------------

    [Fact]
    public void Flip_ReversesAndCopies()
    {
        using var a = Ar(6, 2, 3);
        using var f0 = a.Flip(0);
        TestUtil.AssertClose([3, 4, 5, 0, 1, 2], f0);
        using var f1 = a.Flip(-1);
        TestUtil.AssertClose([2, 1, 0, 5, 4, 3], f1);
        using var f01 = a.Flip(0, 1);
        TestUtil.AssertClose([5, 4, 3, 2, 1, 0], f01);
        Assert.NotSame(a.StorageOrThrow, f01.StorageOrThrow);
        Assert.True(f01.IsContiguous);
        // Flip of a non-contiguous view.
        using var t = a.MT;
        using var ft = t.Flip(0);
        TestUtil.AssertClose([2, 5, 1, 4, 0, 3], ft);
        Assert.Throws<ArgumentException>(() => a.Flip(0, 0));
    }

    [Fact]
    public void Repeat_TilesLikeTorch()
    {
        using var a = Ar(6, 2, 3);
        using var r = a.Repeat(2, 1, 2);
        TestUtil.AssertShape(r, 2, 2, 6);
        var expected = new List<double>();
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 6; j++) expected.Add(i * 3 + j % 3);
        TestUtil.AssertClose(expected.ToArray(), r);

        using var r2 = a.Repeat(3, 1);
        TestUtil.AssertShape(r2, 6, 3);
        var e2 = new double[18];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 3; j++) e2[i * 3 + j] = (i % 2) * 3 + j;
        TestUtil.AssertClose(e2, r2);
        r2.Fill_(0);
        TestUtil.AssertClose(Range(6), a); // a copy
        Assert.Throws<ArgumentException>(() => a.Repeat(2));
    }

    [Fact]
    public void Pad_ConstantMultiDimAndCrop()
    {
        using var a = Ar(6, 2, 3);
        using var p = a.Pad([1, 2], 9);
        TestUtil.AssertShape(p, 2, 6);
        TestUtil.AssertClose([9, 0, 1, 2, 9, 9, 9, 3, 4, 5, 9, 9], p);

        using var p2 = a.Pad([1, 0, 0, 1]);
        TestUtil.AssertShape(p2, 3, 4);
        TestUtil.AssertClose([0, 0, 1, 2, 0, 3, 4, 5, 0, 0, 0, 0], p2);

        using var crop = a.Pad([-1, 1], -1);
        TestUtil.AssertShape(crop, 2, 3);
        TestUtil.AssertClose([1, 2, -1, 4, 5, -1], crop);

        using var crop2 = a.Pad([0, -2, -1, 0]);
        TestUtil.AssertShape(crop2, 1, 1);
        TestUtil.AssertClose([3], crop2);

        using var i = Tensor.From(new int[] { 1, 2 });
        using var pi = i.Pad([2, 1], 7);
        Assert.Equal(DType.Int32, pi.DType);
        Assert.Equal([7, 7, 1, 2, 7], pi.ToArray<int>());

        Assert.Throws<ArgumentException>(() => a.Pad([1]));
        Assert.Throws<ArgumentException>(() => a.Pad([-2, -2]));
        Assert.Throws<ArgumentException>(() => a.Pad([0, 0, 0, 0, 0, 0]));
    }

    [Fact]
    public void Cat_DimsDTypesAndEmptyPieces()
    {
        using var a = Ar(6, 2, 3);
        using var b = Tensor.From(new float[] { 10, 11, 12 }, 1, 3);
        using var c0 = Tensor.Cat([a, b], 0);
        TestUtil.AssertShape(c0, 3, 3);
        TestUtil.AssertClose([0, 1, 2, 3, 4, 5, 10, 11, 12], c0);

        using var d = Tensor.From(new float[] { 20, 21 }, 2, 1);
        using var c1 = Tensor.Cat([d, a], 1);
        TestUtil.AssertShape(c1, 2, 4);
        TestUtil.AssertClose([20, 0, 1, 2, 21, 3, 4, 5], c1);
        using var cm1 = Tensor.Cat([a, d, a], -1);
        TestUtil.AssertShape(cm1, 2, 7);
        TestUtil.AssertClose([0, 1, 2, 20, 0, 1, 2, 3, 4, 5, 21, 3, 4, 5], cm1);

        using var ints = Tensor.From(new int[] { 1, 2, 3 }, 1, 3);
        using var mixed = Tensor.Cat([ints, a], 0);
        Assert.Equal(DType.Float32, mixed.DType);
        TestUtil.AssertClose([1, 2, 3, 0, 1, 2, 3, 4, 5], mixed);
        using var dbl = Tensor.From(new double[] { 0.5, 0.25, 0.125 }, 1, 3);
        using var mixed2 = Tensor.Cat([ints, dbl], 0);
        Assert.Equal(DType.Float64, mixed2.DType);
        TestUtil.AssertClose([1, 2, 3, 0.5, 0.25, 0.125], mixed2);

        using var empty = Tensor.Zeros(0, 3);
        using var ce = Tensor.Cat([empty, a, empty], 0);
        TestUtil.AssertShape(ce, 2, 3);
        TestUtil.AssertClose(Range(6), ce);

        // Non-contiguous inputs.
        using var at = a.MT;
        using var ct = Tensor.Cat([at, at], 1);
        TestUtil.AssertClose([0, 3, 0, 3, 1, 4, 1, 4, 2, 5, 2, 5], ct);
    }

    [Fact]
    public void Stack_NewDimension()
    {
        using var a = Tensor.From(new float[] { 1, 2, 3 });
        using var b = Tensor.From(new float[] { 4, 5, 6 });
        using var s0 = Tensor.Stack([a, b]);
        TestUtil.AssertShape(s0, 2, 3);
        TestUtil.AssertClose([1, 2, 3, 4, 5, 6], s0);
        using var s1 = Tensor.Stack([a, b], 1);
        TestUtil.AssertShape(s1, 3, 2);
        TestUtil.AssertClose([1, 4, 2, 5, 3, 6], s1);
        using var sm = Tensor.Stack([a, b, a], -1);
        TestUtil.AssertShape(sm, 3, 3);
        TestUtil.AssertClose([1, 4, 1, 2, 5, 2, 3, 6, 3], sm);
        using var c = Tensor.From(new float[] { 1, 2 });
        var ex = Assert.Throws<ArgumentException>(() => Tensor.Stack([a, c]));
        Assert.Equal("tensors", ex.ParamName);
    }

    [Fact]
    public void Split_And_Chunk_AreViews()
    {
        using var a = Ar(10, 5, 2);
        var parts = a.Split(2);
        Assert.Equal(3, parts.Length);
        TestUtil.AssertShape(parts[0], 2, 2);
        TestUtil.AssertShape(parts[2], 1, 2);
        TestUtil.AssertClose([4, 5, 6, 7], parts[1]);
        TestUtil.AssertClose([8, 9], parts[2]);
        AssertSharesStorage(a, parts[1]);
        Assert.Equal(4, parts[1].StorageOffset);
        parts[2].Fill_(-1);
        TestUtil.AssertClose([0, 1, 2, 3, 4, 5, 6, 7, -1, -1], a);
        foreach (var p in parts) p.Dispose();

        var bySize = a.Split([1, 4]);
        TestUtil.AssertShape(bySize[0], 1, 2);
        TestUtil.AssertShape(bySize[1], 4, 2);
        TestUtil.AssertClose([2, 3, 4, 5, 6, 7, -1, -1], bySize[1]);
        foreach (var p in bySize) p.Dispose();

        var cols = a.Split(1, 1);
        Assert.Equal(2, cols.Length);
        TestUtil.AssertClose([0, 2, 4, 6, -1], cols[0]);
        foreach (var p in cols) p.Dispose();

        Assert.Throws<ArgumentException>(() => a.Split([2, 2]));

        using var six = Ar(6);
        int[] Sizes(Tensor[] ts) { var s = ts.Select(t => t.Size(0)).ToArray(); foreach (var t in ts) t.Dispose(); return s; }
        Assert.Equal([2, 2, 2], Sizes(six.Chunk(3)));
        Assert.Equal([2, 2, 2], Sizes(six.Chunk(4))); // torch.chunk: ceil(6/4) = 2 -> three pieces
        Assert.Equal([3, 3], Sizes(six.Chunk(2)));
        using var five = Ar(5);
        Assert.Equal([3, 2], Sizes(five.Chunk(2)));
        Assert.Equal([1, 1, 1, 1, 1], Sizes(five.Chunk(10)));
    }

    // ---------------- bad input ----------------

    [Fact]
    public void BadInput_ThrowsNamedArgumentErrors()
    {
        using var a = Ar(12, 3, 4);

        var v = Assert.Throws<ArgumentException>(() => a.View(5, 3));
        Assert.Equal("shape", v.ParamName);
        Assert.Contains("[5, 3]", v.Message);
        Assert.Contains("12", v.Message);
        Assert.Throws<ArgumentException>(() => a.View(-1, -1));
        Assert.Throws<ArgumentException>(() => a.Reshape(-1, 5));

        using var b = Ar(10, 2, 5);
        var cat = Assert.Throws<ArgumentException>(() => Tensor.Cat([a, b], 0));
        Assert.Equal("tensors", cat.ParamName);
        Assert.Contains("[2, 5]", cat.Message);
        Assert.Contains("[3, 4]", cat.Message);
        using var r1 = Ar(4);
        Assert.Throws<ArgumentException>(() => Tensor.Cat([a, r1], 0));
        Assert.Throws<ArgumentException>(() => Tensor.Cat(Array.Empty<Tensor>(), 0));

        var perm = Assert.Throws<ArgumentException>(() => a.Permute(1, 1));
        Assert.Equal("dims", perm.ParamName);
        Assert.Contains("[1, 1]", perm.Message);
        Assert.Throws<ArgumentException>(() => a.Permute(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Permute(0, 2));

        var nar = Assert.Throws<ArgumentOutOfRangeException>(() => a.Narrow(1, 3, 2));
        Assert.Equal("start", nar.ParamName);
        Assert.Contains("size 4", nar.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Narrow(0, 0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Narrow(0, -5, 1));

        var sel = Assert.Throws<ArgumentOutOfRangeException>(() => a.Select(0, 3));
        Assert.Equal("index", sel.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => a[-4]);

        var dim = Assert.Throws<ArgumentOutOfRangeException>(() => a.Transpose(0, 2));
        Assert.Equal("dim1", dim.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Select(2, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Slice(-3, 0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Squeeze(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Unsqueeze(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Unsqueeze(-4));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Movedim(0, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Flip(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Flatten(0, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Unfold(1, 5, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Unfold(1, 2, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Split(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Chunk(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Size(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Stack([a, a], 3));
    }

    [Fact]
    public void ZeroDimTensor_DimOpsNeverThrowIndexOutOfRange()
    {
        using var s = Tensor.Scalar(3);
        var ops = new Action[]
        {
            () => s.Select(0, 0).Dispose(),
            () => s[0].Dispose(),
            () => s.Narrow(0, 0, 1).Dispose(),
            () => s.Slice(0, 0, 1).Dispose(),
            () => s.Unfold(0, 1, 1).Dispose(),
            () => s.Split(1).ToList().ForEach(t => t.Dispose()),
            () => s.Chunk(1).ToList().ForEach(t => t.Dispose()),
            () => s.Flip(0).Dispose(),
            () => s.Transpose(0, 0).Dispose(),
            () => s.Size(0),
            () => Tensor.Cat([s, s]).Dispose(),
            () => s.Movedim(0, 0).Dispose(),
        };
        var bad = new List<string>();
        for (int i = 0; i < ops.Length; i++)
        {
            try { ops[i](); }
            catch (Exception e)
            {
                if (e is not (ArgumentException or InvalidOperationException)) bad.Add($"op {i}: {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.True(bad.Count == 0, string.Join("\n", bad));
        using var st = Tensor.Stack([s, s]);
        TestUtil.AssertClose([3, 3], st);
        using var u = s.Unsqueeze(0);
        TestUtil.AssertShape(u, 1);
        using var sq = s.Squeeze();
        TestUtil.AssertShape(sq);
    }

    // ---------------- gradients ----------------

    private static Tensor R(ulong seed, params int[] shape) => TestUtil.RandnF64(shape, seed);

    [Fact]
    public void Grad_ViewReshapePermute()
    {
        TestUtil.GradCheck(x => { using var v = x[0].View(3, 4); return v * v; }, [R(1, 2, 6)]);
        TestUtil.GradCheck(x => { using var p = x[0].Permute(1, 0); return p.Reshape(-1); }, [R(2, 3, 4)]);
        TestUtil.GradCheck(x => { using var p = x[0].Permute(2, 0, 1); using var c = p.Contiguous(); return c * p; }, [R(3, 2, 3, 2)]);
        TestUtil.GradCheck(x => { using var t = x[0].Transpose(0, 1); return t.Flatten(); }, [R(4, 3, 2)]);
        TestUtil.GradCheck(x => { using var t = x[0].Movedim(0, 1); return t.Reshape(3, 2, 2); }, [R(5, 2, 3, 2)]);
    }

    [Fact]
    public void Grad_SliceNarrowSelect()
    {
        TestUtil.GradCheck(x => x[0].Slice(1, 1, 7, 2), [R(6, 3, 8)]);
        TestUtil.GradCheck(x => x[0].Slice(0, -3, -1), [R(7, 5, 2)]);
        TestUtil.GradCheck(x => x[0].Narrow(0, 1, 2), [R(8, 4, 3)]);
        TestUtil.GradCheck(x => { using var a = x[0].Select(1, 2); using var b = x[0].Select(1, 0); return a * b; }, [R(9, 3, 4)]);
        TestUtil.GradCheck(x => { using var r = x[0][1]; return r * r; }, [R(10, 3, 4)]);
    }

    [Fact]
    public void Grad_ExpandSqueezeUnsqueeze()
    {
        TestUtil.GradCheck(x => x[0].Expand(2, 3, 4), [R(11, 3, 1)]);
        TestUtil.GradCheck(x => { using var s = x[0].Squeeze(); return s * s; }, [R(12, 1, 3, 1, 2)]);
        TestUtil.GradCheck(x => { using var s = x[0].Squeeze(0); return s.Unsqueeze(2); }, [R(13, 1, 3, 2)]);
        TestUtil.GradCheck(x => { using var u = x[0].Unsqueeze(1); using var e = u.Expand(3, 4, 3); return e * u; }, [R(14, 3, 3)]);
    }

    [Fact]
    public void Grad_UnfoldOverlapping()
    {
        TestUtil.GradCheck(x => { using var u = x[0].Unfold(0, 3, 2); return u * u; }, [R(15, 7)]);
        TestUtil.GradCheck(x => x[0].Unfold(1, 3, 1), [R(16, 2, 6)]);
        TestUtil.GradCheck(x => x[0].Unfold(0, 2, 1), [R(17, 4, 3)]);
    }

    [Fact]
    public void Grad_FlipRepeatPad()
    {
        TestUtil.GradCheck(x => x[0].Flip(0, 1), [R(18, 3, 4)]);
        TestUtil.GradCheck(x => { using var t = x[0].MT; using var f = t.Flip(1); return f * t; }, [R(19, 3, 3)]);
        TestUtil.GradCheck(x => x[0].Repeat(2, 1, 2), [R(20, 2, 3)]);
        TestUtil.GradCheck(x => x[0].Repeat(3), [R(21, 2)]);
        TestUtil.GradCheck(x => x[0].Pad([1, 2, 0, 1], 3), [R(22, 2, 3)]);
        TestUtil.GradCheck(x => x[0].Pad([-1, 1, 1, -1]), [R(23, 3, 4)]);
    }

    [Fact]
    public void Grad_CatStackSplit()
    {
        TestUtil.GradCheck(x => Tensor.Cat([x[0], x[1], x[0]], 1), [R(24, 2, 3), R(25, 2, 1)]);
        TestUtil.GradCheck(x => Tensor.Cat([x[0], x[1]], 0), [R(26, 2, 3), R(27, 1, 3)]);
        using var ints = Tensor.From(new int[] { 1, 2, 3 }, 1, 3);
        TestUtil.GradCheck(x => Tensor.Cat([ints, x[0], ints], 0), [R(62, 2, 3)]);
        TestUtil.GradCheck(x => Tensor.Stack([x[0], x[1]], 1), [R(28, 2, 3), R(29, 2, 3)]);
        TestUtil.GradCheck(x =>
        {
            var p = x[0].Split(2, 1);
            try
            {
                using var prod = p[0] * p[1];
                return prod + p[2];
            }
            finally { foreach (var t in p) t.Dispose(); }
        }, [R(30, 3, 5)]);
        TestUtil.GradCheck(x =>
        {
            var p = x[0].Split([1, 3], 0);
            try { return p[1] * p[0]; }
            finally { foreach (var t in p) t.Dispose(); }
        }, [R(31, 4, 2)]);
        TestUtil.GradCheck(x =>
        {
            var p = x[0].Chunk(2, 0);
            try { return p[1] - p[0]; }
            finally { foreach (var t in p) t.Dispose(); }
        }, [R(32, 4, 2)]);
    }

    [Fact]
    public void Grad_CloneContiguousAndDTypeChain()
    {
        TestUtil.GradCheck(x => { using var c = x[0].Clone(); return c * x[0]; }, [R(33, 3, 2)]);
        TestUtil.GradCheck(x => { using var t = x[0].MT; return t.Contiguous(); }, [R(34, 3, 2)]);
        TestUtil.GradCheck(x => { using var c = x[0].Contiguous(); return c * c; }, [R(35, 4)]);
        // float32 round trip: the gradient is 1 per element; loose tolerance for the float32 rounding.
        TestUtil.GradCheck(x => { using var f = x[0].To(DType.Float32); return f.To(DType.Float64); }, [R(36, 5)], eps: 1e-3, atol: 1e-3, rtol: 1e-3);
    }
}
