using Runtime.Autograd;
using static Runtime.Nn.Tests.Modules.ModuleTestUtil;

namespace Runtime.Nn.Tests.Modules;

public class ConvPoolTests
{
    private static UnaryModule ConvCase(string name) => name switch
    {
        "conv2d" => new Conv2d(4, 6, 3, stride: 2, padding: 1, groups: 2, dtype: DType.Float64),
        "conv2d_dilated" => new Conv2d(3, 4, (3, 2), (1, 2), (2, 1), (2, 1), bias: false, dtype: DType.Float64),
        "conv_transpose2d" => new ConvTranspose2d(4, 6, 3, stride: 2, padding: 1, outputPadding: 1, groups: 2, dtype: DType.Float64),
        "conv_transpose2d_dilated" => new ConvTranspose2d(3, 2, (2, 3), (2, 1), (0, 1), (1, 0), 1, false, (1, 2), dtype: DType.Float64),
        _ => throw new ArgumentException(name),
    };

    public static TheoryData<string> ConvCases => new() { "conv2d", "conv2d_dilated", "conv_transpose2d", "conv_transpose2d_dilated" };

    [Theory]
    [MemberData(nameof(ConvCases))]
    public void ConvolutionsMatchPyTorch(string name)
    {
        using var m = ConvCase(name);
        string[] names = m.StateDict().ContainsKey("bias") ? ["weight", "bias"] : ["weight"];
        LayerTests.CheckAgainstGolden(m, Golden(name), names, names);
    }

    [Fact]
    public void ConvTransposeOutputSizeMatchesPyTorch()
    {
        var g = Golden("conv_transpose2d_output_size");
        using var m = new ConvTranspose2d(2, 3, 3, stride: 2, padding: 1, dtype: DType.Float64);
        using var w = ToTensor(g.GetProperty("weight"));
        using var b = ToTensor(g.GetProperty("bias"));
        m.LoadStateDict(new Dictionary<string, Tensor> { ["weight"] = w, ["bias"] = b });
        using var x = ToTensor(g.GetProperty("input"));
        using var y = m.Forward(x, (8, 8));
        AssertGolden(g.GetProperty("output"), y);
        using (var plain = m.Forward(x)) Assert.Equal([1, 3, 7, 7], plain.Shape.ToArray());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => m.Forward(x, (9, 8)));
        Assert.Contains("between 7 and 8", e.Message);
    }

    private static UnaryModule PoolCase(string name) => name switch
    {
        "max_pool2d" => new MaxPool2d(3, 2, 1),
        "max_pool2d_ceil" => new MaxPool2d((2, 3), (2, 2), (1, 1), (1, 1), ceilMode: true),
        "avg_pool2d" => new AvgPool2d(3, 2, 1),
        "avg_pool2d_ceil_nopad" => new AvgPool2d((3, 2), (2, 2), (1, 1), ceilMode: true, countIncludePad: false),
        "adaptive_avg_pool2d" => new AdaptiveAvgPool2d((3, 2)),
        "upsample_nearest_size" => new Upsample((5, 7)),
        "upsample_nearest_scale" => new Upsample(2.0),
        "upsample_bilinear" => new Upsample((5, 7), InterpolationMode.Bilinear, alignCorners: false),
        "upsample_bilinear_align" => new Upsample((1.5, 2.5), InterpolationMode.Bilinear, alignCorners: true),
        _ => throw new ArgumentException(name),
    };

    public static TheoryData<string> PoolCases => new()
    {
        "max_pool2d", "max_pool2d_ceil", "avg_pool2d", "avg_pool2d_ceil_nopad", "adaptive_avg_pool2d",
        "upsample_nearest_size", "upsample_nearest_scale", "upsample_bilinear", "upsample_bilinear_align",
    };

    [Theory]
    [MemberData(nameof(PoolCases))]
    public void PoolingAndResamplingMatchPyTorch(string name)
    {
        using var m = PoolCase(name);
        Assert.Empty(m.StateDict());
        LayerTests.CheckAgainstGolden(m, Golden(name), [], []);
    }

    [Fact]
    public void MaxPoolIndicesMatchPyTorch()
    {
        var g = Golden("max_pool2d_indices");
        var m = new MaxPool2d(2, 2);
        using var x = ToTensor(g.GetProperty("input"));
        var (v, i) = m.ForwardWithIndices(x);
        using (v)
        using (i)
        {
            AssertGolden(g.GetProperty("output"), v);
            Assert.Equal(DType.Int64, i.DType);
            Assert.Equal(g.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(), i.Shape.ToArray());
            Assert.Equal(g.GetProperty("indices").EnumerateArray().Select(e => e.GetInt64()).ToArray(), i.ToArray<long>());
        }
    }

    public static TheoryData<string> GradCheckCases => new()
    {
        "conv2d", "conv2d_dilated", "conv_transpose2d", "conv_transpose2d_dilated",
        "max_pool2d", "max_pool2d_ceil", "avg_pool2d", "avg_pool2d_ceil_nopad", "adaptive_avg_pool2d",
        "upsample_nearest_size", "upsample_bilinear", "upsample_bilinear_align",
    };

    /// <summary>Float64 finite differences through each layer, against the input and every parameter.</summary>
    [Theory]
    [MemberData(nameof(GradCheckCases))]
    public void GradCheckFloat64(string name)
    {
        bool isConv = name.StartsWith("conv", StringComparison.Ordinal);
        using var m = isConv ? ConvCase(name) : PoolCase(name);
        int[] shape = name switch
        {
            "conv2d" => [1, 4, 5, 4],
            "conv2d_dilated" => [1, 3, 5, 5],
            "conv_transpose2d" => [1, 4, 2, 3],
            "conv_transpose2d_dilated" => [1, 3, 2, 3],
            "upsample_nearest_size" or "upsample_bilinear" or "upsample_bilinear_align" => [1, 2, 3, 3],
            _ => [1, 2, 5, 6],
        };
        using var x = RandnF64(shape, 5);
        var ps = m.Parameters().ToList();
        GradCheck(a =>
        {
            if (a.Skip(1).Any(t => !ps.Contains(t)))
            {
                using var __ = GradMode.NoGrad();
                var saved = ps.Select(p => p.Clone()).ToList();
                for (int i = 0; i < ps.Count; i++) ps[i].CopyFrom(a[i + 1]);
                try { return m.Forward(a[0]); }
                finally
                {
                    for (int i = 0; i < ps.Count; i++) { ps[i].CopyFrom(saved[i]); saved[i].Dispose(); }
                }
            }
            return m.Forward(a[0]);
        }, [x, .. ps]);
    }

    [Fact]
    public void ConvDefaultInitialisationFollowsPyTorch()
    {
        // Conv: kaiming_uniform_(a = sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = Cin/groups * kH * kW.
        using var conv = new Conv2d(32, 64, 3, groups: 2, generator: new Generator(4));
        double bound = 1 / Math.Sqrt(16 * 9);
        CheckUniform(conv.Weight.ToDoubleArray(), bound);
        Assert.All(conv.Bias!.ToDoubleArray(), v => Assert.InRange(v, -bound, bound));
        Assert.Equal([64, 16, 3, 3], conv.Weight.Shape.ToArray());

        // Transposed: weight [Cin, Cout/groups, kH, kW], torch's fan_in is dim 1 times the kernel: (Cout/groups) * kH * kW.
        using var ct = new ConvTranspose2d(64, 48, 4, groups: 2, generator: new Generator(5));
        Assert.Equal([64, 24, 4, 4], ct.Weight.Shape.ToArray());
        double tb = 1 / Math.Sqrt(24 * 16);
        CheckUniform(ct.Weight.ToDoubleArray(), tb);
        Assert.All(ct.Bias!.ToDoubleArray(), v => Assert.InRange(v, -tb, tb));

        using var nb = new Conv2d(3, 4, 1, bias: false);
        Assert.Null(nb.Bias);
        Assert.Equal(["weight"], nb.StateDict().Keys.ToArray());

        // Same generator seed, same weights.
        using var c1 = new Conv2d(3, 4, 3, generator: new Generator(8));
        using var c2 = new Conv2d(3, 4, 3, generator: new Generator(8));
        Assert.Equal(c1.Weight.ToDoubleArray(), c2.Weight.ToDoubleArray());
    }

    private static void CheckUniform(double[] w, double bound)
    {
        Assert.All(w, v => Assert.InRange(v, -bound, bound));
        double mean = w.Average(), var = w.Select(v => (v - mean) * (v - mean)).Average();
        Assert.InRange(mean, -0.05 * bound, 0.05 * bound);
        Assert.InRange(var, 0.93 * bound * bound / 3, 1.07 * bound * bound / 3);
        Assert.True(w.Max() > 0.95 * bound && w.Min() < -0.95 * bound);
    }

    [Fact]
    public void UnbatchedInputsWork()
    {
        using var conv = new Conv2d(2, 3, 3, padding: 1, generator: new Generator(1));
        using var x = Tensor.Randn([2, 5, 4], new Generator(2));
        using var y = conv.Forward(x);
        Assert.Equal([3, 5, 4], y.Shape.ToArray());
        using var xb = x.Unsqueeze(0);
        using var yb = conv.Forward(xb);
        AssertClose(yb.ToDoubleArray(), y, 1e-6, 1e-6);
        using var p = new MaxPool2d(2).Forward(x);
        Assert.Equal([2, 2, 2], p.Shape.ToArray());
    }

    [Fact]
    public void BadArgumentsAreReported()
    {
        using var conv = new Conv2d(3, 8, 3);
        using var x4 = Tensor.Zeros(1, 4, 8, 8);
        var e = Assert.Throws<ArgumentException>(() => conv.Forward(x4));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("[1, 4, 8, 8]", e.Message);
        using var x2 = Tensor.Zeros(3, 8);
        Assert.Throws<ArgumentException>(() => conv.Forward(x2));

        Assert.Equal("paddingMode", Assert.Throws<ArgumentException>(() => new Conv2d(3, 8, 3, paddingMode: "reflect")).ParamName);
        Assert.Equal("inChannels", Assert.Throws<ArgumentException>(() => new Conv2d(3, 8, 3, groups: 2)).ParamName);
        Assert.Equal("outChannels", Assert.Throws<ArgumentException>(() => new Conv2d(4, 6, 3, groups: 4)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Conv2d(0, 8, 3));
        Assert.Equal("stride", Assert.Throws<ArgumentOutOfRangeException>(() => new Conv2d(3, 8, 3, stride: 0)).ParamName);
        Assert.Equal("padding", Assert.Throws<ArgumentOutOfRangeException>(() => new Conv2d(3, 8, 3, padding: -1)).ParamName);
        Assert.Equal("dilation", Assert.Throws<ArgumentOutOfRangeException>(() => new Conv2d(3, 8, 3, dilation: 0)).ParamName);
        Assert.Equal("kernelSize", Assert.Throws<ArgumentOutOfRangeException>(() => new Conv2d(3, 8, 0)).ParamName);
        Assert.Equal("outputPadding", Assert.Throws<ArgumentOutOfRangeException>(() => new ConvTranspose2d(3, 8, 3, stride: 2, outputPadding: 2)).ParamName);
        Assert.Equal("paddingMode", Assert.Throws<ArgumentException>(() => new ConvTranspose2d(3, 8, 3, paddingMode: "circular")).ParamName);

        Assert.Equal("padding", Assert.Throws<ArgumentOutOfRangeException>(() => new MaxPool2d(3, 1, 2)).ParamName);
        Assert.Equal("stride", Assert.Throws<ArgumentOutOfRangeException>(() => new AvgPool2d(3, 0)).ParamName);
        Assert.Equal("divisorOverride", Assert.Throws<ArgumentOutOfRangeException>(() => new AvgPool2d(3, divisorOverride: 0)).ParamName);
        Assert.Equal("outputSize", Assert.Throws<ArgumentOutOfRangeException>(() => new AdaptiveAvgPool2d(-1)).ParamName);
        Assert.Equal("alignCorners", Assert.Throws<ArgumentException>(() => new Upsample((4, 4), InterpolationMode.Nearest, alignCorners: true)).ParamName);
        Assert.Equal("scaleFactor", Assert.Throws<ArgumentOutOfRangeException>(() => new Upsample(-2.0)).ParamName);
        Assert.Equal("size", Assert.Throws<ArgumentOutOfRangeException>(() => new Upsample((0, 4))).ParamName);
        using var v = Tensor.Zeros(5);
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => new MaxPool2d(2).Forward(v)).ParamName);
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => new Upsample(2.0).Forward(v)).ParamName);
    }
}

/// <summary>The fused batch-norm paths (training gradient rule, folded eval affine) against the plain composition.</summary>
public class BatchNormPathTests
{
    private static Tensor Reference(Tensor x, Tensor mean, Tensor var, double eps, Tensor? w, Tensor? b)
    {
        var shape = new int[x.Rank];
        Array.Fill(shape, 1);
        shape[1] = x.Size(1);
        using var m = mean.Reshape(shape);
        using var v = var.Reshape(shape);
        using var c = x - m;
        using var ve = v + eps;
        using var inv = ve.Rsqrt();
        var y = c * inv;
        if (w == null || b == null) return y;
        using (y)
        {
            using var w4 = w.Reshape(shape);
            using var b4 = b.Reshape(shape);
            using var s = y * w4;
            return s + b4;
        }
    }

    public static TheoryData<string> Variants => new() { "bn2d_affine", "bn2d_plain", "bn1d_rank2", "bn1d_rank3", "bn2d_untracked" };

    [Theory]
    [MemberData(nameof(Variants))]
    public void TrainingMatchesCompositionAndGradChecks(string variant)
    {
        BatchNorm2d m = variant switch
        {
            "bn2d_affine" => new BatchNorm2d(3, dtype: DType.Float64),
            "bn2d_plain" => new BatchNorm2d(3, affine: false, dtype: DType.Float64),
            "bn2d_untracked" => new BatchNorm2d(3, trackRunningStats: false, dtype: DType.Float64),
            _ => new BatchNorm1d(3, dtype: DType.Float64),
        };
        using var _m = m;
        int[] shape = variant switch { "bn1d_rank2" => [5, 3], "bn1d_rank3" => [2, 3, 4], _ => [2, 3, 3, 2] };
        var gen = new Generator(17);
        using (GradMode.NoGrad())
        {
            if (m.Weight is { } w) Init.Normal_(w, 1, 0.5, gen);
            if (m.Bias is { } b) Init.Normal_(b, 0, 0.5, gen);
        }
        using var x = Tensor.Randn(shape, gen, DType.Float64) * 2.0 + 0.7;
        var dims = Enumerable.Range(0, shape.Length).Where(d => d != 1).ToArray();
        using (GradMode.NoGrad())
        {
            using var y = m.Forward(x);
            using var mean = x.Mean(dims);
            using var var = x.Var(dims, correction: 0);
            using var want = Reference(x, mean, var, m.Eps, m.Weight, m.Bias);
            AssertClose(want.ToDoubleArray(), y, 1e-12, 1e-10);
            if (m.TrackRunningStats)
            {
                // running = 0.9 * initial + 0.1 * batch statistic (unbiased variance).
                long n = x.NumEl / 3;
                AssertClose(mean.ToDoubleArray().Select(v => 0.1 * v).ToArray(), m.RunningMean!, 1e-12, 1e-10);
                AssertClose(var.ToDoubleArray().Select(v => 0.9 + 0.1 * v * n / (n - 1)).ToArray(), m.RunningVar!, 1e-12, 1e-10);
            }
        }
        var ps = m.Parameters().ToList();
        GradCheck(a =>
        {
            if (a.Skip(1).Any(t => !ps.Contains(t)))
            {
                using var __ = GradMode.NoGrad();
                var saved = ps.Select(p => p.Clone()).ToList();
                for (int i = 0; i < ps.Count; i++) ps[i].CopyFrom(a[i + 1]);
                try { return m.Forward(a[0]); }
                finally
                {
                    for (int i = 0; i < ps.Count; i++) { ps[i].CopyFrom(saved[i]); saved[i].Dispose(); }
                }
            }
            return m.Forward(a[0]);
        }, [x, .. ps]);
    }

    [Fact]
    public void EvalAffineMatchesComposition()
    {
        using var m = new BatchNorm2d(4, dtype: DType.Float64);
        var gen = new Generator(23);
        using (GradMode.NoGrad())
        {
            Init.Normal_(m.Weight!, 1, 0.5, gen);
            Init.Normal_(m.Bias!, 0, 0.5, gen);
            Init.Normal_(m.RunningMean!, 0, 1, gen);
            Init.Uniform_(m.RunningVar!, 0.2, 2, gen);
        }
        m.Eval();
        using var x = Tensor.Randn([2, 4, 3, 3], gen, DType.Float64);
        using var y = m.Forward(x);
        using var want = Reference(x, m.RunningMean!, m.RunningVar!, m.Eps, m.Weight, m.Bias);
        AssertClose(want.ToDoubleArray(), y, 1e-12, 1e-10);
        using var frozen = new FrozenBatchNorm2d(4, dtype: DType.Float64);
        frozen.LoadStateDict(m.StateDict());
        using var yf = frozen.Forward(x);
        AssertClose(want.ToDoubleArray(), yf, 1e-12, 1e-10);
    }
}

public class ModuleScopeTests
{
    [Fact]
    public void ModulesBuiltInsideAScopeKeepTheirTensors()
    {
        Conv2d conv;
        BatchNorm2d bn;
        double[] before;
        using (var scope = new TensorScope())
        {
            conv = new Conv2d(2, 3, 3, generator: new Generator(4));
            bn = new BatchNorm2d(3);
            conv.To(Device.Cpu);
            before = conv.Weight.ToDoubleArray();
            using var tmp = Tensor.Zeros(2);
        }
        using (conv)
        using (bn)
        {
            Assert.Equal(before, conv.Weight.ToDoubleArray());
            using var x = Tensor.Randn([1, 2, 5, 5], new Generator(5));
            using var y = conv.Forward(x);
            using var z = bn.Forward(y);
            Assert.Equal([1, 3, 3, 3], z.Shape.ToArray());
            Assert.Equal(1, (long)bn.NumBatchesTracked!.Item());
        }
        Assert.Throws<ObjectDisposedException>(() => conv.Weight.ToDoubleArray());
    }
}
