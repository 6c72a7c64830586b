using System.Text.Json;
using Runtime.Gpu;

namespace Runtime.Vision.Tests.Ops;

/// <summary>The devices the vision-operator suites run on (tests/Shared/TestDevices.cs).</summary>
public static class OpsDevices
{
    /// <summary>Device names ("cpu", "opencl:0", "cuda:0", ...) for a [Theory]'s MemberData.</summary>
    public static TheoryData<string> All() => Runtime.Testing.TestDevices.All();

    /// <summary>The GPU devices only (empty without one).</summary>
    public static IEnumerable<Device> Gpus => Runtime.Testing.TestDevices.Gpus;
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
