using Runtime.Gpu;

namespace Runtime.Testing;

/// <summary>
/// The devices the vision-operator and model suites run on (one file, compiled into both test projects): the CPU, then each available OpenCL / CUDA device (PoCL gives CI an OpenCL
/// device on the CPU). An absent device is never a failure. RUNTIME_TEST_CPU_ONLY=1 (the 256-bit and scalar SIMD runs
/// of scripts/test.sh) keeps to the CPU.
/// </summary>
public static class TestDevices
{
    private static readonly Lazy<string[]> Found = new(() =>
    {
        var names = new List<string> { "cpu" };
        if (Environment.GetEnvironmentVariable("RUNTIME_TEST_CPU_ONLY") == "1") return names.ToArray();
        try
        {
            foreach (var info in GpuDevices.List())
                if (info.Available) names.Add(info.Device.ToString());
        }
        catch (Exception e) when (e is DllNotFoundException or InvalidOperationException)
        {
        }
        return names.ToArray();
    });

    /// <summary>The device names ("cpu", "opencl:0", ...).</summary>
    public static IReadOnlyList<string> Names => Found.Value;

    /// <summary>The GPU devices only (empty without one).</summary>
    public static IEnumerable<Device> Gpus => Found.Value.Skip(1).Select(Device.Parse);

    /// <summary>Device names for a [Theory]'s MemberData.</summary>
    public static TheoryData<string> All()
    {
        var d = new TheoryData<string>();
        foreach (var n in Found.Value) d.Add(n);
        return d;
    }
}
