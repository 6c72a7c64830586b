using Runtime.Autograd;
using Runtime.Backends;
using Runtime.Cpu;
using Runtime.Gpu;
using Runtime.Nn.Models;
using Runtime.Nn.Optim;
using Runtime.Testing;

namespace Runtime.Nn.Tests.Models;

/// <summary>
/// Inference fusion (eval batch norm folded into the convolution before it, bias + residual + ReLU in the
/// convolution's epilogue): fused eval forwards give the layer-by-layer outputs (float32 within 1e-4 of the output's
/// largest magnitude plus 1e-5, float64 within 1e-10 of it), a weight, norm or running statistic changed after a fused
/// forward is picked up by the next one, training and autograd forwards are untouched, and repeated fused forwards
/// hold no more memory.
/// </summary>
public class InferenceFusionTests
{
    internal const double Float32Rel = 1e-4, Float32Abs = 1e-5, Float64Rel = 1e-10;

    public static TheoryData<string, string, string, DType> ResNetCases()
    {
        var data = new TheoryData<string, string, string, DType>();
        foreach (var device in TestDevices.Names)
            foreach (var arch in new[] { "resnet18", "resnet50" })
                foreach (var norm in new[] { "batchnorm", "frozen" })
                    foreach (var dtype in new[] { DType.Float32, DType.Float64 })
                        data.Add(device, arch, norm, dtype);
        return data;
    }

    /// <summary>A ResNet-18 / -50 at widths 4, 8, 8, 16 with non-trivial norm statistics and affine parameters.</summary>
    internal static ResNet TinyResNet(string arch, string norm, DType dtype, ulong seed = 1)
    {
        Func<int, UnaryModule> normLayer = norm == "frozen"
            ? ResNet.FrozenBatchNorm(dtype)
            : c => new BatchNorm2d(c, dtype: dtype);
        var model = new ResNet(arch == "resnet18" ? ResNetBlock.Basic : ResNetBlock.Bottleneck, arch == "resnet18" ? [2, 2, 2, 2] : [3, 4, 6, 3],
            numClasses: 10, normLayer: normLayer, dtype: dtype, generator: new Generator(seed), widths: [4, 8, 8, 16]);
        RandomizeNorms(model, seed + 100);
        return model;
    }

    /// <summary>Gamma in [0.5, 1.5], beta and the running mean in [-0.2, 0.2], the running variance in [0.5, 2] for every batch norm.</summary>
    internal static void RandomizeNorms(Module model, ulong seed)
    {
        var g = new Generator(seed);
        using var _ = GradMode.NoGrad();
        foreach (var (_, m) in model.NamedModules())
        {
            var (w, b, mean, var) = m switch
            {
                BatchNorm2d bn => (bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar),
                FrozenBatchNorm2d f => (f.Weight, f.Bias, f.RunningMean, f.RunningVar),
                _ => (null, null, null, null),
            };
            if (w != null) Init.Uniform_(w, 0.5, 1.5, g);
            if (b != null) Init.Uniform_(b, -0.2, 0.2, g);
            if (mean != null) Init.Uniform_(mean, -0.2, 0.2, g);
            if (var != null) Init.Uniform_(var, 0.5, 2, g);
        }
    }

    internal static bool Skip(Device device, DType dtype) =>
        dtype == DType.Float64 && BackendRegistry.For(device) is GpuBackend { SupportsFloat64: false };

    private static double[] Values(Tensor t)
    {
        using var c = t.To(Device.Cpu);
        return c.ToDoubleArray();
    }

    /// <summary>Element-wise |fused - unfused| &lt;= rel * max|unfused| + abs, the bound the docs state.</summary>
    internal static void AssertWithinBound(double[] unfused, double[] fused, DType dtype, string what)
    {
        Assert.Equal(unfused.Length, fused.Length);
        double scale = unfused.Max(Math.Abs);
        Assert.True(scale > 1e-3, $"{what}: degenerate output (max |value| {scale})");
        double bound = dtype == DType.Float64 ? Float64Rel * scale : Float32Rel * scale + Float32Abs;
        double err = unfused.Zip(fused).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(err <= bound, $"{what}: fused differs from unfused by {err:g3} (bound {bound:g3}, scale {scale:g3})");
    }

    private static double[] Forward(ResNet model, Tensor x)
    {
        using var _ = GradMode.NoGrad();
        using var y = model.Forward(x);
        return Values(y);
    }

    private static double[] Unfused(ResNet model, Tensor x)
    {
        model.SetInferenceFusion(false);
        try { return Forward(model, x); }
        finally { model.SetInferenceFusion(true); }
    }

    private static Conv2d[] Convs(Module model) => model.NamedModules().Select(m => m.Module).OfType<Conv2d>().ToArray();

    [Theory]
    [MemberData(nameof(ResNetCases))]
    public void FusedEvalResNetMatchesUnfused(string device, string arch, string norm, DType dtype)
    {
        var dev = Device.Parse(device);
        if (Skip(dev, dtype)) return;
        using var model = TinyResNet(arch, norm, dtype);
        model.To(dev).Eval();
        using var x = Tensor.Randn([2, 3, 40, 48], new Generator(7), dtype, dev);

        var fused = Forward(model, x);
        // Every convolution of the model is followed by its norm, so every one was folded, once.
        var convs = Convs(model);
        Assert.Equal(arch == "resnet18" ? 20 : 53, convs.Length);
        Assert.All(convs, c => Assert.Equal(1, c.InferenceFold?.FoldCount));
        var again = Forward(model, x);
        Assert.Equal(fused, again);
        Assert.All(convs, c => Assert.Equal(1, c.InferenceFold?.FoldCount));

        var unfused = Unfused(model, x);
        Assert.All(convs, c => Assert.Null(c.InferenceFold)); // turning fusion off dropped the folded weights
        AssertWithinBound(unfused, fused, dtype, $"{arch} {norm} {dtype.Name()} on {device}");
    }

    public static TheoryData<string> Devices() => TestDevices.All();

    /// <summary>Writes to a convolution weight, a norm weight and a running variance after a fused forward, in place and through an optimizer step.</summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void ChangesAfterAFusedForwardArePickedUp(string device)
    {
        var dev = Device.Parse(device);
        var dtype = Skip(dev, DType.Float64) ? DType.Float32 : DType.Float64;
        using var model = TinyResNet("resnet18", "batchnorm", dtype);
        model.To(dev).Eval();
        using var x = Tensor.Randn([2, 3, 40, 48], new Generator(7), dtype, dev);
        var block = (BasicBlock)model.Layer1[0];
        var previous = Forward(model, x);
        Assert.Equal(1, block.Conv1.InferenceFold!.FoldCount);

        // The reference: the same model with autograd on, which runs the layers one by one and keeps the folded weights.
        double[] Reference()
        {
            using var y = model.Forward(x);
            return Values(y);
        }

        void Check(string what, Action change, Conv2d refolded)
        {
            long folds = refolded.InferenceFold!.FoldCount;
            using (GradMode.NoGrad()) change();
            var fused = Forward(model, x);
            Assert.Equal(folds + 1, refolded.InferenceFold!.FoldCount);
            var unfused = Reference();
            AssertWithinBound(unfused, fused, dtype, what);
            // The change is visible: a stale fold would have repeated the previous output.
            double moved = previous.Zip(unfused).Max(p => Math.Abs(p.First - p.Second));
            Assert.True(moved > 1e-3 * previous.Max(Math.Abs), $"{what}: the change did not move the output ({moved:g3})");
            previous = fused;
        }

        Check("conv weight via CopyFrom", () =>
        {
            using var scaled = block.Conv1.Weight * 1.5;
            block.Conv1.Weight.CopyFrom(scaled);
        }, block.Conv1);
        var bn2 = (BatchNorm2d)block.Bn2;
        Check("norm weight via CopyFrom", () =>
        {
            using var w = Tensor.Rand([bn2.NumFeatures], new Generator(11), dtype, dev);
            using var shifted = w + 0.25;
            bn2.Weight!.CopyFrom(shifted);
        }, (Conv2d)block.Conv2);
        var stemNorm = (BatchNorm2d)model.Bn1;
        Check("running_var via LoadStateDict", () =>
        {
            using var var = Tensor.Full([stemNorm.NumFeatures], 3.0, dtype, dev);
            model.LoadStateDict(new Dictionary<string, Tensor> { ["bn1.running_var"] = var }, strict: false);
        }, model.Conv1);
        Check("running_mean via Fill_", () => stemNorm.RunningMean!.Fill_(0.5), model.Conv1);

        // An SGD step on every parameter (gradients from an eval forward with autograd on, which neither fuses nor refolds).
        long before = block.Conv1.InferenceFold!.FoldCount;
        using (var y = model.Forward(x))
        using (var sq = y.Square())
        using (var loss = sq.Sum())
            loss.Backward();
        Assert.Equal(before, block.Conv1.InferenceFold!.FoldCount);
        var sgd = new Sgd(model.Parameters(), lr: 0.05);
        Check("optimizer step", () => sgd.Step(), block.Conv1);
        model.ZeroGrad();

        // A training-mode step updates the running statistics in place: the next eval forward refolds.
        model.Train();
        using (GradMode.NoGrad())
        using (model.Forward(x)) { }
        model.Eval();
        Check("running statistics of a training forward", () => { }, model.Conv1);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void TrainingAndAutogradForwardsAreUnchanged(string device)
    {
        var dev = Device.Parse(device);
        using var fusedModel = TinyResNet("resnet18", "batchnorm", DType.Float32);
        using var plainModel = TinyResNet("resnet18", "batchnorm", DType.Float32);
        fusedModel.To(dev);
        plainModel.To(dev).SetInferenceFusion(false);
        using var x = Tensor.Randn([2, 3, 40, 48], new Generator(7), DType.Float32, dev);

        foreach (bool training in new[] { true, false })
        {
            fusedModel.Train(training);
            plainModel.Train(training);
            using var a = fusedModel.Forward(x);
            using var b = plainModel.Forward(x);
            Assert.Equal(Values(b), Values(a)); // the same ops, bit for bit
            using (var la = a.Sum()) la.Backward();
            using (var lb = b.Sum()) lb.Backward();
            foreach (var ((name, pa), (_, pb)) in fusedModel.NamedParameters().Zip(plainModel.NamedParameters()))
                Assert.True(Values(pb.Grad!).SequenceEqual(Values(pa.Grad!)), $"{name}: gradients differ (training {training})");
            foreach (var ((name, ba), (_, bb)) in fusedModel.NamedBuffers().Zip(plainModel.NamedBuffers()))
                Assert.True(Values(bb).SequenceEqual(Values(ba)), $"{name}: buffers differ (training {training})");
            fusedModel.ZeroGrad();
            plainModel.ZeroGrad();
        }
        Assert.All(Convs(fusedModel), c => Assert.Null(c.InferenceFold));

        // Training mode under no-grad (batch statistics) does not fuse either.
        fusedModel.Train();
        using (GradMode.NoGrad())
        using (fusedModel.Forward(x)) { }
        Assert.All(Convs(fusedModel), c => Assert.Null(c.InferenceFold));
    }

    [Fact]
    public void FoldRefusesWhatItCannotFold()
    {
        using var conv = new Conv2d(3, 4, 3, bias: false);
        using var bn = new BatchNorm2d(4);
        using var wrong = new BatchNorm2d(5);
        wrong.Eval();
        using var fold = new BatchNormFold();
        Assert.False(BatchNormFold.IsFoldable(bn)); // training mode: batch statistics
        var e = Assert.Throws<ArgumentException>(() => fold.Get(conv.Weight, null, bn));
        Assert.Equal("norm", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => fold.Get(conv.Weight, null, wrong));
        Assert.Equal("norm", e.ParamName);
        Assert.Contains("running_mean", e.Message);
        using var noStats = new BatchNorm2d(4, trackRunningStats: false);
        noStats.Eval();
        Assert.False(BatchNormFold.IsFoldable(noStats));
        Assert.Throws<ArgumentNullException>(() => conv.ForwardNorm(Tensor.Zeros([1, 3, 5, 5]), null!));
    }

    /// <summary>The fold's arithmetic against a float64 reference: w' = w * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps).</summary>
    [Fact]
    public void FoldMatchesTheFloat64Formula()
    {
        using var conv = new Conv2d(3, 4, 3, bias: true, dtype: DType.Float64, generator: new Generator(3));
        using var bn = new BatchNorm2d(4, eps: 1e-3, dtype: DType.Float64);
        RandomizeNorms(bn, 5);
        bn.Eval();
        using var fold = new BatchNormFold();
        var (w, b) = fold.Get(conv.Weight, conv.Bias, bn);
        double[] cw = conv.Weight.ToDoubleArray(), cb = conv.Bias!.ToDoubleArray();
        double[] gamma = bn.Weight!.ToDoubleArray(), beta = bn.Bias!.ToDoubleArray(), mean = bn.RunningMean!.ToDoubleArray(), var = bn.RunningVar!.ToDoubleArray();
        double[] fw = w.ToDoubleArray(), fb = b.ToDoubleArray();
        Assert.Equal(conv.Weight.Shape.ToArray(), w.Shape.ToArray());
        for (int o = 0; o < 4; o++)
        {
            double s = gamma[o] / Math.Sqrt(var[o] + 1e-3);
            Assert.Equal((cb[o] - mean[o]) * s + beta[o], fb[o], 1e-14);
            for (int i = 0; i < 27; i++) Assert.Equal(cw[o * 27 + i] * s, fw[o * 27 + i], 1e-14);
        }
        Assert.Same(w, fold.Get(conv.Weight, conv.Bias, bn).Weight); // cached
        Assert.Equal(1, fold.FoldCount);
    }
}

/// <summary>Reads the process-wide allocation counters, so it runs alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class InferenceFusionMemoryCollection
{
    public const string Name = "inference fusion memory (runs alone)";
}

[Collection(InferenceFusionMemoryCollection.Name)]
public class InferenceFusionMemoryTests
{
    private static long BytesInUse(Device device) =>
        BackendRegistry.For(device) is GpuBackend gpu ? gpu.BytesInUse : BufferPool.BytesInUse;

    [Theory]
    [MemberData(nameof(InferenceFusionTests.Devices), MemberType = typeof(InferenceFusionTests))]
    public void RepeatedFusedForwardsHoldNoMoreMemory(string device)
    {
        var dev = Device.Parse(device);
        using var model = InferenceFusionTests.TinyResNet("resnet50", "batchnorm", DType.Float32);
        model.To(dev).Eval();
        using var x = Tensor.Randn([2, 3, 40, 48], new Generator(7), DType.Float32, dev);
        using var _ = GradMode.NoGrad();
        using (model.Forward(x)) { } // folds once
        long start = BytesInUse(dev);
        for (int i = 0; i < 5; i++)
            using (model.Forward(x)) { }
        Assert.True(BytesInUse(dev) <= start, $"5 fused forwards left {BytesInUse(dev) - start} more bytes in use");

        // A refold replaces the folded tensors instead of adding to them.
        var conv = ((Bottleneck)model.Layer2[0]).Conv1;
        conv.Weight.MulInPlace(0.5);
        using (model.Forward(x)) { }
        Assert.Equal(2, conv.InferenceFold!.FoldCount);
        Assert.True(BytesInUse(dev) <= start, $"a refold left {BytesInUse(dev) - start} more bytes in use");

        // The folded weights are what fusion holds: turning it off gives them back.
        long foldedBytes = model.NamedModules().Select(m => m.Module).OfType<Conv2d>()
            .Sum(c => (c.Weight.NumEl + c.OutChannels) * 4L);
        model.SetInferenceFusion(false);
        Assert.True(BytesInUse(dev) <= start - foldedBytes, $"turning fusion off released {start - BytesInUse(dev)} bytes, expected at least {foldedBytes}");
    }
}
