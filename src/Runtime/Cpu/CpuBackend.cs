using System.Runtime.Intrinsics;
using Runtime.Backends;

namespace Runtime.Cpu;

/// <summary>The CPU backend: pooled aligned memory, SIMD kernels (512-, 256-bit or scalar, chosen at run time), all cores.</summary>
internal sealed unsafe partial class CpuBackend : IBackend
{
    public static readonly CpuBackend Instance = new();

    public Device Device => Device.Cpu;

    /// <summary>Widest SIMD path the kernels take on this machine, in bits (512, 256 or 0 for scalar).</summary>
    public static int SimdBits => Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 0;

    public string Describe() =>
        $"{Environment.ProcessorCount} cores ({CpuParallel.Threads} threads used), SIMD {(SimdBits == 0 ? "scalar" : SimdBits + "-bit")}" +
        $"{(System.Runtime.Intrinsics.X86.Fma.IsSupported ? ", FMA" : "")}, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}";

    public Storage Allocate(long bytes) => new CpuStorage(bytes);

    public void Upload(ReadOnlySpan<byte> source, Storage destination, long byteOffset)
    {
        var dst = new Span<byte>(((CpuStorage)destination).Pointer + byteOffset, source.Length);
        source.CopyTo(dst);
    }

    public void Download(Storage source, long byteOffset, Span<byte> destination)
    {
        new ReadOnlySpan<byte>(((CpuStorage)source).Pointer + byteOffset, destination.Length).CopyTo(destination);
    }

    public void Synchronize()
    {
    }
}
