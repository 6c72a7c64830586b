using System.Text.Json;
using Runtime.Autograd;
using static Runtime.Nn.Tests.Modules.ModuleTestUtil;

namespace Runtime.Nn.Tests.Modules;

public class LayerTests
{
    /// <summary>Loads the golden's named tensors into <paramref name="m"/> (non-strict), runs forward and backward with the golden upstream gradient, compares.</summary>
    internal static void CheckAgainstGolden(UnaryModule m, JsonElement g, string[] tensors, string[] gradNames)
    {
        var dict = tensors.ToDictionary(n => n, n => ToTensor(g.GetProperty(n)));
        var res = m.LoadStateDict(dict, strict: false);
        Assert.Empty(res.UnexpectedKeys);
        foreach (var t in dict.Values) t.Dispose();
        using var x = ToTensor(g.GetProperty("input")).RequiresGrad_();
        using var y = m.Forward(x);
        AssertGolden(g.GetProperty("output"), y);
        using var up = ToTensor(g.GetProperty("upstream"));
        using var prod = y * up;
        using var loss = prod.Sum();
        loss.Backward();
        AssertGolden(g.GetProperty("input_grad"), x.Grad!);
        var sd = m.StateDict();
        foreach (var n in gradNames) AssertGolden(g.GetProperty(n + "_grad"), sd[n].Grad!);
    }

    [Fact]
    public void LinearMatchesPyTorch()
    {
        using var m = new Linear(4, 3, dtype: DType.Float64);
        CheckAgainstGolden(m, Golden("linear"), ["weight", "bias"], ["weight", "bias"]);
    }

    [Fact]
    public void LayerNormMatchesPyTorch()
    {
        using var m = new LayerNorm([3, 4], dtype: DType.Float64);
        CheckAgainstGolden(m, Golden("layer_norm"), ["weight", "bias"], ["weight", "bias"]);
    }

    [Fact]
    public void BatchNorm2dTrainStepAndEvalMatchPyTorch()
    {
        var g = Golden("batch_norm2d");
        using var m = new BatchNorm2d(3, dtype: DType.Float64);
        using (var rm = ToTensor(g.GetProperty("running_mean_before")))
        using (var rv = ToTensor(g.GetProperty("running_var_before")))
        using (GradMode.NoGrad())
        {
            m.RunningMean!.CopyFrom(rm);
            m.RunningVar!.CopyFrom(rv);
        }
        CheckAgainstGolden(m, g, ["weight", "bias"], ["weight", "bias"]);
        AssertGolden(g.GetProperty("running_mean_after"), m.RunningMean!);
        AssertGolden(g.GetProperty("running_var_after"), m.RunningVar!);
        Assert.Equal(g.GetProperty("num_batches_tracked_after").GetInt64(), (long)m.NumBatchesTracked!.Item());

        m.Eval();
        m.ZeroGrad();
        var e = g.GetProperty("eval");
        using var x = ToTensor(e.GetProperty("input")).RequiresGrad_();
        using var y = m.Forward(x);
        AssertGolden(e.GetProperty("output"), y);
        using var up = ToTensor(e.GetProperty("upstream"));
        using var prod = y * up;
        using var loss = prod.Sum();
        loss.Backward();
        AssertGolden(e.GetProperty("input_grad"), x.Grad!);
        AssertGolden(g.GetProperty("running_mean_after"), m.RunningMean!);
        Assert.Equal(1, m.NumBatchesTracked!.Item());
    }

    [Fact]
    public void FrozenBatchNorm2dMatchesTorchvision()
    {
        var g = Golden("frozen_batch_norm2d");
        using var m = new FrozenBatchNorm2d(3, dtype: DType.Float64);
        Assert.Equal(g.GetProperty("eps").GetDouble(), m.Eps);
        CheckAgainstGolden(m, g, ["weight", "bias", "running_mean", "running_var"], []);
    }

    [Fact]
    public void GroupNormMatchesPyTorch()
    {
        using var m = new GroupNorm(2, 4, dtype: DType.Float64);
        CheckAgainstGolden(m, Golden("group_norm"), ["weight", "bias"], ["weight", "bias"]);
    }

    public static TheoryData<string> GradCheckLayers => new() { "linear", "relu", "leaky_relu", "gelu", "gelu_tanh", "sigmoid", "layer_norm", "batch_norm2d", "batch_norm2d_eval", "frozen_batch_norm2d", "group_norm", "dropout" };

    [Theory]
    [MemberData(nameof(GradCheckLayers))]
    public void GradCheckFloat64(string layer)
    {
        var gen = new Generator(11);
        UnaryModule m = layer switch
        {
            "linear" => new Linear(3, 2, dtype: DType.Float64, generator: gen),
            "relu" => new ReLU(),
            "leaky_relu" => new LeakyReLU(0.2),
            "gelu" => new GELU(),
            "gelu_tanh" => new GELU("tanh"),
            "sigmoid" => new Sigmoid(),
            "layer_norm" => new LayerNorm(3, dtype: DType.Float64),
            "batch_norm2d" or "batch_norm2d_eval" => new BatchNorm2d(3, dtype: DType.Float64),
            "frozen_batch_norm2d" => new FrozenBatchNorm2d(3, dtype: DType.Float64),
            "group_norm" => new GroupNorm(3, 3, dtype: DType.Float64),
            "dropout" => new Dropout(0.3, new Generator(5)),
            _ => throw new ArgumentException(layer),
        };
        using var _m = m;
        // Non-trivial affine parameters so their gradients (and the input's through them) are exercised.
        foreach (var (name, t) in m.StateDict())
        {
            using var _ = GradMode.NoGrad();
            if (name == "running_var") Init.Uniform_(t, 0.5, 1.5, gen);
            else if (t.DType == DType.Float64 && m is not Linear) Init.Normal_(t, 0, 1, gen);
        }
        if (layer == "batch_norm2d_eval") m.Eval();
        int[] shape = m is Linear ? [2, 3] : m is LayerNorm ? [2, 2, 3] : [2, 3, 2, 2];
        using var x = RandnF64(shape, 3);
        if (m is Dropout d)
        {
            // Same mask for every evaluation: reseed through a fresh layer per call.
            GradCheck(a => { using var dd = new Dropout(0.3, new Generator(5)); return dd.Forward(a[0]); }, [x]);
            return;
        }
        var ps = m.Parameters().ToList();
        GradCheck(a =>
        {
            // a[1..] are the module's parameters or their perturbed copies; load the copies under no-grad.
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
    public void DropoutScalesInTrainAndIsIdentityInEval()
    {
        using var d = new Dropout(0.25, new Generator(3));
        using var x = Tensor.Ones([200, 100], DType.Float32);
        using (var y = d.Forward(x))
        {
            var v = y.ToDoubleArray();
            Assert.All(v, e => Assert.True(e == 0 || Math.Abs(e - 1 / 0.75) < 1e-6));
            double dropped = v.Count(e => e == 0) / (double)v.Length;
            Assert.InRange(dropped, 0.23, 0.27);
        }
        d.Eval();
        using var ye = d.Forward(x);
        Assert.All(ye.ToDoubleArray(), e => Assert.Equal(1.0, e));
        using var d1 = new Dropout(1.0);
        using var y1 = d1.Forward(x);
        Assert.All(y1.ToDoubleArray(), e => Assert.Equal(0.0, e));
    }

    [Fact]
    public void BatchNormTrainUsesBatchStatsEvalUsesRunningStats()
    {
        using var bn = new BatchNorm2d(2, momentum: 0.5);
        using var x = Tensor.Randn([4, 2, 3, 3], new Generator(2)) * 3.0 + 2.0;
        using (var y = bn.Forward(x))
        {
            using var mean = y.Mean([0, 2, 3]);
            AssertClose([0, 0], mean, 1e-5, 0);
        }
        Assert.Equal(1, bn.NumBatchesTracked!.Item());
        using var bm = x.Mean([0, 2, 3]);
        var expectedRm = bm.ToDoubleArray().Select(v => 0.5 * v).ToArray();
        AssertClose(expectedRm, bn.RunningMean!, 1e-5, 1e-5);
        bn.Eval();
        using var ye = bn.Forward(x);
        using var ye2 = bn.Forward(x);
        Assert.Equal(ye.ToDoubleArray(), ye2.ToDoubleArray());
        Assert.Equal(1, bn.NumBatchesTracked!.Item());
        using var emean = ye.Mean([0, 2, 3]);
        Assert.True(emean.ToDoubleArray().All(v => Math.Abs(v) > 0.1), "eval output should not be batch-normalised");
    }

    [Fact]
    public void DefaultInitialisationFollowsPyTorch()
    {
        using var lin = new Linear(64, 256, generator: new Generator(9));
        double bound = 1 / Math.Sqrt(64);
        var w = lin.Weight.ToDoubleArray();
        Assert.All(w, v => Assert.InRange(v, -bound, bound));
        // U(-b, b): mean 0, variance b^2 / 3.
        double mean = w.Average(), var = w.Select(v => (v - mean) * (v - mean)).Average();
        Assert.InRange(mean, -0.05 * bound, 0.05 * bound);
        Assert.InRange(var, 0.95 * bound * bound / 3, 1.05 * bound * bound / 3);
        Assert.All(lin.Bias!.ToDoubleArray(), v => Assert.InRange(v, -bound, bound));
        Assert.True(w.Max() > 0.9 * bound && w.Min() < -0.9 * bound);

        using var bn = new BatchNorm2d(4);
        Assert.All(bn.Weight!.ToDoubleArray(), v => Assert.Equal(1.0, v));
        Assert.All(bn.Bias!.ToDoubleArray(), v => Assert.Equal(0.0, v));
        Assert.All(bn.RunningVar!.ToDoubleArray(), v => Assert.Equal(1.0, v));
        Assert.Equal(DType.Int64, bn.NumBatchesTracked!.DType);
    }

    [Fact]
    public void InitHelpersUseTorchFans()
    {
        using var t = Tensor.Zeros([32, 16, 3, 3], DType.Float64);
        Assert.Equal((144, 288), Init.CalculateFanInAndFanOut(t));
        Init.KaimingNormal_(t, generator: new Generator(1));
        var v = t.ToDoubleArray();
        double std = Math.Sqrt(v.Select(e => e * e).Average());
        Assert.InRange(std, 0.95 * Math.Sqrt(2.0 / 144), 1.05 * Math.Sqrt(2.0 / 144));
        Init.XavierUniform_(t, generator: new Generator(2));
        double xb = Math.Sqrt(6.0 / (144 + 288));
        Assert.All(t.ToDoubleArray(), e => Assert.InRange(e, -xb, xb));
        Init.Constant_(t, 0.5);
        Assert.All(t.ToDoubleArray(), e => Assert.Equal(0.5, e));
        Init.Zeros_(t);
        Assert.All(t.ToDoubleArray(), e => Assert.Equal(0.0, e));
        Init.Ones_(t);
        Assert.All(t.ToDoubleArray(), e => Assert.Equal(1.0, e));
        using var vec = Tensor.Zeros(3);
        Assert.Throws<ArgumentException>(() => Init.KaimingUniform_(vec));
    }
}
