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
        var epochs = CliOptions.OptionalInt("--epochs", "epochs (default: 26, or 3 for the compact detectors; 50, or 8 for max_deeplab_compact)");
        var batch = CliOptions.OptionalInt("--batch", "images per step (default: 2, or 4 for the compact models)");
        var lr = CliOptions.Text("--lr", "x", "base learning rate (default: 0.02 x batch / 16, or 0.01 for the compact detectors; Adam 1e-3 for the panoptic models)");
        var size = CliOptions.OptionalInt("--size", "shorter image side after resizing (default: the model's: 800, or 256 for the compact detectors); the panoptic models' square input side (641, 161 compact)");
        var device = CliOptions.Device("device to train on (default: cpu, or RUNTIME_DEVICE)");
        var seed = CliOptions.ULong("--seed", "seed of data order, flips and sampling (default 1); the CPU repeats a seeded run exactly");
        var resume = CliOptions.Flag("--resume", "continue from the checkpoint in --out");
        var clip = CliOptions.Text("--clip-grad", "norm", "clip the gradient norm to this value");
        var minutes = CliOptions.Text("--minutes", "m", "stop training after this many minutes (then checkpoint and evaluate)");
        var workers = CliOptions.Int("--workers", "background image loaders", 1, min: 0);
        var epochImages = CliOptions.OptionalInt("--epoch-images", "images per epoch, a random subset each epoch (default: the whole training split)");
        var finalEval = CliOptions.Flag("--final-eval-only", "evaluate on the held-out split after the last epoch only (default: after every epoch)");
        var init = CliOptions.Text("--init", "dir|file", "start from the weights of a checkpoint folder or weights file: those whose names and shapes the model shares (a detector's weights starting a mask model, e.g.); the rest keep their initialisation");
        var freezeDetector = CliOptions.Flag("--freeze-detector", "train the mask branch alone: backbone, RPN and box branch keep their (--init) weights and BatchNorm statistics (stage-wise training)");
        var pretrain = CliOptions.Text("--pretrain-minutes", "m", "panoptic models: first pretrain the convolutional backbone as a classifier of object crops from the training split for this long, within --minutes (default: 7 for max_deeplab_compact, else 0 = none)");
        var offsetLr = CliOptions.Text("--offset-lr-mult", "x", "learning-rate multiplier of the offset layers (deformable convolutions' conv_offset, deformable RoI pooling's fc branches; default 1)");
        var mask = new MaskOptions();
        var deformable = new DeformableCli();
        var command = new Command("train", "train a detector or a panoptic model from scratch; checkpoints and evaluates on the held-out split after every epoch (COCO AP, or PQ)")
        {
            model, data, outDir, epochs, batch, lr, size, device, seed, resume, clip, minutes, workers, epochImages, finalEval, init, freezeDetector, offsetLr, pretrain,
        };
        foreach (var o in mask.All) command.Options.Add(o);
        foreach (var o in deformable.All) command.Options.Add(o);
        command.SetAction(parse =>
        {
            if (ModelCatalog.TryGetPanoptic(parse.GetValue(model)!, out var panoptic))
            {
                if (mask.Read(parse) != MaskSettings.None || deformable.Read(parse) != null || parse.GetValue(offsetLr) != null || parse.GetValue(init) != null
                    || parse.GetValue(freezeDetector) || parse.GetValue(epochImages) != null || parse.GetValue(finalEval))
                    throw new ArgumentException($"{panoptic.Name} is a panoptic model: the detector options (--mask-*, --transfer-input, --no-stop-grad, --dcn*, --box-pool, --mimic, --offset-lr-mult, --init, --freeze-detector, --epoch-images, --final-eval-only) do not apply");
                return PanopticCommands.Train(panoptic, parse.GetValue(data)!, parse.GetValue(outDir)!, new PanopticCommands.TrainArgs(
                    parse.GetValue(epochs), parse.GetValue(batch), ParseDouble(parse.GetValue(lr), "--lr"), parse.GetValue(size), parse.GetValue(seed),
                    ParseDouble(parse.GetValue(clip), "--clip-grad"), ParseDouble(parse.GetValue(minutes), "--minutes") is double mm ? TimeSpan.FromMinutes(mm) : null,
                    parse.GetValue(workers), ParseDouble(parse.GetValue(pretrain), "--pretrain-minutes")), parse.GetValue(device), parse.GetValue(resume), parse.Output());
            }
            if (parse.GetValue(pretrain) != null)
                throw new ArgumentException("--pretrain-minutes pretrains a panoptic model's backbone; detectors take --init instead");
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
                EpochImages = parse.GetValue(epochImages),
                EvalEveryEpoch = !parse.GetValue(finalEval),
                Frozen = parse.GetValue(freezeDetector) ? TrainOptions.Detector : [],
                OffsetLrMultiplier = ParseDouble(parse.GetValue(offsetLr), "--offset-lr-mult") ?? 1.0,
            };
            if (compact) options = options with { WarmupIters = 100, LrSteps = [options.Epochs - 1] };
            return RunTrain(entry, parse.GetValue(data)!, parse.GetValue(outDir)!, parse.GetValue(size), parse.GetValue(device), options, parse.GetValue(resume),
                mask.Read(parse), deformable.Read(parse), parse.GetValue(init), parse.Output());
        });
        return command;
    }

    public static Command Eval()
    {
        var checkpoint = new Argument<string>("checkpoint-dir") { Description = "a folder written by 'runtime train'" };
        var data = new Option<string>("--data") { Required = true, HelpName = "shapes|panoptic-shapes|coco-dir", Description = "the data set whose held-out split is scored" };
        var json = CliOptions.Text("--json", "file", "also write the 12 numbers and per-category AP as JSON (boxes; masks too for Mask R-CNN), or PQ / SQ / RQ (all, things, stuff, per category)");
        var device = CliOptions.Device("device (default: cpu, or RUNTIME_DEVICE)");
        var maskClasses = CliOptions.Text("--mask-classes", "names|ids",
            "also score the masks on these classes (A) and on the others (B), comma-separated names or category ids (default: the checkpoint's mask classes, if trained with some)");
        var command = new Command("eval", "evaluation of a checkpoint on a data set's held-out split: COCO's 12 numbers for boxes (and masks for Mask R-CNN), or PQ / SQ / RQ for all, things and stuff for a panoptic model")
        {
            checkpoint, data, json, device, maskClasses,
        };
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(checkpoint)!;
            if (!MaxDeepLabCheckpoint.IsPanoptic(dir))
                return RunEval(dir, parse.GetValue(data)!, parse.GetValue(json), parse.GetValue(device), parse.GetValue(maskClasses), parse.Output());
            if (parse.GetValue(maskClasses) != null) throw new ArgumentException($"--mask-classes scores a mask detector's masks; '{dir}' holds a panoptic model");
            return PanopticCommands.Eval(dir, parse.GetValue(data)!, parse.GetValue(json), parse.GetValue(device), parse.Output());
        });
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
        var mask = new MaskOptions();
        var deformable = new DeformableCli();
        var command = new Command("predict", "detect objects in images: drawn PNGs (boxes, class names, scores; masks for Mask R-CNN) and detections.json in COCO results format (with RLE segmentations for Mask R-CNN); for a panoptic model coloured panoptic PNGs with class names, COCO panoptic id PNGs and panoptic.json")
        {
            model, weights, numClasses, score, images, outDir, device,
        };
        foreach (var o in mask.Architecture) command.Options.Add(o);
        foreach (var o in deformable.All)
        {
            o.Description += "; with a weights file only";
            command.Options.Add(o);
        }
        command.SetAction(parse =>
        {
            string w = parse.GetValue(weights)!;
            string? name = parse.GetValue(model);
            var maskSettings = mask.Read(parse);
            var deformableOptions = deformable.Read(parse);
            if (Directory.Exists(w) ? MaxDeepLabCheckpoint.IsPanoptic(w) : name != null && ModelCatalog.TryGetPanoptic(name, out _))
            {
                if (maskSettings != MaskSettings.None || deformableOptions != null)
                    throw new ArgumentException("--mask-head, --transfer-input, --dcn, --dcn-stages, --box-pool and --mimic describe a detector; a panoptic model takes none of them");
                return PanopticCommands.Predict(name, w, parse.GetValue(numClasses), parse.GetValue(images)!, parse.GetValue(outDir)!, parse.GetValue(device), parse.Output());
            }
            return RunPredict(name, w, parse.GetValue(numClasses), parse.GetValue(score), parse.GetValue(images)!, parse.GetValue(outDir)!, parse.GetValue(device),
                maskSettings, deformableOptions, parse.Output());
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

    private static int RunTrain(ModelEntry entry, string data, string outDir, int? size, Device device, TrainOptions options, bool resume, MaskSettings mask,
        DeformableOptions? deformable, string? init, TextWriter output)
    {
        BackendRegistry.For(device);
        if (init != null && resume) throw new ArgumentException("--init starts a new run; --resume continues the one in --out (give one of them)");
        if (options.Frozen.Count > 0 && entry.DefaultConfig() is not MaskRcnnConfig)
            throw new ArgumentException($"--freeze-detector trains the mask branch alone, and {entry.Name} has none");
        Directory.CreateDirectory(outDir);
        output.WriteLine($"data: {(DetectionData.IsShapes(data) ? "generating/reading the shapes set in " + DataFolder(outDir) : data)}");
        var train = DetectionData.Open(data, train: true, DataFolder(outDir));
        var val = DetectionData.Open(data, train: false, DataFolder(outDir));
        var categories = train.Dataset.Categories;
        var config = mask.Apply(entry.ConfigFor(numClasses: categories.NumClasses, minSize: size, deformable: deformable), entry.Name, categories);
        using var model = entry.Build(config, device, new Generator(options.Seed));
        if (init != null)
        {
            var weights = Directory.Exists(init) ? Path.Combine(init, DetectorCheckpoint.WeightsFile) : init;
            var loaded = DetectorCheckpoint.LoadWeights(model, weights, strict: false);
            int total = model.StateDict().Count;
            output.WriteLine($"initialised {total - loaded.MissingKeys.Count} of {total} tensors from {init}" +
                (loaded.MissingKeys.Count > 0 ? $"; fresh: {string.Join(", ", Prefixes(loaded.MissingKeys))}" : ""));
        }
        if (options.Frozen.Count > 0) output.WriteLine($"frozen: {string.Join(", ", options.Frozen.Select(f => f + "*"))} (weights and BatchNorm statistics)");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{entry.Name}: {model.Parameters().Sum(p => (long)p.NumEl):N0} parameters, {train.Dataset.Count} training / {val.Dataset.Count} held-out images, {config.NumClasses} classes, {config.MinSize[^1]} px, device {device}"));
        if (config is MaskXRcnnConfig x)
            output.WriteLine($"mask predictor: {x.MaskHead}{(x.UsesTransfer ? $", weight transfer from {x.TransferInput}, gradient {(x.TransferStopGradient ? "stopped at" : "into")} the box predictor" : "")}");
        if (config is MaskRcnnConfig { MaskClasses: { } a })
            output.WriteLine($"mask supervision on {Names(categories, a)} (A); boxes only for {Names(categories, Others(categories, a))} (B)");
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
        if (last?.MaskEvaluation is { } maskEval)
        {
            output.WriteLine("held-out mask evaluation:");
            output.WriteLine(maskEval.Summary());
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"mask AP {maskEval.AP:F3}  AP50 {maskEval.AP50:F3}  AP75 {maskEval.AP75:F3}"));
        }
        if (last?.MaskSplit is { } split) output.WriteLine(SplitText(split, categories));
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
            if (h.MaskSplit is { } split)
            {
                row["mask_ap_a"] = split.A.AP;
                row["mask_ap50_a"] = split.A.AP50;
                row["mask_ap_b"] = split.B.AP;
                row["mask_ap50_b"] = split.B.AP50;
            }
            return JsonSerializer.SerializeToElement(row);
        }));
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Module paths of state-dict keys (the key less its last part), in order, once each.</summary>
    private static IEnumerable<string> Prefixes(IEnumerable<string> keys) => keys.Select(k => k[..Math.Max(0, k.LastIndexOf('.'))]).Distinct();

    private static string Names(CategoryMap categories, IEnumerable<int> labels) => string.Join(", ", labels.Select(l => categories.Names[l]));

    private static int[] Others(CategoryMap categories, IReadOnlyCollection<int> labels) =>
        categories.Categories.Select(c => categories.LabelOf(c.Id)).Except(labels).Order().ToArray();

    /// <summary>The mask AP on the mask classes (A) and on the others (B), one line.</summary>
    private static string SplitText(MaskSplitScores split, CategoryMap categories) => string.Create(CultureInfo.InvariantCulture,
        $"mask AP on A ({Names(categories, split.MaskClasses)}) {split.A.AP:F3}  AP50 {split.A.AP50:F3};  on B ({Names(categories, Others(categories, split.MaskClasses))}) {split.B.AP:F3}  AP50 {split.B.AP50:F3}");

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

    private static int RunEval(string checkpoint, string data, string? json, Device device, string? maskClasses, TextWriter output)
    {
        BackendRegistry.For(device);
        var (model, info) = DetectorCheckpoint.Load(checkpoint, device);
        using (model)
        {
            var val = DetectionData.Open(data, train: false, DataFolder(checkpoint));
            var categories = val.Dataset.Categories;
            if (categories.NumClasses != model.NumClasses)
                throw new ArgumentException($"the checkpoint's {info.Model} has {model.NumClasses} classes (background included) but the data set has {categories.NumClasses}");
            if (maskClasses != null && model is not MaskRcnn)
                throw new ArgumentException($"--mask-classes scores masks, but the checkpoint's {info.Model} gives none");
            var split = maskClasses != null ? MaskSettings.ParseClasses(maskClasses, categories, categories.NumClasses) : null;
            var scores = DetectionEvaluation.Evaluate(model, val.Dataset, maskClasses: split);
            output.WriteLine($"{info.Model} ({info.Epoch} epochs) on {val.Dataset.Count} held-out images:");
            if (scores.Mask != null) output.WriteLine("boxes:");
            output.WriteLine(scores.Box.Summary());
            if (scores.Mask != null)
            {
                output.WriteLine("masks:");
                output.WriteLine(scores.Mask.Summary());
            }
            if (scores.MaskSplit is { } s) output.WriteLine(SplitText(s, categories));
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
                    mask_classes_a = scores.MaskSplit?.MaskClasses.Select(l => categories.Names[l]).ToArray(),
                    mask_stats_a = Stats(scores.MaskSplit?.A),
                    mask_stats_b = Stats(scores.MaskSplit?.B),
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

    private static int RunPredict(string? modelName, string weights, int? numClasses, double minScore, string[] images, string outDir, Device device, MaskSettings mask,
        DeformableOptions? deformable, TextWriter output)
    {
        BackendRegistry.For(device);
        foreach (var f in images)
            if (!File.Exists(f)) throw new FileNotFoundException($"no such image: {f}", f);
        DetectionModel model;
        IReadOnlyList<string> names;
        Func<long, long> categoryOf;
        if (Directory.Exists(weights))
        {
            if (mask.MaskHead != null || mask.TransferInput != null)
                throw new ArgumentException($"--mask-head and --transfer-input describe a weights file's architecture; the checkpoint in '{weights}' has its own");
            if (deformable != null)
                throw new ArgumentException("--dcn, --dcn-stages, --box-pool and --mimic describe the model of a weights file; a checkpoint folder's config.json already says what it holds");
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
            model = entry.Build(mask.Apply(entry.ConfigFor(numClasses: numClasses, deformable: deformable), entry.Name, null), device);
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

/// <summary>The options that switch a model's deformable parts (<see cref="DeformableOptions"/>); each left out keeps the model's.</summary>
internal sealed class DeformableCli
{
    public Option<string?> Dcn { get; } = CliOptions.Text("--dcn", "none|dcnv1|dcnv2", "the backbone's 3x3 convolutions in --dcn-stages: plain, deformable (DCNv1) or modulated deformable (DCNv2) (default: the model's)");
    public Option<int[]?> Stages { get; } = CliOptions.Sizes("--dcn-stages", "2,3,4", "layer numbers whose blocks get deformable 3x3 convolutions: 2,3,4 is c3-c5 (default: the model's)");
    public Option<string?> BoxPool { get; } = CliOptions.Text("--box-pool", "roi_align|mdpool|dpool", "R-CNN box pooling: RoIAlign, modulated deformable or deformable RoI pooling (default: the model's)");
    public Option<string?> Mimic { get; } = CliOptions.Text("--mimic", "on|off", "R-CNN feature mimicking in training (default: the model's)");

    public Option[] All => [Dcn, Stages, BoxPool, Mimic];

    public DeformableOptions? Read(ParseResult parse)
    {
        string? mimic = parse.GetValue(Mimic);
        bool? m = mimic switch
        {
            null => null,
            "on" => true,
            "off" => false,
            _ => throw new ArgumentException($"--mimic: expected on or off, got '{mimic}'"),
        };
        // A left-out list option reads as an empty array.
        var stages = parse.GetValue(Stages) is { Length: > 0 } st ? st : null;
        var o = new DeformableOptions(parse.GetValue(Dcn), stages, parse.GetValue(BoxPool), m);
        return o == new DeformableOptions() ? null : o;
    }
}
