namespace Runtime.Vision.Drawing;

/// <summary>A rectangle of whole pixels, [X, X + Width) x [Y, Y + Height).</summary>
public readonly record struct PixelRect(int X, int Y, int Width, int Height)
{
    public int Right => X + Width;
    public int Bottom => Y + Height;

    public bool Overlaps(PixelRect other) => X < other.Right && other.X < Right && Y < other.Bottom && other.Y < Bottom;

    /// <summary>The number of pixels this rectangle shares with <paramref name="other"/>.</summary>
    public long OverlapArea(PixelRect other)
    {
        long w = Math.Min(Right, other.Right) - Math.Max(X, other.X), h = Math.Min(Bottom, other.Bottom) - Math.Max(Y, other.Y);
        return w > 0 && h > 0 ? w * h : 0;
    }
}

/// <summary>
/// Places box captions so that they stay inside the image and do not cover one another. Captions
/// are placed in order, each against the ones already placed; the first free spot wins, tried in
/// this order: just above the box (where the image has room), inside its top edge, just below it,
/// then further down, then further up. Every caption keeps its box's left edge (moved left only as far as the image needs).
/// When the whole column is taken, the caption goes where it covers the fewest pixels of others.
/// </summary>
public static class CaptionLayout
{
    /// <summary>
    /// Rectangles for captions of the given sizes attached to the given boxes, on an image of
    /// <paramref name="imageWidth"/> x <paramref name="imageHeight"/> pixels. A caption larger than
    /// the image is cut to the image's size.
    /// </summary>
    public static PixelRect[] Place(int imageWidth, int imageHeight, ReadOnlySpan<PixelRect> boxes, ReadOnlySpan<(int Width, int Height)> sizes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(imageWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(imageHeight);
        if (boxes.Length != sizes.Length) throw new ArgumentException($"{sizes.Length} caption sizes for {boxes.Length} boxes", nameof(sizes));
        var placed = new PixelRect[boxes.Length];
        var column = new List<PixelRect>();
        var tops = new List<int>();
        for (int i = 0; i < boxes.Length; i++)
        {
            var box = boxes[i];
            int w = Math.Clamp(sizes[i].Width, 0, imageWidth), h = Math.Clamp(sizes[i].Height, 0, imageHeight);
            int left = Math.Clamp(box.X, 0, imageWidth - w), maxTop = imageHeight - h;

            // Only captions sharing this caption's columns can get in its way.
            column.Clear();
            for (int j = 0; j < i; j++)
                if (placed[j].X < left + w && left < placed[j].Right && placed[j].Width > 0 && placed[j].Height > 0) column.Add(placed[j]);

            // Preferred spots, then every position where a scan down from the box's top (or up from
            // it) could first come free: right below, or right above, a caption in the way.
            tops.Clear();
            if (box.Y - h >= 0) tops.Add(box.Y - h);
            tops.Add(box.Y);
            tops.Add(box.Bottom);
            int start = tops.Count;
            foreach (var r in column)
                if (r.Bottom > box.Y) tops.Add(r.Bottom);
            tops.Add(maxTop);
            tops.Sort(start, tops.Count - start, null);
            int up = tops.Count;
            foreach (var r in column)
                if (r.Y - h < box.Y) tops.Add(r.Y - h);
            tops.Add(0);
            tops.Sort(up, tops.Count - up, Comparer<int>.Create((a, b) => b.CompareTo(a)));

            PixelRect best = default;
            long bestCover = long.MaxValue;
            foreach (int t in tops)
            {
                var candidate = new PixelRect(left, Math.Clamp(t, 0, maxTop), w, h);
                long cover = 0;
                foreach (var r in column)
                {
                    cover += candidate.OverlapArea(r);
                    if (cover >= bestCover) break;
                }
                if (cover < bestCover)
                {
                    best = candidate;
                    bestCover = cover;
                    if (cover == 0) break;
                }
            }
            placed[i] = best;
        }
        return placed;
    }
}
