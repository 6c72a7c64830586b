using Runtime.Backends;

namespace Runtime.Cli;

/// <summary><c>runtime devices</c>: every device kind, available or not, and why not.</summary>
internal static class DevicesCommand
{
    public static int Run()
    {
        Console.WriteLine($"{"device",-10} {"status",-12} description");
        Console.WriteLine($"{"cpu",-10} {"available",-12} {BackendRegistry.For(Device.Cpu).Describe()}");
        foreach (var (type, name) in new[] { (DeviceType.Cuda, "cuda"), (DeviceType.OpenCL, "opencl") })
        {
            string status, text;
            try
            {
                var b = BackendRegistry.For(new Device(type, 0));
                status = "available";
                text = b.Describe();
            }
            catch (InvalidOperationException e)
            {
                status = "unavailable";
                text = e.Message;
            }
            Console.WriteLine($"{name,-10} {status,-12} {text}");
        }
        return 0;
    }
}
