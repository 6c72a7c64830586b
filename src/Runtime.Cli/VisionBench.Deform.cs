using System.Diagnostics;
using System.Globalization;
using Runtime.Autograd;
using Runtime.Cpu;
using Runtime.Vision.Ops;

namespace Runtime.Cli;

internal static partial class VisionBench
{
    /// <summary>
    /// <c>runtime bench deform_conv2d</c>: the modulated deformable convolution (offsets ~ N(0, 1), mask ~ U(0, 1))
    /// and, interleaved with it run by run, the plain <c>conv2d</c> of the same shape, so the two medians share the
    /// machine's state. GFLOP/s counts the GEMM work as <c>bench conv2d</c> does (twice the multiply-adds, three
    /// times that with --backward).
    /// </summary>
    private static BenchOperator DeformOperator()
    {
        var shape = BenchOptions.Shape("input N,C,H,W (default 2,256,64,64)");
        var outChannels = CliOptions.OptionalInt("--out", "output channels (default: input channels)");
        var kernel = CliOptions.Int("--kernel", "kernel size", 3);
        var stride = CliOptions.Int("--stride", "stride", 1);
        var padding = CliOptions.OptionalInt("--padding", "zero padding (default: kernel size / 2)", min: 0);
        var dilation = CliOptions.Int("--dilation", "dilation", 1);
        var groups = CliOptions.Int("--groups", "groups", 1);
        var offsetGroups = CliOptions.Int("--offset-groups", "offset groups", 1);
        var noMask = CliOptions.Flag("--no-mask", "DCNv1: no modulation mask");
        var backward = CliOptions.Flag("--backward", "time forward + backward (every input's gradient)");
        return new BenchOperator("deform_conv2d", "deformable convolution (DCNv2) beside conv2d of the same shape, interleaved; GFLOP/s",
            [shape, BenchOptions.DType, outChannels, kernel, stride, padding, dilation, groups, offsetGroups, noMask, backward], run =>
            {
                int[] sh = run.Get(shape) ?? [2, 256, 64, 64];
                if (sh.Length != 4) throw new ArgumentException("deform_conv2d --shape is N,C,H,W");
                int k = run.Get(kernel);
                return RunDeform(run, sh, run.Get(outChannels) ?? sh[1], k, run.Get(stride), run.Get(padding) ?? k / 2, run.Get(dilation),
                    run.Get(groups), run.Get(offsetGroups), run.Get(backward), useMask: !run.Get(noMask));
            });
    }

    private static int RunDeform(BenchRun run, int[] sh, int cout, int k, int stride, int pad, int dil, int groups, int og, bool backward, bool useMask)
    {
        var (device, dtype, repeat) = (run.Device, run.DType, run.Repeat);
        int oh = (sh[2] + 2 * pad - dil * (k - 1) - 1) / stride + 1, ow = (sh[3] + 2 * pad - dil * (k - 1) - 1) / stride + 1;

        var gen = new Generator(1234);
        using var x = Tensor.Randn(sh, gen, dtype, device);
        using var w = Tensor.Randn([cout, sh[1] / groups, k, k], gen, dtype, device);
        using var b = Tensor.Randn([cout], gen, dtype, device);
        using var off = Tensor.Randn([sh[0], 2 * og * k * k, oh, ow], gen, dtype, device);
        using var mask = useMask ? Tensor.Rand([sh[0], og * k * k, oh, ow], gen, dtype, device) : null;
        var leaves = new List<Tensor> { x, w, b, off };
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
                    using var loss = y.Sum();
                    loss.Backward();
                }
                backend.Synchronize();
            }
            if (backward)
                foreach (var t in leaves)
                {
                    t.Grad?.Dispose();
                    t.Grad = null;
                }
            return sw.Elapsed.TotalMilliseconds;
        }
        Tensor Deform() => DeformConvOps.DeformConv2d(x, off, w, b, stride, pad, dil, mask);
        Tensor Conv() => x.Conv2d(w, b, stride, pad, dil, groups);

        double first = Time(Deform) + Time(Conv);
        for (int i = 0; i < 2; i++) { Time(Deform); Time(Conv); }
        int reps = repeat ?? (int)Math.Clamp(2000 / Math.Max(first, 0.01), 5, 100);
        var td = new double[reps];
        var tc = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            td[i] = Time(Deform);
            tc[i] = Time(Conv);
        }
        double macs = (double)sh[0] * cout * oh * ow * (sh[1] / groups) * k * k;
        double work = (backward ? 3 : 1) * 2.0 * macs / 1e9;
        string geo = $"{sh[0]}x{sh[1]}x{sh[2]}x{sh[3]}>{cout}k{k}x{k}s{stride}p{pad}" + (dil != 1 ? $"d{dil}" : "") + (groups != 1 ? $"g{groups}" : "");
        string suffix = backward ? "+bwd" : "";
        var rows = new[]
        {
            Summarise("deform_conv2d", geo + $"og{og}" + (useMask ? "+mask" : "") + suffix, td),
            Summarise("conv2d", geo + suffix, tc),
        };
        foreach (var r in rows) run.Print(r);
        if (!run.Json)
            run.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"deform_conv2d / conv2d median time: {rows[0].MedianMs / rows[1].MedianMs:F2}x"));
        return 0;

        BenchCommand.Result Summarise(string op, string text, double[] times)
        {
            var sorted = (double[])times.Clone();
            Array.Sort(sorted);
            int n = sorted.Length;
            double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
            return new BenchCommand.Result(op, text, dtype.Name(), device.ToString(), CpuParallel.Threads, n, median, sorted[0], work / (median / 1000), "GFLOP/s");
        }
    }
}
