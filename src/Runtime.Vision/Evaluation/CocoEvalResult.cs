using System.Text;

namespace Runtime.Vision.Evaluation;

/// <summary>
/// Accumulated COCO evaluation (pycocotools <c>COCOeval.eval</c> and <c>stats</c>).
/// <see cref="Precision"/> is <c>[T, R, K, A, M]</c>, <see cref="Recall"/> <c>[T, K, A, M]</c>; entries are -1 for
/// settings without (non-ignored) ground truth.
/// </summary>
public sealed class CocoEvalResult
{
    internal CocoEvalResult(CocoEvalParams p, CocoIouType iouType, long[] imageIds, long[] categoryIds, int[] maxDets,
        double[,,,,] precision, double[,,,] recall, double[,,,,] scores, CocoImageEvaluation?[] evalImgs)
    {
        Parameters = p;
        IouType = iouType;
        ImageIds = imageIds;
        CategoryIds = categoryIds;
        MaxDets = maxDets;
        Precision = precision;
        Recall = recall;
        Scores = scores;
        EvalImages = evalImgs;
        Stats = MaxDets.Count >= 3 ? ComputeStats() : [];
        PerCategoryAP = ComputePerCategoryAP();
    }

    /// <summary>Parameters used.</summary>
    public CocoEvalParams Parameters { get; }

    /// <summary>bbox or segm.</summary>
    public CocoIouType IouType { get; }

    /// <summary>Evaluated image ids (sorted).</summary>
    public IReadOnlyList<long> ImageIds { get; }

    /// <summary>Evaluated category ids (sorted): the K axis.</summary>
    public IReadOnlyList<long> CategoryIds { get; }

    /// <summary>maxDets (sorted): the M axis.</summary>
    public IReadOnlyList<int> MaxDets { get; }

    /// <summary>Precision <c>[T, R, K, A, M]</c>.</summary>
    public double[,,,,] Precision { get; }

    /// <summary>Recall <c>[T, K, A, M]</c>.</summary>
    public double[,,,] Recall { get; }

    /// <summary>Score at each recall point <c>[T, R, K, A, M]</c>.</summary>
    public double[,,,,] Scores { get; }

    /// <summary>Per-image evaluations indexed <c>(k * A + a) * I + i</c>; null where an image has neither ground truth nor detections of a category.</summary>
    public IReadOnlyList<CocoImageEvaluation?> EvalImages { get; }

    /// <summary>The twelve standard numbers in pycocotools' order (empty when fewer than three maxDets are set).</summary>
    public double[] Stats { get; }

    /// <summary>AP @ IoU 0.50:0.95, all areas, 100 detections.</summary>
    public double AP => Stats[0];

    /// <summary>AP @ IoU 0.50.</summary>
    public double AP50 => Stats[1];

    /// <summary>AP @ IoU 0.75.</summary>
    public double AP75 => Stats[2];

    /// <summary>AP for small objects.</summary>
    public double APs => Stats[3];

    /// <summary>AP for medium objects.</summary>
    public double APm => Stats[4];

    /// <summary>AP for large objects.</summary>
    public double APl => Stats[5];

    /// <summary>AR with 1 detection per image.</summary>
    public double AR1 => Stats[6];

    /// <summary>AR with 10 detections per image.</summary>
    public double AR10 => Stats[7];

    /// <summary>AR with 100 detections per image.</summary>
    public double AR100 => Stats[8];

    /// <summary>AR for small objects.</summary>
    public double ARs => Stats[9];

    /// <summary>AR for medium objects.</summary>
    public double ARm => Stats[10];

    /// <summary>AR for large objects.</summary>
    public double ARl => Stats[11];

    /// <summary>
    /// Per category id: AP @ IoU 0.50:0.95, area "all", largest maxDets (mean of the precision entries &gt; -1,
    /// as detectron2 reports it); -1 for a category without ground truth.
    /// </summary>
    public IReadOnlyDictionary<long, double> PerCategoryAP { get; }

    /// <summary>
    /// pycocotools' <c>_summarize</c>: mean over the precision (<paramref name="ap"/>) or recall entries &gt; -1 of the
    /// setting, -1 when there are none. <paramref name="iouThreshold"/> null means all thresholds; it must equal
    /// a threshold exactly otherwise.
    /// </summary>
    public double Summarize(bool ap, double? iouThreshold = null, string areaRange = "all", int maxDets = 100)
    {
        int T = Parameters.IouThresholds.Length, R = Parameters.RecallThresholds.Length, K = CategoryIds.Count;
        int aind = Array.IndexOf(Parameters.AreaLabels, areaRange);
        int mind = -1;
        for (int i = 0; i < MaxDets.Count; i++) if (MaxDets[i] == maxDets) { mind = i; break; }
        if (aind < 0 || mind < 0) return -1;
        var ts = new List<int>();
        for (int t = 0; t < T; t++) if (iouThreshold == null || Parameters.IouThresholds[t] == iouThreshold.Value) ts.Add(t);
        var vals = new List<double>();
        foreach (int t in ts)
        {
            if (ap)
            {
                for (int r = 0; r < R; r++)
                    for (int k = 0; k < K; k++)
                        if (Precision[t, r, k, aind, mind] > -1) vals.Add(Precision[t, r, k, aind, mind]);
            }
            else
            {
                for (int k = 0; k < K; k++)
                    if (Recall[t, k, aind, mind] > -1) vals.Add(Recall[t, k, aind, mind]);
            }
        }
        return vals.Count == 0 ? -1 : PyCompat.Mean(vals.ToArray());
    }

    private static readonly (bool Ap, double? Iou, string Area, int MaxDetIndex)[] StatSpecs =
    [
        (true, null, "all", -1), (true, 0.5, "all", 2), (true, 0.75, "all", 2),
        (true, null, "small", 2), (true, null, "medium", 2), (true, null, "large", 2),
        (false, null, "all", 0), (false, null, "all", 1), (false, null, "all", 2),
        (false, null, "small", 2), (false, null, "medium", 2), (false, null, "large", 2),
    ];

    private int StatMaxDets(int index) => index < 0 ? 100 : MaxDets[index];

    private double[] ComputeStats()
    {
        var s = new double[12];
        for (int i = 0; i < 12; i++)
        {
            var spec = StatSpecs[i];
            s[i] = Summarize(spec.Ap, spec.Iou, spec.Area, StatMaxDets(spec.MaxDetIndex));
        }
        return s;
    }

    private Dictionary<long, double> ComputePerCategoryAP()
    {
        var d = new Dictionary<long, double>();
        int T = Parameters.IouThresholds.Length, R = Parameters.RecallThresholds.Length;
        int aind = Array.IndexOf(Parameters.AreaLabels, "all");
        if (aind < 0) aind = 0;
        int mind = MaxDets.Count - 1;
        for (int k = 0; k < CategoryIds.Count; k++)
        {
            var vals = new List<double>();
            for (int t = 0; t < T; t++)
                for (int r = 0; r < R; r++)
                    if (Precision[t, r, k, aind, mind] > -1) vals.Add(Precision[t, r, k, aind, mind]);
            d[CategoryIds[k]] = vals.Count == 0 ? -1 : PyCompat.Mean(vals.ToArray());
        }
        return d;
    }

    /// <summary>
    /// The twelve lines pycocotools' <c>summarize()</c> prints, e.g.
    /// <c>" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.505"</c>, joined by '\n'
    /// (with a final '\n').
    /// </summary>
    public string Summary()
    {
        if (Stats.Length == 0) throw new InvalidOperationException("The standard summary needs at least three maxDets.");
        var sb = new StringBuilder();
        double[] thr = Parameters.IouThresholds;
        for (int i = 0; i < 12; i++)
        {
            var spec = StatSpecs[i];
            string title = spec.Ap ? "Average Precision" : "Average Recall";
            string type = spec.Ap ? "(AP)" : "(AR)";
            string iouStr = spec.Iou == null
                ? $"{PyCompat.FormatFixed(thr[0], 2)}:{PyCompat.FormatFixed(thr[^1], 2)}"
                : PyCompat.FormatFixed(spec.Iou.Value, 2);
            sb.Append(' ').Append(title.PadRight(18)).Append(' ').Append(type)
              .Append(" @[ IoU=").Append(iouStr.PadRight(9))
              .Append(" | area=").Append(spec.Area.PadLeft(6))
              .Append(" | maxDets=").Append(StatMaxDets(spec.MaxDetIndex).ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(3))
              .Append(" ] = ").Append(PyCompat.FormatFixed(Stats[i], 3)).Append('\n');
        }
        return sb.ToString();
    }
}
