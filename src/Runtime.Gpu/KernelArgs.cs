using System.Runtime.CompilerServices;

namespace Runtime.Gpu;

/// <summary>
/// The argument values of one launch, packed in order: each is a small blob (a device buffer handle,
/// a scalar, or the by-value Strided struct). OpenCL sets them one by one (size + pointer); CUDA takes
/// an array of pointers to them. Not thread-safe: a backend reuses one under its lock.
/// </summary>
internal sealed unsafe class KernelArgs
{
    private readonly byte[] _data = new byte[4096];
    private readonly int[] _offsets = new int[48];
    private readonly int[] _sizes = new int[48];
    private int _length;

    public int Count { get; private set; }

    public KernelArgs Clear()
    {
        _length = 0;
        Count = 0;
        return this;
    }

    public KernelArgs Add<T>(T value) where T : unmanaged
    {
        int size = sizeof(T);
        int off = (_length + 7) & ~7;
        if (off + size > _data.Length || Count == _offsets.Length) throw new InvalidOperationException("too many kernel arguments");
        Unsafe.WriteUnaligned(ref _data[off], value);
        _offsets[Count] = off;
        _sizes[Count] = size;
        Count++;
        _length = off + size;
        return this;
    }

    /// <summary>A device buffer: its handle (cl_mem or CUdeviceptr, both 64-bit here).</summary>
    public KernelArgs Buffer(nint handle) => Add((ulong)handle);

    public KernelArgs I64(long v) => Add(v);

    public KernelArgs I32(int v) => Add(v);

    public KernelArgs Strided(in StridedArg s) => Add(s);

    public ReadOnlySpan<int> Offsets => _offsets.AsSpan(0, Count);

    public ReadOnlySpan<int> Sizes => _sizes.AsSpan(0, Count);

    public byte[] Data => _data;
}
