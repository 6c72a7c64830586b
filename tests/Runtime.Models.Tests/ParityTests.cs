using System.Text.Json;
using Runtime.Models.Detection;

namespace Runtime.Models.Tests;

/// <summary>
/// Tiny torchvision Faster R-CNN (also with DCNv2 / DCNv1 backbones: deformable 3x3 convolutions fed by mmcv-style
/// offset convolutions with non-zero weights), Mask R-CNN and RetinaNet models (seeded weights, non-trivial FrozenBatchNorm
/// statistics, saved as .pth) give the same pyramid, proposals, detections, masks, losses and gradients here as in
/// torchvision (golden/make_detection.py). Eval: boxes to 1e-3 relative, scores to 1e-4, same labels; mask
/// probabilities to 1e-4 and the pasted binary masks identical but for pixels within 1e-4 of 0.5. Train: every loss
/// term (loss_mask included) to 1e-4 relative with torchvision's sampled anchors and proposals replayed.
/// </summary>
public class ParityTests
{
    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var dev in Runtime.Testing.TestDevices.Names)
            foreach (var c in new[] { "frcnn_r18", "frcnn_r50", "frcnn_r50_dcnv2", "frcnn_r50_dcnv1", "mrcnn_r18", "retina_r18", "retina_r18_v2" })
                d.Add(c, dev);
        return d;
    }

    private static void Close(double expected, double actual, double rel, double abs, string what) =>
        Assert.True(Math.Abs(expected - actual) <= abs + rel * Math.Abs(expected), $"{what}: expected {expected:R}, got {actual:R}");

    [Theory]
    [MemberData(nameof(Cases))]
    public void EvalMatchesTorchvision(string name, string device)
    {
        var g = Golden.Load(name);
        var dev = Device.Parse(device);
        using var model = g.BuildModel(dev);
        model.Eval();
        var images = g.Images(dev);
        try
        {
            using var noGrad = GradMode.NoGrad();
            using var batch = model.Transform.Apply(images);
            Assert.Equal(Golden.Ints(g.Eval.GetProperty("batch_shape")), batch.Tensors.Shape.ToArray());
            var sizes = g.Eval.GetProperty("image_sizes").EnumerateArray().Select(s => (Golden.Ints(s)[0], Golden.Ints(s)[1])).ToArray();
            Assert.Equal(sizes, batch.ImageSizes.ToArray());
            using var onDev = new Runtime.Vision.Data.ImageBatch(batch.Tensors.To(dev), batch.ImageSizes, batch.OriginalSizes);
            using var features = model.Backbone.Forward(onDev.Tensors);
            CheckFeatures(g, features);
            if (model is FasterRcnn frcnn)
            {
                var (proposals, _) = frcnn.Rpn.Forward(onDev, features, null);
                var expected = g.Eval.GetProperty("rpn").GetProperty("proposals").EnumerateArray().ToArray();
                for (int i = 0; i < proposals.Length; i++)
                    using (proposals[i])
                        CheckProposals(Golden.Data(expected[i]), proposals[i].ToDoubleArray(), $"image {i} proposals");
            }
            else if (model is RetinaNet retina)
            {
                var (logits, deltas, _) = retina.ForwardHead(features);
                using (logits)
                using (deltas)
                {
                    var head = g.Eval.GetProperty("head_image0");
                    using var l0 = logits.Select(0, 0);
                    using var d0 = deltas.Select(0, 0);
                    CheckAll(Golden.Data(head.GetProperty("cls_logits")), l0.ToDoubleArray(), 1e-4, 1e-4, "cls_logits");
                    CheckAll(Golden.Data(head.GetProperty("bbox_regression")), d0.ToDoubleArray(), 1e-4, 1e-4, "bbox_regression");
                }
            }
            List<DetectionResult> dets;
            if (model is MaskRcnn)
            {
                // The masks as the RoI heads give them (28x28, before pasting), then pasted into the images.
                var raw = model.ForwardDetections(onDev);
                var expMasks = g.Eval.GetProperty("masks").EnumerateArray().ToArray();
                for (int i = 0; i < raw.Count; i++) CheckRawMasks(expMasks[i], raw[i], $"image {i}");
                dets = DetectionModel.Postprocess(raw, batch.ImageSizes, batch.OriginalSizes);
                for (int i = 0; i < dets.Count; i++) CheckPastedMasks(expMasks[i], dets[i], $"image {i}");
            }
            else dets = model.Predict(images);
            var exp = g.Eval.GetProperty("detections").EnumerateArray().ToArray();
            Assert.Equal(exp.Length, dets.Count);
            for (int i = 0; i < dets.Count; i++)
                using (dets[i])
                    CheckDetections(exp[i], dets[i], $"image {i}");
        }
        finally
        {
            foreach (var im in images) im.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TrainLossesAndGradientsMatchTorchvision(string name, string device)
    {
        var g = Golden.Load(name);
        var dev = Device.Parse(device);
        using var model = g.BuildModel(dev);
        model.Train();
        var samples = g.TrainSamples(dev);
        try
        {
            if (model is FasterRcnn frcnn)
            {
                frcnn.Rpn.Sampler = RecordedSampler.From(g.Train.GetProperty("rpn_sampler"));
                frcnn.RoiHeads.Sampler = RoiPicksByCoordinates(g, frcnn, samples);
            }
            var losses = model.ComputeLosses(samples);
            var expected = g.Train.GetProperty("losses");
            Assert.Equal(expected.EnumerateObject().Select(p => p.Name).Order(), losses.Keys.Order());
            foreach (var p in expected.EnumerateObject())
                Close(p.Value.GetDouble(), losses[p.Name].Item(), 1e-4, 1e-7, p.Name);
            using var total = losses.Values.Aggregate((a, b) => a + b);
            total.Backward();
            foreach (var l in losses.Values) l.Dispose();
            var parameters = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
            foreach (var p in g.Train.GetProperty("grads").EnumerateObject())
            {
                var grad = parameters[p.Name].Grad;
                Assert.True(grad != null, $"{p.Name} got no gradient");
                var want = Golden.Data(p.Value);
                double scale = want.Max(Math.Abs);
                CheckAll(want, grad!.ToDoubleArray(), 2e-3, 2e-3 * scale + 1e-7, $"grad {p.Name}");
            }
        }
        finally
        {
            foreach (var s in samples) s.Dispose();
        }
    }

    [Fact]
    public void OldKeyNamesLoad()
    {
        var g = Golden.Load("frcnn_r18");
        using var fresh = g.BuildModel(Device.Cpu);
        using var old = g.BuildModel(Device.Cpu, Path.Combine(Golden.Folder, "frcnn_r18_oldkeys.pth"));
        var a = fresh.StateDict();
        foreach (var (k, t) in old.StateDict())
            Assert.Equal(a[k].ToDoubleArray(), t.ToDoubleArray());
        Assert.Equal(a["rpn.head.conv.0.0.weight"].ToDoubleArray(), old.StateDict()["rpn.head.conv.0.0.weight"].ToDoubleArray());
    }

    [Fact]
    public void OldMaskHeadKeyNamesLoad()
    {
        // mrcnn_r18's weights under the pre-0.13 names of the mask head (roi_heads.mask_head.mask_fcn{i+1}.*) and of the
        // RPN head's conv, as the published COCO checkpoints store them (make_detection.py checks torchvision loads them).
        var g = Golden.Load("mrcnn_r18");
        using var fresh = g.BuildModel(Device.Cpu);
        var state = Runtime.Nn.Checkpoints.TorchCheckpoint.Load(g.CheckpointPath);
        var path = Path.Combine(Path.GetTempPath(), $"mrcnn-oldkeys-{Guid.NewGuid():N}.safetensors");
        try
        {
            var old = new Dictionary<string, Tensor>();
            foreach (var (k, t) in state)
            {
                var m = System.Text.RegularExpressions.Regex.Match(k, @"^roi_heads\.mask_head\.(\d+)\.0\.(weight|bias)$");
                old[m.Success ? $"roi_heads.mask_head.mask_fcn{int.Parse(m.Groups[1].Value) + 1}.{m.Groups[2].Value}" : k.Replace("rpn.head.conv.0.0.", "rpn.head.conv.")] = t;
            }
            Assert.Contains("roi_heads.mask_head.mask_fcn4.weight", old.Keys);
            Assert.DoesNotContain("roi_heads.mask_head.0.0.weight", old.Keys);
            Runtime.Nn.Checkpoints.Safetensors.Save(path, old);
            using var loaded = g.BuildModel(Device.Cpu, path);
            var a = fresh.StateDict();
            var b = loaded.StateDict();
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            foreach (var (k, t) in b) Assert.Equal(a[k].ToDoubleArray(), t.ToDoubleArray());
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
            File.Delete(path);
        }
    }

    // torchvision's RoI picks are indices into its training proposals + ground truth; proposals whose scores differ
    // by an ulp may come out of our RPN in the other order, so each recorded pick is found by its coordinates.
    private static RecordedSampler RoiPicksByCoordinates(Golden g, FasterRcnn model, Runtime.Vision.Data.DetectionSample[] samples)
    {
        using var batch = model.Transform.Apply(samples);
        using var images = new Runtime.Vision.Data.ImageBatch(batch.Images.Tensors.To(model.Device), batch.Images.ImageSizes, batch.Images.OriginalSizes);
        using var features = model.Backbone.Forward(images.Tensors);
        Tensor[] proposals;
        using (GradMode.NoGrad()) (proposals, _) = model.Rpn.Forward(images, features, null);
        var recorded = g.Train.GetProperty("roi_sampler").EnumerateArray().ToArray();
        var pos = new long[recorded.Length][];
        var neg = new long[recorded.Length][];
        for (int i = 0; i < recorded.Length; i++)
        {
            using var candidatesT = Tensor.Cat([proposals[i], batch.Targets[i].Boxes.To(proposals[i].Device)], 0);
            var candidates = candidatesT.ToDoubleArray();
            Assert.Equal(recorded[i].GetProperty("num_candidates").GetInt32(), candidates.Length / 4);
            long[] Find(double[] boxes) => Enumerable.Range(0, boxes.Length / 4).Select(k =>
            {
                int best = -1;
                double bestErr = double.MaxValue;
                for (int c = 0; c < candidates.Length / 4; c++)
                {
                    double err = Enumerable.Range(0, 4).Max(j => Math.Abs(candidates[4 * c + j] - boxes[4 * k + j]));
                    if (err < bestErr) (best, bestErr) = (c, err);
                }
                Assert.True(bestErr < 1e-3, $"recorded RoI pick {k} of image {i} is none of our candidates (closest off by {bestErr})");
                return (long)best;
            }).Order().ToArray();
            pos[i] = Find(Golden.Data(recorded[i].GetProperty("pos_boxes")));
            neg[i] = Find(Golden.Data(recorded[i].GetProperty("neg_boxes")));
        }
        foreach (var p in proposals) p.Dispose();
        return new RecordedSampler(pos, neg);
    }

    private static void CheckFeatures(Golden g, Backbones.FeatureMaps features)
    {
        var levels = g.Eval.GetProperty("features_image0").EnumerateArray().ToArray();
        Assert.Equal(levels.Select(l => l.GetProperty("name").GetString()), features.Names);
        for (int l = 0; l < levels.Length; l++)
        {
            using var image0 = features[l].Value.Select(0, 0);
            var v = image0.ToDoubleArray();
            Assert.Equal(Golden.Ints(levels[l].GetProperty("shape")), image0.Shape.ToArray());
            var first = Golden.Doubles(levels[l].GetProperty("first32"));
            CheckAll(first, v.Take(first.Length).ToArray(), 1e-4, 1e-5, $"level {l} first values");
            double absSum = levels[l].GetProperty("abs_sum").GetDouble();
            Close(absSum, v.Sum(Math.Abs), 1e-5, 0, $"level {l} sum |x|");
            Close(levels[l].GetProperty("sum").GetDouble(), v.Sum(), 0, 1e-5 * absSum, $"level {l} sum");
        }
    }

    private static void CheckAll(double[] expected, double[] actual, double rel, double abs, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++) Close(expected[i], actual[i], rel, abs, $"{what}[{i}]");
    }

    // RPN proposals in order; neighbours whose scores differ by one ulp may swap (the golden's note).
    private static void CheckProposals(double[] expected, double[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length / 4} proposals, expected {expected.Length / 4}");
        int n = expected.Length / 4;
        bool Same(int e, int a) => Enumerable.Range(0, 4).All(k => Math.Abs(expected[4 * e + k] - actual[4 * a + k]) <= 1e-3 * Math.Max(1, Math.Abs(expected[4 * e + k])));
        for (int i = 0; i < n; i++)
            Assert.True(Same(i, i) || (i > 0 && Same(i, i - 1)) || (i + 1 < n && Same(i, i + 1)),
                $"{what}: proposal {i} [{string.Join(", ", expected.Skip(4 * i).Take(4))}] vs ours [{string.Join(", ", actual.Skip(4 * i).Take(4))}]");
    }

    // Mask probabilities before pasting: the first few detections in full, a few rows and the sum of every one.
    private static void CheckRawMasks(JsonElement expected, DetectionResult d, string what)
    {
        Assert.NotNull(d.Masks);
        int k = expected.GetProperty("count").GetInt32(), m = Golden.Ints(expected.GetProperty("size"))[0];
        Assert.Equal(new[] { k, 1, m, m }, d.Masks!.Shape.ToArray());
        var ours = d.Masks.ToDoubleArray();
        var first = Golden.Data(expected.GetProperty("first"));
        CheckAll(first, ours.Take(first.Length).ToArray(), 0, 1e-4, $"{what} mask probabilities");
        var rows = expected.GetProperty("rows");
        var index = Golden.Ints(rows.GetProperty("index"));
        var rowValues = Golden.Data(rows);
        var oursRows = Enumerable.Range(0, k).SelectMany(j => index.SelectMany(r => ours.Skip((j * m + r) * m).Take(m))).ToArray();
        CheckAll(rowValues, oursRows, 0, 1e-4, $"{what} mask rows [{string.Join(", ", index)}]");
        var sums = Golden.Doubles(expected.GetProperty("sums"));
        for (int j = 0; j < k; j++) Close(sums[j], ours.Skip(j * m * m).Take(m * m).Sum(), 1e-5, 1e-3, $"{what} mask {j} sum");
    }

    // Pasted masks: the binary masks (> 0.5) identical except at pixels torchvision puts within 1e-4 of 0.5; the sums.
    private static void CheckPastedMasks(JsonElement expected, DetectionResult d, string what)
    {
        var pasted = expected.GetProperty("pasted").EnumerateArray().ToArray();
        Assert.Equal(pasted.Length, d.Count);
        var (planes, h, w) = d.BinaryMasks()!.Value;
        Assert.Equal(new[] { d.Count, 1, h, w }, d.Masks!.Shape.ToArray());
        var probs = d.Masks.ToDoubleArray();
        for (int j = 0; j < pasted.Length; j++)
        {
            var want = new Runtime.Vision.Evaluation.Rle(h, w, pasted[j].GetProperty("counts").EnumerateArray().Select(x => x.GetUInt32()).ToArray()).DecodeRowMajor();
            var near = pasted[j].GetProperty("near_half").EnumerateArray().Select(x => x.GetInt32()).ToHashSet();
            var ours = planes.AsSpan(j * h * w, h * w);
            for (int p = 0; p < want.Length; p++)
                Assert.True(want[p] == ours[p] || near.Contains(p), $"{what} pasted mask {j}: pixel ({p / w}, {p % w}) is {ours[p]}, torchvision {want[p]}");
            Close(pasted[j].GetProperty("sum").GetDouble(), probs.Skip(j * h * w).Take(h * w).Sum(), 1e-4, 1e-3, $"{what} pasted mask {j} sum");
        }
    }

    private static void CheckDetections(JsonElement expected, DetectionResult d, string what)
    {
        var boxes = Golden.Data(expected.GetProperty("boxes"));
        var scores = Golden.Data(expected.GetProperty("scores"));
        var labels = Golden.Longs(expected.GetProperty("labels"));
        Assert.True(scores.Length == d.Count, $"{what}: {d.Count} detections, expected {scores.Length}");
        Assert.Equal(labels, d.Labels.ToArray<long>());
        CheckAll(scores, d.Scores.ToDoubleArray(), 0, 1e-4, $"{what} scores");
        var ours = d.Boxes.ToDoubleArray();
        for (int i = 0; i < boxes.Length; i++) Close(boxes[i], ours[i], 1e-3, 1e-3, $"{what} box value {i}");
    }
}
