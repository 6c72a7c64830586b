namespace Runtime.Tests;

/// <summary>Input generators and fast value checks shared by the Elementwise* test classes.</summary>
internal static class Ew
{
    /// <summary>Lengths that hit the SIMD main loop, its remainder, and (100003) the parallel path.</summary>
    public static readonly int[] Lengths = [1, 15, 16, 17, 100, 1000, 100003];

    public static readonly DType[] FloatTypes = [DType.Float32, DType.Float64];

    public static double[] Uniform(int n, int seed, double lo, double hi)
    {
        var r = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = lo + (hi - lo) * r.NextDouble();
        return v;
    }

    /// <summary>Values with |x| in [minAbs, maxAbs] and a random sign.</summary>
    public static double[] Signed(int n, int seed, double minAbs, double maxAbs)
    {
        var r = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++)
        {
            double m = minAbs + (maxAbs - minAbs) * r.NextDouble();
            v[i] = r.Next(2) == 0 ? m : -m;
        }
        return v;
    }

    /// <summary>Random integers in [lo, hi] (as doubles).</summary>
    public static double[] Ints(int n, int seed, int lo, int hi)
    {
        var r = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = r.Next(lo, hi + 1);
        return v;
    }

    /// <summary>The values a tensor of <paramref name="dt"/> made from <paramref name="v"/> actually holds.</summary>
    public static double[] Stored(double[] v, DType dt) => dt switch
    {
        DType.Float32 => v.Select(x => (double)(float)x).ToArray(),
        DType.Int32 => v.Select(x => (double)(int)x).ToArray(),
        DType.Int64 => v.Select(x => (double)(long)x).ToArray(),
        DType.Bool => v.Select(x => x != 0 ? 1.0 : 0.0).ToArray(),
        _ => (double[])v.Clone(),
    };

    /// <summary>A tensor of the given shape (default: 1-D) holding <paramref name="v"/> converted to <paramref name="dt"/>.</summary>
    public static Tensor Make(double[] v, DType dt, params int[] shape) => MakeAs(v, dt, shape.Length == 0 ? [v.Length] : shape);

    /// <summary>Like <see cref="Make"/>, but an empty shape means a 0-D tensor.</summary>
    public static Tensor MakeAs(double[] v, DType dt, int[] shape)
    {
        return dt switch
        {
            // the span overload: an empty shape is 0-D there
            DType.Float32 => Tensor.From<float>(v.Select(x => (float)x).ToArray().AsSpan(), shape),
            DType.Float64 => Tensor.From<double>(v.AsSpan(), shape),
            DType.Int32 => Tensor.From<int>(v.Select(x => (int)x).ToArray().AsSpan(), shape),
            DType.Int64 => Tensor.From<long>(v.Select(x => (long)x).ToArray().AsSpan(), shape),
            _ => Tensor.From<bool>(v.Select(x => x != 0).ToArray().AsSpan(), shape),
        };
    }

    public static Tensor F32(params double[] v) => Make(v, DType.Float32);

    public static Tensor F64(params double[] v) => Make(v, DType.Float64);

    public static Tensor I32(params double[] v) => Make(v, DType.Int32);

    public static Tensor I64(params double[] v) => Make(v, DType.Int64);

    public static Tensor B(params bool[] v) => Tensor.From(v);

    public static double[] Map(double[] a, Func<double, double> f)
    {
        var r = new double[a.Length];
        for (int i = 0; i < a.Length; i++) r[i] = f(a[i]);
        return r;
    }

    public static double[] Zip(double[] a, double[] b, Func<double, double, double> f)
    {
        var r = new double[a.Length];
        for (int i = 0; i < a.Length; i++) r[i] = f(a[i], b[i]);
        return r;
    }

    /// <summary>Rounds a float64 reference to what a result of dtype <paramref name="dt"/> can hold.</summary>
    public static double[] RoundTo(double[] v, DType dt) => dt == DType.Float32 ? Stored(v, dt) : v;

    /// <summary>
    /// Checks dtype, shape and values. rtol = atol = 0 asks for exact equality (NaN matches NaN; -0 and +0
    /// compare equal unless <paramref name="signedZero"/>). Float32 results are compared with the reference
    /// rounded to float32.
    /// </summary>
    public static void Check(Tensor actual, DType dtype, int[] shape, double[] expected, double rtol = 0, double atol = 0, bool signedZero = false, string what = "")
    {
        Assert.True(dtype == actual.DType, $"{what}: dtype {actual.DType}, expected {dtype}");
        Assert.True(shape.SequenceEqual(actual.Shape.ToArray()),
            $"{what}: shape [{string.Join(", ", actual.Shape.ToArray())}], expected [{string.Join(", ", shape)}]");
        var got = actual.ToDoubleArray();
        var exp = RoundTo(expected, dtype);
        Assert.True(exp.Length == got.Length, $"{what}: {got.Length} values, expected {exp.Length}");
        for (int i = 0; i < got.Length; i++)
        {
            double e = exp[i], g = got[i];
            bool ok;
            if (double.IsNaN(e)) ok = double.IsNaN(g);
            else if (double.IsInfinity(e) || (rtol == 0 && atol == 0)) ok = e == g;
            else ok = Math.Abs(e - g) <= atol + rtol * Math.Abs(e);
            if (ok && signedZero && e == 0) ok = double.IsNegative(e) == double.IsNegative(g);
            if (!ok) Assert.Fail($"{what}: element {i} of {got.Length}: expected {e:R}, got {g:R} (input dtype result {dtype})");
        }
    }

    public static void Check(Tensor actual, DType dtype, double[] expected, double rtol = 0, double atol = 0, bool signedZero = false, string what = "") =>
        Check(actual, dtype, [expected.Length], expected, rtol, atol, signedZero, what);

    public static void CheckBool(Tensor actual, int[] shape, bool[] expected, string what = "")
    {
        Assert.True(actual.DType == DType.Bool, $"{what}: dtype {actual.DType}, expected Bool");
        Assert.True(shape.SequenceEqual(actual.Shape.ToArray()), $"{what}: shape [{string.Join(", ", actual.Shape.ToArray())}]");
        var got = actual.ToArray<bool>();
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
            if (got[i] != expected[i]) Assert.Fail($"{what}: element {i} of {got.Length}: expected {expected[i]}, got {got[i]}");
    }

    public static void CheckBool(Tensor actual, bool[] expected, string what = "") => CheckBool(actual, [expected.Length], expected, what);

    /// <summary>Row-major host copy of x permuted by <paramref name="perm"/> (reference for Permute).</summary>
    public static double[] Permuted(double[] x, int[] shape, int[] perm)
    {
        int r = shape.Length;
        var st = new long[r];
        long acc = 1;
        for (int d = r - 1; d >= 0; d--) { st[d] = acc; acc *= shape[d]; }
        var ns = perm.Select(p => shape[p]).ToArray();
        var res = new double[x.Length];
        var idx = new int[r];
        for (int i = 0; i < res.Length; i++)
        {
            long src = 0;
            for (int d = 0; d < r; d++) src += idx[d] * st[perm[d]];
            res[i] = x[src];
            for (int d = r - 1; d >= 0; d--)
            {
                if (++idx[d] < ns[d]) break;
                idx[d] = 0;
            }
        }
        return res;
    }

    /// <summary>Exact log(1 + x) to a few ulps (System.Math lacks Log1p).</summary>
    public static double Log1p(double x)
    {
        if (double.IsPositiveInfinity(x)) return x;
        double u = 1 + x;
        return u == 1 ? x : Math.Log(u) * x / (u - 1);
    }

    public static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));

    public static double Softplus(double x, double beta, double threshold) =>
        x * beta > threshold ? x : Log1p(Math.Exp(beta * x)) / beta;

    public static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    /// <summary>Dyadic inputs (exact in float32) with erf and exact GELU values from CPython's math.erf.</summary>
    public static readonly double[] ErfX =
    [
        -4.0, -3.0, -2.625, -2.5, -2.0, -1.5, -1.0, -0.75, -0.5, -0.25, -0.09375, -0.0009765625, 0.0, 9.5367431640625e-07,
        0.09375, 0.25, 0.5, 1.0, 1.5, 2.0, 2.375, 2.5, 2.625, 3.0, 3.5, 4.0, 5.0, 6.0, 6.5, 7.0, 10.0,
    ];

    public static readonly double[] ErfY =
    [
        -0.9999999845827421, -0.9999779095030014, -0.9997946242638588, -0.999593047982555, -0.9953222650189527,
        -0.9661051464753108, -0.8427007929497149, -0.7111556336535151, -0.5204998778130465, -0.2763263901682369,
        -0.10547644378177959, -0.0011019324300718147, 0.0, 1.0761062308265404e-06, 0.10547644378177959,
        0.2763263901682369, 0.5204998778130465, 0.8427007929497149, 0.9661051464753108, 0.9953222650189527,
        0.9992170617821089, 0.999593047982555, 0.9997946242638588, 0.9999779095030014, 0.9999992569016276,
        0.9999999845827421, 0.9999999999984626, 1.0, 1.0, 1.0, 1.0,
    ];

    public static readonly double[] GeluY =
    [
        -0.00012668496733247991, -0.00404969409489031, -0.011372676952907952, -0.015524163314440398, -0.04550026389635842,
        -0.10021080190328713, -0.15865525393145707, -0.16997051428265114, -0.15426876936299344, -0.10032341857926907,
        -0.043373800822938124, -0.00048790078905392527, 0.0, 4.768375210390154e-07, 0.050376199177061876,
        0.14967658142073093, 0.34573123063700656, 0.8413447460685429, 1.399789198096713, 1.9544997361036416,
        2.354160621647621, 2.4844758366855597, 2.6136273230470923, 2.99595030590511, 3.4991857982233756,
        3.9998733150326675, 4.999998566742141, 5.999999994080474, 6.49999999973896, 6.999999999991041, 10.0,
    ];
}
