using Runtime.Backends;

namespace Runtime.Gpu;

/// <summary>A block of device memory from a backend's <see cref="CachingAllocator"/>.</summary>
public sealed class GpuStorage : Storage
{
    private nint _handle;

    internal GpuStorage(GpuBackend owner, nint handle, long capacity, long byteLength)
        : base(owner.Device, byteLength)
    {
        Owner = owner;
        _handle = handle;
        Capacity = capacity;
    }

    internal GpuBackend Owner { get; }

    /// <summary>cl_mem or CUdeviceptr.</summary>
    internal nint Handle => _handle != 0 ? _handle : throw new ObjectDisposedException(nameof(GpuStorage), "the tensor's device memory was already released");

    internal long Capacity { get; }

    protected override void Free()
    {
        var h = Interlocked.Exchange(ref _handle, 0);
        if (h != 0) Owner.ReleaseBlock(h, Capacity);
        GC.SuppressFinalize(this);
    }

    // Tensors that were never disposed: hand the block to the owner's queue; it is reused on the next allocation.
    ~GpuStorage()
    {
        var h = _handle;
        if (h != 0) Owner.Allocator.ReleaseFromFinalizer(h, Capacity);
    }
}

/// <summary>A temporary device block for a kernel's scratch space (partial sums, sort keys); dispose after queuing its last use.</summary>
internal sealed class GpuBuffer : IDisposable
{
    private readonly GpuBackend _owner;

    public GpuBuffer(GpuBackend owner, long bytes)
    {
        _owner = owner;
        (Handle, Capacity) = owner.Allocator.Allocate(bytes);
    }

    public nint Handle { get; private set; }

    public long Capacity { get; }

    public void Dispose()
    {
        if (Handle == 0) return;
        _owner.Allocator.Release(Handle, Capacity);
        Handle = 0;
    }
}
