using System.Diagnostics;
using System.Globalization;
using Runtime.Autograd;
using Runtime.Cpu;
using Runtime.Vision.Ops;

namespace Runtime.Cli;

internal static partial class VisionBench
{
    /// <summary>
    /// <c>runtime bench nms | batched_nms</c>: <see cref="Boxes.Nms"/> or <see cref="Boxes.BatchedNms"/> on clustered
    /// boxes (<see cref="NmsBenchBoxes"/>, as benchmarks/torch_boxes.py makes them); rate in thousands of boxes per second.
    /// </summary>
    private static BenchOperator NmsOperator(bool batched)
    {
        var boxes = CliOptions.Int("--boxes", "number of boxes", 10000);
        var classes = CliOptions.Int("--classes", "number of classes the boxes are spread over", 10);
        var iou = CliOptions.Double("--iou", "IoU above which a lower-scoring box is dropped", 0.5);
        return batched
            ? new BenchOperator("batched_nms", "non-maximum suppression per class (torchvision's batched_nms); kbox/s", [boxes, classes, iou],
                run => Run(run, run.Get(classes)))
            : new BenchOperator("nms", "non-maximum suppression (torchvision's nms); kbox/s", [boxes, iou], run => Run(run, 10));

        int Run(BenchRun run, int classCount)
        {
            run.Print(MeasureNms(batched, run.Get(boxes), classCount, run.Get(iou), run.Device, run.Repeat));
            return 0;
        }
    }

    internal static BenchCommand.Result MeasureNms(bool batched, int n, int classes, double iou, Device device, int? repeat)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        var (boxData, scoreData, classData) = NmsBenchBoxes(n, classes);
        using var boxes = Tensor.From<float>(boxData, n, 4).To(device);
        using var scores = Tensor.From<float>(scoreData, n).To(device);
        using var idxs = Tensor.From<long>(classData, n).To(device);
        using var noGrad = GradMode.NoGrad();
        var backend = Backends.BackendRegistry.For(device);
        double Once()
        {
            var sw = Stopwatch.StartNew();
            using (var keep = batched ? Boxes.BatchedNms(boxes, scores, idxs, iou) : Boxes.Nms(boxes, scores, iou)) backend.Synchronize();
            return sw.Elapsed.TotalMilliseconds;
        }
        var (reps, median, min) = BenchCommand.Time(Once, repeat);
        string shape = batched ? $"{n}x4c{classes}iou{iou.ToString(CultureInfo.InvariantCulture)}" : $"{n}x4iou{iou.ToString(CultureInfo.InvariantCulture)}";
        return new BenchCommand.Result(batched ? "batched_nms" : "nms", shape, "float32", device.ToString(), CpuParallel.Threads, reps,
            median, min, n / (median / 1000) / 1e3, "kbox/s");
    }

    /// <summary>
    /// The benchmark boxes, the same formula as benchmarks/torch_boxes.py (integer hashing, so both sides get
    /// bit-identical inputs): u(k) = (splitmix64(k) &gt;&gt; 40) / 2^24; C = max(1, N / 100) clusters with centre
    /// (1000 u(2^30 + 2c), 1000 u(2^30 + 2c + 1)); box i of cluster c = i % C has centre = cluster centre +
    /// 60 (u(8i) - 0.5, u(8i+1) - 0.5), size (16 + 64 u(8i+2), 16 + 64 u(8i+3)), score u(8i+4) and class
    /// floor(K u(8i+5)); corners computed in double, then stored as float32.
    /// </summary>
    internal static (float[] Boxes, float[] Scores, long[] Classes) NmsBenchBoxes(int n, int classes)
    {
        static ulong Mix(ulong z)
        {
            z += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
        static double U(ulong k) => (Mix(k) >> 40) / 16777216.0;
        int clusters = Math.Max(1, n / 100);
        var boxes = new float[4 * n];
        var scores = new float[n];
        var cls = new long[n];
        for (int i = 0; i < n; i++)
        {
            ulong c = (ulong)(i % clusters), k = 8UL * (ulong)i;
            double cx = 1000 * U((1UL << 30) + 2 * c) + 60 * (U(k) - 0.5);
            double cy = 1000 * U((1UL << 30) + 2 * c + 1) + 60 * (U(k + 1) - 0.5);
            double w = 16 + 64 * U(k + 2), h = 16 + 64 * U(k + 3);
            boxes[4 * i] = (float)(cx - w / 2);
            boxes[4 * i + 1] = (float)(cy - h / 2);
            boxes[4 * i + 2] = (float)(cx + w / 2);
            boxes[4 * i + 3] = (float)(cy + h / 2);
            scores[i] = (float)U(k + 4);
            cls[i] = (long)Math.Floor(classes * U(k + 5));
        }
        return (boxes, scores, cls);
    }
}
