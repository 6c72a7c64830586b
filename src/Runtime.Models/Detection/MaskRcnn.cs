using Runtime.Models.Backbones;
using Runtime.Nn.Losses;
using Runtime.Vision.Data;
using Runtime.Vision.Ops;

namespace Runtime.Models.Detection;

/// <summary>
/// torchvision's <c>MaskRCNNHeads</c>: 3x3 convolutions (padding = dilation) each followed by a ReLU, as blocks
/// <c>0</c>, <c>1</c>, ... of <c>Conv2dNormActivation</c> without a norm (keys <c>{i}.0.weight</c>, <c>{i}.0.bias</c>);
/// weights kaiming-normal (fan out, ReLU), biases 0. The pre-0.13 names <c>mask_fcn{i+1}.*</c> are renamed on load
/// (<see cref="Runtime.Nn.Checkpoints.TorchvisionKeys"/>).
/// </summary>
public sealed class MaskRcnnHeads : UnaryModule
{
    private readonly Sequential[] _blocks;

    public MaskRcnnHeads(int inChannels, IReadOnlyList<int> layers, int dilation = 1, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count == 0) throw new ArgumentException("the mask head needs at least one layer", nameof(layers));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dilation);
        _blocks = new Sequential[layers.Count];
        int next = inChannels;
        for (int i = 0; i < layers.Count; i++)
        {
            var conv = new Conv2d(next, layers[i], 3, 1, padding: dilation, dilation: dilation, dtype: dtype, device: device, generator: generator);
            Init.KaimingNormal_(conv.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
            Init.Zeros_(conv.Bias!);
            _blocks[i] = RegisterModule(i.ToString(System.Globalization.CultureInfo.InvariantCulture), new Sequential(conv, new ReLU()));
            next = layers[i];
        }
        OutChannels = next;
    }

    public int OutChannels { get; }

    public override Tensor Forward(Tensor input)
    {
        using var scope = new TensorScope();
        var x = input;
        foreach (var b in _blocks) x = b.Forward(x);
        return scope.MoveOut(x);
    }
}

/// <summary>
/// torchvision's <c>MaskRCNNPredictor</c>: <c>conv5_mask</c> (2x2 transposed convolution, stride 2: the pooled
/// M x M grid becomes 2M x 2M) + ReLU, then <c>mask_fcn_logits</c> (1x1 convolution to one logit map per class).
/// Weights kaiming-normal (fan out, ReLU), biases PyTorch's default (as torchvision, which leaves them).
/// </summary>
public sealed class MaskRcnnPredictor : UnaryModule
{
    public MaskRcnnPredictor(int inChannels, int dimReduced, int numClasses, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numClasses, 2);
        Conv5Mask = RegisterModule("conv5_mask", new ConvTranspose2d(inChannels, dimReduced, 2, 2, 0, dtype: dtype, device: device, generator: generator));
        MaskFcnLogits = RegisterModule("mask_fcn_logits", new Conv2d(dimReduced, numClasses, 1, dtype: dtype, device: device, generator: generator));
        Init.KaimingNormal_(Conv5Mask.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
        Init.KaimingNormal_(MaskFcnLogits.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
        NumClasses = numClasses;
    }

    public ConvTranspose2d Conv5Mask { get; }
    public Conv2d MaskFcnLogits { get; }
    public int NumClasses { get; }

    /// <summary>Mask logits [K, classes, 2M, 2M] of mask features [K, C, M, M].</summary>
    public override Tensor Forward(Tensor input)
    {
        using var up = Conv5Mask.Forward(input);
        using var r = up.Relu();
        return MaskFcnLogits.Forward(r);
    }
}

/// <summary>
/// torchvision's <c>RoIHeads</c> with the mask branch (<c>mask_roi_pool</c>, <c>mask_head</c>, <c>mask_predictor</c>).
/// Training: the positive sampled proposals are pooled (MultiScaleRoIAlign 14x14) and give per-class 28x28 logits;
/// <c>loss_mask</c> is the binary cross-entropy of the matched ground truth's class channel against that ground
/// truth's mask cut out at the proposal (<see cref="ProjectMasksOnBoxes"/>). Evaluation: the detections' boxes are
/// pooled the same way and each gets sigmoid of its class's logits, [K, 1, 28, 28] (pasted into the image by
/// <see cref="DetectionModel.Postprocess"/>). The mask predictor is any module giving [K, classes, M, M] logits, or
/// [K, 1, M, M] for one class-agnostic mask (Mask^X plugs in one whose class weights come from the box predictor).
/// Partial supervision: with <paramref name="maskClasses"/> only the positives matched to a ground truth of those
/// labels train the mask branch (set A); every class still gets a mask at test time.
/// </summary>
public class MaskRoiHeads : RoiHeads
{
    private readonly long[]? _maskClassTable;

    public MaskRoiHeads(MultiScaleRoIAlign boxRoiPool, UnaryModule boxHead, FastRcnnPredictor boxPredictor,
        MultiScaleRoIAlign maskRoiPool, UnaryModule maskHead, UnaryModule maskPredictor, RoiHeadsConfig? config = null, Generator? generator = null,
        IReadOnlyList<int>? maskClasses = null)
        : base(boxRoiPool, boxHead, boxPredictor, config, generator)
    {
        ArgumentNullException.ThrowIfNull(maskRoiPool);
        ArgumentNullException.ThrowIfNull(maskHead);
        ArgumentNullException.ThrowIfNull(maskPredictor);
        MaskRoiPool = RegisterModule("mask_roi_pool", maskRoiPool);
        MaskHead = RegisterModule("mask_head", maskHead);
        MaskPredictor = RegisterModule("mask_predictor", maskPredictor);
        if (maskClasses != null)
        {
            _maskClassTable = new long[boxPredictor.NumClasses];
            foreach (int l in maskClasses)
            {
                if (l < 1 || l >= boxPredictor.NumClasses)
                    throw new ArgumentOutOfRangeException(nameof(maskClasses), l, $"mask classes must be labels in 1..{boxPredictor.NumClasses - 1}");
                _maskClassTable[l] = 1;
            }
            MaskClasses = maskClasses.Order().ToArray();
        }
    }

    public MultiScaleRoIAlign MaskRoiPool { get; }
    public UnaryModule MaskHead { get; }
    public UnaryModule MaskPredictor { get; }

    /// <summary>The labels whose masks train the mask branch (set A), ascending; null: every class.</summary>
    public IReadOnlyList<int>? MaskClasses { get; }

    /// <summary>The mask logits [sum Ki, classes, M, M] of per-image boxes (resized frame), rows in box order.</summary>
    public Tensor MaskLogits(FeatureMaps features, IReadOnlyList<Tensor> boxes, (int H, int W)[] imageSizes)
    {
        using var scope = new TensorScope();
        var pooled = MaskRoiPool.Forward(features, boxes, imageSizes);
        var head = MaskHead.Forward(pooled);
        return scope.MoveOut(MaskPredictor.Forward(head));
    }

    protected override void AddBranchLosses(FeatureMaps features, (int H, int W)[] imageSizes, RoiTrainingSamples samples,
        IReadOnlyList<DetectionTarget> targets, Dictionary<string, Tensor> losses)
    {
        int n = samples.Proposals.Length;
        var positives = new Tensor[n];
        var matched = new Tensor[n];
        var gtMasks = new Tensor[n];
        var gtLabels = new Tensor[n];
        for (int i = 0; i < n; i++)
        {
            if (targets[i].Masks is not { } m)
                throw new ArgumentException($"Mask R-CNN trains on instance masks, but target {i} has none (load the data with its segmentations)", nameof(targets));
            using var pos = Rows.Where(MaskSupervised(samples.Labels[i]));
            positives[i] = samples.Proposals[i].IndexSelect(0, pos);
            matched[i] = samples.MatchedIdxs[i].IndexSelect(0, pos);
            gtMasks[i] = m;
            gtLabels[i] = targets[i].Labels;
        }
        var logits = MaskLogits(features, positives, imageSizes);
        losses["loss_mask"] = MaskRcnnLoss(logits, positives, gtMasks, gtLabels, matched);
    }

    /// <summary>Which sampled proposals (labels [K], 0 = background) train the mask branch: the positives, of the mask classes only when those are set.</summary>
    private Tensor MaskSupervised(Tensor labels)
    {
        if (_maskClassTable == null) return labels.Gt(0);
        using var table = Tensor.From<long>(_maskClassTable, [_maskClassTable.Length]).To(labels.Device);
        using var inA = table.IndexSelect(0, labels.To(DType.Int64).Clamp(min: 0));
        return inA.Gt(0);
    }

    protected override List<DetectionResult> CompleteDetections(FeatureMaps features, (int H, int W)[] imageSizes, List<DetectionResult> detections)
    {
        var logits = MaskLogits(features, detections.Select(d => d.Boxes).ToArray(), imageSizes);
        var probs = MaskRcnnInference(logits, detections.Select(d => d.Labels).ToArray());
        return detections.Select((d, i) => new DetectionResult(d.Boxes, d.Scores, d.Labels, probs[i])).ToList();
    }

    /// <summary>
    /// torchvision's project_masks_on_boxes: each box's ground-truth mask (<paramref name="gtMasks"/> [G, H, W], any
    /// dtype, 0/1; row <paramref name="matchedIdxs"/>[k] for box k) cut out at the box and resized to M x M by
    /// RoIAlign (spatial scale 1, adaptive sampling, not aligned): soft targets [K, M, M] in the boxes' dtype.
    /// </summary>
    public static Tensor ProjectMasksOnBoxes(Tensor gtMasks, Tensor boxes, Tensor matchedIdxs, int m)
    {
        ArgumentNullException.ThrowIfNull(gtMasks);
        ArgumentNullException.ThrowIfNull(boxes);
        ArgumentNullException.ThrowIfNull(matchedIdxs);
        if (gtMasks.Rank != 3) throw new ArgumentException($"ground-truth masks must be [G, H, W], got {Shapes.Format(gtMasks.Shape)}", nameof(gtMasks));
        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        var idx = matchedIdxs.To(boxes.Device).To(boxes.DType).Unsqueeze(1);
        var rois = Tensor.Cat([idx, boxes], 1);
        var masks = gtMasks.To(boxes.Device).To(boxes.DType).Unsqueeze(1);
        var pooled = RoiOps.RoiAlign(masks, rois, (m, m), 1.0, samplingRatio: -1, aligned: false);
        return scope.MoveOut(pooled.Select(1, 0).Contiguous());
    }

    /// <summary>
    /// torchvision's maskrcnn_loss: binary cross-entropy with logits (mean over all pixels of all positives) of each
    /// positive's matched ground-truth class channel of <paramref name="maskLogits"/> [P, classes, M, M] (the one
    /// channel of class-agnostic logits [P, 1, M, M]) against <see cref="ProjectMasksOnBoxes"/> of its ground truth.
    /// Per image: the positives' boxes, the ground-truth masks and labels, and each positive's matched ground-truth
    /// index. No positives: 0 (still connected to the logits).
    /// </summary>
    public static Tensor MaskRcnnLoss(Tensor maskLogits, IReadOnlyList<Tensor> proposals, IReadOnlyList<Tensor> gtMasks, IReadOnlyList<Tensor> gtLabels, IReadOnlyList<Tensor> matchedIdxs)
    {
        ArgumentNullException.ThrowIfNull(maskLogits);
        if (maskLogits.Rank != 4 || maskLogits.Size(2) != maskLogits.Size(3))
            throw new ArgumentException($"mask logits must be [P, classes, M, M], got {Shapes.Format(maskLogits.Shape)}", nameof(maskLogits));
        if (proposals.Count != gtMasks.Count || proposals.Count != gtLabels.Count || proposals.Count != matchedIdxs.Count)
            throw new ArgumentException("one list of proposals, ground-truth masks, labels and matches per image", nameof(proposals));
        using var scope = new TensorScope();
        int m = maskLogits.Size(3), classes = maskLogits.Size(1);
        var labels = new Tensor[proposals.Count];
        var targets = new Tensor[proposals.Count];
        using (GradMode.NoGrad())
        {
            for (int i = 0; i < proposals.Count; i++)
            {
                var idx = matchedIdxs[i].To(maskLogits.Device);
                labels[i] = gtLabels[i].To(maskLogits.Device).To(DType.Int64).IndexSelect(0, idx);
                targets[i] = ProjectMasksOnBoxes(gtMasks[i], proposals[i].To(maskLogits.Device).To(maskLogits.DType), idx, m);
            }
        }
        int p = maskLogits.Size(0);
        if (p == 0) return scope.MoveOut(maskLogits.Sum() * 0.0);
        var label = Tensor.Cat(labels, 0);
        var target = Tensor.Cat(targets, 0);
        // Row k, channel label[k] (channel 0 when class-agnostic): flatten (row, class) into one index, as FastRcnnLoss does.
        var flatIdx = classes == 1 ? Tensor.Arange(p, DType.Int64, maskLogits.Device) : Tensor.Arange(p, DType.Int64, maskLogits.Device) * classes + label;
        var picked = maskLogits.Reshape(p * classes, m, m).IndexSelect(0, flatIdx);
        return scope.MoveOut(Losses.BinaryCrossEntropyWithLogits(picked, target));
    }

    /// <summary>
    /// torchvision's maskrcnn_inference: sigmoid of each detection's label channel of <paramref name="maskLogits"/>
    /// [sum Ki, classes, M, M] (of the one channel of class-agnostic logits [sum Ki, 1, M, M]), split per image as
    /// <paramref name="labels"/>: [Ki, 1, M, M] probabilities.
    /// </summary>
    public static Tensor[] MaskRcnnInference(Tensor maskLogits, IReadOnlyList<Tensor> labels)
    {
        ArgumentNullException.ThrowIfNull(maskLogits);
        ArgumentNullException.ThrowIfNull(labels);
        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        int k = maskLogits.Size(0), classes = maskLogits.Size(1), mh = maskLogits.Size(2), mw = maskLogits.Size(3);
        if (labels.Sum(l => l.Size(0)) != k)
            throw new ArgumentException($"{labels.Sum(l => l.Size(0))} labels for {k} mask logits", nameof(labels));
        var result = new Tensor[labels.Count];
        var label = labels.Count == 0 ? Tensor.Zeros([0], DType.Int64, maskLogits.Device) : Tensor.Cat(labels.Select(l => l.To(maskLogits.Device)).ToArray(), 0);
        var flatIdx = classes == 1 ? Tensor.Arange(k, DType.Int64, maskLogits.Device) : Tensor.Arange(k, DType.Int64, maskLogits.Device) * classes + label;
        var picked = maskLogits.Reshape(k * classes, mh, mw).IndexSelect(0, flatIdx).Sigmoid().Unsqueeze(1);
        long start = 0;
        for (int i = 0; i < labels.Count; i++)
        {
            int n = labels[i].Size(0);
            result[i] = scope.MoveOut(picked.Narrow(0, start, n).Contiguous());
            start += n;
        }
        return result;
    }
}

/// <summary>
/// torchvision's <c>MaskRCNN</c>: <see cref="FasterRcnn"/> whose RoI heads carry the mask branch
/// (<see cref="MaskRoiHeads"/>: MultiScaleRoIAlign 14x14 over levels "0".."3", <see cref="MaskRcnnHeads"/>,
/// <see cref="MaskRcnnPredictor"/>). Detections carry masks: [K, 1, H, W] probabilities in the image's pixels.
/// State-dict keys are torchvision's (<c>roi_heads.mask_head.0.0.weight</c>, <c>roi_heads.mask_predictor.conv5_mask.weight</c>, ...).
/// </summary>
public class MaskRcnn : FasterRcnn
{
    public MaskRcnn(MaskRcnnConfig config, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : base(config, dtype, device, generator)
    {
        Config = config;
    }

    public new MaskRcnnConfig Config { get; }

    /// <summary>The RoI heads with their mask branch.</summary>
    public MaskRoiHeads MaskRoiHeads => (MaskRoiHeads)RoiHeads;

    protected override RoiHeads CreateRoiHeads(MultiScaleRoIAlign boxPool, TwoMlpHead boxHead, FastRcnnPredictor boxPredictor, FasterRcnnConfig config,
        Generator samplingGenerator, DType dtype, Device? device, Generator? generator)
    {
        if (config is not MaskRcnnConfig c) throw new ArgumentException($"Mask R-CNN needs a {nameof(MaskRcnnConfig)}, got a {config.GetType().Name}", nameof(config));
        var maskPool = new MultiScaleRoIAlign(boxPool.FeatmapNames, c.MaskPoolSize, c.MaskPoolSampling);
        var maskHead = new MaskRcnnHeads(Backbone.OutChannels, c.MaskLayers, c.MaskDilation, dtype, device, generator);
        var maskPredictor = CreateMaskPredictor(c, maskHead.OutChannels, boxPredictor, dtype, device, generator);
        return new MaskRoiHeads(boxPool, boxHead, boxPredictor, maskPool, maskHead, maskPredictor, c.RoiHeads, samplingGenerator, c.MaskClasses);
    }

    /// <summary>
    /// The mask predictor: mask features [K, <paramref name="inChannels"/>, M, M] to logits [K, classes, 2M, 2M].
    /// torchvision's <see cref="MaskRcnnPredictor"/> here; a subclass may build one whose per-class weights come from
    /// <paramref name="boxPredictor"/> (Mask^X R-CNN's weight transfer).
    /// </summary>
    protected virtual UnaryModule CreateMaskPredictor(MaskRcnnConfig config, int inChannels, FastRcnnPredictor boxPredictor, DType dtype, Device? device, Generator? generator) =>
        new MaskRcnnPredictor(inChannels, config.MaskDimReduced, config.NumClasses, dtype, device, generator);
}
