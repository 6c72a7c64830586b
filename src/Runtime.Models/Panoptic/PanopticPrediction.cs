using Runtime.Vision.Evaluation;

namespace Runtime.Models.Panoptic;

/// <summary>A predicted panoptic segment: its id in <see cref="PanopticPrediction.Ids"/>, class index, area, box [x, y, w, h] and class confidence.</summary>
public sealed record PredictedSegment(int Id, int Class, bool IsThing, long Area, int[] Bbox, double Score);

/// <summary>
/// One image's panoptic segmentation: the segment id of every pixel (row-major, 0 = void; ids 1, 2, ... in the order
/// of <see cref="Segments"/>) at the image's own size, and the segments (COCO panoptic's segments_info).
/// </summary>
public sealed record PanopticPrediction(int Height, int Width, int[] Ids, IReadOnlyList<PredictedSegment> Segments)
{
    /// <summary>The id map as COCO panoptic PNG bytes (RGB, id = R + 256 G + 256^2 B).</summary>
    public byte[] ToRgb() => PanopticEvaluator.IdsToRgb(Ids);
}

/// <summary>
/// MaX-DeepLab's inference (DeepLab2's pixel-wise post-processing): a slot is kept when its class confidence (the
/// largest probability among the non-void classes) exceeds the class threshold; every pixel takes its argmax slot
/// over all slots of the mask logits, resized bilinearly to the image; a pixel is void when that slot is not kept or
/// its probability, the softmax over the kept slots, is below the pixel threshold. Each kept thing slot is one
/// segment; kept stuff slots of one class make one segment. Segments smaller than the area limits become void.
/// </summary>
public static class MaxDeepLabPostProcessor
{
    /// <summary>
    /// The panoptic segmentation of one image from its mask logits [N, h, w] and class logits [N, C + 1] (host
    /// arrays), where the logit grid covers a network input of <paramref name="inputSize"/> x <paramref name="inputSize"/>
    /// pixels with aligned corners, in whose top-left <paramref name="resizedHeight"/> x <paramref name="resizedWidth"/>
    /// the image of <paramref name="height"/> x <paramref name="width"/> was resized (half-pixel centres).
    /// </summary>
    public static PanopticPrediction Process(ReadOnlySpan<float> maskLogits, int slots, int gridHeight, int gridWidth, ReadOnlySpan<float> classLogits, int classes,
        int inputSize, int resizedHeight, int resizedWidth, int height, int width, IReadOnlySet<int> thingClasses, MaxDeepLabInferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(thingClasses);
        ArgumentNullException.ThrowIfNull(options);
        if (maskLogits.Length != slots * gridHeight * gridWidth) throw new ArgumentException($"expected {slots}x{gridHeight}x{gridWidth} mask logits, got {maskLogits.Length}", nameof(maskLogits));
        if (classLogits.Length != slots * (classes + 1)) throw new ArgumentException($"expected {slots}x{classes + 1} class logits, got {classLogits.Length}", nameof(classLogits));
        // Class confidence and prediction per slot.
        var kept = new bool[slots];
        var slotClass = new int[slots];
        var slotScore = new double[slots];
        for (int i = 0; i < slots; i++)
        {
            var row = classLogits.Slice(i * (classes + 1), classes + 1);
            double max = double.NegativeInfinity;
            foreach (float v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (float v in row) sum += Math.Exp(v - max);
            int best = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            slotClass[i] = best;
            slotScore[i] = Math.Exp(row[best] - max) / sum;
            kept[i] = slotScore[i] > options.ClassThreshold;
        }
        var slotOf = new int[height * width];
        Array.Fill(slotOf, -1);
        int plane = gridHeight * gridWidth;
        if (kept.Any(k => k))
        {
            var l = new double[slots];
            double gy = gridHeight > 1 ? (gridHeight - 1.0) / (inputSize - 1) : 0, gx = gridWidth > 1 ? (gridWidth - 1.0) / (inputSize - 1) : 0;
            for (int y = 0; y < height; y++)
            {
                // Image pixel centre -> resized input pixel -> logit grid (aligned corners).
                double fy = Math.Clamp(((y + 0.5) * resizedHeight / height - 0.5) * gy, 0, gridHeight - 1);
                int y0 = Math.Min((int)fy, gridHeight - 1), y1 = Math.Min(y0 + 1, gridHeight - 1);
                double wy = fy - y0;
                for (int x = 0; x < width; x++)
                {
                    double fx = Math.Clamp(((x + 0.5) * resizedWidth / width - 0.5) * gx, 0, gridWidth - 1);
                    int x0 = Math.Min((int)fx, gridWidth - 1), x1 = Math.Min(x0 + 1, gridWidth - 1);
                    double wx = fx - x0;
                    double w00 = (1 - wy) * (1 - wx), w01 = (1 - wy) * wx, w10 = wy * (1 - wx), w11 = wy * wx;
                    int best = 0;
                    for (int i = 0; i < slots; i++)
                    {
                        int o = i * plane;
                        l[i] = w00 * maskLogits[o + y0 * gridWidth + x0] + w01 * maskLogits[o + y0 * gridWidth + x1]
                             + w10 * maskLogits[o + y1 * gridWidth + x0] + w11 * maskLogits[o + y1 * gridWidth + x1];
                        if (l[i] > l[best]) best = i;
                    }
                    if (!kept[best]) continue;
                    double denom = 0;
                    for (int i = 0; i < slots; i++) if (kept[i]) denom += Math.Exp(l[i] - l[best]);
                    if (1 / denom < options.PixelThreshold) continue;
                    slotOf[y * width + x] = best;
                }
            }
        }
        // Segments: each thing slot, each stuff class.
        var segmentOfSlot = new int[slots];
        var keys = new List<(int Class, bool Thing, int Slot)>();
        var keyIndex = new Dictionary<(int, int), int>();
        var counts = new List<long>();
        for (int p = 0; p < slotOf.Length; p++)
        {
            int s = slotOf[p];
            if (s < 0) continue;
            bool thing = thingClasses.Contains(slotClass[s]);
            var key = thing ? (-1, s) : (slotClass[s], -1);
            if (!keyIndex.TryGetValue(key, out int k))
            {
                k = keys.Count;
                keyIndex[key] = k;
                keys.Add((slotClass[s], thing, s));
                counts.Add(0);
            }
            counts[k]++;
        }
        // Area limits, then ids 1.. in order of first appearance.
        var idOfKey = new int[keys.Count];
        int next = 1;
        for (int k = 0; k < keys.Count; k++)
        {
            long limit = keys[k].Thing ? options.ThingAreaLimit : options.StuffAreaLimit;
            idOfKey[k] = counts[k] >= limit ? next++ : 0;
        }
        var ids = new int[slotOf.Length];
        var box = new (int X0, int Y0, int X1, int Y1)[next];
        var area = new long[next];
        for (int i = 0; i < box.Length; i++) box[i] = (int.MaxValue, int.MaxValue, -1, -1);
        for (int p = 0; p < slotOf.Length; p++)
        {
            int s = slotOf[p];
            if (s < 0) continue;
            bool thing = thingClasses.Contains(slotClass[s]);
            int id = idOfKey[keyIndex[thing ? (-1, s) : (slotClass[s], -1)]];
            ids[p] = id;
            if (id == 0) continue;
            int y = p / width, x = p % width;
            var b = box[id];
            box[id] = (Math.Min(b.X0, x), Math.Min(b.Y0, y), Math.Max(b.X1, x), Math.Max(b.Y1, y));
            area[id]++;
        }
        var segments = new List<PredictedSegment>();
        for (int k = 0; k < keys.Count; k++)
        {
            int id = idOfKey[k];
            if (id == 0) continue;
            var (cls, thing, slot) = keys[k];
            double score = thing ? slotScore[slot] : Enumerable.Range(0, slots).Where(i => kept[i] && slotClass[i] == cls).Max(i => slotScore[i]);
            var b = box[id];
            segments.Add(new PredictedSegment(id, cls, thing, area[id], [b.X0, b.Y0, b.X1 - b.X0 + 1, b.Y1 - b.Y0 + 1], score));
        }
        segments.Sort((a, b) => a.Id.CompareTo(b.Id));
        return new PanopticPrediction(height, width, ids, segments);
    }
}
