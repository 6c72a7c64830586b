using System.Runtime.InteropServices;
using Runtime.Backends;

namespace Runtime.Cpu;

/// <summary>64-byte aligned native memory from the <see cref="BufferPool"/>.</summary>
internal sealed unsafe class CpuStorage : Storage
{
    private byte* _ptr;
    private readonly long _capacity;

    public CpuStorage(long byteLength)
        : base(Device.Cpu, byteLength)
    {
        var (p, cap) = BufferPool.Rent(byteLength);
        _ptr = (byte*)p;
        _capacity = cap;
    }

    public byte* Pointer
    {
        get
        {
            var p = _ptr;
            if (p == null) throw new ObjectDisposedException(nameof(CpuStorage), "the tensor's memory was already released");
            return p;
        }
    }

    protected override void Free()
    {
        var p = _ptr;
        _ptr = null;
        if (p != null) BufferPool.Return(p, _capacity);
        GC.SuppressFinalize(this);
    }

    // Finalizer fallback for storages whose tensors were never disposed. A large buffer may be part of a
    // bigger block the pool carved up, so it goes back through the (locked) pool like any other.
    ~CpuStorage()
    {
        if (_ptr == null) return;
        BufferPool.Return(_ptr, _capacity);
    }
}
