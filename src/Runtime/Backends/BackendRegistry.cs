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
                throw new InvalidOperationException($"no backend for device {device} is loaded (CUDA and OpenCL come with the Runtime.Gpu assembly)");
            b = f(device.Index) ?? throw new InvalidOperationException($"device {device} is not available on this machine");
            Cache[device] = b;
            return b;
        }
    }

    /// <summary>
    /// The core does not reference the GPU assembly; it loads it by name when a CUDA or OpenCL device is
    /// first asked for, and its initializer registers the factories. The DynamicDependency keeps that
    /// entry point through trimming in apps that ship Runtime.Gpu; apps without it just have no GPU backends.
    /// </summary>
    [DynamicDependency("Initialize", "Runtime.Gpu.GpuModule", "Runtime.Gpu")]
    private static void LoadGpuAssembly()
    {
        Type? module;
        try
        {
            module = Type.GetType("Runtime.Gpu.GpuModule, Runtime.Gpu", throwOnError: false);
        }
        catch (Exception e) when (e is IOException or BadImageFormatException)
        {
            return;
        }
        module?.GetMethod("Initialize")?.Invoke(null, null);
    }
}
