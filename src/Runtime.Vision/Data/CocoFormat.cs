using System.Globalization;
using System.Text.Json;

namespace Runtime.Vision.Data;

/// <summary>An entry of a COCO file's <c>images</c> list.</summary>
public sealed record CocoImageInfo(long Id, string FileName, int Width, int Height);

/// <summary>An entry of <c>categories</c>; <see cref="IsThing"/> is set in panoptic files only.</summary>
public sealed record CocoCategory(long Id, string Name, string? Supercategory = null, bool? IsThing = null);

/// <summary>
/// An annotation's <c>segmentation</c>: polygons (lists of x, y pairs, in pycocotools' convention
/// that pixel (i, j) has its centre at (i, j)), or run-length encoding of a column-major mask with
/// counts as a list (uncompressed) or as COCO's compressed string.
/// </summary>
public sealed record CocoSegmentation
{
    public IReadOnlyList<double[]>? Polygons { get; init; }

    public uint[]? Counts { get; init; }

    public string? CompressedCounts { get; init; }

    /// <summary>The RLE's [height, width].</summary>
    public int RleHeight { get; init; }

    public int RleWidth { get; init; }

    public bool IsPolygons => Polygons != null;

    public bool IsRle => Counts != null || CompressedCounts != null;

    public static CocoSegmentation FromPolygons(IReadOnlyList<double[]> polygons) => new() { Polygons = polygons };

    public static CocoSegmentation FromRle(int height, int width, uint[] counts) => new() { RleHeight = height, RleWidth = width, Counts = counts };

    public static CocoSegmentation FromCompressedRle(int height, int width, string counts) => new() { RleHeight = height, RleWidth = width, CompressedCounts = counts };
}

/// <summary>An entry of <c>annotations</c> in an instances file. <see cref="Bbox"/> is [x, y, w, h].</summary>
public sealed record CocoAnnotation(long Id, long ImageId, long CategoryId, double[] Bbox, double Area, bool IsCrowd, CocoSegmentation? Segmentation);

/// <summary>An entry of a panoptic annotation's <c>segments_info</c>.</summary>
public sealed record PanopticSegmentInfo(long Id, long CategoryId, bool IsCrowd, double[] Bbox, double Area);

/// <summary>An entry of a panoptic file's <c>annotations</c>: the PNG of segment ids and its segments.</summary>
public sealed record PanopticAnnotation(long ImageId, string FileName, IReadOnlyList<PanopticSegmentInfo> SegmentsInfo);

/// <summary>
/// Category ids to training labels. Contiguous maps send the sorted category ids to 1..K (0 is
/// background), as detection training code does; an identity map keeps the ids as labels.
/// </summary>
public sealed class CategoryMap
{
    private readonly Dictionary<long, int> _labelOf = new();
    private readonly long[] _idOf;

    public CategoryMap(IEnumerable<CocoCategory> categories, bool contiguous = true)
    {
        ArgumentNullException.ThrowIfNull(categories);
        var cats = categories.OrderBy(c => c.Id).ToArray();
        if (cats.Select(c => c.Id).Distinct().Count() != cats.Length)
            throw new ArgumentException("category ids must be distinct", nameof(categories));
        if (cats.Any(c => c.Id < 0 || (!contiguous && c.Id > int.MaxValue)))
            throw new ArgumentException("category ids must be non-negative (and fit an int for an identity map)", nameof(categories));
        Contiguous = contiguous;
        int k = contiguous ? cats.Length : (int)(cats.Length == 0 ? 0 : cats[^1].Id);
        _idOf = new long[k + 1];
        var names = new string[k + 1];
        var isThing = new bool[k + 1];
        names[0] = "__background__";
        for (int i = 1; i <= k; i++) names[i] = contiguous ? "" : "N/A";
        for (int i = 0; i < cats.Length; i++)
        {
            int label = contiguous ? i + 1 : (int)cats[i].Id;
            _labelOf[cats[i].Id] = label;
            _idOf[label] = cats[i].Id;
            names[label] = cats[i].Name;
            isThing[label] = cats[i].IsThing ?? true;
        }
        Categories = cats;
        Names = names;
        IsThing = isThing;
    }

    public bool Contiguous { get; }

    /// <summary>Categories sorted by id.</summary>
    public IReadOnlyList<CocoCategory> Categories { get; }

    /// <summary>Name of each label; index 0 is the background.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Whether each label is a thing (true unless the file says isthing 0).</summary>
    public IReadOnlyList<bool> IsThing { get; }

    /// <summary>Number of labels including the background (the detector's num_classes).</summary>
    public int NumClasses => _idOf.Length;

    public int LabelOf(long categoryId) =>
        _labelOf.TryGetValue(categoryId, out int l) ? l : throw new KeyNotFoundException($"category id {categoryId} is not among the file's categories");

    public bool TryGetLabel(long categoryId, out int label) => _labelOf.TryGetValue(categoryId, out label);

    public long CategoryIdOf(int label) =>
        label > 0 && label < _idOf.Length && _labelOf.ContainsKey(_idOf[label]) && _labelOf[_idOf[label]] == label
            ? _idOf[label]
            : throw new ArgumentOutOfRangeException(nameof(label), label, "no category has this label");
}

/// <summary>
/// A COCO instances file (images, annotations, categories), read and written with System.Text.Json.
/// Panoptic files (annotations with <c>segments_info</c>) are read by <see cref="CocoPanopticFile"/>.
/// </summary>
public sealed class CocoInstancesFile
{
    private Dictionary<long, CocoImageInfo>? _imageById;
    private Dictionary<long, List<CocoAnnotation>>? _byImage;

    public CocoInstancesFile(IReadOnlyList<CocoImageInfo> images, IReadOnlyList<CocoAnnotation> annotations, IReadOnlyList<CocoCategory> categories)
    {
        Images = images;
        Annotations = annotations;
        Categories = categories;
    }

    public IReadOnlyList<CocoImageInfo> Images { get; }

    public IReadOnlyList<CocoAnnotation> Annotations { get; }

    public IReadOnlyList<CocoCategory> Categories { get; }

    public CocoImageInfo Image(long imageId) =>
        ImageById.TryGetValue(imageId, out var im) ? im : throw new KeyNotFoundException($"no image with id {imageId}");

    public bool TryGetImage(long imageId, out CocoImageInfo image) => ImageById.TryGetValue(imageId, out image!);

    /// <summary>The annotations of an image, in file order.</summary>
    public IReadOnlyList<CocoAnnotation> AnnotationsOf(long imageId)
    {
        if (_byImage == null)
        {
            var d = new Dictionary<long, List<CocoAnnotation>>();
            foreach (var a in Annotations)
            {
                if (!d.TryGetValue(a.ImageId, out var list)) d[a.ImageId] = list = new List<CocoAnnotation>();
                list.Add(a);
            }
            _byImage = d;
        }
        return _byImage.TryGetValue(imageId, out var l) ? l : [];
    }

    private Dictionary<long, CocoImageInfo> ImageById => _imageById ??= Images.ToDictionary(i => i.Id);

    public static CocoInstancesFile Load(string path)
    {
        using var s = File.OpenRead(path);
        try
        {
            return Parse(s);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    public static CocoInstancesFile Parse(string json)
    {
        using var doc = JsonDocument.Parse(json, CocoJson.DocumentOptions);
        return Parse(doc.RootElement);
    }

    public static CocoInstancesFile Parse(Stream json)
    {
        using var doc = JsonDocument.Parse(json, CocoJson.DocumentOptions);
        return Parse(doc.RootElement);
    }

    private static CocoInstancesFile Parse(JsonElement root)
    {
        var images = CocoJson.ReadImages(root);
        var categories = CocoJson.ReadCategories(root);
        var anns = new List<CocoAnnotation>();
        if (root.TryGetProperty("annotations", out var arr))
        {
            int i = 0;
            foreach (var a in arr.EnumerateArray())
            {
                anns.Add(CocoJson.ReadAnnotation(a, i));
                i++;
            }
        }
        return new CocoInstancesFile(images, anns, categories);
    }

    /// <summary>Writes the file as JSON, through a temporary file renamed into place.</summary>
    public void Save(string path, bool indented = false) =>
        CocoJson.WriteAtomically(path, w =>
        {
            w.WriteStartObject();
            CocoJson.WriteImages(w, Images);
            w.WriteStartArray("annotations");
            foreach (var a in Annotations) CocoJson.WriteAnnotation(w, a);
            w.WriteEndArray();
            CocoJson.WriteCategories(w, Categories);
            w.WriteEndObject();
        }, indented);
}

/// <summary>A COCO panoptic file: images, per-image PNG names with <c>segments_info</c>, categories with isthing.</summary>
public sealed class CocoPanopticFile
{
    private Dictionary<long, PanopticAnnotation>? _byImage;

    public CocoPanopticFile(IReadOnlyList<CocoImageInfo> images, IReadOnlyList<PanopticAnnotation> annotations, IReadOnlyList<CocoCategory> categories)
    {
        Images = images;
        Annotations = annotations;
        Categories = categories;
    }

    public IReadOnlyList<CocoImageInfo> Images { get; }

    public IReadOnlyList<PanopticAnnotation> Annotations { get; }

    public IReadOnlyList<CocoCategory> Categories { get; }

    public PanopticAnnotation? AnnotationOf(long imageId)
    {
        _byImage ??= Annotations.ToDictionary(a => a.ImageId);
        return _byImage.TryGetValue(imageId, out var a) ? a : null;
    }

    public static CocoPanopticFile Load(string path)
    {
        using var s = File.OpenRead(path);
        try
        {
            return Parse(s);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    public static CocoPanopticFile Parse(string json)
    {
        using var doc = JsonDocument.Parse(json, CocoJson.DocumentOptions);
        return Parse(doc.RootElement);
    }

    public static CocoPanopticFile Parse(Stream json)
    {
        using var doc = JsonDocument.Parse(json, CocoJson.DocumentOptions);
        return Parse(doc.RootElement);
    }

    private static CocoPanopticFile Parse(JsonElement root)
    {
        var images = CocoJson.ReadImages(root);
        var categories = CocoJson.ReadCategories(root);
        var anns = new List<PanopticAnnotation>();
        if (root.TryGetProperty("annotations", out var arr))
        {
            foreach (var a in arr.EnumerateArray())
            {
                var segs = new List<PanopticSegmentInfo>();
                if (a.TryGetProperty("segments_info", out var si))
                    foreach (var s in si.EnumerateArray())
                        segs.Add(new PanopticSegmentInfo(
                            CocoJson.GetInt64(s, "id"), CocoJson.GetInt64(s, "category_id"),
                            CocoJson.GetFlag(s, "iscrowd"),
                            s.TryGetProperty("bbox", out var b) ? CocoJson.ReadNumbers(b, "bbox") : [0, 0, 0, 0],
                            s.TryGetProperty("area", out var ar) ? ar.GetDouble() : 0));
                anns.Add(new PanopticAnnotation(CocoJson.GetInt64(a, "image_id"), CocoJson.GetString(a, "file_name"), segs));
            }
        }
        return new CocoPanopticFile(images, anns, categories);
    }

    public void Save(string path, bool indented = false) =>
        CocoJson.WriteAtomically(path, w =>
        {
            w.WriteStartObject();
            CocoJson.WriteImages(w, Images);
            w.WriteStartArray("annotations");
            foreach (var a in Annotations)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", a.ImageId);
                w.WriteString("file_name", a.FileName);
                w.WriteStartArray("segments_info");
                foreach (var s in a.SegmentsInfo)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", s.Id);
                    w.WriteNumber("category_id", s.CategoryId);
                    w.WriteNumber("iscrowd", s.IsCrowd ? 1 : 0);
                    CocoJson.WriteNumbers(w, "bbox", s.Bbox);
                    CocoJson.WriteNumber(w, "area", s.Area);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            CocoJson.WriteCategories(w, Categories);
            w.WriteEndObject();
        }, indented);
}

/// <summary>Shared JSON reading and writing of the COCO formats.</summary>
internal static class CocoJson
{
    public static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64 };

    public static long GetInt64(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v)) throw new InvalidDataException($"COCO JSON: an entry lacks \"{name}\"");
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt64(out long l)) return l;
            double d = v.GetDouble();
            if (d == Math.Floor(d) && Math.Abs(d) < 9e15) return (long)d;
        }
        throw new InvalidDataException($"COCO JSON: \"{name}\" must be an integer, got {v.GetRawText()}");
    }

    public static string GetString(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new InvalidDataException($"COCO JSON: an entry lacks the string \"{name}\"");

    public static bool GetFlag(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.Number => v.GetDouble() != 0,
            _ => false,
        };

    public static double[] ReadNumbers(JsonElement arr, string what)
    {
        if (arr.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"COCO JSON: \"{what}\" must be a list of numbers");
        var res = new double[arr.GetArrayLength()];
        int i = 0;
        foreach (var x in arr.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.Number) throw new InvalidDataException($"COCO JSON: \"{what}\" must be a list of numbers");
            res[i++] = x.GetDouble();
        }
        return res;
    }

    public static List<CocoImageInfo> ReadImages(JsonElement root)
    {
        var images = new List<CocoImageInfo>();
        if (root.TryGetProperty("images", out var arr))
            foreach (var im in arr.EnumerateArray())
                images.Add(new CocoImageInfo(GetInt64(im, "id"), GetString(im, "file_name"), (int)GetInt64(im, "width"), (int)GetInt64(im, "height")));
        return images;
    }

    public static List<CocoCategory> ReadCategories(JsonElement root)
    {
        var cats = new List<CocoCategory>();
        if (root.TryGetProperty("categories", out var arr))
            foreach (var c in arr.EnumerateArray())
                cats.Add(new CocoCategory(
                    GetInt64(c, "id"),
                    c.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "",
                    c.TryGetProperty("supercategory", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null,
                    c.TryGetProperty("isthing", out _) ? GetFlag(c, "isthing") : null));
        return cats;
    }

    public static CocoAnnotation ReadAnnotation(JsonElement a, int index)
    {
        try
        {
            var bbox = a.TryGetProperty("bbox", out var b) ? ReadNumbers(b, "bbox") : [0, 0, 0, 0];
            if (bbox.Length != 4) throw new InvalidDataException($"\"bbox\" must hold 4 numbers, got {bbox.Length}");
            CocoSegmentation? seg = a.TryGetProperty("segmentation", out var s) ? ReadSegmentation(s) : null;
            double area = a.TryGetProperty("area", out var ar) && ar.ValueKind == JsonValueKind.Number ? ar.GetDouble() : bbox[2] * bbox[3];
            long id = a.TryGetProperty("id", out _) ? GetInt64(a, "id") : index + 1;
            return new CocoAnnotation(id, GetInt64(a, "image_id"), GetInt64(a, "category_id"), bbox, area, GetFlag(a, "iscrowd"), seg);
        }
        catch (Exception e) when (e is InvalidDataException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"COCO JSON: annotation {index}: {e.Message}", e);
        }
    }

    public static CocoSegmentation? ReadSegmentation(JsonElement s)
    {
        switch (s.ValueKind)
        {
            case JsonValueKind.Null:
                return null;
            case JsonValueKind.Array:
            {
                var polys = new List<double[]>();
                foreach (var p in s.EnumerateArray())
                {
                    var xy = ReadNumbers(p, "segmentation");
                    if (xy.Length % 2 != 0) throw new InvalidDataException($"a polygon has an odd number of coordinates ({xy.Length})");
                    polys.Add(xy);
                }
                return CocoSegmentation.FromPolygons(polys);
            }
            case JsonValueKind.Object:
            {
                if (!s.TryGetProperty("size", out var size) || !s.TryGetProperty("counts", out var counts))
                    throw new InvalidDataException("an RLE segmentation needs \"size\" and \"counts\"");
                var hw = ReadNumbers(size, "size");
                if (hw.Length != 2) throw new InvalidDataException("RLE \"size\" must be [height, width]");
                int h = (int)hw[0], w = (int)hw[1];
                if (counts.ValueKind == JsonValueKind.String) return CocoSegmentation.FromCompressedRle(h, w, counts.GetString()!);
                var c = ReadNumbers(counts, "counts");
                var u = new uint[c.Length];
                for (int i = 0; i < c.Length; i++)
                {
                    if (c[i] < 0 || c[i] != Math.Floor(c[i])) throw new InvalidDataException("RLE counts must be non-negative integers");
                    u[i] = (uint)c[i];
                }
                return CocoSegmentation.FromRle(h, w, u);
            }
            default:
                throw new InvalidDataException($"unsupported segmentation {s.ValueKind}");
        }
    }

    public static void WriteNumber(Utf8JsonWriter w, string name, double v)
    {
        w.WritePropertyName(name);
        WriteNumberValue(w, v);
    }

    /// <summary>Integers without a fraction; others with up to 6 decimals (COCO files use a few).</summary>
    public static void WriteNumberValue(Utf8JsonWriter w, double v)
    {
        if (!double.IsFinite(v)) throw new ArgumentException($"cannot write {v} to JSON", nameof(v));
        if (v == Math.Floor(v) && Math.Abs(v) < 1e15) w.WriteNumberValue((long)v);
        else w.WriteRawValue(Math.Round(v, 6).ToString("R", CultureInfo.InvariantCulture));
    }

    public static void WriteNumbers(Utf8JsonWriter w, string name, IEnumerable<double> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) WriteNumberValue(w, v);
        w.WriteEndArray();
    }

    public static void WriteImages(Utf8JsonWriter w, IEnumerable<CocoImageInfo> images)
    {
        w.WriteStartArray("images");
        foreach (var im in images)
        {
            w.WriteStartObject();
            w.WriteNumber("id", im.Id);
            w.WriteString("file_name", im.FileName);
            w.WriteNumber("width", im.Width);
            w.WriteNumber("height", im.Height);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    public static void WriteCategories(Utf8JsonWriter w, IEnumerable<CocoCategory> categories)
    {
        w.WriteStartArray("categories");
        foreach (var c in categories)
        {
            w.WriteStartObject();
            w.WriteNumber("id", c.Id);
            w.WriteString("name", c.Name);
            if (c.Supercategory != null) w.WriteString("supercategory", c.Supercategory);
            if (c.IsThing is { } t) w.WriteNumber("isthing", t ? 1 : 0);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    public static void WriteAnnotation(Utf8JsonWriter w, CocoAnnotation a)
    {
        w.WriteStartObject();
        w.WriteNumber("id", a.Id);
        w.WriteNumber("image_id", a.ImageId);
        w.WriteNumber("category_id", a.CategoryId);
        WriteNumbers(w, "bbox", a.Bbox);
        WriteNumber(w, "area", a.Area);
        w.WriteNumber("iscrowd", a.IsCrowd ? 1 : 0);
        if (a.Segmentation is { } s)
        {
            w.WritePropertyName("segmentation");
            if (s.Polygons != null)
            {
                w.WriteStartArray();
                foreach (var p in s.Polygons)
                {
                    w.WriteStartArray();
                    foreach (var v in p) WriteNumberValue(w, v);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
            }
            else
            {
                w.WriteStartObject();
                w.WriteStartArray("size");
                w.WriteNumberValue(s.RleHeight);
                w.WriteNumberValue(s.RleWidth);
                w.WriteEndArray();
                if (s.CompressedCounts != null) w.WriteString("counts", s.CompressedCounts);
                else
                {
                    w.WriteStartArray("counts");
                    foreach (var c in s.Counts!) w.WriteNumberValue(c);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
        }
        w.WriteEndObject();
    }

    /// <summary>Writes JSON to a temporary file next to <paramref name="path"/> and renames it into place.</summary>
    public static void WriteAtomically(string path, Action<Utf8JsonWriter> write, bool indented)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + $".tmp{Environment.ProcessId}.{Environment.CurrentManagedThreadId}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = indented, SkipValidation = false }))
                write(w);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Writes bytes to a temporary file and renames it into place.</summary>
    public static void WriteAllBytesAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + $".tmp{Environment.ProcessId}.{Environment.CurrentManagedThreadId}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
                fs.Write(bytes);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
