using System.Diagnostics;
using System.Globalization;
using Runtime.Autograd;
using Runtime.Cpu;
using Runtime.Vision.Ops;

namespace Runtime.Cli;

// runtime bench roi_align | roi_pool [--shape N,C,H,W] [--rois K] [--output 7] [--sampling 2] [--scale 0.25]
//     [--aligned] [--backward] [--device d] [--threads n] [--repeat n] [--json]
// Defaults: one FPN level of Mask R-CNN on an 800x800 batch of two (features 2x256x200x200 at scale 1/4),
// 512 rois, 7x7 bins, sampling ratio 2, aligned False. benchmarks/torch_roi.py times torchvision on the
// same rois (the same formula, below).
internal static partial class VisionBench
{
    /// <summary>
    /// The benchmark rois, made the same way in benchmarks/torch_roi.py: with u(i, j) =
    /// ((i * 7919 + j * 104729) * 2654435761 mod 2^32) / 2^32 and the image of (H, W) / scale,
    /// roi i = (i mod N, x1, y1, x1 + 16 + u(i,2) * W/2, y1 + 16 + u(i,3) * H/2), x1 = u(i,0) * 0.8 W, y1 = u(i,1) * 0.8 H.
    /// </summary>
    public static float[] BenchRois(int k, int n, int h, int w, double scale)
    {
        static double U(long i, long j) => (ulong)((i * 7919 + j * 104729) * 2654435761L) % 4294967296UL / 4294967296.0;
        double ih = h / scale, iw = w / scale;
        var r = new float[k * 5];
        for (int i = 0; i < k; i++)
        {
            double x1 = U(i, 0) * 0.8 * iw, y1 = U(i, 1) * 0.8 * ih;
            r[i * 5] = i % n;
            r[i * 5 + 1] = (float)x1;
            r[i * 5 + 2] = (float)y1;
            r[i * 5 + 3] = (float)(x1 + 16 + U(i, 2) * iw / 2);
            r[i * 5 + 4] = (float)(y1 + 16 + U(i, 3) * ih / 2);
        }
        return r;
    }

    private static int RunRoi(string[] args)
    {
        string op = OpName(args)!;
        var opts = CommandLine.ParseOptions(args, out _, "json", "backward", "aligned");
        var o = new BenchOptions(opts);
        var device = o.Device;
        var shape = o.Shape ?? [2, 256, 200, 200];
        if (shape.Length != 4) throw new ArgumentException($"bench {op}: --shape is N,C,H,W");
        int k = o.Int("rois", 512), size = o.Int("output", 7), sampling = o.Int("sampling", 2);
        double scale = o.Double("scale", 0.25);
        bool backward = o.Has("backward"), aligned = o.Has("aligned");
        int? repeat = o.Repeat;

        using var x = Tensor.Randn(shape, new Generator(1234), DType.Float32, device);
        using var rois = Tensor.From<float>(BenchRois(k, shape[0], shape[2], shape[3], scale), [k, 5], device);
        x.RequiresGrad = backward;
        bool align = op == "roi_align";
        Tensor Forward() => align ? RoiOps.RoiAlign(x, rois, (size, size), scale, sampling, aligned) : RoiOps.RoiPool(x, rois, (size, size), scale);
        var backend = Backends.BackendRegistry.For(device);
        double Once()
        {
            var sw = Stopwatch.StartNew();
            using (var _ = backward ? default(GradMode.NoGradScope?) : GradMode.NoGrad())
            using (var y = Forward())
            {
                if (backward)
                {
                    using var gy = Tensor.OnesLike(y);
                    y.Backward(gy);
                    x.Grad?.Dispose();
                    x.Grad = null;
                }
                backend.Synchronize();
            }
            return sw.Elapsed.TotalMilliseconds;
        }
        var (reps, median, min) = BenchCommand.Time(Once, repeat);
        // Rate: output elements per second (each one a bin of C x size x size per roi).
        double outputs = (double)k * shape[1] * size * size;
        string grid = align ? "/s" + sampling.ToString(CultureInfo.InvariantCulture) + (aligned ? "a" : "") : "";
        string text = string.Create(CultureInfo.InvariantCulture, $"{string.Join("x", shape)}/k{k}/{size}x{size}{grid}@{scale}{(backward ? "+bwd" : "")}");
        var result = new BenchCommand.Result(op, text, "float32", device.ToString(), CpuParallel.Threads, reps, median, min, outputs / 1e6 / (median / 1000), "Mout/s");
        Console.WriteLine(o.Json ? result.ToJson() : result.ToRow());
        return 0;
    }
}
