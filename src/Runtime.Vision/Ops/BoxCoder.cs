namespace Runtime.Vision.Ops;

/// <summary>
/// torchvision's detection BoxCoder: encodes boxes as (dx, dy, dw, dh) offsets from reference boxes and
/// decodes them back. Widths are x2 - x1 (no +1); the decoded dw, dh are clamped above at
/// <see cref="BboxXformClip"/> (log(1000/16) by default) before the exponential. Weights (wx, wy, ww, wh):
/// (1, 1, 1, 1) in the RPN, (10, 10, 5, 5) in the R-CNN box head.
/// </summary>
public sealed class BoxCoder
{
    /// <summary>torchvision's default clamp of the decoded log-size offsets, log(1000 / 16).</summary>
    public static readonly double DefaultBboxXformClip = Math.Log(1000.0 / 16);

    public BoxCoder((double X, double Y, double W, double H) weights, double? bboxXformClip = null)
    {
        foreach (var (w, name) in new[] { (weights.X, "X"), (weights.Y, "Y"), (weights.W, "W"), (weights.H, "H") })
            if (!(w != 0) || double.IsInfinity(w))
                throw new ArgumentOutOfRangeException(nameof(weights), weights, $"BoxCoder: weight {name} must be finite and non-zero, got {w}");
        Weights = weights;
        BboxXformClip = bboxXformClip ?? DefaultBboxXformClip;
    }

    public (double X, double Y, double W, double H) Weights { get; }

    public double BboxXformClip { get; }

    /// <summary>Encodes per image: the lists are concatenated, encoded at once, and split back per image.</summary>
    public Tensor[] Encode(IReadOnlyList<Tensor> referenceBoxes, IReadOnlyList<Tensor> proposals)
    {
        ArgumentNullException.ThrowIfNull(referenceBoxes);
        ArgumentNullException.ThrowIfNull(proposals);
        if (referenceBoxes.Count != proposals.Count)
            throw new ArgumentException($"BoxCoder.Encode: {referenceBoxes.Count} reference box sets but {proposals.Count} proposal sets", nameof(proposals));
        if (referenceBoxes.Count == 0) return [];
        var counts = referenceBoxes.Select(b => b.Size(0)).ToArray();
        using var scope = new TensorScope();
        var targets = EncodeSingle(Tensor.Cat(referenceBoxes.ToArray()), Tensor.Cat(proposals.ToArray()));
        var parts = targets.Split(counts, 0).Select(p => p.Contiguous()).ToArray();
        foreach (var p in parts) scope.MoveOut(p);
        return parts;
    }

    /// <summary>
    /// The regression targets [N, 4] of <paramref name="referenceBoxes"/> (the ground truth) relative to
    /// <paramref name="proposals"/>: (wx (gx - px) / pw, wy (gy - py) / ph, ww log(gw / pw), wh log(gh / ph)) with centres g, p.
    /// </summary>
    public Tensor EncodeSingle(Tensor referenceBoxes, Tensor proposals)
    {
        CheckBoxes(referenceBoxes, nameof(referenceBoxes), "EncodeSingle");
        CheckBoxes(proposals, nameof(proposals), "EncodeSingle");
        if (referenceBoxes.Size(0) != proposals.Size(0))
            throw new ArgumentException($"BoxCoder.EncodeSingle: {referenceBoxes.Size(0)} reference boxes but {proposals.Size(0)} proposals", nameof(proposals));
        if (referenceBoxes.Device != proposals.Device)
            throw new ArgumentException($"BoxCoder.EncodeSingle: expected both on one device, got {referenceBoxes.Device} and {proposals.Device}", nameof(proposals));
        using var scope = new TensorScope();
        var p = proposals;
        var g = referenceBoxes;
        var exW = p.Select(1, 2) - p.Select(1, 0);
        var exH = p.Select(1, 3) - p.Select(1, 1);
        var exX = p.Select(1, 0) + 0.5 * exW;
        var exY = p.Select(1, 1) + 0.5 * exH;
        var gtW = g.Select(1, 2) - g.Select(1, 0);
        var gtH = g.Select(1, 3) - g.Select(1, 1);
        var gtX = g.Select(1, 0) + 0.5 * gtW;
        var gtY = g.Select(1, 1) + 0.5 * gtH;
        var dx = Weights.X * (gtX - exX) / exW;
        var dy = Weights.Y * (gtY - exY) / exH;
        var dw = Weights.W * (gtW / exW).Log();
        var dh = Weights.H * (gtH / exH).Log();
        return scope.MoveOut(Tensor.Stack([dx, dy, dw, dh], 1).To(referenceBoxes.DType));
    }

    /// <summary>
    /// Decodes <paramref name="relCodes"/> against the concatenated per-image <paramref name="boxes"/>:
    /// [total, K, 4] for codes of K boxes per reference box.
    /// </summary>
    public Tensor Decode(Tensor relCodes, IReadOnlyList<Tensor> boxes)
    {
        ArgumentNullException.ThrowIfNull(relCodes);
        ArgumentNullException.ThrowIfNull(boxes);
        if (boxes.Count == 0) throw new ArgumentException("BoxCoder.Decode: needs at least one box set", nameof(boxes));
        int total = boxes.Sum(b => b.Size(0));
        using var scope = new TensorScope();
        var concat = Tensor.Cat(boxes.ToArray());
        var codes = total > 0 ? relCodes.Reshape(total, -1) : relCodes;
        var pred = DecodeSingle(codes, concat);
        if (total > 0) pred = pred.Reshape(total, -1, 4);
        return scope.MoveOut(pred);
    }

    /// <summary>
    /// Applies codes [N, 4K] (K boxes per reference box) to <paramref name="boxes"/> [N, 4]: boxes [N, 4K]
    /// in the codes' dtype.
    /// </summary>
    public Tensor DecodeSingle(Tensor relCodes, Tensor boxes)
    {
        ArgumentNullException.ThrowIfNull(relCodes);
        CheckBoxes(boxes, nameof(boxes), "DecodeSingle");
        if (relCodes.Rank != 2 || relCodes.Size(1) % 4 != 0 || relCodes.Size(0) != boxes.Size(0))
            throw new ArgumentException($"BoxCoder.DecodeSingle: relCodes must be [N, 4K] with N = {boxes.Size(0)} boxes, got {Boxes.ShapeText(relCodes)}", nameof(relCodes));
        if (!relCodes.DType.IsFloating())
            throw new ArgumentException($"BoxCoder.DecodeSingle: relCodes must be floating point, got {relCodes.DType.Name()}", nameof(relCodes));
        if (relCodes.Device != boxes.Device)
            throw new ArgumentException($"BoxCoder.DecodeSingle: expected both on one device, got {relCodes.Device} and {boxes.Device}", nameof(boxes));
        using var scope = new TensorScope();
        var b = boxes.To(relCodes.DType);
        var widths = (b.Select(1, 2) - b.Select(1, 0)).Unsqueeze(1);
        var heights = (b.Select(1, 3) - b.Select(1, 1)).Unsqueeze(1);
        var ctrX = b.Select(1, 0).Unsqueeze(1) + 0.5 * widths;
        var ctrY = b.Select(1, 1).Unsqueeze(1) + 0.5 * heights;
        int k4 = relCodes.Size(1);
        var dx = relCodes.Slice(1, 0, k4, 4) / Weights.X;
        var dy = relCodes.Slice(1, 1, k4, 4) / Weights.Y;
        var dw = (relCodes.Slice(1, 2, k4, 4) / Weights.W).Clamp(max: BboxXformClip);
        var dh = (relCodes.Slice(1, 3, k4, 4) / Weights.H).Clamp(max: BboxXformClip);
        var predX = dx * widths + ctrX;
        var predY = dy * heights + ctrY;
        var halfW = 0.5 * (dw.Exp() * widths);
        var halfH = 0.5 * (dh.Exp() * heights);
        var pred = Tensor.Stack([predX - halfW, predY - halfH, predX + halfW, predY + halfH], 2).Flatten(1);
        return scope.MoveOut(pred);
    }

    private static void CheckBoxes(Tensor boxes, string name, string op)
    {
        ArgumentNullException.ThrowIfNull(boxes, name);
        if (boxes.Rank != 2 || boxes.Size(1) != 4)
            throw new ArgumentException($"BoxCoder.{op}: {name} must be [N, 4], got {Boxes.ShapeText(boxes)}", name);
    }
}
