using Runtime.Autograd;

namespace Runtime.Tests;

/// <summary>Float64 finite-difference checks of every differentiable elementwise operator, plus hand-derived gradients.</summary>
public class ElementwiseGradTests
{
    private static double[] AwayFrom(double[] v, params double[] kinks)
    {
        // keep every value at least 0.05 from the points where the function is not differentiable
        for (int i = 0; i < v.Length; i++)
            foreach (var k in kinks)
                if (Math.Abs(v[i] - k) < 0.05) v[i] = k + (v[i] >= k ? 0.05 : -0.05) + 0.01;
        return v;
    }

    private static double[] AwayFromIntegers(double[] v, bool halves)
    {
        for (int i = 0; i < v.Length; i++)
        {
            double step = halves ? 0.5 : 1;
            double nearest = Math.Round(v[i] / step) * step;
            if (Math.Abs(v[i] - nearest) < 0.05) v[i] = nearest + 0.1;
        }
        return v;
    }

    public sealed record UCase(Func<Tensor, Tensor> Op, Func<int, int, double[]> Gen);

    public static readonly Dictionary<string, UCase> Unary = new()
    {
        ["neg"] = new(x => x.Neg(), (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["neg_operator"] = new(x => -x, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["abs"] = new(x => x.Abs(), (n, s) => Ew.Signed(n, s, 0.2, 2)),
        ["sign"] = new(x => x.Sign(), (n, s) => Ew.Signed(n, s, 0.2, 2)),
        ["exp"] = new(x => x.Exp(), (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["log"] = new(x => x.Log(), (n, s) => Ew.Uniform(n, s, 0.2, 3)),
        ["log1p"] = new(x => x.Log1p(), (n, s) => Ew.Uniform(n, s, -0.6, 3)),
        ["sqrt"] = new(x => x.Sqrt(), (n, s) => Ew.Uniform(n, s, 0.2, 3)),
        ["rsqrt"] = new(x => x.Rsqrt(), (n, s) => Ew.Uniform(n, s, 0.2, 3)),
        ["reciprocal"] = new(x => x.Reciprocal(), (n, s) => Ew.Signed(n, s, 0.3, 2)),
        ["square"] = new(x => x.Square(), (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["sin"] = new(x => x.Sin(), (n, s) => Ew.Uniform(n, s, -3, 3)),
        ["cos"] = new(x => x.Cos(), (n, s) => Ew.Uniform(n, s, -3, 3)),
        ["tanh"] = new(x => x.Tanh(), (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["sigmoid"] = new(x => x.Sigmoid(), (n, s) => Ew.Uniform(n, s, -4, 4)),
        ["erf"] = new(x => x.Erf(), (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["relu"] = new(x => x.Relu(), (n, s) => Ew.Signed(n, s, 0.1, 2)),
        ["leaky_relu"] = new(x => x.LeakyRelu(0.1), (n, s) => Ew.Signed(n, s, 0.1, 2)),
        ["leaky_relu_default"] = new(x => x.LeakyRelu(), (n, s) => Ew.Signed(n, s, 0.1, 2)),
        ["gelu"] = new(x => x.Gelu(), (n, s) => Ew.Uniform(n, s, -3, 3)),
        ["gelu_tanh"] = new(x => x.Gelu(approximateTanh: true), (n, s) => Ew.Uniform(n, s, -3, 3)),
        ["softplus"] = new(x => x.Softplus(), (n, s) => Ew.Uniform(n, s, -4, 4)),
        // beta x crosses the threshold 3 inside the range, away from x = 1.5
        ["softplus_beta2_threshold3"] = new(x => x.Softplus(2, 3), (n, s) => AwayFrom(Ew.Uniform(n, s, -2, 3), 1.5)),
        ["floor"] = new(x => x.Floor(), (n, s) => AwayFromIntegers(Ew.Uniform(n, s, -3, 3), false)),
        ["ceil"] = new(x => x.Ceil(), (n, s) => AwayFromIntegers(Ew.Uniform(n, s, -3, 3), false)),
        ["round"] = new(x => x.Round(), (n, s) => AwayFromIntegers(Ew.Uniform(n, s, -3, 3), true)),
        ["clamp_both"] = new(x => x.Clamp(-0.5, 0.5), (n, s) => AwayFrom(Ew.Uniform(n, s, -1, 1), -0.5, 0.5)),
        ["clamp_min"] = new(x => x.Clamp(min: 0.2), (n, s) => AwayFrom(Ew.Uniform(n, s, -1, 1), 0.2)),
        ["clamp_max"] = new(x => x.Clamp(max: -0.1), (n, s) => AwayFrom(Ew.Uniform(n, s, -1, 1), -0.1)),
        ["pow2"] = new(x => x.Pow(2.0), (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["pow3"] = new(x => x.Pow(3.0), (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["pow0.5"] = new(x => x.Pow(0.5), (n, s) => Ew.Uniform(n, s, 0.2, 3)),
        ["pow-1.5"] = new(x => x.Pow(-1.5), (n, s) => Ew.Uniform(n, s, 0.2, 3)),
        ["maximum_scalar"] = new(x => x.Maximum(0.3), (n, s) => AwayFrom(Ew.Uniform(n, s, -1, 1), 0.3)),
        ["minimum_scalar"] = new(x => x.Minimum(0.3), (n, s) => AwayFrom(Ew.Uniform(n, s, -1, 1), 0.3)),
        ["add_scalar"] = new(x => x + 2.0, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["scalar_add"] = new(x => 2L + x, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["sub_scalar"] = new(x => x - 3L, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["scalar_sub"] = new(x => 1.5 - x, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["mul_scalar"] = new(x => x * 2.5, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["scalar_mul"] = new(x => -3L * x, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["div_scalar"] = new(x => x / 4.0, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["div_long"] = new(x => x / 3L, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["scalar_div"] = new(x => 4.0 / x, (n, s) => Ew.Signed(n, s, 0.3, 2)),
        ["long_div"] = new(x => 3L / x, (n, s) => Ew.Signed(n, s, 0.3, 2)),
        ["scalar_pow"] = new(x => { using var two = Tensor.Scalar(2, DType.Float64); return Tensor.Pow(two, x); }, (n, s) => Ew.Uniform(n, s, -2, 2)),
        ["pow_scalar_tensor"] = new(x => { using var e = Tensor.Scalar(2.5, DType.Float64); return Tensor.Pow(x, e); }, (n, s) => Ew.Uniform(n, s, 0.2, 3)),
        ["masked_fill"] = new(x => { using var m = Tensor.From(new[] { true, false, false, true }); return x.MaskedFill(m, -1); }, (n, s) => Ew.Uniform(n, s, -2, 2)),
    };

    public static IEnumerable<object[]> UnaryNames() => Unary.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(UnaryNames))]
    public void UnaryGradCheck(string name)
    {
        var c = Unary[name];
        // contiguous [3,4]
        using (var x = Ew.Make(c.Gen(12, 1), DType.Float64, 3, 4))
            TestUtil.GradCheck(t => c.Op(t[0]), [x]);
        // permuted: a [4,3] leaf used as [3,4]
        using (var x = Ew.Make(c.Gen(12, 2), DType.Float64, 4, 3))
            TestUtil.GradCheck(t => { using var p = t[0].Permute(1, 0); return c.Op(p); }, [x]);
        // step slice: every other column of a [3,8] leaf; the skipped elements get zero gradient
        using (var x = Ew.Make(c.Gen(24, 3), DType.Float64, 3, 8))
        {
            TestUtil.GradCheck(t => { using var s = t[0].Slice(1, 1, 8, 2); return c.Op(s); }, [x]);
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 8; j += 2)
                    Assert.Equal(0.0, x.Grad!.ToDoubleArray()[i * 8 + j]);
        }
        // expanded: a [3,1] leaf broadcast to [3,4]; its gradient is summed over the copies
        using (var x = Ew.Make(c.Gen(3, 4), DType.Float64, 3, 1))
        {
            TestUtil.GradCheck(t => { using var e = t[0].Expand(3, 4); return c.Op(e); }, [x]);
            TestUtil.AssertShape(x.Grad!, 3, 1);
        }
    }

    public sealed record BCase(Func<Tensor, Tensor, Tensor> Op, Func<int, int, double[]> GenA, Func<int, int, double[]> GenB);

    private static double[] Any(int n, int s) => Ew.Uniform(n, s, -2, 2);

    private static double[] Positive(int n, int s) => Ew.Uniform(n, s, 0.3, 2);

    private static double[] NonZero(int n, int s) => Ew.Signed(n, s, 0.3, 2);

    public static readonly Dictionary<string, BCase> Binary = new()
    {
        ["add"] = new((a, b) => a + b, Any, Any),
        ["sub"] = new((a, b) => a - b, Any, Any),
        ["mul"] = new((a, b) => a * b, Any, Any),
        ["div"] = new((a, b) => a / b, Any, NonZero),
        ["pow"] = new(Tensor.Pow, Positive, Any),
        ["maximum"] = new(Tensor.Maximum, Any, Any),
        ["minimum"] = new(Tensor.Minimum, Any, Any),
        ["where"] = new((a, b) =>
        {
            using var c = Tensor.From(new[] { true, false, true, true, false, false, true, false, true, false, false, true }, 3, 4);
            return Tensor.Where(c, a, b);
        }, Any, Any),
        ["where_broadcast_cond"] = new((a, b) =>
        {
            using var c = Tensor.From(new[] { true, false, true }, 3, 1);
            return Tensor.Where(c, a, b);
        }, Any, Any),
        ["mul_then_add"] = new((a, b) => { using var p = a * b; return p + a; }, Any, Any),
    };

    public static IEnumerable<object[]> BinaryCases() =>
        from name in Binary.Keys
        from shapes in new[] { "same", "col_row", "cube_vec", "scalar_matrix", "matrix_scalar", "views" }
        select new object[] { name, shapes };

    [Theory]
    [MemberData(nameof(BinaryCases))]
    public void BinaryGradCheck(string name, string shapes)
    {
        var c = Binary[name];
        (int[] sa, int[] sb) = shapes switch
        {
            "same" => (new[] { 3, 4 }, new[] { 3, 4 }),
            "col_row" => ([3, 1], [1, 4]),
            "cube_vec" => ([2, 3, 4], [4]),
            "scalar_matrix" => ([], [3, 4]),
            "matrix_scalar" => ([3, 4], []),
            _ => ([4, 3], [3, 8]),
        };
        int na = sa.Aggregate(1, (p, d) => p * d), nb = sb.Aggregate(1, (p, d) => p * d);
        using var a = Ew.MakeAs(c.GenA(na, 10), DType.Float64, sa);
        using var b = Ew.MakeAs(c.GenB(nb, 11), DType.Float64, sb);
        Assert.Equal(sa.Length, a.Rank);
        Assert.Equal(sb.Length, b.Rank);
        Func<Tensor[], Tensor> f = shapes == "views"
            ? t => { using var p = t[0].Permute(1, 0); using var s = t[1].Slice(1, 0, 8, 2); return c.Op(p, s); }
            : t => c.Op(t[0], t[1]);
        TestUtil.GradCheck(f, [a, b]);
        Assert.Equal(sa, a.Grad!.Shape.ToArray());
        Assert.Equal(sb, b.Grad!.Shape.ToArray());
        Assert.Equal(DType.Float64, a.Grad.DType);
        Assert.Equal(DType.Float64, b.Grad.DType);
    }

    [Fact]
    public void BroadcastGradientsAreSummedHandValues()
    {
        using var a = Ew.Make([1, 2, 3], DType.Float64, 3, 1).RequiresGrad_();
        using var b = Ew.Make([10, 20, 30, 40], DType.Float64, 1, 4).RequiresGrad_();
        using (var y = a * b)
        using (var s = y.Sum())
            s.Backward();
        // d/da_i = sum_j b_j = 100; d/db_j = sum_i a_i = 6
        Ew.Check(a.Grad!, DType.Float64, [3, 1], [100, 100, 100]);
        Ew.Check(b.Grad!, DType.Float64, [1, 4], [6, 6, 6, 6]);

        using var v = Ew.Make([1, 2, 3, 4], DType.Float64, 4).RequiresGrad_();
        using var m = Tensor.Ones([2, 3, 4], DType.Float64).RequiresGrad_();
        using (var y = m - v)
        using (var s = y.Sum())
            s.Backward();
        Ew.Check(v.Grad!, DType.Float64, [4], [-6, -6, -6, -6]);
        Ew.Check(m.Grad!, DType.Float64, [2, 3, 4], Enumerable.Repeat(1.0, 24).ToArray());

        using var z = Tensor.Scalar(2, DType.Float64).RequiresGrad_();
        using var w = Ew.Make([1, 2, 3, 4, 5, 6], DType.Float64, 2, 3).RequiresGrad_();
        using (var y = w / z)
        using (var s = y.Sum())
            s.Backward();
        // d/dz sum(w / z) = -sum(w) / z^2 = -21 / 4
        Ew.Check(z.Grad!, DType.Float64, [], [-5.25]);
        Ew.Check(w.Grad!, DType.Float64, [2, 3], Enumerable.Repeat(0.5, 6).ToArray());
    }

    [Fact]
    public void MaximumMinimumTiesSplitTheGradient()
    {
        foreach (var max in new[] { true, false })
        {
            using var a = Ew.F64(1, 2, 3, -1).RequiresGrad_();
            using var b = Ew.F64(1, 5, 0, -1).RequiresGrad_();
            using (var y = max ? Tensor.Maximum(a, b) : Tensor.Minimum(a, b))
            using (var s = y.Sum())
                s.Backward();
            if (max)
            {
                Ew.Check(a.Grad!, DType.Float64, [0.5, 0, 1, 0.5]);
                Ew.Check(b.Grad!, DType.Float64, [0.5, 1, 0, 0.5]);
            }
            else
            {
                Ew.Check(a.Grad!, DType.Float64, [0.5, 1, 0, 0.5]);
                Ew.Check(b.Grad!, DType.Float64, [0.5, 0, 1, 0.5]);
            }
        }
        // ties under broadcasting: [3,1] against [1,2], the halves summed back
        using var c = Ew.Make([1, 2, 3], DType.Float64, 3, 1).RequiresGrad_();
        using var r = Ew.Make([2, 0], DType.Float64, 1, 2).RequiresGrad_();
        using (var y = Tensor.Maximum(c, r))
        using (var s = y.Sum())
            s.Backward();
        // pairs (c, r): (1,2) r wins, (1,0) c; (2,2) tie, (2,0) c; (3,2) c, (3,0) c
        Ew.Check(c.Grad!, DType.Float64, [3, 1], [1, 1.5, 2]);
        Ew.Check(r.Grad!, DType.Float64, [1, 2], [1.5, 0]);
        // against a scalar
        using var x = Ew.F64(0.5, 1, 0).RequiresGrad_();
        using (var y = x.Maximum(0.5))
        using (var s = y.Sum())
            s.Backward();
        Ew.Check(x.Grad!, DType.Float64, [0.5, 1, 0]);
    }

    [Fact]
    public void ClampGradientPassesOnClosedInterval()
    {
        using var x = Ew.F64(-1, 0, 0.5, 1, 2).RequiresGrad_();
        using (var y = x.Clamp(0, 1))
        using (var s = y.Sum())
            s.Backward();
        Ew.Check(x.Grad!, DType.Float64, [0, 1, 1, 1, 0]);
        using var x2 = Ew.F64(-1, 0, 2).RequiresGrad_();
        using (var y = x2.Clamp(min: 0))
        using (var s = y.Sum())
            s.Backward();
        Ew.Check(x2.Grad!, DType.Float64, [0, 1, 1]);
    }

    [Fact]
    public void KinkGradientsFollowPyTorch()
    {
        // relu'(0) = 0, |x|'(0) = 0, leaky_relu'(0) = slope
        using var x = Ew.F64(0, 0, 0).RequiresGrad_();
        using (var r = x.Relu())
        using (var a = x.Abs())
        using (var l = x.LeakyRelu(0.2))
        using (var s1 = r + a)
        using (var s2 = s1 + l)
        using (var s = s2.Sum())
            s.Backward();
        Ew.Check(x.Grad!, DType.Float64, [0.2, 0.2, 0.2], 1e-15);
    }

    [Fact]
    public void PowGradientWithZeroExponentIsZeroNotNaN()
    {
        // d/dx x^0 = 0 everywhere, x = 0 included (PyTorch masks it); not 0 * 0^-1 = NaN
        using var x = Ew.F64(0, 1, -2).RequiresGrad_();
        using (var y = x.Pow(0.0))
        using (var s = y.Sum())
            s.Backward();
        Ew.Check(x.Grad!, DType.Float64, [0, 0, 0]);

        using var a = Ew.F64(0, 1, 2, 0).RequiresGrad_();
        using var e = Ew.F64(0, 0, 1, 2).RequiresGrad_();
        using (var y = Tensor.Pow(a, e))
        using (var s = y.Sum())
            s.Backward();
        // d/da = e a^(e-1), 0 where e == 0; d/de = a^e log a, 0 where a == 0
        Ew.Check(a.Grad!, DType.Float64, [0, 0, 1, 0]);
        Ew.Check(e.Grad!, DType.Float64, [0, 0, 2 * Math.Log(2), 0], 1e-15);
    }

    [Fact]
    public void MixedDtypeGradientsComeBackInEachInputsDtype()
    {
        using var a = Ew.F32(1.5, -2, 0.25).RequiresGrad_();
        using var b = Ew.F64(2, 4, -8).RequiresGrad_();
        // tolB: pow's exponent gradient y * log(a) takes log of the float32 base in float32 (as PyTorch does)
        void Run(Func<Tensor, Tensor, Tensor> op, double[] ga, double[] gb, string what, double tolB = 1e-12)
        {
            a.Grad?.Dispose(); a.Grad = null;
            b.Grad?.Dispose(); b.Grad = null;
            using (var y = op(a, b))
            {
                Assert.Equal(DType.Float64, y.DType);
                using var s = y.Sum();
                s.Backward();
            }
            Ew.Check(a.Grad!, DType.Float32, [3], ga, 1e-6, 1e-7, what: what + " a");
            Ew.Check(b.Grad!, DType.Float64, [3], gb, tolB, 1e-14, what: what + " b");
        }
        double[] av = [1.5, -2, 0.25], bv = [2, 4, -8];
        Run((x, y) => x + y, [1, 1, 1], [1, 1, 1], "add");
        Run((x, y) => y - x, [-1, -1, -1], [1, 1, 1], "sub");
        Run((x, y) => x * y, bv, av, "mul");
        Run((x, y) => x / y, Ew.Map(bv, v => 1 / v), Ew.Zip(av, bv, (p, q) => -p / (q * q)), "div");
        Run((x, y) => Tensor.Maximum(x, y), [0, 0, 1], [1, 1, 0], "maximum");
        Run((x, y) => Tensor.Minimum(y, x), [1, 1, 0], [0, 0, 1], "minimum");
        using var c = Ew.B(true, false, true);
        Run((x, y) => Tensor.Where(c, x, y), [1, 0, 1], [0, 1, 0], "where");
        Run((x, y) => { using var ax = x.Abs(); return Tensor.Pow(ax, y); },
            Ew.Zip(av, bv, (p, q) => Math.Sign(p) * q * Math.Pow(Math.Abs(p), q - 1)),
            Ew.Zip(av, bv, (p, q) => Math.Pow(Math.Abs(p), q) * Math.Log(Math.Abs(p))), "pow", tolB: 1e-6);

        // float32 leaf with a float64 0-D scalar tensor
        using var s0 = Tensor.Scalar(3, DType.Float64).RequiresGrad_();
        using var m = Ew.Make([1, 2, 3, 4], DType.Float32, 2, 2).RequiresGrad_();
        using (var y = m * s0)
        using (var s = y.Sum())
            s.Backward();
        Ew.Check(m.Grad!, DType.Float32, [2, 2], [3, 3, 3, 3]);
        Ew.Check(s0.Grad!, DType.Float64, [], [10]);
    }

    public static IEnumerable<object[]> FloatTypes() => Ew.FloatTypes.Select(t => new object[] { t });

    /// <summary>Gradients against hand-derived derivatives, tight enough in float64 to catch a wrong constant.</summary>
    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void UnaryGradientsMatchDerivatives(DType dt)
    {
        double tol = dt == DType.Float32 ? 2e-6 : 1e-13, atol = dt == DType.Float32 ? 1e-7 : 1e-15;
        double[] xs = [-1.5, -0.25, 0.5, 2], ps = [0.25, 0.5, 1.5, 2];
        void Run(Func<Tensor, Tensor> op, Func<double, double> d, string what, bool positive = false)
        {
            var xv = positive ? ps : xs;
            using var x = Ew.Make(xv, dt).RequiresGrad_();
            using (var y = op(x))
            using (var s = y.Sum())
                s.Backward();
            Ew.Check(x.Grad!, dt, [4], Ew.Map(xv, d), tol, atol, what: $"{what} {dt}");
        }
        double Sig(double v) => Ew.Sigmoid(v);
        Run(t => t.Neg(), _ => -1, "neg");
        Run(t => t.Exp(), Math.Exp, "exp");
        Run(t => t.Log(), v => 1 / v, "log", positive: true);
        Run(t => t.Log1p(), v => 1 / (1 + v), "log1p", positive: true);
        Run(t => t.Sqrt(), v => 0.5 / Math.Sqrt(v), "sqrt", positive: true);
        Run(t => t.Rsqrt(), v => -0.5 * Math.Pow(v, -1.5), "rsqrt", positive: true);
        Run(t => t.Reciprocal(), v => -1 / (v * v), "reciprocal");
        Run(t => t.Square(), v => 2 * v, "square");
        Run(t => t.Sin(), Math.Cos, "sin");
        Run(t => t.Cos(), v => -Math.Sin(v), "cos");
        Run(t => t.Tanh(), v => 1 - Math.Tanh(v) * Math.Tanh(v), "tanh");
        Run(t => t.Sigmoid(), v => Sig(v) * (1 - Sig(v)), "sigmoid");
        Run(t => t.Erf(), v => 2 / Math.Sqrt(Math.PI) * Math.Exp(-v * v), "erf");
        Run(t => t.Gelu(), v => 0.5 * (1 + ErfOverSqrt2(v)) + v * Math.Exp(-v * v / 2) / Math.Sqrt(2 * Math.PI), "gelu");
        Run(t => t.Gelu(approximateTanh: true), v =>
        {
            double k = Math.Sqrt(2 / Math.PI), th = Math.Tanh(k * (v + 0.044715 * v * v * v));
            return 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * k * (1 + 3 * 0.044715 * v * v);
        }, "gelu_tanh");
        Run(t => t.Relu(), v => v > 0 ? 1 : 0, "relu");
        Run(t => t.LeakyRelu(0.2), v => v > 0 ? 1 : 0.2, "leaky_relu");
        Run(t => t.Softplus(), Sig, "softplus");
        Run(t => t.Softplus(2, 3), v => 2 * v > 3 ? 1 : Sig(2 * v), "softplus beta threshold");
        Run(t => t.Abs(), v => Math.Sign(v), "abs");
        Run(t => t.Sign(), _ => 0, "sign");
        Run(t => t.Round(), _ => 0, "round");
        Run(t => t.Clamp(-1, 1), v => v >= -1 && v <= 1 ? 1 : 0, "clamp");
        Run(t => t.Pow(3.0), v => 3 * v * v, "pow 3");
        Run(t => t.Pow(-0.5), v => -0.5 * Math.Pow(v, -1.5), "pow -0.5", positive: true);
        Run(t => t * 2L, _ => 2, "mul long");
        Run(t => 1.0 / t, v => -1 / (v * v), "rdiv");
        Run(t => 3.0 - t, _ => -1, "rsub");
    }

    /// <summary>erf(v / sqrt(2)) at the inputs of UnaryGradientsMatchDerivatives, from CPython's math.erf.</summary>
    private static double ErfOverSqrt2(double v) => v switch
    {
        -1.5 => -0.8663855974622838,
        -0.25 => -0.19741265136584743,
        0.5 => 0.3829249225480262,
        2 => 0.9544997361036416,
        _ => throw new ArgumentException($"no erf value for {v}"),
    };

    [Fact]
    public void IntegerOperandsCarryNoGradient()
    {
        using var x = Ew.F64(1, 2, 3).RequiresGrad_();
        using var k = Ew.I32(4, 5, 6);
        using (var y = x * k)
        {
            Assert.Equal(DType.Float64, y.DType);
            using var s = y.Sum();
            s.Backward();
        }
        Ew.Check(x.Grad!, DType.Float64, [4, 5, 6]);
        Assert.Throws<InvalidOperationException>(() => k.RequiresGrad = true);
        // comparisons and logical ops never require grad
        using (var c = x.Gt(1.5)) Assert.False(c.RequiresGrad);
        using (var c = x.Eq(x)) Assert.False(c.RequiresGrad);
        using (var c = x.LogicalNot()) Assert.False(c.RequiresGrad);
        using (GradMode.NoGrad())
        using (var y = x.Exp()) Assert.False(y.RequiresGrad);
    }

    [Fact]
    public void ZeroSizeGradient()
    {
        using var x = Tensor.Zeros([0, 3], DType.Float64).RequiresGrad_();
        using var v = Ew.F64(1, 2, 3).RequiresGrad_();
        using (var y = x * v)
        using (var e = y.Exp())
        using (var s = e.Sum())
            s.Backward();
        Ew.Check(x.Grad!, DType.Float64, [0, 3], []);
        Ew.Check(v.Grad!, DType.Float64, [3], [0, 0, 0]);
    }

    [Fact]
    public void GradientOnLargeNonContiguousInput()
    {
        // parallel kernels in forward and backward: 300 x 200 permuted
        var xv = Ew.Uniform(60000, 99, -2, 2);
        using var x = Ew.Make(xv, DType.Float64, 300, 200).RequiresGrad_();
        using (var p = x.Transpose(0, 1))
        using (var t = p.Tanh())
        using (var m = t * p)
        using (var s = m.Sum())
            s.Backward();
        // d/dx (x tanh x) = tanh x + x (1 - tanh^2 x)
        Ew.Check(x.Grad!, DType.Float64, [300, 200], Ew.Map(xv, v => Math.Tanh(v) + v * (1 - Math.Tanh(v) * Math.Tanh(v))), 1e-13, 1e-15);
    }
}
