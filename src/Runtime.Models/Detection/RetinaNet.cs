using Runtime.Models.Backbones;
using Runtime.Nn.Losses;
using Runtime.Vision.Data;
using Runtime.Vision.Ops;

namespace Runtime.Models.Detection;

/// <summary>
/// One branch of torchvision's <c>RetinaNetHead</c>: four 3x3 conv (+ optional GroupNorm) + ReLU blocks
/// (<c>conv.i.0</c>, <c>conv.i.1</c>) and a 3x3 output conv with A * <paramref name="valuesPerAnchor"/> channels.
/// Convolutions N(0, 0.01) with zero biases; the classification output's bias is -log((1 - 0.01) / 0.01).
/// </summary>
public sealed class RetinaNetBranch : Module
{
    public RetinaNetBranch(int inChannels, int numAnchors, int valuesPerAnchor, string outputName, double outputBias, int normGroups,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        Func<int, UnaryModule>? norm = normGroups > 0 ? c => new GroupNorm(normGroups, c, dtype: dtype, device: device) : null;
        Conv = RegisterModule("conv", new Sequential());
        for (int i = 0; i < 4; i++)
            Conv.Append(ConvNormActivation.Create(inChannels, inChannels, 3, norm: norm, dtype: dtype, device: device, generator: generator));
        Output = RegisterModule(outputName, new Conv2d(inChannels, numAnchors * valuesPerAnchor, 3, 1, 1, dtype: dtype, device: device, generator: generator));
        foreach (var (_, m) in NamedModules())
            if (m is Conv2d c)
            {
                Init.Normal_(c.Weight, 0, 0.01, generator);
                if (c.Bias != null) Init.Zeros_(c.Bias);
            }
        Init.Constant_(Output.Bias!, outputBias);
        ValuesPerAnchor = valuesPerAnchor;
    }

    public Sequential Conv { get; }
    public Conv2d Output { get; }
    public int ValuesPerAnchor { get; }

    /// <summary>Per level [N, H*W*A, V] in torchvision's order (location-major, anchors of a location contiguous).</summary>
    public Tensor[] Forward(IReadOnlyList<Tensor> features)
    {
        var result = new Tensor[features.Count];
        for (int i = 0; i < features.Count; i++)
        {
            using var t = Conv.Forward(features[i]);
            using var o = Output.Forward(t);
            result[i] = RpnHead.Flatten([o], ValuesPerAnchor);
        }
        return result;
    }
}

/// <summary>torchvision's <c>RetinaNetHead</c>: <c>classification_head</c> (<c>cls_logits</c>) and <c>regression_head</c> (<c>bbox_reg</c>).</summary>
public sealed class RetinaNetHead : Module
{
    public RetinaNetHead(int inChannels, int numAnchors, int numClasses, int normGroups = 0, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        const double prior = 0.01;
        Classification = RegisterModule("classification_head",
            new RetinaNetBranch(inChannels, numAnchors, numClasses, "cls_logits", -Math.Log((1 - prior) / prior), normGroups, dtype, device, generator));
        Regression = RegisterModule("regression_head",
            new RetinaNetBranch(inChannels, numAnchors, 4, "bbox_reg", 0, normGroups, dtype, device, generator));
    }

    public RetinaNetBranch Classification { get; }
    public RetinaNetBranch Regression { get; }
}

/// <summary>
/// torchvision's <c>RetinaNet</c>: ResNet + FPN (P3-P7), a dense head predicting class logits and box deltas for
/// 9 anchors per location. Training: anchors matched at IoU 0.5 / 0.4 (best anchors of each box kept), sigmoid
/// focal loss over the non-ignored anchors and an L1 (or GIoU) box loss on the foreground, each divided by the
/// image's foreground count and averaged over images. Inference: per level the top 1000 scores above 0.05, boxes
/// decoded and clipped, NMS 0.5 per class, the best 300.
/// </summary>
public class RetinaNet : DetectionModel
{
    public RetinaNet(RetinaNetConfig config, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : base(config, dtype, device, generator)
    {
        Config = config;
        var counts = AnchorGenerator.NumAnchorsPerLocation();
        if (counts.Distinct().Count() != 1)
            throw new ArgumentException($"RetinaNet needs the same anchor count at every level, got [{string.Join(", ", counts)}]", nameof(config));
        Head = RegisterModule("head", new RetinaNetHead(Backbone.OutChannels, counts[0], config.NumClasses, config.HeadNormGroups, dtype, device, generator));
        Matcher = new Matcher(config.FgIouThresh, config.BgIouThresh, allowLowQualityMatches: true);
    }

    public new RetinaNetConfig Config { get; }
    public RetinaNetHead Head { get; }
    public BoxCoder BoxCoder { get; } = new((1, 1, 1, 1));
    public Matcher Matcher { get; }

    /// <summary>The head's outputs over all levels: class logits [N, total, K], deltas [N, total, 4], and per-level anchor counts.</summary>
    public (Tensor Logits, Tensor Deltas, int[] PerLevel) ForwardHead(FeatureMaps features)
    {
        using var scope = new TensorScope();
        var maps = features.Maps;
        var cls = Head.Classification.Forward(maps);
        var reg = Head.Regression.Forward(maps);
        var perLevel = cls.Select(c => c.Size(1)).ToArray();
        var logits = cls.Length == 1 ? cls[0] : Tensor.Cat(cls, 1);
        var deltas = reg.Length == 1 ? reg[0] : Tensor.Cat(reg, 1);
        return (scope.MoveOut(logits), scope.MoveOut(deltas), perLevel);
    }

    public override List<DetectionResult> ForwardDetections(ImageBatch images)
    {
        using var scope = new TensorScope();
        using var features = Backbone.Forward(images.Tensors);
        var (logits, deltas, perLevel) = ForwardHead(features);
        var anchors = AnchorGenerator.Forward(images.Tensors, images.ImageSizes, features.Maps);
        var result = new List<DetectionResult>();
        for (int i = 0; i < images.Count; i++)
        {
            var d = PostprocessImage(logits.Select(0, i), deltas.Select(0, i), anchors[i], perLevel, images.ImageSizes[i]);
            result.Add(d.MoveOutOf(scope));
        }
        return result;
    }

    private DetectionResult PostprocessImage(Tensor logits, Tensor deltas, Tensor anchors, int[] perLevel, (int Height, int Width) imageSize)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        int numClasses = logits.Size(1);
        var boxes = new List<Tensor>();
        var scores = new List<Tensor>();
        var labels = new List<Tensor>();
        long start = 0;
        foreach (int n in perLevel)
        {
            var s = logits.Narrow(0, start, n).Sigmoid().Reshape(-1);
            var candidates = Rows.Where(s.Gt(Config.ScoreThresh));
            var kept = s.IndexSelect(0, candidates);
            int k = Math.Min(Config.TopkCandidates, candidates.Size(0));
            var (top, order) = kept.TopK(k, 0);
            var flat = candidates.IndexSelect(0, order).ToArray<long>();
            var anchorIdx = Rows.Index(flat.Select(v => v / numClasses).ToArray(), logits.Device);
            var label = Rows.Index(flat.Select(v => v % numClasses).ToArray(), logits.Device);
            var decoded = BoxCoder.DecodeSingle(deltas.Narrow(0, start, n).IndexSelect(0, anchorIdx), anchors.Narrow(0, start, n).IndexSelect(0, anchorIdx));
            boxes.Add(Boxes.ClipBoxesToImage(decoded, imageSize));
            scores.Add(top);
            labels.Add(label);
            start += n;
        }
        var b = Tensor.Cat(boxes, 0);
        var sc = Tensor.Cat(scores, 0);
        var l = Tensor.Cat(labels, 0);
        var keep = Rows.Head(Boxes.BatchedNms(b, sc, l, Config.NmsThresh), Config.DetectionsPerImage);
        return new DetectionResult(b.IndexSelect(0, keep), sc.IndexSelect(0, keep), l.IndexSelect(0, keep)).MoveOutOf(scope);
    }

    public override Dictionary<string, Tensor> ForwardLosses(ImageBatch images, IReadOnlyList<DetectionTarget> targets)
    {
        Rows.CheckTargets(targets, images.Count);
        using var scope = new TensorScope();
        using var features = Backbone.Forward(images.Tensors);
        var (logits, deltas, _) = ForwardHead(features);
        var anchors = AnchorGenerator.Forward(images.Tensors, images.ImageSizes, features.Maps);
        var device = logits.Device;
        Tensor? clsTotal = null, regTotal = null;
        for (int i = 0; i < images.Count; i++)
        {
            var gt = targets[i].Boxes.To(device).To(anchors[i].DType);
            var gtLabels = targets[i].Labels.To(device).To(DType.Int64);
            Tensor matched;
            using (GradMode.NoGrad())
                matched = gt.Size(0) == 0
                    ? Tensor.Full([anchors[i].Size(0)], Matcher.BelowLowThreshold, DType.Int64, device)
                    : Matcher.Match(Boxes.BoxIou(gt, anchors[i]));
            var logitsI = logits.Select(0, i);
            var deltasI = deltas.Select(0, i);
            var fg = Rows.Where(matched.Ge(0));
            int numFg = fg.Size(0);
            // Classification: each non-ignored anchor's class (its ground truth's label, or -1 for background), as
            // torchvision's one-hot targets over the valid anchors; the loss builds them a band of rows at a time.
            Tensor anchorLabels;
            using (GradMode.NoGrad())
                anchorLabels = numFg > 0 ? matched.Scatter(0, fg, gtLabels.IndexSelect(0, matched.IndexSelect(0, fg))) : matched;
            var focal = Losses.SigmoidFocalLossFromLabels(logitsI, anchorLabels) / Math.Max(1, numFg);
            // Box regression on the foreground anchors.
            var matchedGt = gt.Size(0) == 0 ? Tensor.Zeros([0, 4], gt.DType, device) : gt.IndexSelect(0, matched.IndexSelect(0, fg));
            var fgAnchors = anchors[i].IndexSelect(0, fg);
            var fgDeltas = deltasI.IndexSelect(0, fg);
            Tensor box = Config.BoxLoss switch
            {
                "giou" => Boxes.GeneralizedBoxIouLoss(BoxCoder.DecodeSingle(fgDeltas, fgAnchors), matchedGt, Reduction.Sum),
                "smooth_l1" => Losses.SmoothL1(fgDeltas, EncodeNoGrad(matchedGt, fgAnchors), beta: 1.0, reduction: Reduction.Sum),
                _ => Losses.L1(fgDeltas, EncodeNoGrad(matchedGt, fgAnchors), Reduction.Sum),
            };
            box = box / Math.Max(1, numFg);
            clsTotal = clsTotal == null ? focal : clsTotal + focal;
            regTotal = regTotal == null ? box : regTotal + box;
        }
        var result = new Dictionary<string, Tensor>
        {
            ["classification"] = scope.MoveOut(clsTotal! / images.Count),
            ["bbox_regression"] = scope.MoveOut(regTotal! / Math.Max(1, images.Count)),
        };
        return result;
    }

    private Tensor EncodeNoGrad(Tensor gt, Tensor anchors)
    {
        using var noGrad = GradMode.NoGrad();
        return BoxCoder.EncodeSingle(gt, anchors);
    }
}
