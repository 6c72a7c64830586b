using System.Text.Json;
using Runtime.Vision.Evaluation;

namespace Runtime.Vision.Tests.Evaluation;

/// <summary>
/// Random but fixed COCO scenarios evaluated at authoring time by golden/eval/make_eval_goldens.py (a Python
/// restatement of pycocotools' rules); the C# evaluator must reproduce every number bit for bit.
/// </summary>
public class CocoGoldenTests
{
    private static CocoEvalSegmentation? Seg(JsonElement ann, int h, int w)
    {
        if (!ann.TryGetProperty("segmentation", out JsonElement s)) return null;
        if (s.ValueKind == JsonValueKind.Array)
            return CocoEvalSegmentation.FromPolygons(s.EnumerateArray().Select(p => p.EnumerateArray().Select(x => x.GetDouble()).ToArray()).ToArray());
        JsonElement size = s.GetProperty("size");
        int sh = size[0].GetInt32(), sw = size[1].GetInt32();
        JsonElement counts = s.GetProperty("counts");
        return counts.ValueKind == JsonValueKind.String
            ? CocoEvalSegmentation.FromCompressedRle(counts.GetString()!, sh, sw)
            : CocoEvalSegmentation.FromUncompressedRle(counts.EnumerateArray().Select(x => x.GetUInt32()).ToArray(), sh, sw);
    }

    private static double[]? Box(JsonElement e) =>
        e.TryGetProperty("bbox", out JsonElement b) ? b.EnumerateArray().Select(x => x.GetDouble()).ToArray() : null;

    private static (CocoGroundTruth Gt, List<CocoEvalDetection> Dets, JsonElement Expected) Load(string name)
    {
        JsonElement g = GoldenFiles.Load(name);
        JsonElement gt = g.GetProperty("gt");
        var images = gt.GetProperty("images").EnumerateArray()
            .Select(i => new CocoEvalImage(i.GetProperty("id").GetInt64(), i.GetProperty("height").GetInt32(), i.GetProperty("width").GetInt32())).ToList();
        var size = images.ToDictionary(i => i.Id);
        var cats = gt.GetProperty("categories").EnumerateArray().Select(c => new CocoEvalCategory(c.GetProperty("id").GetInt64(), c.GetProperty("name").GetString()!)).ToList();
        var anns = new List<CocoEvalAnnotation>();
        foreach (JsonElement a in gt.GetProperty("annotations").EnumerateArray())
        {
            CocoEvalImage im = size[a.GetProperty("image_id").GetInt64()];
            anns.Add(new CocoEvalAnnotation(a.GetProperty("id").GetInt64(), im.Id, a.GetProperty("category_id").GetInt64(),
                Box(a), a.GetProperty("area").GetDouble(), a.GetProperty("iscrowd").GetInt32() == 1, Seg(a, im.Height, im.Width)));
        }
        var dets = new List<CocoEvalDetection>();
        foreach (JsonElement d in g.GetProperty("dets").EnumerateArray())
        {
            long img = d.GetProperty("image_id").GetInt64();
            CocoEvalImage im = size[img];
            dets.Add(new CocoEvalDetection(img, d.GetProperty("category_id").GetInt64(), d.GetProperty("score").GetDouble(), Box(d), Seg(d, im.Height, im.Width)));
        }
        return (new CocoGroundTruth(images, cats, anns), dets, g.GetProperty("expected"));
    }

    private static void Check(CocoEvalResult r, JsonElement e)
    {
        double[] stats = e.GetProperty("stats").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.Equal(stats, r.Stats);
        foreach (JsonProperty p in e.GetProperty("per_category_ap").EnumerateObject())
            Assert.Equal(p.Value.GetDouble(), r.PerCategoryAP[long.Parse(p.Name)]);

        int T = r.Recall.GetLength(0), K = r.Recall.GetLength(1), A = r.Recall.GetLength(2), M = r.Recall.GetLength(3);
        double[] recall = e.GetProperty("recall").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        double[] psum = e.GetProperty("precision_sum_by_tkam").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        int i = 0;
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                for (int a = 0; a < A; a++)
                    for (int m = 0; m < M; m++, i++)
                    {
                        Assert.Equal(recall[i], r.Recall[t, k, a, m]);
                        var col = new double[r.Precision.GetLength(1)];
                        for (int rr = 0; rr < col.Length; rr++) col[rr] = r.Precision[t, rr, k, a, m];
                        Assert.Equal(psum[i], col.Sum(), 1e-9);
                    }
        double[] p0 = e.GetProperty("precision_t0_k0_a0_m2").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        for (int rr = 0; rr < p0.Length; rr++) Assert.Equal(p0[rr], r.Precision[0, rr, 0, 0, 2]);
        Assert.Equal(e.GetProperty("summary").GetString(), r.Summary());
    }

    [Fact]
    public void BboxScenarioMatchesReference()
    {
        (CocoGroundTruth gt, List<CocoEvalDetection> dets, JsonElement e) = Load("coco_bbox.json");
        CocoEvalResult r = new CocoEvaluator(gt, CocoIouType.Bbox).Evaluate(dets);
        Check(r, e);
    }

    [Fact]
    public void SegmScenarioMatchesReference()
    {
        (CocoGroundTruth gt, List<CocoEvalDetection> dets, JsonElement e) = Load("coco_segm.json");
        CocoEvalResult r = new CocoEvaluator(gt, CocoIouType.Segm).Evaluate(dets);
        Check(r, e);
    }
}
