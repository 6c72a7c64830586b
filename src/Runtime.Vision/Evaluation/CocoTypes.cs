namespace Runtime.Vision.Evaluation;

/// <summary>A COCO image entry: id and size (the size is needed to rasterise polygons).</summary>
public sealed record CocoEvalImage(long Id, int Height, int Width);

/// <summary>A COCO category entry.</summary>
public sealed record CocoEvalCategory(long Id, string Name = "");

/// <summary>
/// A COCO "segmentation" field: either a list of polygons <c>[x0, y0, x1, y1, ...]</c> or an RLE
/// (compressed string or uncompressed counts, both held as <see cref="Evaluation.Rle"/>).
/// </summary>
public sealed class CocoEvalSegmentation
{
    private CocoEvalSegmentation(IReadOnlyList<double[]>? polygons, Rle? rle)
    {
        Polygons = polygons;
        Rle = rle;
    }

    /// <summary>The polygons, when the segmentation is a polygon list.</summary>
    public IReadOnlyList<double[]>? Polygons { get; }

    /// <summary>The mask, when the segmentation is an RLE.</summary>
    public Rle? Rle { get; }

    /// <summary>A polygon segmentation (one or more polygons, merged by union).</summary>
    public static CocoEvalSegmentation FromPolygons(params double[][] polygons)
    {
        ArgumentNullException.ThrowIfNull(polygons);
        return new CocoEvalSegmentation(polygons.Select(p => (double[])p.Clone()).ToArray(), null);
    }

    /// <summary>An RLE segmentation.</summary>
    public static CocoEvalSegmentation FromRle(Rle rle)
    {
        ArgumentNullException.ThrowIfNull(rle);
        return new CocoEvalSegmentation(null, rle);
    }

    /// <summary>An RLE segmentation given as COCO's compressed counts string and size.</summary>
    public static CocoEvalSegmentation FromCompressedRle(string counts, int height, int width) =>
        FromRle(Rle.FromCompressedString(counts, height, width));

    /// <summary>An RLE segmentation given as uncompressed counts (COCO's <c>iscrowd</c> annotations) and size.</summary>
    public static CocoEvalSegmentation FromUncompressedRle(IReadOnlyList<uint> counts, int height, int width) =>
        FromRle(new Rle(height, width, counts));

    /// <summary>The mask on an image of the given size (pycocotools <c>annToRLE</c>): polygons are rasterised and merged; an RLE is returned as is.</summary>
    public Rle ToRle(int height, int width) => Rle ?? Evaluation.Rle.FromPolygons(Polygons!, height, width);
}

/// <summary>
/// A ground-truth annotation. <paramref name="Bbox"/> is <c>[x, y, w, h]</c>. <paramref name="Area"/> is COCO's
/// stored area (used for the area ranges); when null it is computed (box w*h for bbox evaluation, mask area for segm).
/// <paramref name="Ignore"/> is COCO's <c>ignore</c> field, which pycocotools overwrites with <c>iscrowd</c>: it only
/// takes effect with <see cref="CocoEvalParams.HonorIgnoreFlag"/>.
/// </summary>
public sealed record CocoEvalAnnotation(
    long Id,
    long ImageId,
    long CategoryId,
    double[]? Bbox = null,
    double? Area = null,
    bool IsCrowd = false,
    CocoEvalSegmentation? Segmentation = null,
    bool Ignore = false);

/// <summary>
/// A detection result. For bbox evaluation give <paramref name="Bbox"/> (<c>[x, y, w, h]</c>); for segm give
/// <paramref name="Segmentation"/> (a box alone is rasterised as a rectangle, as pycocotools' loadRes does).
/// As in loadRes, a detection with a box takes <c>w*h</c> as its area, otherwise its mask area.
/// </summary>
public sealed record CocoEvalDetection(
    long ImageId,
    long CategoryId,
    double Score,
    double[]? Bbox = null,
    CocoEvalSegmentation? Segmentation = null);

/// <summary>A COCO ground-truth set: images, categories and annotations.</summary>
public sealed record CocoGroundTruth(
    IReadOnlyList<CocoEvalImage> Images,
    IReadOnlyList<CocoEvalCategory> Categories,
    IReadOnlyList<CocoEvalAnnotation> Annotations);

/// <summary>Which overlap the COCO evaluation uses.</summary>
public enum CocoIouType
{
    /// <summary>Box IoU on <c>[x, y, w, h]</c> boxes.</summary>
    Bbox,

    /// <summary>Mask IoU on RLE masks.</summary>
    Segm,
}

/// <summary>COCO evaluation parameters (pycocotools <c>Params.setDetParams</c> defaults).</summary>
public sealed class CocoEvalParams
{
    /// <summary>IoU thresholds; default <c>np.linspace(.5, .95, 10)</c> (bit-identical values).</summary>
    public double[] IouThresholds { get; init; } = Linspace(0.5, 0.95, 10);

    /// <summary>Recall points; default <c>np.linspace(0, 1, 101)</c>.</summary>
    public double[] RecallThresholds { get; init; } = Linspace(0.0, 1.0, 101);

    /// <summary>Maximum detections per image; default 1, 10, 100 (sorted before use).</summary>
    public int[] MaxDets { get; init; } = [1, 10, 100];

    /// <summary>Area ranges (inclusive at both ends) on the ground truth's area; default all, small, medium, large.</summary>
    public (double Min, double Max)[] AreaRanges { get; init; } =
        [(0, 1e5 * 1e5), (0, 32 * 32), (32 * 32, 96 * 96), (96 * 96, 1e5 * 1e5)];

    /// <summary>Labels of <see cref="AreaRanges"/>.</summary>
    public string[] AreaLabels { get; init; } = ["all", "small", "medium", "large"];

    /// <summary>Restrict to these image ids (default: all images of the ground truth).</summary>
    public IReadOnlyList<long>? ImageIds { get; init; }

    /// <summary>Restrict to these category ids (default: all categories of the ground truth).</summary>
    public IReadOnlyList<long>? CategoryIds { get; init; }

    /// <summary>
    /// When true a ground truth is ignored when <c>Ignore || IsCrowd</c>. pycocotools (default, false) overwrites
    /// the <c>ignore</c> field with <c>iscrowd</c>.
    /// </summary>
    public bool HonorIgnoreFlag { get; init; }

    /// <summary><c>numpy.linspace(start, stop, num)</c> with numpy's arithmetic: <c>start + i * ((stop - start) / (num - 1))</c>, last = stop.</summary>
    public static double[] Linspace(double start, double stop, int num)
    {
        if (num < 0) throw new ArgumentOutOfRangeException(nameof(num));
        var y = new double[num];
        if (num == 0) return y;
        int div = num - 1;
        if (div == 0) { y[0] = start; return y; }
        double delta = stop - start;
        double step = delta / div;
        for (int i = 0; i < num; i++) y[i] = step == 0 ? i / (double)div * delta + start : i * step + start;
        y[num - 1] = stop;
        return y;
    }
}
