namespace Runtime.Models.Panoptic;

/// <summary>
/// A MaX-DeepLab network, its losses and its inference thresholds (serialised to a checkpoint's <c>config.json</c>,
/// so the model is rebuilt from its folder). The defaults are MaX-DeepLab-S (Wang et al. 2021, DeepLab2's
/// <c>max_deeplab_s</c> with the stacked decoder L = 0): a ResNet-50 whose stride-16 stage turns axial after its
/// first block and whose last stage (dilated, output stride 16) is made of dual-path blocks, 128 mask slots,
/// 128-dimensional pixel features, 641 x 641 inputs.
/// </summary>
public sealed record MaxDeepLabConfig
{
    /// <summary>Thing and stuff classes (the class head adds one more: void, "no object").</summary>
    public int NumClasses { get; init; } = 133;

    /// <summary>Which of the <see cref="NumClasses"/> class indices are things (the others are stuff).</summary>
    public int[] ThingClasses { get; init; } = [.. Enumerable.Range(0, 80)];

    /// <summary>Side of the square network input (images are resized so the longer side fits, then padded).</summary>
    public int InputSize { get; init; } = 641;

    public float[] ImageMean { get; init; } = [0.485f, 0.456f, 0.406f];

    public float[] ImageStd { get; init; } = [0.229f, 0.224f, 0.225f];

    /// <summary>
    /// The backbone's output stride: 16 (MaX-DeepLab-S; the stride-16 stage is strided, the last one dilated), or 8 (the
    /// stride-16 stage is dilated too, so the axial and dual-path blocks and the semantic head work at stride 8).
    /// </summary>
    public int OutputStride { get; init; } = 16;

    /// <summary>Blocks of the four ResNet stages (ResNet-50: 3, 4, 6, 3).</summary>
    public int[] Layers { get; init; } = [3, 4, 6, 3];

    /// <summary>Planes of the four stages (outputs are 4x these; ResNet-50: 64, 128, 256, 512). The stem has the first width.</summary>
    public int[] Widths { get; init; } = [64, 128, 256, 512];

    /// <summary>Heads of the axial attention (stride-16 stage and the pixel path of the dual-path blocks).</summary>
    public int AxialHeads { get; init; } = 8;

    /// <summary>Dual-path blocks after the backbone, at stride 16 (DeepLab2's extra stage-5 block; MaX-DeepLab-S: 1).</summary>
    public int ExtraBlocks { get; init; } = 1;

    /// <summary>N, the memory slots (= predicted masks).</summary>
    public int NumSlots { get; init; } = 128;

    public int MemoryChannels { get; init; } = 256;

    /// <summary>The transformer layer's base width: bottleneck 2x, keys 1x, values 2x of it.</summary>
    public int TransformerFilters { get; init; } = 128;

    public int TransformerHeads { get; init; } = 8;

    /// <summary>Hidden width of the memory feed-forward network.</summary>
    public int FfnChannels { get; init; } = 2048;

    /// <summary>Width of the class and mask feature layers on the memory (DeepLab2's global FFN channels).</summary>
    public int GlobalChannels { get; init; } = 256;

    /// <summary>D: the pixel feature width the mask logits are dot products in.</summary>
    public int FeatureDim { get; init; } = 128;

    /// <summary>Width of the pixel-feature head and the semantic head (a 5x5 depthwise-separable convolution).</summary>
    public int HeadChannels { get; init; } = 256;

    /// <summary>
    /// Whether the semantic head reads DeepLab2's auxiliary semantic decoder (ASPP on the backbone, fused with the
    /// stride-8 and stride-4 features; semantic logits and loss at stride 4), as MaX-DeepLab-S with L = 0 has it, or sits
    /// directly on the backbone's output (logits at the output stride).
    /// </summary>
    public bool SemanticDecoder { get; init; } = true;

    /// <summary>Output width of the auxiliary semantic decoder's ASPP (DeepLab2's decoder aspp_channels).</summary>
    public int AsppChannels { get; init; } = 256;

    /// <summary>The ASPP's three atrous rates at the backbone's stride (DeepLab2: 6, 12, 18 for 641 px at stride 16).</summary>
    public int[] AtrousRates { get; init; } = [6, 12, 18];

    /// <summary>Width of the auxiliary semantic decoder's stride-8 and stride-4 fusion convolutions (DeepLab2's decoder_channels).</summary>
    public int SemanticDecoderChannels { get; init; } = 256;

    /// <summary>What the semantic decoder projects the stride-8 (layer2) and stride-4 (layer1) features to before fusing them.</summary>
    public int[] SemanticLowLevelChannels { get; init; } = [64, 32];

    /// <summary>The class head's initial bias makes "void" this probable.</summary>
    public double VoidPriorProbability { get; init; } = 0.9;

    public MaxDeepLabLossOptions Loss { get; init; } = new();

    public MaxDeepLabInferenceOptions Inference { get; init; } = new();

    /// <summary>The backbone's output side for a <see cref="InputSize"/> input (the axial attention's span).</summary>
    public int BackboneSize => FeatureSize(InputSize, OutputStride);

    /// <summary>The stride of the semantic logits: 4 with the auxiliary semantic decoder, else the output stride.</summary>
    public int SemanticStride => SemanticDecoder ? 4 : OutputStride;

    /// <summary>The side of the stride-4 (masks) or output-stride (semantic) outputs for an input side.</summary>
    public static int FeatureSize(int inputSide, int stride)
    {
        int s = inputSide;
        for (int i = 1; i < stride; i *= 2) s = (s - 1) / 2 + 1; // stem conv, max pool, layer2, layer3 (k = 7 or 3, stride 2, "same" padding)
        return s;
    }

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(NumClasses, nameof(NumClasses));
        if (ThingClasses.Any(c => c < 0 || c >= NumClasses) || ThingClasses.Distinct().Count() != ThingClasses.Length)
            throw new ArgumentException($"ThingClasses must be distinct class indices below {NumClasses}", nameof(ThingClasses));
        ArgumentOutOfRangeException.ThrowIfLessThan(InputSize, 17, nameof(InputSize));
        if (OutputStride is not (8 or 16)) throw new ArgumentOutOfRangeException(nameof(OutputStride), OutputStride, "the output stride must be 8 or 16");
        if (Layers.Length != 4 || Layers.Any(n => n <= 0) || Layers[2] < 1 || Layers[3] < 1)
            throw new ArgumentException($"Layers must give four positive block counts, got [{string.Join(", ", Layers)}]", nameof(Layers));
        if (Widths.Length != 4 || Widths.Any(w => w <= 0))
            throw new ArgumentException($"Widths must give four positive stage widths, got [{string.Join(", ", Widths)}]", nameof(Widths));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(AxialHeads, nameof(AxialHeads));
        if (Widths[2] % AxialHeads != 0 || Widths[3] % AxialHeads != 0)
            throw new ArgumentException($"the axial attention needs the widths of stages 3 and 4 ({Widths[2]}, {Widths[3]}) divisible by its {AxialHeads} heads", nameof(AxialHeads));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(TransformerHeads, nameof(TransformerHeads));
        if (TransformerFilters % TransformerHeads != 0)
            throw new ArgumentException($"TransformerFilters ({TransformerFilters}) must be divisible by TransformerHeads ({TransformerHeads})", nameof(TransformerHeads));
        ArgumentOutOfRangeException.ThrowIfNegative(FfnChannels, nameof(FfnChannels));
        ArgumentOutOfRangeException.ThrowIfNegative(ExtraBlocks, nameof(ExtraBlocks));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(NumSlots, nameof(NumSlots));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MemoryChannels, nameof(MemoryChannels));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(TransformerFilters, nameof(TransformerFilters));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(GlobalChannels, nameof(GlobalChannels));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(FeatureDim, nameof(FeatureDim));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(HeadChannels, nameof(HeadChannels));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(AsppChannels, nameof(AsppChannels));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(SemanticDecoderChannels, nameof(SemanticDecoderChannels));
        if (AtrousRates is not { Length: 3 } || AtrousRates.Any(r => r <= 0))
            throw new ArgumentException($"AtrousRates must give three positive rates, got [{string.Join(", ", AtrousRates ?? [])}]", nameof(AtrousRates));
        if (SemanticLowLevelChannels is not { Length: 2 } || SemanticLowLevelChannels.Any(c => c <= 0))
            throw new ArgumentException($"SemanticLowLevelChannels must give two positive widths (stride 8, stride 4), got [{string.Join(", ", SemanticLowLevelChannels ?? [])}]", nameof(SemanticLowLevelChannels));
        if (ImageMean.Length != 3 || ImageStd.Length != 3 || ImageStd.Any(s => !(s > 0)))
            throw new ArgumentException("ImageMean and ImageStd need three values (std positive)", nameof(ImageStd));
        if (!(VoidPriorProbability > 0 && VoidPriorProbability < 1))
            throw new ArgumentOutOfRangeException(nameof(VoidPriorProbability), VoidPriorProbability, "must lie in (0, 1)");
        Loss.Validate();
        Inference.Validate();
    }
}

/// <summary>
/// The MaX-DeepLab losses (paper / SPEC): the PQ-style loss (weight 3.0, alpha 0.75) with its class and mask terms,
/// the mask-ID cross-entropy (0.3), instance discrimination (1.0, temperature 0.3) and the semantic head's
/// cross-entropy (1.0).
/// </summary>
public sealed record MaxDeepLabLossOptions
{
    public double PqWeight { get; init; } = 3.0;
    public double Alpha { get; init; } = 0.75;
    public double MaskIdWeight { get; init; } = 0.3;
    public double InstanceDiscriminationWeight { get; init; } = 1.0;
    public double Temperature { get; init; } = 0.3;
    public double SemanticWeight { get; init; } = 1.0;

    public void Validate()
    {
        foreach (var (v, name) in new[] { (PqWeight, nameof(PqWeight)), (MaskIdWeight, nameof(MaskIdWeight)), (InstanceDiscriminationWeight, nameof(InstanceDiscriminationWeight)), (SemanticWeight, nameof(SemanticWeight)) })
            if (!(v >= 0) || double.IsInfinity(v)) throw new ArgumentOutOfRangeException(name, v, "a loss weight must be finite and non-negative");
        if (!(Alpha >= 0 && Alpha <= 1)) throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, "must lie in [0, 1]");
        if (!(Temperature > 0)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "must be positive");
    }
}

/// <summary>
/// Inference: slots whose class confidence (the highest non-void class probability) exceeds
/// <see cref="ClassThreshold"/> are kept; each pixel takes its argmax slot, and becomes void when that slot is not
/// kept or its probability (softmax over the kept slots) is below <see cref="PixelThreshold"/>. Segments smaller than
/// the area limits (pixels of the output image; 0: none) become void, as DeepLab2's evaluator does.
/// </summary>
public sealed record MaxDeepLabInferenceOptions
{
    public double ClassThreshold { get; init; } = 0.7;
    public double PixelThreshold { get; init; } = 0.4;
    public int ThingAreaLimit { get; init; }
    public int StuffAreaLimit { get; init; }

    public void Validate()
    {
        if (!(ClassThreshold >= 0 && ClassThreshold <= 1)) throw new ArgumentOutOfRangeException(nameof(ClassThreshold), ClassThreshold, "must lie in [0, 1]");
        if (!(PixelThreshold >= 0 && PixelThreshold <= 1)) throw new ArgumentOutOfRangeException(nameof(PixelThreshold), PixelThreshold, "must lie in [0, 1]");
        ArgumentOutOfRangeException.ThrowIfNegative(ThingAreaLimit, nameof(ThingAreaLimit));
        ArgumentOutOfRangeException.ThrowIfNegative(StuffAreaLimit, nameof(StuffAreaLimit));
    }
}
