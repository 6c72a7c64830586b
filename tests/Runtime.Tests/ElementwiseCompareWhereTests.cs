namespace Runtime.Tests;

/// <summary>Comparisons, logical operators, Where, MaskedFill, and argument errors of elementwise operators.</summary>
public class ElementwiseCompareWhereTests
{
    private const bool T = true, F = false;

    [Fact]
    public void ComparisonsTensorTensorWithNaN()
    {
        foreach (var dt in Ew.FloatTypes)
        {
            using var a = Ew.Make([1, 2, 3, double.NaN, double.NegativeInfinity, -0.0], dt);
            using var b = Ew.Make([2, 2, 2, double.NaN, double.NegativeInfinity, 0], dt);
            using (var y = a.Eq(b)) Ew.CheckBool(y, [F, T, F, F, T, T], "eq");
            using (var y = a.Ne(b)) Ew.CheckBool(y, [T, F, T, T, F, F], "ne");
            using (var y = a.Lt(b)) Ew.CheckBool(y, [T, F, F, F, F, F], "lt");
            using (var y = a.Le(b)) Ew.CheckBool(y, [T, T, F, F, T, T], "le");
            using (var y = a.Gt(b)) Ew.CheckBool(y, [F, F, T, F, F, F], "gt");
            using (var y = a.Ge(b)) Ew.CheckBool(y, [F, T, T, F, T, T], "ge");
        }
    }

    [Fact]
    public void ComparisonsWithScalars()
    {
        using var f = Ew.F32(1, 2, 3, double.NaN);
        using (var y = f.Eq(2.0)) Ew.CheckBool(y, [F, T, F, F]);
        using (var y = f.Ne(2.0)) Ew.CheckBool(y, [T, F, T, T]);
        using (var y = f.Lt(2.0)) Ew.CheckBool(y, [T, F, F, F]);
        using (var y = f.Le(2.0)) Ew.CheckBool(y, [T, T, F, F]);
        using (var y = f.Gt(2.0)) Ew.CheckBool(y, [F, F, T, F]);
        using (var y = f.Ge(2.0)) Ew.CheckBool(y, [F, T, T, F]);
        // a float32 tensor compares with the scalar rounded to float32, as PyTorch
        using (var t = Ew.F32(0.1))
        using (var y = t.Eq(0.1)) Ew.CheckBool(y, [T]);
        using (var t = Ew.F64(0.1f))
        using (var y = t.Eq(0.1)) Ew.CheckBool(y, [F]);

        using var i = Ew.I32(1, 2, 3);
        using (var y = i.Lt(2.5)) Ew.CheckBool(y, [T, T, F]);
        using (var y = i.Gt(2.5)) Ew.CheckBool(y, [F, F, T]);
        using (var y = i.Eq(2)) Ew.CheckBool(y, [F, T, F]);
        using (var y = i.Eq(2.5)) Ew.CheckBool(y, [F, F, F]);
        using (var y = i.Ge(-1e10)) Ew.CheckBool(y, [T, T, T]);
        using var l = Tensor.From(new long[] { (1L << 53) + 1, 5 });
        using (var y = l.Ge(5)) Ew.CheckBool(y, [T, T]);
        using (var y = l.Le(5)) Ew.CheckBool(y, [F, T]);
        using var bb = Ew.B(T, F);
        using (var y = bb.Eq(1)) Ew.CheckBool(y, [T, F]);
        using (var y = bb.Lt(0.5)) Ew.CheckBool(y, [F, T]);
    }

    [Fact]
    public void ComparisonsMixedDtypesAndBroadcasting()
    {
        using var i = Ew.I32(1, 2, 3);
        using var f = Ew.F32(1, 2.5, 3);
        using (var y = i.Eq(f)) Ew.CheckBool(y, [T, F, T]);
        using (var y = f.Gt(i)) Ew.CheckBool(y, [F, T, F]);
        using var l = Ew.I64(1, 3, 2);
        using var d = Ew.F64(1, 2.9999999999, 2.0000000001);
        using (var y = l.Lt(d)) Ew.CheckBool(y, [F, F, T]);
        using (var y = i.Le(l)) Ew.CheckBool(y, [T, T, F]);
        using var b = Ew.B(T, F, T);
        using (var y = b.Eq(i)) Ew.CheckBool(y, [T, F, F]);

        using var col = Ew.F64(1, 2, 3);
        using var c = Ew.Make([1, 2, 3], DType.Float64, 3, 1);
        using var r = Ew.Make([0, 1, 2, 3], DType.Int32, 1, 4);
        var lt = new bool[12];
        var eq = new bool[12];
        for (int p = 0; p < 3; p++)
            for (int q = 0; q < 4; q++)
            {
                lt[p * 4 + q] = p + 1 < q;
                eq[p * 4 + q] = p + 1 == q;
            }
        using (var y = c.Lt(r)) Ew.CheckBool(y, [3, 4], lt);
        using (var y = r.Eq(c)) Ew.CheckBool(y, [3, 4], eq);
        using var s = Tensor.Scalar(2, DType.Int64);
        using (var y = col.Ge(s)) Ew.CheckBool(y, [F, T, T]);
    }

    [Theory]
    [InlineData(17)]
    [InlineData(1000)]
    [InlineData(100003)]
    public void ComparisonsAtLength(int n)
    {
        foreach (var dt in new[] { DType.Float32, DType.Float64, DType.Int32, DType.Int64 })
        {
            var av = Ew.Stored(Ew.Ints(n, 40, -3, 3), dt);
            var bv = Ew.Stored(Ew.Ints(n, 41, -3, 3), dt);
            using var a = Ew.Make(av, dt);
            using var b = Ew.Make(bv, dt);
            bool[] Ref(Func<double, double, bool> f) => av.Zip(bv, f).ToArray();
            using (var y = a.Eq(b)) Ew.CheckBool(y, Ref((x, z) => x == z), $"eq {dt}");
            using (var y = a.Ne(b)) Ew.CheckBool(y, Ref((x, z) => x != z), $"ne {dt}");
            using (var y = a.Lt(b)) Ew.CheckBool(y, Ref((x, z) => x < z), $"lt {dt}");
            using (var y = a.Le(b)) Ew.CheckBool(y, Ref((x, z) => x <= z), $"le {dt}");
            using (var y = a.Gt(b)) Ew.CheckBool(y, Ref((x, z) => x > z), $"gt {dt}");
            using (var y = a.Ge(b)) Ew.CheckBool(y, Ref((x, z) => x >= z), $"ge {dt}");
            using (var y = a.Gt(0.5)) Ew.CheckBool(y, av.Select(x => x > 0.5).ToArray(), $"gt scalar {dt}");
            using (var y = a.Le(-1)) Ew.CheckBool(y, av.Select(x => x <= -1).ToArray(), $"le scalar {dt}");
        }
    }

    [Fact]
    public void LogicalOperators()
    {
        using var a = Ew.B(T, T, F, F);
        using var b = Ew.B(T, F, T, F);
        using (var y = a.LogicalAnd(b)) Ew.CheckBool(y, [T, F, F, F]);
        using (var y = a.LogicalOr(b)) Ew.CheckBool(y, [T, T, T, F]);
        using (var y = a.LogicalXor(b)) Ew.CheckBool(y, [F, T, T, F]);
        using (var y = a.LogicalNot()) Ew.CheckBool(y, [F, F, T, T]);
        // non-Bool inputs: non-zero (NaN included) is true
        using var f = Ew.F32(0, 1.5, -0.0, double.NaN);
        using var i = Ew.I32(2, 0, 0, -7);
        using (var y = f.LogicalNot()) Ew.CheckBool(y, [T, F, T, F]);
        using (var y = i.LogicalNot()) Ew.CheckBool(y, [F, T, T, F]);
        using (var y = f.LogicalAnd(i)) Ew.CheckBool(y, [F, F, F, T]);
        using (var y = f.LogicalOr(i)) Ew.CheckBool(y, [T, T, F, T]);
        using (var y = i.LogicalXor(f)) Ew.CheckBool(y, [T, T, F, F]);
        using var d = Ew.F64(0.5, 0);
        using var l = Ew.I64(0, 0);
        using (var y = d.LogicalOr(l)) Ew.CheckBool(y, [T, F]);
        using (var y = l.LogicalNot()) Ew.CheckBool(y, [T, T]);
        // broadcasting [3,1] with [4]
        using var c = Tensor.From(new[] { T, F, T }, 3, 1);
        using var r = Tensor.From(new[] { T, F, F, T });
        var and = new bool[12];
        var xor = new bool[12];
        bool[] cv = [T, F, T], rv = [T, F, F, T];
        for (int p = 0; p < 3; p++)
            for (int q = 0; q < 4; q++)
            {
                and[p * 4 + q] = cv[p] && rv[q];
                xor[p * 4 + q] = cv[p] ^ rv[q];
            }
        using (var y = c.LogicalAnd(r)) Ew.CheckBool(y, [3, 4], and);
        using (var y = r.LogicalXor(c)) Ew.CheckBool(y, [3, 4], xor);
        // long inputs, through the parallel path
        int n = 100003;
        var av = Ew.Ints(n, 50, 0, 1);
        var bv = Ew.Ints(n, 51, -1, 1);
        using var la = Ew.Make(av, DType.Bool);
        using var lb = Ew.Make(bv, DType.Float32);
        using (var y = la.LogicalOr(lb)) Ew.CheckBool(y, av.Zip(bv, (x, z) => x != 0 || z != 0).ToArray());
        using (var y = lb.LogicalNot()) Ew.CheckBool(y, bv.Select(z => z == 0).ToArray());
    }

    [Fact]
    public void WhereBroadcastsAllThree()
    {
        foreach (var dt in new[] { DType.Float32, DType.Float64, DType.Int32, DType.Int64 })
        {
            using var cond = Tensor.From(new[] { T, F, T }, 3, 1);
            using var a = Ew.Make([1, 2, 3, 4], dt, 1, 4);
            using var bScalar = Tensor.Scalar(-1, dt);
            using var bRow = Ew.Make([-10, -20, -30, -40], dt, 4);
            using (var y = Tensor.Where(cond, a, bScalar))
                Ew.Check(y, dt, [3, 4], [1, 2, 3, 4, -1, -1, -1, -1, 1, 2, 3, 4], what: $"where scalar {dt}");
            using (var y = Tensor.Where(cond, bRow, a))
                Ew.Check(y, dt, [3, 4], [-10, -20, -30, -40, 1, 2, 3, 4, -10, -20, -30, -40], what: $"where row {dt}");
            // condition broadcast the other way: [4] against [3,1] values
            using var c4 = Tensor.From(new[] { T, F, F, T });
            using var v31 = Ew.Make([5, 6, 7], dt, 3, 1);
            using (var y = Tensor.Where(c4, v31, bScalar))
                Ew.Check(y, dt, [3, 4], [5, -1, -1, 5, 6, -1, -1, 6, 7, -1, -1, 7], what: $"where [4]/[3,1] {dt}");
            using var c0 = Tensor.Scalar(1, DType.Bool);
            using (var y = Tensor.Where(c0, v31, bRow))
                Ew.Check(y, dt, [3, 4], [5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7], what: $"where 0-D cond {dt}");
        }
        // mixed value dtypes promote
        using var m = Ew.B(T, F);
        using var fi = Ew.I32(1, 2);
        using var ff = Ew.F32(0.5, 0.25);
        using var fd = Ew.F64(0.1, 0.2);
        using (var y = Tensor.Where(m, fi, ff)) Ew.Check(y, DType.Float32, [1, 0.25]);
        using (var y = Tensor.Where(m, ff, fd)) Ew.Check(y, DType.Float64, [0.5, 0.2]);
        using var fl = Ew.I64(7, 8);
        using (var y = Tensor.Where(m, fi, fl)) Ew.Check(y, DType.Int64, [1, 8]);
        using var bt = Ew.B(F, F);
        using var bf = Ew.B(T, T);
        using (var y = Tensor.Where(m, bt, bf)) Ew.CheckBool(y, [F, T]);
        using (var y = Tensor.Where(m, ff, ff)) Assert.False(y.RequiresGrad);
    }

    [Fact]
    public void WhereAtLength()
    {
        foreach (var n in new[] { 17, 100003 })
            foreach (var dt in new[] { DType.Float32, DType.Float64, DType.Int32, DType.Int64 })
            {
                var cv = Ew.Ints(n, 60, 0, 1);
                var av = Ew.Stored(Ew.Ints(n, 61, -100, 100), dt);
                var bv = Ew.Stored(Ew.Ints(n, 62, -100, 100), dt);
                using var c = Ew.Make(cv, DType.Bool);
                using var a = Ew.Make(av, dt);
                using var b = Ew.Make(bv, dt);
                using var y = Tensor.Where(c, a, b);
                Ew.Check(y, dt, Enumerable.Range(0, n).Select(i => cv[i] != 0 ? av[i] : bv[i]).ToArray(), what: $"where {dt} n={n}");
            }
    }

    [Fact]
    public void WhereRejectsNonBoolCondition()
    {
        using var a = Ew.F32(1, 2);
        using var b = Ew.F32(3, 4);
        foreach (var dt in new[] { DType.Int32, DType.Int64, DType.Float32, DType.Float64 })
        {
            using var c = Ew.Make([1, 0], dt);
            var e = Assert.Throws<ArgumentException>(() => Tensor.Where(c, a, b));
            Assert.Contains("Bool", e.Message);
        }
        using var mask = Ew.I32(1, 0);
        Assert.Throws<ArgumentException>(() => a.MaskedFill(mask, 0));
    }

    [Fact]
    public void MaskedFill()
    {
        using var x = Ew.Make([1, 2, 3, 4, 5, 6], DType.Float32, 2, 3);
        using var m = Tensor.From(new[] { T, F, T });
        using (var y = x.MaskedFill(m, double.NegativeInfinity))
            Ew.Check(y, DType.Float32, [2, 3], [double.NegativeInfinity, 2, double.NegativeInfinity, double.NegativeInfinity, 5, double.NegativeInfinity]);
        using var m2 = Tensor.From(new[] { F, T }, 2, 1);
        using (var y = x.MaskedFill(m2, 0.5)) Ew.Check(y, DType.Float32, [2, 3], [1, 2, 3, 0.5, 0.5, 0.5]);
        using var xi = Ew.Make([1, 2, 3, 4, 5, 6], DType.Int64, 2, 3);
        using (var y = xi.MaskedFill(m, 7)) Ew.Check(y, DType.Int64, [2, 3], [7, 2, 7, 7, 5, 7]);
        using var xd = Ew.F64(1, 2, 3);
        using (var y = xd.MaskedFill(m, 0.1)) Ew.Check(y, DType.Float64, [0.1, 2, 0.1]);
        using var xb = Ew.B(F, F, F);
        using (var y = xb.MaskedFill(m, 1)) Ew.CheckBool(y, [T, F, T]);
        using var m0 = Tensor.Scalar(0, DType.Bool);
        using (var y = xd.MaskedFill(m0, 9)) Ew.Check(y, DType.Float64, [1, 2, 3]);
        // source tensor untouched
        Ew.Check(x, DType.Float32, [2, 3], [1, 2, 3, 4, 5, 6]);
    }

    public static IEnumerable<object[]> BinaryOpNames() =>
        new[] { "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "lt", "ge", "and", "or", "xor" }.Select(s => new object[] { s });

    private static Tensor Apply(string op, Tensor a, Tensor b) => op switch
    {
        "add" => a + b,
        "sub" => a - b,
        "mul" => a * b,
        "div" => a / b,
        "pow" => Tensor.Pow(a, b),
        "maximum" => Tensor.Maximum(a, b),
        "minimum" => a.Minimum(b),
        "eq" => a.Eq(b),
        "lt" => a.Lt(b),
        "ge" => a.Ge(b),
        "and" => a.LogicalAnd(b),
        "or" => a.LogicalOr(b),
        "xor" => a.LogicalXor(b),
        _ => throw new ArgumentException(op),
    };

    [Theory]
    [MemberData(nameof(BinaryOpNames))]
    public void NonBroadcastableShapesNameBothShapes(string op)
    {
        using var a = Tensor.Zeros([2, 3], DType.Float32);
        using var b = Tensor.Zeros([4], DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => Apply(op, a, b));
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4]", e.Message);
        using var c = Tensor.Zeros([5, 1, 3], DType.Float64);
        using var d = Tensor.Zeros([2, 2], DType.Float64);
        e = Assert.Throws<ArgumentException>(() => Apply(op, c, d));
        Assert.Contains("[5, 1, 3]", e.Message);
        Assert.Contains("[2, 2]", e.Message);
    }

    [Fact]
    public void WhereNonBroadcastableShapesNameBothShapes()
    {
        using var c = Tensor.Zeros([2, 3], DType.Bool);
        using var a = Tensor.Zeros([3], DType.Float32);
        using var b = Tensor.Zeros([4], DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => Tensor.Where(c, a, b));
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4]", e.Message);
        using var c5 = Tensor.Zeros([5], DType.Bool);
        e = Assert.Throws<ArgumentException>(() => Tensor.Where(c5, a, a));
        Assert.Contains("[5]", e.Message);
        Assert.Contains("[3]", e.Message);
        using var x = Tensor.Zeros([2, 3], DType.Float32);
        using var m = Tensor.Zeros([2], DType.Bool);
        e = Assert.Throws<ArgumentException>(() => x.MaskedFill(m, 1));
        Assert.Contains("[2]", e.Message);
    }

    [Fact]
    public void DisposedTensorsThrow()
    {
        var a = Ew.F32(1, 2, 3);
        using var b = Ew.F32(4, 5, 6);
        using var c = Ew.B(true, false, true);
        a.Dispose();
        Assert.True(a.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => a + b);
        Assert.Throws<ObjectDisposedException>(() => b + a);
        Assert.Throws<ObjectDisposedException>(() => b * a);
        Assert.Throws<ObjectDisposedException>(() => a / 2.0);
        Assert.Throws<ObjectDisposedException>(() => 2L - a);
        Assert.Throws<ObjectDisposedException>(() => Tensor.Pow(b, a));
        Assert.Throws<ObjectDisposedException>(() => a.Pow(2.0));
        Assert.Throws<ObjectDisposedException>(() => Tensor.Maximum(b, a));
        Assert.Throws<ObjectDisposedException>(() => a.Minimum(1.0));
        Assert.Throws<ObjectDisposedException>(() => -a);
        Assert.Throws<ObjectDisposedException>(() => a.Exp());
        Assert.Throws<ObjectDisposedException>(() => a.Relu());
        Assert.Throws<ObjectDisposedException>(() => a.Clamp(0, 1));
        Assert.Throws<ObjectDisposedException>(() => a.Round());
        Assert.Throws<ObjectDisposedException>(() => a.Eq(b));
        Assert.Throws<ObjectDisposedException>(() => b.Lt(a));
        Assert.Throws<ObjectDisposedException>(() => a.Gt(0.0));
        Assert.Throws<ObjectDisposedException>(() => a.LogicalAnd(c));
        Assert.Throws<ObjectDisposedException>(() => a.LogicalNot());
        Assert.Throws<ObjectDisposedException>(() => Tensor.Where(c, a, b));
        Assert.Throws<ObjectDisposedException>(() => Tensor.Where(c, b, a));
        Assert.Throws<ObjectDisposedException>(() => a.MaskedFill(c, 0));
        var dc = Ew.B(true, false, true);
        dc.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Tensor.Where(dc, b, b));
        Assert.Throws<ObjectDisposedException>(() => b.MaskedFill(dc, 0));
        Assert.Throws<ObjectDisposedException>(() => c.LogicalOr(dc));
        // disposing twice is harmless, and the other operands still work
        a.Dispose();
        using var ok = b + b;
        Ew.Check(ok, DType.Float32, [8, 10, 12]);
    }
}
