using System.Diagnostics;
using System.Globalization;
using Runtime.Autograd;
using Runtime.Cpu;
using Runtime.Nn.Models;

namespace Runtime.Cli;

/// <summary>
/// <c>runtime bench resnet50</c>: torchvision's ResNet-50 on 224 x 224 images (random weights; timing does not
/// depend on their values). Forward in eval mode under no-grad at batch 1 and 8 (or --batch n), or with --train
/// one training step (train-mode batch norm, forward, cross-entropy, backward) at batch 8. Median wall time
/// after a warm-up run; benchmarks/torch_bench.py times PyTorch the same way.
/// </summary>
internal static class ResNetBench
{
    public static int Run(string[] args)
    {
        var opts = CommandLine.ParseOptions(args, out var positional, "json", "train");
        if (positional.Count != 1 || positional[0] != "resnet50") throw new ArgumentException("usage: runtime bench resnet50 [--batch n] [--train] [--size s] [--threads n] [--repeat n] [--device d] [--json]");
        var o = new BenchOptions(opts);
        var device = o.Device;
        int? repeat = o.Repeat;
        int size = o.Int("size", 224);
        bool train = o.Has("train");
        int[] batches = o.Value("batch") is string b ? [int.Parse(b, CultureInfo.InvariantCulture)] : train ? [8] : [1, 8];

        using var model = ResNet.ResNet50(generator: new Generator(1234));
        model.To(device);
        foreach (int batch in batches)
        {
            var result = Measure(model, batch, size, train, device, repeat);
            Console.WriteLine(opts.ContainsKey("json") ? result.ToJson() : result.ToRow());
        }
        return 0;
    }

    public static BenchCommand.Result Measure(ResNet model, int batch, int size, bool train, Device device, int? repeat)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        var gen = new Generator(99);
        using var x = Tensor.Randn([batch, 3, size, size], gen, DType.Float32, device);
        using var target = Tensor.RandInt(0, 1000, [batch], gen, DType.Int64, device);
        var backend = Backends.BackendRegistry.For(device);
        if (train) model.Train();
        else model.Eval();

        double Once()
        {
            var sw = Stopwatch.StartNew();
            if (train)
            {
                using (var y = model.Forward(x))
                using (var loss = Nn.Losses.Losses.CrossEntropy(y, target))
                    loss.Backward();
                backend.Synchronize();
                model.ZeroGrad();
            }
            else
            {
                using var noGrad = GradMode.NoGrad();
                using var y = model.Forward(x);
                backend.Synchronize();
            }
            return sw.Elapsed.TotalMilliseconds;
        }

        var (reps, median, min) = BenchCommand.Time(Once, repeat, budgetMs: 15000, minReps: 3, maxReps: 30, warmups: 1);
        return new BenchCommand.Result(train ? "resnet50_train" : "resnet50", $"{batch}x3x{size}x{size}", "float32", device.ToString(),
            CpuParallel.Threads, reps, median, min, batch / (median / 1000), "img/s");
    }
}
