using System.Text.Json;
using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Vision.Data;

namespace Runtime.Models.Tests;

/// <summary>
/// Mask R-CNN's own parts beyond the torchvision parity (ParityTests' mrcnn_r18): both modes on every device, the
/// edge cases (no detections, no positives, targets without masks), the configuration's JSON form, and a float64
/// finite-difference check of the mask loss through the mask head and predictor.
/// </summary>
public class MaskRcnnTests
{
    internal static MaskRcnnConfig Tiny => new()
    {
        Backbone = new BackboneConfig { Depth = 18, Layers = [1, 1, 1, 1], Widths = [8, 8, 16, 16], FpnChannels = 8 },
        NumClasses = 4, MinSize = [96], MaxSize = 160,
        AnchorSizes = [[8], [16], [32], [64], [128]],
        RepresentationSize = 16,
        MaskLayers = [8, 8], MaskDimReduced = 8,
    };

    private static DetectionSample Sample(Device device, Generator gen, bool masks = true, bool empty = false)
    {
        int h = 80, w = 112;
        float[] boxes = empty ? [] : [10, 10, 50, 40, 60, 20, 100, 70];
        long[] labels = empty ? [] : [1, 3];
        byte[]? planes = null;
        if (masks)
        {
            planes = new byte[labels.Length * h * w];
            for (int k = 0; k < labels.Length; k++)
                for (int y = (int)boxes[4 * k + 1]; y < boxes[4 * k + 3]; y++)
                    for (int x = (int)boxes[4 * k]; x < boxes[4 * k + 2]; x++)
                        planes[(k * h + y) * w + x] = (byte)((x + y) % 5 == 0 ? 0 : 1);
        }
        var target = DetectionTarget.FromArrays(boxes, labels, planes, h, w, new long[labels.Length], new float[labels.Length], 1);
        using var image = Tensor.Rand([3, h, w], gen);
        return new DetectionSample(image.To(device), target);
    }

    [Theory]
    [MemberData(nameof(Runtime.Testing.TestDevices.All), MemberType = typeof(Runtime.Testing.TestDevices))]
    public void RunsBothWays(string device)
    {
        var dev = Device.Parse(device);
        using var model = (MaskRcnn)DetectionModel.Create(Tiny with { RoiHeads = new RoiHeadsConfig { ScoreThresh = 0 } }, dev, new Generator(1));
        var gen = new Generator(2);
        using var sample = Sample(dev, gen);
        model.Eval();
        var dets = model.Predict([sample.Image]);
        using (var d = Assert.Single(dets))
        {
            Assert.True(d.Count > 0);
            Assert.Equal(new[] { d.Count, 1, 80, 112 }, d.Masks!.Shape.ToArray());
            var p = d.Masks.ToDoubleArray();
            Assert.All(p, v => Assert.InRange(v, 0, 1));
            Assert.Equal(d.Count, d.MaskRles().Count);
        }
        model.Train();
        var losses = model.ComputeLosses([sample]);
        Assert.Equal(["loss_box_reg", "loss_classifier", "loss_mask", "loss_objectness", "loss_rpn_box_reg"], losses.Keys.Order().ToArray());
        Assert.True(losses["loss_mask"].Item() > 0);
        using var total = losses.Values.Aggregate((a, b) => a + b);
        total.Backward();
        foreach (var l in losses.Values) l.Dispose();
        var predictor = (MaskRcnnPredictor)model.MaskRoiHeads.MaskPredictor;
        Assert.NotNull(predictor.MaskFcnLogits.Weight.Grad);
        Assert.NotNull(predictor.Conv5Mask.Weight.Grad);
        Assert.Contains(predictor.MaskFcnLogits.Weight.Grad!.ToDoubleArray(), v => v != 0);
    }

    [Fact]
    public void NoDetectionsGiveNoMasksAndNoPositivesGiveZeroLoss()
    {
        using var model = (MaskRcnn)DetectionModel.Create(Tiny with { RoiHeads = new RoiHeadsConfig { ScoreThresh = 1 } }, generator: new Generator(1));
        var gen = new Generator(3);
        using var sample = Sample(Device.Cpu, gen);
        model.Eval();
        using (var d = Assert.Single(model.Predict([sample.Image])))
        {
            Assert.Equal(0, d.Count);
            Assert.Equal(new[] { 0, 1, 80, 112 }, d.Masks!.Shape.ToArray());
        }
        // An image without objects: no positive proposals, loss_mask is 0 (as torchvision's mask_logits.sum() * 0).
        model.Train();
        using var empty = Sample(Device.Cpu, gen, empty: true);
        var losses = model.ComputeLosses([empty]);
        Assert.Equal(0.0, losses["loss_mask"].Item());
        using var total = losses.Values.Aggregate((a, b) => a + b);
        total.Backward();
        foreach (var l in losses.Values) l.Dispose();
    }

    [Fact]
    public void TrainingWithoutMasksIsAnError()
    {
        using var model = DetectionModel.Create(Tiny, generator: new Generator(1));
        model.Train();
        using var sample = Sample(Device.Cpu, new Generator(4), masks: false);
        var ex = Assert.Throws<ArgumentException>(() => model.ComputeLosses([sample]));
        Assert.Contains("masks", ex.Message);
    }

    [Fact]
    public void ConfigRoundTripsThroughJsonAsItsFamily()
    {
        DetectorConfig config = Tiny with { MaskLayers = [4, 5, 6], MaskDilation = 2 };
        var json = JsonSerializer.Serialize(config, DetectorCheckpoint.Json);
        Assert.Contains("\"family\": \"maskrcnn\"", json);
        var back = Assert.IsType<MaskRcnnConfig>(JsonSerializer.Deserialize<DetectorConfig>(json, DetectorCheckpoint.Json));
        Assert.Equal([4, 5, 6], back.MaskLayers);
        Assert.Equal(2, back.MaskDilation);
        Assert.Equal(json, JsonSerializer.Serialize<DetectorConfig>(back, DetectorCheckpoint.Json));
        Assert.IsType<FasterRcnnConfig>(JsonSerializer.Deserialize<DetectorConfig>(JsonSerializer.Serialize<DetectorConfig>(SmokeTests.TinyFrcnn, DetectorCheckpoint.Json), DetectorCheckpoint.Json));
        Assert.Throws<ArgumentException>(() => DetectionModel.Create(Tiny with { MaskLayers = [] }));
    }

    [Fact]
    public void MaskTargetsAreTheGroundTruthCutOutAtTheBoxes()
    {
        // Ground truth 1 is one on the columns x < 8. RoIAlign (spatial scale 1, not aligned: pixel i sits at
        // coordinate i) of a box inside that region gives ones; a box [4, 12) cut in 4 bins of 2 samples each reads
        // x = 4.5, 5.5 | 6.5, 7.5 | 8.5, 9.5 | 10.5, 11.5, where 7.5 lies halfway between a one and a zero.
        var planes = new double[2 * 16 * 16];
        for (int y = 0; y < 16; y++) for (int x = 0; x < 8; x++) planes[(16 + y) * 16 + x] = 1;
        using var masks = Tensor.From<double>(planes, [2, 16, 16]);
        using var boxes = Tensor.From<float>([1, 1, 7, 7, 4, 2, 12, 6], [2, 4]);
        using var matched = Tensor.From<long>([1, 1], [2]);
        using var t = MaskRoiHeads.ProjectMasksOnBoxes(masks, boxes, matched, 4);
        Assert.Equal(new[] { 2, 4, 4 }, t.Shape.ToArray());
        Assert.Equal(DType.Float32, t.DType);
        var v = t.ToDoubleArray();
        Assert.All(v.Take(16), x => Assert.Equal(1.0, x, 6));
        for (int y = 0; y < 4; y++)
            Assert.Equal(new double[] { 1, 0.75, 0, 0 }, v.Skip(16 + 4 * y).Take(4).Select(x => Math.Round(x, 6)).ToArray());
        using var other = Tensor.From<long>([0, 0], [2]);
        using var zeros = MaskRoiHeads.ProjectMasksOnBoxes(masks, boxes, other, 4);
        Assert.All(zeros.ToDoubleArray(), x => Assert.Equal(0.0, x));
    }

    [Fact]
    public void MaskLossGradientMatchesFiniteDifferencesInFloat64()
    {
        var gen = new Generator(9);
        using var head = new MaskRcnnHeads(4, [3, 3], 1, DType.Float64, generator: gen);
        using var predictor = new MaskRcnnPredictor(3, 3, 3, DType.Float64, generator: gen);
        // Two images: 2 and 1 positives, ground-truth masks 20 x 24 with soft-edged blobs after RoIAlign.
        using var gt0 = Tensor.From<byte>(Blob(2, 20, 24, 1), [2, 20, 24]);
        using var gt1 = Tensor.From<byte>(Blob(1, 20, 24, 2), [1, 20, 24]);
        using var p0 = Tensor.From<double>([1.5, 2.25, 17.5, 13.0, 4.0, 3.5, 22.75, 19.0], [2, 4]);
        using var p1 = Tensor.From<double>([0.5, 6.0, 9.25, 18.5], [1, 4]);
        using var l0 = Tensor.From<long>([2, 1], [2]);
        using var l1 = Tensor.From<long>([2], [1]);
        using var m0 = Tensor.From<long>([1, 0], [2]);
        using var m1 = Tensor.From<long>([0], [1]);
        using var features = Tensor.Randn([3, 4, 5, 5], gen, DType.Float64);
        Tensor Loss(Tensor x)
        {
            using var h = head.Forward(x);
            using var logits = predictor.Forward(h);
            return MaskRoiHeads.MaskRcnnLoss(logits, [p0, p1], [gt0, gt1], [l0, l1], [m0, m1]);
        }
        FiniteDifferences.Check(Loss, features);
        using var logits = Tensor.Randn([3, 3, 6, 6], gen, DType.Float64);
        FiniteDifferences.Check(x => MaskRoiHeads.MaskRcnnLoss(x, [p0, p1], [gt0, gt1], [l0, l1], [m0, m1]), logits);
    }

    internal static byte[] Blob(int count, int h, int w, int seed)
    {
        var r = new Random(seed);
        var m = new byte[count * h * w];
        for (int k = 0; k < count; k++)
        {
            double cy = r.Next(6, h - 6), cx = r.Next(6, w - 6), rad = r.Next(4, 7);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    m[(k * h + y) * w + x] = (byte)((y - cy) * (y - cy) + (x - cx) * (x - cx) <= rad * rad ? 1 : 0);
        }
        return m;
    }
}
