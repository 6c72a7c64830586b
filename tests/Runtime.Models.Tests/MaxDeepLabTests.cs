using Runtime.Models.Panoptic;
using Runtime.Models.Training;
using Runtime.Nn.Checkpoints;
using Runtime.Vision.Data;

namespace Runtime.Models.Tests;

/// <summary>
/// The MaX-DeepLab network and its inference: output shapes and gradients on every device (the same weights give the
/// CPU's outputs to 1e-3 of their scale, in training mode through the whole float32 network), the post-processing rules on hand-made logits, the catalogue, checkpoints, and training (the loss
/// falls on a repeated batch; a seeded run resumed from its checkpoint repeats the uninterrupted one).
/// </summary>
public class MaxDeepLabTests
{
    internal static MaxDeepLabConfig Tiny => new()
    {
        NumClasses = 9, ThingClasses = [0, 1, 2, 3, 4, 5], InputSize = 65,
        Layers = [1, 1, 2, 1], Widths = [4, 8, 8, 8], AxialHeads = 2, ExtraBlocks = 1,
        NumSlots = 6, MemoryChannels = 8, TransformerFilters = 4, TransformerHeads = 2, FfnChannels = 8,
        GlobalChannels = 8, FeatureDim = 4, HeadChannels = 8,
        AsppChannels = 6, AtrousRates = [1, 2, 3], SemanticDecoderChannels = 6, SemanticLowLevelChannels = [4, 3],
    };

    [Theory]
    [MemberData(nameof(Runtime.Testing.TestDevices.All), MemberType = typeof(Runtime.Testing.TestDevices))]
    public void RunsOnEveryDeviceAsOnTheCpu(string device)
    {
        var dev = Device.Parse(device);
        using var cpuModel = new MaxDeepLab(Tiny, Device.Cpu, new Generator(1));
        using var model = new MaxDeepLab(Tiny, Device.Cpu, new Generator(1));
        var gen = new Generator(2);
        // Non-zero batch-norm weights everywhere (the residual branches start at zero), the same in both models.
        using (GradMode.NoGrad())
            foreach (var m in new[] { cpuModel, model })
            {
                var g = new Generator(3);
                foreach (var (_, mod) in m.NamedModules())
                    if (mod is BatchNorm2d { Weight: { } w }) Init.Uniform_(w, 0.5, 1.5, g);
            }
        model.To(dev);
        using var imagesCpu = Tensor.Randn([2, 3, 65, 65], gen);
        using var images = imagesCpu.To(dev);
        var targets = new[] { SyntheticTarget(65), SyntheticTarget(65) };
        using var scope = new TensorScope();
        var expected = cpuModel.Forward(imagesCpu);
        var output = model.Forward(images);
        Assert.Equal(new[] { 2, 6, 17, 17 }, output.MaskLogits.Shape.ToArray());
        Assert.Equal(new[] { 2, 6, 10 }, output.ClassLogits.Shape.ToArray());
        Assert.Equal(new[] { 2, 4, 17, 17 }, output.PixelFeatures.Shape.ToArray());
        Assert.Equal(new[] { 2, 9, 17, 17 }, output.SemanticLogits!.Shape.ToArray());
        var norms = output.PixelFeatures.Square().Sum(1).To(Device.Cpu).ToArray<float>();
        Assert.All(norms, v => Assert.Equal(1, v, 4));
        foreach (var (e, a, name) in new[] { (expected.MaskLogits, output.MaskLogits, "masks"), (expected.ClassLogits, output.ClassLogits, "classes"),
                     (expected.PixelFeatures, output.PixelFeatures, "features"), (expected.SemanticLogits!, output.SemanticLogits!, "semantic") })
        {
            var ev = e.ToArray<float>();
            var av = a.To(Device.Cpu).ToArray<float>();
            double scale = ev.Max(v => Math.Abs(v));
            double err = ev.Zip(av).Max(p => Math.Abs(p.First - p.Second));
            Assert.True(err <= 1e-3 * Math.Max(1, scale), $"{name}: {err} (scale {scale})");
        }
        // The void prior: every slot starts 90% void.
        var probs = output.ClassLogits.Softmax(-1).To(Device.Cpu).ToArray<float>();
        for (int i = 0; i < 12; i++) Assert.InRange(probs[i * 10 + 9], 0.85, 0.95);

        // The CPU model's gradients; the device's loss takes the CPU's matching (and its stop-gradient weights), so both
        // differentiate the same function.
        var cpuMatches = new List<MaxDeepLabMatch>();
        MaxDeepLabLoss.Compute(expected, targets, Tiny.Loss, cpuMatches).Values.Aggregate((a, b) => a + b).Backward();
        var losses = MaxDeepLabLoss.Compute(output, targets, Tiny.Loss, fixedMatches: cpuMatches);
        losses.Values.Aggregate((a, b) => a + b).Backward();
        var missing = model.NamedParameters().Where(p => p.Parameter.Grad == null).Select(p => p.Name).ToArray();
        Assert.Empty(missing);
        // Each tensor within 2e-3 of its largest gradient, plus 1e-4 of the largest over the model for the gradients that
        // are zero in theory (biases before a batch norm or a softmax) and so only rounding noise on either side.
        var pairs = cpuModel.NamedParameters().Zip(model.NamedParameters(), (c, d) => (c.Name, Cpu: c.Parameter.Grad!.ToArray<float>(), Dev: d.Parameter.Grad!.To(Device.Cpu).ToArray<float>())).ToArray();
        double overall = pairs.Max(q => q.Cpu.Max(v => Math.Abs(v)));
        foreach (var (name, gc, gd) in pairs)
        {
            double scale = gc.Max(v => Math.Abs(v));
            double err = gc.Zip(gd).Max(q => Math.Abs(q.First - q.Second));
            Assert.True(err <= 2e-3 * scale + 1e-4 * overall, $"{name}: gradient differs from the CPU's by {err} (scale {scale}, model {overall})");
        }
        // Every weight gets a non-zero gradient, but the biases whose gradient is zero in theory: those of the batch
        // norms before a softmax over the normalised axis and of the height attention's output (the width attention's
        // q/k/v batch norm removes it).
        var zero = model.NamedParameters().Where(p => p.Parameter.Grad!.Abs().Max().To(Device.Cpu).Item() == 0).Select(p => p.Name).ToArray();
        Assert.All(zero, name => Assert.Matches(@"(similarity|similarity_bn|height\.bn_output|mask_bn)\.bias$", name));

        model.Eval();
        using var image = Tensor.Rand([3, 50, 70], gen);
        using var imageDev = image.To(dev);
        var p = Assert.Single(model.Predict([imageDev]));
        Assert.Equal((50, 70), (p.Height, p.Width));
        Assert.Equal(50 * 70, p.Ids.Length);
    }

    [Fact]
    public void InferenceCanSkipTheSemanticBranch()
    {
        using var model = new MaxDeepLab(Tiny, Device.Cpu, new Generator(1));
        model.Eval();
        using var images = Tensor.Randn([2, 3, 65, 65], new Generator(2));
        using var scope = new TensorScope();
        using var full = model.Forward(images);
        using var lean = model.Forward(images, semantic: false);
        Assert.Null(lean.SemanticLogits);
        Assert.Equal(full.MaskLogits.ToArray<float>(), lean.MaskLogits.ToArray<float>());
        Assert.Equal(full.ClassLogits.ToArray<float>(), lean.ClassLogits.ToArray<float>());
        var t = SyntheticTarget(65);
        var error = Assert.Throws<ArgumentException>(() => MaxDeepLabLoss.Compute(lean, [t, t], Tiny.Loss));
        Assert.Contains("semantic", error.Message);
    }

    [Fact]
    public void OutputStrideEightKeepsTheBackboneAtStrideEight()
    {
        // Without the auxiliary semantic decoder the semantic head sits on the backbone, so its logits show the stride.
        var config = Tiny with { OutputStride = 8, SemanticDecoder = false };
        Assert.Equal(9, config.BackboneSize);
        Assert.Equal(8, config.SemanticStride);
        using var model = new MaxDeepLab(config, Device.Cpu, new Generator(1));
        using var images = Tensor.Randn([2, 3, 65, 65], new Generator(2));
        using var scope = new TensorScope();
        var o = model.Forward(images);
        Assert.Equal(new[] { 2, 6, 17, 17 }, o.MaskLogits.Shape.ToArray());
        Assert.Equal(new[] { 2, 9, 9, 9 }, o.SemanticLogits!.Shape.ToArray());
        var t = PanopticTarget.FromSegments(new int[65 * 65], 65, 65, [], 17, 17, 9, 9);
        var losses = MaxDeepLabLoss.Compute(o, [t, t], config.Loss);
        Assert.True(losses[MaxDeepLabLoss.PqClass].Item() > 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MaxDeepLab(Tiny with { OutputStride = 32 }));
    }

    internal static PanopticTarget SyntheticTarget(int size)
    {
        var ids = new int[size * size];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                ids[y * size + x] = y < size / 3 ? 1 : x > size / 2 && y > size / 2 ? 3 : 2;
        return PanopticTarget.FromSegments(ids, size, size, [(1, 6, false), (2, 7, false), (3, 0, false)],
            MaxDeepLabConfig.FeatureSize(size, 4), MaxDeepLabConfig.FeatureSize(size, 4), MaxDeepLabConfig.FeatureSize(size, 4), MaxDeepLabConfig.FeatureSize(size, 4));
    }

    [Fact]
    public void PostProcessingFollowsThePixelWiseRules()
    {
        // 4 slots on a 3x3 grid (input 9 px, image 9x9 so the grid aligns with every 4th pixel), classes: 0 thing, 1 and 2 stuff.
        // Slot 0: confident thing (class 0), left column. Slot 1 and 2: confident stuff class 1 (merged), middle and right
        // columns of the top row. Slot 3: not confident (most probable class at 0.5); it wins the bottom-right cell.
        int n = 4, g = 3, c = 3;
        var mask = new float[n * g * g];
        void Set(int slot, int y, int x, float v) => mask[slot * g * g + y * g + x] = v;
        for (int y = 0; y < g; y++) Set(0, y, 0, 8);
        Set(1, 0, 1, 8);
        Set(2, 0, 2, 8);
        Set(3, 2, 2, 8);
        Set(1, 1, 1, 1); Set(2, 1, 1, 1); Set(0, 1, 1, 1.2f); // centre: slot 0 wins with probability < 0.4 among the kept slots
        var cls = new float[n * (c + 1)];
        float[][] rows = [[5, 0, 0, 0], [0, 5, 0, 0], [0, 5, 0, 0], [1, 0, 0, 1]];
        for (int i = 0; i < n; i++) rows[i].CopyTo(cls, i * (c + 1));
        var options = new MaxDeepLabInferenceOptions();
        var p = MaxDeepLabPostProcessor.Process(mask, n, g, g, cls, c, 9, 9, 9, 9, 9, new HashSet<int> { 0 }, options);
        int At(int y, int x) => p.Ids[y * 9 + x];
        var thing = Assert.Single(p.Segments, s => s.IsThing);
        var stuff = Assert.Single(p.Segments, s => !s.IsThing);
        Assert.Equal(0, thing.Class);
        Assert.Equal(1, stuff.Class);
        Assert.Equal(thing.Id, At(0, 0));
        Assert.Equal(thing.Id, At(8, 0));
        Assert.Equal(stuff.Id, At(0, 4));
        Assert.Equal(stuff.Id, At(0, 8)); // slots 1 and 2 are one stuff segment
        Assert.Equal(0, At(8, 8));        // slot 3 is not kept: void
        Assert.Equal(0, At(4, 4));        // probability below 0.4: void
        Assert.Equal(p.Ids.Count(v => v == thing.Id), thing.Area);
        Assert.Equal(Math.Exp(5) / (Math.Exp(5) + 3), thing.Score, 6);
        Assert.Equal(0, thing.Bbox[0]);
        Assert.Equal(0, thing.Bbox[1]);
        Assert.Equal(9, thing.Bbox[3]);
        // Area limits turn small segments void; nothing kept leaves everything void.
        var limited = MaxDeepLabPostProcessor.Process(mask, n, g, g, cls, c, 9, 9, 9, 9, 9, new HashSet<int> { 0 }, options with { StuffAreaLimit = 1000 });
        Assert.Single(limited.Segments);
        Assert.DoesNotContain(limited.Ids, v => v == 2);
        var none = MaxDeepLabPostProcessor.Process(mask, n, g, g, cls, c, 9, 9, 9, 9, 9, new HashSet<int> { 0 }, options with { ClassThreshold = 0.999 });
        Assert.Empty(none.Segments);
        Assert.All(none.Ids, v => Assert.Equal(0, v));
    }

    [Fact]
    public void PostProcessingMapsTheResizedInputBackToTheImage()
    {
        // A 34x9 image was resized to 17x9 in a 17 px input; the 5x5 logit grid covers the input with aligned corners
        // (grid row = input row / 4). Slot 0 owns grid rows 0-1, slot 1 rows 2-4: they tie at input row 6, i.e. image
        // row 12.5 ((y + 0.5) * 17 / 34 - 0.5 = 6), not at image row 6 as a grid laid directly on the image would have it.
        int n = 2, g = 5, c = 1;
        var mask = new float[n * g * g];
        for (int y = 0; y < g; y++)
            for (int x = 0; x < g; x++)
            {
                mask[y * g + x] = y < 2 ? 5 : -5;
                mask[g * g + y * g + x] = y < 2 ? -5 : 5;
            }
        float[] cls = [5, 0, 5, 0];
        var p = MaxDeepLabPostProcessor.Process(mask, n, g, g, cls, c, 17, 17, 9, 34, 9, new HashSet<int> { 0 }, new MaxDeepLabInferenceOptions());
        Assert.Equal(2, p.Segments.Count);
        for (int y = 0; y < 34; y++)
            for (int x = 0; x < 9; x++)
                Assert.Equal(y <= 12 ? 1 : 2, p.Ids[y * 9 + x]);
        Assert.Equal(13 * 9, p.Segments[0].Area);
    }

    [Fact]
    public void CatalogueBuildsMaxDeepLabS()
    {
        var entry = ModelCatalog.GetPanoptic("max_deeplab_s");
        var c = entry.DefaultConfig();
        Assert.Equal((641, 128, 128, 133, 80), (c.InputSize, c.NumSlots, c.FeatureDim, c.NumClasses, c.ThingClasses.Length));
        Assert.Equal(41, c.BackboneSize);
        using var model = entry.Build(c, Device.Cpu, new Generator(1));
        // ResNet-50 body: stages of 3, 4, 6, 3 blocks; the stride-16 stage axial after its first block, the last stage dual-path.
        Assert.Equal(3, model.Layer1.Count);
        Assert.Equal(4, model.Layer2.Count);
        Assert.Equal(6, model.Layer3.Count);
        Assert.IsType<Runtime.Nn.Models.Bottleneck>(model.Layer3[0]);
        Assert.All(Enumerable.Range(1, 5), i => Assert.IsType<AxialBottleneck>(model.Layer3[i]));
        Assert.Equal(3, model.Layer4.Count);
        Assert.All(model.Layer4, b => Assert.IsType<DualPathBlock>(b));
        Assert.Equal(2048, ((DualPathBlock)model.Layer4[0]).OutChannels);
        Assert.Equal(new[] { 256, 128 }, model.Memory.Shape.ToArray());
        // The paper's 61.9M for MaX-DeepLab-S; the auxiliary semantic decoder and head (DeepLab2's, only the training
        // loss reads them: an ASPP of 2048 -> 256 channels, the stride-8 / stride-4 fusion, the head) come on top.
        static bool Auxiliary(string name) => name.StartsWith("semantic_decoder.", StringComparison.Ordinal) || name.StartsWith("semantic_head.", StringComparison.Ordinal);
        long parameters = model.NamedParameters().Where(p => !Auxiliary(p.Name)).Sum(p => (long)p.Parameter.NumEl);
        long auxiliary = model.NamedParameters().Where(p => Auxiliary(p.Name)).Sum(p => (long)p.Parameter.NumEl);
        Assert.InRange(parameters, 55_000_000, 68_000_000);
        Assert.InRange(auxiliary, 15_000_000, 17_000_000);
        Assert.Throws<ArgumentException>(() => new MaxDeepLab(Tiny with { AtrousRates = [1, 2] }));
        Assert.Throws<ArgumentException>(() => new MaxDeepLab(Tiny with { SemanticLowLevelChannels = [4] }));
        Assert.Throws<ArgumentException>(() => ModelCatalog.Get("max_deeplab_s"));
        Assert.Contains("max_deeplab_compact", ModelCatalog.AllNames);
    }

    [Fact]
    public void CheckpointRoundTrips()
    {
        var dir = Directory.CreateTempSubdirectory("maxdl-ckpt-").FullName;
        try
        {
            using var model = new MaxDeepLab(Tiny, Device.Cpu, new Generator(4));
            var info = new PanopticCheckpointInfo { Model = "tiny", Config = Tiny, Categories = ShapesDataset.PanopticCategories, Epoch = 2 };
            MaxDeepLabCheckpoint.Save(dir, model, info);
            Assert.True(MaxDeepLabCheckpoint.IsPanoptic(dir));
            var (loaded, read) = MaxDeepLabCheckpoint.Load(dir);
            using (loaded)
            {
                Assert.Equal(2, read.Epoch);
                Assert.Equal(Tiny.ThingClasses, read.Config.ThingClasses);
                Assert.Equal(9, read.Categories!.Count);
                var a = model.StateDict();
                foreach (var (k, t) in loaded.StateDict())
                    Assert.Equal(a[k].To(DType.Float64).ToArray<double>(), t.To(DType.Float64).ToArray<double>());
            }
            File.WriteAllText(Path.Combine(dir, "config.json"), "{\"task\": \"panoptic\", \"model\": \"tiny\", \"config\": {\"num_slots\": -3}}");
            Assert.Throws<CheckpointFormatException>(() => MaxDeepLabCheckpoint.Load(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void LossFallsOnARepeatedBatch()
    {
        using var model = new MaxDeepLab(Tiny, Device.Cpu, new Generator(5));
        var gen = new Generator(6);
        using var images = Tensor.Randn([2, 3, 65, 65], gen);
        var targets = new[] { SyntheticTarget(65), SyntheticTarget(65) };
        using var optimizer = new Runtime.Nn.Optim.Adam(model.Parameters().ToArray(), 3e-3);
        var totals = new List<double>();
        for (int step = 0; step < 40; step++)
        {
            using var scope = new TensorScope();
            using var o = model.Forward(images);
            var sum = MaxDeepLabLoss.Compute(o, targets, Tiny.Loss).Values.Aggregate((a, b) => a + b);
            totals.Add(sum.Item());
            optimizer.ZeroGrad();
            sum.Backward();
            optimizer.Step();
        }
        Assert.True(totals[^1] < 0.6 * totals[0], $"loss {string.Join(" ", totals.Select(t => t.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))}");
    }

    private sealed class StopAfterEpoch(CancellationTokenSource source) : ITrainingObserver
    {
        public void OnEpoch(EpochSummary summary) => source.Cancel();
    }

    [Fact]
    public void SeededTrainingResumesAsTheUninterruptedRun()
    {
        var dir = Directory.CreateTempSubdirectory("maxdl-train-").FullName;
        try
        {
            var shapes = new ShapesOptions { MinImageSize = 48, MaxImageSize = 64, MinShapes = 1, MaxShapes = 2, MinRadius = 6, Parallel = false };
            var files = ShapesDataset.GeneratePanoptic(Path.Combine(dir, "data"), 4, 9, shapes);
            var data = new CocoPanoptic(files.ImageFolder, files.PanopticFolder!, files.PanopticJson!);
            var options = new PanopticTrainOptions { Epochs = 2, BatchSize = 2, Workers = 0, WarmupIters = 1, EvalEveryEpoch = false };
            double[] Run(string outDir, bool split)
            {
                using var model = new MaxDeepLab(Tiny, Device.Cpu, new Generator(11));
                if (split)
                {
                    // Interrupted after the first epoch (its checkpoint written), then resumed with the same options.
                    using var stop = new CancellationTokenSource();
                    Assert.Throws<OperationCanceledException>(() => new PanopticTrainer("tiny", model, data, null, options, outDir).Run(new StopAfterEpoch(stop), cancel: stop.Token));
                    using var resumed = new MaxDeepLab(Tiny, Device.Cpu, new Generator(99));
                    var history = new PanopticTrainer("tiny", resumed, data, data, options, outDir).Run(resume: true);
                    Assert.Equal(1, Assert.Single(history).Epoch);
                    Assert.NotNull(history[0].Panoptic);
                    return resumed.StateDict().Values.SelectMany(t => t.To(DType.Float64).ToArray<double>()).ToArray();
                }
                new PanopticTrainer("tiny", model, data, null, options, outDir).Run();
                return model.StateDict().Values.SelectMany(t => t.To(DType.Float64).ToArray<double>()).ToArray();
            }
            var whole = Run(Path.Combine(dir, "whole"), split: false);
            var resumedRun = Run(Path.Combine(dir, "split"), split: true);
            Assert.Equal(whole, resumedRun);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
