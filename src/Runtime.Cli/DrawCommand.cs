using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Runtime.Vision.Data;
using Runtime.Vision.Drawing;
using Runtime.Vision.Evaluation;

namespace Runtime.Cli;

/// <summary>
/// <c>runtime draw &lt;coco.json&gt; &lt;image_id|all&gt; --out folder</c>: draws the ground truth of a COCO
/// instances file (masks, boxes, category names) or a panoptic file (segments coloured, thing
/// boundaries), and with <c>--predictions</c> a COCO results file beside it.
/// </summary>
internal static class DrawCommand
{
    /// <summary>The folders and files <c>draw</c> reads besides the COCO JSON.</summary>
    private sealed record Sources(string? Images, string? Panoptic, string? Predictions, double ScoreThreshold);

    public static Command Create()
    {
        var json = new Argument<string>("coco.json") { Description = "COCO instances or panoptic JSON" };
        var which = new Argument<string>("image_id|all") { Description = "the image to draw, or all of them" };
        var outDir = new Option<string>("--out") { HelpName = "folder", Description = "where the PNGs go", DefaultValueFactory = _ => "drawn" };
        var images = CliOptions.Text("--images", "folder", "image folder (default: found next to the JSON)");
        var panoptic = CliOptions.Text("--panoptic", "folder", "panoptic PNG folder (default: found next to the JSON)");
        var predictions = CliOptions.Text("--predictions", "results.json", "also draw COCO-format detections to <image_id>_pred.png");
        var threshold = CliOptions.Double("--score-threshold", "leave out predictions scoring below this", 0.5);
        var limit = CliOptions.OptionalInt("--limit", "with 'all': at most this many images");
        var command = new Command("draw", "draw the ground truth of a COCO instances JSON (masks, boxes, names) or panoptic JSON " +
            "(segments, thing boundaries) to <out>/<image_id>_gt.png or <image_id>_panoptic.png")
        {
            json, which, outDir, images, panoptic, predictions, threshold, limit,
        };
        command.SetAction(parse => Run(parse.GetValue(json)!, parse.GetValue(which)!, parse.GetValue(outDir)!, parse.GetValue(limit) ?? int.MaxValue,
            new Sources(parse.GetValue(images), parse.GetValue(panoptic), parse.GetValue(predictions), parse.GetValue(threshold)), parse.Output()));
        return command;
    }

    private static int Run(string json, string which, string outDir, int limit, Sources sources, TextWriter output)
    {
        if (!File.Exists(json)) throw new FileNotFoundException($"no such file: {json}", json);
        long? onlyId = which == "all" ? null
            : long.TryParse(which, NumberStyles.Integer, CultureInfo.InvariantCulture, out long id) ? id
            : throw new ArgumentException($"expected an image id or 'all', got '{which}'");
        bool panoptic = IsPanoptic(json);
        Directory.CreateDirectory(outDir);
        int drawn = panoptic
            ? DrawPanoptic(json, onlyId, limit, outDir, sources)
            : DrawInstances(json, onlyId, limit, outDir, sources);
        output.WriteLine($"drew {drawn} image{(drawn == 1 ? "" : "s")} to {Path.GetFullPath(outDir)}");
        return 0;
    }

    private static bool IsPanoptic(string path)
    {
        using var s = File.OpenRead(path);
        using var doc = ParseJson(s, path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: not a COCO file (its top level is not an object)");
        return doc.RootElement.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Array
            && a.GetArrayLength() > 0 && a[0].ValueKind == JsonValueKind.Object && a[0].TryGetProperty("segments_info", out _);
    }

    private static int DrawInstances(string json, long? onlyId, int limit, string outDir, Sources sources)
    {
        var file = LoadCoco(json, CocoInstancesFile.Load);
        var images = FindFolder(sources.Images, json, file.Images, ["images", Path.GetFileNameWithoutExtension(json).Replace("instances_", "")]);
        var ds = new CocoDetection(images, file, new CocoDetectionOptions { IncludeCrowd = true, ContiguousLabels = false });
        var names = ds.Categories.Names;
        var predictions = sources.Predictions is { } p ? LoadPredictions(p) : null;
        double threshold = sources.ScoreThreshold;
        int drawn = 0;
        foreach (int i in Indices(ds.Count, k => ds.ImageInfo(k).Id, onlyId, limit))
        {
            var info = ds.ImageInfo(i);
            var image = ds.LoadImage(i);
            using (var target = ds.LoadTarget(i, image.Height, image.Width))
                Visualize.Target(image, target, names).Save(Path.Combine(outDir, $"{info.Id}_gt.png"));
            if (predictions != null)
            {
                var dets = predictions.GetValueOrDefault(info.Id, []).Where(d => d.Score >= threshold).OrderByDescending(d => d.Score).ToList();
                var boxes = dets.SelectMany(d => new[] { (float)d.Bbox[0], (float)d.Bbox[1], (float)(d.Bbox[0] + d.Bbox[2]), (float)(d.Bbox[1] + d.Bbox[3]) }).ToArray();
                byte[]? masks = null;
                if (dets.Count > 0 && dets.All(d => d.Segmentation != null))
                    masks = dets.SelectMany(d => CocoDetection.DecodeMask(d.Segmentation, image.Height, image.Width)).ToArray();
                Visualize.Detections(image, boxes, dets.Select(d => d.CategoryId).ToArray(), dets.Select(d => (float)d.Score).ToArray(), masks, names)
                    .Save(Path.Combine(outDir, $"{info.Id}_pred.png"));
            }
            drawn++;
        }
        return drawn;
    }

    private static int DrawPanoptic(string json, long? onlyId, int limit, string outDir, Sources sources)
    {
        var file = LoadCoco(json, CocoPanopticFile.Load);
        var stem = Path.GetFileNameWithoutExtension(json);
        var images = FindFolder(sources.Images, json, file.Images, ["images", stem.Replace("panoptic_", "")]);
        var pngs = FindFolder(sources.Panoptic, json,
            file.Annotations.Select(a => new CocoImageInfo(a.ImageId, a.FileName, 0, 0)).ToList(), ["panoptic", stem]);
        var ds = new CocoPanoptic(images, pngs, file);
        int drawn = 0;
        foreach (int i in Indices(ds.Count, k => ds.ImageInfo(k).Id, onlyId, limit))
        {
            using var s = ds.Get(i);
            Visualize.Panoptic(s, ds.Categories.Names).Save(Path.Combine(outDir, $"{s.ImageId}_panoptic.png"));
            drawn++;
        }
        return drawn;
    }

    private static IEnumerable<int> Indices(int count, Func<int, long> idOf, long? onlyId, int limit)
    {
        if (onlyId is { } id)
        {
            for (int i = 0; i < count; i++)
                if (idOf(i) == id) return [i];
            throw new ArgumentException($"no image with id {id}");
        }
        return Enumerable.Range(0, Math.Min(count, limit));
    }

    /// <summary>The given folder, or the first candidate next to the JSON that holds the first image.</summary>
    private static string FindFolder(string? given, string json, IReadOnlyList<CocoImageInfo> images, string[] names)
    {
        if (given != null) return Directory.Exists(given) ? given : throw new ArgumentException($"no such folder: {given}");
        var dir = Path.GetDirectoryName(Path.GetFullPath(json))!;
        var parent = Path.GetDirectoryName(dir) ?? dir;
        var first = images.Count > 0 ? images[0].FileName : null;
        foreach (var root in new[] { parent, dir })
            foreach (var n in names)
            {
                var c = Path.Combine(root, n);
                if (Directory.Exists(c) && (first == null || File.Exists(Path.Combine(c, first)))) return c;
            }
        throw new ArgumentException($"cannot find the folder of {first ?? "the images"} next to {json}; pass it with --images/--panoptic");
    }

    private sealed record Prediction(long ImageId, long CategoryId, double[] Bbox, double Score, CocoSegmentation? Segmentation);

    /// <summary>A COCO results file: [{image_id, category_id, bbox [x,y,w,h], score, segmentation?}, ...].</summary>
    private static Dictionary<long, List<Prediction>> LoadPredictions(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no such file: {path}", path);
        using var s = File.OpenRead(path);
        using var doc = ParseJson(s, path);
        try
        {
            return ReadPredictions(doc.RootElement);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: not a COCO results file: {e.Message}", e);
        }
    }

    private static Dictionary<long, List<Prediction>> ReadPredictions(JsonElement root)
    {
        var res = new Dictionary<long, List<Prediction>>();
        foreach (var d in root.EnumerateArray())
        {
            var bbox = d.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            if (bbox.Length != 4) throw new FormatException($"a bbox has {bbox.Length} numbers, not 4");
            CocoSegmentation? seg = null;
            if (d.TryGetProperty("segmentation", out var sg) && sg.ValueKind == JsonValueKind.Object)
            {
                var size = sg.GetProperty("size").EnumerateArray().Select(v => v.GetInt32()).ToArray();
                if (size.Length != 2) throw new FormatException("a segmentation's size is not [height, width]");
                var counts = sg.GetProperty("counts");
                seg = counts.ValueKind == JsonValueKind.String
                    ? CocoSegmentation.FromCompressedRle(size[0], size[1], counts.GetString()!)
                    : CocoSegmentation.FromRle(size[0], size[1], counts.EnumerateArray().Select(v => v.GetUInt32()).ToArray());
            }
            var p = new Prediction(d.GetProperty("image_id").GetInt64(), d.GetProperty("category_id").GetInt64(), bbox,
                d.TryGetProperty("score", out var sc) ? sc.GetDouble() : 1, seg);
            if (!res.TryGetValue(p.ImageId, out var list)) res[p.ImageId] = list = new List<Prediction>();
            list.Add(p);
        }
        return res;
    }

    /// <summary>Loads a COCO file, naming it when its JSON has the wrong shape (an array where an object belongs, ...).</summary>
    private static T LoadCoco<T>(string path, Func<string, T> load)
    {
        try
        {
            return load(path);
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException
            || (e is InvalidDataException && !e.Message.Contains(path, StringComparison.Ordinal)))
        {
            throw new InvalidDataException($"{path}: not a COCO file: {e.Message}", e);
        }
    }

    /// <summary>Parses a JSON file, naming it when it is not JSON.</summary>
    private static JsonDocument ParseJson(Stream s, string path)
    {
        try
        {
            return JsonDocument.Parse(s);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
    }
}
