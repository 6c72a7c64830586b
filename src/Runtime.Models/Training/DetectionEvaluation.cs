using Runtime.Models.Detection;
using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;

namespace Runtime.Models.Training;

/// <summary>
/// The COCO scores of a detector on a data set: box AP (12 numbers) always, mask AP for the models that give masks
/// (Mask R-CNN), and the COCO results each was computed from.
/// </summary>
public sealed record DetectionScores(CocoEvalResult Box, CocoEvalResult? Mask, IReadOnlyList<CocoEvalDetection> BoxDetections, IReadOnlyList<CocoEvalDetection> MaskDetections,
    MaskSplitScores? MaskSplit = null);

/// <summary>
/// Mask AP under partial supervision (Mask^X R-CNN's tables): the COCO segm evaluation restricted to the categories
/// of set A (<see cref="MaskClasses"/>, the labels trained with masks) and to the others (set B, boxes only).
/// </summary>
public sealed record MaskSplitScores(IReadOnlyList<int> MaskClasses, CocoEvalResult A, CocoEvalResult B);

/// <summary>Runs a detector over a COCO data set and scores it with the COCO evaluator (bbox, and segm when the model gives masks).</summary>
public static class DetectionEvaluation
{
    /// <summary>
    /// The COCO ground truth of a data set, as the evaluator reads it; with <paramref name="masks"/> each annotation
    /// carries its segmentation as an RLE (an annotation without one is an empty mask, as the data loader reads it).
    /// </summary>
    public static CocoGroundTruth GroundTruth(CocoDetection data, bool masks = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        var file = data.File;
        var images = data.ImageIds.Select(id => file.Image(id)).Select(i => new CocoEvalImage(i.Id, i.Height, i.Width)).ToArray();
        var sizes = images.ToDictionary(i => i.Id);
        var cats = file.Categories.Select(c => new CocoEvalCategory(c.Id, c.Name)).ToArray();
        var anns = file.Annotations.Where(a => sizes.ContainsKey(a.ImageId))
            .Select(a => new CocoEvalAnnotation(a.Id, a.ImageId, a.CategoryId, a.Bbox, a.Area, a.IsCrowd,
                masks ? CocoEvalSegmentation.FromRle(CocoDetection.ToRle(a.Segmentation, sizes[a.ImageId].Height, sizes[a.ImageId].Width)) : null))
            .ToArray();
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
    /// COCO segmentation results of one image's detections (which must carry masks): each mask thresholded at
    /// probability &gt; 0.5 and run-length encoded, no box (as torchvision's references submit them).
    /// </summary>
    public static IEnumerable<CocoEvalDetection> ToCocoSegm(long imageId, DetectionResult d, Func<long, long> categoryOf)
    {
        if (d.Masks == null) throw new ArgumentException("the detections carry no masks", nameof(d));
        var rles = d.MaskRles();
        var scores = d.Scores.ToDoubleArray();
        var labels = d.Labels.ToArray<long>();
        for (int k = 0; k < labels.Length; k++)
            yield return new CocoEvalDetection(imageId, categoryOf(labels[k]), scores[k], Segmentation: CocoEvalSegmentation.FromRle(rles[k]));
    }

    /// <summary>
    /// The segm evaluation of <paramref name="maskDetections"/> restricted to the categories of the labels in
    /// <paramref name="maskClasses"/> (A) and to the other categories (B); an empty side scores -1 (no categories).
    /// </summary>
    public static MaskSplitScores EvaluateMaskSplit(CocoDetection data, IReadOnlyList<CocoEvalDetection> maskDetections, IReadOnlyCollection<int> maskClasses) =>
        EvaluateMaskSplit(data, maskDetections, maskClasses, null);

    private static MaskSplitScores EvaluateMaskSplit(CocoDetection data, IReadOnlyList<CocoEvalDetection> maskDetections, IReadOnlyCollection<int> maskClasses,
        CocoGroundTruth? groundTruth)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(maskDetections);
        ArgumentNullException.ThrowIfNull(maskClasses);
        var map = data.Categories;
        foreach (int l in maskClasses)
            if (l < 1 || l >= map.NumClasses) throw new ArgumentOutOfRangeException(nameof(maskClasses), l, $"mask classes must be labels in 1..{map.NumClasses - 1}");
        var a = maskClasses.Distinct().Order().ToArray();
        var b = map.Categories.Select(c => map.LabelOf(c.Id)).Except(a).Order().ToArray();
        var gt = groundTruth ?? GroundTruth(data, masks: true);
        CocoEvalResult On(IEnumerable<int> labels) =>
            new CocoEvaluator(gt, CocoIouType.Segm, new CocoEvalParams { CategoryIds = labels.Select(map.CategoryIdOf).ToArray() }).Evaluate(maskDetections);
        return new MaskSplitScores(a, On(a), On(b));
    }

    /// <summary>
    /// Detections for every image of <paramref name="data"/> (model in eval mode, <paramref name="batchSize"/> images at
    /// a time: by default 4, or 1 for Mask R-CNN, whose pasted masks take H x W floats per detection) and their COCO
    /// evaluation: boxes, and masks when the model gives them. <paramref name="progress"/> receives the images done.
    /// With <paramref name="maskClasses"/> (default: the model's <see cref="MaskRcnnConfig.MaskClasses"/>, if any) the
    /// masks are also scored on those classes and on the others (<see cref="DetectionScores.MaskSplit"/>).
    /// </summary>
    public static DetectionScores Evaluate(DetectionModel model, CocoDetection data, int? batchSize = null, IProgress<int>? progress = null,
        IReadOnlyCollection<int>? maskClasses = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        int batch = batchSize ?? (model is MaskRcnn ? 1 : 4);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch, nameof(batchSize));
        bool wasTraining = model.IsTraining;
        model.Eval();
        var detections = new List<CocoEvalDetection>();
        var segments = new List<CocoEvalDetection>();
        bool masks = false;
        try
        {
            for (int start = 0; start < data.Count; start += batch)
            {
                int n = Math.Min(batch, data.Count - start);
                var samples = Enumerable.Range(start, n).Select(data.Get).ToArray();
                try
                {
                    var results = model.Predict(samples.Select(s => s.Image).ToArray());
                    for (int i = 0; i < n; i++)
                    {
                        using var r = results[i];
                        long imageId = samples[i].Target.ImageId;
                        detections.AddRange(ToCoco(imageId, r, label => data.Categories.CategoryIdOf((int)label)));
                        if (r.Masks == null) continue;
                        masks = true;
                        segments.AddRange(ToCocoSegm(imageId, r, label => data.Categories.CategoryIdOf((int)label)));
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
        var box = new CocoEvaluator(GroundTruth(data), CocoIouType.Bbox).Evaluate(detections);
        var maskGt = masks || model is MaskRcnn ? GroundTruth(data, masks: true) : null;
        var mask = maskGt != null ? new CocoEvaluator(maskGt, CocoIouType.Segm).Evaluate(segments) : null;
        maskClasses ??= (model.Config as MaskRcnnConfig)?.MaskClasses;
        var split = maskGt != null && maskClasses != null ? EvaluateMaskSplit(data, segments, maskClasses, maskGt) : null;
        return new DetectionScores(box, mask, detections, segments, split);
    }
}
