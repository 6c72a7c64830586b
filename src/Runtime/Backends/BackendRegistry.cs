using Runtime.Cpu;

namespace Runtime.Backends;

/// <summary>Finds the backend for a device. GPU backends register themselves here when loaded.</summary>
public static class BackendRegistry
{
    private static readonly Dictionary<DeviceType, Func<int, IBackend?>> Factories = new();
    private static readonly Dictionary<Device, IBackend> Cache = new();
    private static readonly object Gate = new();

    /// <summary>Adds a backend kind. The factory returns null when the device is unavailable.</summary>
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
            if (!Factories.TryGetValue(device.Type, out var f))
                throw new InvalidOperationException($"no backend for device {device} is loaded (CUDA and OpenCL come with the GPU package)");
            b = f(device.Index) ?? throw new InvalidOperationException($"device {device} is not available on this machine");
            Cache[device] = b;
            return b;
        }
    }
}
