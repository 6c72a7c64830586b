using System.Diagnostics;
using Runtime.Vision.Imaging;
using Xunit.Abstractions;

namespace Runtime.Vision.Tests.Imaging;

public class JpegSpeedTests(ITestOutputHelper output)
{
    /// <summary>
    /// Decode time of the 640x480 baseline 4:2:0 golden (median of many runs after warm-up). The assertion is loose
    /// (Debug builds, loaded CI machines); the figure to quote comes from a Release run:
    /// dotnet test -c Release --filter FullyQualifiedName~JpegSpeed --logger "console;verbosity=detailed".
    /// </summary>
    [Fact]
    public void Decode640x480Baseline420()
    {
        var data = File.ReadAllBytes(Path.Combine(GoldenImageTests.Dir, "jpeg_640x480_420.jpg"));
        for (int i = 0; i < 20; i++) JpegDecoder.Decode(data);
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 200 && total.ElapsedMilliseconds < 3000)
        {
            var sw = Stopwatch.StartNew();
            var img = JpegDecoder.Decode(data);
            times.Add(sw.Elapsed.TotalMilliseconds);
            Assert.Equal(640, img.Width);
        }
        double mean = times.Average();
        times.Sort();
        double median = times[times.Count / 2], min = times[0];
        output.WriteLine($"640x480 4:2:0 baseline JPEG ({data.Length} bytes): median {median:F3} ms, mean {mean:F3} ms, min {min:F3} ms over {times.Count} runs");
        Assert.True(median < 100, $"decode took {median} ms");
    }
}
