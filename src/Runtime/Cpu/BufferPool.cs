using System.Runtime.InteropServices;

namespace Runtime.Cpu;

/// <summary>
/// Reuses freed CPU buffers so that a loop allocating the same shapes each step does not go back to the OS
/// (and fault its pages in again) for them.
/// </summary>
/// <remarks>
/// Two tiers. Buffers up to <see cref="LargeThreshold"/> come from size classes (64-byte steps to 4 KiB,
/// then four classes per power of two), each with its own free list. Larger ones are carved out of segments
/// by a <see cref="SegmentAllocator"/>, as PyTorch's CUDA allocator does. Detectors allocate a different
/// size at nearly every layer and every image: with size classes alone, freed blocks of neighbouring classes
/// piled up (a Faster R-CNN eval held twice its live bytes); with splitting and merging the memory held
/// stays close to the live peak.
/// </remarks>
public static unsafe class BufferPool
{
    /// <summary>Requests above this many bytes are carved out of segments; smaller ones use size classes.</summary>
    public const long LargeThreshold = SegmentAllocator.SplitThreshold;

    private static readonly Dictionary<long, Stack<nint>> Free = new();
    private static readonly SegmentAllocator Large = new();
    private static readonly object Gate = new();
    private static long _smallCached;
    private static long _inUse;
    private static long _peakInUse;

    /// <summary>Most bytes kept cached for reuse (default 2 GiB, or RUNTIME_CPU_POOL_BYTES).</summary>
    public static long Limit { get; set; } =
        long.TryParse(Environment.GetEnvironmentVariable("RUNTIME_CPU_POOL_BYTES"), out var l) ? l : 2L << 30;

    /// <summary>Bytes held free for reuse: small buffers on their lists and free parts of segments.</summary>
    public static long BytesCached
    {
        get
        {
            lock (Gate) return _smallCached + Large.FreeBytes;
        }
    }

    /// <summary>Bytes handed out and not yet returned.</summary>
    public static long BytesInUse => Interlocked.Read(ref _inUse);

    /// <summary>Most bytes in use at once since the start or the last <see cref="ResetPeak"/> (as torch.cuda.max_memory_allocated).</summary>
    public static long PeakBytesInUse => Interlocked.Read(ref _peakInUse);

    /// <summary>Starts <see cref="PeakBytesInUse"/> again from the bytes in use now.</summary>
    public static void ResetPeak() => Interlocked.Exchange(ref _peakInUse, BytesInUse);

    /// <summary>Bytes of native memory the large tier holds, used and free.</summary>
    public static long SegmentBytes
    {
        get
        {
            lock (Gate) return Large.SegmentBytes;
        }
    }

    /// <summary>Size classes of the small tier: multiples of 64 bytes up to 4 KiB, then four classes per power of two.</summary>
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
        if (bytes > LargeThreshold)
        {
            (nint, long) block;
            lock (Gate) block = Large.Rent(bytes);
            AddInUse(block.Item2);
            return block;
        }
        long cls = SizeClass(bytes);
        lock (Gate)
        {
            if (Free.TryGetValue(cls, out var stack) && stack.Count > 0)
            {
                _smallCached -= cls;
                AddInUse(cls); // atomic: fresh allocations update it outside the lock
                return (stack.Pop(), cls);
            }
        }
        var p = NativeMemory.AlignedAlloc((nuint)cls, 64);
        AddInUse(cls);
        return ((nint)p, cls);
    }

    internal static void Return(byte* p, long capacity)
    {
        lock (Gate)
        {
            if (capacity > LargeThreshold)
            {
                long size = Large.Return((nint)p);
                Interlocked.Add(ref _inUse, -size);
                long over = _smallCached + Large.FreeBytes - Limit;
                if (over > 0) Large.ReleaseFreeSegments(over);
                return;
            }
            Interlocked.Add(ref _inUse, -capacity);
            if (_smallCached + Large.FreeBytes + capacity <= Limit)
            {
                if (!Free.TryGetValue(capacity, out var stack)) Free[capacity] = stack = new Stack<nint>();
                stack.Push((nint)p);
                _smallCached += capacity;
                return;
            }
        }
        NativeMemory.AlignedFree(p);
    }

    /// <summary>Frees every cached small buffer and every segment with nothing in use.</summary>
    public static void EmptyCache()
    {
        lock (Gate)
        {
            foreach (var stack in Free.Values)
                while (stack.Count > 0) NativeMemory.AlignedFree((void*)stack.Pop());
            Free.Clear();
            _smallCached = 0;
            Large.ReleaseFreeSegments(long.MaxValue);
        }
    }

    private static void AddInUse(long bytes)
    {
        long now = Interlocked.Add(ref _inUse, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peakInUse)) && Interlocked.CompareExchange(ref _peakInUse, now, peak) != peak) { }
    }
}

/// <summary>
/// Large buffers carved out of native segments: a request takes the smallest free block that fits (best fit)
/// and splits off the rest when that is more than <see cref="SplitThreshold"/>; a returned block merges with
/// its free neighbours in the segment. When nothing free fits, whole free segments (all smaller than the
/// request) go back to the OS before a new segment is taken, so that memory held follows the live peak
/// rather than every shape seen. Not thread-safe: <see cref="BufferPool"/> calls it under its lock.
/// </summary>
internal sealed unsafe class SegmentAllocator
{
    /// <summary>A free remainder larger than this is split off as its own block.</summary>
    public const long SplitThreshold = 1L << 20;

    private const long BlockRound = 512;           // blocks are multiples of this (segments are 64-byte aligned)
    private const long SegmentRound = 2L << 20;    // segments are multiples of this
    private const long SharedSegment = 20L << 20;  // requests under half this share segments of this size

    private readonly SortedSet<Block> _free = new(BlockOrder.Instance);
    private readonly Dictionary<nint, Block> _used = new();

    /// <summary>Bytes in free blocks.</summary>
    public long FreeBytes { get; private set; }

    /// <summary>Bytes of all segments, used and free.</summary>
    public long SegmentBytes { get; private set; }

    public (nint Ptr, long Capacity) Rent(long bytes)
    {
        long size = (bytes + BlockRound - 1) / BlockRound * BlockRound;
        var block = BestFit(size);
        if (block == null)
        {
            ReleaseFreeSegments(long.MaxValue);
            long segment = size < SharedSegment / 2 ? SharedSegment : (size + SegmentRound - 1) / SegmentRound * SegmentRound;
            var ptr = (nint)NativeMemory.AlignedAlloc((nuint)segment, 64);
            SegmentBytes += segment;
            block = new Block(ptr, segment, ptr, null, null);
        }
        else RemoveFree(block);
        if (block.Size - size > SplitThreshold)
        {
            var rest = new Block(block.Ptr + (nint)size, block.Size - size, block.Segment, block, block.Next);
            if (block.Next != null) block.Next.Prev = rest;
            block.Next = rest;
            block.Size = size;
            AddFree(rest);
        }
        block.IsFree = false;
        _used.Add(block.Ptr, block);
        return (block.Ptr, block.Size);
    }

    /// <summary>Takes a block back and returns its size.</summary>
    public long Return(nint p)
    {
        if (!_used.Remove(p, out var block))
            throw new InvalidOperationException($"buffer 0x{p:x} was not handed out by the pool, or was returned twice");
        long size = block.Size;
        block.IsFree = true;
        if (block.Prev is { IsFree: true } prev)
        {
            RemoveFree(prev);
            prev.Size += block.Size;
            Unlink(block);
            block = prev;
        }
        if (block.Next is { IsFree: true } next)
        {
            RemoveFree(next);
            block.Size += next.Size;
            Unlink(next);
        }
        AddFree(block);
        return size;
    }

    /// <summary>Frees whole segments with nothing in use, largest first, until at least <paramref name="bytes"/> are gone.</summary>
    public void ReleaseFreeSegments(long bytes)
    {
        List<Block>? whole = null;
        foreach (var b in _free)
            if (b.Prev == null && b.Next == null) (whole ??= []).Add(b);
        if (whole == null) return;
        long released = 0;
        for (int i = whole.Count - 1; i >= 0 && released < bytes; i--)
        {
            var b = whole[i];
            RemoveFree(b);
            SegmentBytes -= b.Size;
            released += b.Size;
            NativeMemory.AlignedFree((void*)b.Segment);
        }
    }

    private Block? BestFit(long size)
    {
        if (_free.Count == 0 || _free.Max!.Size < size) return null;
        return _free.GetViewBetween(new Block(0, size, 0, null, null), _free.Max).Min;
    }

    // A block's size is part of its order in the free set: take it out before changing the size.
    private void RemoveFree(Block b)
    {
        _free.Remove(b);
        FreeBytes -= b.Size;
    }

    private void AddFree(Block b)
    {
        _free.Add(b);
        FreeBytes += b.Size;
    }

    // Drops b from its segment's list; its bytes have been given to the previous block.
    private static void Unlink(Block b)
    {
        if (b.Prev != null) b.Prev.Next = b.Next;
        if (b.Next != null) b.Next.Prev = b.Prev;
    }

    /// <summary>A piece of a segment; a segment's blocks form a doubly linked list in address order.</summary>
    private sealed class Block(nint ptr, long size, nint segment, Block? prev, Block? next)
    {
        public readonly nint Ptr = ptr;
        public readonly nint Segment = segment;
        public long Size = size;
        public Block? Prev = prev;
        public Block? Next = next;
        public bool IsFree = true;
    }

    private sealed class BlockOrder : IComparer<Block>
    {
        public static readonly BlockOrder Instance = new();

        public int Compare(Block? a, Block? b)
        {
            int c = a!.Size.CompareTo(b!.Size);
            return c != 0 ? c : a.Ptr.CompareTo(b.Ptr);
        }
    }
}
