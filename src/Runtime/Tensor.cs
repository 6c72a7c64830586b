using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime;

/// <summary>
/// An n-dimensional array on a device: a view (shape, strides, offset) into a reference-counted
/// <see cref="Storage"/>, plus what autograd needs. Operators are instance methods and operators
/// (<c>a + b</c>, <c>a.MatMul(b)</c>), factories are static (<c>Tensor.Zeros(2, 3)</c>).
/// Dispose tensors (or use a <see cref="TensorScope"/>) to return memory promptly.
/// </summary>
public sealed partial class Tensor : IDisposable
{
    private Storage? _storage;
    private readonly int[] _shape;
    private readonly long[] _strides;
    private readonly long _offset;
    private bool _requiresGrad;

    internal Tensor(Storage storage, int[] shape, long[] strides, long offset, DType dtype, bool shareStorage, bool register = true)
    {
        if (shareStorage) storage.Retain();
        _storage = storage;
        _shape = shape;
        _strides = strides;
        _offset = offset;
        DType = dtype;
        if (register) TensorScope.Current?.Add(this);
    }

    /// <summary>A fresh, contiguous, uninitialised tensor.</summary>
    internal static Tensor Empty(int[] shape, DType dtype, Device device)
    {
        long n = Shapes.NumEl(shape);
        var backend = BackendRegistry.For(device);
        var storage = backend.Allocate(n * dtype.SizeOf());
        return new Tensor(storage, shape, Shapes.ContiguousStrides(shape), 0, dtype, shareStorage: false);
    }

    public DType DType { get; }

    public Device Device => StorageOrThrow.Device;

    /// <summary>Sizes of each dimension.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Element strides of each dimension.</summary>
    public ReadOnlySpan<long> Strides => _strides;

    /// <summary>Offset of the first element in the storage, in elements.</summary>
    public long StorageOffset => _offset;

    public int Rank => _shape.Length;

    public long NumEl => Shapes.NumEl(_shape);

    public bool IsDisposed => _storage == null;

    /// <summary>Size of dimension <paramref name="dim"/> (negative counts from the end).</summary>
    public int Size(int dim) => _shape[Shapes.NormalizeExistingDim(dim, Rank, nameof(dim))];

    public bool IsContiguous => KernelView.IsContiguous;

    /// <summary>
    /// The version of this tensor's memory: it grows with every in-place update through a tensor sharing it
    /// (see <see cref="Backends.Storage.Version"/>). Caches derived from a tensor compare it to know when to refresh.
    /// </summary>
    public long Version => StorageOrThrow.Version;

    internal TensorScope? Scope { get; set; }

    internal Storage StorageOrThrow => _storage ?? throw new ObjectDisposedException(nameof(Tensor), "the tensor was disposed");

    internal int[] ShapeArray => _shape;

    internal long[] StridesArray => _strides;

    internal IBackend Backend => BackendRegistry.For(Device);

    /// <summary>What a backend kernel sees of this tensor.</summary>
    internal TensorView KernelView => new(StorageOrThrow, _offset, _shape, _strides, DType);

    // ---------------- autograd state ----------------

    /// <summary>Whether gradients flow to (leaf) or through (computed) this tensor.</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (GradFn != null && !value)
                throw new InvalidOperationException("RequiresGrad can only be cleared on leaf tensors; use Detach() on computed ones");
            if (value && !DType.IsFloating())
                throw new InvalidOperationException($"only floating-point tensors can require gradients, this one is {DType.Name()}");
            _requiresGrad = value;
        }
    }

    /// <summary>Accumulated gradient of a leaf after <see cref="Backward"/>; null before the first one.</summary>
    public Tensor? Grad { get; set; }

    /// <summary>The graph node that produced this tensor (null for leaves and untracked results).</summary>
    public Node? GradFn { get; internal set; }

    public bool IsLeaf => GradFn == null;

    internal void MarkComputed(Node node)
    {
        GradFn = node;
        _requiresGrad = true;
    }

    /// <summary>Sets <see cref="RequiresGrad"/> and returns this tensor, for chaining.</summary>
    public Tensor RequiresGrad_(bool requiresGrad = true)
    {
        RequiresGrad = requiresGrad;
        return this;
    }

    /// <summary>Back-propagates from this scalar (or with the given output gradient) into the leaves' <see cref="Grad"/>.</summary>
    public void Backward(Tensor? gradient = null, bool retainGraph = false) => Engine.Backward(this, gradient, retainGraph);

    /// <summary>The same values, cut off from the graph (shares memory).</summary>
    public Tensor Detach() => new(StorageOrThrow, _shape, _strides, _offset, DType, shareStorage: true);

    /// <summary>Another handle on the same view; used by autograd to keep saved values alive.</summary>
    internal Tensor Alias(bool register) => new(StorageOrThrow, _shape, _strides, _offset, DType, shareStorage: true, register);

    /// <summary>Leaves this tensor's scope and joins the enclosing one (or none).</summary>
    public Tensor MoveToOuterScope()
    {
        if (Scope == null) return this;
        return Scope.MoveOut(this);
    }

    /// <summary>Unregisters the tensor from any scope: the caller owns it.</summary>
    internal Tensor Unscoped()
    {
        Scope = null;
        return this;
    }

    public void Dispose()
    {
        var s = _storage;
        if (s == null) return;
        _storage = null;
        s.Release();
    }
}

public sealed partial class Tensor
{
    /// <summary>PyTorch-style text: values (abbreviated past 1000 elements), shape, dtype, device, grad_fn.</summary>
    public override string ToString() => TensorFormatter.Format(this);
}
