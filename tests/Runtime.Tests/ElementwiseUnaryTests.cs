namespace Runtime.Tests;

/// <summary>Unary elementwise functions: values against System.Math (or tabulated) references, special values, dtypes.</summary>
public class ElementwiseUnaryTests
{
    /// <param name="Tol32">relative tolerance for float32 results (0: exact)</param>
    /// <param name="Tol64">relative tolerance for float64 results (0: exact)</param>
    public sealed record Case(Func<Tensor, Tensor> Op, Func<double, double> Ref, Func<int, int, double[]> Gen, double Tol32, double Tol64, bool IntOk);

    private static double[] Quarters(int n, int seed) => Ew.Ints(n, seed, -40, 40).Select(v => v / 4).ToArray();

    private static double[] WithZeros(double[] v)
    {
        for (int i = 0; i < v.Length; i += 5) v[i] = 0;
        return v;
    }

    public static readonly Dictionary<string, Case> Cases = new()
    {
        ["neg"] = new(x => x.Neg(), v => -v, (n, s) => Ew.Uniform(n, s, -50, 50), 0, 0, true),
        ["neg_operator"] = new(x => -x, v => -v, (n, s) => Ew.Uniform(n, s, -50, 50), 0, 0, true),
        ["abs"] = new(x => x.Abs(), Math.Abs, (n, s) => Ew.Uniform(n, s, -50, 50), 0, 0, true),
        ["sign"] = new(x => x.Sign(), v => v > 0 ? 1 : v < 0 ? -1 : 0, (n, s) => WithZeros(Ew.Uniform(n, s, -5, 5)), 0, 0, true),
        ["exp"] = new(x => x.Exp(), Math.Exp, (n, s) => Ew.Uniform(n, s, -20, 20), 2e-6, 1e-14, false),
        ["log"] = new(x => x.Log(), Math.Log, (n, s) => Ew.Uniform(n, s, 1e-3, 1e3), 2e-6, 1e-14, false),
        ["log1p"] = new(x => x.Log1p(), Ew.Log1p, (n, s) => Ew.Uniform(n, s, -0.99, 10), 2e-6, 1e-14, false),
        ["sqrt"] = new(x => x.Sqrt(), Math.Sqrt, (n, s) => Ew.Uniform(n, s, 0, 1000), 0, 0, false),
        ["rsqrt"] = new(x => x.Rsqrt(), v => 1 / Math.Sqrt(v), (n, s) => Ew.Uniform(n, s, 1e-3, 1e3), 2e-7, 1e-15, false),
        ["reciprocal"] = new(x => x.Reciprocal(), v => 1 / v, (n, s) => Ew.Signed(n, s, 0.01, 100), 0, 0, false),
        ["square"] = new(x => x.Square(), v => v * v, (n, s) => Ew.Uniform(n, s, -100, 100), 0, 0, true),
        ["sin"] = new(x => x.Sin(), Math.Sin, (n, s) => Ew.Uniform(n, s, -10, 10), 2e-6, 1e-14, false),
        ["cos"] = new(x => x.Cos(), Math.Cos, (n, s) => Ew.Uniform(n, s, -10, 10), 2e-6, 1e-14, false),
        ["tanh"] = new(x => x.Tanh(), Math.Tanh, (n, s) => Ew.Uniform(n, s, -10, 10), 2e-6, 1e-14, false),
        ["sigmoid"] = new(x => x.Sigmoid(), Ew.Sigmoid, (n, s) => Ew.Uniform(n, s, -30, 30), 2e-6, 1e-14, false),
        ["relu"] = new(x => x.Relu(), v => v > 0 ? v : 0, (n, s) => Ew.Uniform(n, s, -10, 10), 0, 0, true),
        ["leaky_relu"] = new(x => x.LeakyRelu(0.1), v => v > 0 ? v : 0.1 * v, (n, s) => Ew.Uniform(n, s, -10, 10), 2.5e-7, 0, false),
        ["leaky_relu_default"] = new(x => x.LeakyRelu(), v => v > 0 ? v : 0.01 * v, (n, s) => Ew.Uniform(n, s, -10, 10), 2.5e-7, 0, false),
        ["gelu_tanh"] = new(x => x.Gelu(approximateTanh: true), Ew.GeluTanh, (n, s) => Ew.Uniform(n, s, -6, 6), 2e-6, 1e-12, false),
        ["softplus"] = new(x => x.Softplus(), v => Ew.Softplus(v, 1, 20), (n, s) => Ew.Uniform(n, s, -30, 30), 2e-6, 1e-14, false),
        ["softplus_beta2_threshold5"] = new(x => x.Softplus(2, 5), v => Ew.Softplus(v, 2, 5), (n, s) => Ew.Uniform(n, s, -10, 10), 2e-6, 1e-14, false),
        ["floor"] = new(x => x.Floor(), Math.Floor, Quarters, 0, 0, true),
        ["ceil"] = new(x => x.Ceil(), Math.Ceiling, Quarters, 0, 0, true),
        ["round"] = new(x => x.Round(), v => Math.Round(v, MidpointRounding.ToEven), Quarters, 0, 0, true),
        ["clamp_both"] = new(x => x.Clamp(-1, 2), v => Math.Clamp(v, -1, 2), Quarters, 0, 0, true),
        ["clamp_min"] = new(x => x.Clamp(min: 0.5), v => Math.Max(v, 0.5), Quarters, 0, 0, false),
        ["clamp_min_int"] = new(x => x.Clamp(min: -3), v => Math.Max(v, -3), Quarters, 0, 0, true),
        ["clamp_max"] = new(x => x.Clamp(max: -0.25), v => Math.Min(v, -0.25), Quarters, 0, 0, false),
        ["clamp_max_int"] = new(x => x.Clamp(max: 4), v => Math.Min(v, 4), Quarters, 0, 0, true),
        ["pow2"] = new(x => x.Pow(2.0), v => v * v, (n, s) => Ew.Uniform(n, s, -100, 100), 0, 0, false),
        ["pow1.5"] = new(x => x.Pow(1.5), v => Math.Pow(v, 1.5), (n, s) => Ew.Uniform(n, s, 0, 100), 1e-7, 1e-15, false),
        ["pow-0.5"] = new(x => x.Pow(-0.5), v => Math.Pow(v, -0.5), (n, s) => Ew.Uniform(n, s, 1e-3, 100), 1e-7, 1e-15, false),
    };

    public static IEnumerable<object[]> CaseNamesAndFloatTypes() =>
        from name in Cases.Keys from dt in Ew.FloatTypes select new object[] { name, dt };

    public static IEnumerable<object[]> IntCaseNames() =>
        from kv in Cases where kv.Value.IntOk from dt in new[] { DType.Int32, DType.Int64 } select new object[] { kv.Key, dt };

    [Theory]
    [MemberData(nameof(CaseNamesAndFloatTypes))]
    public void FloatValuesAtEveryLength(string name, DType dt)
    {
        var c = Cases[name];
        double tol = dt == DType.Float32 ? c.Tol32 : c.Tol64;
        double atol = tol == 0 ? 0 : dt == DType.Float32 ? 1e-7 : 1e-300;
        foreach (var n in Ew.Lengths)
        {
            var xv = Ew.Stored(c.Gen(n, n + 100), dt);
            using var x = Ew.Make(xv, dt);
            using var y = c.Op(x);
            Ew.Check(y, dt, Ew.Map(xv, c.Ref), tol, atol, what: $"{name} {dt} n={n}");
        }
    }

    [Theory]
    [MemberData(nameof(IntCaseNames))]
    public void IntegerInputsKeepDtype(string name, DType dt)
    {
        var c = Cases[name];
        foreach (var n in new[] { 1, 17, 1000, 100003 })
        {
            var xv = Ew.Ints(n, n, -1000, 1000);
            using var x = Ew.Make(xv, dt);
            using var y = c.Op(x);
            Ew.Check(y, dt, Ew.Map(xv, c.Ref), what: $"{name} {dt} n={n}");
        }
    }

    [Theory]
    [InlineData(DType.Int32)]
    [InlineData(DType.Int64)]
    [InlineData(DType.Bool)]
    public void FloatOnlyFunctionsTurnIntegersIntoFloat32(DType dt)
    {
        var xv = dt == DType.Bool ? new double[] { 1, 0, 1 } : [1, 2, 7];
        using var x = Ew.Make(xv, dt);
        const double t = 1e-6;
        using (var y = x.Exp()) Ew.Check(y, DType.Float32, Ew.Map(xv, Math.Exp), t, what: "exp");
        using (var y = x.Log()) Ew.Check(y, DType.Float32, Ew.Map(xv, Math.Log), t, what: "log");
        using (var y = x.Log1p()) Ew.Check(y, DType.Float32, Ew.Map(xv, Ew.Log1p), t, what: "log1p");
        using (var y = x.Sqrt()) Ew.Check(y, DType.Float32, Ew.Map(xv, Math.Sqrt), t, what: "sqrt");
        using (var y = x.Rsqrt()) Ew.Check(y, DType.Float32, Ew.Map(xv, v => 1 / Math.Sqrt(v)), t, what: "rsqrt");
        using (var y = x.Reciprocal()) Ew.Check(y, DType.Float32, Ew.Map(xv, v => 1 / v), t, what: "reciprocal");
        using (var y = x.Sin()) Ew.Check(y, DType.Float32, Ew.Map(xv, Math.Sin), t, t, what: "sin");
        using (var y = x.Cos()) Ew.Check(y, DType.Float32, Ew.Map(xv, Math.Cos), t, t, what: "cos");
        using (var y = x.Tanh()) Ew.Check(y, DType.Float32, Ew.Map(xv, Math.Tanh), t, what: "tanh");
        using (var y = x.Sigmoid()) Ew.Check(y, DType.Float32, Ew.Map(xv, Ew.Sigmoid), t, what: "sigmoid");
        using (var y = x.Erf()) Ew.Check(y, DType.Float32, Ew.Map(xv, v => v == 0 ? 0 : v == 1 ? 0.8427007929497149 : v == 2 ? 0.9953222650189527 : 1.0), t, what: "erf");
        using (var y = x.Gelu()) Ew.Check(y, DType.Float32, Ew.Map(xv, v => v == 0 ? 0 : v == 1 ? 0.8413447460685429 : v == 2 ? 1.9544997361036416 : 7), t, what: "gelu");
        using (var y = x.Softplus()) Ew.Check(y, DType.Float32, Ew.Map(xv, v => Ew.Softplus(v, 1, 20)), t, what: "softplus");
        using (var y = x.LeakyRelu()) Ew.Check(y, DType.Float32, xv, what: "leaky_relu");
    }

    [Fact]
    public void ErfKnownValues()
    {
        using (var x = Ew.F64(0.5, 1, 2, -3))
        using (var y = x.Erf())
            Ew.Check(y, DType.Float64, [0.5204998778130465, 0.8427007929497149, 0.9953222650189527, -0.9999779095030014], 1e-15);
        foreach (var dt in Ew.FloatTypes)
        {
            double tol = dt == DType.Float32 ? 1e-7 : 1e-15;
            // tile the table so every value lands in vector blocks, in the remainder and on the parallel path
            foreach (var n in new[] { Ew.ErfX.Length, 100003 })
            {
                var xv = Enumerable.Range(0, n).Select(i => Ew.ErfX[i % Ew.ErfX.Length]).ToArray();
                var ev = Enumerable.Range(0, n).Select(i => Ew.ErfY[i % Ew.ErfY.Length]).ToArray();
                using var x = Ew.Make(xv, dt);
                using var y = x.Erf();
                Ew.Check(y, dt, ev, tol, 1e-300, what: $"erf {dt} n={n}");
            }
            using var sp = Ew.Make([double.PositiveInfinity, double.NegativeInfinity, double.NaN, -0.0], dt);
            using var ys = sp.Erf();
            Ew.Check(ys, dt, [1, -1, double.NaN, 0], what: "erf specials");
        }
    }

    [Fact]
    public void GeluExactKnownValues()
    {
        using (var x = Ew.F64(1.0))
        using (var y = x.Gelu())
            Ew.Check(y, DType.Float64, [0.8413447460685429], 1e-15);
        foreach (var dt in Ew.FloatTypes)
        {
            double tol = dt == DType.Float32 ? 2e-7 : 1e-12;
            foreach (var n in new[] { Ew.ErfX.Length, 100003 })
            {
                var xv = Enumerable.Range(0, n).Select(i => Ew.ErfX[i % Ew.ErfX.Length]).ToArray();
                var ev = Enumerable.Range(0, n).Select(i => Ew.GeluY[i % Ew.GeluY.Length]).ToArray();
                using var x = Ew.Make(xv, dt);
                using var y = x.Gelu();
                Ew.Check(y, dt, ev, tol, 1e-300, what: $"gelu {dt} n={n}");
            }
            using var sp = Ew.Make([double.PositiveInfinity, double.NaN, -40], dt);
            using (var ys = sp.Gelu()) Ew.Check(ys, dt, [double.PositiveInfinity, double.NaN, 0], what: "gelu specials");
            using (var ys = sp.Gelu(approximateTanh: true)) Ew.Check(ys, dt, [double.PositiveInfinity, double.NaN, 0], what: "gelu tanh specials");
        }
        using (var x = Ew.F64(-3, -1, -0.5, 0, 0.5, 1, 3))
        using (var y = x.Gelu(approximateTanh: true))
            // values of 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            Ew.Check(y, DType.Float64, [-0.0036373920817729943, -0.15880800939172324, -0.15428599017485606, 0, 0.34571400982514394, 0.8411919906082768, 2.996362607918227], 1e-13);
    }

    private static double[] Tile(double[] v, int n) => Enumerable.Range(0, n).Select(i => v[i % v.Length]).ToArray();

    public static IEnumerable<object[]> FloatTypes() => Ew.FloatTypes.Select(t => new object[] { t });

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void SpecialValues(DType dt)
    {
        double inf = double.PositiveInfinity, nan = double.NaN;
        // 39 elements: each special value sits both in a vector block and in the scalar remainder
        void Run(string what, Func<Tensor, Tensor> op, double[] xs, double[] ys, double tol = 0, bool signedZero = false)
        {
            foreach (var n in new[] { xs.Length, 39 })
            {
                using var x = Ew.Make(Tile(xs, n), dt);
                using var y = op(x);
                Ew.Check(y, dt, Tile(ys, n), tol, tol == 0 ? 0 : 1e-300, signedZero, $"{what} {dt} n={n}");
            }
        }
        double tol = dt == DType.Float32 ? 2e-6 : 1e-15;
        Run("exp", x => x.Exp(), [0, -inf, inf, nan, 1, -1000, 1000], [1, 0, inf, nan, Math.E, 0, inf], tol);
        Run("log", x => x.Log(), [0, -1, 1, inf, nan, Math.E, -0.0], [-inf, nan, 0, inf, nan, 1, -inf], tol);
        Run("log1p", x => x.Log1p(), [-1, -2, 0, inf, nan, -0.0], [-inf, nan, 0, inf, nan, -0.0], signedZero: true);
        Run("sqrt", x => x.Sqrt(), [-1, 0, -0.0, inf, nan, 4], [nan, 0, -0.0, inf, nan, 2], signedZero: true);
        Run("rsqrt", x => x.Rsqrt(), [0, inf, -1, nan, 4, 0.25], [inf, 0, nan, nan, 0.5, 2]);
        Run("reciprocal", x => x.Reciprocal(), [0, -0.0, inf, -inf, nan, 4], [inf, -inf, 0, -0.0, nan, 0.25], signedZero: true);
        Run("sigmoid", x => x.Sigmoid(), [-inf, inf, 0, nan, 1000, -1000], [0, 1, 0.5, nan, 1, 0]);
        Run("tanh", x => x.Tanh(), [-inf, inf, 0, nan, 30, -30], [-1, 1, 0, nan, 1, -1]);
        Run("sin", x => x.Sin(), [inf, nan, 0], [nan, nan, 0]);
        Run("abs", x => x.Abs(), [-0.0, -inf, nan, -3], [0, inf, nan, 3], signedZero: true);
        Run("neg", x => x.Neg(), [0, -inf, nan, -3], [-0.0, inf, nan, 3], signedZero: true);
        Run("square", x => x.Square(), [-inf, nan, -3], [inf, nan, 9]);
        Run("relu", x => x.Relu(), [nan, -inf, inf, -2, 3], [nan, 0, inf, 0, 3]);
        Run("leaky_relu", x => x.LeakyRelu(0.5), [nan, -inf, inf, -2, 3], [nan, -inf, inf, -1, 3]);
        Run("softplus", x => x.Softplus(), [-inf, inf, nan, 0, 20.5, -100, 1000], [0, inf, nan, Math.Log(2), 20.5, Math.Exp(-100), 1000], tol);
        Run("softplus beta", x => x.Softplus(2, 5), [2.4, 2.6, -2], [Math.Log(1 + Math.Exp(4.8)) / 2, 2.6, Ew.Log1p(Math.Exp(-4)) / 2], tol);
        Run("floor", x => x.Floor(), [-0.5, 0.5, -inf, nan, -0.0, 2.999], [-1, 0, -inf, nan, -0.0, 2], signedZero: true);
        Run("ceil", x => x.Ceil(), [-0.5, 0.5, inf, nan, -0.0, 2.001], [-0.0, 1, inf, nan, -0.0, 3], signedZero: true);
        Run("clamp", x => x.Clamp(-1, 1), [nan, -inf, inf, 0.5], [nan, -1, 1, 0.5]);
        Run("clamp min", x => x.Clamp(min: 0), [nan, -inf, inf, -0.5], [nan, 0, inf, 0]);
        Run("clamp max", x => x.Clamp(max: 0), [nan, -inf, inf, 0.5], [nan, -inf, 0, 0]);
        Run("clamp min>max", x => x.Clamp(2, 1), [0, 1.5, 3], [1, 1, 1]);
        Run("pow", x => x.Pow(2.0), [nan, -inf, -3], [nan, inf, 9]);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void RoundHalfToEven(DType dt)
    {
        double[] xs = [0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 0.49999997, 2.4999, -0.0, 1e7 + 0.5, double.NaN, double.PositiveInfinity, 0.25, -0.75];
        double[] ys = [0, 2, 2, 4, -0.0, -2, -2, 0, 2, -0.0, 1e7, double.NaN, double.PositiveInfinity, 0, -1];
        foreach (var n in new[] { xs.Length, 47 })
        {
            var xv = Tile(xs, n);
            using var x = Ew.Make(xv, dt);
            using var y = x.Round();
            Ew.Check(y, dt, Tile(ys, n), signedZero: true, what: $"round {dt}");
        }
    }

    [Fact]
    public void Log1pIsAccurateNearZero()
    {
        double[] xs = [1e-300, 1e-10, -1e-10, 1e-5, -1e-5, 9.9e-5, 1.01e-4, -1.01e-4, 3e-4, -3e-4, 1e-3, 2e-2, -2e-2, 0.5];
        using var x = Ew.F64(xs);
        using var y = x.Log1p();
        Ew.Check(y, DType.Float64, Ew.Map(xs, Ew.Log1p), 1e-15, 1e-320);
    }

    [Fact]
    public void UnaryOnScalarTensor()
    {
        using var s = Tensor.Scalar(0.25, DType.Float64);
        using (var y = s.Sqrt()) Ew.Check(y, DType.Float64, [], [0.5]);
        using (var y = s.Exp()) Ew.Check(y, DType.Float64, [], [Math.Exp(0.25)]);
        using (var y = -s) Ew.Check(y, DType.Float64, [], [-0.25]);
    }

    [Fact]
    public void ClampNeedsABound()
    {
        using var x = Ew.F32(1, 2);
        var e = Assert.Throws<ArgumentException>(() => x.Clamp());
        Assert.Contains("min", e.Message);
    }
}
