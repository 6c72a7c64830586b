namespace Runtime.Gpu.Tests;

/// <summary>Runs an operator on the CPU and on the GPU test device with the same inputs and compares.</summary>
public static class Parity
{
    public static Device Gpu => GpuTestDevice.Device ?? throw new InvalidOperationException(GpuTestDevice.Why);

    public static Tensor Randn(ulong seed, DType dtype, params int[] shape) => Tensor.Randn(shape, new Generator(seed), dtype, Device.Cpu);

    /// <summary>op on CPU inputs vs op on copies of them on the GPU; exact for integer and bool results.</summary>
    public static void Check(string what, Func<Tensor[], Tensor> op, Tensor[] cpuInputs, double rtol = 1e-5, double atol = 1e-6)
    {
        using var expected = op(cpuInputs);
        var gpuInputs = cpuInputs.Select(t => t.To(Gpu)).ToArray();
        try
        {
            using var actual = op(gpuInputs);
            Assert.Equal(Gpu, actual.Device);
            AssertSame(what, expected, actual, rtol, atol);
        }
        finally
        {
            foreach (var t in gpuInputs) t.Dispose();
        }
    }

    public static void AssertSame(string what, Tensor expected, Tensor actual, double rtol = 1e-5, double atol = 1e-6)
    {
        Assert.Equal(expected.Shape.ToArray(), actual.Shape.ToArray());
        Assert.Equal(expected.DType, actual.DType);
        var e = expected.ToDoubleArray();
        var a = actual.ToDoubleArray();
        bool exact = !expected.DType.IsFloating();
        for (int i = 0; i < e.Length; i++)
        {
            if (double.IsNaN(e[i])) { Assert.True(double.IsNaN(a[i]), $"{what}: element {i}: expected NaN, got {a[i]}"); continue; }
            if (exact || double.IsInfinity(e[i])) { Assert.True(e[i] == a[i], $"{what}: element {i}: expected {e[i]}, got {a[i]}"); continue; }
            Assert.True(Math.Abs(e[i] - a[i]) <= atol + rtol * Math.Abs(e[i]), $"{what}: element {i}: expected {e[i]}, got {a[i]}");
        }
    }
}
