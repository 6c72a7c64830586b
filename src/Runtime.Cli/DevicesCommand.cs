using Runtime.Backends;
using Runtime.Gpu;

namespace Runtime.Cli;

/// <summary><c>runtime devices</c>: every device, available or not, and why not.</summary>
internal static class DevicesCommand
{
    public static int Run()
    {
        Console.WriteLine($"{"device",-10} {"status",-12} description");
        Console.WriteLine($"{"cpu",-10} {"available",-12} {BackendRegistry.For(Device.Cpu).Describe()}");
        foreach (var d in GpuDevices.List())
            Console.WriteLine($"{d.Device,-10} {(d.Available ? "available" : "unavailable"),-12} {d.Description}");
        return 0;
    }
}
