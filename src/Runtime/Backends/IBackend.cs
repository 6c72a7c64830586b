namespace Runtime.Backends;

/// <summary>
/// The contract between operators and a device. The operator front-end (shapes, broadcasting,
/// dtype promotion, autograd) lives above it and is the same for every device; a backend only
/// allocates memory and runs these kernels. Unless a method says otherwise, inputs may have any
/// strides, outputs are freshly allocated and contiguous, and all views are on this backend's device.
/// Shape and dtype checks are done before a backend is called.
/// </summary>
public partial interface IBackend
{
    Device Device { get; }

    /// <summary>A human-readable description (name, SIMD width, cores, memory...).</summary>
    string Describe();

    Storage Allocate(long bytes);

    void Upload(ReadOnlySpan<byte> source, Storage destination, long byteOffset);

    void Download(Storage source, long byteOffset, Span<byte> destination);

    /// <summary>Blocks until all queued work on the device is done.</summary>
    void Synchronize();

    void Fill(TensorView destination, double value);

    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> (same shape, any strides), converting dtype.</summary>
    void Copy(TensorView source, TensorView destination);

    /// <summary>y = op(x) elementwise; x and y have the same shape and dtype (LogicalNot writes Bool).</summary>
    void Unary(UnaryOp op, TensorView x, TensorView y, double alpha, double beta);

    /// <summary>y = op(a, b); a and b are already broadcast to y's shape (zero strides) and share one dtype.</summary>
    void Binary(BinaryOp op, TensorView a, TensorView b, TensorView y);

    /// <summary>y = cond ? a : b, all broadcast to y's shape; cond is Bool.</summary>
    void Where(TensorView condition, TensorView a, TensorView b, TensorView y);

    /// <summary>Reduces the middle axis of contiguous x viewed as [outer, k, inner] into y [outer, inner].</summary>
    void Reduce(ReduceOp op, TensorView x, TensorView y, int outer, int k, int inner);

    /// <summary>Index (Int64) of the first maximum (or minimum) along the middle axis of contiguous x [outer, k, inner].</summary>
    void ArgReduce(bool max, TensorView x, TensorView indices, int outer, int k, int inner);

    /// <summary>Softmax (or log-softmax) along the middle axis of contiguous x [outer, k, inner].</summary>
    void Softmax(TensorView x, TensorView y, int outer, int k, int inner, bool log);

    /// <summary>Inclusive prefix sum along the middle axis of contiguous x [outer, k, inner].</summary>
    void CumSum(TensorView x, TensorView y, int outer, int k, int inner);

    /// <summary>c[b] = a[b] @ b[b] (+ c[b] when accumulate) for rank-3 views a [B,M,K], b [B,K,N] (any strides), c [B,M,N] contiguous.</summary>
    void MatMul(TensorView a, TensorView b, TensorView c, bool accumulate);

    /// <summary>y[o, j, i] = x[o, index[j], i] for contiguous x [outer, n, inner] and Int64 index [m]; indices are already validated.</summary>
    void IndexSelect(TensorView x, TensorView index, TensorView y, int outer, int n, int inner);

    /// <summary>y[o, index[j], i] += src[o, j, i]; y is contiguous [outer, n, inner], src contiguous [outer, m, inner].</summary>
    void IndexAdd(TensorView y, TensorView index, TensorView source, int outer, int n, int inner);

    /// <summary>y[..., j, ...] = x[..., index[..., j, ...], ...] along dim; all contiguous, index Int64 with y's shape.</summary>
    void Gather(TensorView x, int dim, TensorView index, TensorView y);

    /// <summary>y[..., index[..., j, ...], ...] (+)= src[..., j, ...] along dim, in place on contiguous y.</summary>
    void Scatter(TensorView y, int dim, TensorView index, TensorView source, bool accumulate);

    /// <summary>Stable sort of each row of contiguous x [outer, n]; writes values and Int64 indices.</summary>
    void Sort(TensorView x, TensorView values, TensorView indices, int outer, int n, bool descending);
}
