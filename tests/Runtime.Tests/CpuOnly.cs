namespace Runtime.Tests;

/// <summary>
/// The suite runs on whatever <see cref="Device.Default"/> is (RUNTIME_DEVICE). A test that checks
/// something only the CPU has (BufferPool counters, GEMM internals, the CPU print format) skips
/// elsewhere: xunit 2 has no dynamic skip, so the attribute sets Skip when it is created.
/// </summary>
public sealed class CpuFactAttribute : FactAttribute
{
    public CpuFactAttribute(string reason)
    {
        if (Device.Default.Type != DeviceType.Cpu) Skip = $"CPU only ({reason}); this run is on {Device.Default}";
    }
}

/// <inheritdoc cref="CpuFactAttribute"/>
public sealed class CpuTheoryAttribute : TheoryAttribute
{
    public CpuTheoryAttribute(string reason)
    {
        if (Device.Default.Type != DeviceType.Cpu) Skip = $"CPU only ({reason}); this run is on {Device.Default}";
    }
}
