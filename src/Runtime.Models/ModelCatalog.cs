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

    /// <summary>The default configuration with another class count (background included) and, optionally, input size.</summary>
    public DetectorConfig ConfigFor(int? numClasses = null, int? minSize = null, int? maxSize = null)
    {
        var c = DefaultConfig();
        if (numClasses is int n) c = c with { NumClasses = n };
        if (minSize is int s) c = c with { MinSize = [s], MaxSize = maxSize ?? Math.Max(s, c.MaxSize * s / c.MinSize[^1]) };
        else if (maxSize is int m) c = c with { MaxSize = m };
        return c;
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
            list.Add(new($"retinanet_resnet{depth}_fpn", $"RetinaNet, ResNet-{depth} + FPN P3-P7 (torchvision's retinanet_resnet50_fpn layout), 91 COCO classes, 800 px",
                () => new RetinaNetConfig { Backbone = new BackboneConfig { Depth = depth, ReturnedLayers = [2, 3, 4], ExtraBlocks = "p6p7" } }));
        }
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
