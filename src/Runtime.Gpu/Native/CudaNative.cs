using System.Runtime.InteropServices;

namespace Runtime.Gpu.Native;

/// <summary>CUDA driver API bindings (libcuda.so.1). Device pointers are 64-bit integers; other handles opaque pointers.</summary>
internal static unsafe partial class Cu
{
    private const string Lib = NativeLibraries.Cuda;

    public const int Success = 0;
    public const int ErrorOutOfMemory = 2;
    public const int ErrorNoDevice = 100;

    // CUdevice_attribute
    public const int AttrMaxThreadsPerBlock = 1;
    public const int AttrMaxSharedMemoryPerBlock = 8;
    public const int AttrWarpSize = 10;
    public const int AttrClockRate = 13;
    public const int AttrMultiprocessorCount = 16;
    public const int AttrMemoryClockRate = 36;
    public const int AttrGlobalMemoryBusWidth = 37;
    public const int AttrComputeCapabilityMajor = 75;
    public const int AttrComputeCapabilityMinor = 76;

    // CUfunction_attribute
    public const int FuncAttrMaxThreadsPerBlock = 0;

    public const uint StreamNonBlocking = 1;
    public const uint EventDefault = 0;

    [LibraryImport(Lib)] public static partial int cuInit(uint flags);
    [LibraryImport(Lib)] public static partial int cuDriverGetVersion(int* version);
    [LibraryImport(Lib)] public static partial int cuGetErrorName(int error, byte** name);
    [LibraryImport(Lib)] public static partial int cuGetErrorString(int error, byte** text);

    [LibraryImport(Lib)] public static partial int cuDeviceGetCount(int* count);
    [LibraryImport(Lib)] public static partial int cuDeviceGet(int* device, int ordinal);
    [LibraryImport(Lib)] public static partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] public static partial int cuDeviceGetAttribute(int* value, int attribute, int device);
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")] public static partial int cuDeviceTotalMem(nuint* bytes, int device);

    [LibraryImport(Lib)] public static partial int cuDevicePrimaryCtxRetain(nint* context, int device);
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] public static partial int cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(Lib)] public static partial int cuCtxSetCurrent(nint context);
    [LibraryImport(Lib)] public static partial int cuCtxSynchronize();

    [LibraryImport(Lib, EntryPoint = "cuMemAlloc_v2")] public static partial int cuMemAlloc(ulong* pointer, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemFree_v2")] public static partial int cuMemFree(ulong pointer);
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")] public static partial int cuMemGetInfo(nuint* free, nuint* total);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoD_v2")] public static partial int cuMemcpyHtoD(ulong dst, void* src, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoH_v2")] public static partial int cuMemcpyDtoH(void* dst, ulong src, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoD_v2")] public static partial int cuMemcpyDtoD(ulong dst, ulong src, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")] public static partial int cuMemcpyHtoDAsync(ulong dst, void* src, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")] public static partial int cuMemcpyDtoHAsync(void* dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoDAsync_v2")] public static partial int cuMemcpyDtoDAsync(ulong dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemsetD8_v2")] public static partial int cuMemsetD8(ulong dst, byte value, nuint count);
    [LibraryImport(Lib)] public static partial int cuMemsetD8Async(ulong dst, byte value, nuint count, nint stream);

    [LibraryImport(Lib)] public static partial int cuStreamCreate(nint* stream, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")] public static partial int cuStreamDestroy(nint stream);
    [LibraryImport(Lib)] public static partial int cuStreamSynchronize(nint stream);

    [LibraryImport(Lib)] public static partial int cuEventCreate(nint* evt, uint flags);
    [LibraryImport(Lib)] public static partial int cuEventRecord(nint evt, nint stream);
    [LibraryImport(Lib)] public static partial int cuEventSynchronize(nint evt);
    [LibraryImport(Lib)] public static partial int cuEventElapsedTime(float* milliseconds, nint start, nint end);
    [LibraryImport(Lib, EntryPoint = "cuEventDestroy_v2")] public static partial int cuEventDestroy(nint evt);

    [LibraryImport(Lib)] public static partial int cuModuleLoadData(nint* module, void* image);
    [LibraryImport(Lib)] public static partial int cuModuleUnload(nint module);
    [LibraryImport(Lib)] public static partial int cuModuleGetFunction(nint* function, nint module, byte* name);
    [LibraryImport(Lib)] public static partial int cuFuncGetAttribute(int* value, int attribute, nint function);

    [LibraryImport(Lib)]
    public static partial int cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemBytes, nint stream, void** kernelParams, void** extra);

    // ---------------- helpers ----------------

    public static void Check(int err, string call)
    {
        if (err != Success) throw new GpuException($"{call} failed: {ErrorName(err)} ({err})");
    }

    public static string ErrorName(int err)
    {
        try
        {
            byte* p;
            if (cuGetErrorName(err, &p) == Success && p != null) return Marshal.PtrToStringUTF8((nint)p) ?? $"CUDA error {err}";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
        return $"CUDA error {err}";
    }

    public static int Attribute(int device, int attribute)
    {
        int v;
        Check(cuDeviceGetAttribute(&v, attribute, device), "cuDeviceGetAttribute");
        return v;
    }
}

/// <summary>NVRTC bindings: compiles the CUDA form of a kernel source to PTX (and CUBIN where available).</summary>
internal static unsafe partial class Nvrtc
{
    private const string Lib = NativeLibraries.Nvrtc;

    public const int Success = 0;
    public const int CompilationError = 6;

    [LibraryImport(Lib)] public static partial int nvrtcVersion(int* major, int* minor);
    [LibraryImport(Lib)] public static partial nint nvrtcGetErrorString(int result);

    [LibraryImport(Lib)]
    public static partial int nvrtcCreateProgram(nint* program, byte* source, byte* name, int numHeaders, byte** headers, byte** includeNames);

    [LibraryImport(Lib)] public static partial int nvrtcDestroyProgram(nint* program);
    [LibraryImport(Lib)] public static partial int nvrtcCompileProgram(nint program, int numOptions, byte** options);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLogSize(nint program, nuint* size);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLog(nint program, byte* log);
    [LibraryImport(Lib)] public static partial int nvrtcGetPTXSize(nint program, nuint* size);
    [LibraryImport(Lib)] public static partial int nvrtcGetPTX(nint program, byte* ptx);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBINSize(nint program, nuint* size);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBIN(nint program, byte* cubin);

    public static string ErrorString(int err)
    {
        try
        {
            return Marshal.PtrToStringUTF8(nvrtcGetErrorString(err)) ?? $"NVRTC error {err}";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return $"NVRTC error {err}";
        }
    }

    public static void Check(int err, string call)
    {
        if (err != Success) throw new GpuException($"{call} failed: {ErrorString(err)} ({err})");
    }
}
