using System.Globalization;
using System.Text.Json;
using Runtime.Backends;
using Runtime.Models;
using Runtime.Models.Panoptic;
using Runtime.Models.Training;
using Runtime.Vision.Data;
using Runtime.Vision.Drawing;
using Runtime.Vision.Evaluation;
using Runtime.Vision.Imaging;

namespace Runtime.Cli;

/// <summary>
/// The panoptic side of <c>runtime train | eval | predict</c> (<see cref="ModelCommands"/> dispatches here for the
/// MaX-DeepLab models and checkpoints): training on the panoptic shapes set or a COCO panoptic folder with PQ on the
/// held-out split after every epoch, PQ / SQ / RQ for all / things / stuff, and coloured panoptic PNGs with class
/// names plus COCO panoptic output (id PNGs and segments_info JSON).
/// </summary>
internal static class PanopticCommands
{
    public sealed record TrainArgs(int? Epochs, int? Batch, double? Lr, int? Size, ulong? Seed, double? ClipGrad, TimeSpan? TimeLimit, int Workers, double? PretrainMinutes = null);

    private static string DataFolder(string outDir) => Path.Combine(outDir, "data");

    public static int Train(PanopticModelEntry entry, string data, string outDir, TrainArgs args, Device device, bool resume, TextWriter output)
    {
        if (args.PretrainMinutes is double pm && !(pm >= 0 && double.IsFinite(pm)))
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"--pretrain-minutes must be 0 or more, got {pm}"));
        BackendRegistry.For(device);
        Directory.CreateDirectory(outDir);
        output.WriteLine($"data: {(PanopticData.IsShapes(data) ? "generating/reading the panoptic shapes set in " + DataFolder(outDir) : data)}");
        var train = PanopticData.Open(data, train: true, DataFolder(outDir));
        var val = PanopticData.Open(data, train: false, DataFolder(outDir));
        var (numClasses, things) = PanopticData.Classes(train.Dataset.Categories);
        var config = entry.ConfigFor(numClasses, things, args.Size);
        bool compact = entry.Name.EndsWith("_compact", StringComparison.Ordinal);
        var options = new PanopticTrainOptions
        {
            Epochs = args.Epochs ?? (compact ? 8 : 50),
            BatchSize = args.Batch ?? (compact ? 4 : 2),
            Lr = args.Lr ?? 1e-3,
            Seed = args.Seed ?? 1,
            ClipGradNorm = args.ClipGrad,
            TimeLimit = args.TimeLimit,
            Workers = args.Workers,
            EvalImages = compact ? 100 : null,
        };
        double pretrainMinutes = args.PretrainMinutes ?? (compact ? 7 : 0);
        if (pretrainMinutes > 0 && things.Length >= 2 && !resume)
            options = options with { Pretrain = new BackbonePretrainOptions { Duration = TimeSpan.FromMinutes(pretrainMinutes) } };
        var seed = options.Seed;
        using var model = entry.Build(config, device, new Generator(seed));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{entry.Name}: {model.Parameters().Sum(p => (long)p.NumEl):N0} parameters, {train.Dataset.Count} training / {val.Dataset.Count} held-out images, {numClasses} classes ({things.Length} things), {config.InputSize} px, {config.NumSlots} slots, device {device}"));
        var trainer = new PanopticTrainer(entry.Name, model, train.Dataset, val.Dataset, options, outDir, data);
        var history = new TrainingProgress(output).Run(observer => trainer.Run(observer, resume));
        WriteHistory(outDir, history, resume);
        if (history.LastOrDefault(h => h.Panoptic != null)?.Panoptic is { } pq)
        {
            output.WriteLine("held-out panoptic quality:");
            output.WriteLine(pq.ToTable());
        }
        int drawn = DrawHeldOut(model, val.Dataset, Path.Combine(outDir, "predictions"), 8);
        output.WriteLine($"checkpoint: {Path.GetFullPath(outDir)}; {drawn} held-out predictions drawn to {Path.GetFullPath(Path.Combine(outDir, "predictions"))}");
        return 0;
    }

    private static Dictionary<string, object?> Metrics(PanopticMetrics m) => new() { ["pq"] = m.Pq, ["sq"] = m.Sq, ["rq"] = m.Rq, ["n"] = m.N };

    /// <summary>history.json: per epoch the time since the start, the mean losses and PQ / SQ / RQ (a resumed run appends).</summary>
    private static void WriteHistory(string outDir, IReadOnlyList<Runtime.Models.Training.EpochSummary> history, bool resume)
    {
        var path = Path.Combine(outDir, "history.json");
        var rows = new List<JsonElement>();
        if (resume && File.Exists(path))
            rows.AddRange(JsonDocument.Parse(File.ReadAllText(path)).RootElement.EnumerateArray()
                .Where(r => r.GetProperty("epoch").GetInt32() <= history.FirstOrDefault()?.Epoch).Select(r => r.Clone()));
        rows.AddRange(history.Select(h => JsonSerializer.SerializeToElement(new Dictionary<string, object?>
        {
            ["epoch"] = h.Epoch + 1,
            ["seconds"] = Math.Round(h.Elapsed.TotalSeconds, 1),
            ["losses"] = h.MeanLosses,
            ["pq"] = h.Panoptic?.All.Pq,
            ["panoptic"] = h.Panoptic is { } r ? new Dictionary<string, object?> { ["all"] = Metrics(r.All), ["things"] = Metrics(r.Things), ["stuff"] = Metrics(r.Stuff) } : null,
        })));
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, path, overwrite: true);
    }

    private static PanopticSegment ToSegment(PredictedSegment s, CategoryMap? categories) =>
        new(s.Id, categories?.CategoryIdOf(s.Class + 1) ?? s.Class + 1, s.Class + 1, s.IsThing, false, s.Area, [.. s.Bbox.Select(v => (double)v)]);

    private static Image Drawn(Image image, PanopticPrediction p, CategoryMap? categories, IReadOnlyList<string> names) =>
        Visualize.Panoptic(image, p.Ids, [.. p.Segments.Select(s => ToSegment(s, categories))], names);

    private static int DrawHeldOut(MaxDeepLab model, CocoPanoptic val, string folder, int count)
    {
        Directory.CreateDirectory(folder);
        model.Eval();
        var device = model.Memory.Device;
        int n = Math.Min(count, val.Count);
        for (int i = 0; i < n; i++)
        {
            using var sample = val.Get(i);
            using var image = sample.Image.To(device);
            var p = model.Predict([image])[0];
            Drawn(Draw.ToImage(sample.Image), p, val.Categories, val.Categories.Names)
                .Save(Path.Combine(folder, Path.GetFileNameWithoutExtension(val.ImageInfo(i).FileName) + "_pred.png"));
        }
        return n;
    }

    public static int Eval(string checkpoint, string data, string? json, Device device, TextWriter output)
    {
        BackendRegistry.For(device);
        var (model, info) = MaxDeepLabCheckpoint.Load(checkpoint, device);
        using (model)
        {
            var val = PanopticData.Open(data, train: false, DataFolder(checkpoint));
            var (n, _) = PanopticData.Classes(val.Dataset.Categories);
            if (n != model.NumClasses)
                throw new ArgumentException($"the checkpoint's {info.Model} has {model.NumClasses} classes but the data set has {n}");
            var result = PanopticEvaluation.Evaluate(model, val.Dataset);
            output.WriteLine($"{info.Model} ({info.Epoch} epochs) on {val.Dataset.Count} held-out images:");
            output.WriteLine(result.ToTable());
            if (json != null)
            {
                var names = val.Dataset.Categories.Categories.ToDictionary(c => (int)c.Id, c => c.Name);
                var doc = new Dictionary<string, object?>
                {
                    ["model"] = info.Model,
                    ["checkpoint"] = Path.GetFullPath(checkpoint),
                    ["images"] = val.Dataset.Count,
                    ["all"] = Metrics(result.All),
                    ["things"] = Metrics(result.Things),
                    ["stuff"] = Metrics(result.Stuff),
                    ["per_category"] = result.PerClass.ToDictionary(kv => kv.Key.ToString(CultureInfo.InvariantCulture),
                        kv => (object?)new Dictionary<string, object?> { ["name"] = names.GetValueOrDefault(kv.Key), ["pq"] = kv.Value.Pq, ["sq"] = kv.Value.Sq, ["rq"] = kv.Value.Rq }),
                };
                var tmp = json + ".tmp";
                File.WriteAllText(tmp, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
                File.Move(tmp, json, overwrite: true);
            }
        }
        return 0;
    }

    /// <summary>
    /// Writes, per image, <c>&lt;stem&gt;.png</c> (the image with the segments coloured, thing outlines and class names),
    /// <c>&lt;stem&gt;_panoptic.png</c> (the COCO panoptic id PNG) and, for all images, <c>panoptic.json</c> (COCO panoptic
    /// results: annotations with segments_info, and the categories).
    /// </summary>
    public static int Predict(string? modelName, string weights, int? numClasses, string[] images, string outDir, Device device, TextWriter output)
    {
        BackendRegistry.For(device);
        foreach (var f in images)
            if (!File.Exists(f)) throw new FileNotFoundException($"no such image: {f}", f);
        MaxDeepLab model;
        CategoryMap? categories = null;
        if (Directory.Exists(weights))
        {
            var (m, info) = MaxDeepLabCheckpoint.Load(weights, device);
            if (modelName != null && modelName != info.Model)
            {
                m.Dispose();
                throw new ArgumentException($"--model {modelName} does not match the checkpoint in '{weights}', which holds {info.Model}");
            }
            model = m;
            if (info.Categories != null) categories = new CategoryMap(info.Categories);
        }
        else
        {
            if (modelName == null) throw new ArgumentException("--model is required with a weights file (it names the architecture)");
            var entry = ModelCatalog.GetPanoptic(modelName);
            model = entry.Build(entry.ConfigFor(numClasses), device);
            try
            {
                MaxDeepLabCheckpoint.LoadWeights(model, weights);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        using (model)
        {
            model.Eval();
            Directory.CreateDirectory(outDir);
            var names = categories?.Names ?? [.. Enumerable.Range(0, model.NumClasses + 1).Select(l => l == 0 ? "void" : $"class {l - 1}")];
            var annotations = new List<Dictionary<string, object>>();
            var imageList = new List<Dictionary<string, object>>();
            foreach (var file in images)
            {
                var image = Image.Load(file).ToRgb();
                using var cpu = ImageTensors.ToChw(image);
                using var tensor = cpu.To(device);
                var p = model.Predict([tensor])[0];
                string stem = Path.GetFileNameWithoutExtension(file);
                Drawn(image, p, categories, names).Save(Path.Combine(outDir, stem + ".png"));
                new Image(p.Width, p.Height, 3, p.ToRgb()).Save(Path.Combine(outDir, stem + "_panoptic.png"));
                // COCO panoptic results: integer image ids (1, 2, ... in the order given), listed in "images".
                int imageId = imageList.Count + 1;
                imageList.Add(new Dictionary<string, object> { ["id"] = imageId, ["file_name"] = Path.GetFileName(file), ["width"] = p.Width, ["height"] = p.Height });
                annotations.Add(new Dictionary<string, object>
                {
                    ["image_id"] = imageId,
                    ["file_name"] = stem + "_panoptic.png",
                    ["segments_info"] = p.Segments.Select(s => new Dictionary<string, object>
                    {
                        ["id"] = s.Id,
                        ["category_id"] = categories?.CategoryIdOf(s.Class + 1) ?? s.Class + 1,
                        ["isthing"] = s.IsThing ? 1 : 0,
                        ["area"] = s.Area,
                        ["bbox"] = s.Bbox,
                        ["score"] = Math.Round(s.Score, 4),
                    }).ToArray(),
                });
                output.WriteLine($"{file}: {p.Segments.Count(s => s.IsThing)} things, {p.Segments.Count(s => !s.IsThing)} stuff segments");
            }
            var cats = categories?.Categories.Select(c => new Dictionary<string, object> { ["id"] = c.Id, ["name"] = c.Name, ["isthing"] = c.IsThing ?? true ? 1 : 0 }).ToArray()
                ?? [.. Enumerable.Range(0, model.NumClasses).Select(c => new Dictionary<string, object> { ["id"] = c + 1, ["name"] = $"class {c}", ["isthing"] = model.Config.ThingClasses.Contains(c) ? 1 : 0 })];
            var jsonPath = Path.Combine(outDir, "panoptic.json");
            var tmp = jsonPath + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(new Dictionary<string, object> { ["images"] = imageList, ["annotations"] = annotations, ["categories"] = cats }, new JsonSerializerOptions { WriteIndented = true }));
            File.Move(tmp, jsonPath, overwrite: true);
            output.WriteLine($"wrote {images.Length} drawn image{(images.Length == 1 ? "" : "s")}, their panoptic PNGs and {Path.GetFullPath(jsonPath)}");
        }
        return 0;
    }
}
