namespace Runtime.Backends;

/// <summary>
/// The sliding window of a 2-D pooling: kernel size, stride, zero-based padding on each side
/// (top/left; the bottom/right side is whatever ceil mode leaves) and dilation, per axis.
/// </summary>
public readonly record struct PoolWindow(int KernelH, int KernelW, int StrideH, int StrideW, int PadH, int PadW, int DilationH, int DilationW);

// Pooling and resampling kernels. Every tensor here is a contiguous stack of planes [P, H, W]
// (P = N*C; the front-end reshapes), floating point (Float32 or Float64), already validated;
// outputs and input gradients are fresh buffers that the kernel writes completely.
public partial interface IBackend
{
    /// <summary>
    /// y[p, oh, ow] = max of x over the window (padding never wins); indices (Int64) get the flat
    /// position h*W + w of the first maximum in scan order, or of the last NaN when the window has one.
    /// </summary>
    void MaxPool2d(TensorView x, TensorView y, TensorView indices, PoolWindow window);

    /// <summary>
    /// gradInput[p, i] = sum of gradOutput[p, o] over the outputs o whose index is i (an index outside
    /// the plane, from a window that misses the input, feeds nothing).
    /// </summary>
    void MaxPool2dBackward(TensorView gradOutput, TensorView indices, TensorView gradInput, PoolWindow window);

    /// <summary>
    /// y = window sum / divisor, the window clipped to the padded input (then to the input for the sum).
    /// Divisor: <paramref name="divisorOverride"/> when non-zero, else the padded window size
    /// (<paramref name="countIncludePad"/>) or the count of input elements in it.
    /// </summary>
    void AvgPool2d(TensorView x, TensorView y, PoolWindow window, bool countIncludePad, int divisorOverride);

    /// <summary>The gradient of <see cref="AvgPool2d"/>: each input gathers gradOutput / divisor of the windows that hold it.</summary>
    void AvgPool2dBackward(TensorView gradOutput, TensorView gradInput, PoolWindow window, bool countIncludePad, int divisorOverride);

    /// <summary>y[p, i, j] = mean of x over rows [floor(i*H/OH), ceil((i+1)*H/OH)) and the same for columns.</summary>
    void AdaptiveAvgPool2d(TensorView x, TensorView y);

    /// <summary>The gradient of <see cref="AdaptiveAvgPool2d"/>.</summary>
    void AdaptiveAvgPool2dBackward(TensorView gradOutput, TensorView gradInput);

    /// <summary>
    /// Resamples x [P, H, W] into y [P, OH, OW] as torch's upsample_nearest2d / upsample_bilinear2d:
    /// <paramref name="scaleH"/>/<paramref name="scaleW"/> are the user's scale factors used for the
    /// source index (null: input size / output size).
    /// </summary>
    void Interpolate(TensorView x, TensorView y, InterpolationMode mode, bool alignCorners, double? scaleH, double? scaleW);

    /// <summary>The gradient of <see cref="Interpolate"/>: each input sums the weighted output gradients that read it.</summary>
    void InterpolateBackward(TensorView gradOutput, TensorView gradInput, InterpolationMode mode, bool alignCorners, double? scaleH, double? scaleW);
}
