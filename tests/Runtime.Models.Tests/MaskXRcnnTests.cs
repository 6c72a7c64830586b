using System.Text.Json;
using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Models.Training;
using Runtime.Nn.Optim;
using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;
using Runtime.Vision.Ops;

namespace Runtime.Models.Tests;

/// <summary>
/// Mask^X R-CNN (Hu et al. 2018): the weight transfer T and the mask loss through it against finite differences in
/// float64, the stop-gradient, partial supervision (a hand-derived loss that ignores the B classes' positives, masks
/// for B at test time, T carrying A's training over to B), the logits against a float64 1x1 convolution with
/// T(w_det[c]) computed by hand, every mask head on every device, and the options through config.json and
/// checkpoints.
/// </summary>
public class MaskXRcnnTests
{
    internal static MaskXRcnnConfig Tiny(string head = "transfer_mlp") => new()
    {
        Backbone = new BackboneConfig { Depth = 18, Layers = [1, 1, 1, 1], Widths = [8, 8, 16, 16], FpnChannels = 8 },
        NumClasses = 4, MinSize = [96], MaxSize = 160,
        AnchorSizes = [[8], [16], [32], [64], [128]],
        RepresentationSize = 16,
        MaskLayers = [8, 8], MaskDimReduced = 8,
        MaskHead = head, MaskMlpLayers = [16],
    };

    public static TheoryData<string, string> DevicesAndHeads()
    {
        var d = new TheoryData<string, string>();
        foreach (var dev in Runtime.Testing.TestDevices.Names)
            foreach (var head in MaskXRcnnConfig.MaskHeads) d.Add(dev, head);
        return d;
    }

    /// <summary>An 80 x 112 image with a class-1 object (set A in these tests) and a class-3 one, with soft-edged masks.</summary>
    private static DetectionSample Sample(Device device, Generator gen)
    {
        int h = 80, w = 112;
        float[] boxes = [10, 10, 50, 40, 60, 20, 100, 70];
        var planes = new byte[2 * h * w];
        for (int k = 0; k < 2; k++)
            for (int y = (int)boxes[4 * k + 1]; y < boxes[4 * k + 3]; y++)
                for (int x = (int)boxes[4 * k]; x < boxes[4 * k + 2]; x++)
                    planes[(k * h + y) * w + x] = (byte)((x + y) % 5 == 0 ? 0 : 1);
        var target = DetectionTarget.FromArrays(boxes, [1, 3], planes, h, w, [0, 0], [1, 1], 1);
        using var image = Tensor.Rand([3, h, w], gen);
        return new DetectionSample(image.To(device), target);
    }

    /// <summary>Every parameter of <paramref name="module"/> set to N(0, scale^2) values (so zero-initialised biases are tested at a generic point).</summary>
    private static void Randomize(Module module, Generator gen, double scale = 0.5)
    {
        using var noGrad = GradMode.NoGrad();
        foreach (var p in module.Parameters())
        {
            using var r = Tensor.Randn(p.Shape.ToArray(), gen, DType.Float64);
            using var s = r * scale;
            using var cast = s.To(p.DType).To(p.Device);
            p.CopyFrom(cast);
        }
    }

    [Theory]
    [MemberData(nameof(DevicesAndHeads))]
    public void RunsBothWaysWithEveryMaskHead(string device, string head)
    {
        var dev = Device.Parse(device);
        var config = Tiny(head) with { RoiHeads = new RoiHeadsConfig { ScoreThresh = 0 }, MaskClasses = [1] };
        using var model = Assert.IsType<MaskXRcnn>(DetectionModel.Create(config, dev, new Generator(1)));
        using var sample = Sample(dev, new Generator(2));
        model.Eval();
        using (var d = Assert.Single(model.Predict([sample.Image])))
        {
            // Every detection has a mask, those of classes 2 and 3 (trained on boxes only) too.
            Assert.True(d.Count > 0);
            Assert.Contains(d.Labels.ToArray<long>(), l => l != 1);
            Assert.Equal(new[] { d.Count, 1, 80, 112 }, d.Masks!.Shape.ToArray());
            Assert.All(d.Masks.ToDoubleArray(), v => Assert.InRange(v, 0, 1));
        }
        model.Train();
        var losses = model.ComputeLosses([sample]);
        Assert.Equal(["loss_box_reg", "loss_classifier", "loss_mask", "loss_objectness", "loss_rpn_box_reg"], losses.Keys.Order().ToArray());
        Assert.True(losses["loss_mask"].Item() > 0);
        using (var total = losses.Values.Aggregate((a, b) => a + b)) total.Backward();
        foreach (var l in losses.Values) l.Dispose();
        var p = model.MaskPredictor;
        Assert.Equal(head, p.MaskHead);
        Assert.Equal(head.StartsWith("transfer", StringComparison.Ordinal) ? 4 : 1, p.NumClasses);
        var trained = p.WeightTransfer is { } t ? [t.Fc1.Weight, t.Fc2.Weight] : new[] { p.MaskFcnLogits!.Weight };
        if (p.MaskMlp != null) trained = [.. trained, .. p.MaskMlp.Parameters()];
        foreach (var w in trained) Assert.Contains(w.Grad!.ToDoubleArray(), v => v != 0);
        Assert.Equal(head.EndsWith("_mlp", StringComparison.Ordinal), p.MaskMlp != null);
    }

    [Fact]
    public void WeightTransferMatchesFiniteDifferencesInFloat64()
    {
        var gen = new Generator(11);
        using var t = new WeightTransfer(6, 5, 4, DType.Float64, generator: gen);
        Randomize(t, gen);
        using var wDet = Tensor.Randn([3, 6], gen, DType.Float64);
        using var r = Tensor.Randn([3, 4], gen, DType.Float64);
        Tensor Loss(Tensor x)
        {
            using var y = t.Forward(x);
            using var weighted = y * r;
            return weighted.Sum();
        }
        FiniteDifferences.Check(Loss, wDet);
        foreach (var p in t.Parameters()) FiniteDifferences.CheckParameter(() => Loss(wDet), p);
    }

    [Fact]
    public void MaskLossThroughTheTransferMatchesFiniteDifferencesInFloat64()
    {
        using var gt0 = Tensor.From<byte>(MaskRcnnTests.Blob(2, 20, 24, 1), [2, 20, 24]);
        using var gt1 = Tensor.From<byte>(MaskRcnnTests.Blob(1, 20, 24, 2), [1, 20, 24]);
        using var p0 = Tensor.From<double>([1.5, 2.25, 17.5, 13.0, 4.0, 3.5, 22.75, 19.0], [2, 4]);
        using var p1 = Tensor.From<double>([0.5, 6.0, 9.25, 18.5], [1, 4]);
        using var l0 = Tensor.From<long>([2, 1], [2]);
        using var l1 = Tensor.From<long>([2], [1]);
        using var m0 = Tensor.From<long>([1, 0], [2]);
        using var m1 = Tensor.From<long>([0], [1]);
        foreach (bool stop in new[] { false, true })
        {
            var gen = new Generator(12);
            using var box = new FastRcnnPredictor(6, 3, DType.Float64, generator: gen);
            using var head = new MaskRcnnHeads(4, [3], 1, DType.Float64, generator: gen);
            using var predictor = new MaskXPredictor(3, 3, 5, "transfer_mlp", box, "cls_box", stop, [4], DType.Float64, generator: gen);
            Randomize(predictor.WeightTransfer!, gen);
            Randomize(predictor.MaskMlp!, gen, 0.05);
            using var features = Tensor.Randn([3, 4, 5, 5], gen, DType.Float64);
            Tensor Loss()
            {
                using var h = head.Forward(features);
                using var logits = predictor.Forward(h);
                return MaskRoiHeads.MaskRcnnLoss(logits, [p0, p1], [gt0, gt1], [l0, l1], [m0, m1]);
            }
            foreach (var p in predictor.WeightTransfer!.Parameters().Concat(predictor.MaskMlp!.Parameters()))
                FiniteDifferences.CheckParameter(Loss, p);
            if (!stop)
            {
                // End to end: the mask loss reaches the detection weights through T.
                FiniteDifferences.CheckParameter(Loss, box.ClsScore.Weight);
                FiniteDifferences.CheckParameter(Loss, box.BboxPred.Weight);
            }
            else
            {
                // The loss depends on w_det (through T) but its gradient stops there.
                box.ZeroGrad();
                using (var l = Loss()) l.Backward();
                Assert.True(box.ClsScore.Weight.Grad == null || box.ClsScore.Weight.Grad.ToDoubleArray().All(v => v == 0));
                Assert.True(box.BboxPred.Weight.Grad == null || box.BboxPred.Weight.Grad.ToDoubleArray().All(v => v == 0));
                Assert.Contains(predictor.WeightTransfer.Fc1.Weight.Grad!.ToDoubleArray(), v => v != 0);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Runtime.Testing.TestDevices.All), MemberType = typeof(Runtime.Testing.TestDevices))]
    public void StopGradientKeepsTheMaskLossOutOfTheBoxHead(string device)
    {
        var dev = Device.Parse(device);
        foreach (bool stop in new[] { true, false })
        {
            using var model = (MaskXRcnn)DetectionModel.Create(Tiny("transfer_mlp") with { TransferStopGradient = stop }, dev, new Generator(1));
            using var sample = Sample(dev, new Generator(2));
            model.Train();
            var bp = model.RoiHeads.BoxPredictor;
            var bh = Assert.IsType<TwoMlpHead>(model.RoiHeads.BoxHead);
            // The gradients of the box predictor and head, from every loss term or from all but loss_mask (same samples).
            double[][] Grads(bool withMask)
            {
                model.ZeroGrad();
                model.SeedSampling(7);
                var losses = model.ComputeLosses([sample]);
                Assert.True(losses["loss_mask"].Item() > 0);
                using (var total = losses.Where(kv => withMask || kv.Key != "loss_mask").Select(kv => kv.Value).Aggregate((a, b) => a + b))
                    total.Backward();
                foreach (var l in losses.Values) l.Dispose();
                return [.. new[] { bp.ClsScore.Weight, bp.BboxPred.Weight, bh.Fc6.Weight, bh.Fc7.Weight }.Select(w => w.Grad!.ToDoubleArray())];
            }
            var without = Grads(false);
            var with = Grads(true);
            for (int i = 0; i < 4; i++)
            {
                double diff = without[i].Zip(with[i], (a, b) => Math.Abs(a - b)).Max();
                if (stop || i >= 2) Assert.True(diff == 0, $"stop-gradient {stop}, gradient {i} changed by {diff}");
                else Assert.True(diff > 1e-7, $"without the stop-gradient the mask loss must reach box predictor gradient {i}");
            }
        }
    }

    /// <summary>Takes every positive and negative proposal (a deterministic sampler for hand-derived losses).</summary>
    private sealed class TakeAll : IPositiveNegativeSampler
    {
        public (Tensor[] Positive, Tensor[] Negative) Sample(IReadOnlyList<Tensor> matchedIdxs) =>
            ([.. matchedIdxs.Select(m => m.Gt(0))], [.. matchedIdxs.Select(m => m.Eq(0))]);
    }

    private static double Softplus(double z) => Math.Max(z, 0) + Math.Log(1 + Math.Exp(-Math.Abs(z)));

    [Theory]
    [MemberData(nameof(Runtime.Testing.TestDevices.All), MemberType = typeof(Runtime.Testing.TestDevices))]
    public void PartialSupervisionLossIgnoresThePositivesOfOtherClasses(string device)
    {
        // One 96 x 128 image: object 0 of class 1 whose mask covers the image (target 1 at every pixel of its box),
        // object 1 of class 3 with an empty mask (target 0). No proposals besides the ground truth, every sample
        // taken: the positives are the two ground-truth boxes themselves.
        var dev = Device.Parse(device);
        int h = 96, w = 128;
        float[] boxes = [8, 8, 48, 40, 60, 30, 110, 80];
        var planes = new byte[2 * h * w];
        Array.Fill(planes, (byte)1, 0, h * w);
        using var target = DetectionTarget.FromArrays(boxes, [1, 3], planes, h, w, [0, 0], [1, 1], 1);
        using var image = Tensor.Rand([1, 3, h, w], new Generator(5));
        using var onDevice = image.To(dev);
        using var noProposals = Tensor.Zeros([0, 4], DType.Float32, dev);
        (double Loss, double[] Z0, double[] Z1) Run(int[]? maskClasses)
        {
            // The same weights each time (same seed); only the mask classes differ.
            using var model = (MaskXRcnn)DetectionModel.Create(Tiny("transfer") with { MaskClasses = maskClasses }, dev, new Generator(1));
            Randomize(model.MaskPredictor.WeightTransfer!, new Generator(9), 0.2);   // logits well away from 0 (T starts near-constant)
            model.Train();
            var heads = model.MaskRoiHeads;
            heads.Sampler = new TakeAll();
            using var features = model.Backbone.Forward(onDevice);
            var (_, losses) = heads.Forward(features, [noProposals], [(h, w)], [target]);
            var loss = losses["loss_mask"];
            using (var total = losses.Values.Aggregate((a, b) => a + b)) total.Backward();   // connected to the graph even when 0
            double value = loss.Item();
            foreach (var l in losses.Values) l.Dispose();
            using var noGrad = GradMode.NoGrad();
            using var box0 = Tensor.From<float>(boxes[..4], [1, 4]).To(dev);
            using var box1 = Tensor.From<float>(boxes[4..], [1, 4]).To(dev);
            using var z0 = heads.MaskLogits(features, [box0], [(h, w)]);
            using var z1 = heads.MaskLogits(features, [box1], [(h, w)]);
            using var c0 = z0.Select(1, 1);
            using var c1 = z1.Select(1, 3);
            return (value, c0.ToDoubleArray(), c1.ToDoubleArray());
        }
        // A = {1}: the mean binary cross-entropy of class 1's logits at object 0 against 1; object 1 (class 3) is ignored.
        var (lossA, z0, z1) = Run([1]);
        double expectedA = z0.Sum(z => Softplus(-z)) / z0.Length;
        Assert.Equal(expectedA, lossA, 5);
        // Every class with masks: object 1's class-3 logits against 0 join the mean.
        var (lossAll, _, _) = Run(null);
        double expectedAll = (z0.Sum(z => Softplus(-z)) + z1.Sum(Softplus)) / (z0.Length + z1.Length);
        Assert.Equal(expectedAll, lossAll, 5);
        Assert.True(Math.Abs(lossA - lossAll) > 0.01, $"{lossA} vs {lossAll}");
        // A = {2}: no positive has masks; the loss is 0 (and backward ran above).
        var (lossNone, _, _) = Run([2]);
        Assert.Equal(0.0, lossNone);
    }

    [Fact]
    public void TheTransferCarriesMaskTrainingOnAOverToB()
    {
        // One SGD step on loss_mask with masks for class 1 only: Mask R-CNN's free per-class kernels of classes 2 and 3
        // get no gradient (B never learns a mask of its own), while Mask^X's T changes every class's kernel.
        var sample = Sample(Device.Cpu, new Generator(2));
        using (sample)
        {
            using var plain = (MaskRcnn)DetectionModel.Create(MaskRcnnTests.Tiny with { MaskClasses = [1] }, generator: new Generator(1));
            plain.Train();
            var losses = plain.ComputeLosses([sample]);
            losses["loss_mask"].Backward();
            foreach (var l in losses.Values) l.Dispose();
            var grad = ((MaskRcnnPredictor)plain.MaskRoiHeads.MaskPredictor).MaskFcnLogits.Weight.Grad!;
            using (var g1 = grad.Select(0, 1)) Assert.Contains(g1.ToDoubleArray(), v => v != 0);
            foreach (int c in new[] { 2, 3 })
                using (var gc = grad.Select(0, c)) Assert.All(gc.ToDoubleArray(), v => Assert.Equal(0.0, v));

            using var maskx = (MaskXRcnn)DetectionModel.Create(Tiny("transfer") with { MaskClasses = [1] }, generator: new Generator(1));
            maskx.Train();
            var t = maskx.MaskPredictor.WeightTransfer!;
            double[] Kernels()
            {
                using var noGrad = GradMode.NoGrad();
                using var wSeg = maskx.MaskPredictor.MaskWeights()!;
                return wSeg.ToDoubleArray();
            }
            var before = Kernels();
            using var sgd = new Sgd(t.Parameters(), 0.1);
            losses = maskx.ComputeLosses([sample]);
            losses["loss_mask"].Backward();
            foreach (var l in losses.Values) l.Dispose();
            sgd.Step();
            var after = Kernels();
            int d = maskx.Config.MaskDimReduced;
            for (int c = 1; c < 4; c++)
                Assert.True(Enumerable.Range(c * d, d).Any(i => before[i] != after[i]), $"class {c}'s mask kernel did not change");
        }
    }

    public static TheoryData<string, string, string> LogitCases()
    {
        var d = new TheoryData<string, string, string>();
        foreach (var dev in Runtime.Testing.TestDevices.Names)
        {
            d.Add(dev, "agnostic", "cls_box");
            d.Add(dev, "agnostic_mlp", "cls_box");
            foreach (var input in MaskXRcnnConfig.TransferInputs) d.Add(dev, "transfer", input);
            d.Add(dev, "transfer_mlp", "cls_box");
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(LogitCases))]
    public void LogitsAreTheOneByOneConvolutionWithTransferredWeights(string device, string head, string input)
    {
        // Computed again in float64 on the host from the parameters: w_det[c] = [cls_score.weight[c],
        // bbox_pred.weight[4c..4c+3]], w_seg[c] = fc2(LeakyReLU_0.1(fc1(w_det[c]))), logits[k, c] = sum_d w_seg[c, d]
        // u[k, d] with u = ReLU(conv5_mask(x)); the class-agnostic output is sum_d w[d] u[k, d] + b; the MLP branch's
        // fc layers on the flattened x are added to every class.
        var dev = Device.Parse(device);
        var gen = new Generator(21);
        const int classes = 4, rep = 6, cin = 5, dim = 3, s = 4, k = 2, m = 2 * s;
        using var box = new FastRcnnPredictor(rep, classes, device: dev, generator: gen);
        using var p = new MaskXPredictor(cin, dim, s, head, box, input, true, [7], device: dev, generator: gen);
        if (p.WeightTransfer != null) Randomize(p.WeightTransfer, gen);
        if (p.MaskMlp != null) Randomize(p.MaskMlp, gen, 0.05);
        if (p.MaskFcnLogits != null) Randomize(p.MaskFcnLogits, gen);
        using var x = Tensor.Randn([k, cin, s, s], gen).To(dev);
        using var logits = p.Forward(x);
        int outClasses = p.WeightTransfer != null ? classes : 1;
        Assert.Equal(new[] { k, outClasses, m, m }, logits.Shape.ToArray());
        var got = logits.ToDoubleArray();
        double[] u;
        using (var up = p.Conv5Mask.Forward(x))
        using (var r = up.Relu())
            u = r.ToDoubleArray();
        static double[] H(Tensor t) => t.ToDoubleArray();

        // Per-class 1x1 kernels [outClasses, dim] and biases.
        var kernels = new double[outClasses, dim];
        var bias = new double[outClasses];
        if (p.WeightTransfer is { } t)
        {
            double[] cls = H(box.ClsScore.Weight), reg = H(box.BboxPred.Weight);
            double[] w1 = H(t.Fc1.Weight), b1 = H(t.Fc1.Bias!), w2 = H(t.Fc2.Weight), b2 = H(t.Fc2.Bias!);
            int width = w1.Length / b1.Length;
            for (int c = 0; c < classes; c++)
            {
                var det = new List<double>();
                if (input != "box") det.AddRange(cls.Skip(c * rep).Take(rep));
                if (input != "cls") det.AddRange(reg.Skip(4 * c * rep).Take(4 * rep));
                Assert.Equal(width, det.Count);
                var hidden = new double[b1.Length];
                for (int j = 0; j < hidden.Length; j++)
                {
                    double a = b1[j];
                    for (int i = 0; i < width; i++) a += w1[j * width + i] * det[i];
                    hidden[j] = a > 0 ? a : 0.1 * a;
                }
                for (int d = 0; d < dim; d++)
                {
                    double a = b2[d];
                    for (int j = 0; j < hidden.Length; j++) a += w2[d * hidden.Length + j] * hidden[j];
                    kernels[c, d] = a;
                }
            }
        }
        else
        {
            var w = H(p.MaskFcnLogits!.Weight);
            for (int d = 0; d < dim; d++) kernels[0, d] = w[d];
            bias[0] = H(p.MaskFcnLogits.Bias!)[0];
        }
        // The MLP branch's logits per RoI [k, m * m] (zero without one).
        var mlp = new double[k, m * m];
        if (p.MaskMlp != null)
        {
            var xs = H(x);
            double[] wa = H(((Linear)p.MaskMlp[0]).Weight), ba = H(((Linear)p.MaskMlp[0]).Bias!);
            double[] wb = H(((Linear)p.MaskMlp[2]).Weight), bb = H(((Linear)p.MaskMlp[2]).Bias!);
            int n = cin * s * s;
            for (int r = 0; r < k; r++)
            {
                var hidden = new double[ba.Length];
                for (int j = 0; j < ba.Length; j++)
                {
                    double a = ba[j];
                    for (int i = 0; i < n; i++) a += wa[j * n + i] * xs[r * n + i];
                    hidden[j] = Math.Max(a, 0);
                }
                for (int q = 0; q < m * m; q++)
                {
                    double a = bb[q];
                    for (int j = 0; j < hidden.Length; j++) a += wb[q * hidden.Length + j] * hidden[j];
                    mlp[r, q] = a;
                }
            }
        }
        for (int r = 0; r < k; r++)
            for (int c = 0; c < outClasses; c++)
                for (int q = 0; q < m * m; q++)
                {
                    double e = bias[c] + mlp[r, q];
                    for (int d = 0; d < dim; d++) e += kernels[c, d] * u[(r * dim + d) * m * m + q];
                    double g = got[(r * outClasses + c) * m * m + q];
                    Assert.True(Math.Abs(g - e) <= 1e-4 * (1 + Math.Abs(e)), $"logit ({r}, {c}, {q}): {g} vs {e}");
                }
    }

    [Fact]
    public void OptionsRoundTripThroughConfigJsonAndCheckpoints()
    {
        var config = Tiny("agnostic_mlp") with
        {
            TransferInput = "cls", TransferStopGradient = false, MaskClasses = [3, 1], MaskMlpLayers = [5],
            RoiHeads = new RoiHeadsConfig { ScoreThresh = 0 },
        };
        var json = JsonSerializer.Serialize<DetectorConfig>(config, DetectorCheckpoint.Json);
        Assert.Contains("\"family\": \"maskx_rcnn\"", json);
        Assert.Contains("\"mask_head\": \"agnostic_mlp\"", json);
        Assert.Contains("\"transfer_stop_gradient\": false", json);
        var back = Assert.IsType<MaskXRcnnConfig>(JsonSerializer.Deserialize<DetectorConfig>(json, DetectorCheckpoint.Json));
        Assert.Equal(json, JsonSerializer.Serialize<DetectorConfig>(back, DetectorCheckpoint.Json));
        Assert.Equal(new[] { 3, 1 }, back.MaskClasses);
        // Plain Mask R-CNN keeps its family and its mask classes.
        var plain = JsonSerializer.Serialize<DetectorConfig>(MaskRcnnTests.Tiny with { MaskClasses = [2] }, DetectorCheckpoint.Json);
        Assert.Equal(new[] { 2 }, Assert.IsType<MaskRcnnConfig>(JsonSerializer.Deserialize<DetectorConfig>(plain, DetectorCheckpoint.Json)).MaskClasses);

        foreach (var bad in new[]
        {
            Tiny() with { MaskHead = "fcn" }, Tiny() with { TransferInput = "det" }, Tiny() with { MaskClasses = [0] },
            Tiny() with { MaskClasses = [4] }, Tiny() with { MaskClasses = [1, 1] }, Tiny() with { MaskMlpLayers = [0] },
        })
            Assert.Throws<ArgumentException>(() => DetectionModel.Create(bad));

        var folder = Directory.CreateTempSubdirectory("maskx-ckpt-").FullName;
        try
        {
            foreach (var c in new[] { config, Tiny("transfer_mlp") with { TransferInput = "box", MaskClasses = [2], RoiHeads = config.RoiHeads } })
            {
                using var model = DetectionModel.Create(c, generator: new Generator(3));
                DetectorCheckpoint.Save(folder, model, new CheckpointInfo { Model = "tiny_maskx", Config = c, Epoch = 1 });
                var (loaded, info) = DetectorCheckpoint.Load(folder);
                using (loaded)
                {
                    Assert.Equal(JsonSerializer.Serialize<DetectorConfig>(c, DetectorCheckpoint.Json), JsonSerializer.Serialize(info.Config, DetectorCheckpoint.Json));
                    var keys = loaded.StateDict().Keys.Where(k => k.StartsWith("roi_heads.mask_predictor.", StringComparison.Ordinal)).ToArray();
                    if (c.UsesTransfer) Assert.Contains("roi_heads.mask_predictor.weight_transfer.fc1.weight", keys);
                    else Assert.Contains("roi_heads.mask_predictor.mask_fcn_logits.weight", keys);
                    Assert.Contains("roi_heads.mask_predictor.mask_mlp.2.weight", keys);
                    model.Eval();
                    loaded.Eval();
                    using var image = Tensor.Rand([3, 80, 112], new Generator(4));
                    using var a = Assert.Single(model.Predict([image]));
                    using var b = Assert.Single(loaded.Predict([image]));
                    Assert.True(a.Count > 0);
                    Assert.Equal(a.Masks!.ToDoubleArray(), b.Masks!.ToDoubleArray());
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void MaskApSplitsIntoTheMaskClassesAndTheOthers()
    {
        // Perfect masks for the ground truth of classes 1 and 2 (A), none for the others: AP 1 on A, 0 on B; each
        // side is the mean of its categories' AP in the full evaluation.
        var folder = Directory.CreateTempSubdirectory("maskx-split-").FullName;
        try
        {
            var files = ShapesDataset.Generate(folder, 6, 3, new ShapesOptions { MinImageSize = 64, MaxImageSize = 80, MinShapes = 2, MaxShapes = 4 });
            var data = new CocoDetection(files.ImageFolder, files.InstancesJson);
            var gt = DetectionEvaluation.GroundTruth(data, masks: true);
            var dets = gt.Annotations.Where(a => a.CategoryId <= 2).Select(a => new CocoEvalDetection(a.ImageId, a.CategoryId, 1.0, Segmentation: a.Segmentation)).ToArray();
            var split = DetectionEvaluation.EvaluateMaskSplit(data, dets, [2, 1]);
            Assert.Equal(new[] { 1, 2 }, split.MaskClasses);
            Assert.Equal(1.0, split.A.AP, 9);
            Assert.Equal(0.0, split.B.AP, 9);
            var full = new CocoEvaluator(gt, CocoIouType.Segm).Evaluate(dets);
            double MeanOf(IEnumerable<long> ids) => ids.Select(id => full.PerCategoryAP[id]).Where(v => v >= 0).Average();
            Assert.Equal(MeanOf([1, 2]), split.A.AP, 9);
            Assert.Equal(MeanOf([3, 4, 5, 6]), split.B.AP, 9);
            Assert.Equal(new long[] { 1, 2 }, split.A.CategoryIds);
            Assert.Equal(new long[] { 3, 4, 5, 6 }, split.B.CategoryIds);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
