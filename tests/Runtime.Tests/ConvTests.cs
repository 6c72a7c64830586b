using System.Text.Json;

namespace Runtime.Tests;

/// <summary>
/// Conv2d and ConvTranspose2d: outputs and gradients against torch goldens (golden/make_conv_goldens.py), against
/// a float64 loop reference on shapes that reach each CPU path (pointwise, im2col, batched im2col, grouped,
/// depthwise), finite-difference gradient checks, and argument errors.
/// </summary>
public class ConvTests
{
    // ---------------------------------------------------------------- torch goldens

    private sealed record Golden(
        string Name, string Op, int[] Stride, int[] Padding, int[] Dilation, int Groups, int[] OutputPadding, bool Noncontig,
        int[] XShape, double[] X, int[] WShape, double[] W, double[]? B, int[] YShape, double[] Y, double[] Gy,
        double[] Gx, double[] Gw, double[]? Gb);

    private sealed record GoldenFile(string Torch, Golden[] Cases);

    private static readonly Lazy<Dictionary<string, Golden>> Goldens = new(() =>
    {
        var path = Path.Combine(AppContext.BaseDirectory, "golden", "conv_goldens.json");
        var file = JsonSerializer.Deserialize<GoldenFile>(File.ReadAllText(path), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        return file.Cases.ToDictionary(c => c.Name);
    });

    public static TheoryData<string, DType> GoldenCases()
    {
        var data = new TheoryData<string, DType>();
        foreach (var name in new[]
                 {
                     "basic3x3", "pad_stride", "nonsquare", "dilation", "groups", "depthwise", "depthwise_mult_stride", "pointwise",
                     "pointwise_stride2", "k7_stride2", "asym_pad_stride", "noncontig", "convT_basic", "convT_stride_outpad",
                     "convT_groups", "convT_dilation", "convT_depthwise_k4s2", "convT_noncontig",
                 })
        {
            data.Add(name, DType.Float32);
            data.Add(name, DType.Float64);
        }
        return data;
    }

    private static Tensor Make(double[] v, int[] shape, DType dtype) =>
        dtype == DType.Float64 ? Tensor.From(v.ToArray(), shape) : Tensor.From(v.Select(x => (float)x).ToArray(), shape);

    /// <summary>The same values as a non-contiguous view: stored with the last two dimensions swapped, then transposed back.</summary>
    private static Tensor MakeStrided(double[] v, int[] shape, DType dtype)
    {
        int h = shape[^2], w = shape[^1], planes = v.Length / (h * w);
        var t = new double[v.Length];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                    t[p * h * w + j * h + i] = v[p * h * w + i * w + j];
        var swapped = shape.ToArray();
        (swapped[^2], swapped[^1]) = (w, h);
        using var s = Make(t, swapped, dtype);
        return s.Transpose(-2, -1);
    }

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void MatchesTorch(string name, DType dtype)
    {
        var c = Goldens.Value[name];
        using var x = (c.Noncontig ? MakeStrided(c.X, c.XShape, dtype) : Make(c.X, c.XShape, dtype)).RequiresGrad_();
        using var w = (c.Noncontig ? MakeStrided(c.W, c.WShape, dtype) : Make(c.W, c.WShape, dtype)).RequiresGrad_();
        using var b = c.B is null ? null : Make(c.B, [c.B.Length], dtype).RequiresGrad_();
        if (c.Noncontig) Assert.False(x.IsContiguous);
        var stride = (c.Stride[0], c.Stride[1]);
        var padding = (c.Padding[0], c.Padding[1]);
        var dilation = (c.Dilation[0], c.Dilation[1]);
        using var y = c.Op == "conv"
            ? x.Conv2d(w, b, stride, padding, dilation, c.Groups)
            : x.ConvTranspose2d(w, b, stride, padding, (c.OutputPadding[0], c.OutputPadding[1]), c.Groups, dilation);
        TestUtil.AssertShape(y, c.YShape);
        var (atol, rtol) = dtype == DType.Float64 ? (1e-9, 1e-9) : (2e-4, 1e-4);
        TestUtil.AssertClose(c.Y, y, atol, rtol);
        using var gy = Make(c.Gy, c.YShape, dtype);
        using var prod = y * gy;
        using var loss = prod.Sum();
        loss.Backward();
        TestUtil.AssertClose(c.Gx, x.Grad!, atol, rtol);
        TestUtil.AssertClose(c.Gw, w.Grad!, atol, rtol);
        if (b is not null) TestUtil.AssertClose(c.Gb!, b.Grad!, atol, rtol);
    }

    [Fact]
    public void UnbatchedInput_GivesUnbatchedOutput()
    {
        var c = Goldens.Value["pad_stride"];
        // Image 0 of the golden batch, without the batch dimension.
        int per = c.X.Length / c.XShape[0], perY = c.Y.Length / c.YShape[0];
        using var x = Make(c.X[..per], c.XShape[1..], DType.Float64).RequiresGrad_();
        using var w = Make(c.W, c.WShape, DType.Float64);
        using var b = Make(c.B!, [c.B!.Length], DType.Float64);
        using var y = x.Conv2d(w, b, stride: 2, padding: 1);
        TestUtil.AssertShape(y, c.YShape[1..]);
        TestUtil.AssertClose(c.Y[..perY], y, 1e-9, 1e-9);
        using var s = y.Sum();
        s.Backward();
        TestUtil.AssertShape(x.Grad!, c.XShape[1..]);

        var t = Goldens.Value["convT_basic"];
        int perT = t.X.Length / t.XShape[0], perTY = t.Y.Length / t.YShape[0];
        using var xt = Make(t.X[..perT], t.XShape[1..], DType.Float64);
        using var wt = Make(t.W, t.WShape, DType.Float64);
        using var bt = Make(t.B!, [t.B!.Length], DType.Float64);
        using var yt = xt.ConvTranspose2d(wt, bt);
        TestUtil.AssertShape(yt, t.YShape[1..]);
        TestUtil.AssertClose(t.Y[..perTY], yt, 1e-9, 1e-9);
    }

    [Fact]
    public void ConvTranspose2d_BackwardAfterTheInputIsDisposed()
    {
        // A layer's intermediate input may be disposed once the forward is done (its saved copy serves the backward).
        var gen = new Generator(5);
        using var leaf = Tensor.Randn([2, 3, 4, 4], gen).RequiresGrad_();
        using var w = Tensor.Randn([3, 2, 2, 2], gen).RequiresGrad_();
        Tensor y;
        using (var x = leaf * 2.0) y = x.ConvTranspose2d(w, null, stride: 2);
        using (y)
        using (var s = y.Sum())
            s.Backward();
        Assert.NotNull(leaf.Grad);
        Assert.NotNull(w.Grad);
        Assert.Equal(leaf.ShapeArray, leaf.Grad!.ShapeArray);
    }

    // ---------------------------------------------------------------- float64 loop reference

    /// <summary>Sizes of a forward convolution, as the reference loops see them.</summary>
    private sealed record Geo(int N, int Cin, int H, int W, int Cout, int Kh, int Kw, int Sh, int Sw, int Ph, int Pw, int Dh, int Dw, int G)
    {
        public int Oh => (H + 2 * Ph - Dh * (Kh - 1) - 1) / Sh + 1;
        public int Ow => (W + 2 * Pw - Dw * (Kw - 1) - 1) / Sw + 1;

        /// <summary>Calls f(xIndex, wIndex, yIndex) for every multiply-add of the convolution.</summary>
        public void ForEachTap(Action<int, int, int> f)
        {
            int cig = Cin / G, cog = Cout / G;
            for (int n = 0; n < N; n++)
                for (int co = 0; co < Cout; co++)
                    for (int oh = 0; oh < Oh; oh++)
                        for (int ow = 0; ow < Ow; ow++)
                            for (int ci = 0; ci < cig; ci++)
                                for (int i = 0; i < Kh; i++)
                                    for (int j = 0; j < Kw; j++)
                                    {
                                        int ih = oh * Sh - Ph + i * Dh, iw = ow * Sw - Pw + j * Dw;
                                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                        int c = co / cog * cig + ci;
                                        f(((n * Cin + c) * H + ih) * W + iw, ((co * cig + ci) * Kh + i) * Kw + j, ((n * Cout + co) * Oh + oh) * Ow + ow);
                                    }
        }
    }

    private static double[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (float)(r.NextDouble() * 2 - 1);
        return v;
    }

    public static TheoryData<string, int[], DType> PathCases()
    {
        // name: {N, Cin, H, W, Cout, kH, kW, stride, padding, dilation, groups}. The CPU backend multiplies pointwise
        // convolutions image by image when the output plane has at least 1024 pixels; the forward of other convolutions
        // is an implicit GEMM (ConvForwardTests covers its shapes), their backward unfolds tiles of
        // max(1024, 2^19 / (Cin/groups*kH*kW)) output pixels or more: runs of whole images when the plane is smaller
        // than that, bands of output rows of one image when it is larger.
        var shapes = new (string, int[])[]
        {
            ("pointwise, large plane (direct GEMM)", [2, 16, 33, 32, 24, 1, 1, 1, 0, 1, 1]),
            ("pointwise, small plane (batched)", [6, 40, 4, 4, 24, 1, 1, 1, 0, 1, 1]),
            ("3x3, large plane (im2col per image)", [2, 8, 34, 31, 16, 3, 3, 1, 1, 1, 1]),
            ("3x3, small plane (batched im2col)", [5, 32, 7, 7, 48, 3, 3, 1, 1, 1, 1]),
            ("3x3, row bands", [1, 64, 40, 40, 8, 3, 3, 1, 1, 1, 1]),
            ("3x3 stride 2, row bands, two images", [2, 48, 90, 90, 4, 3, 3, 2, 1, 1, 1]),
            ("7x7 stride 2", [2, 3, 30, 30, 8, 7, 7, 2, 3, 1, 1]),
            ("1x1 stride 2", [3, 24, 9, 9, 20, 1, 1, 2, 0, 1, 1]),
            ("grouped", [2, 8, 10, 10, 12, 3, 3, 1, 1, 1, 4]),
            ("grouped, large plane", [2, 6, 32, 33, 4, 3, 3, 1, 1, 1, 2]),
            ("grouped pointwise, large plane", [2, 8, 32, 32, 12, 1, 1, 1, 0, 1, 4]),
            ("grouped, dilated, small plane", [4, 12, 6, 6, 6, 3, 3, 1, 2, 2, 3]),
            ("depthwise", [3, 12, 9, 9, 12, 3, 3, 1, 1, 1, 12]),
            ("depthwise, multiplier 2, stride 2", [2, 5, 11, 10, 10, 3, 3, 2, 1, 1, 5]),
            ("depthwise 5x5 dilated", [1, 4, 12, 12, 4, 5, 5, 1, 4, 2, 4]),
        };
        var data = new TheoryData<string, int[], DType>();
        foreach (var (name, s) in shapes)
        {
            data.Add(name, s, DType.Float32);
            data.Add(name, s, DType.Float64);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(PathCases))]
    public void Conv2d_FastPathsMatchLoopReference(string name, int[] s, DType dtype)
    {
        _ = name;
        var g = new Geo(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[7], s[8], s[8], s[9], s[9], s[10]);
        int[] xs = [g.N, g.Cin, g.H, g.W], ws = [g.Cout, g.Cin / g.G, g.Kh, g.Kw], ys = [g.N, g.Cout, g.Oh, g.Ow];
        var xv = Random(xs.Aggregate(1, (a, b) => a * b), 1);
        var wv = Random(ws.Aggregate(1, (a, b) => a * b), 2);
        var bv = Random(g.Cout, 3);
        var gyv = Random(ys.Aggregate(1, (a, b) => a * b), 4);
        var y = new double[gyv.Length];
        var gx = new double[xv.Length];
        var gw = new double[wv.Length];
        var gb = new double[g.Cout];
        g.ForEachTap((xi, wi, yi) =>
        {
            y[yi] += xv[xi] * wv[wi];
            gx[xi] += gyv[yi] * wv[wi];
            gw[wi] += gyv[yi] * xv[xi];
        });
        int plane = g.Oh * g.Ow;
        for (int i = 0; i < y.Length; i++)
        {
            y[i] += bv[i / plane % g.Cout];
            gb[i / plane % g.Cout] += gyv[i];
        }

        using var x = Make(xv, xs, dtype).RequiresGrad_();
        using var w = Make(wv, ws, dtype).RequiresGrad_();
        using var b = Make(bv, [g.Cout], dtype).RequiresGrad_();
        using var yt = x.Conv2d(w, b, (g.Sh, g.Sw), (g.Ph, g.Pw), (g.Dh, g.Dw), g.G);
        TestUtil.AssertShape(yt, ys);
        // Float32 error grows with the number of terms in each sum.
        double Tol(int terms) => dtype == DType.Float64 ? 1e-10 : 2e-6 * terms;
        int kTerms = g.Cin / g.G * g.Kh * g.Kw;
        TestUtil.AssertClose(y, yt, Tol(kTerms), 1e-5);
        using var gyt = Make(gyv, ys, dtype);
        using var prod = yt * gyt;
        using var loss = prod.Sum();
        loss.Backward();
        TestUtil.AssertClose(gx, x.Grad!, Tol(g.Cout / g.G * g.Kh * g.Kw), 1e-5);
        TestUtil.AssertClose(gw, w.Grad!, Tol(g.N * plane), 1e-5);
        TestUtil.AssertClose(gb, b.Grad!, Tol(g.N * plane), 1e-5);
    }

    [Theory]
    [MemberData(nameof(PathCases))]
    public void ConvTranspose2d_MatchesLoopReference(string name, int[] s, DType dtype)
    {
        _ = name;
        // The transposed convolution of input u [N, Cout, Oh, Ow] with weight [Cout, Cin/G, kh, kw] is the input gradient
        // of the forward convolution g; its weight gradient is g's weight gradient with x and gy swapped.
        var g = new Geo(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[7], s[8], s[8], s[9], s[9], s[10]);
        int[] us = [g.N, g.Cout, g.Oh, g.Ow], ws = [g.Cout, g.Cin / g.G, g.Kh, g.Kw], zs = [g.N, g.Cin, g.H, g.W];
        var uv = Random(us.Aggregate(1, (a, b) => a * b), 5);
        var wv = Random(ws.Aggregate(1, (a, b) => a * b), 6);
        var gzv = Random(zs.Aggregate(1, (a, b) => a * b), 7);
        var z = new double[gzv.Length];
        var gu = new double[uv.Length];
        var gw = new double[wv.Length];
        g.ForEachTap((xi, wi, yi) =>
        {
            z[xi] += uv[yi] * wv[wi];
            gu[yi] += gzv[xi] * wv[wi];
            gw[wi] += gzv[xi] * uv[yi];
        });
        // Output padding recovers the rows and columns the forward formula drops.
        int oph = g.H - ((g.Oh - 1) * g.Sh - 2 * g.Ph + g.Dh * (g.Kh - 1) + 1);
        int opw = g.W - ((g.Ow - 1) * g.Sw - 2 * g.Pw + g.Dw * (g.Kw - 1) + 1);
        using var u = Make(uv, us, dtype).RequiresGrad_();
        using var w = Make(wv, ws, dtype).RequiresGrad_();
        using var zt = u.ConvTranspose2d(w, null, (g.Sh, g.Sw), (g.Ph, g.Pw), (oph, opw), g.G, (g.Dh, g.Dw));
        TestUtil.AssertShape(zt, zs);
        double Tol(int terms) => dtype == DType.Float64 ? 1e-10 : 2e-6 * terms;
        TestUtil.AssertClose(z, zt, Tol(g.Cout / g.G * g.Kh * g.Kw), 1e-5);
        using var gzt = Make(gzv, zs, dtype);
        using var prod = zt * gzt;
        using var loss = prod.Sum();
        loss.Backward();
        TestUtil.AssertClose(gu, u.Grad!, Tol(g.Cin / g.G * g.Kh * g.Kw), 1e-5);
        TestUtil.AssertClose(gw, w.Grad!, Tol(g.N * g.Oh * g.Ow), 1e-5);
    }

    // ---------------------------------------------------------------- finite differences

    [Fact]
    public void Conv2d_GradCheck()
    {
        using var x = TestUtil.RandnF64([2, 4, 5, 6], 11);
        using var w = TestUtil.RandnF64([6, 2, 3, 2], 12);
        using var b = TestUtil.RandnF64([6], 13);
        TestUtil.GradCheck(t => t[0].Conv2d(t[1], t[2], (2, 1), (1, 2), (1, 2), groups: 2), [x, w, b]);
    }

    [Fact]
    public void Conv2d_Depthwise_GradCheck()
    {
        using var x = TestUtil.RandnF64([2, 3, 6, 5], 14);
        using var w = TestUtil.RandnF64([6, 1, 3, 3], 15);
        using var b = TestUtil.RandnF64([6], 16);
        TestUtil.GradCheck(t => t[0].Conv2d(t[1], t[2], stride: 2, padding: 1, groups: 3), [x, w, b]);
    }

    [Fact]
    public void ConvTranspose2d_GradCheck()
    {
        using var x = TestUtil.RandnF64([2, 4, 3, 4], 17);
        using var w = TestUtil.RandnF64([4, 3, 3, 2], 18);
        using var b = TestUtil.RandnF64([6], 19);
        TestUtil.GradCheck(t => t[0].ConvTranspose2d(t[1], t[2], (2, 1), (1, 0), (1, 0), groups: 2, (1, 2)), [x, w, b]);
    }

    [Fact]
    public void ConvTranspose2d_OutputPaddingBelowDilation_GradCheck()
    {
        // Stride 1 with output padding 1 is allowed because dilation is 2.
        using var x = TestUtil.RandnF64([1, 2, 3, 3], 20);
        using var w = TestUtil.RandnF64([2, 2, 2, 2], 21);
        using var b = TestUtil.RandnF64([2], 22);
        TestUtil.GradCheck(t => t[0].ConvTranspose2d(t[1], t[2], stride: 1, padding: 1, outputPadding: 1, dilation: 2), [x, w, b]);
    }

    // ---------------------------------------------------------------- argument checks

    private static ArgumentException Throws(Action a, string param, params string[] fragments)
    {
        var e = Assert.ThrowsAny<ArgumentException>(a);
        Assert.Equal(param, e.ParamName);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
        return e;
    }

    [Fact]
    public void Conv2d_BadArguments_Throw()
    {
        using var x = Tensor.Zeros(1, 4, 5, 5);
        using var w = Tensor.Zeros(6, 2, 3, 3);
        using var x2 = Tensor.Zeros(4, 5);
        Throws(() => x2.Conv2d(w), "input", "[4, 5]");
        using var w3 = Tensor.Zeros(6, 4, 3);
        Throws(() => x.Conv2d(w3), "weight", "[6, 4, 3]");
        Throws(() => x.Conv2d(w, groups: 3), "groups", "[1, 4, 5, 5]", "groups=3");
        using var w5 = Tensor.Zeros(5, 2, 3, 3);
        Throws(() => x.Conv2d(w5, groups: 2), "groups", "[5, 2, 3, 3]");
        Throws(() => x.Conv2d(w), "weight", "[1, 4, 5, 5]", "[6, 2, 3, 3]", "4 channels");
        using var big = Tensor.Zeros(6, 4, 7, 3);
        Throws(() => x.Conv2d(big), "weight", "[1, 4, 5, 5]", "[6, 4, 7, 3]");
        using var ok = Tensor.Zeros(6, 4, 3, 3);
        Throws(() => x.Conv2d(ok, stride: 0), "stride", "[1, 4, 5, 5]");
        Throws(() => x.Conv2d(ok, padding: -1), "padding");
        Throws(() => x.Conv2d(ok, dilation: 0), "dilation");
        Throws(() => x.Conv2d(ok, groups: 0), "groups");
        Throws(() => x.Conv2d(ok, dilation: 3), "weight", "7x7");
        using var bad = Tensor.Zeros(5);
        Throws(() => x.Conv2d(ok, bad), "bias", "[5]", "[6]");
        using var xi = Tensor.From(new int[100], 1, 4, 5, 5);
        Throws(() => xi.Conv2d(ok), "input", "int32");
        using var w64 = Tensor.Zeros([6, 4, 3, 3], DType.Float64);
        Throws(() => x.Conv2d(w64), "weight", "float64");
    }

    [Fact]
    public void ConvTranspose2d_BadArguments_Throw()
    {
        using var x = Tensor.Zeros(1, 4, 5, 5);
        using var w = Tensor.Zeros(3, 2, 3, 3);
        Throws(() => x.ConvTranspose2d(w), "weight", "[1, 4, 5, 5]", "[3, 2, 3, 3]");
        using var ok = Tensor.Zeros(4, 2, 3, 3);
        Throws(() => x.ConvTranspose2d(ok, groups: 3), "groups", "groups=3");
        Throws(() => x.ConvTranspose2d(ok, stride: 2, outputPadding: 2), "outputPadding");
        Throws(() => x.ConvTranspose2d(ok, outputPadding: -1), "outputPadding");
        Throws(() => x.ConvTranspose2d(ok, stride: -1), "stride");
        Throws(() => x.ConvTranspose2d(ok, padding: 4), "padding", "not positive");
        using var bad = Tensor.Zeros(4);
        Throws(() => x.ConvTranspose2d(ok, bad), "bias", "[4]", "[2]");
        using var x1 = Tensor.Zeros(5);
        Throws(() => x1.ConvTranspose2d(ok), "input", "[5]");
    }
}
