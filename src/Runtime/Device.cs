namespace Runtime;

/// <summary>Kinds of device a tensor can live on.</summary>
public enum DeviceType
{
    Cpu,
    Cuda,
    OpenCL,
}

/// <summary>A device: a kind plus an ordinal (<c>cpu</c>, <c>cuda:0</c>, <c>opencl:1</c>).</summary>
public readonly record struct Device(DeviceType Type, int Index = 0)
{
    public static Device Cpu => new(DeviceType.Cpu, 0);

    public static Device Cuda(int index = 0) => new(DeviceType.Cuda, index);

    public static Device OpenCL(int index = 0) => new(DeviceType.OpenCL, index);

    /// <summary>The device new tensors are created on when none is given (CPU unless changed, or set by RUNTIME_DEVICE).</summary>
    public static Device Default
    {
        get => _default ??= FromEnvironment();
        set => _default = value;
    }

    private static Device? _default;

    private static Device FromEnvironment()
    {
        var s = Environment.GetEnvironmentVariable("RUNTIME_DEVICE");
        return string.IsNullOrWhiteSpace(s) ? Cpu : Parse(s);
    }

    /// <summary>Parses <c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>, <c>opencl:0</c>.</summary>
    public static Device Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().ToLowerInvariant().Split(':');
        var type = parts[0] switch
        {
            "cpu" => DeviceType.Cpu,
            "cuda" => DeviceType.Cuda,
            "opencl" or "ocl" => DeviceType.OpenCL,
            _ => throw new ArgumentException($"unknown device '{text}' (expected cpu, cuda[:i] or opencl[:i])", nameof(text)),
        };
        int index = 0;
        if (parts.Length > 2 || (parts.Length == 2 && (!int.TryParse(parts[1], out index) || index < 0)))
            throw new ArgumentException($"bad device ordinal in '{text}'", nameof(text));
        return new Device(type, index);
    }

    public override string ToString() => Type switch
    {
        DeviceType.Cpu => "cpu",
        DeviceType.Cuda => $"cuda:{Index}",
        _ => $"opencl:{Index}",
    };
}
