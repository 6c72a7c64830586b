using Runtime.Vision.Evaluation;
using Runtime.Vision.Imaging;

namespace Runtime.Vision.Data;

/// <summary>Settings of the synthetic shapes data sets.</summary>
public sealed record ShapesOptions
{
    /// <summary>Smallest image side; each image's width and height are drawn from [Min, Max].</summary>
    public int MinImageSize { get; init; } = 128;

    public int MaxImageSize { get; init; } = 256;

    /// <summary>Shapes placed per image (before dropping those hidden by later ones).</summary>
    public int MinShapes { get; init; } = 2;

    public int MaxShapes { get; init; } = 7;

    /// <summary>Smallest circumscribed radius in pixels.</summary>
    public double MinRadius { get; init; } = 8;

    /// <summary>Largest radius as a fraction of the image's shorter side.</summary>
    public double MaxRadiusFraction { get; init; } = 0.3;

    /// <summary>Shapes with fewer visible pixels are left out of the image altogether.</summary>
    public int MinVisibleArea { get; init; } = 16;

    /// <summary>Classes to draw (default: all).</summary>
    public IReadOnlyList<ShapeKind>? Kinds { get; init; }

    /// <summary>Render images on several threads (the output does not depend on it).</summary>
    public bool Parallel { get; init; } = true;

    internal void Validate()
    {
        if (MinImageSize < 16 || MaxImageSize < MinImageSize) throw new ArgumentOutOfRangeException(nameof(MinImageSize), $"need 16 <= MinImageSize <= MaxImageSize, got [{MinImageSize}, {MaxImageSize}]");
        if (MinShapes < 0 || MaxShapes < MinShapes) throw new ArgumentOutOfRangeException(nameof(MinShapes), $"need 0 <= MinShapes <= MaxShapes, got [{MinShapes}, {MaxShapes}]");
        if (!(MinRadius >= 1) || !(MaxRadiusFraction > 0)) throw new ArgumentOutOfRangeException(nameof(MinRadius), "MinRadius must be >= 1 and MaxRadiusFraction positive");
        if (MinVisibleArea < 1) throw new ArgumentOutOfRangeException(nameof(MinVisibleArea), MinVisibleArea, "MinVisibleArea must be at least 1");
        if (Kinds is { Count: 0 }) throw new ArgumentException("Kinds must not be empty", nameof(Kinds));
    }
}

/// <summary>A shape as drawn: its geometry, colour and the part of it left visible.</summary>
public sealed record ShapeInstance(ShapeGeometry Geometry, byte[] Color, byte[] VisibleMask, int Area, int X0, int Y0, int X1, int Y1)
{
    public long CategoryId => (long)Geometry.Kind + 1;

    /// <summary>The tight box of the visible pixels, x1y1x2y2 with exclusive ends (as detection boxes).</summary>
    public float[] Box => [X0, Y0, X1, Y1];
}

/// <summary>A rendered synthetic image: RGB pixels (HWC) and its instances, back to front.</summary>
public sealed record ShapesScene(int Width, int Height, byte[] Pixels, IReadOnlyList<ShapeInstance> Instances)
{
    public Image ToImage() => new(Width, Height, 3, Pixels);
}

/// <summary>A stuff or thing segment of a panoptic scene.</summary>
public sealed record SceneSegment(int Id, long CategoryId, bool IsThing, int Area, int X0, int Y0, int X1, int Y1);

/// <summary>A rendered panoptic scene: the image, the segment id of each pixel and the segments.</summary>
public sealed record PanopticScene(ShapesScene Scene, int[] SegmentIds, IReadOnlyList<SceneSegment> Segments);

/// <summary>Where a generated data set lies.</summary>
public sealed record ShapesDatasetFiles(string Root, string ImageFolder, string InstancesJson, int ImageCount, int AnnotationCount)
{
    /// <summary>The panoptic PNG folder and JSON, for panoptic data sets.</summary>
    public string? PanopticFolder { get; init; }

    public string? PanopticJson { get; init; }
}

/// <summary>
/// Synthetic data sets in COCO format, deterministic by seed, for testing detection and
/// segmentation end to end: "shapes" (instance segmentation: circles, squares, triangles,
/// ellipses, stars, hexagons on textured backgrounds, later shapes occluding earlier ones, masks and
/// boxes of the visible parts) and "panoptic shapes" (the shapes as things over sky / ground / water
/// stuff regions). Image i depends only on (seed, i).
/// </summary>
public static class ShapesDataset
{
    public const string ImagesFolderName = "images";
    public const string PanopticFolderName = "panoptic";
    public const string InstancesFileName = "annotations/instances.json";
    public const string PanopticFileName = "annotations/panoptic.json";

    /// <summary>The thing categories: ids 1..6 in <see cref="ShapeKind"/> order.</summary>
    public static IReadOnlyList<CocoCategory> Categories { get; } =
        Enum.GetValues<ShapeKind>().Select(k => new CocoCategory((long)k + 1, k.ToString().ToLowerInvariant(), "shape")).ToArray();

    /// <summary>The stuff classes of panoptic shapes.</summary>
    public static IReadOnlyList<CocoCategory> StuffCategories { get; } =
    [
        new(7, "sky", "stuff", false),
        new(8, "ground", "stuff", false),
        new(9, "water", "stuff", false),
    ];

    /// <summary>Things (isthing 1) and stuff (isthing 0) of panoptic shapes.</summary>
    public static IReadOnlyList<CocoCategory> PanopticCategories { get; } =
        Categories.Select(c => c with { IsThing = true }).Concat(StuffCategories).ToArray();

    /// <summary>
    /// Writes <paramref name="count"/> images to <c>folder/images/NNNNNN.png</c> and their annotations
    /// to <c>folder/annotations/instances.json</c> (polygons; RLE for the rare mask with a hole). Every
    /// file is written to a temporary name and renamed into place; the JSON comes last.
    /// </summary>
    public static ShapesDatasetFiles Generate(string folder, int count, ulong seed, ShapesOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        options ??= new ShapesOptions();
        options.Validate();
        var imageDir = Path.Combine(folder, ImagesFolderName);
        Directory.CreateDirectory(imageDir);
        var perImage = new List<CocoAnnotation>[count];
        var infos = new CocoImageInfo[count];
        void One(int i)
        {
            var scene = Render(i, seed, options);
            var name = FileName(i);
            CocoJson.WriteAllBytesAtomically(Path.Combine(imageDir, name), scene.ToImage().Encode(ImageFormat.Png));
            infos[i] = new CocoImageInfo(i + 1, name, scene.Width, scene.Height);
            perImage[i] = scene.Instances.Select(s => ToAnnotation(s, i + 1, scene.Height, scene.Width)).ToList();
        }
        RunAll(count, options.Parallel, One);
        var anns = Number(perImage);
        var json = Path.Combine(folder, InstancesFileName);
        new CocoInstancesFile(infos, anns, Categories).Save(json);
        return new ShapesDatasetFiles(Path.GetFullPath(folder), Path.GetFullPath(imageDir), Path.GetFullPath(json), count, anns.Count);
    }

    /// <summary>
    /// Writes a panoptic data set: <c>images/</c>, <c>panoptic/</c> (PNG of segment ids, id = R + 256 G +
    /// 256^2 B), <c>annotations/panoptic.json</c> (segments_info, categories with isthing) and
    /// <c>annotations/instances.json</c> with the things, so that both loaders read it.
    /// </summary>
    public static ShapesDatasetFiles GeneratePanoptic(string folder, int count, ulong seed, ShapesOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        options ??= new ShapesOptions();
        options.Validate();
        var imageDir = Path.Combine(folder, ImagesFolderName);
        var panDir = Path.Combine(folder, PanopticFolderName);
        Directory.CreateDirectory(imageDir);
        Directory.CreateDirectory(panDir);
        var perImage = new List<CocoAnnotation>[count];
        var infos = new CocoImageInfo[count];
        var panAnns = new PanopticAnnotation[count];
        void One(int i)
        {
            var p = RenderPanoptic(i, seed, options);
            var s = p.Scene;
            var name = FileName(i);
            CocoJson.WriteAllBytesAtomically(Path.Combine(imageDir, name), s.ToImage().Encode(ImageFormat.Png));
            CocoJson.WriteAllBytesAtomically(Path.Combine(panDir, name), IdsToImage(p.SegmentIds, s.Width, s.Height).Encode(ImageFormat.Png));
            infos[i] = new CocoImageInfo(i + 1, name, s.Width, s.Height);
            perImage[i] = s.Instances.Select(inst => ToAnnotation(inst, i + 1, s.Height, s.Width)).ToList();
            panAnns[i] = new PanopticAnnotation(i + 1, name, p.Segments
                .Select(g => new PanopticSegmentInfo(g.Id, g.CategoryId, false, [g.X0, g.Y0, g.X1 - g.X0, g.Y1 - g.Y0], g.Area)).ToArray());
        }
        RunAll(count, options.Parallel, One);
        var anns = Number(perImage);
        var instJson = Path.Combine(folder, InstancesFileName);
        var panJson = Path.Combine(folder, PanopticFileName);
        new CocoInstancesFile(infos, anns, Categories).Save(instJson);
        new CocoPanopticFile(infos, panAnns, PanopticCategories).Save(panJson);
        return new ShapesDatasetFiles(Path.GetFullPath(folder), Path.GetFullPath(imageDir), Path.GetFullPath(instJson), count, anns.Count)
        {
            PanopticFolder = Path.GetFullPath(panDir),
            PanopticJson = Path.GetFullPath(panJson),
        };
    }

    public static string FileName(int index) => $"{index + 1:D6}.png";

    /// <summary>The segment-id map as an RGB image (id = R + 256 G + 256^2 B).</summary>
    public static Image IdsToImage(ReadOnlySpan<int> ids, int width, int height)
    {
        var px = new byte[ids.Length * 3];
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            px[3 * i] = (byte)id;
            px[3 * i + 1] = (byte)(id >> 8);
            px[3 * i + 2] = (byte)(id >> 16);
        }
        return new Image(width, height, 3, px);
    }

    private static void RunAll(int count, bool parallel, Action<int> one)
    {
        if (parallel) System.Threading.Tasks.Parallel.For(0, count, one);
        else for (int i = 0; i < count; i++) one(i);
    }

    private static List<CocoAnnotation> Number(List<CocoAnnotation>[] perImage)
    {
        var res = new List<CocoAnnotation>();
        foreach (var list in perImage)
            foreach (var a in list) res.Add(a with { Id = res.Count + 1 });
        return res;
    }

    /// <summary>The COCO annotation of a drawn instance: exact polygons of its visible pixels (RLE when it has a hole).</summary>
    public static CocoAnnotation ToAnnotation(ShapeInstance s, long imageId, int height, int width)
    {
        var polys = MaskContours.ToCocoPolygons(s.VisibleMask, height, width);
        var seg = polys != null
            ? CocoSegmentation.FromPolygons(polys)
            : CocoSegmentation.FromCompressedRle(height, width, Rle.EncodeRowMajor(s.VisibleMask, height, width).ToCompressedString());
        return new CocoAnnotation(0, imageId, s.CategoryId, [s.X0, s.Y0, s.X1 - s.X0, s.Y1 - s.Y0], s.Area, false, seg);
    }

    // ------------------------------------------------------------------ rendering

    /// <summary>Renders image <paramref name="index"/> of the instance data set (no files).</summary>
    public static ShapesScene Render(int index, ulong seed, ShapesOptions? options = null)
    {
        options ??= new ShapesOptions();
        options.Validate();
        var g = new Generator(Dataset.MixSeed(seed, index, 1));
        int w = RandInt(g, options.MinImageSize, options.MaxImageSize), h = RandInt(g, options.MinImageSize, options.MaxImageSize);
        var px = new float[h * w * 3];
        Background(px, w, h, g);
        var instances = PlaceShapes(g, w, h, options);
        PaintShapes(px, w, h, instances, g);
        return new ShapesScene(w, h, ToBytes(px, g), instances);
    }

    /// <summary>Renders image <paramref name="index"/> of the panoptic data set (no files).</summary>
    public static PanopticScene RenderPanoptic(int index, ulong seed, ShapesOptions? options = null)
    {
        options ??= new ShapesOptions();
        options.Validate();
        var g = new Generator(Dataset.MixSeed(seed, index, 2));
        int w = RandInt(g, options.MinImageSize, options.MaxImageSize), h = RandInt(g, options.MinImageSize, options.MaxImageSize);
        var px = new float[h * w * 3];
        var stuff = StuffLayout(px, w, h, g); // category id per pixel
        var instances = PlaceShapes(g, w, h, options);
        PaintShapes(px, w, h, instances, g);
        var ids = new int[w * h];
        var segments = new List<SceneSegment>();
        var used = new HashSet<int> { 0 };
        // Stuff first (ids where no thing is visible), then things.
        var thingAt = new bool[w * h];
        foreach (var s in instances)
            for (int i = 0; i < thingAt.Length; i++)
                if (s.VisibleMask[i] != 0) thingAt[i] = true;
        foreach (var cat in StuffCategories)
        {
            var mask = new byte[w * h];
            for (int i = 0; i < mask.Length; i++) mask[i] = (byte)(stuff[i] == cat.Id && !thingAt[i] ? 1 : 0);
            var (area, x0, y0, x1, y1) = Bounds(mask, w, h);
            if (area == 0) continue;
            int id = NewId(g, used);
            for (int i = 0; i < mask.Length; i++) if (mask[i] != 0) ids[i] = id;
            segments.Add(new SceneSegment(id, cat.Id, false, area, x0, y0, x1, y1));
        }
        foreach (var s in instances)
        {
            int id = NewId(g, used);
            for (int i = 0; i < ids.Length; i++) if (s.VisibleMask[i] != 0) ids[i] = id;
            segments.Add(new SceneSegment(id, s.CategoryId, true, s.Area, s.X0, s.Y0, s.X1, s.Y1));
        }
        return new PanopticScene(new ShapesScene(w, h, ToBytes(px, g), instances), ids, segments);
    }

    private static int NewId(Generator g, HashSet<int> used)
    {
        while (true)
        {
            int id = (int)g.NextInt64(1, 1 << 24);
            if (used.Add(id)) return id;
        }
    }

    private static int RandInt(Generator g, int lo, int hi) => (int)g.NextInt64(lo, hi + 1);

    private static double Uniform(Generator g, double lo, double hi) => lo + (hi - lo) * g.NextDouble();

    /// <summary>Places shapes back to front and computes what stays visible; shapes left with too little are removed.</summary>
    private static List<ShapeInstance> PlaceShapes(Generator g, int w, int h, ShapesOptions o)
    {
        var kinds = o.Kinds ?? Enum.GetValues<ShapeKind>();
        int n = RandInt(g, o.MinShapes, o.MaxShapes);
        double maxR = Math.Max(o.MinRadius, o.MaxRadiusFraction * Math.Min(w, h));
        var shapes = new List<(ShapeGeometry Geo, byte[] Color, byte[] Full)>();
        for (int k = 0; k < n; k++)
        {
            var kind = kinds[(int)g.NextInt64(0, kinds.Count)];
            double r = Uniform(g, o.MinRadius, maxR);
            double cx = Uniform(g, r * 0.3, w - r * 0.3), cy = Uniform(g, r * 0.3, h - r * 0.3);
            var geo = new ShapeGeometry(kind, cx, cy, r, Uniform(g, 0, 2 * Math.PI), kind == ShapeKind.Ellipse ? Uniform(g, 0.4, 0.75) : 1);
            var color = Hsv(Uniform(g, 0, 360), Uniform(g, 0.55, 1), Uniform(g, 0.55, 1));
            shapes.Add((geo, color, geo.Rasterize(h, w)));
        }
        // Remove shapes whose visible part is too small until none is (removing one only uncovers others).
        while (true)
        {
            var visible = Visible(shapes.Select(s => s.Full).ToList(), w * h);
            int worst = -1;
            for (int k = 0; k < shapes.Count; k++)
                if (visible[k].Area < o.MinVisibleArea) { worst = k; break; }
            if (worst < 0)
            {
                var res = new List<ShapeInstance>();
                for (int k = 0; k < shapes.Count; k++)
                {
                    var (area, x0, y0, x1, y1) = Bounds(visible[k].Mask, w, h);
                    res.Add(new ShapeInstance(shapes[k].Geo, shapes[k].Color, visible[k].Mask, area, x0, y0, x1, y1));
                }
                return res;
            }
            shapes.RemoveAt(worst);
        }
    }

    private static List<(byte[] Mask, int Area)> Visible(List<byte[]> full, int size)
    {
        var covered = new bool[size];
        var res = new (byte[], int)[full.Count];
        for (int k = full.Count - 1; k >= 0; k--)
        {
            var m = new byte[size];
            int area = 0;
            var f = full[k];
            for (int i = 0; i < size; i++)
            {
                if (f[i] == 0) continue;
                if (!covered[i]) { m[i] = 1; area++; }
                covered[i] = true;
            }
            res[k] = (m, area);
        }
        return res.ToList();
    }

    /// <summary>Pixel count and tight box (exclusive ends) of a mask.</summary>
    internal static (int Area, int X0, int Y0, int X1, int Y1) Bounds(ReadOnlySpan<byte> mask, int w, int h)
    {
        int area = 0, x0 = w, y0 = h, x1 = 0, y1 = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                if (mask[y * w + x] == 0) continue;
                area++;
                if (x < x0) x0 = x;
                if (y < y0) y0 = y;
                if (x + 1 > x1) x1 = x + 1;
                if (y + 1 > y1) y1 = y + 1;
            }
        return area == 0 ? (0, 0, 0, 0, 0) : (area, x0, y0, x1, y1);
    }

    /// <summary>Fills each shape's visible pixels with its colour, shaded along a random direction.</summary>
    private static void PaintShapes(float[] px, int w, int h, List<ShapeInstance> shapes, Generator g)
    {
        foreach (var s in shapes)
        {
            double a = Uniform(g, 0, 2 * Math.PI), amp = Uniform(g, 0.05, 0.25) / Math.Max(1, s.Geometry.Radius);
            double ca = Math.Cos(a) * amp, sa = Math.Sin(a) * amp;
            for (int y = s.Y0; y < s.Y1; y++)
                for (int x = s.X0; x < s.X1; x++)
                {
                    int i = y * w + x;
                    if (s.VisibleMask[i] == 0) continue;
                    double shade = 1 + (x - s.Geometry.CenterX) * ca + (y - s.Geometry.CenterY) * sa;
                    for (int c = 0; c < 3; c++) px[3 * i + c] = (float)(s.Color[c] * shade);
                }
        }
    }

    /// <summary>A textured background: smooth noise, a gradient or stripes, in muted colours.</summary>
    private static void Background(float[] px, int w, int h, Generator g)
    {
        var c0 = Hsv(Uniform(g, 0, 360), Uniform(g, 0, 0.35), Uniform(g, 0.25, 0.9));
        var c1 = Hsv(Uniform(g, 0, 360), Uniform(g, 0, 0.35), Uniform(g, 0.25, 0.9));
        switch (g.NextInt64(0, 3))
        {
            case 0: FillNoise(px, w, h, g, c0, c1, null, 0); break;
            case 1: FillGradient(px, w, h, g, c0, c1, null, 0); break;
            default: FillStripes(px, w, h, g, c0, c1, null, 0); break;
        }
    }

    private static void Blend(float[] px, int i, byte[] c0, byte[] c1, double t)
    {
        for (int c = 0; c < 3; c++) px[3 * i + c] = (float)(c0[c] + (c1[c] - c0[c]) * t);
    }

    /// <summary>Bilinearly interpolated random values on a coarse grid (value noise).</summary>
    private static void FillNoise(float[] px, int w, int h, Generator g, byte[] c0, byte[] c1, int[]? map, int id)
    {
        int cell = RandInt(g, 12, 40);
        int gw = w / cell + 2, gh = h / cell + 2;
        var grid = new double[gw * gh];
        for (int i = 0; i < grid.Length; i++) grid[i] = g.NextDouble();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                if (map != null && map[i] != id) continue;
                double fx = (double)x / cell, fy = (double)y / cell;
                int ix = (int)fx, iy = (int)fy;
                double tx = fx - ix, ty = fy - iy;
                double v = (grid[iy * gw + ix] * (1 - tx) + grid[iy * gw + ix + 1] * tx) * (1 - ty)
                         + (grid[(iy + 1) * gw + ix] * (1 - tx) + grid[(iy + 1) * gw + ix + 1] * tx) * ty;
                Blend(px, i, c0, c1, v);
            }
    }

    private static void FillGradient(float[] px, int w, int h, Generator g, byte[] c0, byte[] c1, int[]? map, int id)
    {
        double a = Uniform(g, 0, 2 * Math.PI), ca = Math.Cos(a), sa = Math.Sin(a);
        double span = Math.Abs(ca) * w + Math.Abs(sa) * h;
        double off = Math.Min(0, ca * w) + Math.Min(0, sa * h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                if (map != null && map[i] != id) continue;
                Blend(px, i, c0, c1, (x * ca + y * sa - off) / span);
            }
    }

    private static void FillStripes(float[] px, int w, int h, Generator g, byte[] c0, byte[] c1, int[]? map, int id)
    {
        double a = Uniform(g, 0, Math.PI), period = Uniform(g, 6, 30), ca = Math.Cos(a), sa = Math.Sin(a);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = y * w + x;
                if (map != null && map[i] != id) continue;
                double s = Math.Sin(2 * Math.PI * (x * ca + y * sa) / period);
                Blend(px, i, c0, c1, 0.5 + 0.5 * Math.Tanh(3 * s));
            }
    }

    /// <summary>Sky above a wavy horizon, ground below, sometimes a water blob in the ground; returns the stuff category per pixel.</summary>
    private static int[] StuffLayout(float[] px, int w, int h, Generator g)
    {
        var map = new int[w * h];
        double horizon = Uniform(g, 0.25, 0.6) * h, amp = Uniform(g, 0, 0.08) * h, period = Uniform(g, 0.5, 2) * w, phase = Uniform(g, 0, 2 * Math.PI);
        bool water = g.NextDouble() < 0.7;
        double wx = Uniform(g, 0.2, 0.8) * w, wy = horizon + Uniform(g, 0.3, 0.7) * (h - horizon);
        double wrx = Uniform(g, 0.15, 0.4) * w, wry = Uniform(g, 0.1, 0.3) * (h - horizon) + 2;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double hy = horizon + amp * Math.Sin(2 * Math.PI * x / period + phase);
                double ex = (x + 0.5 - wx) / wrx, ey = (y + 0.5 - wy) / wry;
                map[y * w + x] = y + 0.5 < hy ? 7 : water && ex * ex + ey * ey <= 1 ? 9 : 8;
            }
        FillGradient(px, w, h, g, Hsv(Uniform(g, 195, 225), Uniform(g, 0.3, 0.6), Uniform(g, 0.75, 1)), Hsv(Uniform(g, 190, 230), Uniform(g, 0.05, 0.25), Uniform(g, 0.85, 1)), map, 7);
        FillNoise(px, w, h, g, Hsv(Uniform(g, 25, 110), Uniform(g, 0.3, 0.6), Uniform(g, 0.3, 0.55)), Hsv(Uniform(g, 25, 110), Uniform(g, 0.3, 0.6), Uniform(g, 0.45, 0.7)), map, 8);
        FillStripes(px, w, h, g, Hsv(Uniform(g, 200, 230), Uniform(g, 0.6, 0.9), Uniform(g, 0.35, 0.55)), Hsv(Uniform(g, 190, 220), Uniform(g, 0.4, 0.7), Uniform(g, 0.6, 0.8)), map, 9);
        return map;
    }

    /// <summary>Rounds to bytes after adding a little pixel noise.</summary>
    private static byte[] ToBytes(float[] px, Generator g)
    {
        var res = new byte[px.Length];
        for (int i = 0; i < px.Length; i++)
        {
            double v = px[i] + (g.NextDouble() - 0.5) * 12;
            res[i] = (byte)Math.Clamp((int)Math.Round(v), 0, 255);
        }
        return res;
    }

    internal static byte[] Hsv(double hue, double s, double v)
    {
        double c = v * s, hp = hue / 60 % 6, x = c * (1 - Math.Abs(hp % 2 - 1)), m = v - c;
        var (r, gg, b) = hp switch
        {
            < 1 => (c, x, 0.0),
            < 2 => (x, c, 0.0),
            < 3 => (0.0, c, x),
            < 4 => (0.0, x, c),
            < 5 => (x, 0.0, c),
            _ => (c, 0.0, x),
        };
        return [(byte)Math.Round((r + m) * 255), (byte)Math.Round((gg + m) * 255), (byte)Math.Round((b + m) * 255)];
    }
}
