using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Vision.Data;
using Runtime.Vision.Ops;

namespace Runtime.Models.Tests;

/// <summary>
/// R-CNN feature mimicking (DCNv2 section 4): the cosine mimic loss on hand-computed vectors (value and gradients, with
/// and without the teacher detached), a whole-image RoI whose crop is the image itself (the R-CNN branch then sees
/// exactly the detector's features: mimic loss 0, and the branch's classification loss is its cls_score on the
/// detector's feature), gradients reaching the backbone, box head and the branch, and inference unchanged.
/// </summary>
public class FeatureMimickingTests
{
    [Fact]
    public void MimicLossIsWeightedMeanOfOneMinusCosine()
    {
        // Rows: orthogonal (cos 0), parallel (cos 1), 3-4-5 (cos 24/25).
        using var a = Tensor.From<double>([1, 0, 1, 1, 3, 4], [3, 2]);
        using var b = Tensor.From<double>([0, 1, 2, 2, 4, 3], [3, 2]);
        a.RequiresGrad = true;
        b.RequiresGrad = true;
        using (var loss = FeatureMimicking.MimicLoss(a, b, 0.1))
        {
            Assert.Equal(0.1 * (1 + 0 + 1.0 / 25) / 3, loss.Item(), 15);
            loss.Backward();
        }
        // d(1 - cos)/da = -(b / (|a||b|) - cos * a / |a|^2), times 0.1 / 3.
        double k = 0.1 / 3;
        var want = new[]
        {
            -k * 0, -k * 1,                                           // a = (1, 0), b = (0, 1), cos 0
            0, 0,                                                     // parallel: no gradient
            -k * (4.0 / 25 - 24.0 / 25 * 3 / 25), -k * (3.0 / 25 - 24.0 / 25 * 4 / 25),
        };
        var got = a.Grad!.ToDoubleArray();
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 14);
        Assert.Null(b.Grad); // the R-CNN side is the target
        a.Grad!.Dispose();
        a.Grad = null;
        using (var both = FeatureMimicking.MimicLoss(a, b, 0.1, detachTeacher: false))
            both.Backward();
        Assert.Equal(-k * 1, b.Grad!.ToDoubleArray()[0], 14); // symmetric in a and b
        using var none = Tensor.Zeros([0, 2], DType.Float64);
        using var zero = FeatureMimicking.MimicLoss(none, none, 0.1);
        Assert.Equal(0.0, zero.Item());
    }

    /// <summary>Positives are only the ground-truth boxes (the candidates after the proposals); no negatives.</summary>
    private sealed class GroundTruthOnly : IPositiveNegativeSampler
    {
        public (Tensor[] Positive, Tensor[] Negative) Sample(IReadOnlyList<Tensor> matchedIdxs)
        {
            var pos = new Tensor[matchedIdxs.Count];
            var neg = new Tensor[matchedIdxs.Count];
            for (int i = 0; i < matchedIdxs.Count; i++)
            {
                int n = matchedIdxs[i].Size(0);
                var p = new bool[n];
                p[n - 1] = true;
                pos[i] = Tensor.From<bool>(p, [n]);
                neg[i] = Tensor.Zeros([n], DType.Bool);
            }
            return (pos, neg);
        }
    }

    private static FasterRcnnConfig Config(FeatureMimickingConfig? mimic) => SmokeTests.TinyFrcnn with
    {
        MinSize = [64], MaxSize = 64, Mimicking = mimic,
    };

    [Fact]
    public void WholeImageRoiSeesTheDetectorsOwnFeatures()
    {
        // A 64x64 image (no resize, no padding) whose only positive RoI is the ground truth covering it: the 64x64 crop
        // (aligned RoIAlign, one sample per pixel centre) is the image, so both branches compute the same 2fc feature.
        using var model = new FasterRcnn(Config(new FeatureMimickingConfig { CropSize = 64, RoisPerImage = 4 }), generator: new Generator(3));
        model.RoiHeads.Sampler = new GroundTruthOnly();
        model.Train();
        using var img = Tensor.Rand([3, 64, 64], new Generator(4));
        using var target = DetectionTarget.FromArrays([0, 0, 64, 64], [2], null, 0, 0, [0], [4096], 1);
        using var sample = new DetectionSample(img.Clone(), target);
        var losses = model.ComputeLosses([sample]);
        try
        {
            Assert.Contains("loss_mimic", losses.Keys);
            Assert.True(Math.Abs(losses["loss_mimic"].Item()) < 1e-7, $"mimic loss {losses["loss_mimic"].Item()}");
            // The branch's classification loss is -log softmax(cls_score(f))[2] of the detector's own feature f of that RoI.
            using var noGrad = GradMode.NoGrad();
            using var batch = model.Transform.Apply([img]);
            Assert.Equal(new[] { 1, 3, 64, 64 }, batch.Tensors.Shape.ToArray());
            using var features = model.Backbone.Forward(batch.Tensors);
            using var box = Tensor.From<float>([0, 0, 64, 64], [1, 4]);
            using var pooled = model.RoiHeads.BoxRoiPool.Forward(features, [box], [(64, 64)]);
            using var f = model.RoiHeads.BoxHead.Forward(pooled);
            using var logits = model.Mimicking!.ClsScore.Forward(f);
            var z = logits.ToDoubleArray();
            double lse = Math.Log(z.Sum(Math.Exp));
            Assert.Equal(lse - z[2], losses["loss_rcnn_cls"].Item(), 5);
        }
        finally
        {
            foreach (var l in losses.Values) l.Dispose();
        }
    }

    [Fact]
    public void CropsLeaveTrainableNormStatisticsAlone()
    {
        // A backbone with trainable BatchNorm (the compact models'): the crops' pass must not move the running statistics
        // the detector is evaluated with, so they come out as after the same step without mimicking.
        FasterRcnnConfig WithNorm(FeatureMimickingConfig? mimic) => Config(mimic) with
        {
            Backbone = SmokeTests.TinyFrcnn.Backbone with { Norm = BackboneNorm.BatchNorm, TrainableLayers = 5 },
        };
        Dictionary<string, double[]> Statistics(FeatureMimickingConfig? mimic)
        {
            using var model = new FasterRcnn(WithNorm(mimic), generator: new Generator(10));
            model.Train();
            using var sample = new DetectionSample(Tensor.Rand([3, 64, 64], new Generator(9)),
                DetectionTarget.FromArrays([4, 6, 40, 50, 30, 20, 60, 60], [1, 3], null, 0, 0, [0, 0], [1584, 1200], 1));
            foreach (var l in model.ComputeLosses([sample]).Values) l.Dispose();
            return model.Backbone.NamedBuffers().Where(b => b.Name.Contains("running_", StringComparison.Ordinal))
                .ToDictionary(b => b.Name, b => b.Buffer.ToDoubleArray());
        }
        var with = Statistics(new FeatureMimickingConfig { CropSize = 32, RoisPerImage = 3 });
        var without = Statistics(null);
        Assert.NotEmpty(with);
        Assert.Equal(without.Keys.Order(), with.Keys.Order());
        foreach (var (name, values) in without) Assert.True(values.SequenceEqual(with[name]), $"{name} moved");
    }

    [Fact]
    public void GradientsReachTheBackboneTheBoxHeadAndTheBranch()
    {
        using var model = new FasterRcnn(Config(new FeatureMimickingConfig { CropSize = 32, RoisPerImage = 3 }), generator: new Generator(5));
        model.Train();
        using var img = Tensor.Rand([3, 64, 64], new Generator(6));
        using var target = DetectionTarget.FromArrays([4, 6, 40, 50, 30, 20, 60, 60], [1, 3], null, 0, 0, [0, 0], [1584, 1200], 1);
        using var sample = new DetectionSample(img.Clone(), target);
        var losses = model.ComputeLosses([sample]);
        Assert.Equal(["loss_box_reg", "loss_classifier", "loss_mimic", "loss_objectness", "loss_rcnn_cls", "loss_rpn_box_reg"], losses.Keys.Order().ToArray());
        double mimic = losses["loss_mimic"].Item();
        Assert.InRange(mimic, 0, 0.1); // 0.1 * mean(1 - cos) of non-negative (ReLU) features
        Assert.True(mimic > 0);
        // The mimic term alone: gradient to the detector's path (box head, backbone), none to the branch's classifier.
        losses["loss_mimic"].Backward();
        var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad);
        Assert.Contains(grads["roi_heads.box_head.fc6.weight"]!.ToDoubleArray(), v => v != 0);
        Assert.Contains(grads["backbone.body.layer4.0.conv1.weight"]!.ToDoubleArray(), v => v != 0);
        Assert.Null(grads["rcnn_mimic.cls_score.weight"]);
        model.ZeroGrad();
        losses["loss_rcnn_cls"].Backward();
        grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Grad);
        Assert.Contains(grads["rcnn_mimic.cls_score.weight"]!.ToDoubleArray(), v => v != 0);
        Assert.Contains(grads["backbone.body.layer3.0.conv1.weight"]!.ToDoubleArray(), v => v != 0);
        Assert.Null(grads["roi_heads.box_predictor.cls_score.weight"]);
        foreach (var l in losses.Values) l.Dispose();
    }

    [Fact]
    public void InferenceIgnoresMimicking()
    {
        using var plain = new FasterRcnn(Config(null), generator: new Generator(7));
        using var mimic = new FasterRcnn(Config(new FeatureMimickingConfig()), generator: new Generator(8));
        var weights = plain.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var (k, t) in mimic.StateDict())
            if (k.StartsWith("rcnn_mimic.", StringComparison.Ordinal)) weights[k] = t;
        Assert.Equal(2, weights.Keys.Count(k => k.StartsWith("rcnn_mimic.cls_score.", StringComparison.Ordinal)));
        mimic.LoadStateDict(weights);
        plain.Eval();
        mimic.Eval();
        using var img = Tensor.Rand([3, 64, 64], new Generator(9));
        var a = plain.Predict([img]);
        var b = mimic.Predict([img]);
        Assert.Equal(a[0].Boxes.ToDoubleArray(), b[0].Boxes.ToDoubleArray());
        Assert.Equal(a[0].Scores.ToDoubleArray(), b[0].Scores.ToDoubleArray());
        foreach (var d in a.Concat(b)) d.Dispose();
    }
}
