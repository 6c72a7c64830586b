using Runtime.Backends;

// The allocator counters are per device and shared by every test: run the tests one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Runtime.Gpu.Tests;

/// <summary>
/// The GPU these tests run on: RUNTIME_GPU_TEST_DEVICE, else cuda:0, else opencl:0 (PoCL runs OpenCL on
/// the CPU), else none, and every test skips.
/// </summary>
public static class GpuTestDevice
{
    private static readonly Lazy<(Device? Device, string Why)> Found = new(Find);

    public static Device? Device => Found.Value.Device;

    public static string Why => Found.Value.Why;

    public static GpuBackend Backend => (GpuBackend)BackendRegistry.For(Device ?? throw new InvalidOperationException(Why));

    private static (Device?, string) Find()
    {
        var env = Environment.GetEnvironmentVariable("RUNTIME_GPU_TEST_DEVICE");
        if (!string.IsNullOrWhiteSpace(env))
        {
            var d = Runtime.Device.Parse(env);
            try
            {
                BackendRegistry.For(d);
                return (d, "");
            }
            catch (InvalidOperationException e)
            {
                return (null, e.Message);
            }
        }
        var list = GpuDevices.List();
        var first = list.FirstOrDefault(i => i.Available && i.Device.Type == DeviceType.Cuda)
                    ?? list.FirstOrDefault(i => i.Available);
        return first == null ? (null, "no CUDA or OpenCL device: " + string.Join("; ", list.Select(i => i.Description))) : (first.Device, "");
    }
}

/// <summary>A fact that needs a GPU device; skips (not fails) on a machine without one.</summary>
public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute()
    {
        if (GpuTestDevice.Device == null) Skip = GpuTestDevice.Why;
    }
}

/// <inheritdoc cref="GpuFactAttribute"/>
public sealed class GpuTheoryAttribute : TheoryAttribute
{
    public GpuTheoryAttribute()
    {
        if (GpuTestDevice.Device == null) Skip = GpuTestDevice.Why;
    }
}
