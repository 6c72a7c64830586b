using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Runtime.Backends;
using Runtime.Gpu.Cuda;
using Runtime.Gpu.Native;
using Runtime.Gpu.OpenCL;

namespace Runtime.Gpu;

/// <summary>
/// Registers the CUDA and OpenCL backends with <see cref="BackendRegistry"/>. Runs when the assembly is
/// first used (module initializer) or when the core loads it by name on the first request for a GPU
/// device (BackendRegistry calls <see cref="Initialize"/> through reflection).
/// </summary>
public static class GpuModule
{
    private static int _done;

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "registering the backends when the assembly loads is the point")]
    internal static void OnLoad() => Initialize();

    /// <summary>Installs the native library resolver and the device factories (idempotent).</summary>
    public static void Initialize()
    {
        if (Interlocked.Exchange(ref _done, 1) != 0) return;
        NativeLibraries.Install();
        BackendRegistry.Register(DeviceType.OpenCL, OpenCLBackend.Create);
        BackendRegistry.Register(DeviceType.Cuda, CudaBackend.Create);
    }
}

/// <summary>One line of <c>runtime devices</c>: a device, or a kind of device that is not there and why.</summary>
public sealed record GpuDeviceInfo(Device Device, bool Available, string Description);

/// <summary>Lists the GPU devices of this machine.</summary>
public static class GpuDevices
{
    /// <summary>Every CUDA and OpenCL device (opened, so the description is the backend's), or one unavailable line per kind.</summary>
    public static IReadOnlyList<GpuDeviceInfo> List()
    {
        GpuModule.Initialize();
        var list = new List<GpuDeviceInfo>();
        int cuda;
        try
        {
            cuda = CudaBackend.DeviceCount();
            if (cuda == 0) list.Add(new GpuDeviceInfo(Device.Cuda(0), false, "no CUDA device found by the driver"));
        }
        catch (GpuException e)
        {
            cuda = 0;
            list.Add(new GpuDeviceInfo(Device.Cuda(0), false, e.Message));
        }
        for (int i = 0; i < cuda; i++) list.Add(Open(Device.Cuda(i)));
        var (devices, reason) = OpenCLBackend.Enumerate();
        if (reason != null) list.Add(new GpuDeviceInfo(Device.OpenCL(0), false, reason));
        for (int i = 0; i < devices.Count; i++) list.Add(Open(Device.OpenCL(i)));
        return list;
    }

    private static GpuDeviceInfo Open(Device device)
    {
        try
        {
            return new GpuDeviceInfo(device, true, BackendRegistry.For(device).Describe());
        }
        catch (Exception e) when (e is InvalidOperationException or DllNotFoundException or EntryPointNotFoundException)
        {
            return new GpuDeviceInfo(device, false, e.Message);
        }
    }
}
