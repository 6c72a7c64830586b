using BenchmarkDotNet.Attributes;
using Runtime.Vision.Imaging;

namespace Runtime.Benchmarks;

/// <summary>Image decoding speed on the committed goldens (PIL's time for the same file: see docs/benchmarks.md).</summary>
[MemoryDiagnoser]
public class ImagingBenchmarks
{
    private byte[] _jpeg = [];

    [GlobalSetup]
    public void Setup()
    {
        // Walk up from the build output to the repository root.
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Runtime.sln"))) dir = dir.Parent;
        if (dir == null) throw new InvalidOperationException("run the benchmarks from inside the repository");
        _jpeg = File.ReadAllBytes(Path.Combine(dir.FullName, "tests/Runtime.Vision.Tests/golden/images/jpeg_640x480_420.jpg"));
    }

    /// <summary>640x480 baseline 4:2:0 JPEG to RGB pixels.</summary>
    [Benchmark]
    public int DecodeJpeg640x480() => JpegDecoder.Decode(_jpeg).Width;
}
