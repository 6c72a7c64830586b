using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime.Cli;

/// <summary>
/// <c>runtime selfcheck --device cuda|opencl[:i]</c>: every operator on the device against the CPU backend,
/// on fresh random inputs, forward and (for differentiable ones) backward. One line per operator, then
/// "N passed, N failed". Float32 results must agree within 1e-4 relative plus 1e-5 of the output's
/// magnitude (summation order differs between devices); integer and bool results exactly.
/// </summary>
internal static partial class SelfCheckCommand
{
    private sealed record Check(string Name, Func<Generator, Tensor[]> Inputs, Func<Tensor[], Tensor> Op, bool Backward = true, double Rtol = 1e-4);

    public static Command Create()
    {
        var device = CliOptions.RequiredDevice("cuda[:i]|opencl[:i]", "the device to check against the CPU");
        var seed = CliOptions.ULong("--seed", "seed of the random inputs (default: from the clock; printed, to rerun)");
        var only = CliOptions.Text("--only", "text", "only the operators whose name contains this");
        var list = CliOptions.Flag("--list", "list the operators instead of running them");
        var command = new Command("selfcheck", "every operator on a device against the CPU, forward and backward") { device, seed, only, list };
        command.SetAction(parse => Run(parse.GetValue(device), parse.GetValue(seed) ?? (ulong)Environment.TickCount64, parse.GetValue(only),
            parse.GetValue(list), parse.Output()));
        return command;
    }

    private static int Run(Device device, ulong seed, string? only, bool listOnly, TextWriter output)
    {
        IBackend backend;
        try
        {
            backend = BackendRegistry.For(device);
        }
        catch (InvalidOperationException)
        {
            // Scripts read the summary line; the reason goes to stderr as for any other command.
            output.WriteLine("0 passed, 1 failed");
            throw;
        }
        output.WriteLine($"selfcheck {device}: {backend.Describe()}");
        output.WriteLine($"seed {seed} (rerun with --seed {seed})");
        int passed = 0, failed = 0;
        var total = Stopwatch.StartNew();
        foreach (var c in Checks())
        {
            if (only != null && !c.Name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
            if (listOnly) { output.WriteLine(c.Name); continue; }
            var sw = Stopwatch.StartNew();
            string verdict;
            bool ok;
            try
            {
                (ok, verdict) = RunOne(c, device, new Generator(seed ^ StableHash(c.Name)));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                ok = false;
                verdict = $"{e.GetType().Name}: {e.Message.Split('\n')[0]}";
            }
            if (ok) passed++; else failed++;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(ok ? "PASS" : "FAIL")}  {c.Name,-22} {verdict}  ({sw.Elapsed.TotalMilliseconds:F0} ms)"));
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"({total.Elapsed.TotalSeconds:F1} s)"));
        output.WriteLine($"{passed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    private static (bool, string) RunOne(Check c, Device device, Generator gen)
    {
        using var scope = new TensorScope();
        var cpuIn = c.Inputs(gen);
        var devIn = cpuIn.Select(t => t.To(device)).ToArray();
        bool grad = c.Backward && cpuIn.Any(t => t.DType.IsFloating());
        if (grad)
        {
            foreach (var t in cpuIn.Concat(devIn).Where(t => t.DType.IsFloating())) t.RequiresGrad = true;
        }
        Tensor yc, yd;
        if (grad)
        {
            yc = c.Op(cpuIn);
            yd = c.Op(devIn);
        }
        else
        {
            using var _ = GradMode.NoGrad();
            yc = c.Op(cpuIn);
            yd = c.Op(devIn);
        }
        if (yd.Device != device) return (false, $"result is on {yd.Device}, not {device}");
        var (fok, ferr, fwhy) = Compare(yc, yd, c.Rtol);
        if (!fok) return (false, $"forward: {fwhy}");
        if (!grad || !yc.RequiresGrad) return (true, $"fwd err {ferr:G2}");
        // Backward: a random weighting of the outputs, the same on both devices.
        var w = Tensor.Randn(yc.ShapeArrayOf(), gen, yc.DType, Device.Cpu);
        (yc * w).Sum().Backward();
        (yd * w.To(device)).Sum().Backward();
        double berr = 0;
        for (int i = 0; i < cpuIn.Length; i++)
        {
            if (!cpuIn[i].DType.IsFloating()) continue;
            var gc = cpuIn[i].Grad;
            var gd = devIn[i].Grad;
            if (gc == null && gd == null) continue;
            if (gc == null || gd == null) return (false, $"backward: input {i} has a gradient on one device only");
            var (bok, e, why) = Compare(gc, gd, c.Rtol);
            if (!bok) return (false, $"backward (input {i}): {why}");
            berr = Math.Max(berr, e);
        }
        return (true, $"fwd err {ferr:G2}, bwd err {berr:G2}");
    }

    private static ulong StableHash(string s)
    {
        ulong h = 14695981039346656037;
        foreach (char ch in s) h = (h ^ ch) * 1099511628211;
        return h;
    }

    private static int[] ShapeArrayOf(this Tensor t) => t.Shape.ToArray();

    /// <summary>Largest error relative to the tolerance, and whether it is within it.</summary>
    private static (bool Ok, double MaxErr, string Why) Compare(Tensor expected, Tensor actual, double rtol)
    {
        if (!expected.Shape.SequenceEqual(actual.Shape)) return (false, 0, $"shape {Fmt(actual.Shape)}, expected {Fmt(expected.Shape)}");
        if (expected.DType != actual.DType) return (false, 0, $"dtype {actual.DType.Name()}, expected {expected.DType.Name()}");
        var e = expected.ToDoubleArray();
        var a = actual.ToDoubleArray();
        bool exact = !expected.DType.IsFloating();
        double scale = 1;
        foreach (var v in e) if (double.IsFinite(v)) scale = Math.Max(scale, Math.Abs(v));
        double atol = (expected.DType == DType.Float64 ? 1e-10 : 1e-5) * scale;
        if (expected.DType == DType.Float64) rtol = Math.Min(rtol, 1e-9);
        double worst = 0;
        for (int i = 0; i < e.Length; i++)
        {
            if (double.IsNaN(e[i]) || double.IsNaN(a[i]))
            {
                if (double.IsNaN(e[i]) != double.IsNaN(a[i])) return (false, 0, $"element {i}: {a[i]}, expected {e[i]}");
                continue;
            }
            double diff = Math.Abs(e[i] - a[i]);
            if (exact || double.IsInfinity(e[i]))
            {
                if (e[i] != a[i]) return (false, diff, $"element {i}: {a[i]}, expected {e[i]}");
                continue;
            }
            if (diff > atol + rtol * Math.Abs(e[i])) return (false, diff, $"element {i}: {a[i]:G9}, expected {e[i]:G9} (|diff| {diff:G2})");
            worst = Math.Max(worst, diff / Math.Max(1, Math.Abs(e[i])));
        }
        return (true, worst, "");
    }

    private static string Fmt(ReadOnlySpan<int> s) => "[" + string.Join(", ", s.ToArray()) + "]";

    // ---------------- the operators ----------------

    private static Tensor N(Generator g, params int[] shape) => Tensor.Randn(shape, g, DType.Float32, Device.Cpu);

    private static Tensor N64(Generator g, params int[] shape) => Tensor.Randn(shape, g, DType.Float64, Device.Cpu);

    private static Tensor Pos(Generator g, params int[] shape) => Tensor.Rand(shape, g, DType.Float32, Device.Cpu) + 0.1;

    private static Tensor Idx(Generator g, long high, params int[] shape) => Tensor.RandInt(0, high, shape, g, DType.Int64, Device.Cpu);

    private static Tensor Mask(Generator g, params int[] shape) => Tensor.Rand(shape, g, DType.Float32, Device.Cpu).Gt(0.5);

    private static Check U(string name, Func<Tensor, Tensor> f, bool positive = false, bool backward = true) =>
        new(name, g => [positive ? Pos(g, 37, 53) : N(g, 37, 53)], t => f(t[0]), backward);

    private static Check B(string name, Func<Tensor, Tensor, Tensor> f, bool backward = true) =>
        new(name, g => [N(g, 33, 41), N(g, 41)], t => f(t[0], t[1]), backward);

    private static IEnumerable<Check> Checks()
    {
        // elementwise, one input
        yield return U("neg", x => -x);
        yield return U("abs", x => x.Abs());
        yield return U("sign", x => x.Sign(), backward: false);
        yield return U("exp", x => x.Exp());
        yield return U("log", x => x.Log(), positive: true);
        yield return U("log1p", x => x.Log1p(), positive: true);
        yield return U("sqrt", x => x.Sqrt(), positive: true);
        yield return U("rsqrt", x => x.Rsqrt(), positive: true);
        yield return U("reciprocal", x => x.Reciprocal(), positive: true);
        yield return U("square", x => x.Square());
        yield return U("sin", x => x.Sin());
        yield return U("cos", x => x.Cos());
        yield return U("tanh", x => x.Tanh());
        yield return U("sigmoid", x => x.Sigmoid());
        yield return U("erf", x => x.Erf());
        yield return U("relu", x => x.Relu());
        yield return U("leaky_relu", x => x.LeakyRelu(0.1));
        yield return U("gelu", x => x.Gelu());
        yield return U("gelu_tanh", x => x.Gelu(approximateTanh: true));
        yield return U("softplus", x => x.Softplus(2, 5));
        yield return U("floor", x => (x * 3.0).Floor(), backward: false);
        yield return U("ceil", x => (x * 3.0).Ceil(), backward: false);
        yield return U("round", x => (x * 3.0).Round(), backward: false);
        yield return U("clamp", x => x.Clamp(-0.5, 0.7));
        yield return U("pow_scalar", x => x.Pow(2.5), positive: true);
        yield return U("logical_not", x => x.Gt(0.0).LogicalNot(), backward: false);
        yield return new Check("neg_i64", g => [Idx(g, 100, 50)], t => -t[0]);
        yield return new Check("abs_i32", g => [(Idx(g, 100, 50) - 50L).To(DType.Int32)], t => t[0].Abs());

        // elementwise, two inputs (broadcast)
        yield return B("add", (a, b) => a + b);
        yield return B("sub", (a, b) => a - b);
        yield return B("mul", (a, b) => a * b);
        yield return B("div", (a, b) => a / b);
        yield return new Check("pow", g => [Pos(g, 20, 30), N(g, 30)], t => Tensor.Pow(t[0], t[1]));
        yield return B("maximum", Tensor.Maximum);
        yield return B("minimum", Tensor.Minimum);
        yield return B("eq", (a, b) => (a * 2.0).Round().Eq((b * 2.0).Round()), backward: false);
        yield return B("ne", (a, b) => (a * 2.0).Round().Ne((b * 2.0).Round()), backward: false);
        yield return B("lt", (a, b) => a.Lt(b), backward: false);
        yield return B("le", (a, b) => a.Le(b), backward: false);
        yield return B("gt", (a, b) => a.Gt(b), backward: false);
        yield return B("ge", (a, b) => a.Ge(b), backward: false);
        yield return B("logical_and", (a, b) => a.Gt(0.0).LogicalAnd(b.Gt(0.0)), backward: false);
        yield return B("logical_or", (a, b) => a.Gt(0.0).LogicalOr(b.Gt(0.0)), backward: false);
        yield return B("logical_xor", (a, b) => a.Gt(0.0).LogicalXor(b.Gt(0.0)), backward: false);
        yield return new Check("add_i64", g => [Idx(g, 1000, 30, 20), Idx(g, 1000, 20)], t => t[0] + t[1]);
        yield return new Check("pow_i64", g => [Idx(g, 10, 40), Idx(g, 5, 40)], t => Tensor.Pow(t[0], t[1]));
        yield return new Check("where", g => [Mask(g, 30, 1), N(g, 30, 20), N(g, 20)], t => Tensor.Where(t[0], t[1], t[2]));
        yield return new Check("masked_fill", g => [N(g, 30, 20), Mask(g, 30, 20)], t => t[0].MaskedFill(t[1], -3));

        // copies, views, dtypes
        yield return new Check("to_float64", g => [N(g, 30, 20)], t => t[0].To(DType.Float64));
        yield return new Check("to_int32", g => [N(g, 30, 20)], t => (t[0] * 10.0).To(DType.Int32), Backward: false);
        yield return new Check("to_int64", g => [N(g, 30, 20)], t => (t[0] * 1e6).To(DType.Int64), Backward: false);
        yield return new Check("to_bool", g => [N(g, 30, 20)], t => t[0].Round().To(DType.Bool), Backward: false);
        yield return new Check("contiguous_permute", g => [N(g, 4, 5, 6, 7)], t => t[0].Permute(3, 1, 0, 2).Contiguous());
        yield return new Check("flip", g => [N(g, 6, 7, 8)], t => t[0].Flip(0, 2));
        yield return new Check("slice_step", g => [N(g, 40, 30)], t => t[0].Slice(0, 3, 40, 4).Slice(1, 1, 30, 3) * 2.0);
        yield return new Check("expand", g => [N(g, 1, 30)], t => t[0].Expand(20, 30) * 1.5);
        yield return new Check("cat", g => [N(g, 3, 5), N(g, 4, 5)], t => Tensor.Cat([t[0], t[1]]));
        yield return new Check("stack", g => [N(g, 3, 5), N(g, 3, 5)], t => Tensor.Stack([t[0], t[1]], 1));
        yield return new Check("pad", g => [N(g, 3, 5, 6)], t => t[0].Pad([1, 2, 0, 3], 0.5));
        yield return new Check("repeat", g => [N(g, 3, 5)], t => t[0].Repeat(2, 1, 3));

        // reductions
        yield return new Check("sum", g => [N(g, 300, 70)], t => t[0].Sum());
        yield return new Check("sum_dim0", g => [N(g, 300, 70)], t => t[0].Sum(0));
        yield return new Check("sum_dims", g => [N(g, 6, 50, 7)], t => t[0].Sum([0, 2], keepDim: true));
        yield return new Check("sum_long", g => [N(g, 200_000)], t => t[0].Sum(), Rtol: 1e-3);
        yield return new Check("mean", g => [N(g, 30, 70)], t => t[0].Mean(1));
        yield return new Check("prod", g => [Pos(g, 30, 12)], t => t[0].Prod([1]));
        yield return new Check("max", g => [N(g, 30, 70)], t => t[0].Max());
        yield return new Check("min_dim", g => [N(g, 30, 70)], t => t[0].Min(0).Values);
        yield return new Check("argmax", g => [N(g, 30, 70)], t => t[0].Argmax(1));
        yield return new Check("argmin", g => [N(g, 30, 70)], t => t[0].Argmin(0));
        yield return new Check("any", g => [Mask(g, 30, 70)], t => t[0].Any([1]));
        yield return new Check("all", g => [Mask(g, 30, 3)], t => t[0].All([1]));
        yield return new Check("var", g => [N(g, 30, 70)], t => t[0].Var(1));
        yield return new Check("std", g => [N(g, 30, 70)], t => t[0].Std(0));
        yield return new Check("logsumexp", g => [N(g, 30, 70)], t => t[0].LogSumExp(1));
        yield return new Check("softmax", g => [N(g, 30, 70)], t => (t[0] * 5.0).Softmax(1));
        yield return new Check("softmax_dim0", g => [N(g, 30, 70)], t => t[0].Softmax(0));
        yield return new Check("log_softmax", g => [N(g, 30, 700)], t => t[0].LogSoftmax(-1));
        yield return new Check("cumsum", g => [N(g, 30, 70)], t => t[0].CumSum(1));
        yield return new Check("cumsum_dim0", g => [N(g, 300, 7)], t => t[0].CumSum(0));
        yield return new Check("cumsum_i64", g => [Idx(g, 1000, 5, 3000)], t => t[0].CumSum(1));
        yield return new Check("sum_f64", g => [N64(g, 300, 70)], t => t[0].Sum(1));

        // matrix products
        yield return new Check("matmul", g => [N(g, 67, 45), N(g, 45, 131)], t => t[0].MatMul(t[1]));
        yield return new Check("matmul_square", g => [N(g, 256, 256), N(g, 256, 256)], t => t[0].MatMul(t[1]));
        yield return new Check("matmul_transposed", g => [N(g, 45, 67), N(g, 131, 45)], t => t[0].MT.MatMul(t[1].MT));
        yield return new Check("matmul_batched", g => [N(g, 3, 1, 20, 30), N(g, 4, 30, 10)], t => t[0].MatMul(t[1]));
        yield return new Check("matvec", g => [N(g, 50, 40), N(g, 40)], t => t[0].MatMul(t[1]));
        yield return new Check("matmul_f64", g => [N64(g, 33, 20), N64(g, 20, 17)], t => t[0].MatMul(t[1]));
        yield return new Check("matmul_i64", g => [Idx(g, 20, 33, 20), Idx(g, 20, 20, 17)], t => t[0].MatMul(t[1]));

        // indexing and sorting
        yield return new Check("index_select", g => [N(g, 30, 20), Idx(g, 20, 50)], t => t[0].IndexSelect(1, t[1]));
        yield return new Check("index_select_rows", g => [N(g, 100, 8), Idx(g, 100, 1000)], t => t[0].IndexSelect(0, t[1]));
        yield return new Check("gather", g => [N(g, 30, 20), Idx(g, 20, 30, 40)], t => t[0].Gather(1, t[1]));
        yield return new Check("scatter", g => [N(g, 30, 20), Idx(g, 20, 30, 15), N(g, 30, 15)], t => t[0].Scatter(1, t[1], t[2]));
        yield return new Check("scatter_add", g => [N(g, 30, 20), Idx(g, 20, 30, 50), N(g, 30, 50)], t => t[0].ScatterAdd(1, t[1], t[2]));
        yield return new Check("sort", g => [N(g, 20, 300)], t => t[0].Sort(1).Values);
        yield return new Check("sort_indices", g => [N(g, 20, 300)], t => (t[0] * 2.0).Round().Sort(1, descending: true).Indices);
        yield return new Check("sort_long", g => [N(g, 3, 5000)], t => t[0].Sort(1).Values);
        yield return new Check("argsort", g => [N(g, 20, 300)], t => t[0].Argsort(0));
        yield return new Check("topk", g => [N(g, 20, 300)], t => t[0].TopK(5).Values);
        yield return new Check("masked_select", g => [N(g, 30, 20), Mask(g, 30, 20)], t => t[0].MaskedSelect(t[1]));
        yield return new Check("one_hot", g => [Idx(g, 10, 40)], t => t[0].OneHot(10));
        yield return new Check("nonzero", g => [Mask(g, 10, 20)], t => t[0].Nonzero());

        // convolution (im2col / col2im / depthwise kernels and the GEMM compositions)
        yield return new Check("conv2d_3x3", g => [N(g, 2, 8, 19, 23), N(g, 12, 8, 3, 3), N(g, 12)], t => t[0].Conv2d(t[1], t[2], padding: 1));
        yield return new Check("conv2d_1x1", g => [N(g, 2, 16, 9, 11), N(g, 24, 16, 1, 1)], t => t[0].Conv2d(t[1]));
        yield return new Check("conv2d_7x7_s2", g => [N(g, 1, 3, 40, 37), N(g, 8, 3, 7, 7)], t => t[0].Conv2d(t[1], null, stride: 2, padding: 3));
        yield return new Check("conv2d_dilated", g => [N(g, 2, 6, 21, 17), N(g, 6, 6, 3, 3), N(g, 6)], t => t[0].Conv2d(t[1], t[2], padding: 2, dilation: 2));
        yield return new Check("conv2d_grouped", g => [N(g, 2, 8, 13, 15), N(g, 12, 2, 3, 3)], t => t[0].Conv2d(t[1], null, padding: 1, groups: 4));
        yield return new Check("conv2d_depthwise", g => [N(g, 2, 10, 17, 14), N(g, 10, 1, 3, 3), N(g, 10)], t => t[0].Conv2d(t[1], t[2], stride: 2, padding: 1, groups: 10));
        yield return new Check("conv_transpose2d", g => [N(g, 2, 6, 9, 8), N(g, 6, 4, 4, 4), N(g, 4)], t => t[0].ConvTranspose2d(t[1], t[2], stride: 2, padding: 1));
        yield return new Check("conv2d_f64", g => [N64(g, 1, 4, 11, 9), N64(g, 5, 4, 3, 3)], t => t[0].Conv2d(t[1], null, padding: 1));

        // pooling and resampling
        yield return new Check("max_pool2d", g => [N(g, 2, 5, 33, 29)], t => t[0].MaxPool2d(3, 2, 1));
        yield return new Check("max_pool2d_ceil", g => [N(g, 2, 5, 33, 29)], t => t[0].MaxPool2d((2, 3), (2, 2), (1, 1), (1, 2), ceilMode: true));
        yield return new Check("avg_pool2d", g => [N(g, 2, 5, 33, 29)], t => t[0].AvgPool2d(3, 2, 1, countIncludePad: false));
        yield return new Check("adaptive_avg_pool2d", g => [N(g, 2, 5, 33, 29)], t => t[0].AdaptiveAvgPool2d((7, 5)));
        yield return new Check("interpolate_nearest", g => [N(g, 2, 5, 17, 13)], t => t[0].Interpolate((2.0, 2.0)));
        yield return new Check("interpolate_bilinear", g => [N(g, 2, 5, 17, 13)], t => t[0].Interpolate((40, 31), InterpolationMode.Bilinear));
        yield return new Check("interpolate_aligned", g => [N(g, 2, 5, 17, 13)], t => t[0].Interpolate((9, 30), InterpolationMode.Bilinear, alignCorners: true));

        // vision operators (SelfCheck.Vision.cs)
        foreach (var c in VisionChecks()) yield return c;
    }
}
