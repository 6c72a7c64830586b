namespace Runtime.Vision.Data;

/// <summary>
/// Images of different sizes in one zero-padded tensor [B,C,H,W] (H, W multiples of the size
/// divisor), with each image's size before padding (torchvision's <c>ImageList</c>) and, when known,
/// before resizing. Owns <see cref="Tensors"/>.
/// </summary>
public sealed class ImageBatch : IDisposable
{
    public ImageBatch(Tensor tensors, IReadOnlyList<(int Height, int Width)> imageSizes, IReadOnlyList<(int Height, int Width)>? originalSizes = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(imageSizes);
        if (tensors.Rank != 4 || tensors.Size(0) != imageSizes.Count)
            throw new ArgumentException($"expected [{imageSizes.Count},C,H,W] for {imageSizes.Count} sizes", nameof(tensors));
        Tensors = tensors;
        ImageSizes = imageSizes;
        OriginalSizes = originalSizes ?? imageSizes;
    }

    /// <summary>The padded batch [B,C,H,W].</summary>
    public Tensor Tensors { get; }

    /// <summary>Each image's (height, width) inside the padded tensor (after resizing).</summary>
    public IReadOnlyList<(int Height, int Width)> ImageSizes { get; }

    /// <summary>Each image's (height, width) as loaded, before resizing.</summary>
    public IReadOnlyList<(int Height, int Width)> OriginalSizes { get; }

    public int Count => ImageSizes.Count;

    public void Dispose() => Tensors.Dispose();
}

/// <summary>A padded image batch and the matching (resized) targets. Owns both.</summary>
public sealed class DetectionBatch(ImageBatch images, IReadOnlyList<DetectionTarget> targets) : IDisposable
{
    public ImageBatch Images { get; } = images;

    public IReadOnlyList<DetectionTarget> Targets { get; } = targets;

    public void Dispose()
    {
        Images.Dispose();
        foreach (var t in Targets) t.Dispose();
    }
}

/// <summary>
/// torchvision's <c>GeneralizedRCNNTransform</c>: normalise each image (ImageNet mean/std by
/// default), resize it so that the shorter side is <see cref="MinSize"/> unless the longer side
/// would exceed <see cref="MaxSize"/>, scale the boxes and (nearest) the masks with it, and pad the
/// images into one batch whose height and width are multiples of <see cref="SizeDivisible"/>.
/// Training with several min sizes picks one at random per image.
/// </summary>
public sealed class GeneralizedRcnnTransform
{
    private readonly Normalize _normalize;

    public GeneralizedRcnnTransform(int minSize = 800, int maxSize = 1333, float[]? imageMean = null, float[]? imageStd = null, int sizeDivisible = 32)
        : this([minSize], maxSize, imageMean, imageStd, sizeDivisible) { }

    public GeneralizedRcnnTransform(int[] minSizes, int maxSize, float[]? imageMean = null, float[]? imageStd = null, int sizeDivisible = 32)
    {
        ArgumentNullException.ThrowIfNull(minSizes);
        if (minSizes.Length == 0 || minSizes.Any(s => s <= 0)) throw new ArgumentException("min sizes must be positive", nameof(minSizes));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sizeDivisible);
        MinSizes = minSizes;
        MaxSize = maxSize;
        SizeDivisible = sizeDivisible;
        _normalize = new Normalize(imageMean, imageStd);
    }

    public IReadOnlyList<int> MinSizes { get; }

    /// <summary>The min size used in evaluation (the last one, as torchvision).</summary>
    public int MinSize => MinSizes[^1];

    public int MaxSize { get; }

    public int SizeDivisible { get; }

    public float[] ImageMean => _normalize.Mean;

    public float[] ImageStd => _normalize.Std;

    /// <summary>
    /// The size torchvision resizes an h x w image to: scale = min(minSize / min(h, w), maxSize /
    /// max(h, w)) computed in float32 as torch does (1/x then times the size), then
    /// floor(side * scale) in double as interpolate's recompute_scale_factor path.
    /// </summary>
    public static (int Height, int Width) ResizedSize(int height, int width, double minSize, double maxSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        float lo = Math.Min(height, width), hi = Math.Max(height, width);
        // torch: self_min_size / min_size on a float32 tensor is min_size.reciprocal() * self_min_size.
        float s1 = (1f / lo) * (float)minSize, s2 = (1f / hi) * (float)maxSize;
        double scale = Math.Min(s1, s2);
        return ((int)Math.Floor(height * scale), (int)Math.Floor(width * scale));
    }

    /// <summary>Scales boxes [N*4] x1y1x2y2 from one image size to another (float32 ratios, as torchvision's resize_boxes).</summary>
    public static float[] ResizeBoxes(ReadOnlySpan<float> boxes, (int Height, int Width) from, (int Height, int Width) to)
    {
        float rh = (float)to.Height / from.Height, rw = (float)to.Width / from.Width;
        var res = new float[boxes.Length];
        for (int i = 0; i + 3 < boxes.Length; i += 4)
        {
            res[i] = boxes[i] * rw;
            res[i + 1] = boxes[i + 1] * rh;
            res[i + 2] = boxes[i + 2] * rw;
            res[i + 3] = boxes[i + 3] * rh;
        }
        return res;
    }

    /// <summary>
    /// Scales predicted boxes [N,4] from the resized image back to the original one (torchvision's postprocess):
    /// float32 per-axis ratios, on the boxes' device.
    /// </summary>
    public static Tensor PostprocessBoxes(Tensor boxes, (int Height, int Width) resizedSize, (int Height, int Width) originalSize)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        if (boxes.Rank != 2 || boxes.Size(1) != 4) throw new ArgumentException("boxes must be [N,4]", nameof(boxes));
        float rh = (float)originalSize.Height / resizedSize.Height, rw = (float)originalSize.Width / resizedSize.Width;
        using var f = boxes.To(DType.Float32);
        using var ratios = Tensor.From<float>([rw, rh, rw, rh], [4], boxes.Device);
        return f * ratios;
    }

    /// <summary>
    /// Normalises, resizes and batches images with their targets (targets may be null for inference).
    /// Inputs are left untouched; the result is new. With several min sizes and a generator, each image
    /// gets a random one (training); without a generator the last one (evaluation).
    /// </summary>
    public DetectionBatch Apply(IReadOnlyList<DetectionSample> samples, Generator? random = null)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var images = new List<Tensor>(samples.Count);
        var targets = new List<DetectionTarget>(samples.Count);
        var originals = new List<(int, int)>(samples.Count);
        try
        {
            foreach (var s in samples)
            {
                originals.Add((s.Height, s.Width));
                int min = random != null && MinSizes.Count > 1
                    ? MinSizes[(int)Math.Min(random.NextDouble() * MinSizes.Count, MinSizes.Count - 1)]
                    : MinSize;
                // Work on copies so that the caller keeps its samples.
                var copy = new DetectionSample(_normalize.Apply(s.Image), CloneTarget(s.Target));
                var resized = ResizeTransform.Apply(copy, min, MaxSize);
                images.Add(resized.Image);
                targets.Add(resized.Target);
            }
            var batch = Batch(images, SizeDivisible);
            return new DetectionBatch(new ImageBatch(batch.Tensors, batch.ImageSizes, originals), targets);
        }
        catch
        {
            foreach (var t in targets) t.Dispose();
            throw;
        }
        finally
        {
            foreach (var im in images) im.Dispose();
        }
    }

    /// <summary>
    /// A collate function for <see cref="DataLoader{T,TBatch}"/>: <see cref="Apply(IReadOnlyList{DetectionSample}, Generator?)"/>
    /// (evaluation sizes), then disposes the samples, so that batches come out of the workers ready for a model.
    /// </summary>
    public DetectionBatch Collate(IReadOnlyList<DetectionSample> samples)
    {
        try
        {
            return Apply(samples);
        }
        finally
        {
            foreach (var s in samples) s.Dispose();
        }
    }

    /// <summary>Normalises, resizes and batches images alone (inference).</summary>
    public ImageBatch Apply(IReadOnlyList<Tensor> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var resized = new List<Tensor>(images.Count);
        try
        {
            foreach (var im in images)
            {
                using var n = _normalize.Apply(im);
                var (h, w) = ResizedSize(im.Size(1), im.Size(2), MinSize, MaxSize);
                int c = im.Size(0);
                resized.Add(Tensor.From<float>(Resize.Bilinear(n.ToArray<float>(), c, im.Size(1), im.Size(2), h, w), [c, h, w]));
            }
            var b = Batch(resized, SizeDivisible);
            return new ImageBatch(b.Tensors, b.ImageSizes, images.Select(i => (i.Size(1), i.Size(2))).ToArray());
        }
        finally
        {
            foreach (var r in resized) r.Dispose();
        }
    }

    /// <summary>
    /// Pads images [C,h,w] of one channel count into [B,C,H,W] with zeros at the bottom and right,
    /// H and W the largest sizes rounded up to multiples of <paramref name="sizeDivisible"/>.
    /// </summary>
    public static ImageBatch Batch(IReadOnlyList<Tensor> images, int sizeDivisible = 32)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("cannot batch zero images", nameof(images));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sizeDivisible);
        int c = images[0].Size(0), maxH = 0, maxW = 0;
        foreach (var im in images)
        {
            if (im.Rank != 3 || im.Size(0) != c) throw new ArgumentException($"images must be [{c},H,W]", nameof(images));
            maxH = Math.Max(maxH, im.Size(1));
            maxW = Math.Max(maxW, im.Size(2));
        }
        int H = RoundUp(maxH, sizeDivisible), W = RoundUp(maxW, sizeDivisible);
        var data = new float[(long)images.Count * c * H * W];
        var sizes = new (int, int)[images.Count];
        for (int b = 0; b < images.Count; b++)
        {
            var im = images[b];
            int h = im.Size(1), w = im.Size(2);
            sizes[b] = (h, w);
            using var f = im.DType == DType.Float32 ? im.Contiguous() : im.To(DType.Float32);
            var v = f.ToArray<float>();
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    v.AsSpan((ch * h + y) * w, w).CopyTo(data.AsSpan((int)((((long)b * c + ch) * H + y) * W), w));
        }
        return new ImageBatch(Tensor.From<float>(data, [images.Count, c, H, W]), sizes);
    }

    /// <summary>Rounds up to a multiple of <paramref name="divisor"/> (math.ceil(x / d) * d).</summary>
    public static int RoundUp(int x, int divisor) => (x + divisor - 1) / divisor * divisor;

    private static DetectionTarget CloneTarget(DetectionTarget t) =>
        new(t.Boxes.Clone(), t.Labels.Clone(), t.Masks?.Clone(), t.IsCrowd.Clone(), t.Area.Clone(), t.ImageId);
}
