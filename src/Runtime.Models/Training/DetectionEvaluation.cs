using Runtime.Models.Detection;
using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;

namespace Runtime.Models.Training;

/// <summary>Runs a detector over a COCO data set and scores it with the COCO evaluator (box AP, 12 numbers).</summary>
public static class DetectionEvaluation
{
    /// <summary>The COCO ground truth of a data set, as the evaluator reads it.</summary>
    public static CocoGroundTruth GroundTruth(CocoDetection data)
    {
        var file = data.File;
        var images = data.ImageIds.Select(id => file.Image(id)).Select(i => new CocoEvalImage(i.Id, i.Height, i.Width)).ToArray();
        var cats = file.Categories.Select(c => new CocoEvalCategory(c.Id, c.Name)).ToArray();
        var ids = data.ImageIds.ToHashSet();
        var anns = file.Annotations.Where(a => ids.Contains(a.ImageId))
            .Select(a => new CocoEvalAnnotation(a.Id, a.ImageId, a.CategoryId, a.Bbox, a.Area, a.IsCrowd)).ToArray();
        return new CocoGroundTruth(images, cats, anns);
    }

    /// <summary>COCO results of one image's detections: [x, y, w, h] boxes, category ids through <paramref name="categoryOf"/>.</summary>
    public static IEnumerable<CocoEvalDetection> ToCoco(long imageId, DetectionResult d, Func<long, long> categoryOf)
    {
        var boxes = d.Boxes.ToDoubleArray();
        var scores = d.Scores.ToDoubleArray();
        var labels = d.Labels.ToArray<long>();
        for (int k = 0; k < labels.Length; k++)
        {
            double x1 = boxes[4 * k], y1 = boxes[4 * k + 1], x2 = boxes[4 * k + 2], y2 = boxes[4 * k + 3];
            yield return new CocoEvalDetection(imageId, categoryOf(labels[k]), scores[k], [x1, y1, x2 - x1, y2 - y1]);
        }
    }

    /// <summary>
    /// Detections for every image of <paramref name="data"/> (model in eval mode, <paramref name="batchSize"/> images at
    /// a time) and the COCO box evaluation of them. <paramref name="progress"/> receives the images done.
    /// </summary>
    public static (CocoEvalResult Result, List<CocoEvalDetection> Detections) Evaluate(DetectionModel model, CocoDetection data, int batchSize = 4,
        IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        bool wasTraining = model.IsTraining;
        model.Eval();
        var detections = new List<CocoEvalDetection>();
        try
        {
            for (int start = 0; start < data.Count; start += batchSize)
            {
                int n = Math.Min(batchSize, data.Count - start);
                var samples = Enumerable.Range(start, n).Select(data.Get).ToArray();
                try
                {
                    var results = model.Predict(samples.Select(s => s.Image).ToArray());
                    for (int i = 0; i < n; i++)
                    {
                        using var r = results[i];
                        detections.AddRange(ToCoco(samples[i].Target.ImageId, r, label => data.Categories.CategoryIdOf((int)label)));
                    }
                }
                finally
                {
                    foreach (var s in samples) s.Dispose();
                }
                progress?.Report(start + n);
            }
        }
        finally
        {
            model.Train(wasTraining);
        }
        var evaluator = new CocoEvaluator(GroundTruth(data), CocoIouType.Bbox);
        return (evaluator.Evaluate(detections), detections);
    }
}
