using System.Diagnostics;
using Runtime.Autograd;
using Runtime.Cpu;
using Runtime.Nn.Models;

namespace Runtime.Cli;

/// <summary>
/// <c>runtime bench resnet50</c>: torchvision's ResNet-50 on 224 x 224 images (random weights; timing does not
/// depend on their values). Forward in eval mode under no-grad at batch 1 and 8 (or --batch n), or with --train
/// one training step (train-mode batch norm, forward, cross-entropy, backward) at batch 8. Median wall time
/// after a warm-up run; benchmarks/torch_bench.py times PyTorch the same way. The eval forward folds each batch norm
/// into its convolution (<see cref="Nn.Module.SetInferenceFusion"/>); <c>--no-fuse</c> times the layer-by-layer forward.
/// </summary>
internal static class ResNetBench
{
    /// <summary>The <c>resnet50</c> entry of the bench table.</summary>
    public static BenchOperator Operator { get; } = Create();

    private static BenchOperator Create()
    {
        var batch = CliOptions.OptionalInt("--batch", "batch size (default: 1 and 8 for eval, 8 with --train)");
        var train = CliOptions.Flag("--train", "one training step (train-mode batch norm, forward, cross-entropy, backward) instead of an eval forward");
        var size = CliOptions.Int("--size", "image height and width", 224);
        var noFuse = CliOptions.Flag("--no-fuse", "eval forward with each layer on its own (no batch norm folded into its convolution, no fused bias/residual/ReLU epilogue)");
        return new BenchOperator("resnet50", "torchvision's ResNet-50 on random weights: eval forward, or a training step; img/s", [batch, train, size, noFuse], run =>
        {
            bool training = run.Get(train);
            int[] batches = run.Get(batch) is int b ? [b] : training ? [8] : [1, 8];
            using var model = ResNet.ResNet50(generator: new Generator(1234));
            model.To(run.Device);
            if (run.Get(noFuse)) model.SetInferenceFusion(false);
            foreach (int n in batches)
                run.Print(Measure(model, n, run.Get(size), training, run.Device, run.Repeat));
            return 0;
        });
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
        return new BenchCommand.Result(train ? "resnet50_train" : model.InferenceFusion ? "resnet50" : "resnet50_unfused", $"{batch}x3x{size}x{size}", "float32", device.ToString(),
            CpuParallel.Threads, reps, median, min, batch / (median / 1000), "img/s");
    }
}
