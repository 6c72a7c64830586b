using System.Text;

namespace Runtime.Vision.Evaluation;

/// <summary>A panoptic category; <paramref name="IsThing"/> splits the Things / Stuff averages.</summary>
public sealed record PanopticCategory(int Id, bool IsThing, string Name = "");

/// <summary>
/// A ground-truth segment of <c>segments_info</c>. <paramref name="Area"/> is the JSON "area" (panopticapi uses the
/// stored value in the union); when null the segment's pixels in the id map are counted.
/// </summary>
public sealed record PanopticGtSegment(int Id, int CategoryId, bool IsCrowd = false, long? Area = null);

/// <summary>A predicted segment of <c>segments_info</c> (its area is counted from the id map).</summary>
public sealed record PanopticPredSegment(int Id, int CategoryId);

/// <summary>
/// One image: ground-truth and predicted segment-id maps (row-major, <c>Height*Width</c>; id 0 is VOID) with
/// their segments.
/// </summary>
public sealed record PanopticImage(
    int Height,
    int Width,
    int[] GtIds,
    IReadOnlyList<PanopticGtSegment> GtSegments,
    int[] PredIds,
    IReadOnlyList<PanopticPredSegment> PredSegments,
    long ImageId = 0);

/// <summary>Accumulated per-category counts (panopticapi <c>PQStatCat</c>).</summary>
public sealed class PanopticCategoryStat
{
    /// <summary>Sum of the IoUs of the true positives.</summary>
    public double Iou { get; internal set; }

    /// <summary>True positives.</summary>
    public long Tp { get; internal set; }

    /// <summary>False positives.</summary>
    public long Fp { get; internal set; }

    /// <summary>False negatives.</summary>
    public long Fn { get; internal set; }
}

/// <summary>PQ, SQ, RQ of one category or an average; <see cref="N"/> counts the categories averaged.</summary>
public sealed record PanopticMetrics(double Pq, double Sq, double Rq, int N);

/// <summary>Panoptic quality results for All, Things and Stuff, plus per category.</summary>
public sealed class PanopticResult
{
    internal PanopticResult(PanopticMetrics all, PanopticMetrics things, PanopticMetrics stuff,
        IReadOnlyDictionary<int, PanopticMetrics> perClass, IReadOnlyDictionary<int, PanopticCategoryStat> stats)
    {
        All = all; Things = things; Stuff = stuff; PerClass = perClass; Stats = stats;
    }

    /// <summary>Average over all categories with any TP, FP or FN.</summary>
    public PanopticMetrics All { get; }

    /// <summary>Average over the thing categories.</summary>
    public PanopticMetrics Things { get; }

    /// <summary>Average over the stuff categories.</summary>
    public PanopticMetrics Stuff { get; }

    /// <summary>Per category (every category; those with no TP/FP/FN have zeros and N = 0).</summary>
    public IReadOnlyDictionary<int, PanopticMetrics> PerClass { get; }

    /// <summary>The raw per-category counts.</summary>
    public IReadOnlyDictionary<int, PanopticCategoryStat> Stats { get; }

    /// <summary>
    /// The table panopticapi's <c>pq_compute</c> prints: a header
    /// <c>"          |    PQ     SQ     RQ     N"</c>, a rule of 38 '-', then rows All / Things / Stuff with the
    /// values times 100 to one decimal. Lines end with '\n'.
    /// </summary>
    public string ToTable()
    {
        var sb = new StringBuilder();
        sb.Append(string.Empty.PadRight(10)).Append("| ").Append("PQ".PadLeft(5)).Append("  ").Append("SQ".PadLeft(5))
          .Append("  ").Append("RQ".PadLeft(5)).Append(' ').Append("N".PadLeft(5)).Append('\n');
        sb.Append('-', 10 + 7 * 4).Append('\n');
        foreach ((string name, PanopticMetrics m) in new[] { ("All", All), ("Things", Things), ("Stuff", Stuff) })
        {
            sb.Append(name.PadRight(10)).Append("| ")
              .Append(PyCompat.FormatFixed(100 * m.Pq, 1).PadLeft(5)).Append("  ")
              .Append(PyCompat.FormatFixed(100 * m.Sq, 1).PadLeft(5)).Append("  ")
              .Append(PyCompat.FormatFixed(100 * m.Rq, 1).PadLeft(5)).Append(' ')
              .Append(m.N.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(5)).Append('\n');
        }
        return sb.ToString();
    }

    /// <inheritdoc />
    public override string ToString() => ToTable();
}

/// <summary>
/// Panoptic quality with panopticapi's <c>pq_compute</c> rules. Add images with <see cref="Add"/> (statistics
/// accumulate), then read <see cref="Compute"/>.
/// </summary>
public sealed class PanopticEvaluator
{
    /// <summary>The VOID segment id.</summary>
    public const int Void = 0;

    private readonly List<PanopticCategory> _categories;
    private readonly Dictionary<int, PanopticCategory> _catById = new();
    private readonly Dictionary<int, PanopticCategoryStat> _stats = new();

    /// <summary>Creates an evaluator over the ground truth's categories (their order is the averaging order).</summary>
    public PanopticEvaluator(IEnumerable<PanopticCategory> categories)
    {
        ArgumentNullException.ThrowIfNull(categories);
        _categories = categories.ToList();
        foreach (PanopticCategory c in _categories)
        {
            if (!_catById.TryAdd(c.Id, c)) throw new ArgumentException($"Duplicate category id {c.Id}.", nameof(categories));
            _stats[c.Id] = new PanopticCategoryStat();
        }
    }

    /// <summary>COCO panoptic PNG colour to segment id: <c>R + 256 G + 256² B</c> for interleaved RGB bytes (row-major, HWC).</summary>
    public static int[] RgbToIds(ReadOnlySpan<byte> rgb, int height, int width)
    {
        if (rgb.Length != (long)height * width * 3) throw new ArgumentException("Expected height*width*3 bytes.", nameof(rgb));
        var ids = new int[height * width];
        for (int i = 0; i < ids.Length; i++) ids[i] = rgb[3 * i] + 256 * rgb[3 * i + 1] + 256 * 256 * rgb[3 * i + 2];
        return ids;
    }

    /// <summary>Segment id to COCO panoptic RGB bytes (inverse of <see cref="RgbToIds"/>).</summary>
    public static byte[] IdsToRgb(ReadOnlySpan<int> ids)
    {
        var rgb = new byte[ids.Length * 3];
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if (id < 0 || id >= 1 << 24) throw new ArgumentOutOfRangeException(nameof(ids), $"Segment id {id} does not fit in 24 bits.");
            rgb[3 * i] = (byte)(id % 256);
            rgb[3 * i + 1] = (byte)(id / 256 % 256);
            rgb[3 * i + 2] = (byte)(id / 65536);
        }
        return rgb;
    }

    /// <summary>Accumulates one image's TP / FP / FN and IoU sums.</summary>
    public void Add(PanopticImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int n = image.Height * image.Width;
        if (image.GtIds.Length != n || image.PredIds.Length != n) throw new ArgumentException("Id maps must have Height*Width entries.", nameof(image));

        var gtSegms = new Dictionary<int, PanopticGtSegment>();
        foreach (PanopticGtSegment s in image.GtSegments)
            gtSegms[s.Id] = s; // later entries replace earlier ones, as the dict comprehension does
        var predSegms = new Dictionary<int, PanopticPredSegment>();
        foreach (PanopticPredSegment s in image.PredSegments) predSegms[s.Id] = s;

        // areas and the confusion counts
        var predArea = new Dictionary<int, long>();
        var gtArea = new Dictionary<int, long>();
        var pairs = new Dictionary<long, long>();
        const long offset = 1L << 32;
        void Flush(int g, int p, long count)
        {
            predArea[p] = predArea.GetValueOrDefault(p) + count;
            gtArea[g] = gtArea.GetValueOrDefault(g) + count;
            long key = (long)(uint)g * offset + (uint)p;
            pairs[key] = pairs.GetValueOrDefault(key) + count;
        }
        // runs of equal (gt, pred) pairs are counted together
        int runG = 0, runP = 0;
        long run = 0;
        for (int i = 0; i < n; i++)
        {
            int g = image.GtIds[i], p = image.PredIds[i];
            if (run > 0 && g == runG && p == runP) { run++; continue; }
            if (run > 0) Flush(runG, runP, run);
            runG = g; runP = p; run = 1;
        }
        if (run > 0) Flush(runG, runP, run);

        // prediction sanity checks (as panopticapi)
        var unseen = new HashSet<int>(predSegms.Keys);
        foreach (int label in predArea.Keys.Order())
        {
            if (!predSegms.TryGetValue(label, out PanopticPredSegment? ps))
            {
                if (label == Void) continue;
                throw new KeyNotFoundException($"In the image with ID {image.ImageId} segment with ID {label} is presented in the id map and not in segments_info.");
            }
            unseen.Remove(label);
            if (!_catById.ContainsKey(ps.CategoryId))
                throw new KeyNotFoundException($"In the image with ID {image.ImageId} segment with ID {label} has unknown category_id {ps.CategoryId}.");
        }
        if (unseen.Count != 0)
            throw new KeyNotFoundException($"In the image with ID {image.ImageId} the following segment IDs [{string.Join(", ", unseen.Order())}] are presented in segments_info and not in the id map.");

        long GtAreaOf(PanopticGtSegment s) => s.Area ?? gtArea.GetValueOrDefault(s.Id);
        long Pair(int g, int p) => pairs.GetValueOrDefault((long)(uint)g * offset + (uint)p);

        // matches, in the sorted (gt, pred) order np.unique gives
        var gtMatched = new HashSet<int>();
        var predMatched = new HashSet<int>();
        foreach (long key in pairs.Keys.Order())
        {
            int gtLabel = (int)(uint)(key / offset), predLabel = (int)(uint)(key % offset);
            long inter = pairs[key];
            if (!gtSegms.TryGetValue(gtLabel, out PanopticGtSegment? gs)) continue;
            if (!predSegms.TryGetValue(predLabel, out PanopticPredSegment? ps)) continue;
            if (gs.IsCrowd) continue;
            if (gs.CategoryId != ps.CategoryId) continue;
            long union = predArea[predLabel] + GtAreaOf(gs) - inter - Pair(Void, predLabel);
            double iou = (double)inter / union;
            if (iou > 0.5)
            {
                PanopticCategoryStat st = Stat(gs.CategoryId);
                st.Tp++;
                st.Iou += iou;
                gtMatched.Add(gtLabel);
                predMatched.Add(predLabel);
            }
        }

        // false negatives; the last crowd segment of each category is its crowd region
        var crowdByCat = new Dictionary<int, int>();
        foreach (PanopticGtSegment gs in UniqueInOrder(image.GtSegments))
        {
            if (gtMatched.Contains(gs.Id)) continue;
            if (gs.IsCrowd) { crowdByCat[gs.CategoryId] = gs.Id; continue; }
            Stat(gs.CategoryId).Fn++;
        }

        // false positives, unless mostly on VOID or on a crowd region of the category
        foreach (PanopticPredSegment ps in UniqueInOrder(image.PredSegments))
        {
            if (predMatched.Contains(ps.Id)) continue;
            long inter = Pair(Void, ps.Id);
            if (crowdByCat.TryGetValue(ps.CategoryId, out int crowdId)) inter += Pair(crowdId, ps.Id);
            if ((double)inter / predArea[ps.Id] > 0.5) continue;
            Stat(ps.CategoryId).Fp++;
        }
    }

    private static IEnumerable<T> UniqueInOrder<T>(IReadOnlyList<T> segs) where T : class
    {
        // Python dict order: first position of a key, value of its last occurrence
        var last = new Dictionary<int, T>();
        var order = new List<int>();
        foreach (T s in segs)
        {
            int id = s is PanopticGtSegment g ? g.Id : ((PanopticPredSegment)(object)s).Id;
            if (!last.ContainsKey(id)) order.Add(id);
            last[id] = s;
        }
        foreach (int id in order) yield return last[id];
    }

    private PanopticCategoryStat Stat(int categoryId)
    {
        if (!_stats.TryGetValue(categoryId, out PanopticCategoryStat? s)) _stats[categoryId] = s = new PanopticCategoryStat();
        return s;
    }

    /// <summary>Evaluates a list of images from scratch.</summary>
    public static PanopticResult Evaluate(IEnumerable<PanopticCategory> categories, IEnumerable<PanopticImage> images)
    {
        var e = new PanopticEvaluator(categories);
        foreach (PanopticImage im in images) e.Add(im);
        return e.Compute();
    }

    /// <summary>
    /// PQ / SQ / RQ per category (<c>PQ = ΣIoU / (TP + FP/2 + FN/2)</c>, <c>SQ = ΣIoU / TP</c>, <c>RQ = TP / (TP + FP/2 + FN/2)</c>)
    /// and their means over the categories with any TP, FP or FN (NaN where there is none; panopticapi raises).
    /// </summary>
    public PanopticResult Compute()
    {
        var perClass = new Dictionary<int, PanopticMetrics>();
        PanopticMetrics Average(bool? isThing, bool record)
        {
            double pq = 0, sq = 0, rq = 0;
            int n = 0;
            foreach (PanopticCategory c in _categories)
            {
                if (isThing != null && c.IsThing != isThing.Value) continue;
                PanopticCategoryStat s = _stats[c.Id];
                if (s.Tp + s.Fp + s.Fn == 0)
                {
                    if (record) perClass[c.Id] = new PanopticMetrics(0, 0, 0, 0);
                    continue;
                }
                n++;
                double denom = s.Tp + 0.5 * s.Fp + 0.5 * s.Fn;
                double pqc = s.Iou / denom;
                double sqc = s.Tp != 0 ? s.Iou / s.Tp : 0;
                double rqc = s.Tp / denom;
                if (record) perClass[c.Id] = new PanopticMetrics(pqc, sqc, rqc, 1);
                pq += pqc; sq += sqc; rq += rqc;
            }
            return n == 0 ? new PanopticMetrics(double.NaN, double.NaN, double.NaN, 0) : new PanopticMetrics(pq / n, sq / n, rq / n, n);
        }
        PanopticMetrics all = Average(null, record: true);
        PanopticMetrics things = Average(true, record: false);
        PanopticMetrics stuff = Average(false, record: false);
        var stats = _categories.ToDictionary(c => c.Id, c => _stats[c.Id]);
        return new PanopticResult(all, things, stuff, perClass, stats);
    }
}
