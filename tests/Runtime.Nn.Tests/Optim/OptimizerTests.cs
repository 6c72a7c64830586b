using Runtime.Nn.Optim;

namespace Runtime.Nn.Tests.Optim;

public class OptimizerTests
{
    [Fact]
    public void ZeroGrad_ClearsGradients_AndParamsWithoutGradAreSkipped()
    {
        using var a = Tensor.Ones([2], DType.Float64).RequiresGrad_();
        using var b = Tensor.Ones([2], DType.Float64).RequiresGrad_();
        using var opt = new Adam([a, b], lr: 0.1);
        a.Grad = Tensor.Ones([2], DType.Float64);
        opt.Step();
        Assert.NotEqual(1.0, a.ToDoubleArray()[0]);
        Assert.Equal([1.0, 1.0], b.ToDoubleArray());
        opt.ZeroGrad();
        Assert.Null(a.Grad);
        Assert.Null(b.Grad);
    }

    [Fact]
    public void BadArguments_Throw()
    {
        using var a = Tensor.Ones([2], DType.Float64).RequiresGrad_();
        Assert.Throws<ArgumentException>(() => new Sgd([], 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([a], -1));
        Assert.Throws<ArgumentException>(() => new Sgd([a], 0.1, nesterov: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam([a], beta1: 1.0));
        using var i = Tensor.Zeros([2], DType.Int64);
        var ex = Assert.Throws<ArgumentException>(() => new Sgd([i], 0.1));
        Assert.Contains("int64", ex.Message);
        using var opt = new Sgd([a], 0.1);
        a.Grad = Tensor.Ones([3], DType.Float64);
        var ex2 = Assert.Throws<InvalidOperationException>(opt.Step);
        Assert.Contains("[3]", ex2.Message);
        opt.ZeroGrad();
    }

    [Fact]
    public void ParamGroups_ScaleTheLearningRate_AndKeepTheParameterOrder()
    {
        // p <- p - lr * m * (g + wd p) with momentum buffers per parameter; hand-computed for two steps.
        using var a = Tensor.From<double>([1.0, 2.0], 2).RequiresGrad_();
        using var b = Tensor.From<double>([3.0], 1).RequiresGrad_();
        using var c = Tensor.From<double>([-1.0], 1).RequiresGrad_();
        using var opt = new Sgd([new ParamGroup([a]), new ParamGroup([b, c], 0.1)], lr: 0.5, momentum: 0.9, weightDecay: 0.01);
        Assert.Same(a, opt.Parameters[0]);
        Assert.Same(c, opt.Parameters[2]);
        Assert.Equal([1.0, 0.1, 0.1], opt.LrMultipliers);
        for (int step = 0; step < 2; step++)
        {
            a.Grad = Tensor.From<double>([1.0, -1.0], 2);
            b.Grad = Tensor.From<double>([2.0], 1);
            c.Grad = Tensor.From<double>([4.0], 1);
            opt.Step();
            opt.ZeroGrad();
        }
        static double[] TwoSteps(double p, double g, double lr)
        {
            double d1 = g + 0.01 * p, buf = d1;
            p -= lr * buf;
            double d2 = g + 0.01 * p;
            buf = 0.9 * buf + d2;
            return [p - lr * buf];
        }
        Assert.Equal(TwoSteps(1, 1, 0.5)[0], a.ToDoubleArray()[0], 14);
        Assert.Equal(TwoSteps(2, -1, 0.5)[0], a.ToDoubleArray()[1], 14);
        Assert.Equal(TwoSteps(3, 2, 0.05)[0], b.ToDoubleArray()[0], 14);
        Assert.Equal(TwoSteps(-1, 4, 0.05)[0], c.ToDoubleArray()[0], 14);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([new ParamGroup([a], -1)], 0.1));
    }

    [Fact]
    public void TrainsLogisticRegression_InsideScopes()
    {
        // A tiny end-to-end run: loss + backward + clip + AdamW + schedule, with scoped temporaries.
        var gen = new Generator(3);
        using var x = Tensor.Randn([32, 2], gen, DType.Float64);
        using var wTrue = Tensor.From<double>([2.0, -1.0], 2, 1);
        using var logit = x.MatMul(wTrue);
        using var yb = logit.Gt(0.0);
        using var y = yb.To(DType.Float64);
        using var w = Tensor.Zeros([2, 1], DType.Float64).RequiresGrad_();
        using var opt = new AdamW([w], lr: 0.1, weightDecay: 0);
        var sched = new SequentialLR(opt, [LinearLR.Warmup(null, 0.1, 5), new CosineAnnealingLR(null, 95)], [5]);
        double first = 0, last = 0;
        for (int it = 0; it < 100; it++)
        {
            using var scope = new TensorScope();
            opt.ZeroGrad();
            var z = x.MatMul(w);
            var loss = Runtime.Nn.Losses.Losses.BinaryCrossEntropyWithLogits(z, y);
            loss.Backward();
            GradClip.ClipGradNorm([w], 1.0);
            opt.Step();
            sched.Step();
            if (it == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(last < first * 0.5, $"loss {first} -> {last}");
        var wv = w.ToDoubleArray();
        Assert.True(wv[0] > 0 && wv[1] < 0);
        opt.ZeroGrad();
    }

    [Fact]
    public void Schedulers_SetLrOnConstruction_AndRejectBadArguments()
    {
        using var a = Tensor.Ones([1], DType.Float64).RequiresGrad_();
        using var opt = new Sgd([a], 0.5);
        var warm = LinearLR.Warmup(opt, 0.001, 10);
        Assert.Equal(0.0005, opt.Lr, 15);
        for (int i = 0; i < 12; i++) warm.Step();
        Assert.Equal(0.5, opt.Lr, 15);
        Assert.Equal(12, warm.LastEpoch);
        Assert.Throws<ArgumentOutOfRangeException>(() => new LinearLR(opt, startFactor: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CosineAnnealingLR(opt, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PolynomialLR(opt, 0));
        var ex = Assert.Throws<ArgumentException>(() => new SequentialLR(opt, [new MultiStepLR(null, [3]), new MultiStepLR(null, [3])], []));
        Assert.Contains("1 milestones", ex.Message);
    }

    [Fact]
    public void ClipGradNorm_NoClipBelowMax_AndIgnoresMissingGrads()
    {
        using var a = Tensor.Zeros([2], DType.Float64).RequiresGrad_();
        using var b = Tensor.Zeros([2], DType.Float64).RequiresGrad_();
        a.Grad = Tensor.From<double>([3.0, 4.0], 2);
        Assert.Equal(5.0, GradClip.ClipGradNorm([a, b], 10.0), 12);
        Assert.Equal([3.0, 4.0], a.Grad.ToDoubleArray());
        Assert.Equal(5.0, GradClip.ClipGradNorm([a, b], 1.0), 12);
        Assert.Equal(0.6 / (1 + 2e-7), a.Grad.ToDoubleArray()[0], 6);
        a.Grad.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AdamStateDict_ResumesExactly(bool amsgrad)
    {
        // Three steps straight, versus one step, a state-dict round trip into a fresh optimizer, two more steps.
        static (Tensor W, Adam Opt) Make(bool ams)
        {
            var w = Tensor.From<float>([0.5f, -1.5f, 2f, 0.25f], [2, 2]);
            w.RequiresGrad = true;
            return (w, new Adam([w], 0.1, weightDecay: 0.01, amsgrad: ams));
        }
        static void Step(Tensor w, Adam opt, int k)
        {
            opt.ZeroGrad();
            using var scope = new TensorScope();
            ((w * w).Sum() * (k + 1) + w.Sum()).Backward();
            opt.Step();
        }
        var (w1, o1) = Make(amsgrad);
        for (int k = 0; k < 3; k++) Step(w1, o1, k);
        var (w2, o2) = Make(amsgrad);
        Step(w2, o2, 0);
        var state = o2.StateDict();
        Assert.Equal(amsgrad ? 4 : 3, state.Count);
        Assert.Equal(1L, state["step.0"].ToArray<long>()[0]);
        var (w3, o3) = Make(amsgrad);
        using (Runtime.Autograd.GradMode.NoGrad()) w3.CopyFrom(w2);
        o3.LoadStateDict(state);
        for (int k = 1; k < 3; k++) Step(w3, o3, k);
        Assert.Equal(w1.ToArray<float>(), w3.ToArray<float>());
        Assert.Throws<ArgumentException>(() => o3.LoadStateDict(new Dictionary<string, Tensor> { ["exp_avg.7"] = state["exp_avg.0"] }));
        Assert.Throws<ArgumentException>(() => o3.LoadStateDict(new Dictionary<string, Tensor> { ["momentum_buffer.0"] = state["exp_avg.0"] }));
        foreach (var o in new[] { o1, o2, o3 }) o.Dispose();
    }
}
