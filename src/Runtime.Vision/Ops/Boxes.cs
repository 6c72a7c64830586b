using Runtime.Autograd;
using Runtime.Nn.Losses;

namespace Runtime.Vision.Ops;

/// <summary>The coordinate layouts <see cref="Boxes.BoxConvert"/> converts between.</summary>
public enum BoxFormat
{
    /// <summary>Corners (x1, y1, x2, y2).</summary>
    Xyxy,

    /// <summary>Top-left corner and size (x, y, w, h).</summary>
    Xywh,

    /// <summary>Centre and size (cx, cy, w, h).</summary>
    Cxcywh,
}

/// <summary>
/// Box operators as torchvision.ops (0.14): areas, pairwise IoU and generalized IoU, the GIoU loss,
/// clipping, filtering, format conversion and non-maximum suppression. Boxes are [N, 4] tensors in
/// (x1, y1, x2, y2) unless a format says otherwise. Everything but NMS is composed of core tensor
/// operators, so it runs on any device and is differentiable where torchvision's is.
/// </summary>
public static class Boxes
{
    /// <summary>Areas (x2 - x1) * (y2 - y1) of [N, 4] boxes, [N] (integer boxes keep their integer type).</summary>
    public static Tensor BoxArea(Tensor boxes)
    {
        CheckBoxes(boxes, nameof(boxes), "BoxArea");
        using var scope = new TensorScope();
        var b = Upcast(boxes);
        var area = (b.Select(1, 2) - b.Select(1, 0)) * (b.Select(1, 3) - b.Select(1, 1));
        return scope.MoveOut(area);
    }

    /// <summary>Pairwise IoU of [N, 4] and [M, 4] boxes: [N, M] = intersection / union.</summary>
    public static Tensor BoxIou(Tensor boxes1, Tensor boxes2)
    {
        CheckPair(boxes1, boxes2, "BoxIou");
        using var scope = new TensorScope();
        var (inter, union) = InterUnion(boxes1, boxes2);
        return scope.MoveOut(inter / union);
    }

    /// <summary>
    /// Pairwise generalized IoU [N, M]: IoU - (C - union) / C with C the area of the smallest box
    /// enclosing both.
    /// </summary>
    public static Tensor GeneralizedBoxIou(Tensor boxes1, Tensor boxes2)
    {
        CheckPair(boxes1, boxes2, "GeneralizedBoxIou");
        using var scope = new TensorScope();
        var (inter, union) = InterUnion(boxes1, boxes2);
        var iou = inter / union;
        var lt = Tensor.Minimum(boxes1.Narrow(1, 0, 2).Unsqueeze(1), boxes2.Narrow(1, 0, 2).Unsqueeze(0));
        var rb = Tensor.Maximum(boxes1.Narrow(1, 2, 2).Unsqueeze(1), boxes2.Narrow(1, 2, 2).Unsqueeze(0));
        var wh = Upcast(rb - lt).Clamp(min: 0);
        var enclosing = wh.Select(2, 0) * wh.Select(2, 1);
        return scope.MoveOut(iou - (enclosing - union) / enclosing);
    }

    /// <summary>
    /// torchvision's generalized_box_iou_loss: 1 - GIoU of matching boxes ([N, 4] with [N, 4], or [4]
    /// with [4]), with <paramref name="eps"/> added to the union and the enclosing area; reduced as
    /// <paramref name="reduction"/> (the mean of no boxes is 0).
    /// </summary>
    public static Tensor GeneralizedBoxIouLoss(Tensor boxes1, Tensor boxes2, Reduction reduction = Reduction.None, double eps = 1e-7)
    {
        ArgumentNullException.ThrowIfNull(boxes1);
        ArgumentNullException.ThrowIfNull(boxes2);
        if (boxes1.Rank is < 1 or > 2 || boxes1.Size(-1) != 4)
            throw new ArgumentException($"GeneralizedBoxIouLoss: boxes1 must be [N, 4] or [4], got {ShapeText(boxes1)}", nameof(boxes1));
        if (!boxes1.Shape.SequenceEqual(boxes2.Shape))
            throw new ArgumentException($"GeneralizedBoxIouLoss: boxes2 must have the shape of boxes1 {ShapeText(boxes1)}, got {ShapeText(boxes2)}", nameof(boxes2));
        if (boxes1.Device != boxes2.Device)
            throw new ArgumentException($"GeneralizedBoxIouLoss: expected both box sets on one device, got {boxes1.Device} and {boxes2.Device}", nameof(boxes2));
        if (!Enum.IsDefined(reduction))
            throw new ArgumentOutOfRangeException(nameof(reduction), reduction, "GeneralizedBoxIouLoss: reduction must be None, Mean or Sum");
        using var scope = new TensorScope();
        var a = FloatOf(boxes1);
        var b = FloatOf(boxes2);
        int d = a.Rank - 1;
        Tensor X1(Tensor t) => t.Select(d, 0);
        Tensor Y1(Tensor t) => t.Select(d, 1);
        Tensor X2(Tensor t) => t.Select(d, 2);
        Tensor Y2(Tensor t) => t.Select(d, 3);
        var ix1 = Tensor.Maximum(X1(a), X1(b));
        var iy1 = Tensor.Maximum(Y1(a), Y1(b));
        var ix2 = Tensor.Minimum(X2(a), X2(b));
        var iy2 = Tensor.Minimum(Y2(a), Y2(b));
        // Intersection only where the boxes overlap (a zero, with zero gradient, elsewhere).
        var overlap = iy2.Gt(iy1).LogicalAnd(ix2.Gt(ix1));
        var inter = Tensor.Where(overlap, (ix2 - ix1) * (iy2 - iy1), Tensor.ZerosLike(ix1));
        var union = (X2(a) - X1(a)) * (Y2(a) - Y1(a)) + (X2(b) - X1(b)) * (Y2(b) - Y1(b)) - inter;
        var iou = inter / (union + eps);
        var cx1 = Tensor.Minimum(X1(a), X1(b));
        var cy1 = Tensor.Minimum(Y1(a), Y1(b));
        var cx2 = Tensor.Maximum(X2(a), X2(b));
        var cy2 = Tensor.Maximum(Y2(a), Y2(b));
        var enclosing = (cx2 - cx1) * (cy2 - cy1);
        var loss = 1.0 - (iou - (enclosing - union) / (enclosing + eps));
        var result = reduction switch
        {
            Reduction.Mean => loss.NumEl > 0 ? loss.Mean() : loss.Sum() * 0.0,
            Reduction.Sum => loss.Sum(),
            _ => loss,
        };
        return scope.MoveOut(result);
    }

    /// <summary>
    /// Clips boxes [..., 4] (x1, y1, x2, y2) to an image of <paramref name="size"/> (height, width):
    /// x into [0, width], y into [0, height].
    /// </summary>
    public static Tensor ClipBoxesToImage(Tensor boxes, (int Height, int Width) size)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        if (boxes.Rank < 1 || boxes.Size(-1) != 4)
            throw new ArgumentException($"ClipBoxesToImage: boxes must be [..., 4], got {ShapeText(boxes)}", nameof(boxes));
        if (size.Height < 0 || size.Width < 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, "ClipBoxesToImage: the image size must be non-negative");
        using var scope = new TensorScope();
        int d = boxes.Rank - 1;
        var xs = boxes.Slice(d, 0, 4, 2).Clamp(0, size.Width);
        var ys = boxes.Slice(d, 1, 4, 2).Clamp(0, size.Height);
        var clipped = Tensor.Stack([xs, ys], d + 1).Reshape(boxes.ShapeArray);
        return scope.MoveOut(clipped);
    }

    /// <summary>Indices (Int64 [K], ascending) of the boxes whose width and height are both at least <paramref name="minSize"/>.</summary>
    public static Tensor RemoveSmallBoxes(Tensor boxes, double minSize)
    {
        CheckBoxes(boxes, nameof(boxes), "RemoveSmallBoxes");
        using var scope = new TensorScope();
        var ws = boxes.Select(1, 2) - boxes.Select(1, 0);
        var hs = boxes.Select(1, 3) - boxes.Select(1, 1);
        var keep = ws.Ge(minSize).LogicalAnd(hs.Ge(minSize));
        var idx = keep.Nonzero().Select(1, 0).Contiguous();
        return scope.MoveOut(idx);
    }

    /// <summary>Converts boxes [..., 4] between formats (through corners, as torchvision).</summary>
    public static Tensor BoxConvert(Tensor boxes, BoxFormat inFormat, BoxFormat outFormat)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        if (boxes.Rank < 1 || boxes.Size(-1) != 4)
            throw new ArgumentException($"BoxConvert: boxes must be [..., 4], got {ShapeText(boxes)}", nameof(boxes));
        if (!Enum.IsDefined(inFormat)) throw new ArgumentOutOfRangeException(nameof(inFormat), inFormat, "BoxConvert: unknown box format");
        if (!Enum.IsDefined(outFormat)) throw new ArgumentOutOfRangeException(nameof(outFormat), outFormat, "BoxConvert: unknown box format");
        if (inFormat == outFormat) return boxes.Clone();
        using var scope = new TensorScope();
        int d = boxes.Rank - 1;
        var b = boxes;
        if (inFormat == BoxFormat.Xywh)
        {
            var (x, y, w, h) = Unbind(b, d);
            b = Tensor.Stack([x, y, x + w, y + h], d);
        }
        else if (inFormat == BoxFormat.Cxcywh)
        {
            var (cx, cy, w, h) = Unbind(b, d);
            b = Tensor.Stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], d);
        }
        if (outFormat == BoxFormat.Xywh)
        {
            var (x1, y1, x2, y2) = Unbind(b, d);
            b = Tensor.Stack([x1, y1, x2 - x1, y2 - y1], d);
        }
        else if (outFormat == BoxFormat.Cxcywh)
        {
            var (x1, y1, x2, y2) = Unbind(b, d);
            b = Tensor.Stack([(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1], d);
        }
        return scope.MoveOut(b);
    }

    /// <summary>Parses torchvision's format names ("xyxy", "xywh", "cxcywh").</summary>
    public static BoxFormat ParseFormat(string name) => name switch
    {
        "xyxy" => BoxFormat.Xyxy,
        "xywh" => BoxFormat.Xywh,
        "cxcywh" => BoxFormat.Cxcywh,
        _ => throw new ArgumentException($"unknown box format '{name}' (expected xyxy, xywh or cxcywh)", nameof(name)),
    };

    /// <summary>
    /// Non-maximum suppression: the indices (Int64 [K]) of the boxes kept, by decreasing score (ties in
    /// index order). Boxes are visited by decreasing score; a box is dropped when its IoU with an
    /// already kept box is greater than <paramref name="iouThreshold"/>.
    /// </summary>
    public static Tensor Nms(Tensor boxes, Tensor scores, double iouThreshold) => NmsCore(boxes, scores, null, iouThreshold, "Nms");

    /// <summary>
    /// NMS done independently per category <paramref name="idxs"/> (integer [N]): boxes of different
    /// categories never suppress each other. The kept indices come by decreasing score.
    /// </summary>
    public static Tensor BatchedNms(Tensor boxes, Tensor scores, Tensor idxs, double iouThreshold)
    {
        ArgumentNullException.ThrowIfNull(idxs);
        return NmsCore(boxes, scores, idxs, iouThreshold, "BatchedNms");
    }

    private static Tensor NmsCore(Tensor boxes, Tensor scores, Tensor? idxs, double iouThreshold, string op)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        ArgumentNullException.ThrowIfNull(scores);
        if (boxes.Rank != 2 || boxes.Size(1) != 4)
            throw new ArgumentException($"{op}: boxes must be [N, 4], got {ShapeText(boxes)}", nameof(boxes));
        if (!boxes.DType.IsFloating())
            throw new ArgumentException($"{op}: boxes must be floating point, got {boxes.DType.Name()}", nameof(boxes));
        if (scores.Rank != 1 || scores.Size(0) != boxes.Size(0))
            throw new ArgumentException($"{op}: scores must be [N] with N = {boxes.Size(0)} boxes, got {ShapeText(scores)}", nameof(scores));
        if (!scores.DType.IsFloating())
            throw new ArgumentException($"{op}: scores must be floating point, got {scores.DType.Name()}", nameof(scores));
        if (scores.Device != boxes.Device)
            throw new ArgumentException($"{op}: expected boxes and scores on one device, got {boxes.Device} and {scores.Device}", nameof(scores));
        if (idxs is not null)
        {
            if (idxs.Rank != 1 || idxs.Size(0) != boxes.Size(0))
                throw new ArgumentException($"{op}: idxs must be [N] with N = {boxes.Size(0)} boxes, got {ShapeText(idxs)}", nameof(idxs));
            if (idxs.DType is not (DType.Int64 or DType.Int32))
                throw new ArgumentException($"{op}: idxs must be an integer tensor, got {idxs.DType.Name()}", nameof(idxs));
            if (idxs.Device != boxes.Device)
                throw new ArgumentException($"{op}: expected boxes and idxs on one device, got {boxes.Device} and {idxs.Device}", nameof(idxs));
        }
        int n = boxes.Size(0);
        using var noGrad = GradMode.NoGrad();
        if (n == 0) return Tensor.Zeros([0], DType.Int64, boxes.Device);
        using var scope = new TensorScope();
        var (_, order) = scores.Detach().Sort(0, descending: true);
        var sorted = boxes.Detach().IndexSelect(0, order).Contiguous();
        Tensor? classes = idxs is null ? null : idxs.IndexSelect(0, order).To(DType.Int64).Contiguous();
        var keep = Tensor.Empty([n], DType.Int64, boxes.Device);
        long count = sorted.Backend.Nms(sorted.KernelView, classes?.KernelView, keep.KernelView, iouThreshold);
        var kept = order.IndexSelect(0, keep.Narrow(0, 0, (int)count));
        return scope.MoveOut(kept);
    }

    // ---------------- helpers ----------------

    private static (Tensor Inter, Tensor Union) InterUnion(Tensor boxes1, Tensor boxes2)
    {
        var area1 = BoxArea(boxes1);
        var area2 = BoxArea(boxes2);
        var lt = Tensor.Maximum(boxes1.Narrow(1, 0, 2).Unsqueeze(1), boxes2.Narrow(1, 0, 2).Unsqueeze(0));
        var rb = Tensor.Minimum(boxes1.Narrow(1, 2, 2).Unsqueeze(1), boxes2.Narrow(1, 2, 2).Unsqueeze(0));
        var wh = Upcast(rb - lt).Clamp(min: 0);
        var inter = wh.Select(2, 0) * wh.Select(2, 1);
        var union = area1.Unsqueeze(1) + area2.Unsqueeze(0) - inter;
        return (inter, union);
    }

    private static (Tensor, Tensor, Tensor, Tensor) Unbind(Tensor t, int dim) =>
        (t.Select(dim, 0), t.Select(dim, 1), t.Select(dim, 2), t.Select(dim, 3));

    // torchvision's _upcast: every supported dtype is already Float32/Float64 or Int32/Int64, except Bool.
    private static Tensor Upcast(Tensor t) => t.DType == DType.Bool ? t.To(DType.Int32) : t;

    // torchvision's _upcast_non_float: anything but Float32/Float64 becomes Float32.
    private static Tensor FloatOf(Tensor t) => t.DType.IsFloating() ? t : t.To(DType.Float32);

    private static void CheckBoxes(Tensor boxes, string name, string op)
    {
        ArgumentNullException.ThrowIfNull(boxes, name);
        if (boxes.Rank != 2 || boxes.Size(1) != 4)
            throw new ArgumentException($"{op}: {name} must be [N, 4], got {ShapeText(boxes)}", name);
    }

    private static void CheckPair(Tensor boxes1, Tensor boxes2, string op)
    {
        CheckBoxes(boxes1, nameof(boxes1), op);
        CheckBoxes(boxes2, nameof(boxes2), op);
        if (boxes1.Device != boxes2.Device)
            throw new ArgumentException($"{op}: expected both box sets on one device, got {boxes1.Device} and {boxes2.Device}", nameof(boxes2));
    }

    internal static string ShapeText(Tensor t) => "[" + string.Join(", ", t.Shape.ToArray()) + "]";
}
