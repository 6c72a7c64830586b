using Runtime.Vision.Data;
using Runtime.Vision.Ops;

namespace Runtime.Models.Detection;

/// <summary>
/// torchvision's <c>FasterRCNN</c>: <c>backbone</c> (ResNet + FPN), <c>rpn</c> (<see cref="RegionProposalNetwork"/>)
/// and <c>roi_heads</c> (<see cref="RoiHeads"/>: MultiScaleRoIAlign 7x7 over levels "0".."3", TwoMLPHead,
/// FastRCNNPredictor). State-dict keys are torchvision's, so its checkpoints load as they are.
/// </summary>
public class FasterRcnn : DetectionModel
{
    public FasterRcnn(FasterRcnnConfig config, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : base(config, dtype, device, generator)
    {
        Config = config;
        int channels = Backbone.OutChannels;
        var head = new RpnHead(channels, AnchorGenerator.NumAnchorsPerLocation()[0], dtype: dtype, device: device, generator: generator);
        Rpn = RegisterModule("rpn", new RegionProposalNetwork(AnchorGenerator, head, config.Rpn, SamplingGenerator));
        var boxLevels = Backbone.FeatureNames.Where(n => n != "pool" && n != "p6" && n != "p7").ToArray();
        var pool = config.BoxPool == "roi_align"
            ? new MultiScaleRoIAlign(boxLevels, config.BoxPoolSize, config.BoxPoolSampling)
            : new MultiScaleDeformRoIPool(boxLevels, config.BoxPoolSize, config.BoxPoolSampling, channels, config.DeformPoolFcChannels,
                config.DeformPoolGamma, modulated: config.BoxPool == "mdpool", aligned: true, dtype: dtype, device: device, generator: generator);
        var boxHead = new TwoMlpHead(channels * config.BoxPoolSize * config.BoxPoolSize, config.RepresentationSize, dtype, device, generator);
        var predictor = new FastRcnnPredictor(config.RepresentationSize, config.NumClasses, dtype, device, generator);
        RoiHeads = RegisterModule("roi_heads", CreateRoiHeads(pool, boxHead, predictor, config, SamplingGenerator, dtype, device, generator));
        if (config.Mimicking is { } mimic)
            Mimicking = RegisterModule("rcnn_mimic", new FeatureMimicking(mimic, config.RepresentationSize, config.NumClasses, dtype, device, generator));
    }

    public new FasterRcnnConfig Config { get; }
    public RegionProposalNetwork Rpn { get; }
    public RoiHeads RoiHeads { get; }

    /// <summary>R-CNN feature mimicking (training only; <c>rcnn_mimic.cls_score.*</c>), null when the configuration has none.</summary>
    public FeatureMimicking? Mimicking { get; }

    /// <summary>
    /// Builds the RoI heads around the box branch's parts; the mask families override this to add their branches
    /// (<see cref="MaskRcnn"/>). Called from the constructor: <paramref name="samplingGenerator"/> drives the
    /// proposal sampler, <paramref name="dtype"/>, <paramref name="device"/> and <paramref name="generator"/> are for
    /// new layers' parameters.
    /// </summary>
    protected virtual RoiHeads CreateRoiHeads(MultiScaleRoIAlign boxPool, TwoMlpHead boxHead, FastRcnnPredictor boxPredictor, FasterRcnnConfig config,
        Generator samplingGenerator, DType dtype, Device? device, Generator? generator) =>
        new(boxPool, boxHead, boxPredictor, config.RoiHeads, samplingGenerator);

    public override List<DetectionResult> ForwardDetections(ImageBatch images)
    {
        using var features = Backbone.Forward(images.Tensors);
        var (proposals, _) = Rpn.Forward(images, features, null);
        try
        {
            return RoiHeads.Forward(features, proposals, images.ImageSizes, null).Detections;
        }
        finally
        {
            foreach (var p in proposals) p.Dispose();
        }
    }

    public override Dictionary<string, Tensor> ForwardLosses(ImageBatch images, IReadOnlyList<DetectionTarget> targets)
    {
        Rows.CheckTargets(targets, images.Count);
        using var features = Backbone.Forward(images.Tensors);
        var (proposals, rpnLosses) = Rpn.Forward(images, features, targets);
        try
        {
            var roi = RoiHeads.ForwardTraining(features, proposals, images.ImageSizes, targets);
            var losses = roi.Losses;
            try
            {
                if (Mimicking != null)
                    foreach (var kv in Mimicking.Losses(images, roi.Samples, roi.BoxFeatures, Backbone, RoiHeads.BoxRoiPool, RoiHeads.BoxHead, SamplingGenerator))
                        losses[kv.Key] = kv.Value;
            }
            finally
            {
                roi.DisposeIntermediates();
            }
            foreach (var kv in rpnLosses) losses[kv.Key] = kv.Value;
            return losses;
        }
        finally
        {
            foreach (var p in proposals) p.Dispose();
        }
    }
}
