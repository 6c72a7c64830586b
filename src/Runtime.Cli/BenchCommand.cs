using System.Diagnostics;
using System.Globalization;
using Runtime.Autograd;
using Runtime.Cpu;

namespace Runtime.Cli;

/// <summary><c>runtime bench op</c>: median wall time of one operator after warm-up, with GFLOP/s or GB/s.</summary>
internal static class BenchCommand
{
    public static int Run(string[] args)
    {
        if (args.Contains("resnet50")) return ResNetBench.Run(args);
        if (VisionBench.OpName(args) != null) return VisionBench.Run(args);
        var opts = CommandLine.ParseOptions(args, out var positional, "json", "backward");
        if (positional.Count != 1) throw new ArgumentException("bench needs exactly one operator name");
        string op = positional[0];
        var o = new BenchOptions(opts);
        ConvOptions? conv = null;
        if (op == "conv2d")
        {
            var k = o.Value("kernel") is string ks
                ? ks.Split(',', 'x').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray()
                : [3];
            if (k.Length is not (1 or 2)) throw new ArgumentException("--kernel is k or kh,kw");
            int kh = k[0], kw = k[^1];
            conv = new ConvOptions(o.Int("out", -1), kh, kw, o.Int("stride", 1), o.Int("padding", Math.Min(kh, kw) / 2), o.Int("dilation", 1), o.Int("groups", 1), o.Has("backward"));
        }
        var result = Measure(op, o.Shape, o.DType, o.Device, o.Repeat, conv);
        Console.WriteLine(o.Json ? result.ToJson() : result.ToRow());
        return 0;
    }

    public sealed record Result(string Op, string Shape, string DType, string Device, int Threads, int Repeats, double MedianMs, double MinMs, double Rate, string Unit)
    {
        public string ToJson() => string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\":\"runtime\",\"op\":\"{Op}\",\"shape\":\"{Shape}\",\"dtype\":\"{DType}\",\"device\":\"{Device}\",\"threads\":{Threads},\"repeats\":{Repeats},\"median_ms\":{MedianMs:F4},\"min_ms\":{MinMs:F4},\"{Unit.Replace("/", "_per_")}\":{Rate:F2}}}");

        public string ToRow() => string.Create(CultureInfo.InvariantCulture,
            $"{Op,-8} {Shape,-24} {DType,-8} {Device,-8} threads={Threads} median {MedianMs,10:F3} ms  min {MinMs,10:F3} ms  {Rate,9:F1} {Unit}");
    }

    /// <summary>Convolution settings of <c>bench conv2d</c>; <c>Out</c> -1 means as many output channels as input channels.</summary>
    public sealed record ConvOptions(int Out, int KernelH, int KernelW, int Stride, int Padding, int Dilation, int Groups, bool Backward);

    public static Result Measure(string op, int[]? shape, DType dtype, Device device, int? repeat, ConvOptions? conv = null)
    {
        using var noGrad = conv is { Backward: true } ? default(GradMode.NoGradScope?) : GradMode.NoGrad();
        var gen = new Generator(1234);
        Func<Tensor> run;
        double work;
        string unit, shapeText;
        var inputs = new List<Tensor>();
        Tensor Input(params int[] sh)
        {
            var t = Tensor.Randn(sh, gen, dtype, device);
            inputs.Add(t);
            return t;
        }
        int es = dtype.SizeOf();
        switch (op)
        {
            case "matmul":
            {
                var (m, n, k) = shape switch
                {
                    null => (1024, 1024, 1024),
                    [var c] => (c, c, c),
                    [var mm, var nn, var kk] => (mm, nn, kk),
                    _ => throw new ArgumentException("matmul --shape is M,N,K or one size"),
                };
                var a = Input(m, k);
                var b = Input(k, n);
                run = () => a.MatMul(b);
                work = 2.0 * m * n * k / 1e9;
                unit = "GFLOP/s";
                shapeText = $"{m}x{n}x{k}";
                break;
            }
            case "conv2d":
            {
                var sh = shape ?? [8, 256, 14, 14];
                if (sh.Length != 4) throw new ArgumentException("conv2d --shape is N,C,H,W");
                var c = conv ?? new ConvOptions(-1, 3, 3, 1, 1, 1, 1, false);
                int cout = c.Out > 0 ? c.Out : sh[1];
                var x = Input(sh);
                var w = Input(cout, sh[1] / c.Groups, c.KernelH, c.KernelW);
                var b = Input(cout);
                if (c.Backward)
                {
                    x.RequiresGrad = true;
                    w.RequiresGrad = true;
                    b.RequiresGrad = true;
                }
                int oh = (sh[2] + 2 * c.Padding - c.Dilation * (c.KernelH - 1) - 1) / c.Stride + 1;
                int ow = (sh[3] + 2 * c.Padding - c.Dilation * (c.KernelW - 1) - 1) / c.Stride + 1;
                double macs = (double)sh[0] * cout * oh * ow * (sh[1] / c.Groups) * c.KernelH * c.KernelW;
                run = () =>
                {
                    var y = x.Conv2d(w, b, (c.Stride, c.Stride), (c.Padding, c.Padding), (c.Dilation, c.Dilation), c.Groups);
                    if (!c.Backward) return y;
                    using (y)
                    using (var gy = Tensor.OnesLike(y))
                        y.Backward(gy);
                    foreach (var t in new[] { x, w, b })
                    {
                        t.Grad?.Dispose();
                        t.Grad = null;
                    }
                    return Tensor.Zeros(1);
                };
                work = (c.Backward ? 3 : 1) * 2.0 * macs / 1e9;
                unit = "GFLOP/s";
                shapeText = $"{string.Join("x", sh)}>{cout}k{c.KernelH}x{c.KernelW}s{c.Stride}p{c.Padding}" +
                    (c.Dilation != 1 ? $"d{c.Dilation}" : "") + (c.Groups != 1 ? $"g{c.Groups}" : "") + (c.Backward ? "+bwd" : "");
                break;
            }
            case "add" or "mul" or "relu" or "exp" or "sum":
            {
                var sh = shape ?? [16 * 1024 * 1024];
                var a = Input(sh);
                var b = Input(sh);
                long n = a.NumEl;
                (run, work) = op switch
                {
                    "add" => ((Func<Tensor>)(() => a + b), 3.0 * n * es / 1e9),
                    "mul" => (() => a * b, 3.0 * n * es / 1e9),
                    "relu" => (() => a.Relu(), 2.0 * n * es / 1e9),
                    "exp" => (() => a.Exp(), 2.0 * n * es / 1e9),
                    _ => (() => a.Sum(), 1.0 * n * es / 1e9),
                };
                unit = "GB/s";
                shapeText = string.Join("x", sh);
                break;
            }
            case "softmax":
            {
                var sh = shape ?? [4096, 1024];
                if (sh.Length != 2) throw new ArgumentException("softmax --shape is rows,cols");
                var a = Input(sh);
                run = () => a.Softmax(-1);
                work = 2.0 * a.NumEl * es / 1e9;
                unit = "GB/s";
                shapeText = $"{sh[0]}x{sh[1]}";
                break;
            }
            case "maxpool2d":
            {
                // ResNet's stem pool: 3x3, stride 2, padding 1. GB/s counts the input read and the output written.
                var sh = shape ?? [8, 64, 112, 112];
                if (sh.Length != 4) throw new ArgumentException("maxpool2d --shape is N,C,H,W");
                var a = Input(sh);
                run = () => a.MaxPool2d(3, 2, 1);
                long outEl = (long)sh[0] * sh[1] * ((sh[2] - 1) / 2 + 1) * ((sh[3] - 1) / 2 + 1);
                work = (a.NumEl + outEl) * es / 1e9;
                unit = "GB/s";
                shapeText = string.Join("x", sh);
                break;
            }
            case "interpolate":
            {
                // FPN's top-down path: nearest 2x upsampling. GB/s counts the input read and the output written.
                var sh = shape ?? [8, 256, 56, 56];
                if (sh.Length != 4) throw new ArgumentException("interpolate --shape is N,C,H,W");
                var a = Input(sh);
                run = () => a.Interpolate((2.0, 2.0));
                work = 5.0 * a.NumEl * es / 1e9;
                unit = "GB/s";
                shapeText = string.Join("x", sh);
                break;
            }
            default:
                throw new ArgumentException($"unknown bench op '{op}' (matmul, conv2d, add, mul, relu, exp, sum, softmax, maxpool2d, interpolate)");
        }

        var backend = Backends.BackendRegistry.For(device);
        double Once()
        {
            var sw = Stopwatch.StartNew();
            using (var y = run()) backend.Synchronize();
            return sw.Elapsed.TotalMilliseconds;
        }
        var (reps, median, min) = Time(Once, repeat);
        foreach (var t in inputs) t.Dispose();
        return new Result(op, shapeText, dtype.Name(), device.ToString(), CpuParallel.Threads, reps, median, min, work / (median / 1000), unit);
    }

    /// <summary>
    /// Times <paramref name="once"/> (one run, returning its milliseconds): the first call and two more
    /// warm up (JIT, pools, caches, kernel compilation), then <paramref name="repeat"/> runs (by default
    /// about <paramref name="budgetMs"/> worth, between <paramref name="minReps"/> and <paramref name="maxReps"/>).
    /// </summary>
    public static (int Reps, double MedianMs, double MinMs) Time(Func<double> once, int? repeat, double budgetMs = 1000, int minReps = 5, int maxReps = 200, int warmups = 2)
    {
        double first = once();
        for (int i = 0; i < warmups; i++) once();
        int reps = repeat ?? (int)Math.Clamp(budgetMs / Math.Max(first, 0.01), minReps, maxReps);
        var times = new double[reps];
        for (int i = 0; i < reps; i++) times[i] = once();
        Array.Sort(times);
        double median = reps % 2 == 1 ? times[reps / 2] : (times[reps / 2 - 1] + times[reps / 2]) / 2;
        return (reps, median, times[0]);
    }
}
