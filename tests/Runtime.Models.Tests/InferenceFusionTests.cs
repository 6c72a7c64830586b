using Runtime.Backends;
using Runtime.Gpu;
using Runtime.Models.Panoptic;
using Runtime.Testing;
using Runtime.Vision.Ops;

namespace Runtime.Models.Tests;

/// <summary>
/// Inference fusion in the catalogue's compact models: the fused eval forward (batch norms folded into the
/// convolutions and projections before them) gives the layer-by-layer outputs, float32 within 1e-4 of each output's
/// largest magnitude plus 1e-5 and float64 within 1e-10 of it; weights written after a fused forward are picked up.
/// </summary>
public class InferenceFusionTests
{
    private const double Float32Rel = 1e-4, Float32Abs = 1e-5, Float64Rel = 1e-10;

    public static TheoryData<string, DType> DevicesAndDTypes()
    {
        var data = new TheoryData<string, DType>();
        foreach (var device in TestDevices.Names)
            foreach (var dtype in new[] { DType.Float32, DType.Float64 })
                data.Add(device, dtype);
        return data;
    }

    private static bool NoFloat64(Device device) => BackendRegistry.For(device) is GpuBackend { SupportsFloat64: false };

    /// <summary>Gamma in [0.5, 1.5], beta and the running mean in [-0.2, 0.2], the running variance in [0.5, 2] for every batch norm.</summary>
    private static void RandomizeNorms(Module model, ulong seed)
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

    private static double[] Values(Tensor t)
    {
        using var c = t.To(Device.Cpu);
        return c.ToDoubleArray();
    }

    private static void AssertWithinBound(double[] unfused, double[] fused, DType dtype, string what)
    {
        Assert.Equal(unfused.Length, fused.Length);
        double scale = unfused.Max(Math.Abs);
        Assert.True(scale > 1e-3, $"{what}: degenerate output (max |value| {scale})");
        double bound = dtype == DType.Float64 ? Float64Rel * scale : Float32Rel * scale + Float32Abs;
        double err = unfused.Zip(fused).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(err <= bound, $"{what}: fused differs from unfused by {err:g3} (bound {bound:g3}, scale {scale:g3})");
    }

    /// <summary>
    /// fasterrcnn_compact in eval: every convolution + batch norm of a detector is in its backbone (the FPN and heads
    /// have none), so the pyramid the heads read is compared, level by level.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void CompactDetectorPyramidMatchesUnfused(string device)
    {
        var dev = Device.Parse(device);
        using var model = ModelCatalog.Get("fasterrcnn_compact").Build(generator: new Generator(1));
        RandomizeNorms(model, 2);
        model.To(dev);
        model.Eval();
        using var images = Tensor.Randn([2, 3, 96, 128], new Generator(3), DType.Float32, dev);
        using var _ = GradMode.NoGrad();
        double[][] Pyramid()
        {
            using var maps = model.Backbone.Forward(images);
            return maps.Select(kv => Values(kv.Value)).ToArray();
        }
        var fused = Pyramid();
        var convs = model.Backbone.Body.NamedModules().Select(m => m.Module).OfType<Conv2d>().ToArray();
        Assert.All(convs, c => Assert.Equal(1, c.InferenceFold?.FoldCount));
        model.SetInferenceFusion(false);
        var unfused = Pyramid();
        Assert.Equal(model.Backbone.FeatureNames.Count, fused.Length);
        for (int i = 0; i < fused.Length; i++)
            AssertWithinBound(unfused[i], fused[i], DType.Float32, $"level {model.Backbone.FeatureNames[i]} on {device}");

        // The whole detector runs fused and unfused.
        model.SetInferenceFusion(true);
        using var image = Tensor.Rand([3, 80, 112], new Generator(4), DType.Float32, dev);
        foreach (var d in model.Predict([image])) d.Dispose();
        Assert.All(convs, c => Assert.NotNull(c.InferenceFold));
    }

    private static MaxDeepLab CompactMaxDeepLab(DType dtype) =>
        new(ModelCatalog.GetPanoptic("max_deeplab_compact").DefaultConfig(), Device.Cpu, new Generator(1), dtype);

    private static double[][] Outputs(MaxDeepLab model, Tensor images)
    {
        using var output = model.Forward(images);
        return [Values(output.MaskLogits), Values(output.ClassLogits), Values(output.PixelFeatures), Values(output.SemanticLogits!)];
    }

    private static readonly string[] OutputNames = ["mask logits", "class logits", "pixel features", "semantic logits"];

    [Theory]
    [MemberData(nameof(DevicesAndDTypes))]
    public void CompactMaxDeepLabMatchesUnfused(string device, DType dtype)
    {
        var dev = Device.Parse(device);
        if (dtype == DType.Float64 && NoFloat64(dev)) return;
        using var model = CompactMaxDeepLab(dtype);
        RandomizeNorms(model, 2);
        model.To(dev);
        model.Eval();
        using var images = Tensor.Randn([2, 3, 65, 65], new Generator(3), dtype, dev);
        using var _ = GradMode.NoGrad();
        var fused = Outputs(model, images);
        var again = Outputs(model, images); // the cached folds, reused, give the same bits
        for (int i = 0; i < fused.Length; i++) Assert.Equal(fused[i], again[i]);

        // Every convolution followed by a batch norm was folded (only the semantic head's last layer has none after
        // it), and so were the dual-path 1x1 projections and the axial attentions' q/k/v projections.
        var modules = model.NamedModules().ToArray();
        var unfolded = modules.Where(m => m.Module is Conv2d { InferenceFold: null }).Select(m => m.Name).ToArray();
        Assert.Equal(["semantic_head.final"], unfolded);
        Assert.All(modules.Select(m => m.Module).OfType<PointwiseConvBn>(), p => Assert.Equal(1, p.InferenceFold?.FoldCount));
        Assert.All(modules.Select(m => m.Module).OfType<AxialAttention>(), a => Assert.Equal(1, a.InferenceFold?.FoldCount));

        model.SetInferenceFusion(false);
        var unfused = Outputs(model, images);
        for (int i = 0; i < fused.Length; i++)
            AssertWithinBound(unfused[i], fused[i], dtype, $"{OutputNames[i]} ({dtype.Name()} on {device})");
    }

    /// <summary>A dual-path projection's weight and its norm's running variance, and an axial q/k/v norm's weight, written after a fused forward.</summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void MaxDeepLabPicksUpChangedWeights(string device)
    {
        var dev = Device.Parse(device);
        var dtype = NoFloat64(dev) ? DType.Float32 : DType.Float64;
        using var model = CompactMaxDeepLab(dtype);
        RandomizeNorms(model, 2);
        model.To(dev);
        model.Eval();
        using var images = Tensor.Randn([1, 3, 65, 65], new Generator(3), dtype, dev);
        double[][] Fused()
        {
            using var _ = GradMode.NoGrad();
            return Outputs(model, images);
        }
        double[][] Reference() => Outputs(model, images); // autograd on: the layers one by one, the folds kept
        var before = Fused();
        var block = (DualPathBlock)model.Layer4[0];
        var projection = block.Transformer.MemoryConv1;
        var attention = block.Axial.Height;
        using (GradMode.NoGrad())
        {
            using var w = projection.Weight * -0.75;
            projection.Weight.CopyFrom(w);
            projection.Bn.RunningVar!.Fill_(0.25);
            attention.BnQkv!.Weight!.Fill_(2.0);
        }
        var after = Fused();
        Assert.Equal(2, projection.InferenceFold!.FoldCount);
        Assert.Equal(2, attention.InferenceFold!.FoldCount);
        var reference = Reference();
        for (int i = 0; i < after.Length; i++)
            AssertWithinBound(reference[i], after[i], dtype, $"{OutputNames[i]} after the writes ({device})");
        // The writes moved the class logits (read from the memory path): a stale fold would have repeated them.
        double moved = before[1].Zip(reference[1]).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(moved > 1e-3 * before[1].Max(Math.Abs), $"the writes did not move the class logits ({moved:g3})");
    }
}
