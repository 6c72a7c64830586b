namespace Runtime.Gpu;

/// <summary>A GPU driver or runtime call failed.</summary>
public class GpuException : InvalidOperationException
{
    public GpuException(string message)
        : base(message)
    {
    }

    public GpuException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

/// <summary>A kernel source failed to compile; the message carries the kernel's name and the full compiler log.</summary>
public sealed class KernelCompileException : GpuException
{
    public KernelCompileException(string kernel, string device, string log)
        : base($"kernel '{kernel}' failed to compile for {device}:\n{log}")
    {
        Kernel = kernel;
        Log = log;
    }

    public string Kernel { get; }

    public string Log { get; }
}
