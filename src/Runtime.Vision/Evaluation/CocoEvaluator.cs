namespace Runtime.Vision.Evaluation;

/// <summary>
/// The result of matching one image's detections of one category against its ground truth, for one area
/// range (pycocotools <c>evaluateImg</c>). Detections are in score order (stable), truncated to the largest
/// maxDets; ground truths are ordered with the ignored ones last (stable).
/// </summary>
public sealed class CocoImageEvaluation
{
    internal CocoImageEvaluation(long imageId, long categoryId, (double Min, double Max) areaRange, int maxDet,
        long[] dtIds, long[] gtIds, double[] dtScores, bool[] gtIgnore, int[,] dtMatch, int[,] gtMatch, bool[,] dtIgnore)
    {
        ImageId = imageId; CategoryId = categoryId; AreaRange = areaRange; MaxDet = maxDet;
        DetectionIds = dtIds; GroundTruthIds = gtIds; DetectionScores = dtScores; GroundTruthIgnore = gtIgnore;
        DetectionMatch = dtMatch; GroundTruthMatch = gtMatch; DetectionIgnore = dtIgnore;
    }

    /// <summary>Image id.</summary>
    public long ImageId { get; }

    /// <summary>Category id.</summary>
    public long CategoryId { get; }

    /// <summary>Area range of this evaluation.</summary>
    public (double Min, double Max) AreaRange { get; }

    /// <summary>Detections kept per image.</summary>
    public int MaxDet { get; }

    /// <summary>Detection ids (1-based position in the detection list given to the evaluator), score order.</summary>
    public long[] DetectionIds { get; }

    /// <summary>Ground-truth ids, ignored last.</summary>
    public long[] GroundTruthIds { get; }

    /// <summary>Detection scores, score order.</summary>
    public double[] DetectionScores { get; }

    /// <summary>Per ground truth: ignored (crowd, or area outside the range).</summary>
    public bool[] GroundTruthIgnore { get; }

    /// <summary><c>[T, D]</c>: index into <see cref="GroundTruthIds"/> of the match at each IoU threshold, or -1.</summary>
    public int[,] DetectionMatch { get; }

    /// <summary><c>[T, G]</c>: index into <see cref="DetectionIds"/> of the (last) match at each IoU threshold, or -1.</summary>
    public int[,] GroundTruthMatch { get; }

    /// <summary><c>[T, D]</c>: detection ignored (matched an ignored ground truth, or unmatched and outside the area range).</summary>
    public bool[,] DetectionIgnore { get; }
}

/// <summary>
/// COCO detection / instance-segmentation evaluation with pycocotools' <c>COCOeval</c> rules
/// (<c>evaluate</c>, <c>accumulate</c>, <c>summarize</c>) for iouType "bbox" and "segm".
/// </summary>
public sealed class CocoEvaluator
{
    private readonly CocoGroundTruth _gt;
    private readonly CocoIouType _iouType;
    private readonly CocoEvalParams _p;
    private readonly Dictionary<long, CocoEvalImage> _images = new();

    /// <summary>Creates an evaluator for a ground-truth set.</summary>
    public CocoEvaluator(CocoGroundTruth groundTruth, CocoIouType iouType, CocoEvalParams? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(groundTruth);
        _gt = groundTruth;
        _iouType = iouType;
        _p = parameters ?? new CocoEvalParams();
        if (_p.AreaRanges.Length != _p.AreaLabels.Length) throw new ArgumentException("AreaRanges and AreaLabels differ in length.", nameof(parameters));
        if (_p.MaxDets.Length == 0) throw new ArgumentException("MaxDets is empty.", nameof(parameters));
        foreach (CocoEvalImage im in groundTruth.Images) _images[im.Id] = im;
    }

    /// <summary>The parameters in use.</summary>
    public CocoEvalParams Parameters => _p;

    private sealed class Gt
    {
        public long Id;
        public double[] Bbox = [];
        public Rle? Mask;
        public double Area;
        public bool IsCrowd;
        public bool Ignore;
    }

    private sealed class Dt
    {
        public long Id;
        public double Score;
        public double[] Bbox = [];
        public Rle? Mask;
        public double Area;
    }

    /// <summary>Runs evaluate, accumulate and the summary statistics on a list of detections.</summary>
    public CocoEvalResult Evaluate(IEnumerable<CocoEvalDetection> detections)
    {
        ArgumentNullException.ThrowIfNull(detections);
        CocoEvalParams p = _p;
        long[] imgIds = (p.ImageIds ?? _gt.Images.Select(i => i.Id).ToList()).Distinct().Order().ToArray();
        long[] catIds = (p.CategoryIds ?? _gt.Categories.Select(c => c.Id).ToList()).Distinct().Order().ToArray();
        int[] maxDets = p.MaxDets.Order().ToArray();
        int I = imgIds.Length, K = catIds.Length, A = p.AreaRanges.Length, M = maxDets.Length;
        int T = p.IouThresholds.Length, R = p.RecallThresholds.Length;
        var imgIndex = new Dictionary<long, int>();
        for (int i = 0; i < I; i++) imgIndex[imgIds[i]] = i;
        var catIndex = new Dictionary<long, int>();
        for (int k = 0; k < K; k++) catIndex[catIds[k]] = k;

        // ---- _prepare
        var gts = new Dictionary<(int I, int K), List<Gt>>();
        foreach (CocoEvalAnnotation a in _gt.Annotations)
        {
            if (!imgIndex.TryGetValue(a.ImageId, out int ii) || !catIndex.TryGetValue(a.CategoryId, out int kk)) continue;
            var g = new Gt { Id = a.Id, IsCrowd = a.IsCrowd };
            g.Ignore = a.IsCrowd || (p.HonorIgnoreFlag && a.Ignore);
            if (_iouType == CocoIouType.Segm)
            {
                CocoEvalImage im = Image(a.ImageId);
                g.Mask = (a.Segmentation ?? throw new ArgumentException($"Annotation {a.Id} has no segmentation (segm evaluation).")).ToRle(im.Height, im.Width);
                g.Area = a.Area ?? g.Mask.Area;
            }
            else
            {
                g.Bbox = a.Bbox ?? (a.Segmentation != null ? SegBbox(a.Segmentation, a.ImageId) : throw new ArgumentException($"Annotation {a.Id} has no bbox (bbox evaluation)."));
                if (g.Bbox.Length != 4) throw new ArgumentException($"Annotation {a.Id}: bbox must be [x, y, w, h].");
                g.Area = a.Area ?? g.Bbox[2] * g.Bbox[3];
            }
            Add(gts, (ii, kk), g);
        }

        var dts = new Dictionary<(int I, int K), List<Dt>>();
        long nextId = 0;
        foreach (CocoEvalDetection d in detections)
        {
            nextId++;
            if (!_images.ContainsKey(d.ImageId)) throw new ArgumentException($"Results do not correspond to the ground truth: image {d.ImageId} is not in it.");
            if (d.Bbox != null && d.Bbox.Length != 4 && d.Bbox.Length != 0) throw new ArgumentException($"Detection {nextId}: bbox must be [x, y, w, h].");
            if (!imgIndex.TryGetValue(d.ImageId, out int ii) || !catIndex.TryGetValue(d.CategoryId, out int kk)) continue;
            bool hasBox = d.Bbox is { Length: 4 };
            var t = new Dt { Id = nextId, Score = d.Score };
            CocoEvalImage im = Image(d.ImageId);
            if (_iouType == CocoIouType.Segm)
            {
                if (d.Segmentation != null) t.Mask = d.Segmentation.ToRle(im.Height, im.Width);
                else if (hasBox) t.Mask = Rle.FromBbox(d.Bbox![0], d.Bbox[1], d.Bbox[2], d.Bbox[3], im.Height, im.Width);
                else throw new ArgumentException($"Detection {nextId} has neither segmentation nor bbox.");
                t.Area = hasBox ? d.Bbox![2] * d.Bbox[3] : t.Mask.Area;
            }
            else
            {
                if (hasBox) t.Bbox = d.Bbox!;
                else if (d.Segmentation != null) t.Bbox = d.Segmentation.ToRle(im.Height, im.Width).ToBbox();
                else throw new ArgumentException($"Detection {nextId} has neither bbox nor segmentation.");
                t.Area = hasBox ? d.Bbox![2] * d.Bbox[3] : d.Segmentation!.ToRle(im.Height, im.Width).Area;
            }
            Add(dts, (ii, kk), t);
        }

        // ---- computeIoU (detections sorted by score, stable, cut at the largest maxDets)
        int maxDet = maxDets[^1];
        var sortedDts = new Dictionary<(int, int), Dt[]>();
        var ious = new Dictionary<(int, int), double[,]>();
        foreach ((int, int) key in gts.Keys.Union(dts.Keys))
        {
            List<Gt> g = gts.GetValueOrDefault(key) ?? [];
            List<Dt> d = dts.GetValueOrDefault(key) ?? [];
            int[] order = PyCompat.ArgsortDescendingStable(d.Select(x => x.Score).ToArray());
            Dt[] ds = order.Take(maxDet).Select(o => d[o]).ToArray();
            sortedDts[key] = ds;
            bool[] crowd = g.Select(x => x.IsCrowd).ToArray();
            if (ds.Length == 0 || g.Count == 0) ious[key] = new double[ds.Length, g.Count];
            else if (_iouType == CocoIouType.Segm)
                ious[key] = Rle.Iou(ds.Select(x => x.Mask!).ToArray(), g.Select(x => x.Mask!).ToArray(), crowd);
            else
                ious[key] = Rle.BoxIou(ds.Select(x => x.Bbox).ToArray(), g.Select(x => x.Bbox).ToArray(), crowd);
        }

        // ---- evaluateImg for every category, area range, image
        var evalImgs = new CocoImageEvaluation?[K * A * I];
        for (int k = 0; k < K; k++)
            for (int a = 0; a < A; a++)
                for (int i = 0; i < I; i++)
                {
                    if (!sortedDts.TryGetValue((i, k), out Dt[]? ds)) continue;
                    List<Gt> g = gts.GetValueOrDefault((i, k)) ?? NoGt;
                    evalImgs[(k * A + a) * I + i] = EvaluateImg(imgIds[i], catIds[k], g, ds, ious[(i, k)], p.AreaRanges[a], maxDet, p.IouThresholds);
                }

        // ---- accumulate
        var precision = new double[T, R, K, A, M];
        var recall = new double[T, K, A, M];
        var scores = new double[T, R, K, A, M];
        Fill(precision, -1); Fill(scores, -1);
        for (int t = 0; t < T; t++) for (int k = 0; k < K; k++) for (int a = 0; a < A; a++) for (int m = 0; m < M; m++) recall[t, k, a, m] = -1;

        for (int k = 0; k < K; k++)
            for (int a = 0; a < A; a++)
            {
                var E = new List<CocoImageEvaluation>();
                for (int i = 0; i < I; i++) if (evalImgs[(k * A + a) * I + i] is { } e) E.Add(e);
                if (E.Count == 0) continue;
                int npig = 0;
                foreach (CocoImageEvaluation e in E) foreach (bool ig in e.GroundTruthIgnore) if (!ig) npig++;
                if (npig == 0) continue;

                // every kept detection, images in id order, then sorted by score (stable). The order for a smaller
                // maxDets is this order restricted to the first maxDets of each image (stability keeps it).
                int total = 0;
                foreach (CocoImageEvaluation e in E) total += e.DetectionScores.Length;
                var allScores = new double[total];
                var srcE = new int[total];
                var srcD = new int[total];
                int o = 0;
                for (int ei = 0; ei < E.Count; ei++)
                {
                    double[] sc = E[ei].DetectionScores;
                    for (int d = 0; d < sc.Length; d++, o++) { allScores[o] = sc[d]; srcE[o] = ei; srcD[o] = d; }
                }
                int[] order = PyCompat.ArgsortDescendingStable(allScores);
                var inds = new int[total];
                var tp = new double[total];
                var fp = new double[total];
                var rc = new double[total];
                var pr = new double[total];
                for (int m = 0; m < M; m++)
                {
                    int md = maxDets[m];
                    int nd = 0;
                    foreach (int j in order) if (srcD[j] < md) inds[nd++] = j;
                    for (int t = 0; t < T; t++)
                    {
                        double tpc = 0, fpc = 0;
                        for (int j = 0; j < nd; j++)
                        {
                            int src = inds[j];
                            CocoImageEvaluation e = E[srcE[src]];
                            int d = srcD[src];
                            bool matched = e.DetectionMatch[t, d] >= 0;
                            bool ignored = e.DetectionIgnore[t, d];
                            if (matched && !ignored) tpc++;
                            if (!matched && !ignored) fpc++;
                            tp[j] = tpc; fp[j] = fpc;
                        }
                        for (int j = 0; j < nd; j++)
                        {
                            rc[j] = tp[j] / npig;
                            pr[j] = tp[j] / (fp[j] + tp[j] + PyCompat.Spacing1);
                        }
                        recall[t, k, a, m] = nd > 0 ? rc[nd - 1] : 0;
                        // precision made monotone from the right
                        for (int j = nd - 1; j > 0; j--) if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
                        ReadOnlySpan<double> rcs = rc.AsSpan(0, nd);
                        for (int r = 0; r < R; r++)
                        {
                            int pi = PyCompat.SearchSortedLeft(rcs, p.RecallThresholds[r]);
                            if (pi >= nd)
                            {
                                // pycocotools stops at the first recall point past the end; the rest stay 0
                                for (int rr = r; rr < R; rr++) { precision[t, rr, k, a, m] = 0; scores[t, rr, k, a, m] = 0; }
                                break;
                            }
                            precision[t, r, k, a, m] = pr[pi];
                            scores[t, r, k, a, m] = allScores[inds[pi]];
                        }
                    }
                }
            }

        return new CocoEvalResult(p, _iouType, imgIds, catIds, maxDets, precision, recall, scores, evalImgs);
    }

    private static readonly List<Gt> NoGt = [];

    private CocoEvalImage Image(long id) =>
        _images.TryGetValue(id, out CocoEvalImage? im) ? im : throw new ArgumentException($"Image {id} is not in the ground truth.");

    private double[] SegBbox(CocoEvalSegmentation s, long imageId)
    {
        CocoEvalImage im = Image(imageId);
        return s.ToRle(im.Height, im.Width).ToBbox();
    }

    private static void Add<T>(Dictionary<(int, int), List<T>> d, (int, int) key, T v)
    {
        if (!d.TryGetValue(key, out List<T>? l)) d[key] = l = [];
        l.Add(v);
    }

    private static void Fill(double[,,,,] a, double v)
    {
        for (int i0 = 0; i0 < a.GetLength(0); i0++)
            for (int i1 = 0; i1 < a.GetLength(1); i1++)
                for (int i2 = 0; i2 < a.GetLength(2); i2++)
                    for (int i3 = 0; i3 < a.GetLength(3); i3++)
                        for (int i4 = 0; i4 < a.GetLength(4); i4++) a[i0, i1, i2, i3, i4] = v;
    }

    private static CocoImageEvaluation EvaluateImg(long imgId, long catId, List<Gt> gt0, Dt[] dt, double[,] ious,
        (double Min, double Max) aRng, int maxDet, double[] iouThrs)
    {
        // ground truths outside the area range are ignored; ignored ones go last (stable)
        int G = gt0.Count;
        var ign = new int[G];
        for (int g = 0; g < G; g++) ign[g] = gt0[g].Ignore || gt0[g].Area < aRng.Min || gt0[g].Area > aRng.Max ? 1 : 0;
        int[] gtind = PyCompat.ArgsortStable(ign);
        var gtIds = new long[G];
        var gtIg = new bool[G];
        var iscrowd = new bool[G];
        for (int g = 0; g < G; g++)
        {
            Gt x = gt0[gtind[g]];
            gtIds[g] = x.Id; gtIg[g] = ign[gtind[g]] == 1; iscrowd[g] = x.IsCrowd;
        }
        // detections arrive sorted by score (stable) and cut at the largest maxDets
        int D = Math.Min(dt.Length, maxDet), T = iouThrs.Length;
        var gtm = new int[T, G];
        var dtm = new int[T, D];
        var dtIg = new bool[T, D];
        for (int t = 0; t < T; t++)
        {
            for (int g = 0; g < G; g++) gtm[t, g] = -1;
            for (int d = 0; d < D; d++) dtm[t, d] = -1;
        }
        if (D > 0 && G > 0)
        {
            for (int t = 0; t < T; t++)
            {
                for (int d = 0; d < D; d++)
                {
                    double iou = Math.Min(iouThrs[t], 1 - 1e-10);
                    int m = -1;
                    for (int g = 0; g < G; g++)
                    {
                        // a matched non-crowd ground truth is taken
                        if (gtm[t, g] >= 0 && !iscrowd[g]) continue;
                        // matched to a regular ground truth and reached the ignored ones: stop
                        if (m > -1 && !gtIg[m] && gtIg[g]) break;
                        // IoU >= the best so far (initially the threshold)
                        double v = ious[d, gtind[g]];
                        if (v < iou) continue;
                        iou = v;
                        m = g;
                    }
                    if (m == -1) continue;
                    dtIg[t, d] = gtIg[m];
                    dtm[t, d] = m;
                    gtm[t, m] = d;
                }
            }
        }
        var dtIds = new long[D];
        var dtScores = new double[D];
        for (int d = 0; d < D; d++)
        {
            dtIds[d] = dt[d].Id;
            dtScores[d] = dt[d].Score;
            // unmatched detections outside the area range are ignored
            if (!(dt[d].Area < aRng.Min || dt[d].Area > aRng.Max)) continue;
            for (int t = 0; t < T; t++) if (dtm[t, d] < 0) dtIg[t, d] = true;
        }
        return new CocoImageEvaluation(imgId, catId, aRng, maxDet, dtIds, gtIds, dtScores, gtIg, dtm, gtm, dtIg);
    }
}
