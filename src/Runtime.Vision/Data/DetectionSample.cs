namespace Runtime.Vision.Data;

/// <summary>
/// The targets of one image for detection and instance segmentation, as torchvision's detection
/// models take them: <c>boxes</c> [N,4] Float32 (x1, y1, x2, y2, absolute pixels), <c>labels</c> [N]
/// Int64, <c>masks</c> [N,H,W] (one byte per pixel, 0 or 1; DType.Bool) or null, <c>iscrowd</c> [N]
/// Int64, <c>area</c> [N] Float32 and the COCO image id. Owns (disposes) its tensors.
/// </summary>
public sealed class DetectionTarget : IDisposable
{
    public DetectionTarget(Tensor boxes, Tensor labels, Tensor? masks, Tensor isCrowd, Tensor area, long imageId)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(isCrowd);
        ArgumentNullException.ThrowIfNull(area);
        int n = boxes.Rank == 2 && boxes.Size(1) == 4 ? boxes.Size(0) : throw new ArgumentException($"boxes must be [N,4], got [{string.Join(",", boxes.Shape.ToArray())}]", nameof(boxes));
        if (labels.Rank != 1 || labels.Size(0) != n) throw new ArgumentException($"labels must be [{n}]", nameof(labels));
        if (isCrowd.Rank != 1 || isCrowd.Size(0) != n) throw new ArgumentException($"iscrowd must be [{n}]", nameof(isCrowd));
        if (area.Rank != 1 || area.Size(0) != n) throw new ArgumentException($"area must be [{n}]", nameof(area));
        if (masks != null && (masks.Rank != 3 || masks.Size(0) != n)) throw new ArgumentException($"masks must be [{n},H,W]", nameof(masks));
        Boxes = boxes;
        Labels = labels;
        Masks = masks;
        IsCrowd = isCrowd;
        Area = area;
        ImageId = imageId;
    }

    public Tensor Boxes { get; }

    public Tensor Labels { get; }

    public Tensor? Masks { get; }

    public Tensor IsCrowd { get; }

    public Tensor Area { get; }

    public long ImageId { get; }

    /// <summary>Number of instances N.</summary>
    public int Count => Boxes.Size(0);

    /// <summary>Builds a target from host arrays (boxes row-major [N*4], masks row-major [N*H*W]).</summary>
    public static DetectionTarget FromArrays(float[] boxes, long[] labels, byte[]? masks, int maskHeight, int maskWidth, long[] isCrowd, float[] area, long imageId)
    {
        int n = labels.Length;
        if (boxes.Length != 4 * n) throw new ArgumentException($"{boxes.Length} box values for {n} labels", nameof(boxes));
        if (masks != null && masks.Length != (long)n * maskHeight * maskWidth)
            throw new ArgumentException($"{masks.Length} mask bytes are not {n} masks of {maskHeight}x{maskWidth}", nameof(masks));
        return new DetectionTarget(
            Tensor.From<float>(boxes, [n, 4]),
            Tensor.From<long>(labels, [n]),
            masks == null ? null : Tensor.From<byte>(masks, [n, maskHeight, maskWidth]),
            Tensor.From<long>(isCrowd, [n]),
            Tensor.From<float>(area, [n]),
            imageId);
    }

    public void Dispose()
    {
        Boxes.Dispose();
        Labels.Dispose();
        Masks?.Dispose();
        IsCrowd.Dispose();
        Area.Dispose();
    }
}

/// <summary>An image (CHW Float32, values in [0, 1] unless normalised) and its detection targets. Owns both.</summary>
public sealed class DetectionSample : IDisposable
{
    public DetectionSample(Tensor image, DetectionTarget target)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(target);
        if (image.Rank != 3) throw new ArgumentException("the image must be [C,H,W]", nameof(image));
        if (target.Masks is { } m && (m.Size(1) != image.Size(1) || m.Size(2) != image.Size(2)))
            throw new ArgumentException($"masks are {m.Size(1)}x{m.Size(2)}, the image {image.Size(1)}x{image.Size(2)}", nameof(target));
        Image = image;
        Target = target;
    }

    public Tensor Image { get; }

    public DetectionTarget Target { get; }

    public int Height => Image.Size(1);

    public int Width => Image.Size(2);

    public void Dispose()
    {
        Image.Dispose();
        Target.Dispose();
    }
}

/// <summary>One segment of a panoptic annotation, with its training label.</summary>
public sealed record PanopticSegment(long Id, long CategoryId, int Label, bool IsThing, bool IsCrowd, double Area, double[] Bbox);

/// <summary>
/// An image (CHW Float32) with its panoptic annotation: <see cref="SegmentIds"/> [H,W] Int32 holds
/// each pixel's segment id (R + 256 G + 256^2 B of the panoptic PNG; 0 = void) and
/// <see cref="Segments"/> describes the ids. Owns its tensors.
/// </summary>
public sealed class PanopticSample : IDisposable
{
    public PanopticSample(Tensor image, Tensor segmentIds, IReadOnlyList<PanopticSegment> segments, long imageId)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(segmentIds);
        ArgumentNullException.ThrowIfNull(segments);
        if (image.Rank != 3) throw new ArgumentException("the image must be [C,H,W]", nameof(image));
        if (segmentIds.Rank != 2 || segmentIds.Size(0) != image.Size(1) || segmentIds.Size(1) != image.Size(2) || segmentIds.DType != DType.Int32)
            throw new ArgumentException("segment ids must be an Int32 [H,W] tensor matching the image", nameof(segmentIds));
        Image = image;
        SegmentIds = segmentIds;
        Segments = segments;
        ImageId = imageId;
    }

    public Tensor Image { get; }

    public Tensor SegmentIds { get; }

    public IReadOnlyList<PanopticSegment> Segments { get; }

    public long ImageId { get; }

    public int Height => Image.Size(1);

    public int Width => Image.Size(2);

    /// <summary>
    /// Per-pixel training labels [H,W] Int64: the segment's label, or <paramref name="ignoreLabel"/>
    /// for void pixels, crowd segments and ids not in <see cref="Segments"/>.
    /// </summary>
    public Tensor SemanticLabels(int ignoreLabel = 255)
    {
        var ids = SegmentIds.ToArray<int>();
        var labelOf = new Dictionary<int, int>();
        foreach (var s in Segments) labelOf[(int)s.Id] = s.IsCrowd ? ignoreLabel : s.Label;
        var res = new long[ids.Length];
        for (int i = 0; i < ids.Length; i++) res[i] = labelOf.TryGetValue(ids[i], out int l) ? l : ignoreLabel;
        return Tensor.From<long>(res, [Height, Width]);
    }

    public void Dispose()
    {
        Image.Dispose();
        SegmentIds.Dispose();
    }
}
