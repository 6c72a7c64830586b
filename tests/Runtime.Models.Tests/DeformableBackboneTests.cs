using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Models.Training;
using Runtime.Nn.Models;
using Runtime.Vision.Ops;

namespace Runtime.Models.Tests;

/// <summary>
/// The DCNv1 / DCNv2 backbone option (BackboneConfig.Dcn): which 3x3 convolutions become deformable, their key names,
/// the zero-initialised offset layers (a fresh DCNv1 body is the plain body, a fresh DCNv2 body the plain body with its
/// deformable convolutions' weights halved: mask sigmoid(0) = 0.5) and the trainer's offset learning-rate groups.
/// The torchvision parity of loaded DCN checkpoints is in ParityTests (frcnn_r50_dcnv2 / frcnn_r50_dcnv1).
/// </summary>
public class DeformableBackboneTests
{
    private static BackboneConfig Small(string dcn, int[]? stages = null) => new()
    {
        Depth = 50, Layers = [1, 2, 1, 1], Widths = [4, 8, 8, 8], FpnChannels = 8, Dcn = dcn, DcnStages = stages ?? [2, 3, 4], TrainableLayers = 5,
    };

    [Theory]
    [InlineData("dcnv2", 27)]
    [InlineData("dcnv1", 18)]
    public void ChosenStagesGetDeformableConv2WithMmdetectionKeys(string kind, int offsetChannels)
    {
        using var backbone = new BackboneWithFpn(Small(kind, [2, 4]), generator: new Generator(1));
        var state = backbone.StateDict();
        foreach (var block in new[] { "layer2.0", "layer2.1", "layer4.0" })
        {
            var prefix = $"body.{block}.conv2.";
            Assert.Equal(new[] { 8, 8, 3, 3 }, state[prefix + "weight"].Shape.ToArray());
            Assert.False(state.ContainsKey(prefix + "bias"));
            Assert.Equal(new[] { offsetChannels, 8, 3, 3 }, state[prefix + "conv_offset.weight"].Shape.ToArray());
            Assert.All(state[prefix + "conv_offset.weight"].ToDoubleArray(), v => Assert.Equal(0.0, v));
            Assert.All(state[prefix + "conv_offset.bias"].ToDoubleArray(), v => Assert.Equal(0.0, v));
            // The deformable weight is initialised as the plain convolutions are (kaiming normal, fan out): not zero.
            Assert.Contains(state[prefix + "weight"].ToDoubleArray(), v => v != 0);
        }
        Assert.IsType<Conv2d>(((Bottleneck)backbone.Body.Layer1[0]).Conv2);
        Assert.IsType<Conv2d>(((Bottleneck)backbone.Body.Layer3[0]).Conv2);
        Assert.IsType(kind == "dcnv2" ? typeof(ModulatedDeformConv2d) : typeof(DeformConv2dPack), ((Bottleneck)backbone.Body.Layer2[0]).Conv2);
        Assert.DoesNotContain(state.Keys, k => k.StartsWith("body.layer3.", StringComparison.Ordinal) && k.Contains("conv_offset"));
        // The stride of layer2.0 stays on the 3x3 convolution (torchvision's Bottleneck v1.5), and so on its offset convolution.
        var first = ((Bottleneck)backbone.Body.Layer2[0]).Conv2;
        Assert.Equal((2, 2), first is ModulatedDeformConv2d m ? m.Stride : ((DeformConv2dPack)first).Stride);
        Assert.Equal((2, 2), (first is ModulatedDeformConv2d m2 ? m2.ConvOffset : ((DeformConv2dPack)first).ConvOffset).Stride);
    }

    [Theory]
    [InlineData("dcnv1", 1.0)]
    [InlineData("dcnv2", 0.5)]
    public void FreshDeformableBodyIsThePlainBodyScaledByTheMask(string kind, double maskAtStart)
    {
        using var plain = new BackboneWithFpn(Small("none"), DType.Float64, generator: new Generator(3));
        using var deform = new BackboneWithFpn(Small(kind), DType.Float64, generator: new Generator(4));
        var weights = plain.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
        // The plain body with the deformable layers' 3x3 weights scaled by the start mask gives the same pyramid.
        var copy = new Dictionary<string, Tensor>();
        foreach (var (k, t) in deform.StateDict())
        {
            if (k.Contains("conv_offset")) { copy[k] = t; continue; }
            copy[k] = weights[k];
        }
        deform.LoadStateDict(copy);
        var scaled = new Dictionary<string, Tensor>(weights);
        var owned = new List<Tensor>();
        foreach (var k in weights.Keys.Where(k => k.EndsWith(".conv2.weight", StringComparison.Ordinal) && !k.StartsWith("body.layer1.", StringComparison.Ordinal)))
        {
            var t = weights[k] * maskAtStart;
            owned.Add(t);
            scaled[k] = t;
        }
        Assert.Equal(4, owned.Count); // layer2.{0,1}, layer3.0, layer4.0
        plain.LoadStateDict(scaled);
        foreach (var t in owned) t.Dispose();
        plain.Eval();
        deform.Eval();
        using var x = Tensor.Rand([2, 3, 64, 48], new Generator(5), DType.Float64);
        using var noGrad = GradMode.NoGrad();
        using var a = plain.Forward(x);
        using var b = deform.Forward(x);
        Assert.Equal(a.Names, b.Names);
        for (int l = 0; l < a.Count; l++)
        {
            var want = a[l].Value.ToDoubleArray();
            var got = b[l].Value.ToDoubleArray();
            for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 1e-10);
        }
    }

    [Fact]
    public void BadDcnSettingsAreRefused()
    {
        Assert.Equal("Dcn", Assert.Throws<ArgumentException>(() => new BackboneWithFpn(Small("dcnv3"))).ParamName);
        Assert.Equal("DcnStages", Assert.Throws<ArgumentException>(() => new BackboneWithFpn(Small("dcnv2", [0, 2]))).ParamName);
        Assert.Equal("DcnStages", Assert.Throws<ArgumentException>(() => new BackboneWithFpn(Small("dcnv2", [3, 3]))).ParamName);
    }

    [Fact]
    public void OffsetLayersGetTheirOwnLearningRateMultiplier()
    {
        var config = SmokeTests.TinyFrcnn with { Backbone = SmokeTests.TinyFrcnn.Backbone with { Dcn = "dcnv2", DcnStages = [3, 4] } };
        using var model = new FasterRcnn(config, generator: new Generator(1));
        var groups = DetectionTrainer.ParameterGroups(model, 0.1);
        var names = model.NamedParameters().Where(p => p.Parameter.RequiresGrad).ToArray();
        // Model order is kept: the groups concatenate to the trainable parameters in order.
        Assert.Equal(names.Select(n => n.Parameter), groups.SelectMany(g => g.Parameters), ReferenceEqualityComparer.Instance);
        var multipliers = groups.SelectMany(g => g.Parameters.Select(_ => g.LrMultiplier)).ToArray();
        for (int i = 0; i < names.Length; i++)
            Assert.Equal(names[i].Name.Contains(".conv_offset.") ? 0.1 : 1.0, multipliers[i]);
        Assert.Equal(8, multipliers.Count(m => m == 0.1)); // layer3.{0,1} and layer4.{0,1}: weight and bias each
        Assert.Single(DetectionTrainer.ParameterGroups(model, 1.0));
    }

    [Theory]
    [InlineData("mdpool")]
    [InlineData("dpool")]
    public void DeformableBoxPoolingTrainsAndHasMmcvKeys(string pool)
    {
        var config = SmokeTests.TinyFrcnn with { BoxPool = pool, DeformPoolFcChannels = 16 };
        using var model = new FasterRcnn(config, generator: new Generator(1));
        var keys = model.StateDict().Keys.Where(k => k.StartsWith("roi_heads.box_roi_pool.", StringComparison.Ordinal)).Order().ToArray();
        var expected = new List<string> { "offset_fc.0.bias", "offset_fc.0.weight", "offset_fc.2.bias", "offset_fc.2.weight", "offset_fc.4.bias", "offset_fc.4.weight" };
        if (pool == "mdpool") expected.InsertRange(0, ["mask_fc.0.bias", "mask_fc.0.weight", "mask_fc.2.bias", "mask_fc.2.weight"]);
        Assert.Equal(expected.Select(k => "roi_heads.box_roi_pool." + k), keys);
        Assert.Equal(new[] { 2 * 49, 16 }, model.StateDict()["roi_heads.box_roi_pool.offset_fc.4.weight"].Shape.ToArray());
        model.Train();
        using var img = Tensor.Rand([3, 80, 112], new Generator(2));
        using var target = Runtime.Vision.Data.DetectionTarget.FromArrays([10, 10, 50, 40, 60, 20, 100, 70], [1, 2], null, 0, 0, [0, 0], [1200, 2000], 1);
        using var sample = new Runtime.Vision.Data.DetectionSample(img.Clone(), target);
        var losses = model.ComputeLosses([sample]);
        using var total = losses.Values.Aggregate((a, b) => a + b);
        total.Backward();
        foreach (var l in losses.Values) l.Dispose();
        var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad);
        // At start only the branches' last layers move (their inputs are non-zero); the offset gradient reaches them.
        Assert.Contains(grads["roi_heads.box_roi_pool.offset_fc.4.weight"]!.ToDoubleArray(), v => v != 0);
        if (pool == "mdpool") Assert.Contains(grads["roi_heads.box_roi_pool.mask_fc.2.bias"]!.ToDoubleArray(), v => v != 0);
        Assert.True(DetectionModel.IsOffsetParameter("roi_heads.box_roi_pool.offset_fc.4.weight"));
        Assert.False(DetectionModel.IsOffsetParameter("roi_heads.mask_predictor.mask_fcn_logits.weight"));
    }

    /// <summary>
    /// The whole DCNv2 detector (deformable c3-c5, modulated deformable RoI pooling, feature mimicking) gives the same
    /// detections and training losses on a GPU device as on the CPU (same weights, same sampling stream), and the same
    /// gradients of the deformable parts. On the CPU itself (the only device of the CPU-only SIMD runs) it checks that
    /// two models built alike agree.
    /// </summary>
    [Theory]
    [MemberData(nameof(Runtime.Testing.TestDevices.All), MemberType = typeof(Runtime.Testing.TestDevices))]
    public void Dcnv2DetectorAgreesWithTheCpu(string device)
    {
        var dev = Device.Parse(device);
        var config = SmokeTests.TinyFrcnn with
        {
            Backbone = SmokeTests.TinyFrcnn.Backbone with { Dcn = "dcnv2", DcnStages = [2, 3, 4] },
            BoxPool = "mdpool", DeformPoolFcChannels = 16, MinSize = [64], MaxSize = 96,
            RoiHeads = new RoiHeadsConfig { ScoreThresh = 0.0 },
            Mimicking = new FeatureMimickingConfig { CropSize = 32, RoisPerImage = 3 },
        };
        using var cpu = new FasterRcnn(config, generator: new Generator(11));
        using var gpu = new FasterRcnn(config, generator: new Generator(12));
        // Non-zero offset layers, so that the deformable parts move their samples.
        var state = cpu.StateDict();
        using (GradMode.NoGrad())
        {
            var gen = new Generator(13);
            foreach (var (k, t) in state)
                if (DetectionModel.IsOffsetParameter(k) && (k.Contains("conv_offset", StringComparison.Ordinal) || k.EndsWith("4.weight", StringComparison.Ordinal) || k.EndsWith("2.weight", StringComparison.Ordinal)))
                {
                    using var r = Tensor.Randn(t.Shape.ToArray(), gen, t.DType);
                    using var scaled = r * 0.02;
                    t.CopyFrom(scaled);
                }
        }
        gpu.LoadStateDict(state);
        gpu.To(dev);
        using var img = Tensor.Rand([3, 70, 90], new Generator(14));
        foreach (var m in new DetectionModel[] { cpu, gpu }) m.Eval();
        var a = cpu.Predict([img]);
        using var imgDev = img.To(dev);
        var b = gpu.Predict([imgDev]);
        Assert.True(a[0].Count > 10, $"{a[0].Count} detections");
        Assert.Equal(a[0].Labels.ToArray<long>(), b[0].Labels.ToArray<long>());
        var ba = a[0].Boxes.ToDoubleArray();
        var bb = b[0].Boxes.ToDoubleArray();
        for (int i = 0; i < ba.Length; i++) Assert.True(Math.Abs(ba[i] - bb[i]) <= 1e-3 * Math.Max(1, Math.Abs(ba[i])), $"box value {i}: cpu {ba[i]}, {device} {bb[i]}");
        var sa = a[0].Scores.ToDoubleArray();
        var sb = b[0].Scores.ToDoubleArray();
        for (int i = 0; i < sa.Length; i++) Assert.Equal(sa[i], sb[i], 4);
        foreach (var d in a.Concat(b)) d.Dispose();

        Dictionary<string, double> Step(FasterRcnn model, Tensor image)
        {
            model.Train();
            model.SeedSampling(5);
            var target = Runtime.Vision.Data.DetectionTarget.FromArrays([10, 10, 50, 40, 30, 20, 85, 65], [1, 2], null, 0, 0, [0, 0], [1200, 2475], 1);
            using var sample = new Runtime.Vision.Data.DetectionSample(image.Clone(), target);
            var losses = model.ComputeLosses([sample]);
            using var total = losses.Values.Aggregate((x, y) => x + y);
            total.Backward();
            var values = losses.ToDictionary(kv => kv.Key, kv => kv.Value.Item());
            foreach (var l in losses.Values) l.Dispose();
            return values;
        }
        var la = Step(cpu, img);
        var lb = Step(gpu, imgDev);
        Assert.Equal(la.Keys.Order(), lb.Keys.Order());
        foreach (var (k, v) in la) Assert.True(Math.Abs(v - lb[k]) <= 1e-4 * Math.Abs(v) + 1e-6, $"{k}: cpu {v}, {device} {lb[k]}");
        var ga = cpu.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad);
        var gb = gpu.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad);
        foreach (var name in new[] { "backbone.body.layer3.0.conv2.conv_offset.weight", "backbone.body.layer4.1.conv2.weight",
            "roi_heads.box_roi_pool.offset_fc.4.weight", "roi_heads.box_roi_pool.mask_fc.2.bias", "rcnn_mimic.cls_score.weight" })
        {
            var want = ga[name]!.ToDoubleArray();
            var got = gb[name]!.ToDoubleArray();
            double scale = want.Max(Math.Abs);
            Assert.True(scale > 0, $"{name}: no gradient");
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(want[i] - got[i]) <= 2e-3 * scale, $"{name}[{i}]: cpu {want[i]}, {device} {got[i]}");
        }
    }
}
