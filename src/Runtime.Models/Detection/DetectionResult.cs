namespace Runtime.Models.Detection;

/// <summary>
/// One image's detections: boxes [K, 4] (x1, y1, x2, y2 in the image's pixels), scores [K] and labels [K]
/// (Int64, the model's class numbering, 0 = background), best first. <see cref="Masks"/> is for the mask
/// families ([K, 1, H, W] probabilities). Owns its tensors.
/// </summary>
public sealed class DetectionResult : IDisposable
{
    public DetectionResult(Tensor boxes, Tensor scores, Tensor labels, Tensor? masks = null)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(labels);
        if (boxes.Rank != 2 || boxes.Size(1) != 4 || scores.Rank != 1 || labels.Rank != 1 || scores.Size(0) != boxes.Size(0) || labels.Size(0) != boxes.Size(0))
            throw new ArgumentException($"detections need boxes [K, 4], scores [K], labels [K]; got {Shapes.Format(boxes.Shape)}, {Shapes.Format(scores.Shape)}, {Shapes.Format(labels.Shape)}", nameof(boxes));
        Boxes = boxes;
        Scores = scores;
        Labels = labels;
        Masks = masks;
    }

    public Tensor Boxes { get; }
    public Tensor Scores { get; }
    public Tensor Labels { get; }
    public Tensor? Masks { get; }
    public int Count => Boxes.Size(0);

    /// <summary>
    /// The binary masks (probability &gt; <paramref name="threshold"/>, torchvision's references use 0.5) as K
    /// row-major H x W planes of 0/1 bytes, and their size; null without masks.
    /// </summary>
    public (byte[] Planes, int Height, int Width)? BinaryMasks(double threshold = 0.5)
    {
        if (Masks == null) return null;
        using var noGrad = GradMode.NoGrad();
        using var above = Masks.Gt(threshold);
        return (above.ToArray<byte>(), Masks.Size(-2), Masks.Size(-1));
    }

    /// <summary>The COCO run-length encodings of the binary masks (<see cref="BinaryMasks"/>), one per detection; empty without masks.</summary>
    public IReadOnlyList<Runtime.Vision.Evaluation.Rle> MaskRles(double threshold = 0.5)
    {
        if (BinaryMasks(threshold) is not var (planes, h, w)) return [];
        int plane = h * w;
        return Enumerable.Range(0, Count).Select(k => Runtime.Vision.Evaluation.Rle.EncodeRowMajor(planes.AsSpan(k * plane, plane), h, w)).ToArray();
    }

    /// <summary>Takes the tensors out of <paramref name="scope"/> (they outlive the block that made them); returns this.</summary>
    public DetectionResult MoveOutOf(TensorScope scope)
    {
        scope.MoveOut(Boxes);
        scope.MoveOut(Scores);
        scope.MoveOut(Labels);
        if (Masks != null) scope.MoveOut(Masks);
        return this;
    }

    public void Dispose()
    {
        Boxes.Dispose();
        Scores.Dispose();
        Labels.Dispose();
        Masks?.Dispose();
    }
}
