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
    public const string Usage = """
        usage: runtime draw <coco.json> <image_id|all> [options]
        draws the ground truth of a COCO instances JSON (masks, boxes, names) or panoptic JSON
        (segments, thing boundaries) to <out>/<image_id>_gt.png or <image_id>_panoptic.png

          --out <folder>                 where the PNGs go (default: drawn)
          --images <folder>              image folder (default: found next to the JSON)
          --panoptic <folder>            panoptic PNG folder (default: found next to the JSON)
          --predictions <results.json>   also draw COCO-format detections to <image_id>_pred.png
          --score-threshold <s>          leave out predictions scoring below s (default 0.5)
          --limit <n>                    with 'all': at most n images
        """;

    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        var opts = CommandLine.ParseOptions(args, out var positional);
        if (positional.Count != 2) throw new ArgumentException("draw needs <coco.json> and <image_id|all>");
        string json = positional[0];
        if (!File.Exists(json)) throw new ArgumentException($"no such file: {json}");
        string which = positional[1];
        string outDir = opts.GetValueOrDefault("out") ?? "drawn";
        int limit = opts.TryGetValue("limit", out var l) && l != null ? int.Parse(l, CultureInfo.InvariantCulture) : int.MaxValue;
        long? onlyId = which == "all" ? null
            : long.TryParse(which, NumberStyles.Integer, CultureInfo.InvariantCulture, out long id) ? id
            : throw new ArgumentException($"expected an image id or 'all', got '{which}'");
        Directory.CreateDirectory(outDir);
        int drawn = IsPanoptic(json)
            ? DrawPanoptic(json, onlyId, limit, outDir, opts)
            : DrawInstances(json, onlyId, limit, outDir, opts);
        Console.WriteLine($"drew {drawn} image{(drawn == 1 ? "" : "s")} to {Path.GetFullPath(outDir)}");
        return 0;
    }

    private static bool IsPanoptic(string path)
    {
        using var s = File.OpenRead(path);
        using var doc = JsonDocument.Parse(s);
        return doc.RootElement.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Array
            && a.GetArrayLength() > 0 && a[0].TryGetProperty("segments_info", out _);
    }

    private static int DrawInstances(string json, long? onlyId, int limit, string outDir, Dictionary<string, string?> opts)
    {
        var file = CocoInstancesFile.Load(json);
        var images = FindFolder(opts.GetValueOrDefault("images"), json, file.Images, ["images", Path.GetFileNameWithoutExtension(json).Replace("instances_", "")]);
        var ds = new CocoDetection(images, file, new CocoDetectionOptions { IncludeCrowd = true, ContiguousLabels = false });
        var names = ds.Categories.Names;
        var predictions = opts.GetValueOrDefault("predictions") is { } p ? LoadPredictions(p) : null;
        double threshold = opts.TryGetValue("score-threshold", out var t) && t != null ? double.Parse(t, CultureInfo.InvariantCulture) : 0.5;
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

    private static int DrawPanoptic(string json, long? onlyId, int limit, string outDir, Dictionary<string, string?> opts)
    {
        var file = CocoPanopticFile.Load(json);
        var stem = Path.GetFileNameWithoutExtension(json);
        var images = FindFolder(opts.GetValueOrDefault("images"), json, file.Images, ["images", stem.Replace("panoptic_", "")]);
        var pngs = FindFolder(opts.GetValueOrDefault("panoptic"), json,
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
        using var s = File.OpenRead(path);
        using var doc = JsonDocument.Parse(s);
        var res = new Dictionary<long, List<Prediction>>();
        foreach (var d in doc.RootElement.EnumerateArray())
        {
            var bbox = d.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            CocoSegmentation? seg = null;
            if (d.TryGetProperty("segmentation", out var sg) && sg.ValueKind == JsonValueKind.Object)
            {
                var size = sg.GetProperty("size").EnumerateArray().Select(v => v.GetInt32()).ToArray();
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
}
