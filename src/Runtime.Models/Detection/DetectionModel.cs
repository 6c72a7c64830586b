using Runtime.Models.Backbones;
using Runtime.Vision.Data;
using Runtime.Vision.Ops;

namespace Runtime.Models.Detection;

/// <summary>
/// The skeleton every detector shares (torchvision's <c>GeneralizedRCNN</c> shape): a transform (normalise,
/// resize, pad into a batch), a backbone with a feature pyramid, the family's heads, and a post-processing that
/// maps boxes back to each original image. <see cref="Predict"/> runs inference; <see cref="ComputeLosses"/> gives
/// the named loss terms of a training batch (torchvision's loss dictionary).
/// </summary>
public abstract class DetectionModel : Module
{
    protected DetectionModel(DetectorConfig config, DType dtype, Device? device, Generator? generator)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        SamplingGenerator = new Generator(0x5A3B1E);
        Transform = new GeneralizedRcnnTransform(config.MinSize, config.MaxSize, config.ImageMean, config.ImageStd);
        Backbone = RegisterModule("backbone", new BackboneWithFpn(config.Backbone, dtype, device, generator));
        if (Backbone.FeatureNames.Count != config.AnchorSizes.Length)
            throw new ArgumentException($"the backbone gives {Backbone.FeatureNames.Count} pyramid levels but {config.AnchorSizes.Length} anchor levels are configured", nameof(config));
        AnchorGenerator = new AnchorGenerator(
            config.AnchorSizes.Select(s => (IReadOnlyList<int>)s).ToArray(),
            config.AspectRatios.Select(r => (IReadOnlyList<double>)r).ToArray());
    }

    /// <summary>The model a configuration describes (its family: Faster R-CNN, Mask R-CNN, Mask^X R-CNN or RetinaNet), freshly initialised.</summary>
    public static DetectionModel Create(DetectorConfig config, Device? device = null, Generator? generator = null) => config switch
    {
        MaskXRcnnConfig x => new MaskXRcnn(x, device: device, generator: generator),
        MaskRcnnConfig m => new MaskRcnn(m, device: device, generator: generator),
        FasterRcnnConfig f => new FasterRcnn(f, device: device, generator: generator),
        RetinaNetConfig r => new RetinaNet(r, device: device, generator: generator),
        null => throw new ArgumentNullException(nameof(config)),
        _ => throw new ArgumentException($"no detector family for a {config.GetType().Name}", nameof(config)),
    };

    public DetectorConfig Config { get; }
    public GeneralizedRcnnTransform Transform { get; }
    public BackboneWithFpn Backbone { get; }
    public AnchorGenerator AnchorGenerator { get; }
    public int NumClasses => Config.NumClasses;

    /// <summary>
    /// Whether a parameter (by its name in <see cref="Module.NamedParameters"/>) belongs to a layer that predicts
    /// sampling offsets or modulation: a deformable convolution's <c>conv_offset</c>, a deformable RoI pooling's
    /// <c>offset_fc</c> / <c>mask_fc</c>. The trainer can give them their own learning-rate multiplier.
    /// </summary>
    public static bool IsOffsetParameter(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Contains("conv_offset.", StringComparison.Ordinal) || name.Contains("offset_fc.", StringComparison.Ordinal)
            || name.Contains("mask_fc.", StringComparison.Ordinal);
    }

    /// <summary>The random stream of the training samplers (anchors and proposals); see <see cref="SeedSampling"/>.</summary>
    protected Generator SamplingGenerator { get; }

    /// <summary>Restarts the training samplers' random stream (the trainer does this per epoch, so a resumed run repeats a continuous one).</summary>
    public void SeedSampling(ulong seed) => SamplingGenerator.ManualSeed(seed);

    /// <summary>The device the parameters live on.</summary>
    public Device Device => Parameters().FirstOrDefault()?.Device ?? Buffers().First().Device;

    /// <summary>Detections per image for padded, resized batches; boxes in the resized frame.</summary>
    public abstract List<DetectionResult> ForwardDetections(ImageBatch images);

    /// <summary>The named losses of a padded, resized batch and its (resized) targets.</summary>
    public abstract Dictionary<string, Tensor> ForwardLosses(ImageBatch images, IReadOnlyList<DetectionTarget> targets);

    /// <summary>
    /// Detections for images [3, H, W] (float, values in [0, 1], any sizes): boxes in each image's own pixels.
    /// Runs without gradients in whatever mode the model is in (call <see cref="Module.Eval"/> first, as in torchvision).
    /// </summary>
    public List<DetectionResult> Predict(IReadOnlyList<Tensor> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) return [];
        for (int i = 0; i < images.Count; i++)
            if (images[i].Rank != 3 || images[i].Size(0) != 3)
                throw new ArgumentException($"image {i} must be [3, H, W], got {Shapes.Format(images[i].Shape)}", nameof(images));
        using var noGrad = GradMode.NoGrad();
        using var batch = Transform.Apply(images);
        using var onDevice = OnDevice(batch);
        var raw = ForwardDetections(onDevice);
        return Postprocess(raw, batch.ImageSizes, batch.OriginalSizes);
    }

    /// <summary>
    /// The loss terms for training samples (images in [0, 1] with targets in their pixels): the transform runs
    /// first (with <paramref name="random"/> choosing among several min sizes). Call <see cref="Module.Train"/> first.
    /// </summary>
    public Dictionary<string, Tensor> ComputeLosses(IReadOnlyList<DetectionSample> samples, Generator? random = null)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0) throw new ArgumentException("a training batch needs at least one sample", nameof(samples));
        using var batch = Transform.Apply(samples, random);
        using var onDevice = OnDevice(batch.Images);
        return ForwardLosses(onDevice, batch.Targets);
    }

    /// <summary>
    /// Boxes of each image mapped from the resized frame back to the original size, and the per-box masks
    /// ([K, 1, M, M], Mask R-CNN) pasted into image-sized planes [K, 1, H, W] at those boxes (torchvision's
    /// transform.postprocess with paste_masks_in_image). Consumes the boxes and masks of <paramref name="detections"/>.
    /// </summary>
    public static List<DetectionResult> Postprocess(List<DetectionResult> detections, IReadOnlyList<(int Height, int Width)> resized, IReadOnlyList<(int Height, int Width)> original)
    {
        var result = new List<DetectionResult>(detections.Count);
        for (int i = 0; i < detections.Count; i++)
        {
            var d = detections[i];
            var boxes = GeneralizedRcnnTransform.PostprocessBoxes(d.Boxes, resized[i], original[i]);
            Tensor? masks = null;
            if (d.Masks != null)
            {
                masks = Masks.PasteMasksInImage(d.Masks, boxes, original[i]);
                d.Masks.Dispose();
            }
            result.Add(new DetectionResult(boxes, d.Scores, d.Labels, masks));
            d.Boxes.Dispose();
        }
        return result;
    }

    private ImageBatch OnDevice(ImageBatch batch)
    {
        var dev = Device;
        var t = batch.Tensors.Device == dev ? batch.Tensors.Clone() : batch.Tensors.To(dev);
        return new ImageBatch(t, batch.ImageSizes, batch.OriginalSizes);
    }
}
