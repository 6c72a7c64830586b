using Runtime.Models.Backbones;
using Runtime.Nn.Losses;
using Runtime.Vision.Data;
using Runtime.Vision.Ops;

namespace Runtime.Models.Detection;

/// <summary>
/// torchvision's <c>RPNHead</c>: a shared 3x3 conv + ReLU (<c>conv.0.0</c>), then per location A objectness
/// logits (<c>cls_logits</c>) and 4A box deltas (<c>bbox_pred</c>); weights N(0, 0.01), biases 0.
/// </summary>
public sealed class RpnHead : Module
{
    public RpnHead(int inChannels, int numAnchors, int convDepth = 1, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numAnchors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(convDepth);
        Conv = RegisterModule("conv", new Sequential());
        for (int i = 0; i < convDepth; i++)
            Conv.Append(ConvNormActivation.Create(inChannels, inChannels, 3, dtype: dtype, device: device, generator: generator));
        ClsLogits = RegisterModule("cls_logits", new Conv2d(inChannels, numAnchors, 1, dtype: dtype, device: device, generator: generator));
        BboxPred = RegisterModule("bbox_pred", new Conv2d(inChannels, numAnchors * 4, 1, dtype: dtype, device: device, generator: generator));
        foreach (var (_, m) in NamedModules())
            if (m is Conv2d c)
            {
                Init.Normal_(c.Weight, 0, 0.01, generator);
                if (c.Bias != null) Init.Zeros_(c.Bias);
            }
        NumAnchors = numAnchors;
    }

    public Sequential Conv { get; }
    public Conv2d ClsLogits { get; }
    public Conv2d BboxPred { get; }
    public int NumAnchors { get; }

    /// <summary>Per level: objectness [N, A, H, W] and deltas [N, 4A, H, W].</summary>
    public (Tensor[] Objectness, Tensor[] Deltas) Forward(IReadOnlyList<Tensor> features)
    {
        var obj = new Tensor[features.Count];
        var deltas = new Tensor[features.Count];
        for (int i = 0; i < features.Count; i++)
        {
            using var t = Conv.Forward(features[i]);
            obj[i] = ClsLogits.Forward(t);
            deltas[i] = BboxPred.Forward(t);
        }
        return (obj, deltas);
    }

    /// <summary>
    /// Level maps [N, A*C, H, W] to one [N, sum HWA, C] tensor, rows in torchvision's order (location-major,
    /// anchors of one location contiguous), as its <c>permute_and_flatten</c> + cat.
    /// </summary>
    public static Tensor Flatten(IReadOnlyList<Tensor> levels, int c)
    {
        using var scope = new TensorScope();
        var parts = new Tensor[levels.Count];
        for (int i = 0; i < levels.Count; i++)
        {
            var x = levels[i];
            int n = x.Size(0), a = x.Size(1) / c, h = x.Size(2), w = x.Size(3);
            parts[i] = x.View(n, a, c, h, w).Permute(0, 3, 4, 1, 2).Reshape(n, h * w * a, c);
        }
        return scope.MoveOut(parts.Length == 1 ? parts[0].Contiguous() : Tensor.Cat(parts, 1));
    }
}

/// <summary>The settings of a <see cref="RegionProposalNetwork"/> (torchvision's defaults).</summary>
public sealed record RpnConfig
{
    public int PreNmsTopNTrain { get; init; } = 2000;
    public int PreNmsTopNTest { get; init; } = 1000;
    public int PostNmsTopNTrain { get; init; } = 2000;
    public int PostNmsTopNTest { get; init; } = 1000;
    public double NmsThresh { get; init; } = 0.7;
    public double FgIouThresh { get; init; } = 0.7;
    public double BgIouThresh { get; init; } = 0.3;
    public int BatchSizePerImage { get; init; } = 256;
    public double PositiveFraction { get; init; } = 0.5;
    public double ScoreThresh { get; init; }
}

/// <summary>
/// torchvision's <c>RegionProposalNetwork</c>: the head's objectness and deltas on every anchor, decoded into
/// boxes; per level the top <c>pre_nms_top_n</c> by objectness, then per image clipping, removal of boxes
/// smaller than 1e-3, NMS per level (IoU 0.7) and the best <c>post_nms_top_n</c>. In training, anchors are
/// matched to the ground truth (IoU &gt;= 0.7 foreground, &lt; 0.3 background, best anchors of each box kept),
/// sampled (256 per image, half positive), and give a BCE objectness loss and a smooth-L1 (beta 1/9) box loss.
/// </summary>
public sealed class RegionProposalNetwork : Module
{
    private const double MinSize = 1e-3;

    public RegionProposalNetwork(AnchorGenerator anchorGenerator, RpnHead head, RpnConfig? config = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(anchorGenerator);
        ArgumentNullException.ThrowIfNull(head);
        AnchorGenerator = anchorGenerator;
        Config = config ?? new RpnConfig();
        Head = RegisterModule("head", head);
        Matcher = new Matcher(Config.FgIouThresh, Config.BgIouThresh, allowLowQualityMatches: true);
        Sampler = new BalancedPositiveNegativeSampler(Config.BatchSizePerImage, Config.PositiveFraction, generator);
    }

    public AnchorGenerator AnchorGenerator { get; }
    public RpnHead Head { get; }
    public RpnConfig Config { get; }
    public BoxCoder BoxCoder { get; } = new((1, 1, 1, 1));
    public Matcher Matcher { get; }

    /// <summary>Chooses the anchors the losses use; replaceable (e.g. by recorded picks in parity tests).</summary>
    public IPositiveNegativeSampler Sampler { get; set; }

    /// <summary>
    /// Proposals per image ([K, 4] in the resized image's frame, best first, no gradient) and, when
    /// <paramref name="targets"/> are given, the losses <c>loss_objectness</c> and <c>loss_rpn_box_reg</c>.
    /// </summary>
    public (Tensor[] Proposals, Dictionary<string, Tensor> Losses) Forward(ImageBatch images, FeatureMaps features, IReadOnlyList<DetectionTarget>? targets)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(features);
        using var scope = new TensorScope();
        var maps = features.Maps;
        var (objLevels, deltaLevels) = Head.Forward(maps);
        var anchors = AnchorGenerator.Forward(images.Tensors, images.ImageSizes, maps);
        int numImages = anchors.Length;
        var perLevel = objLevels.Select(o => o.Size(1) * o.Size(2) * o.Size(3)).ToArray();
        var objectness = RpnHead.Flatten(objLevels, 1).Reshape(numImages, -1);     // [N, total]
        var deltas = RpnHead.Flatten(deltaLevels, 4).Reshape(-1, 4);               // [N*total, 4]
        var allAnchors = Tensor.Cat(anchors, 0);
        Tensor proposals;
        using (GradMode.NoGrad())
            proposals = BoxCoder.DecodeSingle(deltas.Detach(), allAnchors).Reshape(numImages, -1, 4);
        var boxes = FilterProposals(proposals, objectness, images.ImageSizes, perLevel);
        foreach (var b in boxes) scope.MoveOut(b);

        var losses = new Dictionary<string, Tensor>();
        if (targets != null)
        {
            var (objLoss, boxLoss) = ComputeLoss(objectness.Reshape(-1), deltas, anchors, allAnchors, targets);
            losses["loss_objectness"] = scope.MoveOut(objLoss);
            losses["loss_rpn_box_reg"] = scope.MoveOut(boxLoss);
        }
        return (boxes, losses);
    }

    private int PreNmsTopN => IsTraining ? Config.PreNmsTopNTrain : Config.PreNmsTopNTest;
    private int PostNmsTopN => IsTraining ? Config.PostNmsTopNTrain : Config.PostNmsTopNTest;

    private Tensor[] FilterProposals(Tensor proposals, Tensor objectness, IReadOnlyList<(int Height, int Width)> imageSizes, int[] perLevel)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        var obj = objectness.Detach();
        var device = obj.Device;
        // Level of every kept candidate, and the candidates' indices: top pre_nms_top_n per level.
        var result = new Tensor[proposals.Size(0)];
        for (int i = 0; i < proposals.Size(0); i++)
        {
            var objI = obj.Select(0, i);
            var idxParts = new List<Tensor>();
            var levelIds = new List<long>();
            long offset = 0;
            for (int l = 0; l < perLevel.Length; l++)
            {
                int k = Math.Min(PreNmsTopN, perLevel[l]);
                var (_, top) = objI.Narrow(0, offset, perLevel[l]).TopK(k, 0);
                idxParts.Add(top + offset);
                for (int j = 0; j < k; j++) levelIds.Add(l);
                offset += perLevel[l];
            }
            var idx = Tensor.Cat(idxParts, 0);
            var scores = objI.IndexSelect(0, idx).Sigmoid();
            var boxes = Boxes.ClipBoxesToImage(proposals.Select(0, i).IndexSelect(0, idx), imageSizes[i]);
            var levels = Rows.Index(levelIds.ToArray(), device);
            var keep = Boxes.RemoveSmallBoxes(boxes, MinSize);
            boxes = boxes.IndexSelect(0, keep);
            scores = scores.IndexSelect(0, keep);
            levels = levels.IndexSelect(0, keep);
            if (Config.ScoreThresh > 0)
            {
                keep = Rows.Where(scores.Ge(Config.ScoreThresh));
                boxes = boxes.IndexSelect(0, keep);
                scores = scores.IndexSelect(0, keep);
                levels = levels.IndexSelect(0, keep);
            }
            keep = Rows.Head(Boxes.BatchedNms(boxes, scores, levels, Config.NmsThresh), PostNmsTopN);
            result[i] = scope.MoveOut(boxes.IndexSelect(0, keep));
        }
        return result;
    }

    private (Tensor Objectness, Tensor BoxReg) ComputeLoss(Tensor objectness, Tensor deltas, Tensor[] anchors, Tensor allAnchors, IReadOnlyList<DetectionTarget> targets)
    {
        using var scope = new TensorScope();
        var device = objectness.Device;
        var labels = new Tensor[anchors.Length];
        var matchedGt = new Tensor[anchors.Length];
        using (GradMode.NoGrad())
        {
            for (int i = 0; i < anchors.Length; i++)
            {
                var gt = targets[i].Boxes.To(device).To(anchors[i].DType);
                if (gt.Size(0) == 0)
                {
                    labels[i] = Tensor.Zeros([anchors[i].Size(0)], DType.Int64, device);
                    matchedGt[i] = Tensor.Zeros([anchors[i].Size(0), 4], anchors[i].DType, device);
                    continue;
                }
                var matched = Matcher.Match(Boxes.BoxIou(gt, anchors[i]));
                matchedGt[i] = gt.IndexSelect(0, matched.Clamp(min: 0));
                // 1 foreground, 0 background, -1 between the thresholds.
                var fg = matched.Ge(0).To(DType.Int64);
                var between = matched.Eq(Matcher.BetweenThresholds).To(DType.Int64);
                labels[i] = fg - between;
            }
        }
        var (posMasks, negMasks) = Sampler.Sample(labels);
        var pos = Rows.Where(Tensor.Cat(posMasks, 0));
        var neg = Rows.Where(Tensor.Cat(negMasks, 0));
        var sampled = Tensor.Cat([pos, neg], 0);
        var allLabels = Tensor.Cat(labels, 0).To(objectness.DType);
        Tensor regTargets;
        // Regression targets of the sampled positives only (torchvision encodes every anchor; the picked rows are the same).
        using (GradMode.NoGrad())
            regTargets = BoxCoder.EncodeSingle(Tensor.Cat(matchedGt, 0).IndexSelect(0, pos), allAnchors.IndexSelect(0, pos));
        var reg = Losses.SmoothL1(deltas.IndexSelect(0, pos), regTargets, beta: 1.0 / 9, reduction: Reduction.Sum) / Math.Max(1, sampled.Size(0));
        var obj = Losses.BinaryCrossEntropyWithLogits(objectness.IndexSelect(0, sampled), allLabels.IndexSelect(0, sampled));
        return (scope.MoveOut(obj), scope.MoveOut(reg));
    }
}
