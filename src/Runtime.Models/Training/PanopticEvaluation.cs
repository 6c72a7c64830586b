using Runtime.Models.Panoptic;
using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;

namespace Runtime.Models.Training;

/// <summary>Runs a MaX-DeepLab model over a COCO panoptic data set and scores it with panopticapi's PQ / SQ / RQ.</summary>
public static class PanopticEvaluation
{
    /// <summary>The evaluator's categories of a data set (category ids, isthing, names).</summary>
    public static IReadOnlyList<PanopticCategory> Categories(CocoPanoptic data) =>
        [.. data.Categories.Categories.Select(c => new PanopticCategory((int)c.Id, c.IsThing ?? true, c.Name))];

    /// <summary>The prediction's segments with dataset category ids (class k is the category of label k + 1).</summary>
    public static IReadOnlyList<PanopticPredSegment> ToCategories(PanopticPrediction p, CategoryMap categories) =>
        [.. p.Segments.Select(s => new PanopticPredSegment(s.Id, (int)categories.CategoryIdOf(s.Class + 1)))];

    /// <summary>PQ of <paramref name="model"/> (put in eval mode here) on the first <paramref name="limit"/> images (all by default).</summary>
    public static PanopticResult Evaluate(MaxDeepLab model, CocoPanoptic data, int? limit = null, int batchSize = 4, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        model.Eval();
        var evaluator = new PanopticEvaluator(Categories(data));
        int n = Math.Min(limit ?? data.Count, data.Count);
        var device = model.Memory.Device;
        for (int start = 0; start < n; start += batchSize)
        {
            var samples = Enumerable.Range(start, Math.Min(batchSize, n - start)).Select(data.Get).ToArray();
            try
            {
                using var scope = new TensorScope();
                var images = samples.Select(s => s.Image.To(device)).ToArray();
                var predictions = model.Predict(images);
                for (int i = 0; i < samples.Length; i++)
                {
                    var s = samples[i];
                    var p = predictions[i];
                    var gt = s.Segments.Select(g => new PanopticGtSegment((int)g.Id, (int)g.CategoryId, g.IsCrowd, (long)g.Area)).ToArray();
                    evaluator.Add(new PanopticImage(s.Height, s.Width, s.SegmentIds.ToArray<int>(), gt, p.Ids, ToCategories(p, data.Categories), s.ImageId));
                }
            }
            finally
            {
                foreach (var s in samples) s.Dispose();
            }
            progress?.Invoke(Math.Min(start + batchSize, n));
        }
        return evaluator.Compute();
    }
}
