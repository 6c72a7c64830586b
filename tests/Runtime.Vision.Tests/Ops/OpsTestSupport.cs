using System.Text.Json;
using Runtime.Gpu;

namespace Runtime.Vision.Tests.Ops;

/// <summary>
/// The devices the vision-operator suites run on: the CPU always, then each available OpenCL and
/// CUDA device (PoCL gives an OpenCL device on the CPU in CI). A machine without a GPU backend just
/// runs the CPU cases; an absent device is never a failure. RUNTIME_TEST_CPU_ONLY=1 (scripts/test.sh sets
/// it for the 256-bit and scalar SIMD runs, which only change the CPU side) keeps to the CPU.
/// </summary>
public static class OpsDevices
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
            // No GPU library at all: CPU only.
        }
        return names.ToArray();
    });

    /// <summary>Device names ("cpu", "opencl:0", "cuda:0", ...) for a [Theory]'s MemberData.</summary>
    public static TheoryData<string> All()
    {
        var d = new TheoryData<string>();
        foreach (var n in Found.Value) d.Add(n);
        return d;
    }

    /// <summary>The GPU devices only (empty without one).</summary>
    public static IEnumerable<Device> Gpus => Found.Value.Skip(1).Select(Device.Parse);
}

/// <summary>
/// Reads the torchvision/scipy goldens under golden/ops/ (written by the make_<part>.py scripts there,
/// copied next to the test assembly). Tensors are stored as {"shape": [...], "data": [...]}, dtype
/// given by the reader.
/// </summary>
public static class OpsGolden
{
    public static JsonElement Load(string file) => Evaluation.GoldenFiles.Load(file, "ops");

    public static int[] Shape(JsonElement t) => t.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray();

    public static double[] Data(JsonElement t) => t.GetProperty("data").EnumerateArray().Select(ReadNumber).ToArray();

    /// <summary>A tensor of the given dtype on the given device from a {"shape", "data"} element.</summary>
    public static Tensor Tensor(JsonElement t, DType dtype, Device device)
    {
        using var cpu = Runtime.Tensor.From<double>(Data(t), Shape(t));
        using var typed = cpu.To(dtype);
        return typed.To(device);
    }

    // Python's json writes NaN and Infinity as bare words; the scripts write them as strings.
    private static double ReadNumber(JsonElement x) => x.ValueKind == JsonValueKind.String
        ? x.GetString() switch { "NaN" => double.NaN, "Infinity" => double.PositiveInfinity, "-Infinity" => double.NegativeInfinity, var s => double.Parse(s!, System.Globalization.CultureInfo.InvariantCulture) }
        : x.GetDouble();
}
