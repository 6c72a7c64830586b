using System.Text;
using Runtime.Gpu.Native;

namespace Runtime.Gpu.OpenCL;

/// <summary>
/// An OpenCL 1.2 device (any vendor; PoCL runs it on the CPU, which is how the kernels are tested
/// without a GPU): one context, one in-order queue, kernels built from the shared .k sources.
/// </summary>
public sealed unsafe class OpenCLBackend : GpuBackend
{
    private readonly nint _device;
    private nint _context;
    private nint _queue;
    private readonly string _name;
    private readonly string _identity;
    private readonly string _description;
    private readonly int _maxGroups;
    private readonly long _maxAlloc;

    private OpenCLBackend(int index, nint platform, nint device, bool allowFp64 = true)
        : base(Runtime.Device.OpenCL(index))
    {
        _device = device;
        _name = Cl.DeviceString(device, Cl.DeviceName);
        var vendor = Cl.DeviceString(device, Cl.DeviceVendor);
        var version = Cl.DeviceString(device, Cl.DeviceVersion);
        var driver = Cl.DeviceString(device, Cl.DriverVersion);
        var platformName = Cl.PlatformString(platform, Cl.PlatformName);
        var platformVersion = Cl.PlatformString(platform, Cl.PlatformVersion);
        var extensions = Cl.DeviceString(device, Cl.DeviceExtensions);
        SupportsFloat64 = allowFp64 && extensions.Split(' ').Contains("cl_khr_fp64");
        ulong type = Cl.DeviceValue<ulong>(device, Cl.DeviceType);
        uint units = Cl.DeviceValue<uint>(device, Cl.DeviceMaxComputeUnits);
        ulong memory = Cl.DeviceValue<ulong>(device, Cl.DeviceGlobalMemSize);
        _maxAlloc = (long)Cl.DeviceValue<ulong>(device, Cl.DeviceMaxMemAllocSize);
        bool gpu = (type & 4) != 0;
        IsCpuDevice = (type & 2) != 0;
        // A GPU wants a few resident groups per compute unit, each looping over the items (grid-stride);
        // a CPU device (PoCL) runs each group as a loop over its items, vectorised, so there one item
        // per work-item (a contiguous run per group) is much faster than a strided walk.
        _maxGroups = gpu ? (int)Math.Max(1, units * 32u) : 1 << 20;
        _identity = $"opencl|{platformName}|{platformVersion}|{_name}|{vendor}|{version}|{driver}";
        _description = $"{_name} ({platformName}), {memory / (double)(1L << 30):F1} GiB, {units} compute units, {version}, " +
                       $"fp64 {(SupportsFloat64 ? "yes" : "no")}, driver {driver}";

        int err;
        nint dev = device;
        _context = Cl.clCreateContext(null, 1, &dev, 0, 0, &err);
        Cl.Check(err, "clCreateContext");
        _queue = Cl.clCreateCommandQueue(_context, device, 0, &err);
        Cl.Check(err, "clCreateCommandQueue");
        InitAllocator();
    }

    public override string Name => _name;

    /// <summary>Whether the device is a CPU (PoCL): kernels run there in host memory.</summary>
    public bool IsCpuDevice { get; }

    internal override GpuTarget Target => GpuTarget.OpenCL;

    internal override string DeviceIdentity => _identity;

    internal override int MaxGroups => _maxGroups;

    protected override string DescribeDevice() => _description;

    /// <summary>Every OpenCL device of every platform, in order (the ordinal of opencl:i), or why there are none.</summary>
    public static (List<(nint Platform, nint Device)> Devices, string? Reason) Enumerate()
    {
        var list = new List<(nint, nint)>();
        if (NativeLibraries.TryLoad(NativeLibraries.OpenCL, out var reason) == 0) return (list, reason);
        uint np;
        int err = Cl.clGetPlatformIDs(0, null, &np);
        if (err == Cl.PlatformNotFoundKhr || np == 0) return (list, "no OpenCL platform is installed (no ICD in /etc/OpenCL/vendors)");
        if (err != Cl.Success) return (list, $"clGetPlatformIDs failed: {Cl.ErrorName(err)}");
        var platforms = new nint[np];
        fixed (nint* p = platforms) Cl.Check(Cl.clGetPlatformIDs(np, p, null), "clGetPlatformIDs");
        foreach (var platform in platforms)
        {
            uint nd;
            if (Cl.clGetDeviceIDs(platform, Cl.DeviceTypeAll, 0, null, &nd) != Cl.Success || nd == 0) continue;
            var devices = new nint[nd];
            fixed (nint* d = devices) Cl.Check(Cl.clGetDeviceIDs(platform, Cl.DeviceTypeAll, nd, d, null), "clGetDeviceIDs");
            foreach (var d in devices) list.Add((platform, d));
        }
        return (list, list.Count == 0 ? "the OpenCL platforms report no devices" : null);
    }

    /// <summary>Opens opencl:<paramref name="index"/>; throws <see cref="GpuException"/> saying why it is unavailable.</summary>
    public static OpenCLBackend Create(int index) => Create(index, allowFp64: true);

    /// <summary>Tests: a second, unregistered instance that behaves as a device without doubles.</summary>
    internal static OpenCLBackend Create(int index, bool allowFp64)
    {
        NativeLibraries.Install();
        var (devices, reason) = Enumerate();
        if (reason != null) throw new GpuException($"opencl:{index} is not available: {reason}");
        if (index >= devices.Count) throw new GpuException($"opencl:{index} is not available: {devices.Count} OpenCL device(s) found");
        return new OpenCLBackend(index, devices[index].Platform, devices[index].Device, allowFp64);
    }

    // ---------------- memory ----------------

    protected override nint RawAllocate(long bytes)
    {
        if (bytes > _maxAlloc)
            throw new OutOfMemoryException($"{Device}: {bytes} bytes exceed the device's largest allocation ({_maxAlloc} bytes)");
        int err;
        nint mem = Cl.clCreateBuffer(_context, Cl.MemReadWrite, (nuint)bytes, null, &err);
        if (err is Cl.MemObjectAllocationFailure or Cl.OutOfResources or Cl.OutOfHostMemory) return 0;
        Cl.Check(err, "clCreateBuffer");
        return mem;
    }

    protected override void RawFree(nint handle) => Cl.clReleaseMemObject(handle);

    protected override void RawUpload(ReadOnlySpan<byte> source, nint destination, long byteOffset)
    {
        fixed (byte* p = source)
        {
            if (source.Length <= 1 << 24)
            {
                // Without waiting for the queue: the driver copies the bytes into a new buffer now, and the
                // queue copies that into place in order. The staging buffer goes when the copy is done.
                int err;
                nint staging = Cl.clCreateBuffer(_context, Cl.MemReadWrite | Cl.MemCopyHostPtr, (nuint)source.Length, p, &err);
                if (err == Cl.Success)
                {
                    err = Cl.clEnqueueCopyBuffer(_queue, staging, destination, 0, (nuint)byteOffset, (nuint)source.Length, 0, null, null);
                    Cl.clReleaseMemObject(staging);
                    Cl.Check(err, "clEnqueueCopyBuffer");
                    return;
                }
            }
            Cl.Check(Cl.clEnqueueWriteBuffer(_queue, destination, 1, (nuint)byteOffset, (nuint)source.Length, p, 0, null, null), "clEnqueueWriteBuffer");
        }
    }

    protected override void RawDownload(nint source, long byteOffset, Span<byte> destination)
    {
        fixed (byte* p = destination)
            Cl.Check(Cl.clEnqueueReadBuffer(_queue, source, 1, (nuint)byteOffset, (nuint)destination.Length, p, 0, null, null), "clEnqueueReadBuffer");
    }

    protected override void RawCopy(nint source, long sourceOffset, nint destination, long destinationOffset, long bytes)
    {
        if (bytes == 0) return;
        Cl.Check(Cl.clEnqueueCopyBuffer(_queue, source, destination, (nuint)sourceOffset, (nuint)destinationOffset, (nuint)bytes, 0, null, null),
            "clEnqueueCopyBuffer");
    }

    protected override void RawSynchronize() => Cl.Check(Cl.clFinish(_queue), "clFinish");

    // ---------------- programs ----------------

    private const string BuildOptions = "-cl-std=CL1.2";

    internal override KernelProgram BuildProgram(string name, string source)
    {
        var key = KernelCache.Key(source, BuildOptions, _identity);
        var cached = KernelCache.TryRead(key, ".clbin");
        if (cached != null)
        {
            var fromCache = TryBuildBinary(name, cached);
            if (fromCache != null)
            {
                ProgramsFromCache++;
                return fromCache;
            }
            KernelCache.Remove(key, ".clbin");
        }
        var program = BuildFromSource(name, source);
        ProgramsCompiled++;
        var binary = ProgramBinary(program.Handle);
        if (binary != null) KernelCache.Write(key, ".clbin", binary);
        return program;
    }

    private OpenCLProgram BuildFromSource(string name, string source)
    {
        var bytes = Encoding.UTF8.GetBytes(source);
        int err;
        nint program;
        fixed (byte* s = bytes)
        {
            byte* sp = s;
            nuint len = (nuint)bytes.Length;
            program = Cl.clCreateProgramWithSource(_context, 1, &sp, &len, &err);
        }
        Cl.Check(err, "clCreateProgramWithSource");
        err = Build(program);
        if (err != Cl.Success)
        {
            var log = BuildLog(program);
            Cl.clReleaseProgram(program);
            throw new KernelCompileException(name, $"{Device} ({_name})", log.Length > 0 ? log : Cl.ErrorName(err));
        }
        return new OpenCLProgram(this, program) { Name = name };
    }

    private OpenCLProgram? TryBuildBinary(string name, byte[] binary)
    {
        int err, status;
        nint program;
        nint dev = _device;
        fixed (byte* b = binary)
        {
            byte* bp = b;
            nuint len = (nuint)binary.Length;
            program = Cl.clCreateProgramWithBinary(_context, 1, &dev, &len, &bp, &status, &err);
        }
        if (err != Cl.Success || status != Cl.Success)
        {
            if (program != 0) Cl.clReleaseProgram(program);
            return null;
        }
        if (Build(program) != Cl.Success)
        {
            Cl.clReleaseProgram(program);
            return null;
        }
        return new OpenCLProgram(this, program) { Name = name };
    }

    private int Build(nint program)
    {
        var opts = Encoding.UTF8.GetBytes(BuildOptions + "\0");
        nint dev = _device;
        fixed (byte* o = opts) return Cl.clBuildProgram(program, 1, &dev, o, 0, 0);
    }

    private string BuildLog(nint program)
    {
        nuint size;
        if (Cl.clGetProgramBuildInfo(program, _device, Cl.ProgramBuildLog, 0, null, &size) != Cl.Success || size == 0) return "";
        var buf = new byte[(int)size];
        fixed (byte* p = buf) Cl.clGetProgramBuildInfo(program, _device, Cl.ProgramBuildLog, size, p, null);
        return Cl.Decode(buf);
    }

    private static byte[]? ProgramBinary(nint program)
    {
        nuint size;
        if (Cl.clGetProgramInfo(program, Cl.ProgramBinarySizes, (nuint)sizeof(nuint), &size, null) != Cl.Success || size == 0) return null;
        var buf = new byte[(int)size];
        fixed (byte* p = buf)
        {
            byte* pp = p;
            if (Cl.clGetProgramInfo(program, Cl.ProgramBinaries, (nuint)sizeof(nint), &pp, null) != Cl.Success) return null;
        }
        return buf;
    }

    private sealed class OpenCLProgram(OpenCLBackend owner, nint handle) : KernelProgram
    {
        private readonly List<nint> _kernels = new();

        public nint Handle { get; private set; } = handle;

        protected override KernelFunction Create(string kernel)
        {
            var name = Encoding.UTF8.GetBytes(kernel + "\0");
            int err;
            nint k;
            fixed (byte* n = name) k = Cl.clCreateKernel(Handle, n, &err);
            Cl.Check(err, $"clCreateKernel({kernel})");
            _kernels.Add(k);
            nuint max;
            Cl.Check(Cl.clGetKernelWorkGroupInfo(k, owner._device, Cl.KernelWorkGroupSize, (nuint)sizeof(nuint), &max, null), "clGetKernelWorkGroupInfo");
            return new KernelFunction($"{Name}:{kernel}", k, (int)Math.Min((ulong)max, 1024));
        }

        public override void Dispose()
        {
            foreach (var k in _kernels) Cl.clReleaseKernel(k);
            _kernels.Clear();
            if (Handle != 0) Cl.clReleaseProgram(Handle);
            Handle = 0;
        }
    }

    internal override void RawLaunch(KernelFunction kernel, long groups, int localSize, KernelArgs args)
    {
        fixed (byte* data = args.Data)
        {
            var offsets = args.Offsets;
            var sizes = args.Sizes;
            for (int i = 0; i < args.Count; i++)
            {
                int err = Cl.clSetKernelArg(kernel.Handle, (uint)i, (nuint)sizes[i], data + offsets[i]);
                if (err != Cl.Success) throw new GpuException($"clSetKernelArg({kernel.Name}, {i}) failed: {Cl.ErrorName(err)}");
            }
        }
        nuint local = (nuint)localSize;
        nuint global = (nuint)(groups * localSize);
        int e = Cl.clEnqueueNDRangeKernel(_queue, kernel.Handle, 1, null, &global, &local, 0, null, null);
        if (e != Cl.Success) throw new GpuException($"launching {kernel.Name} ({groups} x {localSize}) failed: {Cl.ErrorName(e)}");
    }

    protected override void DisposeDevice()
    {
        if (_queue != 0) Cl.clReleaseCommandQueue(_queue);
        if (_context != 0) Cl.clReleaseContext(_context);
        _queue = 0;
        _context = 0;
    }
}
