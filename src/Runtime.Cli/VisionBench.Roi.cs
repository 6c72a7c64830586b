using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Runtime.Autograd;
using Runtime.Cpu;
using Runtime.Vision.Ops;

namespace Runtime.Cli;

// runtime bench roi_align | roi_pool. Defaults: one FPN level of Mask R-CNN on an 800x800 batch of two (features 2x256x200x200 at scale 1/4),
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

    private static BenchOperator RoiOperator(bool align)
    {
        string op = align ? "roi_align" : "roi_pool";
        var shape = BenchOptions.Shape("features N,C,H,W (default 2,256,200,200)");
        var rois = CliOptions.Int("--rois", "number of rois", 512);
        var output = CliOptions.Int("--output", "output bins per side", 7);
        var sampling = CliOptions.Int("--sampling", "sampling points per bin side (0 or less: adaptive, ceil(roi size / bins))", 2, min: int.MinValue);
        var scale = CliOptions.Double("--scale", "feature map scale relative to the image", 0.25);
        var aligned = CliOptions.Flag("--aligned", "shift the rois by half a pixel (aligned=True)");
        var backward = CliOptions.Flag("--backward", "time forward + backward (the input gradient)");
        Option[] options = align ? [shape, rois, output, sampling, scale, aligned, backward] : [shape, rois, output, scale, backward];
        string description = align
            ? "RoIAlign over one FPN level of Mask R-CNN (torchvision's roi_align); Mout/s"
            : "RoIPool over one FPN level (torchvision's roi_pool); Mout/s";
        return new BenchOperator(op, description, options, run =>
        {
            var sh = run.Get(shape) ?? [2, 256, 200, 200];
            if (sh.Length != 4) throw new ArgumentException($"bench {op}: --shape is N,C,H,W");
            run.Print(MeasureRoi(align, sh, run.Get(rois), run.Get(output), align ? run.Get(sampling) : 2, run.Get(scale),
                align && run.Get(aligned), run.Get(backward), run.Device, run.Repeat));
            return 0;
        });
    }

    private static BenchCommand.Result MeasureRoi(bool align, int[] shape, int k, int size, int sampling, double scale, bool aligned, bool backward, Device device, int? repeat)
    {
        string op = align ? "roi_align" : "roi_pool";
        using var x = Tensor.Randn(shape, new Generator(1234), DType.Float32, device);
        using var rois = Tensor.From<float>(BenchRois(k, shape[0], shape[2], shape[3], scale), [k, 5], device);
        x.RequiresGrad = backward;
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
        return new BenchCommand.Result(op, text, "float32", device.ToString(), CpuParallel.Threads, reps, median, min, outputs / 1e6 / (median / 1000), "Mout/s");
    }

    /// <summary>
    /// <c>runtime bench deform_roi_pool</c>: modulated deformable RoI pooling (offsets ~ N(0, 0.3^2), mask ~ U(0, 1)) on
    /// roi_align's defaults and rois, interleaved run by run with roi_align of the same size (the ratio is printed last).
    /// </summary>
    private static BenchOperator DeformRoiOperator()
    {
        var shape = BenchOptions.Shape("features N,C,H,W (default 2,256,200,200)");
        var rois = CliOptions.Int("--rois", "number of rois", 512);
        var output = CliOptions.Int("--output", "output bins per side", 7);
        var sampling = CliOptions.Int("--sampling", "sampling points per bin side (0 or less: adaptive, ceil(roi size / bins))", 2, min: int.MinValue);
        var scale = CliOptions.Double("--scale", "feature map scale relative to the image", 0.25);
        var aligned = CliOptions.Flag("--aligned", "shift the rois by half a pixel (aligned=True, mmcv's convention)");
        var noMask = CliOptions.Flag("--no-mask", "offsets only (no modulation)");
        var backward = CliOptions.Flag("--backward", "time forward + backward (input, offset and mask gradients; roi_align: the input's)");
        return new BenchOperator("deform_roi_pool", "modulated deformable RoI pooling (DCNv2) beside roi_align of the same size, interleaved; Mout/s",
            [shape, rois, output, sampling, scale, aligned, noMask, backward], run =>
            {
                var sh = run.Get(shape) ?? [2, 256, 200, 200];
                if (sh.Length != 4) throw new ArgumentException("bench deform_roi_pool: --shape is N,C,H,W");
                return RunDeformRoi(run, sh, run.Get(rois), run.Get(output), run.Get(sampling), run.Get(scale), run.Get(aligned), !run.Get(noMask), run.Get(backward));
            });
    }

    private static int RunDeformRoi(BenchRun run, int[] shape, int k, int size, int sampling, double scale, bool aligned, bool useMask, bool backward)
    {
        var device = run.Device;
        var gen = new Generator(1234);
        using var x = Tensor.Randn(shape, gen, DType.Float32, device);
        using var rois = Tensor.From<float>(BenchRois(k, shape[0], shape[2], shape[3], scale), [k, 5], device);
        using var off0 = Tensor.Randn([k, 2, size, size], gen, DType.Float32, device);
        using var off = off0 * 0.3f;
        using var mask = useMask ? Tensor.Rand([k, 1, size, size], gen, DType.Float32, device) : null;
        var leaves = new List<Tensor> { x, off };
        if (mask is not null) leaves.Add(mask);
        foreach (var t in leaves) t.RequiresGrad = backward;
        var backend = Backends.BackendRegistry.For(device);
        double Time(Func<Tensor> f)
        {
            var sw = Stopwatch.StartNew();
            using (GradMode.NoGradScope? scope = backward ? null : GradMode.NoGrad())
            using (var y = f())
            {
                if (backward)
                {
                    using var gy = Tensor.OnesLike(y);
                    y.Backward(gy);
                }
                backend.Synchronize();
            }
            foreach (var t in leaves)
            {
                t.Grad?.Dispose();
                t.Grad = null;
            }
            return sw.Elapsed.TotalMilliseconds;
        }
        Tensor Deform() => RoiOps.DeformRoiPool(x, rois, off, mask, (size, size), scale, sampling, 0.1, aligned);
        Tensor Align() => RoiOps.RoiAlign(x, rois, (size, size), scale, sampling, aligned);
        double first = Time(Deform) + Time(Align);
        for (int i = 0; i < 2; i++) { Time(Deform); Time(Align); }
        int reps = run.Repeat ?? (int)Math.Clamp(2000 / Math.Max(first, 0.01), 5, 100);
        var td = new double[reps];
        var ta = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            td[i] = Time(Deform);
            ta[i] = Time(Align);
        }
        double outputs = (double)k * shape[1] * size * size;
        string text = string.Create(CultureInfo.InvariantCulture,
            $"{string.Join("x", shape)}/k{k}/{size}x{size}/s{sampling}{(aligned ? "a" : "")}@{scale}{(backward ? "+bwd" : "")}");
        var rows = new[]
        {
            Summarise("deform_roi_pool", text + (useMask ? "+mask" : ""), td),
            Summarise("roi_align", text, ta),
        };
        foreach (var r in rows) run.Print(r);
        if (!run.Json)
            run.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"deform_roi_pool / roi_align median time: {rows[0].MedianMs / rows[1].MedianMs:F2}x"));
        return 0;

        BenchCommand.Result Summarise(string op, string text, double[] times)
        {
            var sorted = (double[])times.Clone();
            Array.Sort(sorted);
            int n = sorted.Length;
            double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
            return new BenchCommand.Result(op, text, "float32", device.ToString(), CpuParallel.Threads, n, median, sorted[0], outputs / 1e6 / (median / 1000), "Mout/s");
        }
    }
}
