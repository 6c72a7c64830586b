namespace Runtime.Tests;

/// <summary>Factories, host access, dtype conversions and printing.</summary>
public class CreationTests
{
    [Fact]
    public void VersionGrowsWithEveryInPlaceWriteThroughAnyView()
    {
        using var t = Tensor.Zeros([2, 3], DType.Float32);
        using var view = t.Select(0, 1);
        long v0 = t.Version;
        t.Fill_(1);
        long v1 = t.Version;
        Assert.True(v1 > v0);
        view.AddInPlace(t.Select(0, 0));
        long v2 = t.Version;
        Assert.True(v2 > v1);
        Assert.Equal(v2, view.Version);
        t.MulInPlace(2);
        long v3 = t.Version;
        Assert.True(v3 > v2);
        using var src = Tensor.Ones([2, 3], DType.Float32);
        t.CopyFrom(src);
        long v4 = t.Version;
        Assert.True(v4 > v3);
        using var sum = t + src; // out-of-place ops leave the operands' versions alone
        Assert.Equal(v4, t.Version);
        Assert.Equal(0, sum.Version);
    }

    [Fact]
    public void Zeros_Ones_Full_Scalar()
    {
        using var z = Tensor.Zeros(2, 3);
        Assert.Equal(DType.Float32, z.DType);
        TestUtil.AssertShape(z, 2, 3);
        Assert.Equal(new float[6], z.ToArray<float>());
        Assert.True(z.IsContiguous);

        using var o = Tensor.Ones([4], DType.Int32);
        Assert.Equal([1, 1, 1, 1], o.ToArray<int>());
        using var zb = Tensor.Zeros([2], DType.Bool);
        Assert.Equal([false, false], zb.ToArray<bool>());

        using var f = Tensor.Full([2, 2], 2.5, DType.Float64);
        Assert.Equal([2.5, 2.5, 2.5, 2.5], f.ToArray<double>());
        using var fl = Tensor.Full([3], -7, DType.Int64);
        Assert.Equal([-7L, -7, -7], fl.ToArray<long>());

        using var s = Tensor.Scalar(3.25);
        Assert.Equal(0, s.Rank);
        Assert.Equal(1, s.NumEl);
        Assert.Equal(3.25, s.Item());
        using var sb = Tensor.Scalar(1, DType.Bool);
        Assert.Equal(1.0, sb.Item());

        using var e = Tensor.Zeros(0, 4);
        Assert.Equal(0, e.NumEl);
        Assert.Empty(e.ToArray<float>());

        using var like = Tensor.FullLike(f, 1.5);
        Assert.Equal(DType.Float64, like.DType);
        Assert.Equal([1.5, 1.5, 1.5, 1.5], like.ToArray<double>());
        using var zl = Tensor.ZerosLike(o);
        Assert.Equal(DType.Int32, zl.DType);
        using var ol = Tensor.OnesLike(z);
        Assert.Equal(Enumerable.Repeat(1f, 6).ToArray(), ol.ToArray<float>());

        Assert.Throws<ArgumentException>(() => Tensor.Zeros(2, -1));
    }

    [Fact]
    public void Arange_FloatIntAndNegativeStep()
    {
        using var a = Tensor.Arange(5);
        Assert.Equal(DType.Int64, a.DType);
        Assert.Equal([0L, 1, 2, 3, 4], a.ToArray<long>());

        using var f = Tensor.Arange(1, 2, 0.25);
        Assert.Equal(DType.Float32, f.DType);
        Assert.Equal([1f, 1.25f, 1.5f, 1.75f], f.ToArray<float>());

        using var d = Tensor.Arange(0, 1, 0.1, DType.Float64);
        Assert.Equal(10, d.NumEl);
        var dv = d.ToArray<double>();
        for (int i = 0; i < 10; i++) Assert.Equal(i * 0.1, dv[i], 12);

        using var n = Tensor.Arange(5, 0, -2, DType.Int32);
        Assert.Equal([5, 3, 1], n.ToArray<int>());
        using var nf = Tensor.Arange(1, -1, -0.5);
        Assert.Equal([1f, 0.5f, 0f, -0.5f], nf.ToArray<float>());

        using var empty = Tensor.Arange(3, 3, 1);
        Assert.Equal(0, empty.NumEl);

        Assert.Throws<ArgumentException>(() => Tensor.Arange(0, 5, 0));
        Assert.Throws<ArgumentException>(() => Tensor.Arange(0, 5, -1));
    }

    [Fact]
    public void Linspace_EndpointsExact()
    {
        using var a = Tensor.Linspace(0, 1, 5);
        Assert.Equal([0f, 0.25f, 0.5f, 0.75f, 1f], a.ToArray<float>());

        using var b = Tensor.Linspace(-1, 0.3, 7, DType.Float64);
        var bv = b.ToArray<double>();
        Assert.Equal(7, bv.Length);
        Assert.Equal(-1.0, bv[0]);
        Assert.Equal(0.3, bv[6]); // exactly end
        for (int i = 0; i < 7; i++) Assert.Equal(-1 + 1.3 * i / 6, bv[i], 12);

        using var c = Tensor.Linspace(0.1, 0.7, 4, DType.Float64);
        Assert.Equal(0.7, c.ToArray<double>()[3]);

        using var down = Tensor.Linspace(3, -3, 4);
        Assert.Equal([3f, 1f, -1f, -3f], down.ToArray<float>());

        using var one = Tensor.Linspace(2, 5, 1);
        Assert.Equal([2f], one.ToArray<float>()); // torch.linspace(2, 5, 1) == [2]

        using var none = Tensor.Linspace(2, 5, 0);
        Assert.Equal(0, none.NumEl);
        Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Linspace(0, 1, -1));
    }

    [Fact]
    public void Eye_SquareAndRectangular()
    {
        using var e = Tensor.Eye(3);
        Assert.Equal([1f, 0, 0, 0, 1, 0, 0, 0, 1], e.ToArray<float>());
        using var w = Tensor.Eye(2, 4);
        TestUtil.AssertShape(w, 2, 4);
        Assert.Equal([1f, 0, 0, 0, 0, 1, 0, 0], w.ToArray<float>());
        using var t = Tensor.Eye(3, 2, DType.Int64);
        TestUtil.AssertShape(t, 3, 2);
        Assert.Equal([1L, 0, 0, 1, 0, 0], t.ToArray<long>());
        Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Eye(-1));
    }

    [Fact]
    public void Rand_Randn_RandInt_Statistics_And_Seeds()
    {
        const int N = 100_000;
        using var u = Tensor.Rand([N], new Generator(1), DType.Float64);
        var uv = u.ToArray<double>();
        Assert.All(uv, v => Assert.InRange(v, 0.0, Math.BitDecrement(1.0)));
        Assert.InRange(uv.Average(), 0.49, 0.51);

        using var uf = Tensor.Rand([1000], new Generator(1));
        Assert.Equal(DType.Float32, uf.DType);
        Assert.All(uf.ToArray<float>(), v => Assert.True(v >= 0 && v < 1, $"{v}"));

        using var n = Tensor.Randn([N], new Generator(2), DType.Float64);
        var nv = n.ToArray<double>();
        double mean = nv.Average();
        double std = Math.Sqrt(nv.Sum(v => (v - mean) * (v - mean)) / (N - 1));
        Assert.InRange(mean, -0.02, 0.02);
        Assert.InRange(std, 0.98, 1.02);

        using var n1 = Tensor.Randn([50], new Generator(42));
        using var n2 = Tensor.Randn([50], new Generator(42));
        using var n3 = Tensor.Randn([50], new Generator(43));
        Assert.Equal(n1.ToArray<float>(), n2.ToArray<float>());
        Assert.NotEqual(n1.ToArray<float>(), n3.ToArray<float>());
        using var r1 = Tensor.Rand([50], new Generator(42));
        using var r2 = Tensor.Rand([50], new Generator(42));
        Assert.Equal(r1.ToArray<float>(), r2.ToArray<float>());

        var g = new Generator(9);
        using var a1 = Tensor.Rand([10], g);
        using var a2 = Tensor.Rand([10], g);
        Assert.NotEqual(a1.ToArray<float>(), a2.ToArray<float>()); // the generator advances
        g.ManualSeed(9);
        using var a3 = Tensor.Rand([10], g);
        Assert.Equal(a1.ToArray<float>(), a3.ToArray<float>());

        using var ri = Tensor.RandInt(-3, 4, [2000], new Generator(5));
        Assert.Equal(DType.Int64, ri.DType);
        var rv = ri.ToArray<long>();
        Assert.All(rv, v => Assert.InRange(v, -3L, 3L));
        Assert.Equal(7, rv.Distinct().Count());
        using var ri32 = Tensor.RandInt(0, 2, [3, 4], new Generator(6), DType.Int32);
        Assert.Equal(DType.Int32, ri32.DType);
        TestUtil.AssertShape(ri32, 3, 4);
        Assert.All(ri32.ToArray<int>(), v => Assert.InRange(v, 0, 1));
        Assert.Throws<ArgumentException>(() => Tensor.RandInt(2, 2, [3]));
    }

    [Fact]
    public void From_ToArray_Item()
    {
        using var a = Tensor.From(new double[] { 1, 2, 3, 4, 5, 6 }, 3, 2);
        Assert.Equal(DType.Float64, a.DType);
        TestUtil.AssertShape(a, 3, 2);
        Assert.Equal([1.0, 2, 3, 4, 5, 6], a.ToArray<double>());
        using var v = Tensor.From(new int[] { 7, 8 });
        TestUtil.AssertShape(v, 2);
        Assert.Equal(DType.Int32, v.DType);
        using var b = Tensor.From(new[] { true, false });
        Assert.Equal(DType.Bool, b.DType);
        using var s = Tensor.From(new long[] { 9 }, []);
        TestUtil.AssertShape(s, 1);
        using var sc = Tensor.From<float>(new float[] { 4 }.AsSpan(), []);
        Assert.Equal(0, sc.Rank);
        Assert.Equal(4, sc.Item());

        // Data is copied in.
        var data = new float[] { 1, 2 };
        using var c = Tensor.From(data);
        data[0] = 100;
        Assert.Equal([1f, 2f], c.ToArray<float>());

        var wrong = Assert.Throws<ArgumentException>(() => a.ToArray<float>());
        Assert.Contains("float64", wrong.Message);
        Assert.Throws<ArgumentException>(() => v.ToArray<long>());
        Assert.Throws<ArgumentException>(() => b.ToArray<int>());
        var shape = Assert.Throws<ArgumentException>(() => Tensor.From(new float[] { 1, 2, 3 }, 2, 2));
        Assert.Equal("shape", shape.ParamName);
        Assert.Throws<ArgumentException>(() => Tensor.From(new short[] { 1 }));

        Assert.Equal(1, a[0][0].Item());
        Assert.Throws<InvalidOperationException>(() => a.Item());

        // Non-contiguous host copy.
        using var t = a.MT;
        Assert.Equal([1.0, 3, 5, 2, 4, 6], t.ToArray<double>());
        Assert.Equal([1.0, 3, 5, 2, 4, 6], t.ToDoubleArray());
        var dst = new double[8];
        t.CopyTo<double>(dst);
        Assert.Equal([1.0, 3, 5, 2, 4, 6, 0, 0], dst);
        Assert.Throws<ArgumentException>(() => t.CopyTo<double>(new double[5]));
    }

    [Fact]
    public void To_DTypeConversions()
    {
        using var f = Tensor.From(new float[] { -2.7f, -0.5f, 0f, 0.5f, 2.7f, 3f });
        using var i = f.To(DType.Int32);
        Assert.Equal([-2, 0, 0, 0, 2, 3], i.ToArray<int>()); // truncation toward zero
        using var l = f.To(DType.Int64);
        Assert.Equal([-2L, 0, 0, 0, 2, 3], l.ToArray<long>());
        using var b = f.To(DType.Bool);
        Assert.Equal([true, true, false, true, true, true], b.ToArray<bool>());
        using var ib = Tensor.From(new long[] { 0, 5, -1 }).To(DType.Bool);
        Assert.Equal([false, true, true], ib.ToArray<bool>());
        using var nanb = Tensor.From(new double[] { double.NaN, 0.0 }).To(DType.Bool);
        Assert.Equal([true, false], nanb.ToArray<bool>());
        using var bf = b.To(DType.Float64);
        Assert.Equal([1.0, 1, 0, 1, 1, 1], bf.ToArray<double>());
        using var d = i.To(DType.Float64);
        Assert.Equal([-2.0, 0, 0, 0, 2, 3], d.ToArray<double>());
        using var big = Tensor.From(new long[] { 1L << 40, -(1L << 40) }).To(DType.Float64);
        Assert.Equal([(double)(1L << 40), -(double)(1L << 40)], big.ToArray<double>());
        using var dd = Tensor.From(new double[] { 0.1 }).To(DType.Float32);
        Assert.Equal([0.1f], dd.ToArray<float>());

        // Same dtype: a new handle on the same memory.
        using var same = f.To(DType.Float32);
        Assert.Same(f.StorageOrThrow, same.StorageOrThrow);

        // Conversion of a non-contiguous view.
        using var m = Tensor.From(new float[] { 1.9f, 2.1f, -3.9f, 4.5f }, 2, 2);
        using var mt = m.MT;
        using var mti = mt.To(DType.Int64);
        Assert.Equal([1L, -3, 2, 4], mti.ToArray<long>());
    }

    [CpuFact("the expected text has no device= suffix")]
    public void ToString_PrintsLikePyTorch()
    {
        using var m = Tensor.From(new float[] { 1.5f, 2f, 3f, 4.25f }, 2, 2);
        Assert.Equal("tensor([[1.5000, 2.0000],\n        [3.0000, 4.2500]], shape=[2, 2], dtype=float32)", m.ToString());

        using var ints = Tensor.From(new long[] { 1, -20, 300 });
        Assert.Equal("tensor([  1, -20, 300], shape=[3], dtype=int64)", ints.ToString());

        using var whole = Tensor.From(new float[] { 1, 2, 3, 4 }, 2, 2);
        Assert.Equal("tensor([[1., 2.],\n        [3., 4.]], shape=[2, 2], dtype=float32)", whole.ToString());

        using var cube = Tensor.Arange(8).View(2, 2, 2);
        Assert.Equal("tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]], shape=[2, 2, 2], dtype=int64)", cube.ToString());

        using var b = Tensor.Scalar(1, DType.Bool);
        Assert.Equal("tensor(True, shape=[], dtype=bool)", b.ToString());
        using var bv = Tensor.From(new[] { true, false });
        Assert.Equal("tensor([ True, False], shape=[2], dtype=bool)", bv.ToString());

        using var big = Tensor.Arange(0, 2000, 1);
        var s = big.ToString();
        Assert.Contains("...", s);
        Assert.Contains("shape=[2000]", s);
        Assert.StartsWith("tensor([   0.,    1.,    2., ..., 1997., 1998., 1999.]", s);
        Assert.True(s.Length < 200, s);

        using var big2 = Tensor.Zeros(40, 40);
        var s2 = big2.ToString();
        Assert.Contains("...", s2);
        Assert.Contains("shape=[40, 40]", s2);

        using var x = Tensor.Ones(2).RequiresGrad_();
        Assert.Contains("requires_grad=True", x.ToString());
        using var y = x * x;
        Assert.Contains("grad_fn=<MulBackward>", y.ToString());

        var disposed = Tensor.Ones(1);
        disposed.Dispose();
        Assert.Equal("tensor(<disposed>)", disposed.ToString());
    }
}
