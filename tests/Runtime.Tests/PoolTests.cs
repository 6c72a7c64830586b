using System.Text.Json;

namespace Runtime.Tests;

/// <summary>
/// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and Interpolate: outputs and gradients against torch
/// goldens (golden/make_pool_goldens.py), against a plain float64 reference on larger inputs,
/// finite-difference gradient checks, and argument errors.
/// </summary>
public class PoolTests
{
    // ---------------- torch goldens ----------------

    private static readonly Lazy<Dictionary<string, JsonElement>> Cases = new(() =>
    {
        var path = Path.Combine(AppContext.BaseDirectory, "golden", "pool.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var d = new Dictionary<string, JsonElement>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray()) d[c.GetProperty("name").GetString()!] = c.Clone();
        return d;
    });

    public static TheoryData<string, DType, bool> GoldenCases()
    {
        var data = new TheoryData<string, DType, bool>();
        var path = Path.Combine(AppContext.BaseDirectory, "golden", "pool.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var name = c.GetProperty("name").GetString()!;
            data.Add(name, DType.Float32, false);
            data.Add(name, DType.Float64, false);
            data.Add(name, DType.Float32, true);
        }
        return data;
    }

    private static double[] Doubles(JsonElement e) =>
        e.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.String ? double.NaN : v.GetDouble()).ToArray();

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    private static (int, int) Pair(JsonElement e) => (e[0].GetInt32(), e[1].GetInt32());

    /// <summary>Runs one golden case's operator on <paramref name="x"/>; returns the output and, for max pooling, the indices.</summary>
    private static (Tensor Y, Tensor? Indices) RunCase(JsonElement c, Tensor x)
    {
        var p = c.GetProperty("params");
        switch (c.GetProperty("op").GetString())
        {
            case "max":
                {
                    var (y, i) = x.MaxPool2dWithIndices(Pair(p.GetProperty("k")), Pair(p.GetProperty("s")), Pair(p.GetProperty("p")), Pair(p.GetProperty("d")), p.GetProperty("ceil").GetBoolean());
                    return (y, i);
                }
            case "avg":
                {
                    var div = p.GetProperty("div");
                    int? d = div.ValueKind == JsonValueKind.Null ? null : div.GetInt32();
                    return (x.AvgPool2d(Pair(p.GetProperty("k")), Pair(p.GetProperty("s")), Pair(p.GetProperty("p")), p.GetProperty("ceil").GetBoolean(), p.GetProperty("cip").GetBoolean(), d), null);
                }
            case "adaptive":
                return (x.AdaptiveAvgPool2d(Pair(p.GetProperty("size"))), null);
            default:
                {
                    var mode = p.GetProperty("mode").GetString() == "nearest" ? InterpolationMode.Nearest : InterpolationMode.Bilinear;
                    var a = p.GetProperty("align");
                    bool? align = a.ValueKind == JsonValueKind.Null ? null : a.GetBoolean();
                    var size = p.GetProperty("size");
                    if (size.ValueKind != JsonValueKind.Null) return (x.Interpolate(Pair(size), mode, align), null);
                    var s = p.GetProperty("scale");
                    return (x.Interpolate((s[0].GetDouble(), s[1].GetDouble()), mode, align, p.GetProperty("recompute").GetBoolean()), null);
                }
        }
    }

    /// <summary>The values of a row-major tensor of <paramref name="shape"/> with its last two dimensions swapped.</summary>
    private static double[] SwapLast(double[] v, int[] shape)
    {
        int h = shape[^2], w = shape[^1], planes = v.Length / (h * w);
        var r = new double[v.Length];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) r[p * h * w + j * h + i] = v[p * h * w + i * w + j];
        return r;
    }

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void MatchesTorch(string name, DType dtype, bool transposedInput)
    {
        var c = Cases.Value[name];
        var shape = Ints(c.GetProperty("shape"));
        var input = Doubles(c.GetProperty("input"));
        // The leaf is either the input itself or its transpose, seen through a transposed (non-contiguous) view.
        var leafShape = shape.ToArray();
        if (transposedInput) (leafShape[^1], leafShape[^2]) = (shape[^2], shape[^1]);
        using var l64 = Tensor.From<double>(transposedInput ? SwapLast(input, shape) : input, leafShape);
        using var leaf = l64.To(dtype);
        leaf.RequiresGrad = true;
        var x = transposedInput ? leaf.Transpose(-1, -2) : leaf;
        using var _x = transposedInput ? x : null;
        Assert.Equal(!transposedInput, x.IsContiguous);

        var (y, idx) = RunCase(c, x);
        using var _y = y;
        using var _i = idx;
        double tol = dtype == DType.Float32 ? 2e-5 : 1e-10;
        Assert.Equal(dtype, y.DType);
        TestUtil.AssertShape(y, Ints(c.GetProperty("out_shape")));
        TestUtil.AssertClose(Doubles(c.GetProperty("output")), y, tol, tol);
        if (idx != null)
        {
            Assert.Equal(DType.Int64, idx.DType);
            Assert.Equal(c.GetProperty("indices").EnumerateArray().Select(v => v.GetInt64()).ToArray(), idx.ToArray<long>());
        }

        using var g64 = Tensor.From<double>(Doubles(c.GetProperty("grad_out")), y.ShapeArray);
        using var g = g64.To(dtype);
        using var prod = y * g;
        using var loss = prod.Sum();
        loss.Backward();
        Assert.NotNull(leaf.Grad);
        Assert.Equal(dtype, leaf.Grad!.DType);
        var grad = transposedInput ? leaf.Grad.Transpose(-1, -2) : leaf.Grad;
        using var _g = transposedInput ? grad : null;
        TestUtil.AssertShape(grad, shape);
        TestUtil.AssertClose(Doubles(c.GetProperty("grad_in")), grad, 4 * tol, 4 * tol);
    }

    [Fact]
    public void MaxPool2d_HandDerived()
    {
        // 4x4 ramp, 2x2 windows: each window's maximum is its bottom-right element.
        using var x = Tensor.Arange(16, DType.Float32).Reshape(1, 1, 4, 4);
        var (y, i) = x.MaxPool2dWithIndices((2, 2), null, (0, 0), (1, 1));
        using (y)
        using (i)
        {
            TestUtil.AssertShape(y, 1, 1, 2, 2);
            TestUtil.AssertClose([5, 7, 13, 15], y);
            Assert.Equal([5L, 7, 13, 15], i.ToArray<long>());
        }
        using var a = x.AvgPool2d(2);
        TestUtil.AssertClose([2.5, 4.5, 10.5, 12.5], a);
        using var up = x.Interpolate((2.0, 2.0));
        TestUtil.AssertShape(up, 1, 1, 8, 8);
        using var back = up.MaxPool2d(2);
        TestUtil.AssertClose(x.ToDoubleArray(), back);
    }

    // ---------------- plain float64 references on larger inputs ----------------

    private static double[] RefMaxPool(double[] x, int planes, int h, int w, int oh, int ow, (int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw) k, out long[] idx)
    {
        var y = new double[planes * oh * ow];
        idx = new long[y.Length];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    double best = double.NegativeInfinity;
                    long at = -1;
                    for (int a = 0; a < k.kh; a++)
                        for (int b = 0; b < k.kw; b++)
                        {
                            int r = i * k.sh - k.ph + a * k.dh, s = j * k.sw - k.pw + b * k.dw;
                            if (r < 0 || r >= h || s < 0 || s >= w) continue;
                            double v = x[p * h * w + r * w + s];
                            if (at < 0 || v > best || double.IsNaN(v)) { best = v; at = r * w + s; }
                        }
                    y[p * oh * ow + i * ow + j] = best;
                    idx[p * oh * ow + i * ow + j] = at;
                }
        return y;
    }

    private static double[] RefScatterMax(double[] g, long[] idx, int planes, int inPlane, int outPlane)
    {
        var gx = new double[planes * inPlane];
        for (int p = 0; p < planes; p++)
            for (int o = 0; o < outPlane; o++) gx[p * inPlane + idx[p * outPlane + o]] += g[p * outPlane + o];
        return gx;
    }

    /// <summary>Reference "linear map" ops: each output is a weighted sum of inputs; the list gives (output, input, weight) per plane.</summary>
    private static List<(int O, int I, double W)> RefAvgTaps(int h, int w, int oh, int ow, (int kh, int kw, int sh, int sw, int ph, int pw) k, bool cip, int? div)
    {
        var taps = new List<(int, int, double)>();
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                int r0 = i * k.sh - k.ph, c0 = j * k.sw - k.pw;
                int r1 = Math.Min(r0 + k.kh, h + k.ph), c1 = Math.Min(c0 + k.kw, w + k.pw);
                int padded = (r1 - r0) * (c1 - c0);
                r0 = Math.Max(r0, 0); c0 = Math.Max(c0, 0); r1 = Math.Min(r1, h); c1 = Math.Min(c1, w);
                double d = div ?? (cip ? padded : (r1 - r0) * (c1 - c0));
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++) taps.Add((i * ow + j, r * w + c, 1 / d));
            }
        return taps;
    }

    private static List<(int O, int I, double W)> RefAdaptiveTaps(int h, int w, int oh, int ow)
    {
        var taps = new List<(int, int, double)>();
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                int r0 = (int)Math.Floor((double)i * h / oh), r1 = (int)Math.Ceiling((double)(i + 1) * h / oh);
                int c0 = (int)Math.Floor((double)j * w / ow), c1 = (int)Math.Ceiling((double)(j + 1) * w / ow);
                double n = (r1 - r0) * (c1 - c0);
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++) taps.Add((i * ow + j, r * w + c, 1 / n));
            }
        return taps;
    }

    private static int RefNearest(int o, int input, int output, double? scale)
    {
        if (output == input) return o;
        if (output == 2 * input) return o / 2;
        float s = scale is double v ? (float)(1.0 / v) : (float)input / output;
        return Math.Min((int)MathF.Floor(o * s), input - 1);
    }

    private static (int, int, double, double)[] RefLinear(int input, int output, bool align, double? scale)
    {
        var r = new (int, int, double, double)[output];
        double ratio = align ? (output > 1 ? (input - 1.0) / (output - 1) : 0) : scale is double v ? 1 / v : (double)input / output;
        for (int o = 0; o < output; o++)
        {
            if (output == input) { r[o] = (o, o, 1, 0); continue; }
            double real = align ? ratio * o : Math.Max(ratio * (o + 0.5) - 0.5, 0);
            int a = (int)real;
            double l1 = real - a;
            r[o] = (a, a + (a < input - 1 ? 1 : 0), 1 - l1, l1);
        }
        return r;
    }

    private static List<(int O, int I, double W)> RefInterpTaps(int h, int w, int oh, int ow, InterpolationMode mode, bool align, double? sh, double? sw)
    {
        var taps = new List<(int, int, double)>();
        if (mode == InterpolationMode.Nearest)
        {
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) taps.Add((i * ow + j, RefNearest(i, h, oh, sh) * w + RefNearest(j, w, ow, sw), 1));
            return taps;
        }
        var rh = RefLinear(h, oh, align, sh);
        var rw = RefLinear(w, ow, align, sw);
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
            {
                var (a0, a1, la0, la1) = rh[i];
                var (b0, b1, lb0, lb1) = rw[j];
                taps.Add((i * ow + j, a0 * w + b0, la0 * lb0));
                taps.Add((i * ow + j, a0 * w + b1, la0 * lb1));
                taps.Add((i * ow + j, a1 * w + b0, la1 * lb0));
                taps.Add((i * ow + j, a1 * w + b1, la1 * lb1));
            }
        return taps;
    }

    private static (double[] Y, double[] Gx) ApplyTaps(List<(int O, int I, double W)> taps, double[] x, double[] g, int planes, int inPlane, int outPlane)
    {
        var y = new double[planes * outPlane];
        var gx = new double[planes * inPlane];
        for (int p = 0; p < planes; p++)
            foreach (var (o, i, wt) in taps)
            {
                y[p * outPlane + o] += wt * x[p * inPlane + i];
                gx[p * inPlane + i] += wt * g[p * outPlane + o];
            }
        return (y, gx);
    }

    /// <summary>Runs <paramref name="op"/> on a random [n, c, h, w] input and checks output and input gradient against the reference.</summary>
    private static void CheckAgainstReference(DType dtype, int n, int c, int h, int w, Func<Tensor, Tensor> op,
        Func<double[], double[], int, int, (double[] Y, double[] Gx)> reference, ulong seed)
    {
        using var x64 = TestUtil.RandnF64([n, c, h, w], seed);
        using var leaf = x64.To(dtype);
        leaf.RequiresGrad = true;
        using var y = op(leaf);
        int oh = y.Shape[2], ow = y.Shape[3];
        using var g64 = TestUtil.RandnF64([n, c, oh, ow], seed + 1);
        using var g = g64.To(dtype);
        using var prod = y * g;
        using var loss = prod.Sum();
        loss.Backward();
        var (ey, egx) = reference(leaf.ToDoubleArray(), g.ToDoubleArray(), oh, ow);
        double tol = dtype == DType.Float32 ? 2e-5 : 1e-11;
        TestUtil.AssertClose(ey, y, tol, tol);
        TestUtil.AssertClose(egx, leaf.Grad!, 10 * tol, 10 * tol);
    }

    public static TheoryData<DType> Dtypes => new() { DType.Float32, DType.Float64 };

    [Theory]
    [MemberData(nameof(Dtypes))]
    public void MaxPool2d_MatchesReference(DType dtype)
    {
        (int, int, int, int, int, int, int, int)[] configs =
        [
            (3, 3, 2, 2, 1, 1, 1, 1), // ResNet stem
            (2, 2, 2, 2, 0, 0, 1, 1),
            (3, 3, 1, 1, 1, 1, 1, 1),
            (3, 2, 1, 3, 1, 0, 2, 1),
            (5, 5, 3, 2, 2, 2, 1, 2),
        ];
        foreach (bool ceil in new[] { false, true })
            foreach (var k in configs)
            {
                var (kh, kw, sh, sw, ph, pw, dh, dw) = k;
                // 70 columns: the SIMD row kernels take 16- and 8-column steps before the scalar tail.
                CheckAgainstReference(dtype, 2, 3, 37, 70, x => x.MaxPool2d((kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil), (xv, gv, oh, ow) =>
                {
                    var y = RefMaxPool(xv, 6, 37, 70, oh, ow, k, out var idx);
                    return (y, RefScatterMax(gv, idx, 6, 37 * 70, oh * ow));
                }, 11);
            }
    }

    [Theory]
    [MemberData(nameof(Dtypes))]
    public void MaxPool2d_TiesAndNaN_MatchReference(DType dtype)
    {
        // ReLU of coarse values: many equal maxima (zeros and small integers), plus a few NaNs, on rows wide
        // enough for the SIMD kernels. The reference scans each window row-major: first maximum, last NaN.
        var values = new double[2 * 3 * 21 * 70];
        var rng = new Random(5);
        for (int i = 0; i < values.Length; i++) values[i] = Math.Max(0, Math.Floor(rng.NextDouble() * 4 - 1.5));
        for (int i = 0; i < 25; i++) values[rng.Next(values.Length)] = double.NaN;
        using var x64 = Tensor.From<double>(values, [2, 3, 21, 70]);
        using var x = x64.To(dtype);
        foreach (var k in new[] { (3, 3, 2, 2, 1, 1, 1, 1), (3, 3, 1, 1, 1, 1, 1, 1), (2, 3, 2, 2, 0, 1, 2, 1) })
        {
            var (kh, kw, sh, sw, ph, pw, dh, dw) = k;
            var (y, idx) = x.MaxPool2dWithIndices((kh, kw), (sh, sw), (ph, pw), (dh, dw));
            using (y)
            using (idx)
            {
                var expected = RefMaxPool(values, 6, 21, 70, y.Shape[2], y.Shape[3], k, out var eidx);
                TestUtil.AssertClose(expected, y, 0, 0);
                Assert.Equal(eidx, idx.ToArray<long>());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Dtypes))]
    public void AvgPool2d_MatchesReference(DType dtype)
    {
        foreach (bool ceil in new[] { false, true })
            foreach (bool cip in new[] { false, true })
                foreach (int? div in new int?[] { null, 7 })
                {
                    CheckAgainstReference(dtype, 2, 3, 31, 26, x => x.AvgPool2d((3, 4), (2, 3), (1, 2), ceil, cip, div),
                        (xv, gv, oh, ow) => ApplyTaps(RefAvgTaps(31, 26, oh, ow, (3, 4, 2, 3, 1, 2), cip, div), xv, gv, 6, 31 * 26, oh * ow), 12);
                }
    }

    [Theory]
    [MemberData(nameof(Dtypes))]
    public void AdaptiveAvgPool2d_MatchesReference(DType dtype)
    {
        foreach (var (oh, ow) in new[] { (7, 7), (5, 9), (40, 3), (1, 1) })
            CheckAgainstReference(dtype, 2, 3, 29, 23, x => x.AdaptiveAvgPool2d((oh, ow)),
                (xv, gv, ohh, oww) => ApplyTaps(RefAdaptiveTaps(29, 23, ohh, oww), xv, gv, 6, 29 * 23, ohh * oww), 13);
    }

    [Theory]
    [MemberData(nameof(Dtypes))]
    public void Interpolate_MatchesReference(DType dtype)
    {
        foreach (var mode in new[] { InterpolationMode.Nearest, InterpolationMode.Bilinear })
            foreach (bool align in mode == InterpolationMode.Nearest ? new[] { false } : new[] { false, true })
            {
                bool? a = mode == InterpolationMode.Nearest ? null : align;
                foreach (var (oh, ow) in new[] { (34, 42), (9, 40), (17, 21) })
                    CheckAgainstReference(dtype, 2, 3, 17, 21, x => x.Interpolate((oh, ow), mode, a),
                        (xv, gv, ohh, oww) => ApplyTaps(RefInterpTaps(17, 21, ohh, oww, mode, align, null, null), xv, gv, 6, 17 * 21, ohh * oww), 14);
                foreach (var (sh, sw) in new[] { (2.0, 2.0), (1.37, 0.61), (0.5, 3.25) })
                    CheckAgainstReference(dtype, 2, 3, 17, 21, x => x.Interpolate((sh, sw), mode, a),
                        (xv, gv, ohh, oww) => ApplyTaps(RefInterpTaps(17, 21, ohh, oww, mode, align, sh, sw), xv, gv, 6, 17 * 21, ohh * oww), 15);
            }
    }

    [Fact]
    public void Backward_IsDeterministic()
    {
        using var x = TestUtil.RandnF64([2, 4, 40, 36], 21);
        using var xf = x.To(DType.Float32);
        Func<Tensor, Tensor>[] ops =
        [
            t => t.MaxPool2d(3, 2, 1),
            t => t.AvgPool2d(3, 1, 1),
            t => t.AdaptiveAvgPool2d((7, 5)),
            t => t.Interpolate((0.7, 0.45), InterpolationMode.Nearest),
            t => t.Interpolate((13, 11), InterpolationMode.Bilinear, alignCorners: false),
        ];
        foreach (var op in ops)
        {
            float[] Grad()
            {
                using var leaf = xf.Detach();
                leaf.RequiresGrad = true;
                using var y = op(leaf);
                using var w = Tensor.Randn(y.ShapeArray, new Generator(5));
                using var prod = y * w;
                using var loss = prod.Sum();
                loss.Backward();
                return leaf.Grad!.ToArray<float>();
            }
            Assert.Equal(Grad(), Grad());
        }
    }

    // ---------------- finite differences ----------------

    [Fact]
    public void MaxPool2d_GradCheck()
    {
        // Random inputs have no ties, so the max is differentiable at them.
        TestUtil.GradCheck(x => x[0].MaxPool2d((3, 2), (2, 1), (1, 1), (1, 2), ceilMode: true), [TestUtil.RandnF64([2, 2, 7, 6], 31)]);
        TestUtil.GradCheck(x => x[0].MaxPool2d(3, 2, 1), [TestUtil.RandnF64([3, 6, 7], 32)]);
    }

    [Fact]
    public void AvgPool2d_GradCheck()
    {
        TestUtil.GradCheck(x => x[0].AvgPool2d((3, 2), (2, 1), (1, 1), ceilMode: true, countIncludePad: false), [TestUtil.RandnF64([2, 2, 7, 6], 33)]);
        TestUtil.GradCheck(x => x[0].AvgPool2d(3, 2, 1, divisorOverride: 4), [TestUtil.RandnF64([3, 6, 7], 34)]);
    }

    [Fact]
    public void AdaptiveAvgPool2d_GradCheck()
    {
        TestUtil.GradCheck(x => x[0].AdaptiveAvgPool2d((3, 4)), [TestUtil.RandnF64([2, 2, 7, 5], 35)]);
        TestUtil.GradCheck(x => x[0].AdaptiveAvgPool2d(4), [TestUtil.RandnF64([2, 3, 3], 36)]);
    }

    [Fact]
    public void Interpolate_GradCheck()
    {
        TestUtil.GradCheck(x => x[0].Interpolate((7, 3)), [TestUtil.RandnF64([1, 2, 4, 5], 37)]);
        TestUtil.GradCheck(x => x[0].Interpolate((1.5, 0.7)), [TestUtil.RandnF64([1, 2, 4, 5], 38)]);
        TestUtil.GradCheck(x => x[0].Interpolate((7, 3), InterpolationMode.Bilinear, alignCorners: false), [TestUtil.RandnF64([1, 2, 4, 5], 39)]);
        TestUtil.GradCheck(x => x[0].Interpolate((7, 8), InterpolationMode.Bilinear, alignCorners: true), [TestUtil.RandnF64([2, 4, 5], 40)]);
        TestUtil.GradCheck(x => x[0].Interpolate((1.6, 0.55), InterpolationMode.Bilinear), [TestUtil.RandnF64([1, 2, 4, 5], 41)]);
    }

    // ---------------- errors ----------------

    [Fact]
    public void BadArguments_Throw()
    {
        using var x = Tensor.Zeros(1, 2, 5, 5);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => x.MaxPool2d(3, 1, 2));
        Assert.Equal("padding", e.ParamName);
        Assert.Contains("half of the kernel size", e.Message);
        Assert.Equal("padding", Assert.Throws<ArgumentOutOfRangeException>(() => x.AvgPool2d(2, 1, 2)).ParamName);
        Assert.Equal("padding", Assert.Throws<ArgumentOutOfRangeException>(() => x.MaxPool2d(3, 1, -1)).ParamName);
        Assert.Equal("kernelSize", Assert.Throws<ArgumentOutOfRangeException>(() => x.MaxPool2d(0)).ParamName);
        Assert.Equal("stride", Assert.Throws<ArgumentOutOfRangeException>(() => x.MaxPool2d(2, 0)).ParamName);
        Assert.Equal("dilation", Assert.Throws<ArgumentOutOfRangeException>(() => x.MaxPool2d(2, 1, 0, 0)).ParamName);
        Assert.Equal("divisorOverride", Assert.Throws<ArgumentOutOfRangeException>(() => x.AvgPool2d(2, divisorOverride: 0)).ParamName);

        // Output too small: a 6x6 window on a 5x5 input.
        var small = Assert.Throws<ArgumentException>(() => x.MaxPool2d(6));
        Assert.Equal("input", small.ParamName);
        Assert.Contains("too small", small.Message);
        Assert.Throws<ArgumentException>(() => x.MaxPool2d(3, 1, 0, dilation: 3));
        Assert.Throws<ArgumentException>(() => x.AvgPool2d(6));

        using var flat = Tensor.Zeros(5, 5);
        Assert.Contains("[5, 5]", Assert.Throws<ArgumentException>(() => flat.MaxPool2d(2)).Message);
        using var ints = Tensor.Zeros([1, 1, 4, 4], DType.Int64);
        Assert.Contains(DType.Int64.Name(), Assert.Throws<ArgumentException>(() => ints.AvgPool2d(2)).Message);
        using var empty = Tensor.Zeros(1, 2, 0, 5);
        Assert.Throws<ArgumentException>(() => empty.AdaptiveAvgPool2d(2));

        Assert.Equal("outputSize", Assert.Throws<ArgumentOutOfRangeException>(() => x.AdaptiveAvgPool2d((-1, 2))).ParamName);
        Assert.Equal("size", Assert.Throws<ArgumentOutOfRangeException>(() => x.Interpolate((0, 3))).ParamName);
        Assert.Equal("alignCorners", Assert.Throws<ArgumentException>(() => x.Interpolate((3, 3), InterpolationMode.Nearest, alignCorners: false)).ParamName);
        Assert.Equal("scaleFactor", Assert.Throws<ArgumentOutOfRangeException>(() => x.Interpolate((-1.0, 2.0))).ParamName);
        Assert.Equal("scaleFactor", Assert.Throws<ArgumentOutOfRangeException>(() => x.Interpolate((double.NaN, 2.0))).ParamName);
        var tiny = Assert.Throws<ArgumentOutOfRangeException>(() => x.Interpolate((0.1, 1.0)));
        Assert.Equal("scaleFactor", tiny.ParamName);
        Assert.Contains("output size (0, 5)", tiny.Message);
    }

    [Fact]
    public void MaxPool2d_WindowMissingTheInput_GivesMinusInfinity()
    {
        // 2x2 input, kernel 2 dilated by 3, padding 1: the single window's taps (-1 and 2) both miss the
        // input. torch returns -inf and the index of the first tap past the padding (row 2, column 2 -> 6).
        using var x = Tensor.From(new double[] { 1, 2, 3, 4 }, [1, 1, 2, 2]).RequiresGrad_();
        var (y, i) = x.MaxPool2dWithIndices((2, 2), (1, 1), (1, 1), (3, 3));
        using (y)
        using (i)
        {
            TestUtil.AssertClose([double.NegativeInfinity], y);
            Assert.Equal([6L], i.ToArray<long>());
            using var s = y.Sum();
            s.Backward();
            TestUtil.AssertClose([0, 0, 0, 0], x.Grad!);
        }
    }

    [Fact]
    public void AdaptiveAvgPool2d_ZeroOutputSize_IsEmpty()
    {
        using var x = TestUtil.RandnF64([1, 2, 3, 3], 3).RequiresGrad_();
        using var y = x.AdaptiveAvgPool2d((0, 2));
        TestUtil.AssertShape(y, 1, 2, 0, 2);
        using var s = y.Sum();
        s.Backward();
        TestUtil.AssertClose(new double[18], x.Grad!);
    }

    [Fact]
    public void OffsetViews_GiveTheSameResultsAsCopies()
    {
        // A contiguous slice that starts inside its storage, and an output gradient that is a strided view.
        using var big = TestUtil.RandnF64([3, 2, 9, 11], 51);
        using var slice = big.Narrow(0, 1, 2);
        Assert.True(slice.IsContiguous);
        Assert.NotEqual(0, slice.StorageOffset);
        using var copy = slice.Clone();
        Func<Tensor, Tensor>[] ops =
        [
            t => t.MaxPool2d(3, 2, 1),
            t => t.AvgPool2d(3, 2, 1, countIncludePad: false),
            t => t.AdaptiveAvgPool2d((4, 3)),
            t => t.Interpolate((1.5, 0.7)),
            t => t.Interpolate((13, 5), InterpolationMode.Bilinear, alignCorners: true),
        ];
        foreach (var op in ops)
        {
            double[] Run(Tensor src, out double[] grad)
            {
                using var leaf = src.Detach().RequiresGrad_();
                using var y = op(leaf);
                using var gBig = TestUtil.RandnF64([y.Shape[0], y.Shape[1], y.Shape[2], 2 * y.Shape[3]], 52);
                using var g = gBig.Slice(3, 0, 2 * y.Shape[3], 2);
                y.Backward(g);
                grad = leaf.Grad!.ToDoubleArray();
                return y.ToDoubleArray();
            }
            var a = Run(slice, out var ga);
            var b = Run(copy, out var gb);
            Assert.Equal(b, a);
            Assert.Equal(gb, ga);
        }
    }

    [Fact]
    public void EmptyBatch_GivesEmptyOutput()
    {
        using var x = Tensor.Zeros(0, 3, 8, 8);
        using var m = x.MaxPool2d(2);
        TestUtil.AssertShape(m, 0, 3, 4, 4);
        using var u = x.Interpolate((2.0, 2.0), InterpolationMode.Bilinear);
        TestUtil.AssertShape(u, 0, 3, 16, 16);
    }
}
