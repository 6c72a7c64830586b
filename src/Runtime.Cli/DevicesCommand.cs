using System.CommandLine;
using Runtime.Backends;
using Runtime.Gpu;

namespace Runtime.Cli;

/// <summary><c>runtime devices</c>: every device, available or not, and why not.</summary>
internal static class DevicesCommand
{
    public static Command Create()
    {
        var command = new Command("devices", "list devices: CPU (SIMD width, cores), CUDA and OpenCL (or why unavailable)");
        command.SetAction(parse => Run(parse.Output()));
        return command;
    }

    private static int Run(TextWriter output)
    {
        output.WriteLine($"{"device",-10} {"status",-12} description");
        output.WriteLine($"{"cpu",-10} {"available",-12} {BackendRegistry.For(Device.Cpu).Describe()}");
        foreach (var d in GpuDevices.List())
            output.WriteLine($"{d.Device,-10} {(d.Available ? "available" : "unavailable"),-12} {d.Description}");
        return 0;
    }
}
