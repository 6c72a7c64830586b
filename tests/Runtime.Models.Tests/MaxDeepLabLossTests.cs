using System.Text.Json;
using Runtime.Models.Panoptic;

namespace Runtime.Models.Tests;

/// <summary>
/// The MaX-DeepLab losses against golden/make_max_deeplab.py's reference written from the paper and SPEC (random
/// slot outputs and ground truths: fewer masks than slots, more masks than slots, no mask): the Hungarian matching
/// equals scipy's, each weighted term and its gradient to 1e-6 in float64 (and to 1e-4 in float32 on every device);
/// a float64 finite-difference check of the whole loss through a tiny network; the targets' sampling.
/// </summary>
public class MaxDeepLabLossTests
{
    private static readonly JsonElement Doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Golden.Folder, "max_deeplab_loss.json"))).RootElement.Clone();

    private static readonly Dictionary<string, string> DependsOn = new()
    {
        [MaxDeepLabLoss.PqClass] = "class_logits",
        [MaxDeepLabLoss.PqMask] = "mask_logits",
        [MaxDeepLabLoss.MaskId] = "mask_logits",
        [MaxDeepLabLoss.InstanceDiscrimination] = "pixel_features",
        [MaxDeepLabLoss.Semantic] = "semantic_logits",
    };

    private static MaxDeepLabLossOptions Options
    {
        get
        {
            var c = Doc.GetProperty("config");
            return new MaxDeepLabLossOptions
            {
                Alpha = c.GetProperty("alpha").GetDouble(),
                Temperature = c.GetProperty("temperature").GetDouble(),
                PqWeight = c.GetProperty("pq_weight").GetDouble(),
                MaskIdWeight = c.GetProperty("mask_id_weight").GetDouble(),
                InstanceDiscriminationWeight = c.GetProperty("instance_weight").GetDouble(),
                SemanticWeight = c.GetProperty("semantic_weight").GetDouble(),
            };
        }
    }

    private static List<PanopticTarget> Targets()
    {
        var c = Doc.GetProperty("config");
        int h = c.GetProperty("height").GetInt32(), w = c.GetProperty("width").GetInt32();
        int hs = c.GetProperty("sem_height").GetInt32(), ws = c.GetProperty("sem_width").GetInt32();
        return Doc.GetProperty("targets").EnumerateArray().Select(t => new PanopticTarget(h, w,
            Golden.Longs(t.GetProperty("mask_ids")).Select(v => (int)v).ToArray(),
            Golden.Longs(t.GetProperty("mask_classes")).Select(v => (int)v).ToArray(),
            hs, ws, Golden.Longs(t.GetProperty("semantic_labels")).Select(v => (int)v).ToArray())).ToList();
    }

    private static Dictionary<string, Tensor> Inputs(DType dtype, Device device) =>
        Doc.GetProperty("inputs").EnumerateObject().ToDictionary(p => p.Name, p =>
        {
            var t = Tensor.From<double>(Golden.Data(p.Value), Golden.Shape(p.Value)).To(dtype).To(device);
            t.RequiresGrad = true;
            return t;
        });

    private static Dictionary<string, Tensor> Terms(Dictionary<string, Tensor> x, List<MaxDeepLabMatch>? matches = null) =>
        MaxDeepLabLoss.Compute(x["mask_logits"], x["class_logits"], x["pixel_features"], x["semantic_logits"], Targets(), Options, matches);

    [Fact]
    public void MatchesReferenceInFloat64()
    {
        using var scope = new TensorScope();
        var matches = new List<MaxDeepLabMatch>();
        var terms = Terms(Inputs(DType.Float64, Device.Cpu), matches);
        var expectedMatches = Doc.GetProperty("matches").EnumerateArray().ToArray();
        Assert.Equal(expectedMatches.Length, matches.Count);
        for (int b = 0; b < matches.Count; b++)
        {
            Assert.Equal(Golden.Ints(expectedMatches[b].GetProperty("gt")), matches[b].GtIndices);
            Assert.Equal(Golden.Ints(expectedMatches[b].GetProperty("slot")), matches[b].SlotIndices);
        }
        Assert.Equal([4, 7, 0], matches.Select(m => m.SlotIndices.Length));
        var expected = Doc.GetProperty("terms");
        Assert.Equal(expected.EnumerateObject().Select(p => p.Name).Order(), terms.Keys.Order());
        foreach (var p in expected.EnumerateObject())
        {
            double e = p.Value.GetDouble(), a = terms[p.Name].Item();
            Assert.True(Math.Abs(a - e) <= 1e-6 * Math.Max(1, Math.Abs(e)), $"{p.Name}: {a:R} vs {e:R}");
            Assert.True(e > 0.05, $"{p.Name} is trivially small ({e})");
        }

        // Each term's gradient, with respect to the one input it depends on; the others get none from it.
        foreach (var (name, wrt) in DependsOn)
        {
            var x = Inputs(DType.Float64, Device.Cpu);
            var t = Terms(x);
            t[name].Backward();
            MaxDeepLabBlockTests.AssertClose(Doc.GetProperty("grads").GetProperty(name), x[wrt].Grad!, 1e-6, $"d {name} / d {wrt}");
            foreach (var (k, v) in x)
                if (k != wrt && v.Grad is { } g)
                    Assert.Equal(0, g.Abs().Max().Item());
        }
    }

    [Theory]
    [MemberData(nameof(Runtime.Testing.TestDevices.All), MemberType = typeof(Runtime.Testing.TestDevices))]
    public void MatchesReferenceInFloat32(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var matches = new List<MaxDeepLabMatch>();
        var x = Inputs(DType.Float32, dev);
        var terms = Terms(x, matches);
        var expectedMatches = Doc.GetProperty("matches").EnumerateArray().ToArray();
        for (int b = 0; b < matches.Count; b++)
            Assert.Equal(Golden.Ints(expectedMatches[b].GetProperty("slot")), matches[b].SlotIndices);
        foreach (var p in Doc.GetProperty("terms").EnumerateObject())
            Assert.True(Math.Abs(terms[p.Name].Item() - p.Value.GetDouble()) <= 1e-4 * Math.Abs(p.Value.GetDouble()), p.Name);
        terms.Values.Aggregate((a, b) => a + b).Backward();
        // The total's gradient is the sum of the terms' gradients.
        foreach (var input in DependsOn.Values.Distinct())
        {
            var sum = DependsOn.Where(kv => kv.Value == input).Select(kv => Golden.Data(Doc.GetProperty("grads").GetProperty(kv.Key)))
                .Aggregate((a, b) => a.Zip(b, (u, v) => u + v).ToArray());
            var shape = Golden.Shape(Doc.GetProperty("inputs").GetProperty(input));
            var json = JsonSerializer.SerializeToElement(new { shape, data = sum });
            MaxDeepLabBlockTests.AssertClose(json, x[input].Grad!, 1e-4, $"d total / d {input}");
        }
    }

    [Fact]
    public void NoMasksMeansEverySlotIsVoid()
    {
        using var scope = new TensorScope();
        var gen = new Generator(5);
        int n = 4, c = 3;
        var mask = Tensor.Randn([1, n, 2, 3], gen, DType.Float64);
        var cls = Tensor.Randn([1, n, c + 1], gen, DType.Float64);
        var feat = Tensor.Randn([1, 2, 2, 3], gen, DType.Float64);
        var sem = Tensor.Randn([1, c, 1, 2], gen, DType.Float64);
        var target = new PanopticTarget(2, 3, [-1, -1, -1, -1, -1, -1], [], 1, 2, [-1, -1]);
        var terms = MaxDeepLabLoss.Compute(mask, cls, feat, sem, [target], new MaxDeepLabLossOptions());
        var logp = cls.LogSoftmax(-1).ToArray<double>();
        double expected = 0;
        for (int i = 0; i < n; i++) expected -= logp[i * (c + 1) + c];
        expected *= 3.0 * 0.25 / n;
        Assert.Equal(expected, terms[MaxDeepLabLoss.PqClass].Item(), 12);
        foreach (var k in new[] { MaxDeepLabLoss.PqMask, MaxDeepLabLoss.MaskId, MaxDeepLabLoss.InstanceDiscrimination, MaxDeepLabLoss.Semantic })
            Assert.Equal(0, terms[k].Item());
    }

    [Fact]
    public void TargetsSampleTheOutputGridsWithAlignedCorners()
    {
        // 9x9 ids sampled at 3x3 (rows/columns 0, 4, 8) and 2x2 (0, 8); segment 5 is crowd, 7 has no segment entry,
        // segment 9 is present only between the sampled pixels (dropped), 0 is void.
        var ids = new int[81];
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 9; x++)
                ids[y * 9 + x] = y < 4 ? 3 : y == 4 ? (x == 4 ? 5 : 6) : x < 3 ? 0 : x == 3 ? 9 : 7;
        var segments = new List<(long, int, bool)> { (9, 1, false), (6, 2, false), (3, 0, false), (5, 4, true) };
        var t = PanopticTarget.FromSegments(ids, 9, 9, segments, 3, 3, 2, 2);
        // Grid rows 0, 4, 8: [3 3 3], [6 5 6], [0 7 7] -> masks in segment order: 6 -> 0, 3 -> 1.
        Assert.Equal([1, 1, 1, 0, -1, 0, -1, -1, -1], t.MaskIds);
        Assert.Equal([2, 0], t.MaskClasses);
        Assert.Equal([0, 0, -1, -1], t.SemanticLabels);
    }

    private static MaxDeepLabConfig TinyConfig => new()
    {
        NumClasses = 3, ThingClasses = [0, 1], InputSize = 33,
        Layers = [1, 1, 2, 1], Widths = [4, 4, 8, 8], AxialHeads = 2, ExtraBlocks = 1,
        NumSlots = 5, MemoryChannels = 8, TransformerFilters = 4, TransformerHeads = 2, FfnChannels = 8,
        GlobalChannels = 8, FeatureDim = 4, HeadChannels = 8,
        AsppChannels = 4, AtrousRates = [1, 2, 3], SemanticDecoderChannels = 4, SemanticLowLevelChannels = [3, 2],
    };

    [Fact]
    public void WholeLossThroughATinyNetworkMatchesFiniteDifferences()
    {
        var config = TinyConfig;
        using var model = new MaxDeepLab(config, Device.Cpu, new Generator(7), DType.Float64);
        var gen = new Generator(8);
        using (GradMode.NoGrad())
            foreach (var (_, m) in model.NamedModules())
                if (m is BatchNorm2d { Weight: { } w, Bias: { } b })
                {
                    Init.Uniform_(w, 0.5, 1.5, gen);
                    Init.Uniform_(b, -0.2, 0.2, gen);
                }
        using var images = Tensor.Randn([2, 3, 33, 33], gen, DType.Float64);
        var targets = new List<PanopticTarget>();
        for (int b = 0; b < 2; b++)
        {
            var ids = new int[33 * 33];
            for (int y = 0; y < 33; y++)
                for (int x = 0; x < 33; x++)
                    ids[y * 33 + x] = b == 0 ? (x < 11 ? 1 : y < 16 ? 2 : x > 28 ? 0 : 3) : (x + y < 20 ? 4 : y > 25 ? 5 : 6);
            var segments = b == 0 ? new List<(long, int, bool)> { (1, 2, false), (2, 0, false), (3, 1, false) } : [(4, 0, false), (5, 2, false), (6, 1, false)];
            targets.Add(PanopticTarget.FromSegments(ids, 33, 33, segments, 9, 9, 9, 9));
        }
        // The matching and its weights are constants of the gradient (stop-gradient), so the finite differences keep
        // them at the unperturbed point's.
        var matches = new List<MaxDeepLabMatch>();
        // The semantic decoder's dropout draws the same mask at every evaluation.
        double Loss()
        {
            using var scope = new TensorScope();
            model.DropoutGenerator.ManualSeed(11);
            using var o = model.Forward(images);
            return MaxDeepLabLoss.Compute(o, targets, config.Loss, fixedMatches: matches).Values.Sum(t => t.Item());
        }
        using (var scope = new TensorScope())
        {
            model.DropoutGenerator.ManualSeed(11);
            using var o = model.Forward(images);
            var terms = MaxDeepLabLoss.Compute(o, targets, config.Loss, matches);
            Assert.Equal([3, 3], matches.Select(m => m.SlotIndices.Length));
            Assert.All(terms, kv => Assert.True(kv.Value.Item() > 1e-3, $"{kv.Key} = {kv.Value.Item()}"));
            terms.Values.Aggregate((a, b) => a + b).Backward();
        }
        var parameters = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        string[] names =
        [
            "memory", "conv1.weight", "layer1.0.conv2.weight", "layer3.1.height.relative_q", "layer3.1.width.qkv.weight",
            "layer4.0.transformer.pixel_qkv.weight", "layer4.0.transformer.memory_qkv.weight", "extra.0.transformer.memory_ffn1.weight",
            "extra.0.axial.conv_down.weight", "decoder8.conv0.0.weight", "pixel_head.final.weight", "semantic_head.final.weight",
            "semantic_decoder.aspp.atrous2.0.weight", "semantic_decoder.aspp.pool.0.weight", "semantic_decoder.fuse1.depthwise.weight", "semantic_decoder.low0.0.weight",
            "class_head.weight", "class_head.bias", "mask_kernel.weight", "mask_bn.weight", "class_feature.weight",
        ];
        var rng = new Random(3);
        int compared = 0, nonTrivial = 0;
        foreach (var name in names)
        {
            Assert.True(parameters.TryGetValue(name, out var p), name);
            var grad = p!.Grad!.ToArray<double>();
            var data = p.ToArray<double>();
            for (int trial = 0; trial < 2; trial++)
            {
                int i = rng.Next(data.Length);
                double eps = 1e-6, orig = data[i];
                double Eval(double v)
                {
                    data[i] = v;
                    using var t = Tensor.From<double>(data, p.Shape.ToArray());
                    using (GradMode.NoGrad()) p.CopyFrom(t);
                    return Loss();
                }
                double fd = (Eval(orig + eps) - Eval(orig - eps)) / (2 * eps);
                Eval(orig);
                Assert.True(Math.Abs(fd - grad[i]) <= 1e-5 * Math.Max(1e-2, Math.Abs(fd)), $"{name}[{i}]: analytic {grad[i]:G8}, finite differences {fd:G8}");
                compared++;
                if (Math.Abs(fd) > 1e-4) nonTrivial++;
            }
        }
        Assert.Equal(2 * names.Length, compared);
        Assert.True(nonTrivial >= compared * 3 / 4, $"only {nonTrivial} of {compared} gradients are above 1e-4");
    }
}
