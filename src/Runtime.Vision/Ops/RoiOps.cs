using System.Globalization;
using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime.Vision.Ops;

/// <summary>
/// Region-of-interest pooling as torchvision.ops (0.14): <see cref="RoiAlign(Tensor, Tensor, ValueTuple{int, int}, double, int, bool)"/>
/// (Mask R-CNN's bilinear RoIAlign) and <see cref="RoiPool(Tensor, Tensor, ValueTuple{int, int}, double)"/>
/// (Fast R-CNN's max pooling over rounded bins). Rois are [K, 5] rows (batch index, x1, y1, x2, y2) in
/// input-image coordinates, scaled to the feature map by spatialScale; or a list of per-image [Ki, 4]
/// boxes. The gradient flows to the features only (rois are not differentiable, as in torchvision).
/// </summary>
public static class RoiOps
{
    /// <summary>
    /// RoIAlign: each roi's box, divided into outputSize bins, is sampled on a grid of samplingRatio x
    /// samplingRatio points per bin (samplingRatio &lt;= 0: ceil(roi size / bins) per axis, per roi) by
    /// bilinear interpolation, and the samples of a bin are averaged. aligned shifts the box by half a
    /// pixel (the pixel-exact variant); otherwise boxes smaller than a pixel are grown to one pixel.
    /// </summary>
    /// <returns>[K, C, outputSize.H, outputSize.W].</returns>
    public static Tensor RoiAlign(Tensor input, Tensor rois, (int H, int W) outputSize, double spatialScale = 1.0, int samplingRatio = -1, bool aligned = false)
    {
        var g = Check("RoiAlign", input, rois, outputSize, spatialScale, samplingRatio, aligned);
        int[] inShape = input.ShapeArray;
        int k = rois.Shape[0], c = inShape[1];
        using var x = Untracked(input);
        using var r = Untracked(rois);
        var y = Tensor.Empty([k, c, g.PooledH, g.PooledW], input.DType, input.Device);
        if (y.NumEl > 0)
        {
            if (inShape[2] > 0 && inShape[3] > 0) x.Backend.RoiAlign(x.KernelView, r.KernelView, y.KernelView, g);
            else y.Fill_(0);
        }
        var result = Tensor.Record(y, "RoiAlign", [input], [r], (gy, s) =>
        {
            if (gy.NumEl == 0 || inShape[2] == 0 || inShape[3] == 0) return [Tensor.Zeros(inShape, gy.DType, gy.Device)];
            var gx = Tensor.Empty(inShape, gy.DType, gy.Device);
            using var gc = Untracked(gy);
            gy.Backend.RoiAlignBackward(gc.KernelView, s[0].KernelView, gx.KernelView, g);
            return [gx];
        });
        return result;
    }

    /// <summary>RoIAlign over per-image boxes: boxes[i] is [Ki, 4] (x1, y1, x2, y2) of image i (torchvision's list form).</summary>
    public static Tensor RoiAlign(Tensor input, IReadOnlyList<Tensor> boxes, (int H, int W) outputSize, double spatialScale = 1.0, int samplingRatio = -1, bool aligned = false)
    {
        using var rois = ConvertBoxesToRoiFormat(boxes);
        return RoiAlign(input, rois, outputSize, spatialScale, samplingRatio, aligned);
    }

    /// <summary>
    /// RoIPool: each roi is rounded to whole pixels (at least one), cut into outputSize bins by
    /// floor/ceil of the bin edges, and each bin takes the maximum (0 for a bin that misses the map).
    /// </summary>
    /// <returns>[K, C, outputSize.H, outputSize.W].</returns>
    public static Tensor RoiPool(Tensor input, Tensor rois, (int H, int W) outputSize, double spatialScale = 1.0)
    {
        var (values, argmax) = RoiPoolWithArgmax(input, rois, outputSize, spatialScale);
        argmax.Dispose();
        return values;
    }

    /// <summary>RoIPool over per-image boxes: boxes[i] is [Ki, 4] (x1, y1, x2, y2) of image i.</summary>
    public static Tensor RoiPool(Tensor input, IReadOnlyList<Tensor> boxes, (int H, int W) outputSize, double spatialScale = 1.0)
    {
        using var rois = ConvertBoxesToRoiFormat(boxes);
        return RoiPool(input, rois, outputSize, spatialScale);
    }

    /// <summary>RoIPool that also returns the Int32 position h*W + w of each bin's maximum in its plane (-1 for an empty bin).</summary>
    public static (Tensor Values, Tensor Argmax) RoiPoolWithArgmax(Tensor input, Tensor rois, (int H, int W) outputSize, double spatialScale = 1.0)
    {
        var g = Check("RoiPool", input, rois, outputSize, spatialScale, 0, false);
        int[] inShape = input.ShapeArray;
        int k = rois.Shape[0], c = inShape[1];
        using var x = Untracked(input);
        using var r = Untracked(rois);
        var y = Tensor.Empty([k, c, g.PooledH, g.PooledW], input.DType, input.Device);
        var argmax = Tensor.Empty([k, c, g.PooledH, g.PooledW], DType.Int32, input.Device);
        if (y.NumEl > 0)
        {
            if (inShape[2] > 0 && inShape[3] > 0) x.Backend.RoiPool(x.KernelView, r.KernelView, y.KernelView, argmax.KernelView, g);
            else
            {
                y.Fill_(0);
                argmax.Fill_(-1);
            }
        }
        var result = Tensor.Record(y, "RoiPool", [input], [r, argmax], (gy, s) =>
        {
            if (gy.NumEl == 0 || inShape[2] == 0 || inShape[3] == 0) return [Tensor.Zeros(inShape, gy.DType, gy.Device)];
            var gx = Tensor.Empty(inShape, gy.DType, gy.Device);
            using var gc = Untracked(gy);
            gy.Backend.RoiPoolBackward(gc.KernelView, s[0].KernelView, s[1].KernelView, gx.KernelView, g);
            return [gx];
        });
        return (result, argmax);
    }

    /// <summary>
    /// Modulated deformable RoI pooling (DCNv2, Zhu et al. 2018, section 3; mmcv's <c>deform_roi_pool</c>, with the
    /// modulation that mmcv's <c>ModulatedDeformRoIPoolPack</c> multiplies afterwards done in the op): RoIAlign's bins
    /// and bilinear samples, bin (i, j) moved by <c>(gamma * roiW * offset[k, 0, i, j], gamma * roiH * offset[k, 1, i, j])</c>
    /// (normalised offsets, x first; roiW, roiH the roi's size on the map) and its mean multiplied by
    /// <c>mask[k, 0, i, j]</c>. <paramref name="aligned"/> (mmcv: always) shifts the box by half a pixel; otherwise it is
    /// grown to at least one pixel, as RoIAlign. Without offset and mask this is RoIAlign.
    /// Gradients flow to input, offset and mask (the offset's is the true slope of the bilinear read: zero along an axis
    /// where the position is clamped to the map, unlike mmcv's kernel, whose formula uses the unclamped position there).
    /// </summary>
    /// <param name="offset">[K, 2, outputSize.H, outputSize.W] or null (no shift).</param>
    /// <param name="mask">[K, 1, outputSize.H, outputSize.W] (used as given: apply the sigmoid before) or null (1).</param>
    /// <returns>[K, C, outputSize.H, outputSize.W].</returns>
    public static Tensor DeformRoiPool(Tensor input, Tensor rois, Tensor? offset, Tensor? mask, (int H, int W) outputSize, double spatialScale = 1.0,
        int samplingRatio = 0, double gamma = 0.1, bool aligned = true)
    {
        const string op = "DeformRoiPool";
        var rg = Check(op, input, rois, outputSize, spatialScale, samplingRatio, aligned);
        int k = rois.Shape[0], c = input.Shape[1];
        if (!double.IsFinite(gamma))
            throw new ArgumentOutOfRangeException(nameof(gamma), gamma, $"{op}: gamma must be finite");
        void Extra(Tensor? t, string name, int channels)
        {
            if (t is null) return;
            if (t.DType != input.DType || t.Device != input.Device)
                throw new ArgumentException($"{op}: {name} is {t.DType.Name()} on {t.Device} but input is {input.DType.Name()} on {input.Device}", name);
            if (t.Rank != 4 || t.Shape[0] != k || t.Shape[1] != channels || t.Shape[2] != rg.PooledH || t.Shape[3] != rg.PooledW)
                throw new ArgumentException($"{op}: {name} must be [{k}, {channels}, {rg.PooledH}, {rg.PooledW}] (rois, {channels}, output size), got {Shapes.Format(t.Shape)}", name);
        }
        Extra(offset, nameof(offset), 2);
        Extra(mask, nameof(mask), 1);
        var g = new DeformRoiGeometry(rg, gamma);
        int[] inShape = input.ShapeArray;
        bool empty = inShape[2] == 0 || inShape[3] == 0;
        using var x = Untracked(input);
        using var r = Untracked(rois);
        using var o = offset is null ? null : Untracked(offset);
        using var m = mask is null ? null : Untracked(mask);
        var y = Tensor.Empty([k, c, rg.PooledH, rg.PooledW], input.DType, input.Device);
        if (y.NumEl > 0)
        {
            if (!empty) x.Backend.DeformRoiPool(x.KernelView, r.KernelView, o?.KernelView, m?.KernelView, y.KernelView, g);
            else y.Fill_(0);
        }
        bool needX = input.RequiresGrad, needO = offset is not null && offset.RequiresGrad, needM = mask is not null && mask.RequiresGrad;
        var inputs = new List<Tensor> { input };
        if (offset is not null) inputs.Add(offset);
        if (mask is not null) inputs.Add(mask);
        var saved = new List<Tensor> { x, r };
        if (o is not null) saved.Add(o);
        if (m is not null) saved.Add(m);
        int[]? oShape = offset?.ShapeArray, mShape = mask?.ShapeArray;
        return Tensor.Record(y, op, inputs.ToArray(), saved.ToArray(), (gy, s) =>
        {
            var so = o is null ? (TensorView?)null : s[2].KernelView;
            var sm = m is null ? (TensorView?)null : s[o is null ? 2 : 3].KernelView;
            using var gc = Untracked(gy);
            var be = gc.Backend;
            Tensor? gx = null, gOff = null, gMask = null;
            if (needX)
            {
                gx = Tensor.Empty(inShape, gy.DType, gy.Device);
                if (gy.NumEl == 0 || empty) gx.Fill_(0);
                else be.DeformRoiPoolBackward(gc.KernelView, s[1].KernelView, so, sm, gx.KernelView, g);
            }
            if (needO) gOff = Tensor.Empty(oShape!, gy.DType, gy.Device);
            if (needM) gMask = Tensor.Empty(mShape!, gy.DType, gy.Device);
            if (gOff is not null || gMask is not null)
            {
                if (gy.NumEl == 0 || empty)
                {
                    gOff?.Fill_(0);
                    gMask?.Fill_(0);
                }
                else be.DeformRoiPoolBackwardCoord(gc.KernelView, s[0].KernelView, s[1].KernelView, so, sm, gOff?.KernelView, gMask?.KernelView, g);
            }
            var grads = new List<Tensor?> { gx };
            if (o is not null) grads.Add(gOff);
            if (m is not null) grads.Add(gMask);
            return grads.ToArray();
        });
    }

    /// <summary>
    /// torchvision's convert_boxes_to_roi_format: the per-image [Ki, 4] boxes stacked into [sum Ki, 5]
    /// rows with the image index in front.
    /// </summary>
    public static Tensor ConvertBoxesToRoiFormat(IReadOnlyList<Tensor> boxes)
    {
        ArgumentNullException.ThrowIfNull(boxes);
        if (boxes.Count == 0) throw new ArgumentException("the list of per-image boxes is empty", nameof(boxes));
        var first = boxes[0];
        for (int i = 0; i < boxes.Count; i++)
        {
            var b = boxes[i] ?? throw new ArgumentNullException(nameof(boxes), $"boxes[{i}] is null");
            if (b.Rank != 2 || b.Shape[1] != 4)
                throw new ArgumentException($"boxes[{i}] must be [K, 4] (x1, y1, x2, y2), got shape {Shapes.Format(b.Shape)}", nameof(boxes));
            if (b.DType != first.DType || b.Device != first.Device)
                throw new ArgumentException($"boxes[{i}] is {b.DType.Name()} on {b.Device}, boxes[0] is {first.DType.Name()} on {first.Device}; all must match", nameof(boxes));
        }
        using var scope = new TensorScope();
        var parts = new List<Tensor>();
        for (int i = 0; i < boxes.Count; i++)
        {
            var ids = Tensor.Full([boxes[i].Shape[0], 1], i, first.DType, first.Device);
            parts.Add(Tensor.Cat([ids, boxes[i]], 1));
        }
        return scope.MoveOut(Tensor.Cat(parts, 0));
    }

    /// <summary>The same tensor, contiguous, outside autograd and outside any open scope (dispose it).</summary>
    private static Tensor Untracked(Tensor t)
    {
        using var _ = GradMode.NoGrad();
        return t.Contiguous().Unscoped();
    }

    /// <summary>Validates the arguments of RoiAlign / RoiPool (reading the rois back to check batch indices) and returns the kernel geometry.</summary>
    private static RoiGeometry Check(string op, Tensor input, Tensor rois, (int H, int W) outputSize, double spatialScale, int samplingRatio, bool aligned)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(rois);
        if (input.Rank != 4)
            throw new ArgumentException($"{op}: input must be [N, C, H, W], got shape {Shapes.Format(input.Shape)}", nameof(input));
        if (input.DType is not (DType.Float32 or DType.Float64))
            throw new ArgumentException($"{op}: input must be float32 or float64, got {input.DType.Name()}", nameof(input));
        if (rois.Rank != 2 || rois.Shape[1] != 5)
            throw new ArgumentException($"{op}: rois must be [K, 5] (batch index, x1, y1, x2, y2), got shape {Shapes.Format(rois.Shape)}", nameof(rois));
        if (rois.DType != input.DType)
            throw new ArgumentException($"{op}: rois are {rois.DType.Name()} but input is {input.DType.Name()}; they must have the same dtype", nameof(rois));
        if (rois.Device != input.Device)
            throw new ArgumentException($"{op}: rois are on {rois.Device} but input is on {input.Device}", nameof(rois));
        if (outputSize.H < 1 || outputSize.W < 1)
            throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, $"{op}: output size must be positive, got ({outputSize.H}, {outputSize.W})");
        if (!(spatialScale > 0) || double.IsInfinity(spatialScale))
            throw new ArgumentOutOfRangeException(nameof(spatialScale), spatialScale, $"{op}: spatial scale must be positive and finite, got {spatialScale}");
        int n = input.Shape[0];
        double[] values = rois.DType == DType.Float32 ? rois.ToArray<float>().Select(v => (double)v).ToArray() : rois.ToArray<double>();
        for (int i = 0; i < values.Length / 5; i++)
        {
            double b = values[i * 5];
            if (!(b >= 0 && b < n) || b != Math.Floor(b))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"{op}: rois[{i}, 0] = {b} is not a batch index of input with N = {n} (must be a whole number in [0, {n}))"), nameof(rois));
            for (int j = 1; j < 5; j++)
                if (!double.IsFinite(values[i * 5 + j]))
                    throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{op}: rois[{i}, {j}] = {values[i * 5 + j]} is not finite"), nameof(rois));
        }
        return new RoiGeometry(outputSize.H, outputSize.W, spatialScale, samplingRatio, aligned);
    }
}
