using Runtime.Models.Backbones;
using Runtime.Nn.Losses;
using Runtime.Vision.Data;
using Runtime.Vision.Ops;

namespace Runtime.Models.Detection;

/// <summary>The settings of R-CNN feature mimicking (DCNv2 section 4, figure 3; <see cref="FeatureMimicking"/>).</summary>
public sealed record FeatureMimickingConfig
{
    /// <summary>Weight of the mimic loss (the paper's 0.1).</summary>
    public double Weight { get; init; } = 0.1;

    /// <summary>Weight of the R-CNN branch's own classification loss (1).</summary>
    public double ClassificationWeight { get; init; } = 1.0;

    /// <summary>Side of the square the positive RoIs are cropped and resized to (the paper's 224).</summary>
    public int CropSize { get; init; } = 224;

    /// <summary>Positive RoIs per image sent through the R-CNN branch (the paper's 32; fewer when there are fewer).</summary>
    public int RoisPerImage { get; init; } = 32;

    /// <summary>
    /// Whether the R-CNN branch's features are the mimic loss's fixed target (the default: the loss pulls the
    /// detector's RoI features towards them, the R-CNN branch learns from its classification loss), or both sides move.
    /// </summary>
    public bool DetachTeacher { get; init; } = true;

    internal void Validate()
    {
        if (!(Weight >= 0) || double.IsInfinity(Weight)) throw new ArgumentOutOfRangeException(nameof(Weight), Weight, "the mimic loss weight must be non-negative and finite");
        if (!(ClassificationWeight >= 0) || double.IsInfinity(ClassificationWeight))
            throw new ArgumentOutOfRangeException(nameof(ClassificationWeight), ClassificationWeight, "the R-CNN classification weight must be non-negative and finite");
        ArgumentOutOfRangeException.ThrowIfLessThan(CropSize, 8, nameof(CropSize));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(RoisPerImage, nameof(RoisPerImage));
    }
}

/// <summary>
/// R-CNN feature mimicking (DCNv2, Zhu et al. 2018, section 4 and figure 3), training only. Up to
/// <see cref="FeatureMimickingConfig.RoisPerImage"/> positive sampled RoIs per image (picked at random with the
/// model's sampling stream) are cropped from the normalised input batch and resized to CropSize x CropSize (RoIAlign on
/// the image: aligned, adaptive sampling, no gradient), and the crops go through the R-CNN branch, which shares the
/// detector's backbone, its box pooling (over the whole crop) and its 2fc box head, and has its own classification
/// layer <c>cls_score</c>. Losses: <c>loss_mimic</c> = Weight * mean over the RoIs of
/// <c>1 - cos(f_RCNN, f_FRCNN)</c> on the 2fc features, and <c>loss_rcnn_cls</c> = ClassificationWeight *
/// cross-entropy of the branch's logits against the RoIs' classes. Inference uses the detector alone.
/// </summary>
public sealed class FeatureMimicking : Module
{
    public FeatureMimicking(FeatureMimickingConfig config, int representationSize, int numClasses, DType dtype = DType.Float32, Device? device = null,
        Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        ClsScore = RegisterModule("cls_score", new Linear(representationSize, numClasses, dtype: dtype, device: device, generator: generator));
    }

    public FeatureMimickingConfig Config { get; }

    /// <summary>The R-CNN branch's classification layer (its only layer of its own).</summary>
    public Linear ClsScore { get; }

    /// <summary>
    /// <c>weight * mean_b (1 - cos(detector[b], rcnn[b]))</c> over the rows of two [B, D] feature matrices (eps 1e-8 on
    /// the norms' product, as torch's cosine_similarity); 0 for no rows (still connected to the graph). With
    /// <paramref name="detachTeacher"/> no gradient reaches <paramref name="rcnn"/>.
    /// </summary>
    public static Tensor MimicLoss(Tensor detector, Tensor rcnn, double weight, bool detachTeacher = true)
    {
        ArgumentNullException.ThrowIfNull(detector);
        ArgumentNullException.ThrowIfNull(rcnn);
        if (detector.Rank != 2 || !detector.Shape.SequenceEqual(rcnn.Shape))
            throw new ArgumentException($"mimic loss: features must be two [B, D] matrices of one shape, got {Shapes.Format(detector.Shape)} and {Shapes.Format(rcnn.Shape)}", nameof(rcnn));
        using var scope = new TensorScope();
        if (detector.Shape[0] == 0) return scope.MoveOut(detector.Sum() * 0.0);
        var teacher = detachTeacher ? rcnn.Detach() : rcnn;
        var dot = (detector * teacher).Sum(1);
        var norms = (detector * detector).Sum(1).Sqrt() * (teacher * teacher).Sum(1).Sqrt();
        var cos = dot / norms.Clamp(min: 1e-8);
        return scope.MoveOut((1.0 - cos).Mean() * weight);
    }

    /// <summary>
    /// The two loss terms for a training batch: <paramref name="images"/> the padded, normalised batch (resized frame),
    /// <paramref name="samples"/> the RoI heads' sampled proposals and <paramref name="boxFeatures"/> their 2fc features
    /// (rows in sample order, images concatenated).
    /// </summary>
    public Dictionary<string, Tensor> Losses(ImageBatch images, RoiTrainingSamples samples, Tensor boxFeatures, BackboneWithFpn backbone,
        MultiScaleRoIAlign boxRoiPool, UnaryModule boxHead, Generator random)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(boxFeatures);
        using var scope = new TensorScope();
        var rows = new List<long>();
        var rois = new List<float>();
        var labels = new List<long>();
        long start = 0;
        for (int i = 0; i < samples.Labels.Length; i++)
        {
            var l = samples.Labels[i].ToArray<long>();
            var positives = Enumerable.Range(0, l.Length).Where(j => l[j] > 0).ToList();
            var picked = Pick(positives, Config.RoisPerImage, random);
            if (picked.Count > 0)
            {
                var boxes = samples.Proposals[i].ToDoubleArray();
                foreach (int j in picked)
                {
                    rows.Add(start + j);
                    labels.Add(l[j]);
                    rois.AddRange([i, (float)boxes[4 * j], (float)boxes[4 * j + 1], (float)boxes[4 * j + 2], (float)boxes[4 * j + 3]]);
                }
            }
            start += l.Length;
        }
        var device = boxFeatures.Device;
        var losses = new Dictionary<string, Tensor>();
        if (rows.Count == 0)
        {
            var zero = boxFeatures.Sum() * 0.0;
            losses["loss_mimic"] = scope.MoveOut(zero);
            losses["loss_rcnn_cls"] = scope.MoveOut(zero * 1.0);
            return losses;
        }
        int b = rows.Count, s = Config.CropSize;
        Tensor crops;
        using (GradMode.NoGrad())
        {
            var r = Tensor.From<float>([.. rois], [b, 5]).To(images.Tensors.DType).To(images.Tensors.Device);
            crops = RoiOps.RoiAlign(images.Tensors, r, (s, s), 1.0, 0, aligned: true);
        }
        // The crops go through the shared backbone with its BatchNorm layers on their running statistics (a trainable-norm
        // backbone, as the compact models'): the statistics of small resized object crops would otherwise be mixed
        // into those the detector is evaluated with. Frozen norms (torchvision's pretrained layout) are unaffected.
        var norms = backbone.NamedModules().Select(m => m.Module).Where(m => m is BatchNorm2d && m.IsTraining).ToList();
        foreach (var m in norms) m.Eval();
        FeatureMaps mapsOwned;
        try
        {
            mapsOwned = backbone.Forward(crops);
        }
        finally
        {
            foreach (var m in norms) m.Train();
        }
        using var maps = mapsOwned;
        var whole = Enumerable.Range(0, b).Select(_ => Tensor.From<float>([0, 0, s, s], [1, 4]).To(crops.DType).To(crops.Device)).ToArray();
        var pooled = boxRoiPool.Forward(maps, whole, Enumerable.Repeat((s, s), b).ToArray());
        var rcnn = boxHead.Forward(pooled);
        var logits = ClsScore.Forward(rcnn);
        var target = Tensor.From<long>([.. labels], [b]).To(device);
        var detector = boxFeatures.IndexSelect(0, Tensor.From<long>([.. rows], [b]).To(device));
        losses["loss_mimic"] = scope.MoveOut(MimicLoss(detector, rcnn, Config.Weight, Config.DetachTeacher));
        losses["loss_rcnn_cls"] = scope.MoveOut(Runtime.Nn.Losses.Losses.CrossEntropy(logits, target) * Config.ClassificationWeight);
        return losses;
    }

    /// <summary>At most <paramref name="count"/> of <paramref name="items"/>, chosen uniformly without replacement (a partial Fisher-Yates shuffle), in their original order.</summary>
    private static List<int> Pick(List<int> items, int count, Generator random)
    {
        if (items.Count <= count) return items;
        var a = items.ToArray();
        for (int i = 0; i < count; i++)
        {
            int j = (int)random.NextInt64(i, a.Length);
            (a[i], a[j]) = (a[j], a[i]);
        }
        return a.Take(count).Order().ToList();
    }
}
