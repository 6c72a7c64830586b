namespace Runtime.Backends;

/// <summary>
/// A block of memory on one device. Tensors are views into a storage; the storage counts the
/// tensors (and saved autograd values) that hold it and returns its memory when the last one lets go.
/// </summary>
public abstract class Storage
{
    private int _refs = 1;
    private long _version;

    protected Storage(Device device, long byteLength)
    {
        Device = device;
        ByteLength = byteLength;
    }

    public Device Device { get; }

    public long ByteLength { get; }

    /// <summary>
    /// Counts the in-place writes made to this memory through tensors (<c>CopyFrom</c>, <c>Fill_</c>, <c>AddInPlace</c>,
    /// <c>MulInPlace</c>, and so the optimizers, initialisers and checkpoint loading), so that values derived from it
    /// (folded batch norms, prepacked weights) can tell that they are stale.
    /// </summary>
    public long Version => Volatile.Read(ref _version);

    internal void MarkModified() => Interlocked.Increment(ref _version);

    internal bool IsReleased => Volatile.Read(ref _refs) <= 0;

    internal void Retain()
    {
        if (Interlocked.Increment(ref _refs) <= 1)
            throw new ObjectDisposedException(nameof(Storage), "storage was already released");
    }

    internal void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
            Free();
    }

    /// <summary>Gives the memory back (to a pool or the driver). Called once, on the last release.</summary>
    protected abstract void Free();
}
