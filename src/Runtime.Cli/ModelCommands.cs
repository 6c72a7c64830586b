using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Runtime.Backends;
using Runtime.Models;
using Runtime.Models.Detection;
using Runtime.Models.Panoptic;
using Runtime.Models.Training;
using Runtime.Vision.Data;
using Runtime.Vision.Drawing;
using Runtime.Vision.Evaluation;
using Runtime.Vision.Imaging;

namespace Runtime.Cli;

/// <summary>
/// <c>runtime train | eval | predict</c>: the detection models of <see cref="ModelCatalog"/> trained on the shapes
/// set or a COCO folder, evaluated with the 12 COCO numbers (of the boxes, and of the masks for Mask R-CNN), and run
/// on image files (drawn PNGs with boxes and translucent masks + COCO results JSON with RLE segmentations); the
/// panoptic models (MaX-DeepLab) go to <see cref="PanopticCommands"/>.
/// </summary>
internal static class ModelCommands
{
    private static string ModelList => string.Join(", ", ModelCatalog.AllNames);

    public static Command Train()
    {
        var model = new Argument<string>("model") { Description = "a catalogue model: " + ModelList };
        var data = new Option<string>("--data") { Required = true, HelpName = "shapes|panoptic-shapes|coco-dir", Description = "'shapes' (detectors) or 'panoptic-shapes' (panoptic models), generated into <out>/data, or a COCO folder ({train,val}/images + annotations/instances.json or panoptic.json + panoptic/, or COCO 2017's layout)" };
        var outDir = new Option<string>("--out") { Required = true, HelpName = "dir", Description = "checkpoint folder (model.safetensors, config.json, optimizer state, history.json, predictions/)" };
        var epochs = CliOptions.OptionalInt("--epochs", "epochs (default: 26, or 3 for the compact detectors; 50, or 12 for max_deeplab_compact)");
        var batch = CliOptions.OptionalInt("--batch", "images per step (default: 2, or 4 for the compact models)");
        var lr = CliOptions.Text("--lr", "x", "base learning rate (default: 0.02 x batch / 16, or 0.01 for the compact detectors; Adam 1e-3 for the panoptic models)");
        var size = CliOptions.OptionalInt("--size", "shorter image side after resizing (default: the model's: 800, or 256 for the compact detectors); the panoptic models' square input side (641, 161 compact)");
        var device = CliOptions.Device("device to train on (default: cpu, or RUNTIME_DEVICE)");
        var seed = CliOptions.ULong("--seed", "seed of data order, flips and sampling (default 1); the CPU repeats a seeded run exactly");
        var resume = CliOptions.Flag("--resume", "continue from the checkpoint in --out");
        var clip = CliOptions.Text("--clip-grad", "norm", "clip the gradient norm to this value");
        var minutes = CliOptions.Text("--minutes", "m", "stop training after this many minutes (then checkpoint and evaluate)");
        var workers = CliOptions.Int("--workers", "background image loaders", 1, min: 0);
        var command = new Command("train", "train a detector or a panoptic model from scratch; checkpoints and evaluates on the held-out split after every epoch (COCO AP, or PQ)")
        {
            model, data, outDir, epochs, batch, lr, size, device, seed, resume, clip, minutes, workers,
        };
        command.SetAction(parse =>
        {
            if (ModelCatalog.TryGetPanoptic(parse.GetValue(model)!, out var panoptic))
                return PanopticCommands.Train(panoptic, parse.GetValue(data)!, parse.GetValue(outDir)!, new PanopticCommands.TrainArgs(
                    parse.GetValue(epochs), parse.GetValue(batch), ParseDouble(parse.GetValue(lr), "--lr"), parse.GetValue(size), parse.GetValue(seed),
                    ParseDouble(parse.GetValue(clip), "--clip-grad"), ParseDouble(parse.GetValue(minutes), "--minutes") is double mm ? TimeSpan.FromMinutes(mm) : null,
                    parse.GetValue(workers)), parse.GetValue(device), parse.GetValue(resume), parse.Output());
            var entry = ModelCatalog.Get(parse.GetValue(model)!);
            bool compact = entry.Name.EndsWith("_compact", StringComparison.Ordinal);
            int b = parse.GetValue(batch) ?? (compact ? 4 : 2);
            var options = new TrainOptions
            {
                Epochs = parse.GetValue(epochs) ?? (compact ? 3 : 26),
                BatchSize = b,
                Lr = ParseDouble(parse.GetValue(lr), "--lr") ?? (compact ? 0.01 : 0.02 * b / 16),
                Seed = parse.GetValue(seed) ?? 1,
                ClipGradNorm = ParseDouble(parse.GetValue(clip), "--clip-grad"),
                TimeLimit = ParseDouble(parse.GetValue(minutes), "--minutes") is double m ? TimeSpan.FromMinutes(m) : null,
                Workers = parse.GetValue(workers),
            };
            if (compact) options = options with { WarmupIters = 100, LrSteps = [options.Epochs - 1] };
            return RunTrain(entry, parse.GetValue(data)!, parse.GetValue(outDir)!, parse.GetValue(size), parse.GetValue(device), options, parse.GetValue(resume), parse.Output());
        });
        return command;
    }

    public static Command Eval()
    {
        var checkpoint = new Argument<string>("checkpoint-dir") { Description = "a folder written by 'runtime train'" };
        var data = new Option<string>("--data") { Required = true, HelpName = "shapes|panoptic-shapes|coco-dir", Description = "the data set whose held-out split is scored" };
        var json = CliOptions.Text("--json", "file", "also write the 12 numbers and per-category AP as JSON (boxes; masks too for Mask R-CNN), or PQ / SQ / RQ (all, things, stuff, per category)");
        var device = CliOptions.Device("device (default: cpu, or RUNTIME_DEVICE)");
        var command = new Command("eval", "evaluation of a checkpoint on a data set's held-out split: COCO's 12 numbers for boxes (and masks for Mask R-CNN), or PQ / SQ / RQ for all, things and stuff for a panoptic model") { checkpoint, data, json, device };
        command.SetAction(parse => MaxDeepLabCheckpoint.IsPanoptic(parse.GetValue(checkpoint)!)
            ? PanopticCommands.Eval(parse.GetValue(checkpoint)!, parse.GetValue(data)!, parse.GetValue(json), parse.GetValue(device), parse.Output())
            : RunEval(parse.GetValue(checkpoint)!, parse.GetValue(data)!, parse.GetValue(json), parse.GetValue(device), parse.Output()));
        return command;
    }

    public static Command Predict()
    {
        var model = CliOptions.Text("--model", "name", "catalogue model (required with a .pth; checked against a checkpoint folder's)");
        var weights = new Option<string>("--weights") { Required = true, HelpName = "dir|file.pth", Description = "a 'runtime train' checkpoint folder, or a torchvision .pth / safetensors state dict" };
        var numClasses = CliOptions.OptionalInt("--num-classes", "classes including the background, for a .pth (default: the model's, 91); for a panoptic model its thing + stuff classes (default 133)", min: 2);
        var score = CliOptions.Double("--score", "draw and report detections scoring at least this", 0.5);
        var images = new Argument<string[]>("images") { Arity = ArgumentArity.OneOrMore, Description = "PNG, JPEG or PPM files" };
        var outDir = new Option<string>("--out") { Required = true, HelpName = "dir", Description = "where <image>.png and detections.json go" };
        var device = CliOptions.Device("device (default: cpu, or RUNTIME_DEVICE)");
        var command = new Command("predict", "detect objects in images: drawn PNGs (boxes, class names, scores; masks for Mask R-CNN) and detections.json in COCO results format (with RLE segmentations for Mask R-CNN); for a panoptic model coloured panoptic PNGs with class names, COCO panoptic id PNGs and panoptic.json")
        {
            model, weights, numClasses, score, images, outDir, device,
        };
        command.SetAction(parse =>
        {
            string w = parse.GetValue(weights)!;
            string? name = parse.GetValue(model);
            if (Directory.Exists(w) ? MaxDeepLabCheckpoint.IsPanoptic(w) : name != null && ModelCatalog.TryGetPanoptic(name, out _))
                return PanopticCommands.Predict(name, w, parse.GetValue(numClasses), parse.GetValue(images)!, parse.GetValue(outDir)!, parse.GetValue(device), parse.Output());
            return RunPredict(name, w, parse.GetValue(numClasses), parse.GetValue(score), parse.GetValue(images)!, parse.GetValue(outDir)!, parse.GetValue(device), parse.Output());
        });
        return command;
    }

    private static double? ParseDouble(string? text, string option)
    {
        if (text == null) return null;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && v > 0) return v;
        throw new ArgumentException($"{option}: expected a positive number, got '{text}'");
    }

    private static string DataFolder(string outDir) => Path.Combine(outDir, "data");

    private static int RunTrain(ModelEntry entry, string data, string outDir, int? size, Device device, TrainOptions options, bool resume, TextWriter output)
    {
        BackendRegistry.For(device);
        Directory.CreateDirectory(outDir);
        output.WriteLine($"data: {(DetectionData.IsShapes(data) ? "generating/reading the shapes set in " + DataFolder(outDir) : data)}");
        var train = DetectionData.Open(data, train: true, DataFolder(outDir));
        var val = DetectionData.Open(data, train: false, DataFolder(outDir));
        var config = entry.ConfigFor(numClasses: train.Dataset.Categories.NumClasses, minSize: size);
        using var model = entry.Build(config, device, new Generator(options.Seed));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{entry.Name}: {model.Parameters().Sum(p => (long)p.NumEl):N0} parameters, {train.Dataset.Count} training / {val.Dataset.Count} held-out images, {config.NumClasses} classes, {config.MinSize[^1]} px, device {device}"));
        var trainer = new DetectionTrainer(entry.Name, model, train.Dataset, val.Dataset, options, outDir, data);
        var history = new TrainingProgress(output).Run(observer => trainer.Run(observer, resume));
        WriteHistory(outDir, history, resume);
        var last = history.LastOrDefault(h => h.Evaluation != null);
        if (last?.Evaluation is { } box)
        {
            output.WriteLine("held-out box evaluation:");
            output.WriteLine(box.Summary());
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"AP {box.AP:F3}  AP50 {box.AP50:F3}  AP75 {box.AP75:F3}"));
        }
        if (last?.MaskEvaluation is { } mask)
        {
            output.WriteLine("held-out mask evaluation:");
            output.WriteLine(mask.Summary());
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"mask AP {mask.AP:F3}  AP50 {mask.AP50:F3}  AP75 {mask.AP75:F3}"));
        }
        int drawn = DrawHeldOut(model, val.Dataset, Path.Combine(outDir, "predictions"), 8);
        output.WriteLine($"checkpoint: {Path.GetFullPath(outDir)}; {drawn} held-out predictions drawn to {Path.GetFullPath(Path.Combine(outDir, "predictions"))}");
        return 0;
    }

    /// <summary>history.json: per epoch the time since the run started, the mean losses and the held-out numbers (a resumed run appends).</summary>
    private static void WriteHistory(string outDir, IReadOnlyList<EpochSummary> history, bool resume)
    {
        var path = Path.Combine(outDir, "history.json");
        var rows = new List<JsonElement>();
        if (resume && File.Exists(path))
            rows.AddRange(JsonDocument.Parse(File.ReadAllText(path)).RootElement.EnumerateArray()
                .Where(r => r.GetProperty("epoch").GetInt32() <= history.FirstOrDefault()?.Epoch).Select(r => r.Clone()));
        rows.AddRange(history.Select(h =>
        {
            var row = new Dictionary<string, object?>
            {
                ["epoch"] = h.Epoch + 1,
                ["seconds"] = Math.Round(h.Elapsed.TotalSeconds, 1),
                ["losses"] = h.MeanLosses,
                ["ap"] = h.Evaluation?.AP,
                ["ap50"] = h.Evaluation?.AP50,
                ["stats"] = h.Evaluation?.Stats,
            };
            if (h.MaskEvaluation is { } m)
            {
                row["mask_ap"] = m.AP;
                row["mask_ap50"] = m.AP50;
                row["mask_stats"] = m.Stats;
            }
            return JsonSerializer.SerializeToElement(row);
        }));
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, path, overwrite: true);
    }

    private static int DrawHeldOut(DetectionModel model, CocoDetection val, string folder, int count)
    {
        Directory.CreateDirectory(folder);
        model.Eval();
        var names = val.Categories.Names;
        int n = Math.Min(count, val.Count);
        for (int i = 0; i < n; i++)
        {
            using var sample = val.Get(i);
            var results = model.Predict([sample.Image]);
            using var r = results[0];
            var image = val.LoadImage(i);
            DrawTo(image, r, names, 0.5, Path.Combine(folder, Path.GetFileNameWithoutExtension(val.ImageInfo(i).FileName) + "_pred.png"));
        }
        return n;
    }

    /// <summary>Draws the detections scoring at least <paramref name="minScore"/>: boxes with captions, and masks (probability &gt; 0.5) translucent with outlines.</summary>
    private static void DrawTo(Image image, DetectionResult r, IReadOnlyList<string> names, double minScore, string path)
    {
        var scores = r.Scores.ToArray<float>();
        var keep = Enumerable.Range(0, scores.Length).Where(k => scores[k] >= minScore).ToArray();
        var boxes = r.Boxes.ToArray<float>();
        var labels = r.Labels.ToArray<long>();
        byte[] masks = [];
        if (r.BinaryMasks() is var (planes, h, w))
        {
            if (h != image.Height || w != image.Width)
                throw new InvalidOperationException($"masks are {h}x{w} but the image is {image.Height}x{image.Width}");
            masks = keep.SelectMany(k => planes.Skip(k * h * w).Take(h * w)).ToArray();
        }
        var drawn = Visualize.Detections(image,
            keep.SelectMany(k => boxes.Skip(4 * k).Take(4)).ToArray(), keep.Select(k => labels[k]).ToArray(), keep.Select(k => scores[k]).ToArray(),
            masks: masks, names: names);
        drawn.Save(path);
    }

    private static int RunEval(string checkpoint, string data, string? json, Device device, TextWriter output)
    {
        BackendRegistry.For(device);
        var (model, info) = DetectorCheckpoint.Load(checkpoint, device);
        using (model)
        {
            var val = DetectionData.Open(data, train: false, DataFolder(checkpoint));
            if (val.Dataset.Categories.NumClasses != model.NumClasses)
                throw new ArgumentException($"the checkpoint's {info.Model} has {model.NumClasses} classes (background included) but the data set has {val.Dataset.Categories.NumClasses}");
            var scores = DetectionEvaluation.Evaluate(model, val.Dataset);
            output.WriteLine($"{info.Model} ({info.Epoch} epochs) on {val.Dataset.Count} held-out images:");
            if (scores.Mask != null) output.WriteLine("boxes:");
            output.WriteLine(scores.Box.Summary());
            if (scores.Mask != null)
            {
                output.WriteLine("masks:");
                output.WriteLine(scores.Mask.Summary());
            }
            if (json != null)
            {
                var names = new[] { "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl" };
                Dictionary<string, double>? Stats(CocoEvalResult? r) => r == null ? null : names.Zip(r.Stats).ToDictionary(p => p.First, p => p.Second);
                Dictionary<string, double>? PerCategory(CocoEvalResult? r) => r?.PerCategoryAP.ToDictionary(kv => kv.Key.ToString(CultureInfo.InvariantCulture), kv => kv.Value);
                var doc = new
                {
                    model = info.Model,
                    checkpoint = Path.GetFullPath(checkpoint),
                    images = val.Dataset.Count,
                    stats = Stats(scores.Box),
                    per_category_ap = PerCategory(scores.Box),
                    mask_stats = Stats(scores.Mask),
                    mask_per_category_ap = PerCategory(scores.Mask),
                };
                var tmp = json + ".tmp";
                File.WriteAllText(tmp, JsonSerializer.Serialize(doc, new JsonSerializerOptions
                {
                    WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
                }));
                File.Move(tmp, json, overwrite: true);
            }
        }
        return 0;
    }

    private static int RunPredict(string? modelName, string weights, int? numClasses, double minScore, string[] images, string outDir, Device device, TextWriter output)
    {
        BackendRegistry.For(device);
        foreach (var f in images)
            if (!File.Exists(f)) throw new FileNotFoundException($"no such image: {f}", f);
        DetectionModel model;
        IReadOnlyList<string> names;
        Func<long, long> categoryOf;
        if (Directory.Exists(weights))
        {
            var (m, info) = DetectorCheckpoint.Load(weights, device);
            if (modelName != null && modelName != info.Model)
            {
                m.Dispose();
                throw new ArgumentException($"--model {modelName} does not match the checkpoint in '{weights}', which holds {info.Model}");
            }
            model = m;
            var map = info.Categories != null ? new CategoryMap(info.Categories) : null;
            names = map?.Names ?? CocoClassNames.All;
            categoryOf = label => map?.CategoryIdOf((int)label) ?? label;
        }
        else
        {
            if (modelName == null) throw new ArgumentException("--model is required with a weights file (it names the architecture)");
            var entry = ModelCatalog.Get(modelName);
            model = entry.Build(entry.ConfigFor(numClasses: numClasses), device);
            try
            {
                DetectorCheckpoint.LoadWeights(model, weights);
            }
            catch
            {
                model.Dispose();
                throw;
            }
            names = model.NumClasses == CocoClassNames.All.Count ? CocoClassNames.All : [];
            categoryOf = label => label;
        }
        using (model)
        {
            model.Eval();
            Directory.CreateDirectory(outDir);
            var results = new List<Dictionary<string, object>>();
            foreach (var file in images)
            {
                var image = Image.Load(file).ToRgb();
                using var tensor = ImageTensors.ToChw(image);
                var dets = model.Predict([tensor]);
                using var r = dets[0];
                string stem = Path.GetFileNameWithoutExtension(file);
                DrawTo(image, r, names, minScore, Path.Combine(outDir, stem + ".png"));
                var scores = r.Scores.ToArray<float>();
                var boxes = r.Boxes.ToArray<float>();
                var labels = r.Labels.ToArray<long>();
                var rles = r.MaskRles();
                int kept = 0;
                for (int k = 0; k < scores.Length; k++)
                {
                    if (scores[k] < minScore) continue;
                    kept++;
                    float x1 = boxes[4 * k], y1 = boxes[4 * k + 1];
                    var row = new Dictionary<string, object>
                    {
                        ["image_id"] = Path.GetFileName(file),
                        ["category_id"] = categoryOf(labels[k]),
                        ["bbox"] = new[] { x1, y1, boxes[4 * k + 2] - x1, boxes[4 * k + 3] - y1 },
                        ["score"] = scores[k],
                    };
                    // COCO's compressed RLE of the mask thresholded at 0.5, as pycocotools' mask.encode writes it.
                    if (rles.Count > 0) row["segmentation"] = new Dictionary<string, object> { ["size"] = rles[k].Size, ["counts"] = rles[k].ToCompressedString() };
                    results.Add(row);
                }
                output.WriteLine($"{file}: {kept} detection{(kept == 1 ? "" : "s")} at score >= {minScore.ToString(CultureInfo.InvariantCulture)}");
            }
            var jsonPath = Path.Combine(outDir, "detections.json");
            var tmp = jsonPath + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
            File.Move(tmp, jsonPath, overwrite: true);
            output.WriteLine($"wrote {images.Length} drawn image{(images.Length == 1 ? "" : "s")} and {Path.GetFullPath(jsonPath)}");
        }
        return 0;
    }
}
