using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Runtime.Autograd;
using Runtime.Cpu;

namespace Runtime.Cli;

/// <summary>
/// <c>runtime bench</c>: the command built from <see cref="BenchOperators.All"/>, and the core operators'
/// entries (matmul, conv2d, elementwise, softmax, pooling, upsampling): median wall time of one operator
/// after warm-up, with GFLOP/s or GB/s.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var names = string.Join(", ", BenchOperators.All.Select(o => o.Name));
        var bench = new CommandGroup("bench", $"time an operator or model: {names}", "operator");
        foreach (var op in BenchOperators.All) bench.Subcommands.Add(op.ToCommand());
        return bench;
    }

    private const string ElementCount = "element count or shape (default 16777216)";

    /// <summary>The core operators' entries of the bench table.</summary>
    public static readonly IReadOnlyList<BenchOperator> Operators =
    [
        Core("matmul", "matrix product A[M,K] @ B[K,N]; GFLOP/s", "M,N,K, or one size for a cube (default 1024)", MatMul),
        Conv2dOperator(),
        Core("add", "elementwise a + b; GB/s counts two reads and a write", ElementCount, (i, s, _) => Elementwise(i, s, "add")),
        Core("mul", "elementwise a * b; GB/s counts two reads and a write", ElementCount, (i, s, _) => Elementwise(i, s, "mul")),
        Core("relu", "elementwise max(a, 0); GB/s counts a read and a write", ElementCount, (i, s, _) => Elementwise(i, s, "relu")),
        Core("exp", "elementwise exp(a); GB/s counts a read and a write", ElementCount, (i, s, _) => Elementwise(i, s, "exp")),
        Core("sum", "sum of all elements; GB/s counts the read", ElementCount, (i, s, _) => Elementwise(i, s, "sum")),
        Core("softmax", "softmax over the last axis; GB/s counts a read and a write", "rows,cols (default 4096,1024)", Softmax),
        Core("maxpool2d", "3x3 max pooling, stride 2, padding 1 (ResNet's stem); GB/s counts input and output", "N,C,H,W (default 8,64,112,112)", MaxPool2d),
        Core("interpolate", "nearest 2x upsampling (FPN's top-down path); GB/s counts input and output", "N,C,H,W (default 8,256,56,56)", Interpolate),
    ];

    public sealed record Result(string Op, string Shape, string DType, string Device, int Threads, int Repeats, double MedianMs, double MinMs, double Rate, string Unit)
    {
        public string ToJson() => string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\":\"runtime\",\"op\":\"{Op}\",\"shape\":\"{Shape}\",\"dtype\":\"{DType}\",\"device\":\"{Device}\",\"threads\":{Threads},\"repeats\":{Repeats},\"median_ms\":{MedianMs:F4},\"min_ms\":{MinMs:F4},\"{Unit.Replace("/", "_per_")}\":{Rate:F2}}}");

        public string ToRow() => string.Create(CultureInfo.InvariantCulture,
            $"{Op,-8} {Shape,-24} {DType,-8} {Device,-8} threads={Threads} median {MedianMs,10:F3} ms  min {MinMs,10:F3} ms  {Rate,9:F1} {Unit}");
    }

    /// <summary>
    /// What one core benchmark times: the call, its work per call (in 1e9 flops or bytes), the rate's unit,
    /// the shape as reported, and whether the call records gradients (otherwise it runs under no-grad).
    /// </summary>
    private sealed record Workload(Func<Tensor> Call, double Work, string Unit, string Shape, bool Grad = false);

    /// <summary>The random inputs of one workload, on the run's device and dtype; disposed after timing.</summary>
    private sealed class Inputs(DType dtype, Device device) : IDisposable
    {
        private readonly Generator _gen = new(1234);
        private readonly List<Tensor> _made = [];

        public int ElementSize { get; } = dtype.SizeOf();

        public Tensor Randn(params int[] shape)
        {
            var t = Tensor.Randn(shape, _gen, dtype, device);
            _made.Add(t);
            return t;
        }

        public void Dispose()
        {
            foreach (var t in _made) t.Dispose();
        }
    }

    /// <summary>A core entry: <c>--shape</c> (described by <paramref name="shapeHelp"/>), <c>--dtype</c>, any extra options, and the setup of its workload.</summary>
    private static BenchOperator Core(string name, string description, string shapeHelp, Func<Inputs, int[]?, BenchRun, Workload> setup, params Option[] extra)
    {
        var shape = BenchOptions.Shape(shapeHelp);
        return new BenchOperator(name, description, [shape, BenchOptions.DType, .. extra], run =>
        {
            run.Print(Measure(name, run, inputs => setup(inputs, run.Get(shape), run)));
            return 0;
        });
    }

    private static Result Measure(string op, BenchRun run, Func<Inputs, Workload> setup)
    {
        using var inputs = new Inputs(run.DType, run.Device);
        var w = setup(inputs);
        using var noGrad = w.Grad ? default(GradMode.NoGradScope?) : GradMode.NoGrad();
        var backend = Backends.BackendRegistry.For(run.Device);
        double Once()
        {
            var sw = Stopwatch.StartNew();
            using (var y = w.Call()) backend.Synchronize();
            return sw.Elapsed.TotalMilliseconds;
        }
        var (reps, median, min) = Time(Once, run.Repeat);
        return new Result(op, w.Shape, run.DType.Name(), run.Device.ToString(), CpuParallel.Threads, reps, median, min, w.Work / (median / 1000), w.Unit);
    }

    private static Workload MatMul(Inputs inputs, int[]? shape, BenchRun run)
    {
        var (m, n, k) = shape switch
        {
            null => (1024, 1024, 1024),
            [var c] => (c, c, c),
            [var mm, var nn, var kk] => (mm, nn, kk),
            _ => throw new ArgumentException("matmul --shape is M,N,K or one size"),
        };
        var a = inputs.Randn(m, k);
        var b = inputs.Randn(k, n);
        return new Workload(() => a.MatMul(b), 2.0 * m * n * k / 1e9, "GFLOP/s", $"{m}x{n}x{k}");
    }

    private static BenchOperator Conv2dOperator()
    {
        var outChannels = CliOptions.OptionalInt("--out", "output channels (default: input channels)");
        var kernel = CliOptions.Sizes("--kernel", "k|kh,kw", "kernel size (default 3)");
        var stride = CliOptions.Int("--stride", "stride", 1);
        var padding = CliOptions.OptionalInt("--padding", "zero padding (default: kernel size / 2)", min: 0);
        var dilation = CliOptions.Int("--dilation", "dilation", 1);
        var groups = CliOptions.Int("--groups", "groups", 1);
        var backward = CliOptions.Flag("--backward", "time forward + backward (input, weight and bias gradients): 3x the forward's flops");
        return Core("conv2d", "2-D convolution with bias; GFLOP/s counts 2 flops per multiply-add", "input N,C,H,W (default 8,256,14,14)",
            (inputs, shape, run) =>
            {
                var k = run.Get(kernel) ?? [3];
                if (k.Length is not (1 or 2)) throw new ArgumentException("conv2d --kernel is k or kh,kw");
                int kh = k[0], kw = k[^1];
                return Conv2d(inputs, shape ?? [8, 256, 14, 14], run.Get(outChannels), kh, kw, run.Get(stride), run.Get(padding) ?? Math.Min(kh, kw) / 2,
                    run.Get(dilation), run.Get(groups), run.Get(backward));
            }, outChannels, kernel, stride, padding, dilation, groups, backward);
    }

    private static Workload Conv2d(Inputs inputs, int[] sh, int? outChannels, int kh, int kw, int stride, int padding, int dilation, int groups, bool backward)
    {
        if (sh.Length != 4) throw new ArgumentException("conv2d --shape is N,C,H,W");
        int cout = outChannels ?? sh[1];
        var x = inputs.Randn(sh);
        var w = inputs.Randn(cout, sh[1] / groups, kh, kw);
        var b = inputs.Randn(cout);
        if (backward)
        {
            x.RequiresGrad = true;
            w.RequiresGrad = true;
            b.RequiresGrad = true;
        }
        int oh = (sh[2] + 2 * padding - dilation * (kh - 1) - 1) / stride + 1;
        int ow = (sh[3] + 2 * padding - dilation * (kw - 1) - 1) / stride + 1;
        double macs = (double)sh[0] * cout * oh * ow * (sh[1] / groups) * kh * kw;
        Tensor Call()
        {
            var y = x.Conv2d(w, b, (stride, stride), (padding, padding), (dilation, dilation), groups);
            if (!backward) return y;
            using (y)
            using (var gy = Tensor.OnesLike(y))
                y.Backward(gy);
            foreach (var t in new[] { x, w, b })
            {
                t.Grad?.Dispose();
                t.Grad = null;
            }
            return Tensor.Zeros(1);
        }
        string text = $"{string.Join("x", sh)}>{cout}k{kh}x{kw}s{stride}p{padding}" +
            (dilation != 1 ? $"d{dilation}" : "") + (groups != 1 ? $"g{groups}" : "") + (backward ? "+bwd" : "");
        return new Workload(Call, (backward ? 3 : 1) * 2.0 * macs / 1e9, "GFLOP/s", text, Grad: backward);
    }

    private static Workload Elementwise(Inputs inputs, int[]? shape, string op)
    {
        var sh = shape ?? [16 * 1024 * 1024];
        var a = inputs.Randn(sh);
        var b = inputs.Randn(sh);
        double bytes = (double)a.NumEl * inputs.ElementSize / 1e9;
        var (call, work) = op switch
        {
            "add" => ((Func<Tensor>)(() => a + b), 3 * bytes),
            "mul" => (() => a * b, 3 * bytes),
            "relu" => (() => a.Relu(), 2 * bytes),
            "exp" => (() => a.Exp(), 2 * bytes),
            _ => (() => a.Sum(), bytes),
        };
        return new Workload(call, work, "GB/s", string.Join("x", sh));
    }

    private static Workload Softmax(Inputs inputs, int[]? shape, BenchRun run)
    {
        var sh = shape ?? [4096, 1024];
        if (sh.Length != 2) throw new ArgumentException("softmax --shape is rows,cols");
        var a = inputs.Randn(sh);
        return new Workload(() => a.Softmax(-1), 2.0 * a.NumEl * inputs.ElementSize / 1e9, "GB/s", $"{sh[0]}x{sh[1]}");
    }

    private static Workload MaxPool2d(Inputs inputs, int[]? shape, BenchRun run)
    {
        var sh = shape ?? [8, 64, 112, 112];
        if (sh.Length != 4) throw new ArgumentException("maxpool2d --shape is N,C,H,W");
        var a = inputs.Randn(sh);
        long outEl = (long)sh[0] * sh[1] * ((sh[2] - 1) / 2 + 1) * ((sh[3] - 1) / 2 + 1);
        return new Workload(() => a.MaxPool2d(3, 2, 1), (a.NumEl + outEl) * inputs.ElementSize / 1e9, "GB/s", string.Join("x", sh));
    }

    private static Workload Interpolate(Inputs inputs, int[]? shape, BenchRun run)
    {
        var sh = shape ?? [8, 256, 56, 56];
        if (sh.Length != 4) throw new ArgumentException("interpolate --shape is N,C,H,W");
        var a = inputs.Randn(sh);
        return new Workload(() => a.Interpolate((2.0, 2.0)), 5.0 * a.NumEl * inputs.ElementSize / 1e9, "GB/s", string.Join("x", sh));
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
