using System.Text.Json.Serialization;
using Runtime.Models.Backbones;

namespace Runtime.Models.Detection;

/// <summary>
/// What every detector of the framework shares: the backbone, the class count (background included for the
/// R-CNN family, as torchvision), the input transform and the anchors. Serialised to the <c>config.json</c> of a
/// checkpoint, so a model can be rebuilt from its folder.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "family")]
[JsonDerivedType(typeof(FasterRcnnConfig), "fasterrcnn")]
[JsonDerivedType(typeof(MaskRcnnConfig), "maskrcnn")]
[JsonDerivedType(typeof(MaskXRcnnConfig), "maskx_rcnn")]
[JsonDerivedType(typeof(RetinaNetConfig), "retinanet")]
public abstract record DetectorConfig
{
    public BackboneConfig Backbone { get; init; } = new();

    /// <summary>Classes including the background (torchvision's num_classes; COCO: 91).</summary>
    public int NumClasses { get; init; } = 91;

    /// <summary>Shorter side after resizing (several: one picked at random per training image).</summary>
    public int[] MinSize { get; init; } = [800];

    public int MaxSize { get; init; } = 1333;

    public float[] ImageMean { get; init; } = [0.485f, 0.456f, 0.406f];

    public float[] ImageStd { get; init; } = [0.229f, 0.224f, 0.225f];

    /// <summary>Anchor sizes per pyramid level.</summary>
    public int[][] AnchorSizes { get; init; } = [[32], [64], [128], [256], [512]];

    /// <summary>Aspect ratios (height / width) per pyramid level.</summary>
    public double[][] AspectRatios { get; init; } = [[0.5, 1.0, 2.0], [0.5, 1.0, 2.0], [0.5, 1.0, 2.0], [0.5, 1.0, 2.0], [0.5, 1.0, 2.0]];

    internal virtual void Validate()
    {
        Backbone.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(NumClasses, 2, nameof(NumClasses));
        if (AnchorSizes.Length != AspectRatios.Length)
            throw new ArgumentException($"{AnchorSizes.Length} anchor size levels but {AspectRatios.Length} aspect ratio levels", nameof(AnchorSizes));
        if (MinSize.Length == 0 || MinSize.Any(s => s <= 0) || MaxSize <= 0)
            throw new ArgumentException($"image sizes must be positive, got min [{string.Join(", ", MinSize)}], max {MaxSize}", nameof(MinSize));
    }

    /// <summary>The pyramid levels the backbone gives (one anchor level each).</summary>
    internal int PyramidLevels => Backbone.ReturnedLayers.Length + Backbone.ExtraBlocks switch { "pool" => 1, "none" => 0, _ => 2 };
}

/// <summary>Faster R-CNN (torchvision's <c>FasterRCNN</c>): the RPN, the box branch and its MLP head width.</summary>
public record FasterRcnnConfig : DetectorConfig
{
    public RpnConfig Rpn { get; init; } = new();
    public RoiHeadsConfig RoiHeads { get; init; } = new();

    /// <summary>Width of the TwoMLPHead (torchvision: 1024).</summary>
    public int RepresentationSize { get; init; } = 1024;

    /// <summary>Output size of the box RoIAlign (7) and its sampling ratio (2).</summary>
    public int BoxPoolSize { get; init; } = 7;

    public int BoxPoolSampling { get; init; } = 2;

    /// <summary>
    /// The box branch's pooling: "roi_align" (torchvision's MultiScaleRoIAlign), "mdpool" (modulated deformable RoI
    /// pooling, DCNv2: <c>MultiScaleDeformRoIPool</c>, offset and modulation branches <c>box_roi_pool.offset_fc</c> /
    /// <c>box_roi_pool.mask_fc</c>) or "dpool" (deformable RoI pooling without modulation, DCNv1).
    /// </summary>
    public string BoxPool { get; init; } = "roi_align";

    /// <summary>Width of the deformable pooling's fc layers (mmcv: 1024).</summary>
    public int DeformPoolFcChannels { get; init; } = 1024;

    /// <summary>The deformable pooling's offset scale gamma (0.1).</summary>
    public double DeformPoolGamma { get; init; } = 0.1;

    /// <summary>R-CNN feature mimicking in training (DCNv2 section 4, figure 3; <c>FeatureMimicking</c>); null: none. Inference never uses it.</summary>
    public FeatureMimickingConfig? Mimicking { get; init; }

    internal override void Validate()
    {
        base.Validate();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(RepresentationSize, nameof(RepresentationSize));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BoxPoolSize, nameof(BoxPoolSize));
        if (BoxPool is not ("roi_align" or "mdpool" or "dpool"))
            throw new ArgumentException($"the box pooling must be roi_align, mdpool or dpool, got '{BoxPool}'", nameof(BoxPool));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(DeformPoolFcChannels, nameof(DeformPoolFcChannels));
        if (!double.IsFinite(DeformPoolGamma)) throw new ArgumentOutOfRangeException(nameof(DeformPoolGamma), DeformPoolGamma, "gamma must be finite");
        Mimicking?.Validate();
    }
}

/// <summary>
/// Mask R-CNN (torchvision's <c>MaskRCNN</c>): Faster R-CNN plus the mask branch of the RoI heads, a
/// MultiScaleRoIAlign (14x14, sampling 2) over the pyramid levels, <see cref="MaskRcnnHeads"/> (3x3 convolutions +
/// ReLU, torchvision: four of 256) and <see cref="MaskRcnnPredictor"/> (2x2 transposed convolution to
/// <see cref="MaskDimReduced"/> channels + ReLU, then 1x1 to the per-class mask logits, 2 x pool size square: 28x28).
/// <see cref="MaskClasses"/> restricts the mask loss to some classes (partial supervision, as Mask^X R-CNN trains).
/// </summary>
public record MaskRcnnConfig : FasterRcnnConfig
{
    /// <summary>Output size of the mask RoIAlign (14) and its sampling ratio (2).</summary>
    public int MaskPoolSize { get; init; } = 14;

    public int MaskPoolSampling { get; init; } = 2;

    /// <summary>Output channels of each 3x3 convolution of the mask head (torchvision: 256, 256, 256, 256).</summary>
    public int[] MaskLayers { get; init; } = [256, 256, 256, 256];

    /// <summary>Dilation (and padding) of the mask head's convolutions (1).</summary>
    public int MaskDilation { get; init; } = 1;

    /// <summary>Channels of the predictor's transposed convolution (torchvision: 256).</summary>
    public int MaskDimReduced { get; init; } = 256;

    /// <summary>
    /// Partial supervision: the labels (1 .. classes - 1) whose ground-truth masks train the mask branch (set A; Hu et
    /// al.'s "classes with masks"). The mask loss is computed on the positive proposals matched to a ground truth of
    /// these classes only; the other classes (set B) train the box branch alone, and every class gets masks at test
    /// time. Null: every class (plain Mask R-CNN). Empty: no class (the mask loss is 0).
    /// </summary>
    public int[]? MaskClasses { get; init; }

    internal override void Validate()
    {
        base.Validate();
        if (MaskClasses is { } a && (a.Any(l => l < 1 || l >= NumClasses) || a.Distinct().Count() != a.Length))
            throw new ArgumentException($"mask classes must be distinct labels in 1..{NumClasses - 1}, got [{string.Join(", ", a)}]", nameof(MaskClasses));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaskPoolSize, nameof(MaskPoolSize));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaskDilation, nameof(MaskDilation));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaskDimReduced, nameof(MaskDimReduced));
        if (MaskLayers.Length == 0 || MaskLayers.Any(c => c <= 0))
            throw new ArgumentException($"the mask head needs at least one layer of positive width, got [{string.Join(", ", MaskLayers)}]", nameof(MaskLayers));
    }
}

/// <summary>
/// Mask^X R-CNN (Hu et al. 2018, "Learning to Segment Every Thing"): Mask R-CNN whose mask predictor is a
/// <see cref="MaskXPredictor"/> of the kind <see cref="MaskHead"/> names. With the weight transfer the per-class 1x1
/// mask kernels are not parameters but <c>T(w_det[c])</c> of the box predictor's class weights
/// (<see cref="WeightTransfer"/>), so classes trained on boxes only (those outside
/// <see cref="MaskRcnnConfig.MaskClasses"/>) get masks of their own too.
/// </summary>
public sealed record MaskXRcnnConfig : MaskRcnnConfig
{
    /// <summary>The mask predictor kinds: "agnostic", "agnostic_mlp", "transfer", "transfer_mlp".</summary>
    public static IReadOnlyList<string> MaskHeads { get; } = ["agnostic", "agnostic_mlp", "transfer", "transfer_mlp"];

    /// <summary>The inputs of the weight transfer: "cls", "box", "cls_box".</summary>
    public static IReadOnlyList<string> TransferInputs { get; } = ["cls", "box", "cls_box"];

    /// <summary>
    /// The mask predictor (<see cref="MaskXPredictor"/>): "agnostic" (one mask for every class, the paper's baseline),
    /// "transfer" (per-class FCN kernels from the weight transfer), and either with "_mlp" (plus a class-agnostic MLP
    /// branch whose 28x28 logits are added to every class's). Default "transfer_mlp", the paper's Mask^X R-CNN.
    /// </summary>
    public string MaskHead { get; init; } = "transfer_mlp";

    /// <summary>What the weight transfer reads of the box predictor: "cls" (cls_score's row c), "box" (bbox_pred's rows 4c..4c+3) or "cls_box" (both, concatenated; the paper's best).</summary>
    public string TransferInput { get; init; } = "cls_box";

    /// <summary>Stop the mask loss's gradient at the detection weights (the paper's default): the box predictor trains on the box losses only.</summary>
    public bool TransferStopGradient { get; init; } = true;

    /// <summary>Hidden widths of the MLP branch's fully connected layers (each + ReLU) before its last one to the M x M logits; empty: one layer.</summary>
    public int[] MaskMlpLayers { get; init; } = [];

    [JsonIgnore]
    public bool UsesTransfer => MaskHead.StartsWith("transfer", StringComparison.Ordinal);

    [JsonIgnore]
    public bool UsesMlp => MaskHead.EndsWith("_mlp", StringComparison.Ordinal);

    internal override void Validate()
    {
        base.Validate();
        if (!MaskHeads.Contains(MaskHead))
            throw new ArgumentException($"the Mask^X mask head must be {string.Join(", ", MaskHeads)}, got '{MaskHead}'", nameof(MaskHead));
        if (!TransferInputs.Contains(TransferInput))
            throw new ArgumentException($"the weight transfer's input must be {string.Join(", ", TransferInputs)}, got '{TransferInput}'", nameof(TransferInput));
        if (MaskMlpLayers.Any(w => w <= 0))
            throw new ArgumentException($"the MLP branch's widths must be positive, got [{string.Join(", ", MaskMlpLayers)}]", nameof(MaskMlpLayers));
    }
}

/// <summary>RetinaNet (torchvision's <c>RetinaNet</c>): the dense head and its post-processing.</summary>
public sealed record RetinaNetConfig : DetectorConfig
{
    public RetinaNetConfig()
    {
        Backbone = new BackboneConfig { ReturnedLayers = [2, 3, 4], ExtraBlocks = "p6p7" };
        AnchorSizes = [.. new[] { 32, 64, 128, 256, 512 }.Select(x => new[] { x, (int)(x * Math.Pow(2, 1.0 / 3)), (int)(x * Math.Pow(2, 2.0 / 3)) })];
    }

    /// <summary>GroupNorm groups after each head convolution (torchvision's v2: 32); 0 for none (v1).</summary>
    public int HeadNormGroups { get; init; }

    /// <summary>Box loss: "l1" (v1), "giou" (v2) or "smooth_l1".</summary>
    public string BoxLoss { get; init; } = "l1";

    public double ScoreThresh { get; init; } = 0.05;
    public double NmsThresh { get; init; } = 0.5;
    public int DetectionsPerImage { get; init; } = 300;
    public int TopkCandidates { get; init; } = 1000;
    public double FgIouThresh { get; init; } = 0.5;
    public double BgIouThresh { get; init; } = 0.4;

    internal override void Validate()
    {
        base.Validate();
        if (BoxLoss is not ("l1" or "giou" or "smooth_l1"))
            throw new ArgumentException($"RetinaNet box loss must be l1, giou or smooth_l1, got '{BoxLoss}'", nameof(BoxLoss));
    }
}
