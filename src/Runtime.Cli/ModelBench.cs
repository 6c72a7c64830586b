using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Runtime.Cpu;
using Runtime.Models;
using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Nn.Optim;
using Runtime.Vision.Data;

namespace Runtime.Cli;

/// <summary>
/// <c>runtime bench &lt;detector&gt;</c> for every model of the catalogue, as benchmarks/torch_detection.py times
/// torchvision: random weights (the backbone with trainable BatchNorm and all stages trainable, as torchvision builds
/// it without pretrained weights), one --size x --size image in [0, 1] through the whole eval model (transform and
/// post-processing included), or with --train one SGD step at batch 2 with three boxes per image (for Mask R-CNN each
/// with the box-filled mask, pixels int(y1) &lt;= y &lt; int(y2), int(x1) &lt;= x &lt; int(x2)). Prints the median time, the
/// detection count (random weights make it arbitrary, so compare equal work) and the peak working set.
/// </summary>
internal static class ModelBench
{
    private static readonly (double X1, double Y1, double X2, double Y2)[] Boxes =
        [(0.10, 0.15, 0.45, 0.50), (0.50, 0.20, 0.90, 0.55), (0.30, 0.55, 0.70, 0.95)];

    public static IEnumerable<BenchOperator> Operators => ModelCatalog.All.Select(Create);

    private static BenchOperator Create(ModelEntry entry)
    {
        var train = CliOptions.Flag("--train", "one SGD training step at batch 2 instead of an eval forward");
        var size = CliOptions.OptionalInt("--size", "image height and width (default: the model's min size, 800 for torchvision's)");
        var asPlain = CliOptions.Flag("--as-plain", "deformable models: the plain model's weights (same seed) with the deformable parts starting as the identity (offsets 0, modulation 1), so they detect what the plain model does and both time the same post-processing");
        var defaults = entry.DefaultConfig();
        var deformable = defaults is FasterRcnnConfig ? new DeformableCli() : null;
        var mask = defaults is MaskXRcnnConfig ? new MaskOptions() : null;
        Option[] options = [train, size, .. deformable == null ? [] : deformable.All.Append(asPlain), .. mask == null ? [] : new Option[] { mask.MaskHead, mask.TransferInput, mask.NoStopGrad }];
        return new BenchOperator(entry.Name, $"{entry.Description}: eval forward of one image (transform to post-processing), or a training step", options, run =>
        {
            int s = run.Get(size) ?? defaults.MinSize[^1];
            var config = entry.ConfigFor(minSize: s, deformable: deformable?.Read(run.Parse));
            config = config with { Backbone = config.Backbone with { Norm = BackboneNorm.BatchNorm, TrainableLayers = 5 } };
            if (mask != null) config = new MaskSettings(null, run.Get(mask.MaskHead), run.Get(mask.TransferInput), run.Get(mask.NoStopGrad)).Apply(config, entry.Name, null);
            var model = entry.Build(config, run.Device, new Generator(1234));
            if (deformable != null && run.Get(asPlain)) StartAsPlain(model, entry, config, run.Device);
            run.Output.WriteLine(Measure(entry.Name, model, s, run.Get(train), run.Device, run.Repeat, run.Json));
            return 0;
        });
    }

    /// <summary>
    /// Gives a deformable model the weights of the plain model of the same configuration and seed, with its deformable
    /// parts as the identity: zero offsets (as they start) and modulation sigmoid(20) = 1 - 2e-9 instead of 0.5 (DCNv2's
    /// conv_offset mask channels, the RoI pooling's mask_fc). It then computes the plain network's features (the RoI
    /// pooling shifted by half a pixel) and so about the same detections, which random weights otherwise make differ.
    /// </summary>
    private static void StartAsPlain(DetectionModel model, ModelEntry entry, DetectorConfig config, Device device)
    {
        if (config is not FasterRcnnConfig rcnn) return;
        var plainConfig = rcnn with { Backbone = rcnn.Backbone with { Dcn = "none" }, BoxPool = "roi_align", Mimicking = null };
        using var plain = entry.Build(plainConfig, device, new Generator(1234));
        using var scope = new TensorScope();
        var state = new Dictionary<string, Tensor>(plain.StateDict());
        foreach (var (name, p) in model.NamedParameters())
        {
            bool dcnMask = config.Backbone.Dcn == "dcnv2" && name.EndsWith("conv2.conv_offset.bias", StringComparison.Ordinal);
            bool poolMask = name.EndsWith("box_roi_pool.mask_fc.2.bias", StringComparison.Ordinal);
            if (!dcnMask && !poolMask) continue;
            var bias = new float[p.NumEl];
            // conv_offset's channels are (dy, dx) offsets for 2/3 and the modulation for the last third; mask_fc is all modulation.
            for (int i = dcnMask ? 2 * bias.Length / 3 : 0; i < bias.Length; i++) bias[i] = 20;
            state[name] = Tensor.From<float>(bias, [.. p.Shape], device);
        }
        model.LoadStateDict(state, strict: false);
    }

    /// <summary>One size x size mask per box, filled over the box's pixels (torch_detection.py makes the same).</summary>
    private static byte[] BoxMasks(float[] boxes, int size)
    {
        int n = boxes.Length / 4;
        var masks = new byte[n * size * size];
        for (int k = 0; k < n; k++)
            for (int y = (int)boxes[4 * k + 1]; y < (int)boxes[4 * k + 3]; y++)
                masks.AsSpan((k * size + y) * size + (int)boxes[4 * k], (int)boxes[4 * k + 2] - (int)boxes[4 * k]).Fill(1);
        return masks;
    }

    private static string Measure(string name, DetectionModel model, int size, bool train, Device device, int? repeat, bool json)
    {
        using var _ = model;
        var gen = new Generator(1234);
        using var image = Tensor.Rand([3, size, size], gen);
        var backend = Backends.BackendRegistry.For(device);
        int detections = 0;
        double loss = double.NaN;
        Func<double> once;
        DetectionSample[] samples = [];
        Sgd? optimizer = null;
        if (train)
        {
            model.Train();
            float[] boxes = Boxes.SelectMany(b => new[] { (float)(b.X1 * size), (float)(b.Y1 * size), (float)(b.X2 * size), (float)(b.Y2 * size) }).ToArray();
            byte[]? masks = model is MaskRcnn ? BoxMasks(boxes, size) : null;
            samples = Enumerable.Range(0, 2).Select(i => new DetectionSample(Tensor.Rand([3, size, size], gen),
                DetectionTarget.FromArrays(boxes, [1, 2, 3], masks, size, size, [0, 0, 0], [1, 1, 1], i))).ToArray();
            optimizer = new Sgd(model.Parameters().Where(p => p.RequiresGrad).ToArray(), 1e-4, 0.9, weightDecay: 1e-4);
            once = () =>
            {
                var sw = Stopwatch.StartNew();
                using (var scope = new TensorScope())
                {
                    optimizer.ZeroGrad();
                    var losses = model.ComputeLosses(samples);
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
                detections = result[0].Count;
                foreach (var r in result) r.Dispose();
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
            string extra = train ? $"\"loss\":{loss:R}" : $"\"detections\":{detections}";
            return json
                ? FormattableString.Invariant($"{{\"impl\":\"runtime\",\"op\":\"{op}\",\"shape\":\"{shape}\",\"dtype\":\"float32\",\"device\":\"{device}\",\"threads\":{CpuParallel.Threads},\"repeats\":{reps},\"median_ms\":{median:F4},\"min_ms\":{min:F4},\"img_per_s\":{rate:F3},{extra},\"peak_rss_mb\":{peak:F1}}}")
                : FormattableString.Invariant($"{op,-32} {shape,-14} {device,-8} threads={CpuParallel.Threads} median {median,10:F1} ms  min {min,10:F1} ms  {rate,7:F2} img/s  {(train ? $"loss {loss:F4}" : $"{detections} detections")}  peak {peak:F0} MiB");
        }
        finally
        {
            optimizer?.Dispose();
            foreach (var s in samples) s.Dispose();
        }
    }
}
