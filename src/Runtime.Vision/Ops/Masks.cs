using Runtime.Autograd;
using Runtime.Vision.Evaluation;

namespace Runtime.Vision.Ops;

/// <summary>
/// Instance-mask helpers: pasting Mask R-CNN's per-box masks into the image (torchvision's
/// <c>paste_masks_in_image</c>), mask IoU, and bridges between mask tensors, COCO polygons and
/// COCO run-length encodings (<see cref="Rle"/>).
/// </summary>
public static class Masks
{
    /// <summary>
    /// Pastes each box's mask into an image-sized plane, as torchvision 0.14's
    /// <c>paste_masks_in_image</c>: the masks get a zero border of <paramref name="padding"/> pixels and
    /// the boxes are widened about their centres by the same factor <c>(M + 2*padding) / M</c> (M the
    /// mask width), then truncated to integers; each mask is resized bilinearly (align_corners=False)
    /// to the integer box's <c>(x2 - x1 + 1) x (y2 - y1 + 1)</c> pixels (at least 1 x 1) and written
    /// into a zero plane at the box's corner, cut at the image border.
    /// </summary>
    /// <param name="masks">[N, 1, Mh, M] or [N, Mh, M] floating mask probabilities.</param>
    /// <param name="boxes">[N, 4] boxes (x1, y1, x2, y2) in image pixels, any dtype (read on the host).</param>
    /// <param name="imageSize">The image's (height, width).</param>
    /// <param name="padding">Border added to the masks (torchvision's default 1).</param>
    /// <returns>[N, 1, H, W] of the masks' dtype, on the masks' device.</returns>
    /// <remarks>
    /// The box arithmetic is done as torch does it for the boxes' dtype (float32 unless the boxes are
    /// float64). Boxes lying wholly outside the image give zero planes (torchvision raises a shape
    /// error for some of them). Not differentiable (inference post-processing).
    /// </remarks>
    public static Tensor PasteMasksInImage(Tensor masks, Tensor boxes, (int Height, int Width) imageSize, int padding = 1)
    {
        ArgumentNullException.ThrowIfNull(masks);
        ArgumentNullException.ThrowIfNull(boxes);
        if (masks.Rank is not (3 or 4) || (masks.Rank == 4 && masks.Shape[1] != 1))
            throw new ArgumentException($"PasteMasksInImage: masks must be [N, 1, M, M] or [N, M, M], got shape {Shapes.Format(masks.Shape)}", nameof(masks));
        if (!masks.DType.IsFloating())
            throw new ArgumentException($"PasteMasksInImage: masks must be floating, got {masks.DType.Name()}", nameof(masks));
        int n = masks.Shape[0];
        if (boxes.Rank != 2 || boxes.Shape[1] != 4 || boxes.Shape[0] != n)
            throw new ArgumentException($"PasteMasksInImage: boxes must be [N, 4] with N = {n} (masks {Shapes.Format(masks.Shape)}), got shape {Shapes.Format(boxes.Shape)}", nameof(boxes));
        var (imH, imW) = imageSize;
        if (imH < 0 || imW < 0)
            throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "PasteMasksInImage: the image size must be non-negative");
        if (padding < 0)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, "PasteMasksInImage: padding must be non-negative");
        int mw = masks.Shape[^1];
        if (n > 0 && (mw == 0 || masks.Shape[^2] == 0))
            throw new ArgumentException($"PasteMasksInImage: masks must not be empty, got shape {Shapes.Format(masks.Shape)}", nameof(masks));

        using var noGrad = GradMode.NoGrad();
        var result = Tensor.Zeros([n, 1, imH, imW], masks.DType, masks.Device);
        if (n == 0 || imH == 0 || imW == 0) return result;

        long[] ib = ExpandBoxes(boxes, (double)(mw + 2 * padding) / mw);
        using var m4 = masks.Rank == 3 ? masks.Unsqueeze(1) : masks.Alias(register: true);
        using var padded = padding > 0 ? m4.Pad([padding, padding, padding, padding]) : m4.Alias(register: true);
        for (int k = 0; k < n; k++)
        {
            long b0 = ib[4 * k], b1 = ib[4 * k + 1], b2 = ib[4 * k + 2], b3 = ib[4 * k + 3];
            long x0 = Math.Max(b0, 0), x1 = Math.Min(b2 + 1, imW);
            long y0 = Math.Max(b1, 0), y1 = Math.Min(b3 + 1, imH);
            if (x1 <= x0 || y1 <= y0) continue; // nothing of this box lies in the image
            // Non-empty overlap implies b2 >= b0 and b3 >= b1, so the sizes need no clamping here
            // (torchvision's max(..., 1) only matters for boxes that paste nothing).
            int w = checked((int)(b2 - b0 + 1)), h = checked((int)(b3 - b1 + 1));
            using var plane = padded.Select(0, k);                                   // [1, Mp, Mp]
            using var resized = plane.Interpolate((h, w), InterpolationMode.Bilinear, alignCorners: false);
            using var srcRows = resized.Narrow(1, y0 - b1, (int)(y1 - y0));
            using var src = srcRows.Narrow(2, x0 - b0, (int)(x1 - x0));
            using var dstImage = result.Select(0, k);                                 // [1, H, W]
            using var dstRows = dstImage.Narrow(1, y0, (int)(y1 - y0));
            using var dst = dstRows.Narrow(2, x0, (int)(x1 - x0));
            dst.CopyFrom(src);
        }
        return result;
    }

    /// <summary>
    /// torchvision's <c>expand_boxes(boxes, scale).to(int64)</c> on the host, in the boxes' float type
    /// (float64 boxes in double, everything else in float as torch's float32 tensors compute it).
    /// </summary>
    internal static long[] ExpandBoxes(Tensor boxes, double scale)
    {
        double[] b = boxes.ToDoubleArray();
        int n = b.Length / 4;
        var o = new long[b.Length];
        if (boxes.DType == DType.Float64)
        {
            for (int k = 0; k < n; k++)
            {
                double wHalf = (b[4 * k + 2] - b[4 * k]) * 0.5 * scale;
                double hHalf = (b[4 * k + 3] - b[4 * k + 1]) * 0.5 * scale;
                double xc = (b[4 * k + 2] + b[4 * k]) * 0.5, yc = (b[4 * k + 3] + b[4 * k + 1]) * 0.5;
                o[4 * k] = ToInt64(xc - wHalf);
                o[4 * k + 1] = ToInt64(yc - hHalf);
                o[4 * k + 2] = ToInt64(xc + wHalf);
                o[4 * k + 3] = ToInt64(yc + hHalf);
            }
        }
        else
        {
            float s = (float)scale;
            for (int k = 0; k < n; k++)
            {
                float bx0 = (float)b[4 * k], by0 = (float)b[4 * k + 1], bx1 = (float)b[4 * k + 2], by1 = (float)b[4 * k + 3];
                float wHalf = (bx1 - bx0) * 0.5f;
                float hHalf = (by1 - by0) * 0.5f;
                wHalf *= s;
                hHalf *= s;
                float xc = (bx1 + bx0) * 0.5f, yc = (by1 + by0) * 0.5f;
                o[4 * k] = ToInt64(xc - wHalf);
                o[4 * k + 1] = ToInt64(yc - hHalf);
                o[4 * k + 2] = ToInt64(xc + wHalf);
                o[4 * k + 3] = ToInt64(yc + hHalf);
            }
        }
        return o;
    }

    private static long ToInt64(double x)
    {
        if (!double.IsFinite(x) || Math.Abs(x) > 1e15)
            throw new ArgumentException($"PasteMasksInImage: box coordinate {x} is not a finite pixel position", "boxes");
        return (long)x; // truncation toward zero, as tensor.to(torch.int64)
    }

    /// <summary>
    /// IoU between every mask of <paramref name="a"/> [N, H, W] and every mask of <paramref name="b"/>
    /// [M, H, W] (any dtype; nonzero is foreground): [N, M] float32 on their device. Two empty masks have
    /// IoU 0. Counts are exact while a mask has fewer than 2^24 pixels.
    /// </summary>
    public static Tensor MaskIou(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Rank != 3) throw new ArgumentException($"MaskIou: a must be [N, H, W], got shape {Shapes.Format(a.Shape)}", nameof(a));
        if (b.Rank != 3) throw new ArgumentException($"MaskIou: b must be [M, H, W], got shape {Shapes.Format(b.Shape)}", nameof(b));
        if (a.Shape[1] != b.Shape[1] || a.Shape[2] != b.Shape[2])
            throw new ArgumentException($"MaskIou: masks must have one size, got a {Shapes.Format(a.Shape)} and b {Shapes.Format(b.Shape)}", nameof(b));
        if (a.Device != b.Device)
            throw new ArgumentException($"MaskIou: a is on {a.Device}, b on {b.Device}", nameof(b));
        int n = a.Shape[0], m = b.Shape[0], hw = a.Shape[1] * a.Shape[2];
        using var noGrad = GradMode.NoGrad();
        if (n == 0 || m == 0 || hw == 0) return Tensor.Zeros([n, m], DType.Float32, a.Device);
        using var fa = Binary(a, n, hw);
        using var fb = Binary(b, m, hw);
        using var fbT = fb.Transpose(0, 1);
        using var inter = fa.MatMul(fbT);                     // [N, M]
        using var areaA = fa.Sum(1, keepDim: true);           // [N, 1]
        using var areaB0 = fb.Sum(1);                         // [M]
        using var areaB = areaB0.Unsqueeze(0);                // [1, M]
        using var sum = areaA + areaB;
        using var union = sum - inter;
        using var safe = union.Maximum(1.0);                  // union 0 only when inter is 0 too
        return inter / safe;
    }

    private static Tensor Binary(Tensor x, int count, int hw)
    {
        using var flat = x.Reshape(count, hw);
        using var nz = flat.Ne(0);
        return nz.To(DType.Float32);
    }

    /// <summary>
    /// Rasterises a COCO polygon segmentation (a list of polygons <c>[x0, y0, x1, y1, ...]</c>, merged as
    /// a union) exactly as pycocotools does, into a Bool [H, W] tensor.
    /// </summary>
    public static Tensor RasterizePolygons(IReadOnlyList<double[]> polygons, int height, int width, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(polygons);
        if (height < 0) throw new ArgumentOutOfRangeException(nameof(height), height, "RasterizePolygons: height must be non-negative");
        if (width < 0) throw new ArgumentOutOfRangeException(nameof(width), width, "RasterizePolygons: width must be non-negative");
        return FromRle(Rle.FromPolygons(polygons, height, width), device);
    }

    /// <summary>The COCO RLE of a [H, W] mask tensor (any dtype; nonzero is foreground; any device).</summary>
    public static Rle ToRle(Tensor mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        if (mask.Rank != 2) throw new ArgumentException($"ToRle: the mask must be [H, W], got shape {Shapes.Format(mask.Shape)}", nameof(mask));
        int h = mask.Shape[0], w = mask.Shape[1];
        byte[] bytes;
        using (GradMode.NoGrad())
        {
            if (mask.DType == DType.Bool) bytes = mask.ToArray<byte>();
            else
            {
                using var nz = mask.Ne(0);
                bytes = nz.ToArray<byte>();
            }
        }
        return Rle.EncodeRowMajor(bytes, h, w);
    }

    /// <summary>A Bool [H, W] tensor of an RLE mask, on <paramref name="device"/> (default: the default device).</summary>
    public static Tensor FromRle(Rle rle, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(rle);
        return Tensor.From<byte>(rle.DecodeRowMajor(), [rle.Height, rle.Width], device);
    }
}
