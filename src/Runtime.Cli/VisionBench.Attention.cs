using System.Diagnostics;
using System.Globalization;
using Runtime.Autograd;
using Runtime.Cpu;
using Runtime.Gpu;
using Runtime.Vision.Ops;

namespace Runtime.Cli;

// runtime bench attention: fused scaled dot-product attention (S = L, Dv = D), default 1,8,4096,64; GFLOP/s count 4*B*H*L*S*D
//   for the forward and 3.5 times that with --backward (the backward's five products as 2.5 forwards).
// runtime bench axial_attention: a height-axis then a width-axis AxialAttention (span = max(H, W)), default 1,128,33,33 with 8 heads.
// Each also reports the peak extra memory of one call: on the CPU the pool bytes it still holds plus every
// managed byte it allocated (an upper bound on its scratch), on a GPU the allocator's peak above what was
// in use before.
internal static partial class VisionBench
{
    private static BenchOperator AttentionOperator()
    {
        var shape = BenchOptions.Shape("B,H,L,D (default 1,8,4096,64)");
        var causal = CliOptions.Flag("--causal", "causal mask (half the work)");
        var backward = CliOptions.Flag("--backward", "time forward + backward (q, k and v gradients)");
        return new BenchOperator("attention", "fused scaled dot-product attention; GFLOP/s, peak extra memory",
            [shape, BenchOptions.DType, causal, backward],
            run => RunAttention(run, "attention", run.Get(shape) ?? [1, 8, 4096, 64], run.Get(backward), run.Get(causal), heads: 0));
    }

    private static BenchOperator AxialAttentionOperator()
    {
        var shape = BenchOptions.Shape("N,C,H,W (default 1,128,33,33)");
        var heads = CliOptions.Int("--heads", "attention heads", 8);
        var backward = CliOptions.Flag("--backward", "time forward + backward (input and parameter gradients)");
        return new BenchOperator("axial_attention", "a height-axis then a width-axis AxialAttention (MaX-DeepLab); GFLOP/s, peak extra memory",
            [shape, BenchOptions.DType, heads, backward],
            run => RunAttention(run, "axial_attention", run.Get(shape) ?? [1, 128, 33, 33], run.Get(backward), causal: false, run.Get(heads)));
    }

    private static int RunAttention(BenchRun run, string op, int[] sh, bool backward, bool causal, int heads)
    {
        var (device, dtype, repeat) = (run.Device, run.DType, run.Repeat);
        var gen = new Generator(1234);
        using var scope = new TensorScope();
        Func<Tensor> call;
        List<Tensor> leaves = [];
        var modules = new List<IDisposable>();
        double work;
        string text;
        if (op == "attention")
        {
            if (sh.Length != 4) throw new ArgumentException("bench attention --shape is B,H,L,D");
            var q = Tensor.Randn(sh, gen, dtype, device);
            var k = Tensor.Randn(sh, gen, dtype, device);
            var v = Tensor.Randn(sh, gen, dtype, device);
            leaves.AddRange([q, k, v]);
            call = () => Attention.ScaledDotProductAttention(q, k, v, isCausal: causal);
            work = 4.0 * sh[0] * sh[1] * sh[2] * (double)sh[2] * sh[3] * (causal ? 0.5 : 1) * (backward ? 3.5 : 1) / 1e9;
            text = string.Join("x", sh) + (causal ? "+causal" : "") + (backward ? "+bwd" : "");
        }
        else
        {
            if (sh.Length != 4) throw new ArgumentException("bench axial_attention --shape is N,C,H,W");
            int span = Math.Max(sh[2], sh[3]);
            var height = new AxialAttention(sh[1], heads, span, AxialAxis.Height, dtype, device, gen);
            var width = new AxialAttention(sh[1], heads, span, AxialAxis.Width, dtype, device, gen);
            modules.AddRange([height, width]);
            var x = Tensor.Randn(sh, gen, dtype, device);
            leaves.Add(x);
            leaves.AddRange(height.Parameters());
            leaves.AddRange(width.Parameters());
            call = () =>
            {
                using var y = height.Forward(x);
                return width.Forward(y);
            };
            double n = sh[0], c = sh[1], hh = sh[2], ww = sh[3];
            // Per axis: the qkv projection 4*N*H*W*C^2 plus 7*N*H*W*len*C for the products with keys,
            // relative embeddings and values.
            work = (8 * n * hh * ww * c * c + 7 * n * hh * ww * (hh + ww) * c) * (backward ? 3 : 1) / 1e9;
            text = string.Join("x", sh) + $"h{heads}" + (backward ? "+bwd" : "");
        }
        if (backward)
            foreach (var t in leaves) t.RequiresGrad = true;
        var backend = Backends.BackendRegistry.For(device);

        void Once()
        {
            using var noGrad = backward ? default(GradMode.NoGradScope?) : GradMode.NoGrad();
            using var y = call();
            if (backward)
            {
                using var gy = Tensor.OnesLike(y);
                y.Backward(gy);
                foreach (var t in leaves)
                {
                    t.Grad?.Dispose();
                    t.Grad = null;
                }
            }
            backend.Synchronize();
        }

        // Peak extra memory of one call (after a warm-up that compiles kernels and fills caches).
        Once();
        long peakExtra;
        if (backend is GpuBackend gpu)
        {
            long before = gpu.BytesInUse;
            Once();
            peakExtra = Math.Max(0, gpu.PeakBytesInUse - before);
        }
        else
        {
            long pool0 = BufferPool.BytesInUse, gc0 = GC.GetTotalAllocatedBytes(precise: true);
            long poolPeak = 0;
            using (var noGrad = backward ? default(GradMode.NoGradScope?) : GradMode.NoGrad())
            using (var y = call())
            {
                poolPeak = BufferPool.BytesInUse - pool0;
                if (backward)
                {
                    using var gy = Tensor.OnesLike(y);
                    y.Backward(gy);
                    poolPeak = Math.Max(poolPeak, BufferPool.BytesInUse - pool0);
                    foreach (var t in leaves)
                    {
                        t.Grad?.Dispose();
                        t.Grad = null;
                    }
                }
            }
            peakExtra = poolPeak + (GC.GetTotalAllocatedBytes(precise: true) - gc0);
        }

        var (reps, median, min) = BenchCommand.Time(() =>
        {
            var sw = Stopwatch.StartNew();
            Once();
            return sw.Elapsed.TotalMilliseconds;
        }, repeat, budgetMs: 3000, minReps: 3, maxReps: 100, warmups: 0);
        var result = new BenchCommand.Result(op, text, dtype == DType.Float32 ? "float32" : "float64", device.ToString(), CpuParallel.Threads, reps,
            median, min, work / (median / 1000), "GFLOP/s");
        if (run.Json)
            run.Output.WriteLine(result.ToJson()[..^1] + string.Create(CultureInfo.InvariantCulture, $",\"peak_extra_bytes\":{peakExtra}}}"));
        else
            run.Output.WriteLine(result.ToRow() + $"  peak extra {peakExtra / 1048576.0:F1} MiB");
        foreach (var m in modules) m.Dispose();
        return 0;
    }
}
