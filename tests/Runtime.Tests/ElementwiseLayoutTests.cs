namespace Runtime.Tests;

/// <summary>Non-contiguous inputs (permuted, step-sliced, expanded, flipped views) give the values of contiguous copies.</summary>
public class ElementwiseLayoutTests
{
    /// <summary>A view of a base tensor, its shape, and the base element each view element reads.</summary>
    private sealed record View(Func<Tensor, Tensor> Make, Func<int[], int[]> Shape, Func<int[], int[], long> Source);

    private static long Flat(int[] shape, int i0, int i1, int i2) => ((long)i0 * shape[1] + i1) * shape[2] + i2;

    // All views take a rank-3 base [A, B, C] with A, B even and C >= 10.
    private static readonly Dictionary<string, View> Views = new()
    {
        ["permute"] = new(t => t.Permute(2, 0, 1), s => [s[2], s[0], s[1]], (s, i) => Flat(s, i[1], i[2], i[0])),
        ["transpose"] = new(t => t.Transpose(0, 2), s => [s[2], s[1], s[0]], (s, i) => Flat(s, i[2], i[1], i[0])),
        ["slice_step3_last"] = new(t => t.Slice(2, 1, t.Size(2) - 1, 3), s => [s[0], s[1], (s[2] - 2 + 2) / 3],
            (s, i) => Flat(s, i[0], i[1], 1 + 3 * i[2])),
        ["slice_step2_first"] = new(t => t.Slice(0, 1, t.Size(0), 2), s => [s[0] / 2, s[1], s[2]], (s, i) => Flat(s, 1 + 2 * i[0], i[1], i[2])),
        ["expand_middle"] = new(t => { using var n = t.Narrow(1, 2, 1); return n.Expand(-1, t.Size(1), -1); }, s => s,
            (s, i) => Flat(s, i[0], 2, i[2])),
        ["expand_new_leading"] = new(t => { using var n = t.Select(1, 1); return n.Expand(3, t.Size(0), t.Size(2)); }, s => [3, s[0], s[2]],
            (s, i) => Flat(s, i[1], 1, i[2])),
        ["flip"] = new(t => t.Flip(1), s => s, (s, i) => Flat(s, i[0], s[1] - 1 - i[1], i[2])),
        ["permute_of_slice"] = new(t => { using var v = t.Slice(1, 0, t.Size(1), 2); return v.Permute(1, 2, 0); }, s => [s[1] / 2, s[2], s[0]],
            (s, i) => Flat(s, i[2], 2 * i[0], i[1])),
    };

    private static double[] HostView(string view, double[] baseValues, int[] baseShape)
    {
        var v = Views[view];
        var shape = v.Shape(baseShape);
        long n = 1;
        foreach (var d in shape) n *= d;
        var res = new double[n];
        var idx = new int[shape.Length];
        for (long k = 0; k < n; k++)
        {
            res[k] = baseValues[v.Source(baseShape, idx)];
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
        return res;
    }

    private static readonly int[] Small = [6, 8, 10], Big = [40, 50, 60]; // Big: > 32768 elements, parallel kernels

    public static IEnumerable<object[]> ViewsAndTypes() =>
        from v in Views.Keys
        from dt in new[] { DType.Float32, DType.Float64, DType.Int32, DType.Int64 }
        from big in new[] { false, true }
        select new object[] { v, dt, big };

    private sealed record UOp(Func<Tensor, Tensor> Op, Func<double, double> Ref, double Tol32, double Tol64, bool IntOk);

    private static readonly Dictionary<string, UOp> Unary = new()
    {
        ["neg"] = new(x => -x, v => -v, 0, 0, true),
        ["abs"] = new(x => x.Abs(), Math.Abs, 0, 0, true),
        ["square"] = new(x => x.Square(), v => v * v, 0, 0, true),
        ["relu"] = new(x => x.Relu(), v => Math.Max(v, 0), 0, 0, true),
        ["clamp"] = new(x => x.Clamp(-1, 1.5), v => Math.Clamp(v, -1, 1.5), 0, 0, false),
        ["round"] = new(x => x.Round(), v => Math.Round(v, MidpointRounding.ToEven), 0, 0, true),
        ["floor"] = new(x => x.Floor(), Math.Floor, 0, 0, true),
        ["exp"] = new(x => x.Exp(), Math.Exp, 2e-6, 1e-15, false),
        ["sigmoid"] = new(x => x.Sigmoid(), Ew.Sigmoid, 2e-6, 1e-15, false),
        ["tanh"] = new(x => x.Tanh(), Math.Tanh, 2e-6, 1e-15, false),
        ["sin"] = new(x => x.Sin(), Math.Sin, 2e-6, 1e-15, false),
        ["leaky_relu"] = new(x => x.LeakyRelu(0.25), v => v > 0 ? v : 0.25 * v, 0, 0, false),
        ["gelu_tanh"] = new(x => x.Gelu(true), Ew.GeluTanh, 2e-6, 1e-13, false),
        ["reciprocal"] = new(x => x.Reciprocal(), v => 1 / v, 0, 0, false),
        ["pow3"] = new(x => x.Pow(3.0), v => v * v * v, 1e-7, 1e-15, false),
    };

    private static double[] BaseValues(int n, int seed, DType dt) =>
        Ew.Stored(dt.IsFloating() ? Ew.Signed(n, seed, 0.05, 2.5) : Ew.Ints(n, seed, -50, 50), dt);

    [Theory]
    [MemberData(nameof(ViewsAndTypes))]
    public void UnaryOnViews(string view, DType dt, bool big)
    {
        var shape = big ? Big : Small;
        int n = shape[0] * shape[1] * shape[2];
        var bv = BaseValues(n, 70, dt);
        using var b = Ew.Make(bv, dt, shape);
        using var v = Views[view].Make(b);
        var vShape = Views[view].Shape(shape);
        Assert.Equal(vShape, v.Shape.ToArray());
        var host = HostView(view, bv, shape);
        using var vc = v.Contiguous();
        Ew.Check(vc, dt, vShape, host, what: $"{view} contiguous copy");
        foreach (var (name, op) in Unary)
        {
            if (!dt.IsFloating() && !op.IntOk) continue;
            double tol = dt == DType.Float32 ? op.Tol32 : op.Tol64;
            using var y = op.Op(v);
            Ew.Check(y, dt, vShape, Ew.Map(host, op.Ref), tol, tol == 0 ? 0 : 1e-30, what: $"{name} on {view} {dt}");
            using var yc = op.Op(vc);
            Ew.Check(y, dt, vShape, yc.ToDoubleArray(), tol, tol == 0 ? 0 : 1e-30, what: $"{name} on {view} vs contiguous {dt}");
        }
    }

    [Theory]
    [MemberData(nameof(ViewsAndTypes))]
    public void BinaryOnViews(string view, DType dt, bool big)
    {
        var shape = big ? Big : Small;
        int n = shape[0] * shape[1] * shape[2];
        var av = BaseValues(n, 80, dt);
        var bv = BaseValues(n, 81, dt);
        using var aBase = Ew.Make(av, dt, shape);
        using var bBase = Ew.Make(bv, dt, shape);
        using var a = Views[view].Make(aBase);
        using var b = Views[view].Make(bBase);
        var vShape = Views[view].Shape(shape);
        var ha = HostView(view, av, shape);
        var hb = HostView(view, bv, shape);
        using var bc = Ew.Make(hb, dt, vShape); // contiguous operand with b's values
        var ops = new (string Name, Func<Tensor, Tensor, Tensor> Op, Func<double, double, double> Ref, DType Out)[]
        {
            ("add", (x, y) => x + y, (x, y) => x + y, dt),
            ("sub", (x, y) => x - y, (x, y) => x - y, dt),
            ("mul", (x, y) => x * y, (x, y) => x * y, dt),
            ("div", (x, y) => x / y, (x, y) => x / y, dt.IsFloating() ? dt : DType.Float32),
            ("maximum", Tensor.Maximum, Math.Max, dt),
            ("minimum", Tensor.Minimum, Math.Min, dt),
        };
        foreach (var (name, op, rf, outType) in ops)
        {
            double tol = outType == dt ? 0 : 1e-7;
            var expAb = Ew.Zip(ha, hb, rf);
            var expBa = Ew.Zip(hb, ha, rf);
            using (var y = op(a, b)) Ew.Check(y, outType, vShape, expAb, tol, what: $"{name} view,view {view} {dt}");
            using (var y = op(a, bc)) Ew.Check(y, outType, vShape, expAb, tol, what: $"{name} view,contiguous {view} {dt}");
            using (var y = op(bc, a)) Ew.Check(y, outType, vShape, expBa, tol, what: $"{name} contiguous,view {view} {dt}");
        }
        using (var y = a * 3L) Ew.Check(y, dt, vShape, Ew.Map(ha, x => x * 3), what: $"view*3 {view}");
        using (var y = 2L - a) Ew.Check(y, dt, vShape, Ew.Map(ha, x => 2 - x), what: $"2-view {view}");
        using (var y = a.Gt(b)) Ew.CheckBool(y, vShape, ha.Zip(hb, (x, z) => x > z).ToArray(), $"gt {view}");
        using (var y = a.Le(bc)) Ew.CheckBool(y, vShape, ha.Zip(hb, (x, z) => x <= z).ToArray(), $"le {view}");
        using (var c = a.Gt(0.0))
        {
            var hc = ha.Select(x => x > 0).ToArray();
            using (var y = Tensor.Where(c, a, b)) Ew.Check(y, dt, vShape, ha.Zip(hb, (x, z) => x > 0 ? x : z).ToArray(), what: $"where {view}");
            using var cBase = aBase.Gt(0.0);
            using var cv = Views[view].Make(cBase); // a non-contiguous Bool condition
            using (var y = Tensor.Where(cv, bc, a)) Ew.Check(y, dt, vShape, hb.Zip(ha, (z, x) => x > 0 ? z : x).ToArray(), what: $"where view cond {view}");
            using (var y = cv.LogicalXor(c)) Ew.CheckBool(y, vShape, new bool[hc.Length], $"xor {view}");
            using (var y = cv.LogicalNot()) Ew.CheckBool(y, vShape, hc.Select(x => !x).ToArray(), $"not {view}");
            using (var y = b.MaskedFill(cv, 7)) Ew.Check(y, dt, vShape, ha.Zip(hb, (x, z) => x > 0 ? 7 : z).ToArray(), what: $"masked fill {view}");
        }
    }

    [Fact]
    public void MixedDtypeOnViews()
    {
        var av = Ew.Ints(240, 90, -20, 20);
        var bv = Ew.Stored(Ew.Uniform(240, 91, -3, 3), DType.Float32);
        using var a = Ew.Make(av, DType.Int32, 4, 6, 10);
        using var b = Ew.Make(bv, DType.Float32, 4, 6, 10);
        using var ap = a.Permute(2, 1, 0);
        using var bs = b.Transpose(0, 2);
        var ha = Ew.Permuted(av, [4, 6, 10], [2, 1, 0]);
        var hb = Ew.Permuted(bv, [4, 6, 10], [2, 1, 0]);
        using (var y = ap + bs) Ew.Check(y, DType.Float32, [10, 6, 4], Ew.Zip(ha, hb, (x, z) => x + z), 1e-7);
        using (var y = ap / ap) Ew.Check(y, DType.Float32, [10, 6, 4], Ew.Zip(ha, ha, (x, z) => x / z));
        using var l = Ew.Make(av, DType.Int64, 4, 6, 10);
        using var lp = l.Permute(2, 1, 0);
        using (var y = ap * lp) Ew.Check(y, DType.Int64, [10, 6, 4], Ew.Zip(ha, ha, (x, z) => x * z));
        using var e = ap.Exp();
        Ew.Check(e, DType.Float32, [10, 6, 4], Ew.Map(ha, Math.Exp), 1e-6);
    }

    [Fact]
    public void ViewsDoNotModifyTheirBase()
    {
        var bv = Ew.Uniform(60, 95, -1, 1);
        using var b = Ew.Make(bv, DType.Float64, 3, 4, 5);
        using var p = b.Permute(1, 2, 0);
        using (var y = p.Exp()) { }
        using (var y = p * p) { }
        Ew.Check(b, DType.Float64, [3, 4, 5], bv);
    }
}
