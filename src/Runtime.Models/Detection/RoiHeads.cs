using Runtime.Models.Backbones;
using Runtime.Nn.Losses;
using Runtime.Vision.Data;
using Runtime.Vision.Ops;

namespace Runtime.Models.Detection;

/// <summary>torchvision's <c>TwoMLPHead</c>: flatten, fc6 + ReLU, fc7 + ReLU (PyTorch's Linear initialisation).</summary>
public sealed class TwoMlpHead : UnaryModule
{
    public TwoMlpHead(int inChannels, int representationSize, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        Fc6 = RegisterModule("fc6", new Linear(inChannels, representationSize, dtype: dtype, device: device, generator: generator));
        Fc7 = RegisterModule("fc7", new Linear(representationSize, representationSize, dtype: dtype, device: device, generator: generator));
    }

    public Linear Fc6 { get; }
    public Linear Fc7 { get; }

    public override Tensor Forward(Tensor input)
    {
        using var flat = input.Flatten(1);
        using var a = Fc6.Forward(flat);
        using var r = a.Relu();
        using var b = Fc7.Forward(r);
        return b.Relu();
    }
}

/// <summary>torchvision's <c>FastRCNNPredictor</c>: class logits (<c>cls_score</c>) and per-class box deltas (<c>bbox_pred</c>).</summary>
public sealed class FastRcnnPredictor : Module
{
    public FastRcnnPredictor(int inChannels, int numClasses, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numClasses, 2);
        ClsScore = RegisterModule("cls_score", new Linear(inChannels, numClasses, dtype: dtype, device: device, generator: generator));
        BboxPred = RegisterModule("bbox_pred", new Linear(inChannels, numClasses * 4, dtype: dtype, device: device, generator: generator));
        NumClasses = numClasses;
    }

    public Linear ClsScore { get; }
    public Linear BboxPred { get; }
    public int NumClasses { get; }

    /// <summary>Logits [K, classes] and deltas [K, 4 * classes].</summary>
    public (Tensor Logits, Tensor Deltas) Forward(Tensor x)
    {
        using var flat = x.Flatten(1);
        return (ClsScore.Forward(flat), BboxPred.Forward(flat));
    }
}

/// <summary>The settings of <see cref="RoiHeads"/> (torchvision's defaults).</summary>
public sealed record RoiHeadsConfig
{
    public double FgIouThresh { get; init; } = 0.5;
    public double BgIouThresh { get; init; } = 0.5;
    public int BatchSizePerImage { get; init; } = 512;
    public double PositiveFraction { get; init; } = 0.25;
    public double ScoreThresh { get; init; } = 0.05;
    public double NmsThresh { get; init; } = 0.5;
    public int DetectionsPerImage { get; init; } = 100;
    /// <summary>The box coder's weights (x, y, w, h).</summary>
    public double[] BboxRegWeights { get; init; } = [10, 10, 5, 5];
}

/// <summary>
/// The proposals the RoI heads train on, per image: the sampled boxes [K, 4] (resized frame), their class labels
/// [K] (0 = background), the index [K] of the ground truth each was matched to (0 for background) and the box
/// regression targets [K, 4].
/// </summary>
public sealed record RoiTrainingSamples(Tensor[] Proposals, Tensor[] Labels, Tensor[] MatchedIdxs, Tensor[] RegressionTargets);

/// <summary>What <see cref="RoiHeads.ForwardTraining"/> gives: the loss terms, the sampled proposals and their box-head features.</summary>
public sealed record RoiHeadsTrainingOutput(Dictionary<string, Tensor> Losses, RoiTrainingSamples Samples, Tensor BoxFeatures)
{
    /// <summary>Disposes the samples and the box features (not the losses).</summary>
    public void DisposeIntermediates()
    {
        foreach (var group in new[] { Samples.Proposals, Samples.Labels, Samples.MatchedIdxs, Samples.RegressionTargets })
            foreach (var t in group) t.Dispose();
        BoxFeatures.Dispose();
    }
}

/// <summary>
/// torchvision's <c>RoIHeads</c> (box branch): proposals pooled by <see cref="MultiScaleRoIAlign"/>, a box head
/// and a predictor. In training the ground-truth boxes join the proposals, which are matched (IoU 0.5) and
/// sampled (512 per image, a quarter positive) and give a cross-entropy class loss and a smooth-L1 (beta 1/9)
/// loss on the true class's deltas. In evaluation: softmax scores, per-class decoded and clipped boxes, scores
/// above 0.05, boxes of at least 1e-2, per-class NMS 0.5, the best 100.
/// </summary>
public class RoiHeads : Module
{
    public RoiHeads(MultiScaleRoIAlign boxRoiPool, UnaryModule boxHead, FastRcnnPredictor boxPredictor, RoiHeadsConfig? config = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(boxRoiPool);
        BoxRoiPool = RegisterModule("box_roi_pool", boxRoiPool);
        BoxHead = RegisterModule("box_head", boxHead);
        BoxPredictor = RegisterModule("box_predictor", boxPredictor);
        Config = config ?? new RoiHeadsConfig();
        if (Config.BboxRegWeights.Length != 4) throw new ArgumentException("RoI heads: the box regression weights must be 4 numbers", nameof(config));
        BoxCoder = new BoxCoder((Config.BboxRegWeights[0], Config.BboxRegWeights[1], Config.BboxRegWeights[2], Config.BboxRegWeights[3]));
        Matcher = new Matcher(Config.FgIouThresh, Config.BgIouThresh, allowLowQualityMatches: false);
        Sampler = new BalancedPositiveNegativeSampler(Config.BatchSizePerImage, Config.PositiveFraction, generator);
    }

    public MultiScaleRoIAlign BoxRoiPool { get; }
    public UnaryModule BoxHead { get; }
    public FastRcnnPredictor BoxPredictor { get; }
    public RoiHeadsConfig Config { get; }
    public BoxCoder BoxCoder { get; }
    public Matcher Matcher { get; }

    /// <summary>Chooses the proposals the losses use; replaceable (e.g. by recorded picks in parity tests).</summary>
    public IPositiveNegativeSampler Sampler { get; set; }

    /// <summary>
    /// With targets: the losses <c>loss_classifier</c> and <c>loss_box_reg</c> (and those of the further branches,
    /// <see cref="AddBranchLosses"/>; no detections). Without: the detections per image in the resized frame
    /// (completed by the further branches, <see cref="CompleteDetections"/>).
    /// </summary>
    public (List<DetectionResult> Detections, Dictionary<string, Tensor> Losses) Forward(FeatureMaps features, IReadOnlyList<Tensor> proposals,
        IReadOnlyList<(int Height, int Width)> imageSizes, IReadOnlyList<DetectionTarget>? targets)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(proposals);
        if (targets != null)
        {
            var t = ForwardTraining(features, proposals, imageSizes, targets);
            t.DisposeIntermediates();
            return ([], t.Losses);
        }
        using var scope = new TensorScope();
        var sizes = ToHw(imageSizes);
        var pooled = BoxRoiPool.Forward(features, proposals, sizes);
        var head = BoxHead.Forward(pooled);
        var (logits, deltas) = BoxPredictor.Forward(head);
        var detections = CompleteDetections(features, sizes, PostprocessDetections(logits, deltas, proposals, imageSizes));
        foreach (var d in detections) d.MoveOutOf(scope);
        return (detections, new Dictionary<string, Tensor>());
    }

    /// <summary>
    /// The training forward: the losses (as <see cref="Forward"/> with targets) and, for further losses on the box
    /// features (R-CNN feature mimicking), the sampled proposals and their box-head features [sum Ki, representation]
    /// (rows in sample order, images concatenated). The caller owns everything returned.
    /// </summary>
    public RoiHeadsTrainingOutput ForwardTraining(FeatureMaps features, IReadOnlyList<Tensor> proposals, IReadOnlyList<(int Height, int Width)> imageSizes,
        IReadOnlyList<DetectionTarget> targets)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(proposals);
        ArgumentNullException.ThrowIfNull(targets);
        using var scope = new TensorScope();
        var losses = new Dictionary<string, Tensor>();
        var sizes = ToHw(imageSizes);
        var samples = SelectTrainingSamples(proposals, targets);
        var pooled = BoxRoiPool.Forward(features, samples.Proposals, sizes);
        var head = BoxHead.Forward(pooled);
        var (logits, deltas) = BoxPredictor.Forward(head);
        var (cls, box) = FastRcnnLoss(logits, deltas, Tensor.Cat(samples.Labels, 0), Tensor.Cat(samples.RegressionTargets, 0));
        losses["loss_classifier"] = cls;
        losses["loss_box_reg"] = box;
        AddBranchLosses(features, sizes, samples, targets, losses);
        foreach (var l in losses.Values) scope.MoveOut(l);
        foreach (var group in new[] { samples.Proposals, samples.Labels, samples.MatchedIdxs, samples.RegressionTargets })
            foreach (var t in group) scope.MoveOut(t);
        return new RoiHeadsTrainingOutput(losses, samples, scope.MoveOut(head));
    }

    /// <summary>
    /// Training hook of the branches that follow the box branch (Mask R-CNN's mask branch): adds their loss terms to
    /// <paramref name="losses"/>, computed on the sampled proposals. Tensors made here belong to the caller's scope.
    /// </summary>
    protected virtual void AddBranchLosses(FeatureMaps features, (int H, int W)[] imageSizes, RoiTrainingSamples samples,
        IReadOnlyList<DetectionTarget> targets, Dictionary<string, Tensor> losses) { }

    /// <summary>
    /// Evaluation hook of the branches that follow the box branch: the detections (resized frame) with what those
    /// branches add (Mask R-CNN: the masks). Tensors made here belong to the caller's scope.
    /// </summary>
    protected virtual List<DetectionResult> CompleteDetections(FeatureMaps features, (int H, int W)[] imageSizes, List<DetectionResult> detections) => detections;

    private static (int H, int W)[] ToHw(IReadOnlyList<(int Height, int Width)> sizes) => sizes.Select(s => (s.Height, s.Width)).ToArray();

    /// <summary>
    /// torchvision's select_training_samples: per image, proposals + ground truth, matched and sampled (kept in
    /// index order); returns the sampled boxes, their class labels (0 background), the index of the ground truth
    /// each was matched to (0 for background) and the regression targets.
    /// </summary>
    protected RoiTrainingSamples SelectTrainingSamples(IReadOnlyList<Tensor> proposals, IReadOnlyList<DetectionTarget> targets)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        int n = proposals.Count;
        var withGt = new Tensor[n];
        var labels = new Tensor[n];
        var matchedIdx = new Tensor[n];
        for (int i = 0; i < n; i++)
        {
            var device = proposals[i].Device;
            var gt = targets[i].Boxes.To(device).To(proposals[i].DType);
            withGt[i] = Tensor.Cat([proposals[i], gt], 0);
            if (gt.Size(0) == 0)
            {
                matchedIdx[i] = Tensor.Zeros([withGt[i].Size(0)], DType.Int64, device);
                labels[i] = Tensor.Zeros([withGt[i].Size(0)], DType.Int64, device);
                continue;
            }
            var matched = Matcher.Match(Boxes.BoxIou(gt, withGt[i]));
            var clamped = matched.Clamp(min: 0);
            var gtLabels = targets[i].Labels.To(device).To(DType.Int64);
            var l = gtLabels.IndexSelect(0, clamped);
            l = l.MaskedFill(matched.Eq(Matcher.BelowLowThreshold), 0);
            l = l.MaskedFill(matched.Eq(Matcher.BetweenThresholds), -1);
            labels[i] = l;
            matchedIdx[i] = clamped;
        }
        var (pos, neg) = Sampler.Sample(labels);
        var outProposals = new Tensor[n];
        var outLabels = new Tensor[n];
        var outMatched = new Tensor[n];
        var outTargets = new Tensor[n];
        for (int i = 0; i < n; i++)
        {
            var keep = Rows.Where(pos[i].LogicalOr(neg[i]));
            var boxes = withGt[i].IndexSelect(0, keep);
            var gt = targets[i].Boxes.To(boxes.Device).To(boxes.DType);
            if (gt.Size(0) == 0) gt = Tensor.Zeros([1, 4], boxes.DType, boxes.Device);
            var matched = matchedIdx[i].IndexSelect(0, keep);
            var matchedGt = gt.IndexSelect(0, matched);
            outProposals[i] = scope.MoveOut(boxes);
            outLabels[i] = scope.MoveOut(labels[i].IndexSelect(0, keep));
            outMatched[i] = scope.MoveOut(matched);
            outTargets[i] = scope.MoveOut(BoxCoder.EncodeSingle(matchedGt, boxes));
        }
        return new RoiTrainingSamples(outProposals, outLabels, outMatched, outTargets);
    }

    /// <summary>torchvision's fastrcnn_loss: cross-entropy over all samples; smooth-L1 (beta 1/9, summed) on the positives' true-class deltas over the sample count.</summary>
    public static (Tensor Classifier, Tensor BoxReg) FastRcnnLoss(Tensor logits, Tensor deltas, Tensor labels, Tensor regressionTargets)
    {
        using var scope = new TensorScope();
        var cls = Losses.CrossEntropy(logits, labels);
        var pos = Rows.Where(labels.Gt(0));
        int n = logits.Size(0);
        var perClass = deltas.Reshape(n, deltas.Size(1) / 4, 4);
        // Row pos[k], class labels[pos[k]]: flatten (row, class) into one index.
        var flatIdx = pos * (deltas.Size(1) / 4) + labels.IndexSelect(0, pos);
        var picked = perClass.Reshape(-1, 4).IndexSelect(0, flatIdx);
        var box = Losses.SmoothL1(picked, regressionTargets.IndexSelect(0, pos), beta: 1.0 / 9, reduction: Reduction.Sum) / Math.Max(1, labels.Size(0));
        return (scope.MoveOut(cls), scope.MoveOut(box));
    }

    private List<DetectionResult> PostprocessDetections(Tensor logits, Tensor deltas, IReadOnlyList<Tensor> proposals, IReadOnlyList<(int Height, int Width)> imageSizes)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        int numClasses = logits.Size(1);
        var counts = proposals.Select(p => p.Size(0)).ToArray();
        var predBoxes = BoxCoder.DecodeSingle(deltas, Tensor.Cat(proposals.ToArray(), 0)).Reshape(-1, numClasses, 4);
        var predScores = logits.Softmax(-1);
        var result = new List<DetectionResult>();
        long start = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            int k = counts[i];
            var boxes = Boxes.ClipBoxesToImage(predBoxes.Narrow(0, start, k), imageSizes[i]);
            var scores = predScores.Narrow(0, start, k);
            start += k;
            // Drop the background column; flatten (proposal, class) pairs row-major as torchvision.
            var b = boxes.Narrow(1, 1, numClasses - 1).Reshape(-1, 4);
            var s = scores.Narrow(1, 1, numClasses - 1).Reshape(-1);
            var l = Tensor.Arange(1, numClasses, 1, DType.Int64, logits.Device).Unsqueeze(0).Expand(k, numClasses - 1).Reshape(-1);
            var keep = Rows.Where(s.Gt(Config.ScoreThresh));
            b = b.IndexSelect(0, keep); s = s.IndexSelect(0, keep); l = l.IndexSelect(0, keep);
            keep = Boxes.RemoveSmallBoxes(b, 1e-2);
            b = b.IndexSelect(0, keep); s = s.IndexSelect(0, keep); l = l.IndexSelect(0, keep);
            keep = Rows.Head(Boxes.BatchedNms(b, s, l, Config.NmsThresh), Config.DetectionsPerImage);
            result.Add(new DetectionResult(b.IndexSelect(0, keep), s.IndexSelect(0, keep), l.IndexSelect(0, keep)).MoveOutOf(scope));
        }
        return result;
    }
}
