using Runtime.Vision.Imaging;

namespace Runtime.Vision.Drawing;

/// <summary>An 8-bit RGB colour.</summary>
public readonly record struct Rgb(byte R, byte G, byte B)
{
    public static readonly Rgb White = new(255, 255, 255);
    public static readonly Rgb Black = new(0, 0, 0);

    /// <summary>Black or white, whichever reads better on this colour.</summary>
    public Rgb Contrasting => 0.299 * R + 0.587 * G + 0.114 * B > 140 ? Black : White;

    // The generated ToString would print Contrasting, whose ToString prints its Contrasting, and so on.
    public override string ToString() => $"Rgb({R}, {G}, {B})";
}

/// <summary>A fixed palette of distinguishable colours; instance i gets colour i mod count.</summary>
public static class Palette
{
    private static readonly Rgb[] Colors =
    [
        new(230, 25, 75), new(60, 180, 75), new(255, 225, 25), new(0, 130, 200), new(245, 130, 48),
        new(145, 30, 180), new(70, 240, 240), new(240, 50, 230), new(210, 245, 60), new(250, 190, 212),
        new(0, 128, 128), new(220, 190, 255), new(170, 110, 40), new(255, 250, 200), new(128, 0, 0),
        new(170, 255, 195), new(128, 128, 0), new(255, 215, 180), new(0, 0, 128), new(128, 128, 128),
    ];

    public static int Count => Colors.Length;

    public static Rgb Get(int index) => Colors[((index % Colors.Length) + Colors.Length) % Colors.Length];
}

/// <summary>A box to draw: corners x1y1x2y2 in pixels, optional caption (label and score) and colour.</summary>
public readonly record struct DrawBox(float X1, float Y1, float X2, float Y2, string? Label = null, float? Score = null, Rgb? Color = null);

/// <summary>
/// Drawing on 8-bit RGB <see cref="Image"/>s in place: rectangles, text in the built-in 5x7 font,
/// boxes with captions, translucent instance masks and panoptic maps.
/// </summary>
public static class Draw
{
    private static void CheckRgb(Image image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != 3 || image.Is16Bit || image.IsIndexed)
            throw new ArgumentException($"drawing needs an 8-bit RGB image, got {image} (convert with ToRgb())", nameof(image));
    }

    /// <summary>Sets pixel (x, y) when it lies inside the image.</summary>
    public static void Pixel(Image image, int x, int y, Rgb c)
    {
        if ((uint)x >= (uint)image.Width || (uint)y >= (uint)image.Height) return;
        int i = (y * image.Width + x) * 3;
        var p = image.Pixels;
        p[i] = c.R;
        p[i + 1] = c.G;
        p[i + 2] = c.B;
    }

    /// <summary>Fills the rectangle [x0, x1) x [y0, y1), clipped to the image; alpha &lt; 1 blends.</summary>
    public static void FillRectangle(Image image, int x0, int y0, int x1, int y1, Rgb c, double alpha = 1)
    {
        CheckRgb(image);
        x0 = Math.Max(0, x0);
        y0 = Math.Max(0, y0);
        x1 = Math.Min(image.Width, x1);
        y1 = Math.Min(image.Height, y1);
        var p = image.Pixels;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
                Blend(p, (y * image.Width + x) * 3, c, alpha);
    }

    /// <summary>
    /// Outlines a box given as x1y1x2y2 (exclusive right/bottom ends, as detection boxes): the pixels
    /// [x1, x2) x [y1, y2) rounded to whole pixels, with the edge <paramref name="thickness"/> pixels wide inside it.
    /// </summary>
    public static void Rectangle(Image image, float x1, float y1, float x2, float y2, Rgb c, int thickness = 2)
    {
        CheckRgb(image);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(thickness);
        int l = (int)MathF.Round(x1), t = (int)MathF.Round(y1), r = (int)MathF.Round(x2), b = (int)MathF.Round(y2);
        if (r <= l) r = l + 1;
        if (b <= t) b = t + 1;
        int k = Math.Min(thickness, Math.Min(r - l, b - t));
        FillRectangle(image, l, t, r, t + k, c);
        FillRectangle(image, l, b - k, r, b, c);
        FillRectangle(image, l, t, l + k, b, c);
        FillRectangle(image, r - k, t, r, b, c);
    }

    /// <summary>Writes <paramref name="text"/> with its top-left corner at (x, y) in the 5x7 font, each font pixel scale x scale.</summary>
    public static void Text(Image image, int x, int y, string text, Rgb c, int scale = 1)
    {
        CheckRgb(image);
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scale);
        for (int k = 0; k < text.Length; k++)
        {
            int gx = x + k * (BitmapFont.GlyphWidth + 1) * scale;
            for (int col = 0; col < BitmapFont.GlyphWidth; col++)
                for (int row = 0; row < BitmapFont.GlyphHeight; row++)
                    if (BitmapFont.IsSet(text[k], col, row))
                        FillRectangle(image, gx + col * scale, y + row * scale, gx + (col + 1) * scale, y + (row + 1) * scale, c);
        }
    }

    /// <summary>Text on a filled background, placed above (or, at the top edge, inside) the point (x, y).</summary>
    public static void Caption(Image image, int x, int y, string text, Rgb background, int scale = 1)
    {
        var (w, h) = CaptionSize(text, scale);
        int top = y - h >= 0 ? y - h : y;
        int left = Math.Clamp(x, 0, Math.Max(0, image.Width - w));
        CaptionAt(image, new PixelRect(left, top, w, h), text, background, scale);
    }

    /// <summary>The size of a caption's filled background: the text plus a margin of one font pixel.</summary>
    public static (int Width, int Height) CaptionSize(string text, int scale = 1) =>
        (BitmapFont.MeasureWidth(text, scale) + 2 * scale, BitmapFont.MeasureHeight(scale) + 2 * scale);

    /// <summary>A box's caption: "label score", either part alone, or empty.</summary>
    public static string CaptionText(DrawBox box) => (box.Label, box.Score) switch
    {
        (null, null) => "",
        ({ } l, null) => l,
        (null, { } s) => s.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture),
        ({ } l, { } s) => $"{l} {s.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)}",
    };

    /// <summary>
    /// Draws boxes with captions "label score" (either part may be absent). Box i without a colour of
    /// its own gets palette colour i. Captions do not cover one another (see <see cref="Captions"/>).
    /// </summary>
    public static void Boxes(Image image, IReadOnlyList<DrawBox> boxes, int thickness = 2, int fontScale = 1)
    {
        CheckRgb(image);
        ArgumentNullException.ThrowIfNull(boxes);
        for (int i = 0; i < boxes.Count; i++)
        {
            var b = boxes[i];
            Rectangle(image, b.X1, b.Y1, b.X2, b.Y2, b.Color ?? Palette.Get(i), thickness);
        }
        // Captions after all boxes so that no box edge crosses a caption.
        Captions(image, boxes, fontScale);
    }

    /// <summary>
    /// Draws only the boxes' captions, laid out by <see cref="CaptionLayout.Place"/> in list order so
    /// that none covers another while there is room (earlier boxes get the better spots). Returns each
    /// box's caption rectangle, or null for a box without a caption.
    /// </summary>
    public static PixelRect?[] Captions(Image image, IReadOnlyList<DrawBox> boxes, int fontScale = 1)
    {
        CheckRgb(image);
        ArgumentNullException.ThrowIfNull(boxes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fontScale);
        var texts = new List<(int Box, string Text)>();
        for (int i = 0; i < boxes.Count; i++)
        {
            string text = CaptionText(boxes[i]);
            if (text.Length > 0) texts.Add((i, text));
        }
        var anchors = new PixelRect[texts.Count];
        var sizes = new (int, int)[texts.Count];
        for (int k = 0; k < texts.Count; k++)
        {
            var b = boxes[texts[k].Box];
            int l = (int)MathF.Round(b.X1), t = (int)MathF.Round(b.Y1), r = (int)MathF.Round(b.X2), bottom = (int)MathF.Round(b.Y2);
            anchors[k] = new PixelRect(l, t, Math.Max(1, r - l), Math.Max(1, bottom - t));
            sizes[k] = CaptionSize(texts[k].Text, fontScale);
        }
        var rects = CaptionLayout.Place(image.Width, image.Height, anchors, sizes);
        var result = new PixelRect?[boxes.Count];
        for (int k = 0; k < texts.Count; k++)
        {
            int i = texts[k].Box;
            CaptionAt(image, rects[k], texts[k].Text, boxes[i].Color ?? Palette.Get(i), fontScale);
            result[i] = rects[k];
        }
        return result;
    }

    private static void CaptionAt(Image image, PixelRect rect, string text, Rgb background, int scale)
    {
        FillRectangle(image, rect.X, rect.Y, rect.Right, rect.Bottom, background);
        Text(image, rect.X + scale, rect.Y + scale, text, background.Contrasting, scale);
    }

    /// <summary>
    /// Blends each instance mask (row-major, nonzero inside, <paramref name="count"/> masks of the image's
    /// size back to back) with its colour at <paramref name="alpha"/>, and outlines it solidly.
    /// Mask i gets colors[i], or palette colour i.
    /// </summary>
    public static void Masks(Image image, ReadOnlySpan<byte> masks, int count, double alpha = 0.5, IReadOnlyList<Rgb>? colors = null, bool outline = true)
    {
        CheckRgb(image);
        int plane = image.Width * image.Height;
        if (masks.Length != (long)count * plane)
            throw new ArgumentException($"{masks.Length} mask bytes are not {count} masks of {image.Height}x{image.Width}", nameof(masks));
        var p = image.Pixels;
        for (int k = 0; k < count; k++)
        {
            var m = masks.Slice(k * plane, plane);
            var c = colors != null ? colors[k] : Palette.Get(k);
            for (int i = 0; i < plane; i++)
                if (m[i] != 0) Blend(p, 3 * i, c, alpha);
            if (!outline) continue;
            var edge = Data.MaskContours.InnerBoundary(m, image.Height, image.Width);
            for (int i = 0; i < plane; i++)
                if (edge[i] != 0) Blend(p, 3 * i, c, 1);
        }
    }

    /// <summary>Masks from a [N,H,W] tensor of any dtype (nonzero inside).</summary>
    public static void Masks(Image image, Tensor masks, double alpha = 0.5, IReadOnlyList<Rgb>? colors = null, bool outline = true)
    {
        ArgumentNullException.ThrowIfNull(masks);
        if (masks.Rank != 3 || masks.Size(1) != image.Height || masks.Size(2) != image.Width)
            throw new ArgumentException($"masks must be [N,{image.Height},{image.Width}]", nameof(masks));
        byte[] bytes;
        if (masks.DType == DType.Bool) bytes = masks.ToArray<byte>();
        else
        {
            var v = masks.ToDoubleArray();
            bytes = new byte[v.Length];
            for (int i = 0; i < v.Length; i++) bytes[i] = v[i] > 0.5 ? (byte)1 : (byte)0;
        }
        Masks(image, bytes, masks.Size(0), alpha, colors, outline);
    }

    /// <summary>
    /// Colours a panoptic map: every segment id (row-major, 0 = void, left as is) blended with its colour
    /// at <paramref name="alpha"/> (1 = pure colour map). Segment colours: <paramref name="colorOf"/>, or
    /// palette colours in order of first appearance. The boundaries of thing segments (ids in
    /// <paramref name="thingIds"/>) are drawn in <paramref name="boundary"/> (default white).
    /// </summary>
    public static void Panoptic(Image image, ReadOnlySpan<int> segmentIds, double alpha = 0.6, IReadOnlySet<int>? thingIds = null,
        Func<int, Rgb>? colorOf = null, Rgb? boundary = null)
    {
        CheckRgb(image);
        int w = image.Width, h = image.Height;
        if (segmentIds.Length != w * h) throw new ArgumentException($"{segmentIds.Length} ids for a {w}x{h} image", nameof(segmentIds));
        var colors = new Dictionary<int, Rgb>();
        var p = image.Pixels;
        for (int i = 0; i < segmentIds.Length; i++)
        {
            int id = segmentIds[i];
            if (id == 0) continue;
            if (!colors.TryGetValue(id, out var c)) colors[id] = c = colorOf?.Invoke(id) ?? Palette.Get(colors.Count);
            Blend(p, 3 * i, c, alpha);
        }
        if (thingIds == null || thingIds.Count == 0) return;
        var edge = boundary ?? Rgb.White;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int id = segmentIds[y * w + x];
                if (!thingIds.Contains(id)) continue;
                bool border = (x > 0 && segmentIds[y * w + x - 1] != id) || (x < w - 1 && segmentIds[y * w + x + 1] != id)
                    || (y > 0 && segmentIds[(y - 1) * w + x] != id) || (y < h - 1 && segmentIds[(y + 1) * w + x] != id);
                if (border) Blend(p, 3 * (y * w + x), edge, 1);
            }
    }

    /// <summary>An 8-bit RGB image from a CHW Float32 tensor in [0, 1] (e.g. a loaded sample's image).</summary>
    public static Image ToImage(Tensor chw) => Image.FromTensor(chw).ToRgb();

    private static void Blend(byte[] p, int i, Rgb c, double alpha)
    {
        if (alpha >= 1)
        {
            p[i] = c.R;
            p[i + 1] = c.G;
            p[i + 2] = c.B;
            return;
        }
        p[i] = (byte)Math.Round(p[i] * (1 - alpha) + c.R * alpha);
        p[i + 1] = (byte)Math.Round(p[i + 1] * (1 - alpha) + c.G * alpha);
        p[i + 2] = (byte)Math.Round(p[i + 2] * (1 - alpha) + c.B * alpha);
    }
}
