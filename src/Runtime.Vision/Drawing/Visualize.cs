using Runtime.Vision.Data;
using Runtime.Vision.Imaging;

namespace Runtime.Vision.Drawing;

/// <summary>
/// Ground truth and predictions drawn the usual way: translucent masks with outlines, boxes with
/// "name score" captions, one palette colour per instance; panoptic maps with a colour per segment
/// and white thing boundaries.
/// </summary>
public static class Visualize
{
    /// <summary>
    /// Draws instances on a copy of <paramref name="image"/>: boxes [N*4] x1y1x2y2, labels, optional
    /// scores, optional masks (N row-major planes of the image's size). <paramref name="names"/>
    /// maps labels to captions (a label without a name prints as its number).
    /// </summary>
    public static Image Detections(Image image, ReadOnlySpan<float> boxes, ReadOnlySpan<long> labels, ReadOnlySpan<float> scores = default,
        ReadOnlySpan<byte> masks = default, IReadOnlyList<string>? names = null, double maskAlpha = 0.45, int thickness = 2, int fontScale = 1)
    {
        ArgumentNullException.ThrowIfNull(image);
        int n = labels.Length;
        if (boxes.Length != 4 * n) throw new ArgumentException($"{boxes.Length} box values for {n} labels", nameof(boxes));
        if (!scores.IsEmpty && scores.Length != n) throw new ArgumentException($"{scores.Length} scores for {n} labels", nameof(scores));
        var canvas = image.ToRgb() == image ? image.Clone() : image.ToRgb();
        if (!masks.IsEmpty) Draw.Masks(canvas, masks, n, maskAlpha);
        var list = new DrawBox[n];
        for (int i = 0; i < n; i++)
        {
            long l = labels[i];
            string name = names != null && l >= 0 && l < names.Count && names[(int)l].Length > 0 ? names[(int)l] : l.ToString(System.Globalization.CultureInfo.InvariantCulture);
            list[i] = new DrawBox(boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3], name, scores.IsEmpty ? null : scores[i], Palette.Get(i));
        }
        Draw.Boxes(canvas, list, thickness, fontScale);
        return canvas;
    }

    /// <summary>Draws a detection target (boxes, labels, masks) on a copy of the image.</summary>
    public static Image Target(Image image, DetectionTarget target, IReadOnlyList<string>? names = null, double maskAlpha = 0.45)
    {
        ArgumentNullException.ThrowIfNull(target);
        byte[]? masks = target.Masks?.ToArray<byte>();
        return Detections(image, target.Boxes.ToArray<float>(), target.Labels.ToArray<long>(), default, masks, names, maskAlpha);
    }

    /// <summary>Draws a loaded sample (its image tensor in [0, 1]) with its targets.</summary>
    public static Image Sample(DetectionSample sample, IReadOnlyList<string>? names = null, double maskAlpha = 0.45)
    {
        ArgumentNullException.ThrowIfNull(sample);
        return Target(Draw.ToImage(sample.Image), sample.Target, names, maskAlpha);
    }

    /// <summary>
    /// Draws a panoptic annotation on a copy of the image: things in palette colours (in segment
    /// order) with white boundaries and captions, stuff in a fixed colour per label.
    /// </summary>
    public static Image Panoptic(Image image, ReadOnlySpan<int> segmentIds, IReadOnlyList<PanopticSegment> segments, IReadOnlyList<string>? names = null, double alpha = 0.55)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(segments);
        var canvas = image.ToRgb() == image ? image.Clone() : image.ToRgb();
        var colors = new Dictionary<int, Rgb>();
        var things = new HashSet<int>();
        int k = 0;
        foreach (var s in segments)
        {
            if (s.IsThing)
            {
                things.Add((int)s.Id);
                colors[(int)s.Id] = Palette.Get(k++);
            }
            else colors[(int)s.Id] = StuffColor(s.Label);
        }
        Draw.Panoptic(canvas, segmentIds, alpha, things, id => colors.TryGetValue(id, out var c) ? c : new Rgb(96, 96, 96));
        var captions = new List<DrawBox>();
        foreach (var s in segments)
        {
            if (!s.IsThing) continue;
            string name = names != null && s.Label >= 0 && s.Label < names.Count ? names[s.Label] : s.CategoryId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            float x = (float)s.Bbox[0], y = (float)s.Bbox[1];
            captions.Add(new DrawBox(x, y, x + (float)s.Bbox[2], y + (float)s.Bbox[3], name, null, colors[(int)s.Id]));
        }
        Draw.Captions(canvas, captions);
        return canvas;
    }

    /// <summary>Draws a loaded panoptic sample.</summary>
    public static Image Panoptic(PanopticSample sample, IReadOnlyList<string>? names = null, double alpha = 0.55)
    {
        ArgumentNullException.ThrowIfNull(sample);
        return Panoptic(Draw.ToImage(sample.Image), sample.SegmentIds.ToArray<int>(), sample.Segments, names, alpha);
    }

    /// <summary>Label-stable colours for stuff (the same class has the same colour in every image).</summary>
    private static Rgb StuffColor(int label) => Palette.Get(label * 7 + 3);
}
