using System.Runtime.InteropServices;
using System.Text;

namespace Runtime.Gpu.Native;

/// <summary>OpenCL 1.2 bindings: the calls the backend needs and nothing else. Handles are opaque pointers.</summary>
internal static unsafe partial class Cl
{
    private const string Lib = NativeLibraries.OpenCL;

    public const int Success = 0;
    public const int DeviceNotFound = -1;
    public const int MemObjectAllocationFailure = -4;
    public const int OutOfResources = -5;
    public const int OutOfHostMemory = -6;
    public const int BuildProgramFailure = -11;
    public const int InvalidBinary = -42;
    public const int PlatformNotFoundKhr = -1001;

    public const ulong DeviceTypeAll = 0xFFFFFFFF;

    // clGetPlatformInfo
    public const uint PlatformProfile = 0x0900, PlatformVersion = 0x0901, PlatformName = 0x0902, PlatformVendor = 0x0903;

    // clGetDeviceInfo
    public const uint DeviceType = 0x1000;
    public const uint DeviceMaxComputeUnits = 0x1002;
    public const uint DeviceMaxWorkGroupSize = 0x1004;
    public const uint DeviceMaxClockFrequency = 0x100C;
    public const uint DeviceMaxMemAllocSize = 0x1010;
    public const uint DeviceGlobalMemSize = 0x101F;
    public const uint DeviceLocalMemSize = 0x1023;
    public const uint DeviceName = 0x102B;
    public const uint DeviceVendor = 0x102C;
    public const uint DriverVersion = 0x102D;
    public const uint DeviceVersion = 0x102F;
    public const uint DeviceExtensions = 0x1030;
    public const uint DeviceDoubleFpConfig = 0x1032;
    public const uint DeviceOpenCLCVersion = 0x103D;

    // clGetProgramInfo / clGetProgramBuildInfo / clGetKernelWorkGroupInfo
    public const uint ProgramBinarySizes = 0x1165, ProgramBinaries = 0x1166;
    public const uint ProgramBuildStatus = 0x1181, ProgramBuildLog = 0x1183;
    public const uint KernelWorkGroupSize = 0x11B0;

    // clGetEventProfilingInfo
    public const uint ProfilingCommandStart = 0x1282, ProfilingCommandEnd = 0x1283;

    // cl_mem_flags, queue properties
    public const ulong MemReadWrite = 1, MemCopyHostPtr = 1 << 5;
    public const ulong QueueProfilingEnable = 1 << 1;

    [LibraryImport(Lib)] public static partial int clGetPlatformIDs(uint numEntries, nint* platforms, uint* numPlatforms);
    [LibraryImport(Lib)] public static partial int clGetPlatformInfo(nint platform, uint param, nuint size, void* value, nuint* sizeRet);
    [LibraryImport(Lib)] public static partial int clGetDeviceIDs(nint platform, ulong type, uint numEntries, nint* devices, uint* numDevices);
    [LibraryImport(Lib)] public static partial int clGetDeviceInfo(nint device, uint param, nuint size, void* value, nuint* sizeRet);

    [LibraryImport(Lib)] public static partial nint clCreateContext(nint* properties, uint numDevices, nint* devices, nint notify, nint userData, int* err);
    [LibraryImport(Lib)] public static partial int clReleaseContext(nint context);
    [LibraryImport(Lib)] public static partial nint clCreateCommandQueue(nint context, nint device, ulong properties, int* err);
    [LibraryImport(Lib)] public static partial int clReleaseCommandQueue(nint queue);

    [LibraryImport(Lib)] public static partial nint clCreateBuffer(nint context, ulong flags, nuint size, void* hostPtr, int* err);
    [LibraryImport(Lib)] public static partial int clReleaseMemObject(nint mem);

    [LibraryImport(Lib)] public static partial nint clCreateProgramWithSource(nint context, uint count, byte** strings, nuint* lengths, int* err);
    [LibraryImport(Lib)] public static partial nint clCreateProgramWithBinary(nint context, uint numDevices, nint* devices, nuint* lengths, byte** binaries, int* binaryStatus, int* err);
    [LibraryImport(Lib)] public static partial int clBuildProgram(nint program, uint numDevices, nint* devices, byte* options, nint notify, nint userData);
    [LibraryImport(Lib)] public static partial int clGetProgramInfo(nint program, uint param, nuint size, void* value, nuint* sizeRet);
    [LibraryImport(Lib)] public static partial int clGetProgramBuildInfo(nint program, nint device, uint param, nuint size, void* value, nuint* sizeRet);
    [LibraryImport(Lib)] public static partial int clReleaseProgram(nint program);

    [LibraryImport(Lib)] public static partial nint clCreateKernel(nint program, byte* name, int* err);
    [LibraryImport(Lib)] public static partial int clReleaseKernel(nint kernel);
    [LibraryImport(Lib)] public static partial int clSetKernelArg(nint kernel, uint index, nuint size, void* value);
    [LibraryImport(Lib)] public static partial int clGetKernelWorkGroupInfo(nint kernel, nint device, uint param, nuint size, void* value, nuint* sizeRet);

    [LibraryImport(Lib)]
    public static partial int clEnqueueNDRangeKernel(nint queue, nint kernel, uint workDim, nuint* globalOffset, nuint* globalSize, nuint* localSize,
        uint numEvents, nint* waitList, nint* evt);

    [LibraryImport(Lib)]
    public static partial int clEnqueueReadBuffer(nint queue, nint buffer, uint blocking, nuint offset, nuint size, void* ptr, uint numEvents, nint* waitList, nint* evt);

    [LibraryImport(Lib)]
    public static partial int clEnqueueWriteBuffer(nint queue, nint buffer, uint blocking, nuint offset, nuint size, void* ptr, uint numEvents, nint* waitList, nint* evt);

    [LibraryImport(Lib)]
    public static partial int clEnqueueCopyBuffer(nint queue, nint src, nint dst, nuint srcOffset, nuint dstOffset, nuint size, uint numEvents, nint* waitList, nint* evt);

    [LibraryImport(Lib)]
    public static partial int clEnqueueFillBuffer(nint queue, nint buffer, void* pattern, nuint patternSize, nuint offset, nuint size, uint numEvents, nint* waitList, nint* evt);

    [LibraryImport(Lib)] public static partial int clFlush(nint queue);
    [LibraryImport(Lib)] public static partial int clFinish(nint queue);
    [LibraryImport(Lib)] public static partial int clWaitForEvents(uint numEvents, nint* events);
    [LibraryImport(Lib)] public static partial int clReleaseEvent(nint evt);
    [LibraryImport(Lib)] public static partial int clGetEventProfilingInfo(nint evt, uint param, nuint size, void* value, nuint* sizeRet);

    // ---------------- helpers ----------------

    public static void Check(int err, string call)
    {
        if (err != Success) throw new GpuException($"{call} failed: {ErrorName(err)} ({err})");
    }

    public static string ErrorName(int err) => err switch
    {
        0 => "CL_SUCCESS",
        -1 => "CL_DEVICE_NOT_FOUND",
        -2 => "CL_DEVICE_NOT_AVAILABLE",
        -3 => "CL_COMPILER_NOT_AVAILABLE",
        -4 => "CL_MEM_OBJECT_ALLOCATION_FAILURE",
        -5 => "CL_OUT_OF_RESOURCES",
        -6 => "CL_OUT_OF_HOST_MEMORY",
        -11 => "CL_BUILD_PROGRAM_FAILURE",
        -30 => "CL_INVALID_VALUE",
        -33 => "CL_INVALID_DEVICE",
        -34 => "CL_INVALID_CONTEXT",
        -36 => "CL_INVALID_COMMAND_QUEUE",
        -38 => "CL_INVALID_MEM_OBJECT",
        -42 => "CL_INVALID_BINARY",
        -43 => "CL_INVALID_BUILD_OPTIONS",
        -44 => "CL_INVALID_PROGRAM",
        -46 => "CL_INVALID_KERNEL_NAME",
        -48 => "CL_INVALID_KERNEL",
        -49 => "CL_INVALID_ARG_INDEX",
        -50 => "CL_INVALID_ARG_VALUE",
        -51 => "CL_INVALID_ARG_SIZE",
        -52 => "CL_INVALID_KERNEL_ARGS",
        -54 => "CL_INVALID_WORK_GROUP_SIZE",
        -55 => "CL_INVALID_WORK_ITEM_SIZE",
        -61 => "CL_INVALID_BUFFER_SIZE",
        -63 => "CL_INVALID_GLOBAL_WORK_SIZE",
        -1001 => "CL_PLATFORM_NOT_FOUND_KHR",
        _ => "CL error",
    };

    public static string PlatformString(nint platform, uint param)
    {
        nuint size;
        if (clGetPlatformInfo(platform, param, 0, null, &size) != Success || size == 0) return "";
        var buf = new byte[(int)size];
        fixed (byte* p = buf) clGetPlatformInfo(platform, param, size, p, null);
        return Decode(buf);
    }

    public static string DeviceString(nint device, uint param)
    {
        nuint size;
        if (clGetDeviceInfo(device, param, 0, null, &size) != Success || size == 0) return "";
        var buf = new byte[(int)size];
        fixed (byte* p = buf) clGetDeviceInfo(device, param, size, p, null);
        return Decode(buf);
    }

    public static T DeviceValue<T>(nint device, uint param) where T : unmanaged
    {
        T v = default;
        Check(clGetDeviceInfo(device, param, (nuint)sizeof(T), &v, null), "clGetDeviceInfo");
        return v;
    }

    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        int n = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(n >= 0 ? bytes[..n] : bytes).Trim();
    }
}
