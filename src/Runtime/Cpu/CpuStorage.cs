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

    // Finalizer fallback for storages whose tensors were never disposed. Freeing native memory is
    // thread-safe, so this does not go through the pool.
    ~CpuStorage()
    {
        if (_ptr == null) return;
        NativeMemory.AlignedFree(_ptr);
        BufferPool.ForgetLeaked(_capacity);
    }
}

/// <summary>
/// Reuses freed CPU buffers by size class so that a training loop allocating the same shapes each
/// step does not go back to the OS (or the GC) for them.
/// </summary>
public static unsafe class BufferPool
{
    private static readonly Dictionary<long, Stack<nint>> Free = new();
    private static readonly object Gate = new();
    private static long _cached;
    private static long _inUse;

    /// <summary>Most bytes kept cached for reuse (default 2 GiB, or RUNTIME_CPU_POOL_BYTES).</summary>
    public static long Limit { get; set; } =
        long.TryParse(Environment.GetEnvironmentVariable("RUNTIME_CPU_POOL_BYTES"), out var l) ? l : 2L << 30;

    public static long BytesCached => Interlocked.Read(ref _cached);

    public static long BytesInUse => Interlocked.Read(ref _inUse);

    /// <summary>Accounts for a buffer the finalizer freed because its tensors were never disposed.</summary>
    internal static void ForgetLeaked(long capacity) => Interlocked.Add(ref _inUse, -capacity);

    /// <summary>Size classes: multiples of 64 bytes up to 4 KiB, then four classes per power of two.</summary>
    internal static long SizeClass(long bytes)
    {
        if (bytes <= 4096) return Math.Max(64, (bytes + 63) & ~63L);
        int log = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(bytes - 1));
        long step = 1L << (log - 2);
        return (bytes + step - 1) / step * step;
    }

    internal static (nint Ptr, long Capacity) Rent(long bytes)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "negative allocation size");
        long cls = SizeClass(bytes);
        lock (Gate)
        {
            if (Free.TryGetValue(cls, out var stack) && stack.Count > 0)
            {
                _cached -= cls;
                Interlocked.Add(ref _inUse, cls); // atomic: fresh allocations update it outside the lock
                return (stack.Pop(), cls);
            }
        }
        var p = NativeMemory.AlignedAlloc((nuint)cls, 64);
        Interlocked.Add(ref _inUse, cls);
        return ((nint)p, cls);
    }

    internal static void Return(byte* p, long capacity)
    {
        lock (Gate)
        {
            Interlocked.Add(ref _inUse, -capacity);
            if (_cached + capacity <= Limit)
            {
                if (!Free.TryGetValue(capacity, out var stack)) Free[capacity] = stack = new Stack<nint>();
                stack.Push((nint)p);
                _cached += capacity;
                return;
            }
        }
        NativeMemory.AlignedFree(p);
    }

    /// <summary>Frees every cached buffer.</summary>
    public static void EmptyCache()
    {
        lock (Gate)
        {
            foreach (var stack in Free.Values)
                while (stack.Count > 0) NativeMemory.AlignedFree((void*)stack.Pop());
            Free.Clear();
            _cached = 0;
        }
    }
}
