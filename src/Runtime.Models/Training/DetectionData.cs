using Runtime.Vision.Data;

namespace Runtime.Models.Training;

/// <summary>A detection data set split: the samples and, for evaluation, the COCO ground truth they come from.</summary>
public sealed record DetectionSplit(CocoDetection Dataset, string Folder);

/// <summary>
/// Opens the data a detector trains and evaluates on: <c>shapes</c> (the synthetic shapes set, generated on first
/// use into a folder) or a COCO-format folder, in either layout:
/// <c>&lt;dir&gt;/{train,val}/images + annotations/instances.json</c> (what the shapes generator writes), or COCO 2017's
/// <c>&lt;dir&gt;/annotations/instances_{train,val}2017.json</c> with <c>&lt;dir&gt;/{train,val}2017/</c> images.
/// </summary>
public static class DetectionData
{
    /// <summary>Sizes of the generated shapes set (train / held-out).</summary>
    public const int ShapesTrainImages = 3000, ShapesValImages = 300;

    /// <summary>The seed of the generated shapes set (the held-out split uses the next one).</summary>
    public const ulong ShapesSeed = 2026;

    /// <summary>The shapes the compact detectors see: 96-256 px images with 1-6 shapes of radius 10 px and up.</summary>
    public static ShapesOptions ShapesOptions { get; } = new() { MinImageSize = 160, MaxImageSize = 256, MinShapes = 1, MaxShapes = 6, MinRadius = 10 };

    public static bool IsShapes(string data) => string.Equals(data, "shapes", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The train or held-out split of <paramref name="data"/>. For <c>shapes</c> the images are generated into
    /// <paramref name="shapesFolder"/> (once; an existing complete set is reused).
    /// </summary>
    public static DetectionSplit Open(string data, bool train, string shapesFolder, int? shapesCount = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(data);
        if (IsShapes(data))
        {
            var folder = Path.Combine(shapesFolder, train ? "train" : "val");
            int count = shapesCount ?? (train ? ShapesTrainImages : ShapesValImages);
            var json = Path.Combine(folder, ShapesDataset.InstancesFileName);
            if (!File.Exists(json) || CocoInstancesFile.Load(json).Images.Count != count)
                ShapesDataset.Generate(folder, count, train ? ShapesSeed : ShapesSeed + 1, ShapesOptions);
            return new DetectionSplit(new CocoDetection(Path.Combine(folder, ShapesDataset.ImagesFolderName), json), folder);
        }
        if (!Directory.Exists(data))
            throw new DirectoryNotFoundException($"--data: '{data}' is neither 'shapes' nor an existing folder");
        var split = train ? "train" : "val";
        var simpleJson = Path.Combine(data, split, ShapesDataset.InstancesFileName);
        if (File.Exists(simpleJson))
            return new DetectionSplit(new CocoDetection(Path.Combine(data, split, ShapesDataset.ImagesFolderName), simpleJson), Path.Combine(data, split));
        var cocoJson = Path.Combine(data, "annotations", $"instances_{split}2017.json");
        if (File.Exists(cocoJson))
            return new DetectionSplit(new CocoDetection(Path.Combine(data, $"{split}2017"), cocoJson), data);
        throw new FileNotFoundException(
            $"--data: '{data}' has neither {Path.Combine(split, ShapesDataset.InstancesFileName)} nor annotations/instances_{split}2017.json", simpleJson);
    }
}
