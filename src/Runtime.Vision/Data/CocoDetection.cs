using System.Buffers;
using Runtime.Vision.Evaluation;
using Runtime.Vision.Imaging;

namespace Runtime.Vision.Data;

/// <summary>Settings of <see cref="CocoDetection"/>.</summary>
public sealed record CocoDetectionOptions
{
    /// <summary>Decode segmentations into masks [N,H,W] (false: <see cref="DetectionTarget.Masks"/> is null).</summary>
    public bool LoadMasks { get; init; } = true;

    /// <summary>Keep crowd annotations (iscrowd 1). torchvision's training references drop them (the default).</summary>
    public bool IncludeCrowd { get; init; }

    /// <summary>Labels 1..K for the sorted category ids (true) or the category ids themselves (false).</summary>
    public bool ContiguousLabels { get; init; } = true;

    /// <summary>Leave out images with no usable annotation (torchvision does so for training).</summary>
    public bool RemoveImagesWithoutAnnotations { get; init; }
}

/// <summary>
/// A COCO instances data set (torchvision's <c>CocoDetection</c> plus the detection references'
/// <c>ConvertCocoPolysToMask</c>): sample i is image i of the file decoded to a CHW Float32 tensor
/// in [0, 1] (RGB) and its targets. Boxes come from the annotations' [x, y, w, h] as x1y1x2y2,
/// clamped to the image; annotations with an empty box are dropped; polygons and RLE
/// (uncompressed or compressed) are rasterised as pycocotools does. Thread-safe.
/// </summary>
public sealed class CocoDetection : IDataset<DetectionSample>
{
    private readonly CocoImageInfo[] _images;

    public CocoDetection(string imageFolder, string annotationFile, CocoDetectionOptions? options = null)
        : this(imageFolder, CocoInstancesFile.Load(annotationFile), options) { }

    public CocoDetection(string imageFolder, CocoInstancesFile file, CocoDetectionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(imageFolder);
        ArgumentNullException.ThrowIfNull(file);
        ImageFolder = imageFolder;
        File = file;
        Options = options ?? new CocoDetectionOptions();
        Categories = new CategoryMap(file.Categories, Options.ContiguousLabels);
        var images = file.Images.OrderBy(i => i.Id).ToList();
        if (Options.RemoveImagesWithoutAnnotations)
            images = images.Where(i => file.AnnotationsOf(i.Id).Any(a => Usable(a, i.Width, i.Height))).ToList();
        _images = images.ToArray();
    }

    public string ImageFolder { get; }

    public CocoInstancesFile File { get; }

    public CocoDetectionOptions Options { get; }

    public CategoryMap Categories { get; }

    /// <summary>The image ids, in sample order (ascending id).</summary>
    public IReadOnlyList<long> ImageIds => _images.Select(i => i.Id).ToArray();

    public int Count => _images.Length;

    public CocoImageInfo ImageInfo(int index) => _images[CheckIndex(index)];

    /// <summary>Index of the sample with the given image id, or -1.</summary>
    public int IndexOf(long imageId) => Array.FindIndex(_images, i => i.Id == imageId);

    /// <summary>Decodes image <paramref name="index"/> as 8-bit RGB.</summary>
    public Image LoadImage(int index)
    {
        var info = _images[CheckIndex(index)];
        return Image.Load(Path.Combine(ImageFolder, info.FileName)).ToRgb();
    }

    public DetectionSample Get(int index)
    {
        var img = LoadImage(index);
        var target = LoadTarget(index, img.Height, img.Width);
        try
        {
            return new DetectionSample(ImageTensors.ToChw(img), target);
        }
        catch
        {
            target.Dispose();
            throw;
        }
    }

    /// <summary>The targets of sample <paramref name="index"/> for an image of the given size (no image decoding).</summary>
    public DetectionTarget LoadTarget(int index, int height, int width)
    {
        var info = _images[CheckIndex(index)];
        var anns = File.AnnotationsOf(info.Id).Where(a => Options.IncludeCrowd || !a.IsCrowd).ToList();
        var boxes = new List<float>();
        var labels = new List<long>();
        var crowd = new List<long>();
        var area = new List<float>();
        var masks = Options.LoadMasks ? new List<byte[]>() : null;
        foreach (var a in anns)
        {
            // torchvision: xywh -> xyxy in float32, clamp to the image, keep boxes with positive size.
            float x1 = Math.Clamp((float)a.Bbox[0], 0, width), y1 = Math.Clamp((float)a.Bbox[1], 0, height);
            float x2 = Math.Clamp((float)a.Bbox[0] + (float)a.Bbox[2], 0, width), y2 = Math.Clamp((float)a.Bbox[1] + (float)a.Bbox[3], 0, height);
            if (!(x2 > x1 && y2 > y1)) continue;
            boxes.AddRange([x1, y1, x2, y2]);
            labels.Add(Categories.LabelOf(a.CategoryId));
            crowd.Add(a.IsCrowd ? 1 : 0);
            area.Add((float)a.Area);
            masks?.Add(DecodeMask(a.Segmentation, height, width));
        }
        int n = labels.Count;
        Tensor? maskTensor = null;
        if (masks != null)
        {
            // A pooled staging buffer: the tensor copies it, and large arrays would otherwise churn the LOH.
            int plane = height * width, total = checked(n * plane);
            var flat = ArrayPool<byte>.Shared.Rent(total);
            try
            {
                for (int i = 0; i < n; i++) masks[i].CopyTo(flat, i * plane);
                maskTensor = Tensor.From<byte>(flat.AsSpan(0, total), [n, height, width]);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(flat);
            }
        }
        try
        {
            return new DetectionTarget(
                Tensor.From<float>(boxes.ToArray(), [n, 4]), Tensor.From<long>(labels.ToArray(), [n]), maskTensor,
                Tensor.From<long>(crowd.ToArray(), [n]), Tensor.From<float>(area.ToArray(), [n]), info.Id);
        }
        catch
        {
            maskTensor?.Dispose();
            throw;
        }
    }

    /// <summary>A segmentation as a row-major byte mask (1 inside); an absent one gives an empty mask.</summary>
    public static byte[] DecodeMask(CocoSegmentation? seg, int height, int width) => ToRle(seg, height, width).DecodeRowMajor();

    /// <summary>A segmentation as COCO RLE (polygons rasterised and merged as pycocotools' annToRLE).</summary>
    public static Rle ToRle(CocoSegmentation? seg, int height, int width)
    {
        if (seg == null) return Rle.Empty(height, width);
        if (seg.Polygons != null) return Rle.FromPolygons(seg.Polygons, height, width);
        if (seg.RleHeight != height || seg.RleWidth != width)
            throw new InvalidDataException($"an RLE of size {seg.RleHeight}x{seg.RleWidth} belongs to an image of {height}x{width}");
        return seg.CompressedCounts != null ? Rle.FromCompressedString(seg.CompressedCounts, height, width) : new Rle(height, width, seg.Counts!);
    }

    private static bool Usable(CocoAnnotation a, int width, int height) =>
        !a.IsCrowd && a.Bbox[2] > 0 && a.Bbox[3] > 0 && a.Bbox[0] < width && a.Bbox[1] < height;

    private int CheckIndex(int index) =>
        (uint)index < (uint)_images.Length ? index : throw new ArgumentOutOfRangeException(nameof(index), index, $"index outside a data set of {_images.Length} images");
}

/// <summary>Image to tensor conversion for the loaders.</summary>
public static class ImageTensors
{
    /// <summary>
    /// An 8-bit RGB image as a CHW Float32 tensor in [0, 1] (torchvision's to_tensor: sample / 255),
    /// staged through a pooled buffer. Other images go through <see cref="Image.ToTensor"/>.
    /// </summary>
    public static Tensor ToChw(Image image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Is16Bit || image.IsIndexed) return image.ToTensor();
        int c = image.Channels, hw = image.Width * image.Height, total = c * hw;
        var buf = ArrayPool<float>.Shared.Rent(total);
        try
        {
            var src = image.Pixels;
            const float scale = 1f / 255f; // the same factor Image.ToTensor multiplies by
            for (int ch = 0; ch < c; ch++)
            {
                var dst = buf.AsSpan(ch * hw, hw);
                for (int i = 0, j = ch; i < dst.Length; i++, j += c) dst[i] = src[j] * scale;
            }
            return Tensor.From<float>(buf.AsSpan(0, total), [c, image.Height, image.Width]);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buf);
        }
    }
}

/// <summary>
/// A COCO panoptic data set: the image (CHW Float32 in [0, 1]), the segment id of each pixel read
/// from the panoptic PNG (id = R + 256 G + 256^2 B, 0 = void) and the segments with their labels
/// (contiguous 1..K over all categories by default) and isthing. Thread-safe.
/// </summary>
public sealed class CocoPanoptic : IDataset<PanopticSample>
{
    private readonly CocoImageInfo[] _images;

    public CocoPanoptic(string imageFolder, string panopticFolder, string annotationFile, bool contiguousLabels = true)
        : this(imageFolder, panopticFolder, CocoPanopticFile.Load(annotationFile), contiguousLabels) { }

    public CocoPanoptic(string imageFolder, string panopticFolder, CocoPanopticFile file, bool contiguousLabels = true)
    {
        ArgumentNullException.ThrowIfNull(imageFolder);
        ArgumentNullException.ThrowIfNull(panopticFolder);
        ArgumentNullException.ThrowIfNull(file);
        ImageFolder = imageFolder;
        PanopticFolder = panopticFolder;
        File = file;
        Categories = new CategoryMap(file.Categories, contiguousLabels);
        _images = file.Images.Where(i => file.AnnotationOf(i.Id) != null).OrderBy(i => i.Id).ToArray();
    }

    public string ImageFolder { get; }

    public string PanopticFolder { get; }

    public CocoPanopticFile File { get; }

    public CategoryMap Categories { get; }

    public int Count => _images.Length;

    public CocoImageInfo ImageInfo(int index) => _images[CheckIndex(index)];

    public PanopticSample Get(int index)
    {
        var info = _images[CheckIndex(index)];
        var ann = File.AnnotationOf(info.Id)!;
        var img = Image.Load(Path.Combine(ImageFolder, info.FileName)).ToRgb();
        var ids = LoadSegmentIds(Path.Combine(PanopticFolder, ann.FileName), out int h, out int w);
        if (h != img.Height || w != img.Width)
            throw new InvalidDataException($"panoptic PNG {ann.FileName} is {w}x{h}, the image {img.Width}x{img.Height}");
        var cats = File.Categories.ToDictionary(c => c.Id);
        var segments = ann.SegmentsInfo.Select(s => new PanopticSegment(
            s.Id, s.CategoryId, Categories.LabelOf(s.CategoryId),
            cats.TryGetValue(s.CategoryId, out var c) ? c.IsThing ?? true : true,
            s.IsCrowd, s.Area, s.Bbox)).ToArray();
        return new PanopticSample(ImageTensors.ToChw(img), Tensor.From<int>(ids, [h, w]), segments, info.Id);
    }

    /// <summary>Reads a panoptic PNG into segment ids R + 256 G + 256^2 B, row-major.</summary>
    public static int[] LoadSegmentIds(string path, out int height, out int width)
    {
        var png = Image.Load(path).ToRgb();
        height = png.Height;
        width = png.Width;
        var px = png.Pixels;
        var ids = new int[height * width];
        for (int i = 0; i < ids.Length; i++) ids[i] = px[3 * i] | px[3 * i + 1] << 8 | px[3 * i + 2] << 16;
        return ids;
    }

    private int CheckIndex(int index) =>
        (uint)index < (uint)_images.Length ? index : throw new ArgumentOutOfRangeException(nameof(index), index, $"index outside a data set of {_images.Length} images");
}
