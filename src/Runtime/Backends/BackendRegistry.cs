using System.Diagnostics.CodeAnalysis;
using Runtime.Cpu;

namespace Runtime.Backends;

/// <summary>Finds the backend for a device. GPU backends register themselves here when loaded.</summary>
public static class BackendRegistry
{
    private static readonly Dictionary<DeviceType, Func<int, IBackend?>> Factories = new();
    private static readonly Dictionary<Device, IBackend> Cache = new();
    private static readonly object Gate = new();
    private static bool _gpuLoadTried;
    private static string? _gpuLoadError;

    /// <summary>Adds a backend kind. The factory returns null (or throws saying why) when the device is unavailable.</summary>
    public static void Register(DeviceType type, Func<int, IBackend?> factory)
    {
        lock (Gate) Factories[type] = factory;
    }

    public static IBackend For(Device device)
    {
        if (device.Type == DeviceType.Cpu) return CpuBackend.Instance;
        lock (Gate)
        {
            if (Cache.TryGetValue(device, out var b)) return b;
            if (!Factories.ContainsKey(device.Type) && !_gpuLoadTried)
            {
                _gpuLoadTried = true;
                LoadGpuAssembly();
            }
            if (!Factories.TryGetValue(device.Type, out var f))
                throw new InvalidOperationException(
                    $"no backend for device {device}: the CUDA and OpenCL backends live in the Runtime.Gpu assembly, which this program " +
                    $"{(_gpuLoadError is null ? "does not have" : $"could not load ({_gpuLoadError})")}. Add a ProjectReference to " +
                    "src/Runtime.Gpu/Runtime.Gpu.csproj (nothing needs to call it), or put Runtime.Gpu.dll beside the program.");
            b = f(device.Index) ?? throw new InvalidOperationException($"device {device} is not available on this machine");
            Cache[device] = b;
            return b;
        }
    }

    /// <summary>
    /// The core does not reference the GPU assembly; it loads it by name when a CUDA or OpenCL device is
    /// first asked for, and its initializer registers the factories. A program that references
    /// Runtime.Gpu has it in its dependency list; one that merely has Runtime.Gpu.dll in its folder gets
    /// it loaded from there. The DynamicDependency keeps that entry point through trimming in apps that
    /// ship Runtime.Gpu; apps without it just have no GPU backends.
    /// </summary>
    [DynamicDependency("Initialize", "Runtime.Gpu.GpuModule", "Runtime.Gpu")]
    private static void LoadGpuAssembly()
    {
        try
        {
            var module = Type.GetType("Runtime.Gpu.GpuModule, Runtime.Gpu", throwOnError: false) ?? GpuModuleBesideProgram();
            module?.GetMethod("Initialize")?.Invoke(null, null);
        }
        catch (Exception e) when (e is IOException or BadImageFormatException or PlatformNotSupportedException or System.Reflection.TargetInvocationException)
        {
            _gpuLoadError = (e.InnerException ?? e).Message;
        }
    }

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "a trimmed or AOT app carries Runtime.Gpu in its dependency list or not at all")]
    [UnconditionalSuppressMessage("Trimming", "IL2073", Justification = "as above; GpuModule.Initialize is kept by the DynamicDependency")]
    [return: DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicMethods)]
    private static Type? GpuModuleBesideProgram()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Runtime.Gpu.dll");
        if (!File.Exists(path)) return null;
        return System.Runtime.Loader.AssemblyLoadContext.Default.LoadFromAssemblyPath(path).GetType("Runtime.Gpu.GpuModule");
    }
}
