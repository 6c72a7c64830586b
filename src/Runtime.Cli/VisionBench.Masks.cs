using System.Diagnostics;
using System.Globalization;
using Runtime.Vision.Ops;
using Runtime.Cpu;

namespace Runtime.Cli;

// runtime bench paste_masks. Defaults: Mask R-CNN's inference output, 100 masks of 28x28 pasted into an 800x1200
// image (torchvision's paste_masks_in_image, padding 1). benchmarks/torch_masks.py times torchvision on the
// same boxes (VisionBench.BenchRois with one image at scale 1).
internal static partial class VisionBench
{
    private static BenchOperator PasteMasksOperator()
    {
        var shape = BenchOptions.Shape("masks N,M,M (default 100,28,28)");
        var height = CliOptions.Int("--height", "image height", 800);
        var width = CliOptions.Int("--width", "image width", 1200);
        return new BenchOperator("paste_masks", "Mask R-CNN's paste_masks_in_image (masks into full-image planes); Mpix/s",
            [shape, height, width], run =>
            {
                var sh = run.Get(shape) ?? [100, 28, 28];
                if (sh.Length != 3) throw new ArgumentException($"bench paste_masks: --shape is N,M,M, got {sh.Length} values");
                run.Print(MeasurePaste(sh, run.Get(height), run.Get(width), run.Device, run.Repeat));
                return 0;
            });
    }

    private static BenchCommand.Result MeasurePaste(int[] shape, int h, int w, Device device, int? repeat)
    {
        int n = shape[0];
        using var masks = Tensor.Rand([n, 1, shape[1], shape[2]], new Generator(1234), DType.Float32, device);
        var rois = BenchRois(n, 1, h, w, 1.0);
        var b = new float[n * 4];
        for (int i = 0; i < n; i++) Array.Copy(rois, i * 5 + 1, b, i * 4, 4);
        using var boxes = Tensor.From<float>(b, [n, 4], device);
        var backend = Backends.BackendRegistry.For(device);
        double Once()
        {
            var sw = Stopwatch.StartNew();
            using (var pasted = Masks.PasteMasksInImage(masks, boxes, (h, w))) backend.Synchronize();
            return sw.Elapsed.TotalMilliseconds;
        }
        var (reps, median, min) = BenchCommand.Time(Once, repeat);
        string text = string.Create(CultureInfo.InvariantCulture, $"{n}x{shape[1]}x{shape[2]}@{h}x{w}");
        return new BenchCommand.Result("paste_masks", text, "float32", device.ToString(), CpuParallel.Threads, reps, median, min,
            (double)n * h * w / 1e6 / (median / 1000), "Mpix/s");
    }
}
