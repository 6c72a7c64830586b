using System.Runtime.InteropServices;
using System.Text;
using Runtime.Gpu.Native;

namespace Runtime.Gpu.Cuda;

/// <summary>
/// An NVIDIA GPU through the driver API: the device's primary context, one stream, kernels compiled
/// from the shared .k sources by NVRTC for the device's architecture (sm_XY).
/// </summary>
public sealed unsafe class CudaBackend : GpuBackend
{
    private static readonly object InitGate = new();
    private static int _initResult = -1;

    private readonly int _device;
    private nint _context;
    private nint _stream;
    private readonly string _name;
    private readonly string _identity;
    private readonly string _description;
    private readonly int _major, _minor, _sms;

    private CudaBackend(int index, int device)
        : base(Runtime.Device.Cuda(index))
    {
        _device = device;
        var nameBuf = new byte[256];
        fixed (byte* n = nameBuf) Cu.Check(Cu.cuDeviceGetName(n, nameBuf.Length, device), "cuDeviceGetName");
        _name = Cl.Decode(nameBuf);
        _major = Cu.Attribute(device, Cu.AttrComputeCapabilityMajor);
        _minor = Cu.Attribute(device, Cu.AttrComputeCapabilityMinor);
        _sms = Cu.Attribute(device, Cu.AttrMultiprocessorCount);
        nuint memory;
        Cu.Check(Cu.cuDeviceTotalMem(&memory, device), "cuDeviceTotalMem");
        int driver;
        Cu.Check(Cu.cuDriverGetVersion(&driver), "cuDriverGetVersion");
        int nvMajor, nvMinor;
        Nvrtc.Check(Nvrtc.nvrtcVersion(&nvMajor, &nvMinor), "nvrtcVersion");
        NvrtcVersion = $"{nvMajor}.{nvMinor}";
        DriverVersion = $"{driver / 1000}.{driver % 1000 / 10}";
        _identity = $"cuda|{_name}|sm_{_major}{_minor}|driver {driver}|nvrtc {nvMajor}.{nvMinor}";
        _description = $"{_name}, {memory / (double)(1L << 30):F1} GiB, compute capability {_major}.{_minor}, {_sms} SMs, " +
                       $"driver {DriverVersion}, NVRTC {NvrtcVersion}";
        nint ctx;
        Cu.Check(Cu.cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain");
        _context = ctx;
        Cu.Check(Cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
        nint stream;
        Cu.Check(Cu.cuStreamCreate(&stream, Cu.StreamNonBlocking), "cuStreamCreate");
        _stream = stream;
        InitAllocator();
    }

    public override string Name => _name;

    /// <summary>Compute capability, e.g. (9, 0) for an H100.</summary>
    public (int Major, int Minor) ComputeCapability => (_major, _minor);

    public string DriverVersion { get; }

    public string NvrtcVersion { get; }

    internal override GpuTarget Target => GpuTarget.Cuda;

    internal override string DeviceIdentity => _identity;

    internal override int MaxGroups => _sms * 32;

    internal override (int BM, int BN, int BK, int TM, int TN) MatMulTiles(DType t) =>
        t == DType.Float32 ? (128, 128, 8, 8, 8) : (64, 64, 16, 4, 4);

    protected override string DescribeDevice() => _description;

    protected override void Enter() => Cu.Check(Cu.cuCtxSetCurrent(_context), "cuCtxSetCurrent");

    /// <summary>Initialises the driver once; returns the number of devices or throws why there are none usable.</summary>
    public static int DeviceCount()
    {
        NativeLibraries.Install();
        if (NativeLibraries.TryLoad(NativeLibraries.Cuda, out var reason) == 0) throw new GpuException(reason);
        lock (InitGate)
        {
            if (_initResult < 0) _initResult = Cu.cuInit(0);
        }
        if (_initResult == Cu.ErrorNoDevice) return 0;
        if (_initResult != Cu.Success) throw new GpuException($"cuInit failed: {Cu.ErrorName(_initResult)}");
        int count;
        Cu.Check(Cu.cuDeviceGetCount(&count), "cuDeviceGetCount");
        return count;
    }

    /// <summary>Opens cuda:<paramref name="index"/>; throws <see cref="GpuException"/> saying why it is unavailable.</summary>
    public static CudaBackend Create(int index)
    {
        int count;
        try
        {
            count = DeviceCount();
        }
        catch (GpuException e)
        {
            throw new GpuException($"cuda:{index} is not available: {e.Message}");
        }
        if (index >= count) throw new GpuException($"cuda:{index} is not available: {count} CUDA device(s) found");
        if (NativeLibraries.TryLoad(NativeLibraries.Nvrtc, out var reason) == 0)
            throw new GpuException($"cuda:{index} is not available: {reason}");
        int dev;
        Cu.Check(Cu.cuDeviceGet(&dev, index), "cuDeviceGet");
        return new CudaBackend(index, dev);
    }

    // ---------------- memory ----------------

    protected override nint RawAllocate(long bytes)
    {
        ulong p;
        int err = Cu.cuMemAlloc(&p, (nuint)bytes);
        if (err == Cu.ErrorOutOfMemory) return 0;
        Cu.Check(err, "cuMemAlloc");
        return (nint)p;
    }

    protected override void RawFree(nint handle) => Cu.cuMemFree((ulong)handle);

    protected override void RawUpload(ReadOnlySpan<byte> source, nint destination, long byteOffset)
    {
        // From pageable memory the driver stages the bytes before returning: the span may be reused at once.
        fixed (byte* p = source)
            Cu.Check(Cu.cuMemcpyHtoDAsync((ulong)destination + (ulong)byteOffset, p, (nuint)source.Length, _stream), "cuMemcpyHtoDAsync");
    }

    protected override void RawDownload(nint source, long byteOffset, Span<byte> destination)
    {
        fixed (byte* p = destination)
        {
            Cu.Check(Cu.cuMemcpyDtoHAsync(p, (ulong)source + (ulong)byteOffset, (nuint)destination.Length, _stream), "cuMemcpyDtoHAsync");
            Cu.Check(Cu.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        }
    }

    protected override void RawCopy(nint source, long sourceOffset, nint destination, long destinationOffset, long bytes)
    {
        if (bytes == 0) return;
        Cu.Check(Cu.cuMemcpyDtoDAsync((ulong)destination + (ulong)destinationOffset, (ulong)source + (ulong)sourceOffset, (nuint)bytes, _stream),
            "cuMemcpyDtoDAsync");
    }

    protected override void RawSynchronize() => Cu.Check(Cu.cuStreamSynchronize(_stream), "cuStreamSynchronize");

    // ---------------- timing (benchmarks) ----------------

    /// <summary>Milliseconds of device time taken by the work <paramref name="work"/> queues, measured with events.</summary>
    public double TimeMilliseconds(Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        nint start, end;
        lock (Gate)
        {
            Enter();
            Cu.Check(Cu.cuEventCreate(&start, Cu.EventDefault), "cuEventCreate");
            Cu.Check(Cu.cuEventCreate(&end, Cu.EventDefault), "cuEventCreate");
            Cu.Check(Cu.cuEventRecord(start, _stream), "cuEventRecord");
        }
        try
        {
            work();
            float ms;
            lock (Gate)
            {
                Enter();
                Cu.Check(Cu.cuEventRecord(end, _stream), "cuEventRecord");
                Cu.Check(Cu.cuEventSynchronize(end), "cuEventSynchronize");
                Cu.Check(Cu.cuEventElapsedTime(&ms, start, end), "cuEventElapsedTime");
            }
            return ms;
        }
        finally
        {
            lock (Gate)
            {
                Cu.cuEventDestroy(start);
                Cu.cuEventDestroy(end);
            }
        }
    }

    // ---------------- programs ----------------

    private string[] Options => [$"--gpu-architecture=sm_{_major}{_minor}", "--std=c++17", "-default-device"];

    internal override KernelProgram BuildProgram(string name, string source)
    {
        var options = Options;
        var key = KernelCache.Key(source, string.Join(' ', options), _identity);
        foreach (var ext in new[] { ".cubin", ".ptx" })
        {
            var cached = KernelCache.TryRead(key, ext);
            if (cached == null) continue;
            var module = TryLoadModule(cached, out _);
            if (module != 0)
            {
                ProgramsFromCache++;
                return new CudaProgram(module) { Name = name };
            }
            KernelCache.Remove(key, ext);
        }
        var (cubin, ptx) = Compile(name, source, options);
        ProgramsCompiled++;
        string? failure = null;
        if (cubin != null)
        {
            var m = TryLoadModule(cubin, out failure);
            if (m != 0)
            {
                KernelCache.Write(key, ".cubin", cubin);
                return new CudaProgram(m) { Name = name };
            }
        }
        if (ptx == null) throw new GpuException($"loading kernel '{name}' on {Device} failed: {failure}");
        var mp = TryLoadModule(ptx, out var ptxFailure);
        if (mp == 0) throw new GpuException($"loading kernel '{name}' on {Device} failed: {ptxFailure}{(failure != null ? $" (CUBIN: {failure})" : "")}");
        KernelCache.Write(key, ".ptx", ptx);
        return new CudaProgram(mp) { Name = name };
    }

    private static nint TryLoadModule(byte[] image, out string? failure)
    {
        nint module;
        int err;
        fixed (byte* p = image) err = Cu.cuModuleLoadData(&module, p);
        failure = err == Cu.Success ? null : Cu.ErrorName(err);
        return err == Cu.Success ? module : 0;
    }

    /// <summary>NVRTC: CUBIN for the device's architecture where available, and PTX (NUL-terminated).</summary>
    private (byte[]? Cubin, byte[]? Ptx) Compile(string name, string source, string[] options)
    {
        var src = Encoding.UTF8.GetBytes(source + "\0");
        var nm = Encoding.UTF8.GetBytes(name.Replace(' ', '_') + ".cu\0");
        nint prog;
        fixed (byte* s = src, n = nm) Nvrtc.Check(Nvrtc.nvrtcCreateProgram(&prog, s, n, 0, null, null), "nvrtcCreateProgram");
        try
        {
            var opts = options.Select(o => Marshal.StringToCoTaskMemUTF8(o)).ToArray();
            int err;
            try
            {
                fixed (nint* o = opts) err = Nvrtc.nvrtcCompileProgram(prog, opts.Length, (byte**)o);
            }
            finally
            {
                foreach (var o in opts) Marshal.FreeCoTaskMem(o);
            }
            if (err != Nvrtc.Success)
            {
                var log = ProgramLog(prog);
                throw new KernelCompileException(name, $"{Device} ({_name}, sm_{_major}{_minor})", log.Length > 0 ? log : Nvrtc.ErrorString(err));
            }
            byte[]? cubin = null;
            try
            {
                nuint cs;
                if (Nvrtc.nvrtcGetCUBINSize(prog, &cs) == Nvrtc.Success && cs > 0)
                {
                    cubin = new byte[(int)cs];
                    fixed (byte* c = cubin)
                        if (Nvrtc.nvrtcGetCUBIN(prog, c) != Nvrtc.Success) cubin = null;
                }
            }
            catch (EntryPointNotFoundException)
            {
                cubin = null;
            }
            // PTX as well where NVRTC keeps it (the fallback when the driver cannot load the CUBIN).
            byte[]? ptx = null;
            nuint ps;
            int pe = Nvrtc.nvrtcGetPTXSize(prog, &ps);
            if (pe == Nvrtc.Success && ps > 0)
            {
                ptx = new byte[(int)ps];
                fixed (byte* p = ptx)
                    if (Nvrtc.nvrtcGetPTX(prog, p) != Nvrtc.Success) ptx = null;
            }
            if (cubin == null && ptx == null) throw new GpuException($"NVRTC produced neither CUBIN nor PTX for '{name}': {Nvrtc.ErrorString(pe)}");
            return (cubin, ptx);
        }
        finally
        {
            Nvrtc.nvrtcDestroyProgram(&prog);
        }
    }

    private static string ProgramLog(nint prog)
    {
        nuint size;
        if (Nvrtc.nvrtcGetProgramLogSize(prog, &size) != Nvrtc.Success || size <= 1) return "";
        var buf = new byte[(int)size];
        fixed (byte* b = buf) Nvrtc.nvrtcGetProgramLog(prog, b);
        return Cl.Decode(buf);
    }

    private sealed class CudaProgram(nint module) : KernelProgram
    {
        private nint _module = module;

        protected override KernelFunction Create(string kernel)
        {
            var name = Encoding.UTF8.GetBytes(kernel + "\0");
            nint f;
            fixed (byte* n = name) Cu.Check(Cu.cuModuleGetFunction(&f, _module, n), $"cuModuleGetFunction({kernel})");
            int max;
            Cu.Check(Cu.cuFuncGetAttribute(&max, Cu.FuncAttrMaxThreadsPerBlock, f), "cuFuncGetAttribute");
            return new KernelFunction($"{Name}:{kernel}", f, max);
        }

        public override void Dispose()
        {
            if (_module != 0) Cu.cuModuleUnload(_module);
            _module = 0;
        }
    }

    internal override void RawLaunch(KernelFunction kernel, long groups, int localSize, KernelArgs args)
    {
        int count = args.Count;
        void** ptrs = stackalloc void*[count];
        fixed (byte* data = args.Data)
        {
            var offsets = args.Offsets;
            for (int i = 0; i < count; i++) ptrs[i] = data + offsets[i];
            int err = Cu.cuLaunchKernel(kernel.Handle, (uint)groups, 1, 1, (uint)localSize, 1, 1, 0, _stream, ptrs, null);
            if (err != Cu.Success) throw new GpuException($"launching {kernel.Name} ({groups} x {localSize}) failed: {Cu.ErrorName(err)}");
        }
    }

    protected override void DisposeDevice()
    {
        if (_stream != 0) Cu.cuStreamDestroy(_stream);
        _stream = 0;
        if (_context != 0) Cu.cuDevicePrimaryCtxRelease(_device);
        _context = 0;
    }
}
