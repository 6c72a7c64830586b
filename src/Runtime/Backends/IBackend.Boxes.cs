namespace Runtime.Backends;

// Box kernels (non-maximum suppression). The front-end has sorted the boxes by decreasing score
// (stable) and checked dtypes and shapes; every view here is contiguous.
public partial interface IBackend
{
    /// <summary>
    /// Greedy non-maximum suppression over <paramref name="boxes"/> [N, 4] (x1, y1, x2, y2; Float32 or
    /// Float64), already in decreasing-score order: box i is kept unless a kept box j &lt; i of the same
    /// class has IoU(i, j) &gt; <paramref name="iouThreshold"/>. IoU is computed in the element type as
    /// <c>inter / (area_j + area_i - inter)</c> with <c>inter = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1))</c>
    /// and <c>area = (x2 - x1) * (y2 - y1)</c> (no fused multiply-adds), so every backend keeps the same set;
    /// a NaN IoU (0/0 for two empty boxes) never suppresses.
    /// <paramref name="classes"/>: null (one class) or Int64 [N]; boxes of different classes never suppress
    /// each other. Writes the kept positions, ascending, into <paramref name="keep"/> (Int64 [N]) and returns
    /// their count; entries past the count are left undefined. Waits for the device (the count is read back).
    /// </summary>
    long Nms(TensorView boxes, TensorView? classes, TensorView keep, double iouThreshold);
}

/// <summary>Helpers shared by the NMS kernels of every backend.</summary>
public static class NmsThreshold
{
    /// <summary>
    /// The Float32 threshold that decides exactly as the double one: for a float IoU x,
    /// <c>x &gt; t</c> (compared in double) holds iff <c>x &gt; Below(t)</c>, the largest float not above t.
    /// </summary>
    public static float Below(double t)
    {
        float f = (float)t;
        if (!double.IsNaN(t) && f > t) f = MathF.BitDecrement(f);
        return f;
    }
}
