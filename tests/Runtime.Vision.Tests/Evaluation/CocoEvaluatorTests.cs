using Runtime.Vision.Evaluation;

namespace Runtime.Vision.Tests.Evaluation;

/// <summary>Hand-built COCO cases; expected numbers derived by hand from pycocotools' rules (see comments).</summary>
public class CocoEvaluatorTests
{
    private const double Tol = 1e-12;

    private static CocoEvalAnnotation Box(long id, long img, long cat, double x, double y, double w, double h, bool crowd = false, double? area = null) =>
        new(id, img, cat, [x, y, w, h], area ?? w * h, crowd);

    private static CocoEvalDetection Det(long img, long cat, double score, double x, double y, double w, double h) =>
        new(img, cat, score, [x, y, w, h]);

    private static CocoGroundTruth Gt(IEnumerable<CocoEvalAnnotation> anns, long[]? images = null, long[]? cats = null, int size = 400) =>
        new((images ?? [1]).Select(i => new CocoEvalImage(i, size, size)).ToList(),
            (cats ?? [1]).Select(c => new CocoEvalCategory(c)).ToList(),
            anns.ToList());

    private static CocoEvalResult Eval(CocoGroundTruth gt, IEnumerable<CocoEvalDetection> dets, CocoIouType type = CocoIouType.Bbox) =>
        new CocoEvaluator(gt, type).Evaluate(dets);

    [Fact]
    public void PerfectDetectionsGiveApOne()
    {
        // cat 1 in image 1: a small (10x10) and a large (100x100) object; cat 2 in image 2: a medium (50x50) one
        CocoGroundTruth gt = Gt([
            Box(1, 1, 1, 0, 0, 10, 10), Box(2, 1, 1, 100, 100, 100, 100), Box(3, 2, 2, 50, 50, 50, 50)],
            images: [1, 2], cats: [1, 2]);
        CocoEvalResult r = Eval(gt, [
            Det(1, 1, 0.9, 0, 0, 10, 10), Det(1, 1, 0.8, 100, 100, 100, 100), Det(2, 2, 0.7, 50, 50, 50, 50)]);
        // precision is tp / (tp + fp + eps) = 1/(1+2.2e-16): 1 within rounding
        foreach (int i in new[] { 0, 1, 2, 3, 4, 5 }) Assert.Equal(1.0, r.Stats[i], Tol);
        // maxDets=1: cat 1 finds 1 of its 2 objects, cat 2 all: mean(0.5, 1) over thresholds = 0.75
        Assert.Equal(0.75, r.AR1, Tol);
        foreach (int i in new[] { 7, 8, 9, 10, 11 }) Assert.Equal(1.0, r.Stats[i], Tol);
        Assert.Equal(1.0, r.PerCategoryAP[1], Tol);
        Assert.Equal(1.0, r.PerCategoryAP[2], Tol);
        Assert.Equal(0.9999999999999998, r.Precision[0, 0, 1, 0, 2]);   // cat 2: one TP, 1/(1+eps)
    }

    [Fact]
    public void FalsePositiveRankedAboveTruePositiveHalvesPrecision()
    {
        CocoGroundTruth gt = Gt([Box(1, 1, 1, 0, 0, 10, 10)]);
        // FP (0.9) then TP (0.8): tp = [0,1], fp = [1,1] -> precision [0, 0.5] -> monotone 0.5 everywhere
        CocoEvalResult r = Eval(gt, [Det(1, 1, 0.9, 50, 50, 10, 10), Det(1, 1, 0.8, 0, 0, 10, 10)]);
        Assert.Equal(0.5, r.AP, Tol);
        Assert.Equal(0.5, r.AP50, Tol);
        Assert.Equal(0.5, r.AP75, Tol);
        Assert.Equal(0.0, r.AR1);        // only the FP is kept
        Assert.Equal(1.0, r.AR10);
        Assert.Equal(0.5, r.Precision[0, 100, 0, 0, 2]);

        // reversed ranking: precision 1 at recall 1
        CocoEvalResult r2 = Eval(gt, [Det(1, 1, 0.8, 50, 50, 10, 10), Det(1, 1, 0.9, 0, 0, 10, 10)]);
        Assert.Equal(1.0, r2.AP, Tol);
        Assert.Equal(1.0, r2.AR1);
    }

    [Fact]
    public void DetectionsOnCrowdAreIgnoredAndCrowdIsNotCounted()
    {
        CocoGroundTruth gt = Gt([
            Box(1, 1, 1, 0, 0, 20, 20),
            Box(2, 1, 1, 50, 50, 40, 40, crowd: true)]);
        // two detections inside the crowd box, scored above the true positive: IoU against a crowd region uses the
        // detection's area as union (100/100 = 1), so both match it (a crowd can be matched repeatedly) and are ignored
        CocoEvalResult r = Eval(gt, [
            Det(1, 1, 0.9, 0, 0, 20, 20), Det(1, 1, 0.95, 55, 55, 10, 10), Det(1, 1, 0.85, 60, 60, 10, 10)]);
        Assert.Equal(1.0, r.AP, Tol);
        Assert.Equal(1.0, r.AR100, Tol);   // recall over the single non-crowd object

        CocoImageEvaluation e = r.EvalImages[0]!;          // category 1, area "all", image 1
        Assert.Equal(new long[] { 2, 1, 3 }, e.DetectionIds);   // score order
        Assert.Equal(new long[] { 1, 2 }, e.GroundTruthIds);
        Assert.Equal(new[] { false, true }, e.GroundTruthIgnore);
        for (int t = 0; t < 10; t++)
        {
            Assert.Equal(1, e.DetectionMatch[t, 0]);   // the crowd
            Assert.Equal(0, e.DetectionMatch[t, 1]);
            Assert.Equal(1, e.DetectionMatch[t, 2]);   // the crowd again
            Assert.True(e.DetectionIgnore[t, 0]);
            Assert.False(e.DetectionIgnore[t, 1]);
            Assert.True(e.DetectionIgnore[t, 2]);
        }

        // without the crowd flag the same detections are false positives ranked first
        CocoGroundTruth plain = Gt([Box(1, 1, 1, 0, 0, 20, 20), Box(2, 1, 1, 50, 50, 40, 40)]);
        Assert.True(Eval(plain, [Det(1, 1, 0.9, 0, 0, 20, 20), Det(1, 1, 0.95, 55, 55, 10, 10)]).AP < 0.5);
    }

    [Fact]
    public void RegularGroundTruthIsPreferredOverCrowd()
    {
        // the detection overlaps a regular object (IoU 0.6) and lies inside a crowd region (IoU 1 by detection area):
        // regular ground truths come first and the search stops at the first ignored one once a regular match is made
        CocoGroundTruth gt = Gt([
            Box(1, 1, 1, 0, 0, 100, 100, crowd: true),
            Box(2, 1, 1, 0, 0, 10, 10)]);
        CocoEvalResult r = Eval(gt, [Det(1, 1, 0.9, 0, 0, 10, 6)]);
        CocoImageEvaluation e = r.EvalImages[0]!;
        Assert.Equal(new long[] { 2, 1 }, e.GroundTruthIds);   // ignored (crowd) last
        Assert.Equal(0, e.DetectionMatch[0, 0]);                // t = 0.50: the regular object
        Assert.False(e.DetectionIgnore[0, 0]);
        Assert.Equal(1, e.DetectionMatch[5, 0]);                // t = 0.75 > 0.6: falls through to the crowd
        Assert.True(e.DetectionIgnore[5, 0]);
        // thresholds 0.50..0.60 are true positives (3 of 10); the rest have no counted detection -> precision 0
        Assert.Equal(0.3, r.AP, Tol);
    }

    [Fact]
    public void AreaRangesUseInclusiveBoundsOnGroundTruthArea()
    {
        // gt1 area 1024 (= 32^2: both small and medium), gt2 area 9216 (= 96^2: both medium and large), gt3 area 900
        CocoGroundTruth gt = Gt([
            Box(1, 1, 1, 0, 0, 32, 32), Box(2, 1, 1, 100, 100, 96, 96), Box(3, 1, 1, 0, 200, 30, 30)]);
        CocoEvalResult r = Eval(gt, [
            Det(1, 1, 0.99, 300, 0, 40, 50),   // FP, area 2000: medium only
            Det(1, 1, 0.9, 0, 0, 32, 32),
            Det(1, 1, 0.8, 100, 100, 96, 96),
            Det(1, 1, 0.7, 0, 200, 30, 30)]);
        // all: FP, TP, TP, TP -> precision [0, .5, 2/3, .75] -> monotone .75
        Assert.Equal(0.75, r.AP, Tol);
        // small: gt1 and gt3 count; the FP is outside the range and unmatched -> ignored; d2 matches gt2 (ignored)
        Assert.Equal(1.0, r.APs, Tol);
        // medium: gt1 and gt2 count, gt3 (900) is ignored and so is d3 matched to it; FP counts: [0, 1/2, 2/3] -> 2/3
        Assert.Equal(2.0 / 3.0, r.APm, Tol);
        // large: only gt2; the FP (2000 < 9216) is ignored, d1 matched to an ignored gt
        Assert.Equal(1.0, r.APl, Tol);
        Assert.Equal(1.0, r.ARs);
        Assert.Equal(1.0, r.ARm);
        Assert.Equal(1.0, r.ARl);

        // area 9216 lies in medium and large, 1024 in small and medium
        CocoImageEvaluation small = r.EvalImages[1]!, medium = r.EvalImages[2]!, large = r.EvalImages[3]!;
        Assert.Equal(new long[] { 1, 3, 2 }, small.GroundTruthIds);
        Assert.Equal(new[] { false, false, true }, small.GroundTruthIgnore);
        Assert.Equal(new[] { false, false, true }, medium.GroundTruthIgnore);   // order 1, 2, 3
        Assert.Equal(new long[] { 1, 2, 3 }, medium.GroundTruthIds);
        Assert.Equal(new long[] { 2, 1, 3 }, large.GroundTruthIds);
        Assert.Equal(new[] { false, true, true }, large.GroundTruthIgnore);
        Assert.True(small.DetectionIgnore[0, 0]);    // unmatched FP outside the small range
        Assert.False(medium.DetectionIgnore[0, 0]);  // inside the medium range
    }

    [Fact]
    public void GroundTruthAreaFieldDecidesTheRangeNotTheBox()
    {
        // a 40x40 box whose stored area is 500: small
        CocoGroundTruth gt = Gt([Box(1, 1, 1, 0, 0, 40, 40, area: 500)]);
        CocoEvalResult r = Eval(gt, [Det(1, 1, 0.9, 0, 0, 40, 40)]);
        Assert.Equal(1.0, r.APs, Tol);
        Assert.Equal(-1.0, r.APm);
        Assert.Equal(-1.0, r.APl);
    }

    [Fact]
    public void MaxDetsTruncatesPerImage()
    {
        // image 1: 11 FPs above the TP (rank 12); image 2: 9 FPs above the TP (rank 10)
        var anns = new List<CocoEvalAnnotation> { Box(1, 1, 1, 0, 0, 10, 10), Box(2, 2, 1, 0, 0, 10, 10) };
        var dets = new List<CocoEvalDetection>();
        for (int i = 0; i < 11; i++) dets.Add(Det(1, 1, 0.99 - 0.01 * i, 20 + 15 * i, 100, 10, 10));
        dets.Add(Det(1, 1, 0.1, 0, 0, 10, 10));
        for (int i = 0; i < 9; i++) dets.Add(Det(2, 1, 0.99 - 0.01 * i, 20 + 15 * i, 100, 10, 10));
        dets.Add(Det(2, 1, 0.1, 0, 0, 10, 10));
        CocoEvalResult r = Eval(Gt(anns, images: [1, 2]), dets);
        Assert.Equal(0.0, r.AR1);
        Assert.Equal(0.5, r.AR10);      // image 2's TP is its 10th detection, image 1's its 12th
        Assert.Equal(1.0, r.AR100);
        // maxDets 100: 20 FPs then 2 TPs (tied score 0.1, image 1 first): precision at recall 1 = 2/22
        Assert.Equal(2.0 / 22.0, r.AP, Tol);

        // single image: TP at rank 12 of 12 -> AP = 1/12
        CocoEvalResult r1 = Eval(Gt([Box(1, 1, 1, 0, 0, 10, 10)]), dets.Take(12));
        Assert.Equal(1.0 / 12.0, r1.AP, Tol);
        Assert.Equal(0.0, r1.AR10);
    }

    [Fact]
    public void DetectionsPastOneHundredPerImageAreDropped()
    {
        var dets = new List<CocoEvalDetection>();
        for (int i = 0; i < 100; i++) dets.Add(Det(1, 1, 0.9, 200, 200, 10, 10));
        dets.Add(Det(1, 1, 0.5, 0, 0, 10, 10));   // 101st by score
        CocoEvalResult r = Eval(Gt([Box(1, 1, 1, 0, 0, 10, 10)]), dets);
        Assert.Equal(0.0, r.AR100);
        Assert.Equal(0.0, r.AP);
        Assert.Equal(100, r.EvalImages[0]!.DetectionIds.Length);
    }

    [Fact]
    public void TiedScoresKeepInputOrder()
    {
        CocoGroundTruth gt = Gt([Box(1, 1, 1, 0, 0, 10, 10)]);
        // equal scores: FP given first stays first -> 0.5; TP first -> 1
        Assert.Equal(0.5, Eval(gt, [Det(1, 1, 0.5, 50, 50, 10, 10), Det(1, 1, 0.5, 0, 0, 10, 10)]).AP, Tol);
        Assert.Equal(1.0, Eval(gt, [Det(1, 1, 0.5, 0, 0, 10, 10), Det(1, 1, 0.5, 50, 50, 10, 10)]).AP, Tol);

        // two identical detections of one object: the first in input order takes it, the second is a FP
        CocoEvalResult dup = Eval(gt, [Det(1, 1, 0.5, 0, 0, 10, 10), Det(1, 1, 0.5, 0, 0, 10, 10)]);
        Assert.Equal(new long[] { 1, 2 }, dup.EvalImages[0]!.DetectionIds);
        Assert.Equal(0, dup.EvalImages[0]!.DetectionMatch[0, 0]);
        Assert.Equal(-1, dup.EvalImages[0]!.DetectionMatch[0, 1]);
        Assert.Equal(0, dup.EvalImages[0]!.GroundTruthMatch[0, 0]);
    }

    [Fact]
    public void TiedScoresAcrossImagesFollowSortedImageIds()
    {
        // the TP lives in image 7, a FP with the same score in image 3: images are taken in sorted id order
        // (whatever the order of the image list), so the FP ranks first -> AP 0.5
        CocoGroundTruth gt = Gt([Box(1, 7, 1, 0, 0, 10, 10)], images: [7, 3]);
        Assert.Equal(0.5, Eval(gt, [Det(7, 1, 0.5, 0, 0, 10, 10), Det(3, 1, 0.5, 0, 0, 10, 10)]).AP, Tol);
        CocoGroundTruth gt2 = Gt([Box(1, 3, 1, 0, 0, 10, 10)], images: [7, 3]);
        Assert.Equal(1.0, Eval(gt2, [Det(7, 1, 0.5, 0, 0, 10, 10), Det(3, 1, 0.5, 0, 0, 10, 10)]).AP, Tol);
    }

    [Fact]
    public void CategoriesWithoutGroundTruthAreMinusOneAndLeftOutOfTheMean()
    {
        CocoGroundTruth gt = Gt([Box(1, 1, 1, 0, 0, 10, 10)], cats: [1, 2]);
        CocoEvalResult r = Eval(gt, [Det(1, 1, 0.9, 0, 0, 10, 10), Det(1, 2, 0.95, 0, 0, 10, 10), Det(1, 3, 0.99, 0, 0, 10, 10)]);
        Assert.Equal(1.0, r.AP, Tol);
        Assert.Equal(1.0, r.PerCategoryAP[1], Tol);
        Assert.Equal(-1.0, r.PerCategoryAP[2]);
        Assert.False(r.PerCategoryAP.ContainsKey(3));   // not a ground-truth category: dropped
        Assert.Equal(-1.0, r.Precision[0, 0, 1, 0, 2]);
        Assert.Equal(-1.0, r.Recall[0, 1, 0, 2]);
        Assert.Equal(-1.0, r.APm);   // no medium objects at all
        Assert.Equal(new long[] { 1, 2 }, r.CategoryIds);
    }

    [Fact]
    public void IouExactlyAtThresholdMatches()
    {
        CocoGroundTruth gt = Gt([Box(1, 1, 1, 0, 0, 10, 10)]);
        // IoU 50/100 = 0.5: a match at 0.50 only -> AP = 1/10, AP50 = 1, AP75 = 0
        CocoEvalResult half = Eval(gt, [Det(1, 1, 0.9, 0, 0, 10, 5)]);
        Assert.Equal(1.0, half.AP50, Tol);
        Assert.Equal(0.0, half.AP75);
        Assert.Equal(0.1, half.AP, Tol);
        // IoU 75/100 = 0.75: matches 0.50 .. 0.75 (6 thresholds)
        CocoEvalResult q = Eval(gt, [Det(1, 1, 0.9, 0, 0, 10, 7.5)]);
        Assert.Equal(1.0, q.AP75, Tol);
        Assert.Equal(0.6, q.AP, Tol);
        Assert.Equal(0.6, q.AR100, Tol);
        // just under 0.5: nothing
        Assert.Equal(0.0, Eval(gt, [Det(1, 1, 0.9, 0, 0, 10, 4.99)]).AP50);
    }

    [Fact]
    public void ThresholdsAreNumpyLinspace()
    {
        double[] t = new CocoEvalParams().IouThresholds;
        Assert.Equal(10, t.Length);
        Assert.Equal(0.5, t[0]);
        Assert.Equal(0.75, t[5]);
        Assert.Equal(0.8999999999999999, t[8]);   // np.linspace(.5, .95, 10)[8]
        Assert.Equal(0.95, t[9]);
        double[] r = new CocoEvalParams().RecallThresholds;
        Assert.Equal(101, r.Length);
        Assert.Equal(7 * 0.01, r[7]);
        Assert.Equal(1.0, r[100]);
    }

    [Fact]
    public void SegmWithPolygonsAndRle()
    {
        // 20x20 image; gt 1: polygon square (2,2)-(12,12) = 100 px; gt 2: uncompressed RLE of columns 14..17, rows 0..9 (40 px)
        const int H = 20, W = 20;
        var m2 = new byte[H * W];
        for (int x = 14; x < 18; x++) for (int y = 0; y < 10; y++) m2[x * H + y] = 1;
        Rle rle2 = Rle.Encode(m2, H, W);
        var gt = new CocoGroundTruth([new CocoEvalImage(1, H, W)], [new CocoEvalCategory(1)],
        [
            new CocoEvalAnnotation(1, 1, 1, Area: 100, Segmentation: CocoEvalSegmentation.FromPolygons([2, 2, 2, 12, 12, 12, 12, 2])),
            new CocoEvalAnnotation(2, 1, 1, Area: 40, Segmentation: CocoEvalSegmentation.FromUncompressedRle(rle2.Counts, H, W)),
        ]);
        // d1: the square's top half (rows 2..6) as a compressed RLE -> IoU 50/100 = 0.5 exactly
        var m1 = new byte[H * W];
        for (int x = 2; x < 12; x++) for (int y = 2; y < 7; y++) m1[x * H + y] = 1;
        string c1 = Rle.Encode(m1, H, W).ToCompressedString();
        // d2: gt 2 exactly, as a polygon (columns 14..17, rows 0..9)
        var dets = new[]
        {
            new CocoEvalDetection(1, 1, 0.9, Segmentation: CocoEvalSegmentation.FromCompressedRle(c1, H, W)),
            new CocoEvalDetection(1, 1, 0.8, Segmentation: CocoEvalSegmentation.FromPolygons([14, 0, 14, 10, 18, 10, 18, 0])),
        };
        CocoEvalResult r = new CocoEvaluator(gt, CocoIouType.Segm).Evaluate(dets);
        // t = 0.5: both TP -> 1. t > 0.5: d1 FP ranked first, d2 TP -> precision [0, .5] -> 0.5 at recall <= 0.5, 0 beyond
        Assert.Equal(1.0, r.AP50, Tol);
        double expectedT = 0.5 * 51 / 101;   // recall points 0.00..0.50 -> 0.5, 0.51..1.00 -> 0
        Assert.Equal((1.0 + 9 * expectedT) / 10, r.AP, 1e-12);
        Assert.Equal(0.5, r.Recall[5, 0, 0, 2]);
        Assert.Equal(1.0, r.Recall[0, 0, 0, 2]);
        // the same boxes evaluated as bbox: box of d1 = (2,2,10,5) vs (2,2,10,10): IoU 0.5 too
        CocoEvalResult rb = new CocoEvaluator(gt, CocoIouType.Bbox).Evaluate(dets);
        Assert.Equal(1.0, rb.AP50, Tol);
    }

    [Fact]
    public void SegmCrowdRleAndBoxOnlyDetections()
    {
        const int H = 30, W = 30;
        var crowd = new byte[H * W];
        for (int x = 10; x < 30; x++) for (int y = 10; y < 30; y++) crowd[x * H + y] = 1;
        var gt = new CocoGroundTruth([new CocoEvalImage(1, H, W)], [new CocoEvalCategory(1)],
        [
            new CocoEvalAnnotation(1, 1, 1, Area: 25, Segmentation: CocoEvalSegmentation.FromPolygons([0, 0, 0, 5, 5, 5, 5, 0])),
            new CocoEvalAnnotation(2, 1, 1, Area: 400, IsCrowd: true, Segmentation: CocoEvalSegmentation.FromUncompressedRle(Rle.Encode(crowd, H, W).Counts, H, W)),
        ]);
        // a box-only detection in segm mode is rasterised as its rectangle (pycocotools loadRes)
        CocoEvalResult r = new CocoEvaluator(gt, CocoIouType.Segm).Evaluate([
            new CocoEvalDetection(1, 1, 0.99, Bbox: [12, 12, 6, 6]),      // inside the crowd: ignored
            new CocoEvalDetection(1, 1, 0.5, Bbox: [0, 0, 5, 5]),
        ]);
        Assert.Equal(1.0, r.AP, Tol);
        Assert.True(r.EvalImages[0]!.DetectionIgnore[9, 0]);
    }

    [Fact]
    public void IgnoreFlagOnlyWithOption()
    {
        var anns = new[] { new CocoEvalAnnotation(1, 1, 1, [0, 0, 10, 10], 100, Ignore: true), Box(2, 1, 1, 50, 50, 10, 10) };
        CocoGroundTruth gt = Gt(anns);
        CocoEvalDetection[] dets = [Det(1, 1, 0.9, 50, 50, 10, 10)];
        // pycocotools overwrites 'ignore' with 'iscrowd': gt 1 counts and is missed
        Assert.Equal(0.5, Eval(gt, dets).AR100, Tol);
        CocoEvalResult honoured = new CocoEvaluator(gt, CocoIouType.Bbox, new CocoEvalParams { HonorIgnoreFlag = true }).Evaluate(dets);
        Assert.Equal(1.0, honoured.AR100, Tol);
    }

    [Fact]
    public void DetectionOnUnknownImageIsRejected()
    {
        Assert.Throws<ArgumentException>(() => Eval(Gt([Box(1, 1, 1, 0, 0, 10, 10)]), [Det(5, 1, 0.9, 0, 0, 10, 10)]));
    }

    [Fact]
    public void SummaryLinesMatchPycocotoolsFormat()
    {
        CocoGroundTruth gt = Gt([Box(1, 1, 1, 0, 0, 10, 10)]);
        string s = Eval(gt, [Det(1, 1, 0.9, 50, 50, 10, 10), Det(1, 1, 0.8, 0, 0, 10, 10)]).Summary();
        string[] lines = s.TrimEnd('\n').Split('\n');
        Assert.Equal(12, lines.Length);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.500", lines[0]);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.500", lines[1]);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = 0.500", lines[2]);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 0.500", lines[3]);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000", lines[4]);
        Assert.Equal(" Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000", lines[5]);
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.000", lines[6]);
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ] = 1.000", lines[7]);
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000", lines[8]);
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 1.000", lines[9]);
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000", lines[10]);
        Assert.Equal(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000", lines[11]);
    }

    [Fact]
    public void NoDetectionsGiveZeros()
    {
        CocoEvalResult r = Eval(Gt([Box(1, 1, 1, 0, 0, 10, 10)]), []);
        Assert.Equal(0.0, r.AP);
        Assert.Equal(0.0, r.AR100);
    }
}
