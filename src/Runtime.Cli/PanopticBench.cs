using System.Diagnostics;
using Runtime.Cpu;
using Runtime.Models;
using Runtime.Models.Panoptic;
using Runtime.Nn.Optim;

namespace Runtime.Cli;

/// <summary>
/// <c>runtime bench max_deeplab_s | max_deeplab_compact [--train] [--size]</c> and <c>runtime bench dual_path_block</c>,
/// as benchmarks/torch_max_deeplab.py times the PyTorch reference of the same networks: random weights, one
/// --size x --size image in [0, 1] through the eval model (preprocessing and panoptic post-processing included), or
/// with --train one Adam step at batch 2 on three rectangles over a stuff background; the dual-path block is the
/// forward (and with --train the backward) of one block at MaX-DeepLab-S's last stage (2048 channels, 41 x 41, 128
/// slots of 256) or smaller with --size / --channels.
/// </summary>
internal static class PanopticBench
{
    private static readonly (double X1, double Y1, double X2, double Y2)[] Boxes =
        [(0.10, 0.15, 0.45, 0.50), (0.50, 0.20, 0.90, 0.55), (0.30, 0.55, 0.70, 0.95)];

    public static IEnumerable<BenchOperator> Operators => ModelCatalog.Panoptic.Select(Create).Append(Block());

    private static BenchOperator Create(PanopticModelEntry entry)
    {
        var train = CliOptions.Flag("--train", "one Adam training step at batch 2 instead of an eval forward");
        var size = CliOptions.OptionalInt("--size", "image height and width (default: the model's input size)");
        return new BenchOperator(entry.Name, $"{entry.Description}: eval forward of one image (preprocessing to panoptic output), or a training step", [train, size], run =>
        {
            var config = entry.DefaultConfig();
            int s = run.Get(size) ?? config.InputSize;
            config = config with { InputSize = s };
            run.Output.WriteLine(Measure(entry.Name, entry.Build(config, run.Device, new Generator(1234)), s, run.Get(train), run.Device, run.Repeat, run.Json));
            return 0;
        });
    }

    /// <summary>Three rectangles (classes 0, 1, 2) over a background of the last class, at the image's pixels, as the PyTorch script makes them.</summary>
    internal static PanopticTarget SyntheticTarget(MaxDeepLabConfig config, int size)
    {
        var ids = new int[size * size];
        Array.Fill(ids, 1);
        for (int k = 0; k < Boxes.Length; k++)
        {
            var (x1, y1, x2, y2) = Boxes[k];
            for (int y = (int)(y1 * size); y < (int)(y2 * size); y++)
                for (int x = (int)(x1 * size); x < (int)(x2 * size); x++)
                    ids[y * size + x] = k + 2;
        }
        var segments = new List<(long, int, bool)> { (1, config.NumClasses - 1, false), (2, 0, false), (3, 1 % config.NumClasses, false), (4, 2 % config.NumClasses, false) };
        int s4 = MaxDeepLabConfig.FeatureSize(size, 4), ss = MaxDeepLabConfig.FeatureSize(size, config.SemanticStride);
        return PanopticTarget.FromSegments(ids, size, size, segments, s4, s4, ss, ss);
    }

    private static string Measure(string name, MaxDeepLab model, int size, bool train, Device device, int? repeat, bool json)
    {
        using var _ = model;
        var gen = new Generator(1234);
        using var image = Tensor.Rand([3, size, size], gen).To(device);
        var backend = Backends.BackendRegistry.For(device);
        int segments = 0;
        double loss = double.NaN;
        Func<double> once;
        Tensor? images = null;
        Adam? optimizer = null;
        if (train)
        {
            model.Train();
            var targets = new[] { SyntheticTarget(model.Config, size), SyntheticTarget(model.Config, size) };
            using (var cpu = Tensor.Randn([2, 3, size, size], gen)) images = cpu.To(device);
            optimizer = new Adam(model.Parameters().ToArray(), 1e-4);
            once = () =>
            {
                var sw = Stopwatch.StartNew();
                using (var scope = new TensorScope())
                {
                    optimizer.ZeroGrad();
                    using var output = model.Forward(images);
                    var losses = MaxDeepLabLoss.Compute(output, targets, model.Config.Loss);
                    var total = losses.Values.Aggregate((a, b) => a + b);
                    total.Backward();
                    optimizer.Step();
                    if (double.IsNaN(loss)) loss = total.Item();
                }
                backend.Synchronize();
                return sw.Elapsed.TotalMilliseconds;
            };
        }
        else
        {
            model.Eval();
            once = () =>
            {
                var sw = Stopwatch.StartNew();
                var result = model.Predict([image]);
                backend.Synchronize();
                segments = result[0].Segments.Count;
                return sw.Elapsed.TotalMilliseconds;
            };
        }
        try
        {
            var (reps, median, min) = BenchCommand.Time(once, repeat, budgetMs: 15000, minReps: 3, maxReps: 30, warmups: 1);
            double peak = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
            int batch = train ? 2 : 1;
            string op = name + (train ? "_train" : "");
            string shape = $"{batch}x3x{size}x{size}";
            double rate = batch / (median / 1000);
            long parameters = model.Parameters().Sum(p => (long)p.NumEl);
            string extra = (train ? $"\"loss\":{loss:R}" : $"\"segments\":{segments}") + $",\"parameters\":{parameters}";
            return json
                ? FormattableString.Invariant($"{{\"impl\":\"runtime\",\"op\":\"{op}\",\"shape\":\"{shape}\",\"dtype\":\"float32\",\"device\":\"{device}\",\"threads\":{CpuParallel.Threads},\"repeats\":{reps},\"median_ms\":{median:F4},\"min_ms\":{min:F4},\"img_per_s\":{rate:F3},{extra},\"peak_rss_mb\":{peak:F1}}}")
                : FormattableString.Invariant($"{op,-32} {shape,-14} {device,-8} threads={CpuParallel.Threads} median {median,10:F1} ms  min {min,10:F1} ms  {rate,7:F2} img/s  {(train ? $"loss {loss:F4}" : $"{segments} segments")}  peak {peak:F0} MiB");
        }
        finally
        {
            optimizer?.Dispose();
            images?.Dispose();
        }
    }

    private static BenchOperator Block()
    {
        var train = CliOptions.Flag("--train", "forward and backward (the gradients of the inputs and the weights) instead of the forward");
        var size = CliOptions.OptionalInt("--size", "feature map height and width (default 41: MaX-DeepLab-S's stride 16 at 641 px)");
        var channels = CliOptions.OptionalInt("--channels", "block output channels, 4 x its filters (default 2048); the memory has 256 channels, 128 slots, as MaX-DeepLab-S");
        return new BenchOperator("dual_path_block", "one MaX-DeepLab dual-path block (axial bottleneck + dual-path transformer layer), training-mode batch norms, batch 1", [train, size, channels], run =>
        {
            int s = run.Get(size) ?? 41, c = run.Get(channels) ?? 2048;
            var gen = new Generator(1234);
            using var block = new DualPathBlock(c, c / 4, 8, s, 256, 128, 8, 2048, device: run.Device, generator: gen);
            using var pixelsCpu = Tensor.Rand([1, c, s, s], gen);
            using var memoryCpu = Tensor.Randn([1, 256, 128], gen);
            using var pixels = pixelsCpu.To(run.Device);
            using var memory = memoryCpu.To(run.Device);
            bool backward = run.Get(train);
            pixels.RequiresGrad = backward;
            memory.RequiresGrad = backward;
            var backend = Backends.BackendRegistry.For(run.Device);
            double Once()
            {
                var sw = Stopwatch.StartNew();
                using (var scope = new TensorScope())
                {
                    block.ZeroGrad();
                    pixels.Grad?.Dispose();
                    pixels.Grad = null;
                    memory.Grad?.Dispose();
                    memory.Grad = null;
                    var (p, m) = block.Forward(pixels, memory);
                    if (backward) (p.Sum() + m.Sum()).Backward();
                }
                backend.Synchronize();
                return sw.Elapsed.TotalMilliseconds;
            }
            var (reps, median, min) = BenchCommand.Time(Once, run.Repeat, budgetMs: 15000, minReps: 3, maxReps: 30, warmups: 1);
            double peak = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
            string op = "dual_path_block" + (backward ? "_train" : "");
            string shape = $"1x{c}x{s}x{s}";
            run.Output.WriteLine(run.Json
                ? FormattableString.Invariant($"{{\"impl\":\"runtime\",\"op\":\"{op}\",\"shape\":\"{shape}\",\"dtype\":\"float32\",\"device\":\"{run.Device}\",\"threads\":{CpuParallel.Threads},\"repeats\":{reps},\"median_ms\":{median:F4},\"min_ms\":{min:F4},\"parameters\":{block.Parameters().Sum(p => (long)p.NumEl)},\"peak_rss_mb\":{peak:F1}}}")
                : FormattableString.Invariant($"{op,-32} {shape,-14} {run.Device,-8} threads={CpuParallel.Threads} median {median,10:F1} ms  min {min,10:F1} ms  peak {peak:F0} MiB"));
            return 0;
        });
    }
}
