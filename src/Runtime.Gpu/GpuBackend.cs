using Runtime.Backends;

namespace Runtime.Gpu;

/// <summary>A compiled program of one kernel file (one set of defines) on one device.</summary>
internal abstract class KernelProgram : IDisposable
{
    private readonly Dictionary<string, KernelFunction> _kernels = new();

    public required string Name { get; init; }

    public KernelFunction Get(string kernel)
    {
        if (!_kernels.TryGetValue(kernel, out var f)) _kernels[kernel] = f = Create(kernel);
        return f;
    }

    protected abstract KernelFunction Create(string kernel);

    public abstract void Dispose();
}

/// <summary>One kernel entry point: its handle and the largest work-group it can run with.</summary>
internal sealed record KernelFunction(string Name, nint Handle, int MaxLocalSize);

/// <summary>
/// What the CUDA and OpenCL backends share: the whole <see cref="IBackend"/> (Gpu/GpuBackend.*.cs
/// choose kernels, pack their arguments and size their launches) on top of a handful of primitives a
/// device provides: raw memory, host transfers, compiling a kernel source and launching a kernel on
/// its one in-order queue. Work is queued asynchronously; only <see cref="Download"/> and
/// <see cref="Synchronize"/> wait. Calls from several threads are serialised by one lock per device.
/// </summary>
public abstract partial class GpuBackend : IBackend, IDisposable
{
    private readonly Dictionary<(string File, string Defines), KernelProgram> _programs = new();
    private readonly KernelArgs _args = new();
    private CachingAllocator? _allocator;
    private bool _disposed;

    protected GpuBackend(Device device)
    {
        Device = device;
    }

    public Device Device { get; }

    /// <summary>The device's name as the driver reports it.</summary>
    public abstract string Name { get; }

    /// <summary>Whether Float64 kernels can run (OpenCL devices without cl_khr_fp64 cannot).</summary>
    public bool SupportsFloat64 { get; protected set; } = true;

    /// <summary>Bytes held by live tensors and scratch blocks.</summary>
    public long BytesInUse => Allocator.BytesInUse;

    /// <summary>Bytes of freed blocks kept for reuse.</summary>
    public long BytesCached => Allocator.BytesCached;

    /// <summary>The most bytes in use at once so far.</summary>
    public long PeakBytesInUse => Allocator.PeakBytesInUse;

    /// <summary>Allocations served from the cache (not the driver).</summary>
    public long CacheHits => Allocator.CacheHits;

    /// <summary>Allocations that went to the driver.</summary>
    public long DriverAllocations => Allocator.DriverAllocations;

    internal object Gate { get; } = new();

    internal CachingAllocator Allocator => _allocator ?? throw new InvalidOperationException("allocator not initialised");

    internal abstract GpuTarget Target { get; }

    /// <summary>Device, driver and platform in one string: part of the kernel cache key.</summary>
    internal abstract string DeviceIdentity { get; }

    /// <summary>The most work-groups a grid-stride kernel is launched with.</summary>
    internal abstract int MaxGroups { get; }

    /// <summary>Largest rows sorted in local memory by one group.</summary>
    internal virtual int SortLocalLimit => 2048;

    /// <summary>Number of programs compiled from source (not loaded from the disk cache) by this backend.</summary>
    public int ProgramsCompiled { get; protected set; }

    /// <summary>Number of programs loaded from the disk cache by this backend.</summary>
    public int ProgramsFromCache { get; protected set; }

    protected void InitAllocator() => _allocator = new CachingAllocator(RawAllocate, RawFree, RawSynchronize);

    // ---------------- what a device provides ----------------

    /// <summary>Makes the device current on this thread (CUDA contexts); called under the lock.</summary>
    protected virtual void Enter()
    {
    }

    /// <summary>Allocates device memory; 0 when the device is out of memory.</summary>
    protected abstract nint RawAllocate(long bytes);

    protected abstract void RawFree(nint handle);

    /// <summary>Queues a host-to-device copy; the source may be reused as soon as this returns.</summary>
    protected abstract void RawUpload(ReadOnlySpan<byte> source, nint destination, long byteOffset);

    /// <summary>Copies device memory to the host after all queued work, and waits for it.</summary>
    protected abstract void RawDownload(nint source, long byteOffset, Span<byte> destination);

    /// <summary>Queues a device-to-device copy.</summary>
    protected abstract void RawCopy(nint source, long sourceOffset, nint destination, long destinationOffset, long bytes);

    protected abstract void RawSynchronize();

    /// <summary>Compiles (or loads from the disk cache) one program; throws <see cref="KernelCompileException"/> with the log.</summary>
    internal abstract KernelProgram BuildProgram(string name, string source);

    /// <summary>Queues a 1-D launch of <paramref name="groups"/> groups of <paramref name="localSize"/> threads.</summary>
    internal abstract void RawLaunch(KernelFunction kernel, long groups, int localSize, KernelArgs args);

    protected abstract string DescribeDevice();

    // ---------------- IBackend: memory ----------------

    public string Describe() => DescribeDevice();

    public Storage Allocate(long bytes)
    {
        lock (Gate)
        {
            Enter();
            var (h, cap) = Allocator.Allocate(bytes);
            return new GpuStorage(this, h, cap, bytes);
        }
    }

    internal void ReleaseBlock(nint handle, long capacity)
    {
        lock (Gate) Allocator.Release(handle, capacity);
    }

    /// <summary>Gives all cached (free) blocks back to the driver.</summary>
    public void EmptyCache()
    {
        lock (Gate)
        {
            Enter();
            Allocator.EmptyCache();
        }
    }

    public void Upload(ReadOnlySpan<byte> source, Storage destination, long byteOffset)
    {
        var s = Own(destination);
        CheckRange(s, byteOffset, source.Length);
        if (source.IsEmpty) return;
        lock (Gate)
        {
            Enter();
            RawUpload(source, s.Handle, byteOffset);
        }
    }

    public void Download(Storage source, long byteOffset, Span<byte> destination)
    {
        var s = Own(source);
        CheckRange(s, byteOffset, destination.Length);
        if (destination.IsEmpty) return;
        lock (Gate)
        {
            Enter();
            RawDownload(s.Handle, byteOffset, destination);
        }
    }

    public void Synchronize()
    {
        lock (Gate)
        {
            Enter();
            RawSynchronize();
        }
    }

    private static void CheckRange(GpuStorage s, long offset, long length)
    {
        if (offset < 0 || offset + length > s.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes [{offset}, {offset + length}) are outside a storage of {s.ByteLength} bytes");
    }

    private GpuStorage Own(Storage storage)
    {
        if (storage is GpuStorage g && ReferenceEquals(g.Owner, this)) return g;
        throw new ArgumentException($"a tensor on {storage.Device} was passed to the {Device} backend; move it with To(device) first", nameof(storage));
    }

    /// <summary>The device buffer behind a view (checked to be this device's).</summary>
    private nint Buf(TensorView v) => Own(v.Storage).Handle;

    // ---------------- kernels ----------------

    /// <summary>The compiled kernel <paramref name="kernel"/> of Kernels/<paramref name="file"/>.k with these defines (compiled at first use).</summary>
    internal KernelFunction Kernel(string file, string defines, string kernel)
    {
        if (!_programs.TryGetValue((file, defines), out var program))
        {
            var source = KernelSource.Assemble(Target, SupportsFloat64, file, defines);
            program = BuildProgram(file + DescribeDefines(defines), source);
            _programs[(file, defines)] = program;
        }
        return program.Get(kernel);
    }

    /// <summary>Compiles a whole source (tests, diagnostics): the kernel named <paramref name="kernel"/>.</summary>
    internal KernelFunction CompileSource(string name, string source, string kernel)
    {
        lock (Gate)
        {
            Enter();
            var full = GpuDialect.Prelude(Target, SupportsFloat64) + source;
            return BuildProgram(name, full).Get(kernel);
        }
    }

    private static string DescribeDefines(string defines)
    {
        var parts = defines.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Replace("#define ", "", StringComparison.Ordinal))
            .Where(l => !l.EndsWith(" 0", StringComparison.Ordinal) && !l.StartsWith("T_LOWEST", StringComparison.Ordinal) && !l.StartsWith("T_HIGHEST", StringComparison.Ordinal));
        var s = string.Join(", ", parts);
        return s.Length == 0 ? "" : $" [{s}]";
    }

    /// <summary>The argument list for the next launch (one per backend, used under the lock).</summary>
    private KernelArgs Args() => _args.Clear();

    /// <summary>Launches a grid-stride kernel over <paramref name="items"/> items.</summary>
    private void LaunchItems(KernelFunction k, long items, KernelArgs args, int local = 256)
    {
        if (items <= 0) return;
        local = Math.Min(local, k.MaxLocalSize);
        long groups = Math.Min((items + local - 1) / local, MaxGroups);
        RawLaunch(k, groups, local, args);
    }

    /// <summary>Launches a kernel whose groups each take whole tasks (grid-stride over groups).</summary>
    private void LaunchGroups(KernelFunction k, long tasks, int local, KernelArgs args)
    {
        if (tasks <= 0) return;
        if (local > k.MaxLocalSize)
            throw new GpuException($"kernel '{k.Name}' needs work-groups of {local} threads, the device allows {k.MaxLocalSize} for it");
        RawLaunch(k, Math.Min(tasks, MaxGroups), local, args);
    }

    private void Require(DType t, string op)
    {
        if (t == DType.Float64 && !SupportsFloat64)
            throw new NotSupportedException($"{op}: {Device} ({Name}) has no double-precision support (cl_khr_fp64); Float64 tensors cannot be computed on it");
    }

    public void Dispose()
    {
        lock (Gate)
        {
            if (_disposed) return;
            _disposed = true;
            Enter();
            RawSynchronize();
            foreach (var p in _programs.Values) p.Dispose();
            _programs.Clear();
            Allocator.EmptyCache();
            DisposeDevice();
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the queue and context (blocks still held by live tensors are leaked to the driver's teardown).</summary>
    protected abstract void DisposeDevice();
}
