using System.Globalization;
using Runtime.Autograd;
using Runtime.Nn;

namespace Runtime.Vision.Ops;

/// <summary>torchvision.ops.RoIAlign as a module: <see cref="RoiOps.RoiAlign(Tensor, Tensor, ValueTuple{int, int}, double, int, bool)"/> with fixed settings.</summary>
public sealed class RoIAlign : Module
{
    public RoIAlign((int H, int W) outputSize, double spatialScale, int samplingRatio, bool aligned = false)
    {
        if (outputSize.H < 1 || outputSize.W < 1)
            throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, $"RoIAlign: output size must be positive, got ({outputSize.H}, {outputSize.W})");
        OutputSize = outputSize;
        SpatialScale = spatialScale;
        SamplingRatio = samplingRatio;
        Aligned = aligned;
    }

    public (int H, int W) OutputSize { get; }
    public double SpatialScale { get; }
    public int SamplingRatio { get; }
    public bool Aligned { get; }

    /// <summary>Pools [N, C, H, W] features over [K, 5] rois into [K, C, OutputSize.H, OutputSize.W].</summary>
    public Tensor Forward(Tensor input, Tensor rois) => RoiOps.RoiAlign(input, rois, OutputSize, SpatialScale, SamplingRatio, Aligned);

    /// <summary>Pools over per-image [Ki, 4] boxes.</summary>
    public Tensor Forward(Tensor input, IReadOnlyList<Tensor> boxes) => RoiOps.RoiAlign(input, boxes, OutputSize, SpatialScale, SamplingRatio, Aligned);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"RoIAlign(output_size={OutputSize}, spatial_scale={SpatialScale}, sampling_ratio={SamplingRatio}, aligned={Aligned})");
}

/// <summary>torchvision.ops.RoIPool as a module: <see cref="RoiOps.RoiPool(Tensor, Tensor, ValueTuple{int, int}, double)"/> with fixed settings.</summary>
public sealed class RoIPool : Module
{
    public RoIPool((int H, int W) outputSize, double spatialScale)
    {
        if (outputSize.H < 1 || outputSize.W < 1)
            throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, $"RoIPool: output size must be positive, got ({outputSize.H}, {outputSize.W})");
        OutputSize = outputSize;
        SpatialScale = spatialScale;
    }

    public (int H, int W) OutputSize { get; }
    public double SpatialScale { get; }

    public Tensor Forward(Tensor input, Tensor rois) => RoiOps.RoiPool(input, rois, OutputSize, SpatialScale);

    public Tensor Forward(Tensor input, IReadOnlyList<Tensor> boxes) => RoiOps.RoiPool(input, boxes, OutputSize, SpatialScale);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"RoIPool(output_size={OutputSize}, spatial_scale={SpatialScale})");
}

/// <summary>
/// The FPN paper's assignment of boxes to pyramid levels (torchvision's LevelMapper):
/// k = floor(canonicalLevel + log2(sqrt(area) / canonicalScale) + eps), clamped to [KMin, KMax];
/// <see cref="Map"/> returns k - KMin per box.
/// </summary>
public sealed class LevelMapper
{
    public LevelMapper(int kMin, int kMax, int canonicalScale = 224, int canonicalLevel = 4, double eps = 1e-6)
    {
        if (kMax < kMin) throw new ArgumentOutOfRangeException(nameof(kMax), kMax, $"LevelMapper: kMax must be at least kMin = {kMin}");
        KMin = kMin;
        KMax = kMax;
        CanonicalScale = canonicalScale;
        CanonicalLevel = canonicalLevel;
        Eps = eps;
    }

    public int KMin { get; }
    public int KMax { get; }
    public int CanonicalScale { get; }
    public int CanonicalLevel { get; }
    public double Eps { get; }

    /// <summary>The level index (0 = KMin) of each box of each image, in order; computed in the boxes' dtype as torchvision does.</summary>
    public int[] Map(IReadOnlyList<Tensor> boxes)
    {
        var levels = new List<int>();
        foreach (var b in boxes)
        {
            if (b.Rank != 2 || b.Shape[1] != 4)
                throw new ArgumentException($"LevelMapper: boxes must be [K, 4], got shape {Shapes.Format(b.Shape)}", nameof(boxes));
            if (b.DType == DType.Float32)
            {
                var v = b.ToArray<float>();
                for (int i = 0; i < v.Length; i += 4)
                {
                    float s = MathF.Sqrt((v[i + 2] - v[i]) * (v[i + 3] - v[i + 1]));
                    float k = MathF.Floor(CanonicalLevel + MathF.Log2(s / CanonicalScale) + (float)Eps);
                    levels.Add(Level(k));
                }
            }
            else
            {
                using var d = b.To(DType.Float64);
                var v = d.ToArray<double>();
                for (int i = 0; i < v.Length; i += 4)
                {
                    double s = Math.Sqrt((v[i + 2] - v[i]) * (v[i + 3] - v[i + 1]));
                    levels.Add(Level(Math.Floor(CanonicalLevel + Math.Log2(s / CanonicalScale) + Eps)));
                }
            }
        }
        return levels.ToArray();
    }

    // torch.clamp then .to(int64); a NaN level (degenerate box) clamps as torch's clamp does not, so it goes to KMin.
    private int Level(double k) => (int)(double.IsNaN(k) ? KMin : Math.Clamp(k, KMin, KMax)) - KMin;
}

/// <summary>
/// torchvision.ops.MultiScaleRoIAlign: RoIAlign over the feature maps named <see cref="FeatmapNames"/>
/// (an FPN's levels, finest first), each box pooled from the level the <see cref="LevelMapper"/> picks.
/// The scale of each map is inferred on the first call as 2^round(log2(map height / image height))
/// (the largest image size of the batch) and kept, as torchvision does. A subclass may pool each level
/// differently (<see cref="PoolLevel"/>; <see cref="MultiScaleDeformRoIPool"/>).
/// </summary>
public class MultiScaleRoIAlign : Module
{
    public MultiScaleRoIAlign(IReadOnlyList<string> featmapNames, (int H, int W) outputSize, int samplingRatio, int canonicalScale = 224, int canonicalLevel = 4)
    {
        ArgumentNullException.ThrowIfNull(featmapNames);
        if (featmapNames.Count == 0) throw new ArgumentException("MultiScaleRoIAlign: featmapNames is empty", nameof(featmapNames));
        if (outputSize.H < 1 || outputSize.W < 1)
            throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, $"MultiScaleRoIAlign: output size must be positive, got ({outputSize.H}, {outputSize.W})");
        FeatmapNames = featmapNames.ToArray();
        OutputSize = outputSize;
        SamplingRatio = samplingRatio;
        CanonicalScale = canonicalScale;
        CanonicalLevel = canonicalLevel;
    }

    /// <summary>A square output size.</summary>
    public MultiScaleRoIAlign(IReadOnlyList<string> featmapNames, int outputSize, int samplingRatio, int canonicalScale = 224, int canonicalLevel = 4)
        : this(featmapNames, (outputSize, outputSize), samplingRatio, canonicalScale, canonicalLevel) { }

    public IReadOnlyList<string> FeatmapNames { get; }
    public (int H, int W) OutputSize { get; }
    public int SamplingRatio { get; }
    public int CanonicalScale { get; }
    public int CanonicalLevel { get; }

    /// <summary>The per-level scales, known after the first <see cref="Forward"/> (null before).</summary>
    public double[]? Scales { get; private set; }

    /// <summary>The level mapper, known after the first <see cref="Forward"/> (null before).</summary>
    public LevelMapper? MapLevels { get; private set; }

    /// <summary>
    /// Pools the boxes of each image (boxes[i]: [Ki, 4] in image coordinates) from the named maps
    /// (taken in the features' order, as torchvision filters its OrderedDict). Result [sum Ki, C, H, W],
    /// rows in the order of the boxes.
    /// </summary>
    public Tensor Forward(IEnumerable<KeyValuePair<string, Tensor>> features, IReadOnlyList<Tensor> boxes, IReadOnlyList<(int H, int W)> imageSizes)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(boxes);
        ArgumentNullException.ThrowIfNull(imageSizes);
        var all = features.ToList();
        var maps = all.Where(kv => FeatmapNames.Contains(kv.Key)).Select(kv => kv.Value).ToList();
        foreach (var name in FeatmapNames)
            if (!all.Any(kv => kv.Key == name))
                throw new ArgumentException($"MultiScaleRoIAlign: no feature map named '{name}' (given: {string.Join(", ", all.Select(kv => kv.Key))})", nameof(features));
        for (int i = 1; i < maps.Count; i++)
            if (maps[i].Rank != 4 || maps[0].Rank != 4 || maps[i].Shape[1] != maps[0].Shape[1])
                throw new ArgumentException($"MultiScaleRoIAlign: feature maps must be [N, C, H, W] with one C, got {Shapes.Format(maps[0].Shape)} and {Shapes.Format(maps[i].Shape)}", nameof(features));
        if (Scales == null || MapLevels == null) (Scales, MapLevels) = SetupScales(maps, imageSizes, CanonicalScale, CanonicalLevel);

        using var rois = RoiOps.ConvertBoxesToRoiFormat(boxes);
        if (maps.Count == 1) return PoolLevel(maps[0], rois, Scales[0]);

        // Each level pools its own boxes; the pieces, concatenated level by level, are put back in box
        // order by one row gather (differentiable, so the gradient reaches every level's map).
        int[] levels = MapLevels.Map(boxes);
        using var scope = new TensorScope();
        var work = new List<LevelRois>();
        var order = new List<long>();
        for (int level = 0; level < maps.Count; level++)
        {
            var rows = Enumerable.Range(0, levels.Length).Where(i => levels[i] == level).Select(i => (long)i).ToArray();
            if (rows.Length == 0) continue;
            var idx = Tensor.From<long>(rows, [rows.Length], rois.Device);
            Tensor levelRois;
            using (GradMode.NoGrad()) levelRois = rois.IndexSelect(0, idx);
            work.Add(new LevelRois(maps[level], levelRois, Scales[level]));
            order.AddRange(rows);
        }
        var pieces = PoolLevels(work);
        int c = maps[0].Shape[1];
        if (pieces.Count == 0) return scope.MoveOut(Tensor.Zeros([0, c, OutputSize.H, OutputSize.W], maps[0].DType, maps[0].Device));
        // inverse[i] = position of box i among the concatenated pieces.
        var inverse = new long[order.Count];
        for (int p = 0; p < order.Count; p++) inverse[order[p]] = p;
        var cat = pieces.Count == 1 ? pieces[0] : Tensor.Cat(pieces, 0);
        var result = cat.IndexSelect(0, Tensor.From<long>(inverse, [inverse.Length], rois.Device));
        return scope.MoveOut(result);
    }

    /// <summary>Pools the rois [K, 5] assigned to one map of the given scale: RoIAlign (not aligned) with this module's size and sampling.</summary>
    protected virtual Tensor PoolLevel(Tensor map, Tensor rois, double scale) => RoiOps.RoiAlign(map, rois, OutputSize, scale, SamplingRatio);

    /// <summary>The rois [K, 5] assigned to one level's map and its scale.</summary>
    protected readonly record struct LevelRois(Tensor Map, Tensor Rois, double Scale);

    /// <summary>Pools every level's rois (<see cref="PoolLevel"/> level by level unless a subclass pools them together).</summary>
    protected virtual List<Tensor> PoolLevels(IReadOnlyList<LevelRois> levels) => [.. levels.Select(l => PoolLevel(l.Map, l.Rois, l.Scale))];

    /// <summary>torchvision's _infer_scale: 2^round(log2(map height / image height)), log2 and rounding in float32.</summary>
    public static double InferScale(int featureSize, int imageSize)
    {
        float approx = (float)((double)featureSize / imageSize);
        return Math.Pow(2, MathF.Round(MathF.Log2(approx)));
    }

    /// <summary>torchvision's _setup_scales: per-map scales from the largest image size, and the level mapper of the scale range.</summary>
    public static (double[] Scales, LevelMapper Mapper) SetupScales(IReadOnlyList<Tensor> maps, IReadOnlyList<(int H, int W)> imageSizes, int canonicalScale = 224, int canonicalLevel = 4)
    {
        if (imageSizes.Count == 0) throw new ArgumentException("MultiScaleRoIAlign: images list should not be empty", nameof(imageSizes));
        if (maps.Count == 0) throw new ArgumentException("MultiScaleRoIAlign: no feature maps", nameof(maps));
        int maxH = imageSizes.Max(s => s.H);
        var scales = maps.Select(m => InferScale(m.Shape[m.Rank - 2], maxH)).ToArray();
        int kMin = (int)-MathF.Log2((float)scales[0]);
        int kMax = (int)-MathF.Log2((float)scales[^1]);
        return (scales, new LevelMapper(kMin, kMax, canonicalScale, canonicalLevel));
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"MultiScaleRoIAlign(featmap_names=[{string.Join(", ", FeatmapNames)}], output_size={OutputSize}, sampling_ratio={SamplingRatio})");
}

/// <summary>
/// mmcv's <c>ModulatedDeformRoIPoolPack</c> (DCNv2 section 3), or with <c>modulated: false</c> its
/// <c>DeformRoIPoolPack</c>: a plain pooling of each roi (<see cref="RoiOps.DeformRoiPool"/> without offsets) feeds
/// <c>offset_fc</c> (Linear(C*ph*pw, fc) + ReLU, Linear(fc, fc) + ReLU, Linear(fc, 2*ph*pw): the normalised offsets,
/// x then y) and, in parallel, <c>mask_fc</c> (Linear(C*ph*pw, fc) + ReLU, Linear(fc, ph*pw), sigmoid: the
/// modulation); the roi is pooled again with the bins moved by gamma * roi size * offset and multiplied by the
/// modulation. The last layer of each branch starts at zero (offsets 0, modulation 0.5). Keys are mmcv's
/// (<c>offset_fc.{0,2,4}.*</c>, <c>mask_fc.{0,2}.*</c>); the fc layers have PyTorch's Linear initialisation.
/// </summary>
public sealed class ModulatedDeformRoIPool : Module
{
    public ModulatedDeformRoIPool((int H, int W) outputSize, int channels, int fcChannels = 1024, int samplingRatio = 0, double gamma = 0.1,
        bool aligned = true, bool modulated = true, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        if (outputSize.H < 1 || outputSize.W < 1)
            throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, $"ModulatedDeformRoIPool: output size must be positive, got ({outputSize.H}, {outputSize.W})");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fcChannels);
        OutputSize = outputSize;
        Channels = channels;
        SamplingRatio = samplingRatio;
        Gamma = gamma;
        Aligned = aligned;
        int bins = outputSize.H * outputSize.W, inFeatures = channels * bins;
        var last = new Linear(fcChannels, 2 * bins, dtype: dtype, device: device, generator: generator);
        OffsetFc = RegisterModule("offset_fc", new Sequential(
            new Linear(inFeatures, fcChannels, dtype: dtype, device: device, generator: generator), new ReLU(),
            new Linear(fcChannels, fcChannels, dtype: dtype, device: device, generator: generator), new ReLU(),
            last));
        Init.Zeros_(last.Weight);
        Init.Zeros_(last.Bias!);
        if (modulated)
        {
            var maskLast = new Linear(fcChannels, bins, dtype: dtype, device: device, generator: generator);
            MaskFc = RegisterModule("mask_fc", new Sequential(
                new Linear(inFeatures, fcChannels, dtype: dtype, device: device, generator: generator), new ReLU(),
                maskLast, new Sigmoid()));
            Init.Zeros_(maskLast.Weight);
            Init.Zeros_(maskLast.Bias!);
        }
    }

    public (int H, int W) OutputSize { get; }
    public int Channels { get; }
    public int SamplingRatio { get; }
    public double Gamma { get; }
    public bool Aligned { get; }
    public Sequential OffsetFc { get; }
    /// <summary>The modulation branch (null for the unmodulated DCNv1 pooling).</summary>
    public Sequential? MaskFc { get; }

    /// <summary>Pools [N, C, H, W] features over [K, 5] rois (coordinates scaled by <paramref name="spatialScale"/>) into [K, C, ph, pw].</summary>
    public Tensor Forward(Tensor input, Tensor rois, double spatialScale)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(rois);
        if (input.Rank != 4 || input.Shape[1] != Channels)
            throw new ArgumentException($"ModulatedDeformRoIPool: expected features [N, {Channels}, H, W], got {Shapes.Format(input.Shape)}", nameof(input));
        using var scope = new TensorScope();
        var (offset, mask) = Branches(PlainPool(input, rois, spatialScale));
        return scope.MoveOut(DeformedPool(input, rois, offset, mask, spatialScale));
    }

    /// <summary>The first, plain pooling [K, C, ph, pw] that feeds the branches.</summary>
    internal Tensor PlainPool(Tensor input, Tensor rois, double spatialScale) =>
        RoiOps.DeformRoiPool(input, rois, null, null, OutputSize, spatialScale, SamplingRatio, Gamma, Aligned);

    /// <summary>
    /// The offsets [K, 2, ph, pw] and the modulation [K, 1, ph, pw] (null unmodulated) of plainly pooled rois [K, C, ph, pw]
    /// (its intermediates belong to the caller's scope).
    /// </summary>
    internal (Tensor Offset, Tensor? Mask) Branches(Tensor plain)
    {
        int k = plain.Shape[0];
        var flat = plain.Reshape(k, -1);
        return (OffsetFc.Forward(flat).Reshape(k, 2, OutputSize.H, OutputSize.W), MaskFc?.Forward(flat).Reshape(k, 1, OutputSize.H, OutputSize.W));
    }

    /// <summary>The second pooling, with the bins moved by the offsets and weighted by the modulation.</summary>
    internal Tensor DeformedPool(Tensor input, Tensor rois, Tensor offset, Tensor? mask, double spatialScale) =>
        RoiOps.DeformRoiPool(input, rois, offset, mask, OutputSize, spatialScale, SamplingRatio, Gamma, Aligned);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"ModulatedDeformRoIPool(output_size={OutputSize}, channels={Channels}, sampling_ratio={SamplingRatio}, gamma={Gamma}, aligned={Aligned}, modulated={MaskFc != null})");
}

/// <summary>
/// <see cref="MultiScaleRoIAlign"/> whose levels pool with a (modulated) deformable RoI pooling: torchvision's
/// level assignment and scales, and one <see cref="ModulatedDeformRoIPool"/> shared by all levels (as the box head
/// after it is; mmdetection builds one per level), whose offset and modulation branches are this module's
/// <c>offset_fc</c> / <c>mask_fc</c>. Not aligned, as torchvision's box pooling, unless asked.
/// </summary>
public sealed class MultiScaleDeformRoIPool : MultiScaleRoIAlign
{
    public MultiScaleDeformRoIPool(IReadOnlyList<string> featmapNames, int outputSize, int samplingRatio, int channels, int fcChannels = 1024,
        double gamma = 0.1, bool modulated = true, bool aligned = false, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : base(featmapNames, outputSize, samplingRatio)
    {
        Pool = new ModulatedDeformRoIPool((outputSize, outputSize), channels, fcChannels, samplingRatio, gamma, aligned, modulated, dtype, device, generator);
        // The pool's branches sit directly under this module (keys box_roi_pool.offset_fc.*, box_roi_pool.mask_fc.*).
        foreach (var (name, child) in Pool.NamedChildren()) RegisterModule(name, child);
    }

    /// <summary>The shared deformable pooling (its branches are registered under this module).</summary>
    public ModulatedDeformRoIPool Pool { get; }

    protected override Tensor PoolLevel(Tensor map, Tensor rois, double scale) => Pool.Forward(map, rois, scale);

    /// <summary>
    /// The levels' plain poolings go through the shared branches as one batch (the branches are row-wise, so this is
    /// the level-by-level result, with one product per layer instead of one per level), then each level pools again.
    /// </summary>
    protected override List<Tensor> PoolLevels(IReadOnlyList<LevelRois> levels)
    {
        if (levels.Count == 1) return [PoolLevel(levels[0].Map, levels[0].Rois, levels[0].Scale)];
        using var scope = new TensorScope();
        var plain = levels.Select(l => Pool.PlainPool(l.Map, l.Rois, l.Scale)).ToList();
        var (offset, mask) = Pool.Branches(Tensor.Cat(plain, 0));
        var pieces = new List<Tensor>();
        int start = 0;
        foreach (var l in levels)
        {
            int k = l.Rois.Shape[0];
            pieces.Add(scope.MoveOut(Pool.DeformedPool(l.Map, l.Rois, offset.Narrow(0, start, k), mask?.Narrow(0, start, k), l.Scale)));
            start += k;
        }
        return pieces;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"MultiScaleDeformRoIPool(featmap_names=[{string.Join(", ", FeatmapNames)}], output_size={OutputSize}, sampling_ratio={SamplingRatio}, {Pool})");
}
