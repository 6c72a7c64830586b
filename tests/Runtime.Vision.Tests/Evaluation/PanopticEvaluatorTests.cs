using System.Text.Json;
using Runtime.Vision.Evaluation;

namespace Runtime.Vision.Tests.Evaluation;

/// <summary>Hand-built panoptic cases (1-row id maps) with expectations derived from panopticapi's rules.</summary>
public class PanopticEvaluatorTests
{
    private const double Tol = 1e-12;

    private static readonly PanopticCategory[] Cats =
    [
        new(1, IsThing: true), new(2, IsThing: false), new(3, IsThing: true),
    ];

    private static PanopticGtSegment G(int id, int cat, bool crowd = false) => new(id, cat, crowd);

    private static PanopticPredSegment P(int id, int cat) => new(id, cat);

    private static PanopticImage Row(int[] gt, PanopticGtSegment[] gs, int[] pred, PanopticPredSegment[] ps) =>
        new(1, gt.Length, gt, gs, pred, ps);

    private static PanopticResult Eval(params PanopticImage[] images) => PanopticEvaluator.Evaluate(Cats, images);

    [Fact]
    public void VoidPixelsAreLeftOutOfTheUnion()
    {
        // gt segment 1 (cat 1) on pixels 0..3, pixels 4..7 void; prediction 7 (cat 1) on pixels 0..5:
        // union = 6 + 4 - 4 - 2 (prediction on void) = 4 -> IoU 1 (it would be 4/6 with the void part counted)
        PanopticResult r = Eval(Row(
            [1, 1, 1, 1, 0, 0, 0, 0], [G(1, 1)],
            [7, 7, 7, 7, 7, 7, 0, 0], [P(7, 1)]));
        Assert.Equal(1.0, r.PerClass[1].Pq);
        Assert.Equal(1, r.Stats[1].Tp);
        Assert.Equal(0, r.Stats[1].Fp);
        Assert.Equal(1.0, r.All.Pq);
        Assert.Equal(1, r.All.N);
    }

    [Fact]
    public void IouOfExactlyHalfIsNotAMatch()
    {
        // gt 1 (cat 1) = pixels 0..3, gt 2 (cat 2) = pixels 4..7; prediction 7 (cat 1) covers all 8: IoU 4/8 = 0.5
        PanopticResult r = Eval(Row(
            [1, 1, 1, 1, 2, 2, 2, 2], [G(1, 1), G(2, 2)],
            [7, 7, 7, 7, 7, 7, 7, 7], [P(7, 1)]));
        Assert.Equal(0, r.Stats[1].Tp);
        Assert.Equal(1, r.Stats[1].Fp);
        Assert.Equal(1, r.Stats[1].Fn);
        Assert.Equal(1, r.Stats[2].Fn);
        Assert.Equal(0.0, r.All.Pq);
        Assert.Equal(2, r.All.N);

        // one pixel less: IoU 4/7 > 0.5 is a match; the leftover pixel (cat 2, 1 px) is a FP against gt 2 (IoU 1/4)
        PanopticResult r2 = Eval(Row(
            [1, 1, 1, 1, 2, 2, 2, 2], [G(1, 1), G(2, 2)],
            [7, 7, 7, 7, 7, 7, 7, 8], [P(7, 1), P(8, 2)]));
        Assert.Equal(1, r2.Stats[1].Tp);
        Assert.Equal(4.0 / 7.0, r2.Stats[1].Iou);
        Assert.Equal(4.0 / 7.0, r2.PerClass[1].Pq, Tol);
        Assert.Equal(4.0 / 7.0, r2.PerClass[1].Sq, Tol);
        Assert.Equal(1.0, r2.PerClass[1].Rq);
        Assert.Equal(1, r2.Stats[2].Fp);
        Assert.Equal(1, r2.Stats[2].Fn);
    }

    [Fact]
    public void CrowdRegionsAbsorbPredictionsOfTheirCategory()
    {
        // gt: 1 = crowd of cat 1 (pixels 0..3), 2 = stuff cat 2 (4..7), 3 = thing cat 3 (8..11)
        // pred: 7 (cat 1) on 0..2: no match (crowd), but 3/3 of it lies on the crowd of cat 1 -> not a FP;
        //       8 (cat 2) on 3..7: IoU 4/5 = 0.8 with gt 2; 9 (cat 3) = gt 3 exactly
        PanopticImage im = Row(
            [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3], [G(1, 1, crowd: true), G(2, 2), G(3, 3)],
            [7, 7, 7, 8, 8, 8, 8, 8, 9, 9, 9, 9], [P(7, 1), P(8, 2), P(9, 3)]);
        PanopticResult r = Eval(im);
        Assert.Equal(0, r.Stats[1].Tp + r.Stats[1].Fp + r.Stats[1].Fn);   // the crowd is no FN either
        Assert.Equal(0.8, r.PerClass[2].Pq, Tol);
        Assert.Equal(1.0, r.PerClass[3].Pq);
        Assert.Equal(0, r.PerClass[1].N);                                  // skipped
        Assert.Equal(0.9, r.All.Pq, Tol);
        Assert.Equal(0.9, r.All.Sq, Tol);
        Assert.Equal(1.0, r.All.Rq);
        Assert.Equal(2, r.All.N);
        Assert.Equal(1.0, r.Things.Pq);
        Assert.Equal(1, r.Things.N);
        Assert.Equal(0.8, r.Stuff.Pq, Tol);
        Assert.Equal(1, r.Stuff.N);

        // the same prediction labelled cat 3: the crowd belongs to another category, so it is a FP of cat 3
        PanopticResult r2 = Eval(im with { PredSegments = [P(7, 3), P(8, 2), P(9, 3)] });
        Assert.Equal(1, r2.Stats[3].Fp);
        Assert.Equal(1, r2.Stats[3].Tp);
        Assert.Equal(1.0 / 1.5, r2.PerClass[3].Pq, Tol);
    }

    [Fact]
    public void FalsePositiveMostlyOnVoidIsNotCounted()
    {
        // gt 1 (cat 1) on 0..3, void on 4..7. pred 7 (cat 1) on 0..2 -> IoU 3/4 (TP)
        // pred 8 (cat 2) on 3..4: half on void (1/2, not > 0.5) -> FP; pred 9 (cat 2) on 5..7: all void -> not a FP
        PanopticResult r = Eval(Row(
            [1, 1, 1, 1, 0, 0, 0, 0], [G(1, 1)],
            [7, 7, 7, 8, 8, 9, 9, 9], [P(7, 1), P(8, 2), P(9, 2)]));
        Assert.Equal(0.75, r.PerClass[1].Pq);
        Assert.Equal(1, r.Stats[2].Fp);
        Assert.Equal(0.0, r.PerClass[2].Pq);
        Assert.Equal(0.375, r.All.Pq);
        Assert.Equal(2, r.All.N);
        Assert.Equal(0.75, r.Things.Pq);
        Assert.Equal(0.0, r.Stuff.Pq);
    }

    [Fact]
    public void ThingsAndStuffAreAveragedSeparately()
    {
        // cat 1 (thing): TP IoU 1; cat 3 (thing): FN; cat 2 (stuff): TP IoU 2/3
        PanopticResult r = Eval(Row(
            [1, 1, 3, 3, 2, 2, 2, 0], [G(1, 1), G(3, 3), G(2, 2)],
            [5, 5, 6, 6, 6, 4, 4, 0], [P(5, 1), P(6, 2), P(4, 2)]));
        // pred 6 (cat 2) on 2..4: gt 3 is cat 3 (no match); with gt 2: inter 1 -> IoU 1/(3+3-1) = 0.2; a FP of cat 2
        // pred 4 (cat 2) on 5..6: IoU 2/3 with gt 2
        Assert.Equal(1, r.Stats[3].Fn);
        Assert.Equal(1, r.Stats[2].Tp);
        Assert.Equal(1, r.Stats[2].Fp);
        double pq2 = (2.0 / 3.0) / 1.5;
        Assert.Equal(pq2, r.PerClass[2].Pq, Tol);
        Assert.Equal((1.0 + 0.0) / 2, r.Things.Pq, Tol);
        Assert.Equal(pq2, r.Stuff.Pq, Tol);
        Assert.Equal((1.0 + pq2 + 0.0) / 3, r.All.Pq, Tol);
        Assert.Equal(2, r.Things.N);
        Assert.Equal(1, r.Stuff.N);
    }

    [Fact]
    public void StoredGroundTruthAreaIsUsed()
    {
        // panopticapi takes the gt area from segments_info: a stored area of 6 instead of 4 gives IoU 4/6
        PanopticResult r = Eval(Row(
            [1, 1, 1, 1, 0, 0], [new PanopticGtSegment(1, 1, Area: 6)],
            [7, 7, 7, 7, 0, 0], [P(7, 1)]));
        Assert.Equal(4.0 / 6.0, r.Stats[1].Iou);
    }

    [Fact]
    public void AccumulatesOverImages()
    {
        var e = new PanopticEvaluator(Cats);
        e.Add(Row([1, 1], [G(1, 1)], [5, 5], [P(5, 1)]));
        e.Add(Row([1, 1], [G(1, 1)], [5, 6], [P(5, 1), P(6, 1)]));
        PanopticResult r = e.Compute();
        Assert.Equal(1, r.Stats[1].Tp);     // image 2: IoU 1/2 is no match
        Assert.Equal(1, r.Stats[1].Fn);
        Assert.Equal(2, r.Stats[1].Fp);
        Assert.Equal(1.0 / (1 + 1.5), r.PerClass[1].Pq, Tol);
    }

    [Fact]
    public void InconsistentPredictionsAreRejected()
    {
        Assert.Throws<KeyNotFoundException>(() => Eval(Row([1, 1], [G(1, 1)], [5, 6], [P(5, 1)])));
        Assert.Throws<KeyNotFoundException>(() => Eval(Row([1, 1], [G(1, 1)], [5, 5], [P(5, 1), P(6, 1)])));
        Assert.Throws<KeyNotFoundException>(() => Eval(Row([1, 1], [G(1, 1)], [5, 5], [P(5, 42)])));
    }

    [Fact]
    public void RgbIdConversion()
    {
        byte[] rgb = [1, 0, 0, 0, 1, 0, 0, 0, 1, 10, 20, 30];
        int[] ids = PanopticEvaluator.RgbToIds(rgb, 2, 2);
        Assert.Equal(new[] { 1, 256, 65536, 10 + 256 * 20 + 65536 * 30 }, ids);
        Assert.Equal(rgb, PanopticEvaluator.IdsToRgb(ids));
    }

    [Fact]
    public void TableIsPrintedLikePanopticapi()
    {
        PanopticResult r = Eval(Row(
            [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3], [G(1, 1, crowd: true), G(2, 2), G(3, 3)],
            [7, 7, 7, 8, 8, 8, 8, 8, 9, 9, 9, 9], [P(7, 1), P(8, 2), P(9, 3)]));
        string expected =
            "          |    PQ     SQ     RQ     N\n" +
            "--------------------------------------\n" +
            "All       |  90.0   90.0  100.0     2\n" +
            "Things    | 100.0  100.0  100.0     1\n" +
            "Stuff     |  80.0   80.0  100.0     1\n";
        Assert.Equal(expected, r.ToTable());
    }

    [Fact]
    public void GoldenScenarioMatchesReferenceRules()
    {
        JsonElement g = GoldenFiles.Load("panoptic.json");
        PanopticCategory[] cats = g.GetProperty("categories").EnumerateArray()
            .Select(c => new PanopticCategory(c.GetProperty("id").GetInt32(), c.GetProperty("isthing").GetInt32() == 1)).ToArray();
        var images = new List<PanopticImage>();
        foreach (JsonElement im in g.GetProperty("images").EnumerateArray())
        {
            images.Add(new PanopticImage(
                im.GetProperty("height").GetInt32(), im.GetProperty("width").GetInt32(),
                im.GetProperty("gt_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                im.GetProperty("gt_segments").EnumerateArray().Select(s => new PanopticGtSegment(
                    s.GetProperty("id").GetInt32(), s.GetProperty("category_id").GetInt32(),
                    s.GetProperty("iscrowd").GetInt32() == 1, s.GetProperty("area").GetInt64())).ToArray(),
                im.GetProperty("pred_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                im.GetProperty("pred_segments").EnumerateArray().Select(s => new PanopticPredSegment(
                    s.GetProperty("id").GetInt32(), s.GetProperty("category_id").GetInt32())).ToArray()));
        }
        PanopticResult r = PanopticEvaluator.Evaluate(cats, images);
        foreach (JsonProperty p in g.GetProperty("stats").EnumerateObject())
        {
            PanopticCategoryStat s = r.Stats[int.Parse(p.Name)];
            Assert.Equal(p.Value.GetProperty("iou").GetDouble(), s.Iou);
            Assert.Equal(p.Value.GetProperty("tp").GetInt64(), s.Tp);
            Assert.Equal(p.Value.GetProperty("fp").GetInt64(), s.Fp);
            Assert.Equal(p.Value.GetProperty("fn").GetInt64(), s.Fn);
        }
        JsonElement e = g.GetProperty("expected");
        foreach ((string name, PanopticMetrics m) in new[] { ("All", r.All), ("Things", r.Things), ("Stuff", r.Stuff) })
        {
            JsonElement x = e.GetProperty(name);
            Assert.Equal(x.GetProperty("pq").GetDouble(), m.Pq);
            Assert.Equal(x.GetProperty("sq").GetDouble(), m.Sq);
            Assert.Equal(x.GetProperty("rq").GetDouble(), m.Rq);
            Assert.Equal(x.GetProperty("n").GetInt32(), m.N);
        }
        foreach (JsonProperty p in e.GetProperty("per_class").EnumerateObject())
        {
            PanopticMetrics m = r.PerClass[int.Parse(p.Name)];
            Assert.Equal(p.Value.GetProperty("pq").GetDouble(), m.Pq);
            Assert.Equal(p.Value.GetProperty("sq").GetDouble(), m.Sq);
            Assert.Equal(p.Value.GetProperty("rq").GetDouble(), m.Rq);
        }
        Assert.Equal(g.GetProperty("table").GetString(), r.ToTable());
    }
}
