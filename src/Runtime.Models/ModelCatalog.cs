using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Models.Panoptic;

namespace Runtime.Models;

/// <summary>
/// One model the catalogue knows: its name (torchvision's where one exists), what it is, its default
/// configuration (class count, input size) and how to build it. The CLI's train / eval / predict / bench, its
/// help text and the tests all read <see cref="ModelCatalog"/>, so a model added here shows up everywhere.
/// </summary>
public sealed record ModelEntry(string Name, string Description, Func<DetectorConfig> DefaultConfig)
{
    /// <summary>A model with <paramref name="config"/> (one of this entry's family) on <paramref name="device"/>.</summary>
    public DetectionModel Build(DetectorConfig? config = null, Device? device = null, Generator? generator = null) =>
        DetectionModel.Create(config ?? DefaultConfig(), device, generator);

    /// <summary>
    /// The default configuration with another class count (background included) and, optionally, input size and
    /// deformable parts (<paramref name="deformable"/>: the DCN options a command line may change).
    /// </summary>
    public DetectorConfig ConfigFor(int? numClasses = null, int? minSize = null, int? maxSize = null, DeformableOptions? deformable = null)
    {
        var c = DefaultConfig();
        if (deformable != null) c = deformable.Apply(c);
        if (numClasses is int n) c = c with { NumClasses = n };
        if (minSize is int s) c = c with { MinSize = [s], MaxSize = maxSize ?? Math.Max(s, c.MaxSize * s / c.MinSize[^1]) };
        else if (maxSize is int m) c = c with { MaxSize = m };
        return c;
    }
}

/// <summary>
/// The deformable parts of a detector a user may switch (each null: as the model has it): the backbone's deformable
/// 3x3 convolutions ("none", "dcnv1", "dcnv2") and their stages (layer numbers 1-4; c3-c5 = 2, 3, 4), the R-CNN box
/// pooling ("roi_align", "mdpool", "dpool") and R-CNN feature mimicking in training (on: the model's settings, or the
/// paper's when it has none).
/// </summary>
public sealed record DeformableOptions(string? Dcn = null, int[]? DcnStages = null, string? BoxPool = null, bool? Mimicking = null)
{
    /// <summary><paramref name="config"/> with these options applied (validated when the model is built).</summary>
    public DetectorConfig Apply(DetectorConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var backbone = config.Backbone;
        if (Dcn != null) backbone = backbone with { Dcn = Dcn };
        if (DcnStages != null) backbone = backbone with { DcnStages = DcnStages };
        config = config with { Backbone = backbone };
        if (BoxPool == null && Mimicking == null) return config;
        if (config is not FasterRcnnConfig rcnn)
            throw new ArgumentException($"the box pooling and feature mimicking are options of the R-CNN models, not of a {config.GetType().Name.Replace("Config", "", StringComparison.Ordinal)}");
        if (BoxPool != null) rcnn = rcnn with { BoxPool = BoxPool };
        if (Mimicking == false) rcnn = rcnn with { Mimicking = null };
        else if (Mimicking == true) rcnn = rcnn with { Mimicking = rcnn.Mimicking ?? new FeatureMimickingConfig() };
        return rcnn;
    }
}

/// <summary>
/// A panoptic model of the catalogue (the MaX-DeepLab family): its name, what it is and its default configuration
/// (classes, input size); <see cref="ConfigFor"/> fits it to a data set's classes.
/// </summary>
public sealed record PanopticModelEntry(string Name, string Description, Func<MaxDeepLabConfig> DefaultConfig)
{
    public MaxDeepLab Build(MaxDeepLabConfig? config = null, Device? device = null, Generator? generator = null) =>
        new(config ?? DefaultConfig(), device, generator);

    /// <summary>The default configuration for a data set's thing + stuff classes and, optionally, another input size.</summary>
    public MaxDeepLabConfig ConfigFor(int? numClasses = null, int[]? thingClasses = null, int? inputSize = null)
    {
        var c = DefaultConfig();
        if (numClasses is int n) c = c with { NumClasses = n, ThingClasses = thingClasses ?? [.. c.ThingClasses.Where(t => t < n)] };
        else if (thingClasses != null) c = c with { ThingClasses = thingClasses };
        if (inputSize is int s) c = c with { InputSize = s };
        return c;
    }
}

/// <summary>
/// The named models: the detectors (torchvision's names for its architectures, plus the compact ones trained here)
/// and the panoptic MaX-DeepLab models (<see cref="Panoptic"/>).
/// </summary>
public static class ModelCatalog
{
    private static readonly ModelEntry[] Entries = Build();
    private static readonly PanopticModelEntry[] PanopticEntries = BuildPanoptic();

    /// <summary>The detection models.</summary>
    public static IReadOnlyList<ModelEntry> All => Entries;

    /// <summary>The detection models' names.</summary>
    public static IReadOnlyList<string> Names => Entries.Select(e => e.Name).ToArray();

    /// <summary>The panoptic models.</summary>
    public static IReadOnlyList<PanopticModelEntry> Panoptic => PanopticEntries;

    /// <summary>Every model's name, detectors then panoptic models.</summary>
    public static IReadOnlyList<string> AllNames => [.. Names, .. PanopticEntries.Select(e => e.Name)];

    /// <summary>The entry named <paramref name="name"/>; an unknown name is an error listing the known ones.</summary>
    public static ModelEntry Get(string name) =>
        TryGet(name, out var e) ? e : throw new ArgumentException(
            TryGetPanoptic(name, out _) ? $"'{name}' is a panoptic model, not a detector" : $"unknown model '{name}'; known models: {string.Join(", ", AllNames)}", nameof(name));

    /// <summary>The panoptic entry named <paramref name="name"/>; an unknown name is an error listing the known ones.</summary>
    public static PanopticModelEntry GetPanoptic(string name) =>
        TryGetPanoptic(name, out var e) ? e : throw new ArgumentException($"unknown panoptic model '{name}'; known models: {string.Join(", ", AllNames)}", nameof(name));

    public static bool TryGetPanoptic(string name, out PanopticModelEntry entry)
    {
        entry = PanopticEntries.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.Ordinal))!;
        return entry != null;
    }

    /// <summary>
    /// MaX-DeepLab-S (the paper's small model, DeepLab2's max_deeplab_s with L = 0: 133 COCO panoptic classes, 641 px)
    /// and a compact configuration that trains from scratch on the panoptic shapes set on 2 CPU cores.
    /// </summary>
    private static PanopticModelEntry[] BuildPanoptic() =>
    [
        new("max_deeplab_s", "MaX-DeepLab-S: ResNet-50 with axial attention at stride 16, dual-path transformer last stage, L = 0 decoder, N = 128, D = 128, 641 px, 133 COCO panoptic classes",
            () => new MaxDeepLabConfig()),
        new("max_deeplab_compact", "compact MaX-DeepLab for training from scratch on a CPU: ResNet at 1/4 width with axial and dual-path stages, N = 24 slots, D = 32, 161 px",
            () => new MaxDeepLabConfig
            {
                NumClasses = 9, ThingClasses = [0, 1, 2, 3, 4, 5], InputSize = 161,
                Layers = [1, 1, 2, 2], Widths = [16, 32, 64, 128], AxialHeads = 4, ExtraBlocks = 0,
                NumSlots = 24, MemoryChannels = 64, TransformerFilters = 32, TransformerHeads = 4, FfnChannels = 128,
                GlobalChannels = 64, FeatureDim = 32, HeadChannels = 64,
                SemanticDecoder = false,
            }),
    ];

    public static bool TryGet(string name, out ModelEntry entry)
    {
        entry = Entries.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.Ordinal))!;
        return entry != null;
    }

    private static ModelEntry[] Build()
    {
        var list = new List<ModelEntry>();
        foreach (int depth in new[] { 50, 18, 34, 101 })
        {
            list.Add(new($"fasterrcnn_resnet{depth}_fpn", $"Faster R-CNN, ResNet-{depth} + FPN (torchvision's fasterrcnn_resnet50_fpn layout), 91 COCO classes, 800 px",
                () => new FasterRcnnConfig { Backbone = new BackboneConfig { Depth = depth } }));
            list.Add(new($"maskrcnn_resnet{depth}_fpn", $"Mask R-CNN, ResNet-{depth} + FPN (torchvision's maskrcnn_resnet50_fpn layout), 91 COCO classes, 800 px",
                () => new MaskRcnnConfig { Backbone = new BackboneConfig { Depth = depth } }));
            list.Add(new($"maskx_rcnn_resnet{depth}_fpn", $"Mask^X R-CNN, ResNet-{depth} + FPN: maskrcnn_resnet{depth}_fpn whose class masks come from the box weights by a weight transfer (+ class-agnostic MLP branch), for partial mask supervision",
                () => new MaskXRcnnConfig { Backbone = new BackboneConfig { Depth = depth } }));
            list.Add(new($"retinanet_resnet{depth}_fpn", $"RetinaNet, ResNet-{depth} + FPN P3-P7 (torchvision's retinanet_resnet50_fpn layout), 91 COCO classes, 800 px",
                () => new RetinaNetConfig { Backbone = new BackboneConfig { Depth = depth, ReturnedLayers = [2, 3, 4], ExtraBlocks = "p6p7" } }));
        }
        // DCNv2 (Zhu et al. 2018): modulated deformable convolutions in every 3x3 of c3-c5, modulated deformable RoI
        // pooling in the box head, R-CNN feature mimicking in training. DCNv1 as the DCNv2 paper's ablation has it:
        // deformable convolutions in c5, deformable RoI pooling, no modulation, no mimicking.
        list.Add(new("fasterrcnn_resnet50_fpn_dcnv2", "Faster R-CNN DCNv2: ResNet-50 + FPN with modulated deformable 3x3 convolutions in c3-c5, modulated deformable RoI pooling, R-CNN feature mimicking in training; 91 COCO classes, 800 px",
            () => Dcnv2(new FasterRcnnConfig())));
        list.Add(new("maskrcnn_resnet50_fpn_dcnv2", "Mask R-CNN DCNv2: maskrcnn_resnet50_fpn with fasterrcnn_resnet50_fpn_dcnv2's deformable backbone, box pooling and mimicking; 91 COCO classes, 800 px",
            () => Dcnv2(new MaskRcnnConfig())));
        list.Add(new("fasterrcnn_resnet50_fpn_dcnv1", "Faster R-CNN DCNv1: ResNet-50 + FPN with deformable (offset-only) 3x3 convolutions in c5 and deformable RoI pooling; 91 COCO classes, 800 px",
            () => Dcnv1(new FasterRcnnConfig())));
        list.Add(new("maskrcnn_resnet50_fpn_dcnv1", "Mask R-CNN DCNv1: maskrcnn_resnet50_fpn with fasterrcnn_resnet50_fpn_dcnv1's deformable parts; 91 COCO classes, 800 px",
            () => Dcnv1(new MaskRcnnConfig())));
        list.Add(new("retinanet_resnet50_fpn_v2", "RetinaNet v2: P6 from C5, GroupNorm heads, GIoU box loss (torchvision's retinanet_resnet50_fpn_v2)",
            () => new RetinaNetConfig
            {
                Backbone = new BackboneConfig { Depth = 50, ReturnedLayers = [2, 3, 4], ExtraBlocks = "p6p7_c5" },
                HeadNormGroups = 32,
                BoxLoss = "giou",
            }));
        list.AddRange(CompactModels());
        return [.. list];
    }

    /// <summary>The DCNv2 paper's detector: modulated deformable convolutions in c3-c5, mdpool, mimicking (224-pixel crops, 32 RoIs per image).</summary>
    private static T Dcnv2<T>(T config) where T : FasterRcnnConfig => config with
    {
        Backbone = config.Backbone with { Dcn = "dcnv2", DcnStages = [2, 3, 4] },
        BoxPool = "mdpool",
        Mimicking = new FeatureMimickingConfig(),
    };

    /// <summary>The DCNv1 configuration of the DCNv2 paper's ablation: deformable convolutions in c5, deformable RoI pooling.</summary>
    private static T Dcnv1<T>(T config) where T : FasterRcnnConfig => config with
    {
        Backbone = config.Backbone with { Dcn = "dcnv1", DcnStages = [4] },
        BoxPool = "dpool",
    };

    /// <summary>
    /// Compact detectors that train from scratch on 2 CPU cores in minutes (the README's main job): a narrow
    /// ResNet-18 with trainable BatchNorm, a 64-channel pyramid, small anchors and 256-pixel inputs.
    /// </summary>
    private static IEnumerable<ModelEntry> CompactModels()
    {
        var backbone = new BackboneConfig
        {
            Depth = 18, Widths = [16, 32, 64, 128], FpnChannels = 64, Norm = BackboneNorm.BatchNorm, TrainableLayers = 5,
        };
        T CompactRcnn<T>() where T : FasterRcnnConfig, new() => new T
        {
            Backbone = backbone,
            NumClasses = 4, MinSize = [256], MaxSize = 256,
            AnchorSizes = [[16], [32], [64], [128], [256]],
            RepresentationSize = 256,
            Rpn = new RpnConfig { PreNmsTopNTrain = 600, PostNmsTopNTrain = 300, PreNmsTopNTest = 300, PostNmsTopNTest = 150, BatchSizePerImage = 128 },
            RoiHeads = new RoiHeadsConfig { BatchSizePerImage = 128 },
        };
        yield return new("fasterrcnn_compact", "compact Faster R-CNN for training from scratch on a CPU: ResNet-18 at 1/4 width, BatchNorm, FPN 64, 256 px",
            CompactRcnn<FasterRcnnConfig>);
        yield return new("maskrcnn_compact", "compact Mask R-CNN for training from scratch on a CPU: fasterrcnn_compact plus a mask head of 4 x 64 channels, 28x28 masks",
            () => CompactRcnn<MaskRcnnConfig>() with { MaskLayers = [64, 64, 64, 64], MaskDimReduced = 64 });
        yield return new("maskx_rcnn_compact", "compact Mask^X R-CNN for training from scratch on a CPU: maskrcnn_compact with the weight transfer (+ class-agnostic MLP branch), for partial mask supervision",
            () => CompactRcnn<MaskXRcnnConfig>() with { MaskLayers = [64, 64, 64, 64], MaskDimReduced = 64, MaskMlpLayers = [256] });
        // The compact DCNv2 siblings: the deformable parts at the compact models' scale (fc branches as wide as the
        // box head, mimicking on 8 RoIs per image cropped to 64 pixels).
        T CompactDcnv2<T>(T c) where T : FasterRcnnConfig => Dcnv2(c) with
        {
            DeformPoolFcChannels = 256,
            Mimicking = new FeatureMimickingConfig { CropSize = 64, RoisPerImage = 8 },
        };
        yield return new("fasterrcnn_dcnv2_compact", "compact Faster R-CNN DCNv2: fasterrcnn_compact with modulated deformable 3x3 convolutions in c3-c5, modulated deformable RoI pooling and R-CNN feature mimicking (64 px crops)",
            () => CompactDcnv2(CompactRcnn<FasterRcnnConfig>()));
        yield return new("maskrcnn_dcnv2_compact", "compact Mask R-CNN DCNv2: maskrcnn_compact with fasterrcnn_dcnv2_compact's deformable parts",
            () => CompactDcnv2(CompactRcnn<MaskRcnnConfig>() with { MaskLayers = [64, 64, 64, 64], MaskDimReduced = 64 }));
        yield return new("retinanet_compact", "compact RetinaNet for training from scratch on a CPU: ResNet-18 at 1/4 width, BatchNorm, FPN 64 (P3-P7), 256 px",
            () => new RetinaNetConfig
            {
                Backbone = backbone with { ReturnedLayers = [2, 3, 4], ExtraBlocks = "p6p7" },
                NumClasses = 4, MinSize = [256], MaxSize = 256,
                AnchorSizes = [.. new[] { 16, 32, 64, 128, 256 }.Select(x => new[] { x, (int)(x * Math.Pow(2, 1.0 / 3)), (int)(x * Math.Pow(2, 2.0 / 3)) })],
                HeadNormGroups = 16,
            });
    }
}
