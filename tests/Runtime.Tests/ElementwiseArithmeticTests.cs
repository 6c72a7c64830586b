namespace Runtime.Tests;

/// <summary>Add/Sub/Mul/Div/Pow/Maximum/Minimum: values, scalar operands, dtype promotion, broadcasting.</summary>
public class ElementwiseArithmeticTests
{
    public static IEnumerable<object[]> LengthsAndTypes()
    {
        foreach (var n in Ew.Lengths)
            foreach (var dt in new[] { DType.Float32, DType.Float64, DType.Int32, DType.Int64 })
                yield return [n, dt];
    }

    [Theory]
    [MemberData(nameof(LengthsAndTypes))]
    public void TensorTensorOpsMatchReference(int n, DType dt)
    {
        bool fl = dt.IsFloating();
        var av = Ew.Stored(fl ? Ew.Uniform(n, 1, -100, 100) : Ew.Ints(n, 1, -1000, 1000), dt);
        var bv = Ew.Stored(fl ? Ew.Signed(n, 2, 0.5, 50) : Ew.Ints(n, 2, -1000, 1000), dt);
        // make some ties so Maximum/Minimum see equal operands
        for (int i = 0; i < n; i += 7) bv[i] = av[i];
        using var a = Ew.Make(av, dt);
        using var b = Ew.Make(bv, dt);
        using (var y = a + b) Ew.Check(y, dt, Ew.Zip(av, bv, (x, z) => x + z), what: "add");
        using (var y = a - b) Ew.Check(y, dt, Ew.Zip(av, bv, (x, z) => x - z), what: "sub");
        using (var y = b - a) Ew.Check(y, dt, Ew.Zip(bv, av, (x, z) => x - z), what: "sub reversed");
        using (var y = a * b) Ew.Check(y, dt, Ew.Zip(av, bv, (x, z) => x * z), what: "mul");
        using (var y = Tensor.Maximum(a, b)) Ew.Check(y, dt, Ew.Zip(av, bv, Math.Max), what: "maximum");
        using (var y = a.Minimum(b)) Ew.Check(y, dt, Ew.Zip(av, bv, Math.Min), what: "minimum");
        if (fl)
        {
            // float32 a / b is the float64 quotient of the float32 values, rounded once
            using (var y = a / b) Ew.Check(y, dt, Ew.Zip(av, bv, (x, z) => x / z), what: "div");
        }
        else
        {
            var nz = Ew.Stored(Ew.Signed(n, 3, 1, 60).Select(v => Math.Round(v)).ToArray(), dt);
            using var d = Ew.Make(nz, dt);
            using var y = a / d;
            Ew.Check(y, DType.Float32, Ew.Zip(av, nz, (x, z) => x / z), what: "int div");
        }
    }

    [Theory]
    [MemberData(nameof(LengthsAndTypes))]
    public void TensorScalarOpsBothOrders(int n, DType dt)
    {
        bool fl = dt.IsFloating();
        var av = Ew.Stored(fl ? Ew.Uniform(n, 4, -100, 100) : Ew.Ints(n, 4, -1000, 1000), dt);
        using var a = Ew.Make(av, dt);
        // long scalars keep every non-Bool dtype
        using (var y = a + 3L) Ew.Check(y, dt, Ew.Map(av, x => x + 3), what: "a + 3L");
        using (var y = 3L + a) Ew.Check(y, dt, Ew.Map(av, x => 3 + x), what: "3L + a");
        using (var y = a - 7L) Ew.Check(y, dt, Ew.Map(av, x => x - 7), what: "a - 7L");
        using (var y = 7L - a) Ew.Check(y, dt, Ew.Map(av, x => 7 - x), what: "7L - a");
        using (var y = a * -3L) Ew.Check(y, dt, Ew.Map(av, x => x * -3), what: "a * -3L");
        using (var y = -3L * a) Ew.Check(y, dt, Ew.Map(av, x => -3 * x), what: "-3L * a");
        var divType = fl ? dt : DType.Float32;
        using (var y = a / 4L) Ew.Check(y, divType, Ew.Map(av, x => x / 4), what: "a / 4L");
        // double scalars: a float tensor keeps its dtype (the scalar is rounded to it), integers become Float32
        var st = fl ? dt : DType.Float32;
        double s = dt == DType.Float32 ? (float)0.1 : 0.1; // what the scalar becomes
        using (var y = a + 0.1) Ew.Check(y, st, Ew.Map(av, x => x + s), rtol: fl ? 0 : 2e-7, what: "a + 0.1");
        using (var y = 0.1 + a) Ew.Check(y, st, Ew.Map(av, x => s + x), rtol: fl ? 0 : 2e-7, what: "0.1 + a");
        using (var y = a - 0.1) Ew.Check(y, st, Ew.Map(av, x => x - s), rtol: fl ? 0 : 2e-7, what: "a - 0.1");
        using (var y = 0.1 - a) Ew.Check(y, st, Ew.Map(av, x => s - x), rtol: fl ? 0 : 2e-7, what: "0.1 - a");
        using (var y = a * 0.1) Ew.Check(y, st, Ew.Map(av, x => x * s), rtol: fl ? 0 : 2e-7, what: "a * 0.1");
        using (var y = 0.1 * a) Ew.Check(y, st, Ew.Map(av, x => s * x), rtol: fl ? 0 : 2e-7, what: "0.1 * a");
        using (var y = a / 2.5) Ew.Check(y, st, Ew.Map(av, x => x / 2.5), rtol: fl ? 0 : 2e-7, what: "a / 2.5");
        var nz = Ew.Stored(fl ? Ew.Signed(n, 5, 0.5, 50) : Ew.Signed(n, 5, 1, 60).Select(v => Math.Round(v)).ToArray(), dt);
        using var d = Ew.Make(nz, dt);
        using (var y = 2.5 / d) Ew.Check(y, st, Ew.Map(nz, x => 2.5 / x), rtol: fl ? 0 : 2e-7, what: "2.5 / d");
        using (var y = 9L / d) Ew.Check(y, divType, Ew.Map(nz, x => 9 / x), rtol: fl ? 0 : 2e-7, what: "9L / d");
        using (var y = a.Maximum(3.0)) Ew.Check(y, dt, Ew.Map(av, x => Math.Max(x, 3)), what: "max(a, 3.0)");
        using (var y = a.Minimum(-3.0)) Ew.Check(y, dt, Ew.Map(av, x => Math.Min(x, -3)), what: "min(a, -3.0)");
    }

    [Fact]
    public void ScalarOperatorsHandValues()
    {
        using var x = Ew.F32(1, 2, -3, 4.5);
        using (var y = x + 2L) Ew.Check(y, DType.Float32, [3, 4, -1, 6.5]);
        using (var y = 2L - x) Ew.Check(y, DType.Float32, [1, 0, 5, -2.5]);
        using (var y = 9L / x) Ew.Check(y, DType.Float32, [9, 4.5, -3, 2]);
        using (var y = 1.0 / x) Ew.Check(y, DType.Float32, [1, 0.5, (float)(-1.0 / 3), (float)(1 / 4.5)]);
        using (var y = -2.0 * x) Ew.Check(y, DType.Float32, [-2, -4, 6, -9]);
        // the float32 tensor keeps its dtype: 3f * (float)0.1
        using (var t = Ew.F32(3))
        using (var y = t * 0.1) Ew.Check(y, DType.Float32, [(double)(3f * 0.1f)]);
        using (var t = Ew.F64(3))
        using (var y = t * 0.1) Ew.Check(y, DType.Float64, [3 * 0.1]);
        using (var t = Ew.F32(1))
        using (var y = t + 1e-10) Ew.Check(y, DType.Float32, [1]);

        using var i = Ew.I32(7, -7, 0, 3);
        using (var y = i + 2L) Ew.Check(y, DType.Int32, [9, -5, 2, 5]);
        using (var y = 1L - i) Ew.Check(y, DType.Int32, [-6, 8, 1, -2]);
        using (var y = i * 2.5) Ew.Check(y, DType.Float32, [17.5, -17.5, 0, 7.5]);
        using (var y = i + 2.0) Ew.Check(y, DType.Float32, [9, -5, 2, 5]);
        using (var y = i / 2L) Ew.Check(y, DType.Float32, [3.5, -3.5, 0, 1.5]);
        using (var y = 21L / i) Ew.Check(y, DType.Float32, [3, -3, double.PositiveInfinity, 7]);
        using var l = Ew.I64(7, -7);
        using (var y = l - 1L) Ew.Check(y, DType.Int64, [6, -8]);
        using (var y = l * 0.5) Ew.Check(y, DType.Float32, [3.5, -3.5]);
        using var b = Ew.B(true, false);
        using (var y = b + 1L) Ew.Check(y, DType.Int64, [2, 1]);
        using (var y = b * 2.5) Ew.Check(y, DType.Float32, [2.5, 0]);
    }

    [Fact]
    public void IntegerArithmeticIsExactAndWraps()
    {
        const long big = (1L << 53) + 1;
        // 17 elements: a SIMD block (AVX-512 or AVX2) plus a remainder
        var av = new long[17];
        var bv = new long[17];
        for (int i = 0; i < 17; i++)
        {
            av[i] = (i % 3) switch { 0 => big + i, 1 => -big - i, _ => long.MaxValue };
            bv[i] = (i % 3) switch { 0 => 2, 1 => -2, _ => 0 };
        }
        using var a = Tensor.From(av);
        using var b = Tensor.From(bv);
        using (var y = a + b) Assert.Equal(av.Zip(bv, (x, z) => x + z).ToArray(), y.ToArray<long>());
        using (var y = a - b) Assert.Equal(av.Zip(bv, (x, z) => x - z).ToArray(), y.ToArray<long>());
        using (var y = a * b) Assert.Equal(av.Zip(bv, (x, z) => x * z).ToArray(), y.ToArray<long>());
        using (var y = Tensor.Maximum(a, b)) Assert.Equal(av.Zip(bv, Math.Max).ToArray(), y.ToArray<long>());
        using (var y = Tensor.Minimum(a, b)) Assert.Equal(av.Zip(bv, Math.Min).ToArray(), y.ToArray<long>());
        var mv = Enumerable.Range(0, 17).Select(i => i % 2 == 0 ? int.MaxValue : int.MinValue).ToArray();
        using var m = Tensor.From(mv);
        using var one = Tensor.From(Enumerable.Repeat(1, 17).ToArray());
        using (var y = m + one) Assert.Equal(mv.Select(x => unchecked(x + 1)).ToArray(), y.ToArray<int>());
        using (var y = m - one) Assert.Equal(mv.Select(x => unchecked(x - 1)).ToArray(), y.ToArray<int>());
    }

    [Fact]
    public void DtypePromotion()
    {
        using var i32 = Ew.I32(1, 2, 3);
        using var i64 = Ew.I64(10, 20, 30);
        using var f32 = Ew.F32(0.5, 0.25, 0.1);
        using var f64 = Ew.F64(0.5, 0.25, 0.2);
        using var b1 = Ew.B(true, true, false);
        using var b2 = Ew.B(true, false, false);
        using (var y = i32 + f32) Ew.Check(y, DType.Float32, [1.5, 2.25, 3 + (double)0.1f]);
        using (var y = f32 + i32) Ew.Check(y, DType.Float32, [1.5, 2.25, 3 + (double)0.1f]);
        using (var y = i32 + i64) Ew.Check(y, DType.Int64, [11, 22, 33]);
        using (var y = i64 - i32) Ew.Check(y, DType.Int64, [9, 18, 27]);
        using (var y = b1 + b2) Ew.Check(y, DType.Int64, [2, 1, 0]);
        using (var y = b1 * b2) Ew.Check(y, DType.Int64, [1, 0, 0]);
        using (var y = b1 + i32) Ew.Check(y, DType.Int32, [2, 3, 3]);
        using (var y = b1 * f64) Ew.Check(y, DType.Float64, [0.5, 0.25, 0]);
        using (var y = i64 * f32) Ew.Check(y, DType.Float32, [5, 5, (float)(30 * (double)0.1f)]);
        using (var y = f32 + f64) Ew.Check(y, DType.Float64, [1, 0.5, (double)0.1f + 0.2]);
        using (var y = f64 - f32) Ew.Check(y, DType.Float64, [0, 0, 0.2 - (double)0.1f]);
        using (var y = Tensor.Maximum(i32, f64)) Ew.Check(y, DType.Float64, [1, 2, 3]);
        using (var y = Tensor.Minimum(b1, i64)) Ew.Check(y, DType.Int64, [1, 1, 0]);

        using var num = Ew.I32(7, -7, 1, 0, -1, 6);
        using var den = Ew.I32(2, 2, 0, 0, 0, -4);
        using (var y = num / den)
            Ew.Check(y, DType.Float32, [3.5, -3.5, double.PositiveInfinity, double.NaN, double.NegativeInfinity, -1.5]);
        using var ln = Ew.I64(1, 2);
        using var ld = Ew.I64(3, 4);
        using (var y = ln / ld) Ew.Check(y, DType.Float32, [(float)(1.0 / 3), 0.5]);
        using (var y = b1 / b2) Ew.Check(y, DType.Float32, [1, double.PositiveInfinity, double.NaN]);
        using (var y = i32 / f64) Ew.Check(y, DType.Float64, [1 / 0.5, 2 / 0.25, 3 / 0.2]);
    }

    [Fact]
    public void FloatDivisionSpecialValues()
    {
        foreach (var dt in Ew.FloatTypes)
        {
            using var a = Ew.Make([1, -1, 0, double.PositiveInfinity, 6], dt);
            using var b = Ew.Make([0, 0, 0, double.PositiveInfinity, -0.0], dt);
            using var y = a / b;
            Ew.Check(y, dt, [double.PositiveInfinity, double.NegativeInfinity, double.NaN, double.NaN, double.NegativeInfinity]);
        }
    }

    [Fact]
    public void Broadcasting()
    {
        foreach (var dt in new[] { DType.Float32, DType.Float64, DType.Int32, DType.Int64 })
        {
            using var col = Ew.Make([1, 2, 3], dt, 3, 1);
            using var row = Ew.Make([10, 20, 30, 40], dt, 1, 4);
            var sum = new double[12];
            var diff = new double[12];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++)
                {
                    sum[i * 4 + j] = (i + 1) + 10 * (j + 1);
                    diff[i * 4 + j] = 10 * (j + 1) - (i + 1);
                }
            using (var y = col + row) Ew.Check(y, dt, [3, 4], sum, what: $"{dt} [3,1]+[1,4]");
            using (var y = row - col) Ew.Check(y, dt, [3, 4], diff, what: $"{dt} [1,4]-[3,1]");

            var cube = Ew.Ints(24, 11, -9, 9);
            using var c = Ew.Make(cube, dt, 2, 3, 4);
            using var v = Ew.Make([1, -2, 3, 5], dt, 4);
            var prod = new double[24];
            var rdiff = new double[24];
            for (int i = 0; i < 24; i++)
            {
                double w = new double[] { 1, -2, 3, 5 }[i % 4];
                prod[i] = cube[i] * w;
                rdiff[i] = w - cube[i];
            }
            using (var y = c * v) Ew.Check(y, dt, [2, 3, 4], prod, what: $"{dt} [2,3,4]*[4]");
            using (var y = v - c) Ew.Check(y, dt, [2, 3, 4], rdiff, what: $"{dt} [4]-[2,3,4]");
            using (var y = Tensor.Maximum(v, c)) Ew.Check(y, dt, [2, 3, 4], Enumerable.Range(0, 24).Select(i => Math.Max(cube[i], new double[] { 1, -2, 3, 5 }[i % 4])).ToArray());

            // 0-D tensors
            using var s = Tensor.Scalar(2, dt);
            using (var y = s * s) Ew.Check(y, dt, [], [4], what: "0-D * 0-D");
            using (var y = c - s) Ew.Check(y, dt, [2, 3, 4], cube.Select(x => x - 2).ToArray(), what: "[2,3,4] - 0-D");
            using (var y = s - c) Ew.Check(y, dt, [2, 3, 4], cube.Select(x => 2 - x).ToArray(), what: "0-D - [2,3,4]");
            using (var one = Ew.Make([5], dt))
            using (var y = s + one) Ew.Check(y, dt, [1], [7], what: "0-D + [1]");

            using var a513 = Ew.Make(Ew.Ints(15, 12, -5, 5), dt, 5, 1, 3);
            using var a141 = Ew.Make([1, 2, 3, 4], dt, 1, 4, 1);
            using (var y = a513 + a141)
            {
                var av = a513.ToDoubleArray();
                var exp = new double[60];
                for (int i = 0; i < 5; i++)
                    for (int j = 0; j < 4; j++)
                        for (int k = 0; k < 3; k++)
                            exp[(i * 4 + j) * 3 + k] = av[i * 3 + k] + (j + 1);
                Ew.Check(y, dt, [5, 4, 3], exp, what: "[5,1,3]+[1,4,1]");
            }
        }
    }

    [Fact]
    public void ZeroSizeDims()
    {
        using var e = Tensor.Zeros([0, 3], DType.Float32);
        using var v = Ew.F32(1, 2, 3);
        using (var y = e + v) Ew.Check(y, DType.Float32, [0, 3], []);
        using (var y = v * e) Ew.Check(y, DType.Float32, [0, 3], []);
        using (var one = Ew.F64(1))
        using (var y = e - one) Ew.Check(y, DType.Float64, [0, 3], []);
        using (var z = Tensor.Zeros([2, 0], DType.Int32))
        using (var c = Tensor.Zeros([2, 1], DType.Int64))
        using (var y = z * c) Ew.Check(y, DType.Int64, [2, 0], []);
        using (var y = e / 2L) Ew.Check(y, DType.Float32, [0, 3], []);
        using (var y = Tensor.Maximum(e, v)) Ew.Check(y, DType.Float32, [0, 3], []);
        using (var y = e.Exp()) Ew.Check(y, DType.Float32, [0, 3], []);
        using (var y = e.Gt(v)) Ew.CheckBool(y, [0, 3], []);
        using (var c = Tensor.Zeros([0, 1], DType.Bool))
        using (var y = Tensor.Where(c, v, e)) Ew.Check(y, DType.Float32, [0, 3], []);
        using (var ei = Tensor.Zeros([0], DType.Int32))
        using (var y = ei.Exp()) Ew.Check(y, DType.Float32, [0], []);
        using var bad = Tensor.Zeros([0, 2], DType.Float32);
        Assert.Throws<ArgumentException>(() => e + bad);
    }

    [Fact]
    public void MaximumMinimumPropagateNaN()
    {
        double nan = double.NaN;
        foreach (var dt in Ew.FloatTypes)
        {
            using var a = Ew.Make([1, nan, 3, nan, -0.5], dt);
            using var b = Ew.Make([nan, 2, 1, nan, -1], dt);
            using (var y = Tensor.Maximum(a, b)) Ew.Check(y, dt, [nan, nan, 3, nan, -0.5]);
            using (var y = Tensor.Minimum(a, b)) Ew.Check(y, dt, [nan, nan, 1, nan, -1]);
            using (var y = a.Maximum(0.0)) Ew.Check(y, dt, [1, nan, 3, nan, 0]);
            using (var y = a.Minimum(0.0)) Ew.Check(y, dt, [0, nan, 0, nan, -0.5]);
        }
    }

    [Theory]
    [InlineData(17)]
    [InlineData(100)]
    [InlineData(100003)]
    public void MaximumMinimumNaNAtEveryPosition(int n)
    {
        foreach (var dt in Ew.FloatTypes)
        {
            var av = Ew.Stored(Ew.Uniform(n, 20, -5, 5), dt);
            var bv = Ew.Stored(Ew.Uniform(n, 21, -5, 5), dt);
            // NaNs on either side, in SIMD blocks and in the remainder
            for (int i = 0; i < n; i += 3) av[i] = double.NaN;
            for (int i = 1; i < n; i += 5) bv[i] = double.NaN;
            av[n - 1] = double.NaN;
            using var a = Ew.Make(av, dt);
            using var b = Ew.Make(bv, dt);
            using (var y = Tensor.Maximum(a, b)) Ew.Check(y, dt, Ew.Zip(av, bv, Math.Max), what: $"max {dt}");
            using (var y = Tensor.Minimum(a, b)) Ew.Check(y, dt, Ew.Zip(av, bv, Math.Min), what: $"min {dt}");
            using (var y = Tensor.Maximum(b, a)) Ew.Check(y, dt, Ew.Zip(bv, av, Math.Max), what: $"max swapped {dt}");
            using (var s = Tensor.Scalar(0.5, dt))
            {
                using (var y = Tensor.Maximum(a, s)) Ew.Check(y, dt, Ew.Map(av, x => Math.Max(x, 0.5)), what: $"max scalar {dt}");
                using (var y = Tensor.Minimum(s, a)) Ew.Check(y, dt, Ew.Map(av, x => Math.Min(0.5, x)), what: $"min scalar first {dt}");
            }
        }
    }

    [Fact]
    public void MaximumMinimumIntegerScalars()
    {
        using var i = Ew.I32(1, 2, 3, -4);
        using (var y = i.Maximum(2.0)) Ew.Check(y, DType.Int32, [2, 2, 3, 2]);
        using (var y = i.Minimum(2.0)) Ew.Check(y, DType.Int32, [1, 2, 2, -4]);
        using (var y = i.Maximum(2.5)) Ew.Check(y, DType.Float32, [2.5, 2.5, 3, 2.5]);
        using (var y = i.Minimum(-0.5)) Ew.Check(y, DType.Float32, [-0.5, -0.5, -0.5, -4]);
    }

    [Fact]
    public void PowValues()
    {
        foreach (var dt in Ew.FloatTypes)
        {
            double tol = dt == DType.Float32 ? 1e-6 : 1e-15;
            using var x = Ew.Make([0, 1, 2, 0.25, 9, -2, -8], dt);
            using (var y = x.Pow(2.0)) Ew.Check(y, dt, [0, 1, 4, 0.0625, 81, 4, 64], what: "x^2");
            using (var y = x.Pow(3.0)) Ew.Check(y, dt, [0, 1, 8, 0.015625, 729, -8, -512], rtol: tol, what: "x^3");
            using (var y = x.Pow(0.5)) Ew.Check(y, dt, [0, 1, Math.Sqrt(2), 0.5, 3, double.NaN, double.NaN], rtol: tol, what: "x^0.5");
            using (var y = x.Pow(-1.0)) Ew.Check(y, dt, [double.PositiveInfinity, 1, 0.5, 4, 1 / 9.0, -0.5, -0.125], rtol: tol, what: "x^-1");
            using (var y = x.Pow(0.0)) Ew.Check(y, dt, [1, 1, 1, 1, 1, 1, 1], what: "x^0");

            using var e = Ew.Make([2, 0.5, -1, 3, 0.5, 2, 1.0 / 3], dt);
            var xv = Ew.Stored([0, 1, 2, 0.25, 9, -2, -8], dt);
            var ev = Ew.Stored([2, 0.5, -1, 3, 0.5, 2, 1.0 / 3], dt);
            using (var y = Tensor.Pow(x, e)) Ew.Check(y, dt, Ew.Zip(xv, ev, Math.Pow), rtol: tol, what: "pow tensor");
            using (var y = x.Pow(e)) Ew.Check(y, dt, Ew.Zip(xv, ev, Math.Pow), rtol: tol, what: "pow method");
            using var two = Tensor.Scalar(2, dt);
            using (var y = Tensor.Pow(two, x)) Ew.Check(y, dt, Ew.Map(xv, v => Math.Pow(2, v)), rtol: tol, what: "2^x");
            using (var y = Tensor.Pow(x, two)) Ew.Check(y, dt, Ew.Map(xv, v => v * v), rtol: tol, what: "x^tensor(2)");
            using var col = Ew.Make([1, 2, 3], dt, 3, 1);
            using var row = Ew.Make([0, 1, 2, 3], dt, 1, 4);
            using (var y = Tensor.Pow(col, row))
                Ew.Check(y, dt, [3, 4], [1, 1, 1, 1, 1, 2, 4, 8, 1, 3, 9, 27], what: "broadcast pow");
        }
        using var ib = Ew.I32(2, 3, -2, 5);
        using var ie = Ew.I32(10, 4, 3, 0);
        using (var y = Tensor.Pow(ib, ie)) Ew.Check(y, DType.Int32, [1024, 81, -8, 1]);
        using var lb = Ew.I64(3, -1);
        using var le = Ew.I64(39, 7);
        using (var y = Tensor.Pow(lb, le)) Assert.Equal(new[] { 4052555153018976267L, -1L }, y.ToArray<long>());
    }

    [Theory]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(100003)]
    public void PowLengths(int n)
    {
        foreach (var dt in Ew.FloatTypes)
        {
            var bv = Ew.Stored(Ew.Uniform(n, 30, 0.1, 3), dt);
            var ev = Ew.Stored(Ew.Uniform(n, 31, -2, 2), dt);
            using var b = Ew.Make(bv, dt);
            using var e = Ew.Make(ev, dt);
            double tol = dt == DType.Float32 ? 1e-6 : 1e-15;
            using (var y = Tensor.Pow(b, e)) Ew.Check(y, dt, Ew.Zip(bv, ev, Math.Pow), rtol: tol, what: "pow");
            using (var y = b.Pow(1.5)) Ew.Check(y, dt, Ew.Map(bv, v => Math.Pow(v, dt == DType.Float32 ? 1.5f : 1.5)), rtol: tol, what: "pow 1.5");
        }
    }
}
