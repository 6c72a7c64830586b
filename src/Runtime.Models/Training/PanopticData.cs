using Runtime.Models.Panoptic;
using Runtime.Vision.Data;

namespace Runtime.Models.Training;

/// <summary>A panoptic data set split.</summary>
public sealed record PanopticSplit(CocoPanoptic Dataset, string Folder);

/// <summary>
/// Opens the data a panoptic model trains and evaluates on: <c>panoptic-shapes</c> (the synthetic panoptic shapes set:
/// six shape things over sky / ground / water stuff, generated on first use into a folder) or a COCO panoptic folder in
/// either layout: <c>&lt;dir&gt;/{train,val}/images + panoptic/ + annotations/panoptic.json</c> (what the shapes generator
/// writes), or COCO 2017's <c>&lt;dir&gt;/annotations/panoptic_{train,val}2017.json</c> with the PNGs in
/// <c>&lt;dir&gt;/annotations/panoptic_{train,val}2017/</c> and the images in <c>&lt;dir&gt;/{train,val}2017/</c>.
/// Classes are the contiguous labels over all categories minus one (things and stuff, in category-id order).
/// </summary>
public static class PanopticData
{
    /// <summary>Sizes of the generated set (train / held-out).</summary>
    public const int ShapesTrainImages = 3000, ShapesValImages = 300;

    /// <summary>The seed of the generated set (the held-out split uses the next one).</summary>
    public const ulong ShapesSeed = 2027;

    /// <summary>The panoptic shapes the compact model sees: 160-256 px images with 1-6 shapes of radius 10 px and up.</summary>
    public static ShapesOptions ShapesOptions { get; } = new() { MinImageSize = 160, MaxImageSize = 256, MinShapes = 1, MaxShapes = 6, MinRadius = 10 };

    public static bool IsShapes(string data) => string.Equals(data, "panoptic-shapes", StringComparison.OrdinalIgnoreCase);

    /// <summary>The train or held-out split; for <c>panoptic-shapes</c> the images are generated into <paramref name="shapesFolder"/> once.</summary>
    public static PanopticSplit Open(string data, bool train, string shapesFolder, int? shapesCount = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(data);
        if (IsShapes(data))
        {
            var folder = Path.Combine(shapesFolder, train ? "panoptic-train" : "panoptic-val");
            int count = shapesCount ?? (train ? ShapesTrainImages : ShapesValImages);
            var json = Path.Combine(folder, ShapesDataset.PanopticFileName);
            if (!File.Exists(json) || CocoPanopticFile.Load(json).Images.Count != count)
                ShapesDataset.GeneratePanoptic(folder, count, train ? ShapesSeed : ShapesSeed + 1, ShapesOptions);
            return new PanopticSplit(new CocoPanoptic(Path.Combine(folder, ShapesDataset.ImagesFolderName), Path.Combine(folder, ShapesDataset.PanopticFolderName), json), folder);
        }
        if (!Directory.Exists(data))
            throw new DirectoryNotFoundException($"--data: '{data}' is neither 'panoptic-shapes' nor an existing folder");
        var split = train ? "train" : "val";
        var simpleJson = Path.Combine(data, split, ShapesDataset.PanopticFileName);
        if (File.Exists(simpleJson))
            return new PanopticSplit(new CocoPanoptic(Path.Combine(data, split, ShapesDataset.ImagesFolderName), Path.Combine(data, split, ShapesDataset.PanopticFolderName), simpleJson),
                Path.Combine(data, split));
        var cocoJson = Path.Combine(data, "annotations", $"panoptic_{split}2017.json");
        if (File.Exists(cocoJson))
            return new PanopticSplit(new CocoPanoptic(Path.Combine(data, $"{split}2017"), Path.Combine(data, "annotations", $"panoptic_{split}2017"), cocoJson), data);
        throw new FileNotFoundException(
            $"--data: '{data}' has neither {Path.Combine(split, ShapesDataset.PanopticFileName)} nor annotations/panoptic_{split}2017.json", simpleJson);
    }

    /// <summary>The model's class count and thing classes for a data set's categories.</summary>
    public static (int NumClasses, int[] ThingClasses) Classes(CategoryMap categories)
    {
        ArgumentNullException.ThrowIfNull(categories);
        int n = categories.NumClasses - 1;
        return (n, [.. Enumerable.Range(0, n).Where(c => categories.IsThing[c + 1])]);
    }

    /// <summary>The training target of a sample already at the network's input size (classes are labels - 1; crowd is void).</summary>
    public static PanopticTarget Target(PanopticSample sample, MaxDeepLabConfig config)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(config);
        int s4h = MaxDeepLabConfig.FeatureSize(sample.Height, 4), s4w = MaxDeepLabConfig.FeatureSize(sample.Width, 4);
        var segments = sample.Segments.Select(s => (s.Id, s.Label - 1, s.IsCrowd)).ToList();
        int ss = config.SemanticStride;
        int sh = MaxDeepLabConfig.FeatureSize(sample.Height, ss), sw = MaxDeepLabConfig.FeatureSize(sample.Width, ss);
        return PanopticTarget.FromSegments(sample.SegmentIds.ToArray<int>(), sample.Height, sample.Width, segments, s4h, s4w, sh, sw);
    }
}

/// <summary>
/// MaX-DeepLab's training crop (DeepLab2's resize-to-crop-size then random scale and crop): the image is scaled so
/// its longer side is <see cref="Size"/> times a factor drawn from [<see cref="MinScale"/>, <see cref="MaxScale"/>]
/// (bilinear; ids nearest), padded at the bottom / right up to Size (image 0, i.e. the mean after normalisation; ids 0,
/// void), and a Size x Size crop is taken at a random offset. Segments are recounted.
/// </summary>
public sealed class FitScaleCrop(int size, double minScale = 0.75, double maxScale = 1.25) : ITransform<PanopticSample>
{
    public int Size { get; } = size > 0 ? size : throw new ArgumentOutOfRangeException(nameof(size));
    public double MinScale { get; } = minScale;
    public double MaxScale { get; } = maxScale >= minScale && minScale > 0 ? maxScale : throw new ArgumentOutOfRangeException(nameof(maxScale));

    public PanopticSample Apply(PanopticSample sample, Generator random)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(random);
        double u = MinScale + (MaxScale - MinScale) * random.NextDouble();
        double factor = Size * u / Math.Max(sample.Height, sample.Width);
        var crop = new RandomScaleCrop(factor, factor, Size, Size);
        return crop.Apply(sample, random);
    }
}
