namespace Runtime.Vision.Data;

/// <summary>ImageNet statistics, the normalisation torchvision's pretrained backbones expect.</summary>
public static class ImageNetStats
{
    public static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    public static readonly float[] Std = [0.229f, 0.224f, 0.225f];
}

/// <summary>Per-channel normalisation (x - mean) / std of a CHW Float32 tensor, on the host.</summary>
public sealed class Normalize : ITransform<DetectionSample>, ITransform<PanopticSample>
{
    public Normalize(float[]? mean = null, float[]? std = null)
    {
        Mean = mean ?? ImageNetStats.Mean;
        Std = std ?? ImageNetStats.Std;
        if (Mean.Length != Std.Length) throw new ArgumentException("mean and std need one value per channel each", nameof(std));
        if (Std.Any(s => s == 0)) throw new ArgumentException("std must not be zero", nameof(std));
    }

    public float[] Mean { get; }

    public float[] Std { get; }

    /// <summary>A new normalised tensor (the input stays untouched).</summary>
    public Tensor Apply(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Rank != 3 || image.Size(0) != Mean.Length)
            throw new ArgumentException($"expected a [{Mean.Length},H,W] image", nameof(image));
        var v = image.ToArray<float>();
        int plane = image.Size(1) * image.Size(2);
        for (int c = 0; c < Mean.Length; c++)
        {
            float m = Mean[c], s = Std[c];
            var p = v.AsSpan(c * plane, plane);
            // torchvision: (image - mean[:, None, None]) / std[:, None, None]
            for (int i = 0; i < p.Length; i++) p[i] = (p[i] - m) / s;
        }
        return Tensor.From<float>(v, [Mean.Length, image.Size(1), image.Size(2)]);
    }

    public DetectionSample Apply(DetectionSample sample, Generator random)
    {
        var image = Apply(sample.Image);
        sample.Image.Dispose();
        return new DetectionSample(image, sample.Target);
    }

    public PanopticSample Apply(PanopticSample sample, Generator random)
    {
        var image = Apply(sample.Image);
        sample.Image.Dispose();
        return new PanopticSample(image, sample.SegmentIds, sample.Segments, sample.ImageId);
    }
}

/// <summary>
/// Flips image and targets left-right with probability <see cref="P"/> (a draw from the generator
/// below P flips, like torchvision's <c>torch.rand(1) &lt; p</c>): boxes x -> W - x (x1 and x2 swap),
/// masks and segment-id maps mirrored.
/// </summary>
public sealed class RandomHorizontalFlip(double p = 0.5) : ITransform<DetectionSample>, ITransform<PanopticSample>
{
    public double P { get; } = p is >= 0 and <= 1 ? p : throw new ArgumentOutOfRangeException(nameof(p), p, "probability must be in [0, 1]");

    public DetectionSample Apply(DetectionSample sample, Generator random)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(random);
        if (!(random.NextDouble() < P)) return sample;
        return Flip(sample);
    }

    public PanopticSample Apply(PanopticSample sample, Generator random)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(random);
        if (!(random.NextDouble() < P)) return sample;
        return Flip(sample);
    }

    /// <summary>Flips boxes [N,4] x1y1x2y2 in an image of width <paramref name="width"/>: (W - x2, y1, W - x1, y2).</summary>
    public static float[] FlipBoxes(ReadOnlySpan<float> boxes, int width)
    {
        var res = new float[boxes.Length];
        for (int i = 0; i + 3 < boxes.Length; i += 4)
        {
            res[i] = width - boxes[i + 2];
            res[i + 1] = boxes[i + 1];
            res[i + 2] = width - boxes[i];
            res[i + 3] = boxes[i + 3];
        }
        return res;
    }

    /// <summary>The sample mirrored left-right (always); the input is consumed.</summary>
    public static DetectionSample Flip(DetectionSample sample)
    {
        var t = sample.Target;
        var image = sample.Image.Flip(-1);
        var boxes = Tensor.From<float>(FlipBoxes(t.Boxes.ToArray<float>(), sample.Width), [t.Count, 4]);
        var masks = t.Masks?.Flip(-1);
        var target = new DetectionTarget(boxes, t.Labels, masks, t.IsCrowd, t.Area, t.ImageId);
        sample.Image.Dispose();
        t.Boxes.Dispose();
        t.Masks?.Dispose();
        return new DetectionSample(image, target);
    }

    public static PanopticSample Flip(PanopticSample sample)
    {
        var image = sample.Image.Flip(-1);
        var ids = sample.SegmentIds.Flip(-1);
        int w = sample.Width;
        var segments = sample.Segments.Select(s => s with { Bbox = [w - s.Bbox[0] - s.Bbox[2], s.Bbox[1], s.Bbox[2], s.Bbox[3]] }).ToArray();
        sample.Dispose();
        return new PanopticSample(image, ids, segments, sample.ImageId);
    }
}

/// <summary>
/// The resize of torchvision's GeneralizedRCNNTransform as a per-sample transform: the shorter side
/// to <see cref="MinSize"/> unless the longer would pass <see cref="MaxSize"/> (several min sizes:
/// one drawn at random per sample, as in training). Image bilinear, masks nearest, boxes scaled by
/// the per-axis size ratio; like torchvision, the <c>area</c> field keeps its original value.
/// </summary>
public sealed class ResizeTransform : ITransform<DetectionSample>
{
    public ResizeTransform(int minSize = 800, int maxSize = 1333) : this([minSize], maxSize) { }

    public ResizeTransform(int[] minSizes, int maxSize)
    {
        ArgumentNullException.ThrowIfNull(minSizes);
        if (minSizes.Length == 0 || minSizes.Any(s => s <= 0)) throw new ArgumentException("min sizes must be positive", nameof(minSizes));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSize);
        MinSizes = minSizes;
        MaxSize = maxSize;
    }

    public IReadOnlyList<int> MinSizes { get; }

    public int MinSize => MinSizes[^1];

    public int MaxSize { get; }

    public DetectionSample Apply(DetectionSample sample, Generator random)
    {
        int min = MinSizes.Count == 1 ? MinSizes[0] : MinSizes[(int)Math.Min(random.NextDouble() * MinSizes.Count, MinSizes.Count - 1)];
        return Apply(sample, min, MaxSize);
    }

    /// <summary>Resizes with one min size (the input is consumed).</summary>
    public static DetectionSample Apply(DetectionSample sample, int minSize, int maxSize)
    {
        ArgumentNullException.ThrowIfNull(sample);
        int h = sample.Height, w = sample.Width;
        var (nh, nw) = GeneralizedRcnnTransform.ResizedSize(h, w, minSize, maxSize);
        return ResizeTo(sample, nh, nw);
    }

    /// <summary>Resizes a sample to exactly <paramref name="height"/> x <paramref name="width"/> (the input is consumed).</summary>
    public static DetectionSample ResizeTo(DetectionSample sample, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(sample);
        int h = sample.Height, w = sample.Width, c = sample.Image.Size(0);
        var t = sample.Target;
        var image = Tensor.From<float>(Resize.Bilinear(sample.Image.ToArray<float>(), c, h, w, height, width), [c, height, width]);
        var boxes = Tensor.From<float>(GeneralizedRcnnTransform.ResizeBoxes(t.Boxes.ToArray<float>(), (h, w), (height, width)), [t.Count, 4]);
        Tensor? masks = t.Masks == null ? null
            : Tensor.From<byte>(Resize.Nearest<byte>(t.Masks.ToArray<byte>(), t.Count, h, w, height, width), [t.Count, height, width]);
        var target = new DetectionTarget(boxes, t.Labels, masks, t.IsCrowd, t.Area, t.ImageId);
        sample.Image.Dispose();
        t.Boxes.Dispose();
        t.Masks?.Dispose();
        return new DetectionSample(image, target);
    }
}

/// <summary>
/// Random scale then random crop, for panoptic (and semantic) training as in Panoptic-DeepLab /
/// DeepLab2: the image is scaled by a factor drawn uniformly from [<see cref="MinScale"/>,
/// <see cref="MaxScale"/>] (bilinear; ids nearest), padded at the bottom/right up to the crop size
/// (image with <see cref="ImagePadValue"/>, ids with <see cref="PadSegmentId"/>, 0 = void so it is
/// ignored in training), then a crop of <see cref="CropHeight"/> x <see cref="CropWidth"/> is taken
/// at a random offset. Segment areas and boxes are recounted; segments that leave the crop are dropped.
/// </summary>
public sealed class RandomScaleCrop : ITransform<PanopticSample>
{
    public RandomScaleCrop(double minScale, double maxScale, int cropHeight, int cropWidth, float[]? imagePadValue = null, int padSegmentId = 0)
    {
        if (!(minScale > 0) || !(maxScale >= minScale)) throw new ArgumentOutOfRangeException(nameof(minScale), $"need 0 < minScale <= maxScale, got [{minScale}, {maxScale}]");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cropHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cropWidth);
        MinScale = minScale;
        MaxScale = maxScale;
        CropHeight = cropHeight;
        CropWidth = cropWidth;
        ImagePadValue = imagePadValue;
        PadSegmentId = padSegmentId;
    }

    public double MinScale { get; }

    public double MaxScale { get; }

    public int CropHeight { get; }

    public int CropWidth { get; }

    /// <summary>Per-channel value of padded image pixels (null: 0).</summary>
    public float[]? ImagePadValue { get; }

    public int PadSegmentId { get; }

    public PanopticSample Apply(PanopticSample sample, Generator random)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(random);
        double scale = MinScale + (MaxScale - MinScale) * random.NextDouble();
        int h = sample.Height, w = sample.Width, c = sample.Image.Size(0);
        int sh = Math.Max(1, (int)Math.Round(h * scale)), sw = Math.Max(1, (int)Math.Round(w * scale));
        var img = Resize.Bilinear(sample.Image.ToArray<float>(), c, h, w, sh, sw);
        var ids = Resize.Nearest<int>(sample.SegmentIds.ToArray<int>(), 1, h, w, sh, sw);
        int ph = Math.Max(sh, CropHeight), pw = Math.Max(sw, CropWidth);
        int y0 = (int)random.NextInt64(0, ph - CropHeight + 1), x0 = (int)random.NextInt64(0, pw - CropWidth + 1);
        var outImg = new float[c * CropHeight * CropWidth];
        var outIds = new int[CropHeight * CropWidth];
        for (int ch = 0; ch < c; ch++)
        {
            float pad = ImagePadValue == null ? 0 : ImagePadValue[ch % ImagePadValue.Length];
            for (int y = 0; y < CropHeight; y++)
                for (int x = 0; x < CropWidth; x++)
                {
                    int sy = y + y0, sx = x + x0;
                    outImg[(ch * CropHeight + y) * CropWidth + x] = sy < sh && sx < sw ? img[(ch * sh + sy) * sw + sx] : pad;
                }
        }
        for (int y = 0; y < CropHeight; y++)
            for (int x = 0; x < CropWidth; x++)
            {
                int sy = y + y0, sx = x + x0;
                outIds[y * CropWidth + x] = sy < sh && sx < sw ? ids[sy * sw + sx] : PadSegmentId;
            }
        var segments = PanopticSegments.Recount(sample.Segments, outIds, CropHeight, CropWidth);
        long imageId = sample.ImageId;
        sample.Dispose();
        return new PanopticSample(Tensor.From<float>(outImg, [c, CropHeight, CropWidth]), Tensor.From<int>(outIds, [CropHeight, CropWidth]), segments, imageId);
    }
}

/// <summary>Helpers over panoptic segment lists.</summary>
public static class PanopticSegments
{
    /// <summary>The segments still present in <paramref name="ids"/>, with areas and [x, y, w, h] boxes recounted.</summary>
    public static PanopticSegment[] Recount(IReadOnlyList<PanopticSegment> segments, ReadOnlySpan<int> ids, int height, int width)
    {
        var stats = new Dictionary<int, (long Area, int X0, int Y0, int X1, int Y1)>();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int id = ids[y * width + x];
                if (id == 0) continue;
                stats[id] = stats.TryGetValue(id, out var s)
                    ? (s.Area + 1, Math.Min(s.X0, x), Math.Min(s.Y0, y), Math.Max(s.X1, x), Math.Max(s.Y1, y))
                    : (1, x, y, x, y);
            }
        var res = new List<PanopticSegment>();
        foreach (var seg in segments)
            if (stats.TryGetValue((int)seg.Id, out var s))
                res.Add(seg with { Area = s.Area, Bbox = [s.X0, s.Y0, s.X1 - s.X0 + 1, s.Y1 - s.Y0 + 1] });
        return res.ToArray();
    }
}
