using Runtime.Autograd;
using Runtime.Backends;
using Runtime.Cpu;

namespace Runtime.Tests;

/// <summary>
/// The inference convolution forward of the CPU backend: the implicit GEMM (B packed straight from the input), the
/// direct pointwise GEMM and the depthwise loops, with and without the bias/residual/ReLU epilogue of
/// <see cref="IBackend.Conv2dFused"/> and with weights packed once for no-grad calls, against a float64 direct
/// convolution on the ResNet-50 and FPN layer shapes (real channel counts, planes reduced where the reference loops
/// would be slow; the 7x7 stem is full size).
/// </summary>
public class ConvForwardTests
{
    /// <summary>{N, Cin, H, W, Cout, k, stride, padding, dilation, groups}.</summary>
    private sealed record Shape(int N, int Cin, int H, int W, int Cout, int K, int S, int P, int D, int G)
    {
        public int Oh => (H + 2 * P - D * (K - 1) - 1) / S + 1;
        public int Ow => (W + 2 * P - D * (K - 1) - 1) / S + 1;
        public int[] X => [N, Cin, H, W];
        public int[] Wt => [Cout, Cin / G, K, K];
        public int[] Y => [N, Cout, Oh, Ow];
        public Conv2dGeometry Geometry => new(N, Cin, H, W, Cout, Oh, Ow, K, K, S, S, P, P, D, D, G);
    }

    private static readonly Dictionary<string, Shape> Shapes = new()
    {
        // ResNet-50 (torchvision: stride on the 3x3 of the first bottleneck of a stage).
        ["stem 7x7/2, 224x224"] = new(1, 3, 224, 224, 64, 7, 2, 3, 1, 1),
        ["stem 7x7/2, batch 8, odd plane"] = new(8, 3, 37, 33, 64, 7, 2, 3, 1, 1),
        ["layer1 3x3"] = new(8, 64, 14, 14, 64, 3, 1, 1, 1, 1),
        ["layer1 1x1 64->256, small plane (implicit)"] = new(8, 64, 9, 9, 256, 1, 1, 0, 1, 1),
        ["layer1 1x1 256->64, large plane (direct)"] = new(1, 256, 33, 32, 64, 1, 1, 0, 1, 1),
        ["layer2 3x3/2"] = new(2, 128, 29, 27, 128, 3, 2, 1, 1, 1),
        ["layer2 3x3/2, batch 1"] = new(1, 128, 56, 56, 128, 3, 2, 1, 1, 1),
        ["layer2 1x1/2 downsample"] = new(8, 256, 15, 15, 512, 1, 2, 0, 1, 1),
        ["layer3 3x3/2"] = new(8, 256, 14, 14, 256, 3, 2, 1, 1, 1),
        ["layer3 1x1/2 downsample"] = new(4, 512, 9, 9, 1024, 1, 2, 0, 1, 1),
        ["layer4 3x3/2"] = new(8, 512, 6, 6, 512, 3, 2, 1, 1, 1),
        ["layer4 3x3/2, batch 1"] = new(1, 512, 14, 14, 512, 3, 2, 1, 1, 1),
        ["layer4 1x1/2 downsample"] = new(2, 1024, 7, 7, 2048, 1, 2, 0, 1, 1),
        ["layer4 1x1 2048->512"] = new(8, 2048, 3, 3, 512, 1, 1, 0, 1, 1),
        // FPN: lateral 1x1 to 256, output 3x3, P6 3x3/2.
        ["FPN lateral 1x1 2048->256"] = new(2, 2048, 5, 7, 256, 1, 1, 0, 1, 1),
        ["FPN output 3x3"] = new(2, 256, 9, 7, 256, 3, 1, 1, 1, 1),
        ["FPN P6 3x3/2"] = new(1, 256, 7, 7, 256, 3, 2, 1, 1, 1),
        // Dilation, groups, odd corners.
        ["3x3 dilation 2"] = new(2, 64, 17, 15, 32, 3, 1, 2, 2, 1),
        ["3x3/2 dilation 2, no padding"] = new(3, 16, 19, 21, 24, 3, 2, 0, 2, 1),
        ["5x5/3, odd plane"] = new(2, 8, 23, 19, 12, 5, 3, 2, 1, 1),
        ["grouped 3x3/2 (ResNeXt)"] = new(2, 64, 12, 12, 64, 3, 2, 1, 1, 32),
        ["grouped 3x3, 4 groups"] = new(8, 32, 9, 9, 48, 3, 1, 1, 1, 4),
        ["grouped 1x1/2"] = new(2, 24, 11, 11, 36, 1, 2, 0, 1, 3),
        ["depthwise 3x3"] = new(2, 16, 11, 10, 16, 3, 1, 1, 1, 16),
        ["one output pixel"] = new(3, 40, 3, 3, 20, 3, 1, 0, 1, 1),
    };

    public static TheoryData<string, DType> ShapeCases()
    {
        var data = new TheoryData<string, DType>();
        foreach (var name in Shapes.Keys)
            data.Add(name, DType.Float32);
        foreach (var name in new[] { "stem 7x7/2, batch 8, odd plane", "layer2 3x3/2", "layer2 1x1/2 downsample", "layer4 3x3/2, batch 1",
                     "layer1 1x1 64->256, small plane (implicit)", "3x3 dilation 2", "grouped 3x3, 4 groups", "5x5/3, odd plane" })
            data.Add(name, DType.Float64);
        return data;
    }

    // ---------------------------------------------------------------- reference

    private static double[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (float)(r.NextDouble() * 2 - 1);
        return v;
    }

    /// <summary>The float64 direct convolution, plus the sum of |terms| of each output (for the float32 error bound).</summary>
    private static (double[] Y, double[] Magnitude) Reference(Shape s, double[] x, double[] w)
    {
        int cig = s.Cin / s.G, cog = s.Cout / s.G, oh = s.Oh, ow = s.Ow;
        var y = new double[s.N * s.Cout * oh * ow];
        var mag = new double[y.Length];
        for (int n = 0; n < s.N; n++)
            for (int co = 0; co < s.Cout; co++)
            {
                int yBase = (n * s.Cout + co) * oh * ow;
                for (int ci = 0; ci < cig; ci++)
                {
                    int c = co / cog * cig + ci, xBase = (n * s.Cin + c) * s.H * s.W;
                    for (int i = 0; i < s.K; i++)
                        for (int j = 0; j < s.K; j++)
                        {
                            double wv = w[((co * cig + ci) * s.K + i) * s.K + j];
                            for (int r = 0; r < oh; r++)
                            {
                                int ih = r * s.S - s.P + i * s.D;
                                if (ih < 0 || ih >= s.H) continue;
                                for (int q = 0; q < ow; q++)
                                {
                                    int iw = q * s.S - s.P + j * s.D;
                                    if (iw < 0 || iw >= s.W) continue;
                                    double t = x[xBase + ih * s.W + iw] * wv;
                                    y[yBase + r * ow + q] += t;
                                    mag[yBase + r * ow + q] += Math.Abs(t);
                                }
                            }
                        }
                }
            }
        return (y, mag);
    }

    /// <summary>Bias (per channel), residual and ReLU applied to a reference output.</summary>
    private static double[] Finish(Shape s, double[] y, double[]? bias, double[]? residual, bool relu)
    {
        int plane = s.Oh * s.Ow;
        var r = new double[y.Length];
        for (int i = 0; i < y.Length; i++)
        {
            double v = y[i];
            if (bias != null) v += bias[i / plane % s.Cout];
            if (residual != null) v += residual[i];
            r[i] = relu ? Math.Max(v, 0) : v;
        }
        return r;
    }

    private static Tensor Make(double[] v, int[] shape, DType dtype) =>
        dtype == DType.Float64 ? Tensor.From(v.ToArray(), shape) : Tensor.From(v.Select(x => (float)x).ToArray(), shape);

    /// <summary>
    /// |actual - expected| within relative 1e-5 of the expected value, or, where the sum cancels, within the float32
    /// rounding bound of its terms (k u sum|terms|, u = 2^-24); float64 within 1e-12 of sum|terms|.
    /// </summary>
    private static void AssertMatches(double[] expected, double[] magnitude, Tensor actual, DType dtype)
    {
        var got = actual.ToDoubleArray();
        Assert.Equal(expected.Length, got.Length);
        double u = dtype == DType.Float64 ? 1e-12 : 1e-5;
        for (int i = 0; i < got.Length; i++)
        {
            double tol = Math.Max(1e-5 * Math.Abs(expected[i]), u * (magnitude[i] + 1));
            if (!(Math.Abs(got[i] - expected[i]) <= tol))
                Assert.Fail($"element {i}: expected {expected[i]:R}, got {got[i]:R} (tolerance {tol:g3})");
        }
    }

    // ---------------------------------------------------------------- tests

    [Theory]
    [MemberData(nameof(ShapeCases))]
    public void Forward_MatchesFloat64DirectConvolution(string name, DType dtype)
    {
        var s = Shapes[name];
        var xv = Random(s.X.Aggregate(1, (a, b) => a * b), 1);
        var wv = Random(s.Wt.Aggregate(1, (a, b) => a * b), 2);
        var bv = Random(s.Cout, 3);
        var (y, mag) = Reference(s, xv, wv);
        var expected = Finish(s, y, bv, null, false);

        using var x = Make(xv, s.X, dtype);
        using var w = Make(wv, s.Wt, dtype);
        using var b = Make(bv, [s.Cout], dtype);
        // Recording (weights packed inside each product) and inference (weights packed once, reused).
        using (var yt = x.Conv2d(w, b, (s.S, s.S), (s.P, s.P), (s.D, s.D), s.G))
            AssertMatches(expected, mag, yt, dtype);
        using (GradMode.NoGrad())
        {
            for (int call = 0; call < 2; call++)
            {
                using var yt = x.Conv2d(w, b, (s.S, s.S), (s.P, s.P), (s.D, s.D), s.G);
                AssertMatches(expected, mag, yt, dtype);
            }
        }
    }

    public static TheoryData<string, DType, bool, bool, bool> FusedCases()
    {
        var data = new TheoryData<string, DType, bool, bool, bool>();
        foreach (var name in new[] { "layer2 3x3/2", "layer1 1x1 256->64, large plane (direct)", "layer4 1x1/2 downsample", "grouped 3x3, 4 groups", "depthwise 3x3" })
            foreach (var dtype in new[] { DType.Float32, DType.Float64 })
                for (int combo = 0; combo < 8; combo++)
                    data.Add(name, dtype, (combo & 1) != 0, (combo & 2) != 0, (combo & 4) != 0);
        return data;
    }

    [Theory]
    [MemberData(nameof(FusedCases))]
    public void Conv2dFused_EqualsComposedOps(string name, DType dtype, bool withBias, bool withResidual, bool relu)
    {
        var s = Shapes[name];
        var g = s.Geometry;
        var xv = Random(s.X.Aggregate(1, (a, b) => a * b), 4);
        var wv = Random(s.Wt.Aggregate(1, (a, b) => a * b), 5);
        var bv = Random(s.Cout, 6);
        var rv = Random(s.Y.Aggregate(1, (a, b) => a * b), 7);
        var (y, mag) = Reference(s, xv, wv);
        var expected = Finish(s, y, withBias ? bv : null, withResidual ? rv : null, relu);

        using var x = Make(xv, s.X, dtype);
        using var w = Make(wv, s.Wt, dtype);
        using var b = Make(bv, [s.Cout], dtype);
        using var r = Make(rv, s.Y, dtype);
        using var fused = Tensor.Full(s.Y, double.NaN, dtype);
        using var composed = Tensor.Full(s.Y, double.NaN, dtype);
        var backend = x.Backend;
        TensorView? bias = withBias ? b.KernelView : null, residual = withResidual ? r.KernelView : null;
        using (GradMode.NoGrad())
        {
            backend.Conv2dFused(x.KernelView, w.KernelView, bias, residual, relu, fused.KernelView, g);
            ConvComposition.Conv2dFused(backend, x.KernelView, w.KernelView, bias, residual, relu, composed.KernelView, g);
        }
        // The same products and the same additions in the same order: the same bits.
        Assert.Equal(composed.ToDoubleArray(), fused.ToDoubleArray());
        AssertMatches(expected, mag, fused, dtype);
    }

    [CpuTheory("the weight cache is the CPU backend's")]
    [InlineData("layer2 3x3/2", DType.Float32)]
    [InlineData("layer1 1x1 256->64, large plane (direct)", DType.Float32)]
    [InlineData("grouped 3x3, 4 groups", DType.Float64)]
    public void PackedWeights_FollowInPlaceWrites(string name, DType dtype)
    {
        var s = Shapes[name];
        var xv = Random(s.X.Aggregate(1, (a, b) => a * b), 8);
        var w1 = Random(s.Wt.Aggregate(1, (a, b) => a * b), 9);
        var w2 = Random(w1.Length, 10);
        using var x = Make(xv, s.X, dtype);
        using var w = Make(w1, s.Wt, dtype);
        var storage = w.KernelView.Storage;
        using (GradMode.NoGrad())
        {
            var (y1, m1) = Reference(s, xv, w1);
            using (var yt = x.Conv2d(w, null, (s.S, s.S), (s.P, s.P), (s.D, s.D), s.G))
                AssertMatches(y1, m1, yt, dtype);
            Assert.Equal(1, PackedWeights.Count(storage));

            // An optimizer step or a checkpoint load writes the weight in place: the next call must see the new values.
            using (var replacement = Make(w2, s.Wt, dtype)) w.CopyFrom(replacement);
            var (y2, m2) = Reference(s, xv, w2);
            for (int call = 0; call < 2; call++)
            {
                using var yt = x.Conv2d(w, null, (s.S, s.S), (s.P, s.P), (s.D, s.D), s.G);
                AssertMatches(y2, m2, yt, dtype);
            }
            // The stale packing was replaced, not kept beside the new one.
            Assert.Equal(1, PackedWeights.Count(storage));

            w.Fill_(0.5);
            var (y3, m3) = Reference(s, xv, Enumerable.Repeat(0.5, w1.Length).ToArray());
            using (var yt = x.Conv2d(w, null, (s.S, s.S), (s.P, s.P), (s.D, s.D), s.G))
                AssertMatches(y3, m3, yt, dtype);
        }
    }

    [CpuFact("the weight cache is the CPU backend's")]
    public void PackedWeights_SharedByConcurrentCalls()
    {
        var s = Shapes["layer3 3x3/2"];
        var xv = Random(s.X.Aggregate(1, (a, b) => a * b), 11);
        var wv = Random(s.Wt.Aggregate(1, (a, b) => a * b), 12);
        var (y, mag) = Reference(s, xv, wv);
        using var x = Make(xv, s.X, DType.Float32);
        using var w = Make(wv, s.Wt, DType.Float32);
        var results = new double[4][];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            using (GradMode.NoGrad())
            using (var yt = x.Conv2d(w, null, (s.S, s.S), (s.P, s.P), (s.D, s.D), s.G))
                results[t] = yt.ToDoubleArray();
        });
        foreach (var r in results)
        {
            using var yt = Tensor.From(r, s.Y);
            AssertMatches(y, mag, yt, DType.Float32);
        }
        Assert.Equal(1, PackedWeights.Count(w.KernelView.Storage));
    }

    [CpuFact("these checks guard the CPU epilogue's raw reads")]
    public void Conv2dFused_BadEpilogueOperands_Throw()
    {
        var s = Shapes["layer2 3x3/2"];
        var g = s.Geometry;
        using var x = Tensor.Zeros(s.X);
        using var w = Tensor.Zeros(s.Wt);
        using var y = Tensor.Zeros(s.Y);
        using var shortBias = Tensor.Zeros([s.Cout - 1]);
        using var bias64 = Tensor.Zeros([s.Cout], DType.Float64);
        using var smallResidual = Tensor.Zeros([s.N, s.Cout, s.Oh, s.Ow - 1]);
        using var residual64 = Tensor.Zeros(s.Y, DType.Float64);
        var backend = x.Backend;
        void Call(TensorView? bias, TensorView? residual) => backend.Conv2dFused(x.KernelView, w.KernelView, bias, residual, true, y.KernelView, g);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => Call(shortBias.KernelView, null)).ParamName);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => Call(bias64.KernelView, null)).ParamName);
        Assert.Equal("residual", Assert.Throws<ArgumentException>(() => Call(null, smallResidual.KernelView)).ParamName);
        Assert.Equal("residual", Assert.Throws<ArgumentException>(() => Call(null, residual64.KernelView)).ParamName);
        Assert.Equal("residual", Assert.Throws<ArgumentException>(() => Call(null, y.KernelView)).ParamName);
    }

    [Fact]
    public void Forward_EmptyBatch_GivesEmptyOutput()
    {
        // A batch of zero images has nothing to compute: no product, no epilogue, no error.
        var s = new Shape(0, 8, 9, 9, 16, 3, 2, 1, 1, 1);
        using var x = Tensor.Zeros([0, 8, 9, 9]);
        using var w = Tensor.Ones([16, 8, 3, 3]);
        using var b = Tensor.Ones([16]);
        using (GradMode.NoGrad())
        using (var y = x.Conv2d(w, b, (s.S, s.S), (s.P, s.P), (1, 1), 1))
            TestUtil.AssertShape(y, s.Y);
    }
}
