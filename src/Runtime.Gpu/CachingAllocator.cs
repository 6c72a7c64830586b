using System.Collections.Concurrent;

namespace Runtime.Gpu;

/// <summary>
/// Device memory with a cache of freed blocks, shared by the CUDA and OpenCL backends (only the raw
/// allocate/free calls differ). Blocks are kept by size class and reused for any request of that class;
/// when the driver reports out of memory the cache is emptied and the allocation retried once.
/// Because all work of a device runs in order on one queue, a block freed after its last kernel was
/// queued can be handed to the next kernel at once. Blocks released by finalizers (tensors that were
/// never disposed) are queued and returned here on the next allocation: the finalizer thread never
/// calls the driver. Callers hold the backend's lock.
/// </summary>
internal sealed class CachingAllocator
{
    private readonly Func<long, nint> _allocate;
    private readonly Action<nint> _free;
    private readonly Action _synchronize;
    private readonly Dictionary<long, Stack<nint>> _cache = new();
    private readonly ConcurrentQueue<(nint Handle, long Capacity)> _finalized = new();
    private long _inUse, _cached, _peak;

    /// <param name="allocate">Raw allocation; returns 0 when the device is out of memory.</param>
    /// <param name="free">Raw free.</param>
    /// <param name="synchronize">Waits for queued work (before memory really goes back to the driver).</param>
    public CachingAllocator(Func<long, nint> allocate, Action<nint> free, Action synchronize)
    {
        _allocate = allocate;
        _free = free;
        _synchronize = synchronize;
    }

    public long BytesInUse => Interlocked.Read(ref _inUse);

    public long BytesCached => Interlocked.Read(ref _cached);

    public long PeakBytesInUse => Interlocked.Read(ref _peak);

    public long CacheHits { get; private set; }

    public long DriverAllocations { get; private set; }

    /// <summary>Size classes: multiples of 512 bytes up to 1 MiB, then eight classes per power of two.</summary>
    public static long SizeClass(long bytes)
    {
        if (bytes <= 1 << 20) return Math.Max(512, (bytes + 511) & ~511L);
        int log = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(bytes - 1));
        long step = 1L << (log - 3);
        return (bytes + step - 1) / step * step;
    }

    public (nint Handle, long Capacity) Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        DrainFinalized();
        long cls = SizeClass(bytes);
        if (_cache.TryGetValue(cls, out var stack) && stack.Count > 0)
        {
            _cached -= cls;
            CacheHits++;
            return (stack.Pop(), Track(cls));
        }
        nint h = _allocate(cls);
        if (h == 0)
        {
            EmptyCache();
            h = _allocate(cls);
            if (h == 0)
                throw new OutOfMemoryException($"device out of memory allocating {cls} bytes ({BytesInUse} bytes in use, cache emptied)");
        }
        DriverAllocations++;
        return (h, Track(cls));
    }

    private long Track(long cls)
    {
        long now = Interlocked.Add(ref _inUse, cls);
        if (now > _peak) _peak = now;
        return cls;
    }

    /// <summary>Returns a block to the cache (owning side, under the backend's lock).</summary>
    public void Release(nint handle, long capacity)
    {
        Interlocked.Add(ref _inUse, -capacity);
        if (!_cache.TryGetValue(capacity, out var stack)) _cache[capacity] = stack = new Stack<nint>();
        stack.Push(handle);
        _cached += capacity;
    }

    /// <summary>From a finalizer: only queues the block; <see cref="Allocate"/> takes it back.</summary>
    public void ReleaseFromFinalizer(nint handle, long capacity) => _finalized.Enqueue((handle, capacity));

    public void DrainFinalized()
    {
        while (_finalized.TryDequeue(out var b)) Release(b.Handle, b.Capacity);
    }

    /// <summary>Gives every cached block back to the driver.</summary>
    public void EmptyCache()
    {
        DrainFinalized();
        if (_cached == 0) return;
        _synchronize();
        foreach (var stack in _cache.Values)
            while (stack.Count > 0) _free(stack.Pop());
        _cache.Clear();
        _cached = 0;
    }
}
