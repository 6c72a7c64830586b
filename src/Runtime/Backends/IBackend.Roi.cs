namespace Runtime.Backends;

/// <summary>
/// The pooling grid of RoIAlign / RoIPool: output bins per roi, the factor from roi coordinates to
/// feature-map pixels, samples per bin axis for RoIAlign (0: adaptive, ceil(roi size / bins) per roi)
/// and whether RoIAlign shifts coordinates by half a pixel (aligned).
/// </summary>
public readonly record struct RoiGeometry(int PooledH, int PooledW, double SpatialScale, int SamplingRatio, bool Aligned);

/// <summary>
/// The grid of modulated deformable RoI pooling (DCNv2 section 3; mmcv's deform_roi_pool): RoIAlign's grid
/// (<see cref="Roi"/>; mmcv's own op is always <c>Aligned</c>) whose bin (i, j) moves by
/// <c>(Gamma * roiW * offset[k, 0, i, j], Gamma * roiH * offset[k, 1, i, j])</c> (x first, as mmcv), roiW / roiH the
/// roi's size on the feature map (at least 1 when not aligned, as RoIAlign).
/// </summary>
public readonly record struct DeformRoiGeometry(RoiGeometry Roi, double Gamma);

// Region-of-interest pooling (torchvision 0.14 roi_align / roi_pool kernels). Features are contiguous
// [N, C, H, W], rois contiguous [K, 5] rows (batch index, x1, y1, x2, y2) in the features' dtype
// (Float32 or Float64), outputs [K, C, PooledH, PooledW]. Everything is validated by the front-end
// (batch indices are whole numbers in [0, N)); a roi whose batch index is out of range anyway gives
// zeros and feeds no gradient. Outputs and input gradients are fresh buffers written completely, and
// the backward passes are deterministic (same bits on every run).
public partial interface IBackend
{
    /// <summary>
    /// y[k, c, i, j] = mean over the bin's sampling grid of the bilinear read of x[batch(k), c] (samples
    /// outside [-1, H] x [-1, W] read 0), as torchvision's roi_align.
    /// </summary>
    void RoiAlign(TensorView x, TensorView rois, TensorView y, RoiGeometry geometry);

    /// <summary>The gradient of <see cref="RoiAlign"/>: each sample's gradient / count spread over its four corners.</summary>
    void RoiAlignBackward(TensorView gradOutput, TensorView rois, TensorView gradInput, RoiGeometry geometry);

    /// <summary>
    /// y[k, c, i, j] = max of x[batch(k), c] over bin (i, j) of the roi rounded to pixels (0 for an
    /// empty bin); argmax (Int32) gets the flat position h*W + w of the first maximum, -1 for an empty bin.
    /// </summary>
    void RoiPool(TensorView x, TensorView rois, TensorView y, TensorView argmax, RoiGeometry geometry);

    /// <summary>The gradient of <see cref="RoiPool"/>: gradInput[batch(k), c, argmax] sums gradOutput[k, c, i, j].</summary>
    void RoiPoolBackward(TensorView gradOutput, TensorView rois, TensorView argmax, TensorView gradInput, RoiGeometry geometry);

    // Modulated deformable RoI pooling: offset (normalised, [K, 2, PooledH, PooledW], channel 0 moves x, channel 1
    // moves y) and mask ([K, 1, PooledH, PooledW], used as given) are optional (null: no shift, modulation 1) and
    // contiguous, in the features' dtype. Sample positions, corners and the "outside" rule are RoIAlign's.

    /// <summary>y[k, c, i, j] = mask[k, 0, i, j] * (mean of bin (i, j)'s bilinear samples, the bin moved by its offset).</summary>
    void DeformRoiPool(TensorView x, TensorView rois, TensorView? offset, TensorView? mask, TensorView y, DeformRoiGeometry geometry);

    /// <summary>The input gradient of <see cref="DeformRoiPool"/>: each sample's gradient * mask / count spread over its four corners (deterministic).</summary>
    void DeformRoiPoolBackward(TensorView gradOutput, TensorView rois, TensorView? offset, TensorView? mask, TensorView gradInput, DeformRoiGeometry geometry);

    /// <summary>
    /// The offset and mask gradients of <see cref="DeformRoiPool"/> (either may be null: not wanted), summed over the
    /// channels in order: gradOffset[k, 0, i, j] = Gamma * roiW * mask * Σ_c gy * mean(d sample / dx) (0 where a
    /// coordinate is clamped to the map or the sample is outside), the same for y; gradMask[k, 0, i, j] = Σ_c gy * mean(sample).
    /// </summary>
    void DeformRoiPoolBackwardCoord(TensorView gradOutput, TensorView x, TensorView rois, TensorView? offset, TensorView? mask,
        TensorView? gradOffset, TensorView? gradMask, DeformRoiGeometry geometry);
}
