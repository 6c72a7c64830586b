using Runtime.Nn.Models;
using Runtime.Vision.Ops;

namespace Runtime.Models.Backbones;

/// <summary>The norm layers a detection backbone can use.</summary>
public enum BackboneNorm
{
    /// <summary>torchvision's FrozenBatchNorm2d (fixed statistics and affine), the detection default.</summary>
    FrozenBatchNorm,
    /// <summary>Trainable BatchNorm2d with batch statistics in training.</summary>
    BatchNorm,
    /// <summary>GroupNorm with 32 groups (fewer when a width has fewer channels).</summary>
    GroupNorm,
}

/// <summary>What a detection backbone is built from: a ResNet body and the pyramid on top of it.</summary>
public sealed record BackboneConfig
{
    /// <summary>ResNet depth: 18, 34, 50 or 101 (block kind and counts as torchvision), unless <see cref="Layers"/> overrides the counts.</summary>
    public int Depth { get; init; } = 50;

    /// <summary>Blocks per stage; null takes the depth's (e.g. 3, 4, 6, 3 for ResNet-50).</summary>
    public int[]? Layers { get; init; }

    /// <summary>Stage planes; null is torchvision's 64, 128, 256, 512 (compact models use narrower stages).</summary>
    public int[]? Widths { get; init; }

    /// <summary>Stages whose outputs feed the pyramid (1 = layer1 / c2 ... 4 = layer4 / c5).</summary>
    public int[] ReturnedLayers { get; init; } = [1, 2, 3, 4];

    /// <summary>Channels of every pyramid level.</summary>
    public int FpnChannels { get; init; } = 256;

    /// <summary>The extra coarse levels: "pool" (LastLevelMaxPool), "p6p7" (LastLevelP6P7 on P5), "p6p7_c5" (on C5) or "none".</summary>
    public string ExtraBlocks { get; init; } = "pool";

    /// <summary>How many of layer4, layer3, layer2, layer1, conv1 (in that order) train: 0 to 5.</summary>
    public int TrainableLayers { get; init; } = 3;

    public BackboneNorm Norm { get; init; } = BackboneNorm.FrozenBatchNorm;

    /// <summary>
    /// The kind of the residual blocks' 3x3 convolution (<c>conv2</c>) in <see cref="DcnStages"/>: "none" (plain),
    /// "dcnv1" (deformable, offsets only: mmcv's DeformConv2dPack) or "dcnv2" (modulated deformable: mmcv's
    /// ModulatedDeformConv2dPack). The deformable layers keep the key <c>layerN.i.conv2.weight</c> and add their offset
    /// convolution <c>layerN.i.conv2.conv_offset.{weight,bias}</c> (mmdetection's names), zero at start.
    /// </summary>
    public string Dcn { get; init; } = "none";

    /// <summary>The stages whose blocks get deformable 3x3 convolutions, as layer numbers (2, 3, 4 = c3-c5, the DCNv2 paper's choice).</summary>
    public int[] DcnStages { get; init; } = [2, 3, 4];

    /// <summary>Offset groups of the deformable convolutions (mmcv's deform_groups; 1).</summary>
    public int DcnOffsetGroups { get; init; } = 1;

    [System.Text.Json.Serialization.JsonIgnore]
    public ResNetBlock Block => Depth switch { 18 or 34 => ResNetBlock.Basic, 50 or 101 => ResNetBlock.Bottleneck, _ => throw Unknown() };

    [System.Text.Json.Serialization.JsonIgnore]
    public int[] StageBlocks => Layers ?? Depth switch
    {
        18 => [2, 2, 2, 2],
        34 => [3, 4, 6, 3],
        50 => [3, 4, 6, 3],
        101 => [3, 4, 23, 3],
        _ => throw Unknown(),
    };

    private ArgumentException Unknown() => new($"backbone depth must be 18, 34, 50 or 101, got {Depth}", nameof(Depth));

    internal void Validate()
    {
        _ = Block;
        if (StageBlocks.Length != 4 || StageBlocks.Any(b => b <= 0))
            throw new ArgumentException($"backbone layers must be four positive counts, got [{string.Join(", ", StageBlocks)}]", nameof(Layers));
        if (ReturnedLayers.Length == 0 || ReturnedLayers.Any(l => l is < 1 or > 4) || ReturnedLayers.Distinct().Count() != ReturnedLayers.Length
            || !ReturnedLayers.SequenceEqual(ReturnedLayers.Order()))
            throw new ArgumentException($"returned layers must be increasing stage numbers in 1..4, got [{string.Join(", ", ReturnedLayers)}]", nameof(ReturnedLayers));
        if (TrainableLayers is < 0 or > 5)
            throw new ArgumentOutOfRangeException(nameof(TrainableLayers), TrainableLayers, "trainable backbone layers must be in 0..5");
        if (ExtraBlocks is not ("pool" or "p6p7" or "p6p7_c5" or "none"))
            throw new ArgumentException($"extra blocks must be pool, p6p7, p6p7_c5 or none, got '{ExtraBlocks}'", nameof(ExtraBlocks));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(FpnChannels);
        if (Dcn is not ("none" or "dcnv1" or "dcnv2"))
            throw new ArgumentException($"the backbone's deformable convolution kind must be none, dcnv1 or dcnv2, got '{Dcn}'", nameof(Dcn));
        if (DcnStages.Any(l => l is < 1 or > 4) || DcnStages.Distinct().Count() != DcnStages.Length)
            throw new ArgumentException($"deformable stages must be distinct layer numbers in 1..4, got [{string.Join(", ", DcnStages)}]", nameof(DcnStages));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(DcnOffsetGroups, nameof(DcnOffsetGroups));
    }
}

/// <summary>
/// torchvision's <c>BackboneWithFPN</c> over a ResNet: <c>body</c> (the ResNet without its classifier, keys
/// <c>body.layer1.0.conv1.weight</c>, ...) and <c>fpn</c>. <see cref="Forward"/> returns the pyramid levels named
/// "0", "1", ... (one per returned stage) and the extra block's ("pool" or "p6", "p7").
/// </summary>
public sealed class BackboneWithFpn : Module
{
    public BackboneWithFpn(BackboneConfig config, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        Func<int, UnaryModule> norm = config.Norm switch
        {
            BackboneNorm.FrozenBatchNorm => ResNet.FrozenBatchNorm(dtype, device),
            BackboneNorm.BatchNorm => c => new BatchNorm2d(c, dtype: dtype, device: device),
            _ => c => new GroupNorm(GroupsFor(c), c, dtype: dtype, device: device),
        };
        Body = RegisterModule("body", new ResNet(config.Block, config.StageBlocks, normLayer: norm, dtype: dtype, device: device,
            generator: generator, widths: config.Widths, includeClassifier: false, blockConv2: s => DeformableConv(config, s, dtype, device, generator)));
        var stageChannels = Body.FeatureChannels;
        var inChannels = config.ReturnedLayers.Select(l => stageChannels[l - 1]).ToArray();
        ExtraFpnBlock? extra = config.ExtraBlocks switch
        {
            "pool" => new LastLevelMaxPool(),
            "p6p7" => new LastLevelP6P7(config.FpnChannels, config.FpnChannels, dtype, device, generator),
            "p6p7_c5" => new LastLevelP6P7(stageChannels[3], config.FpnChannels, dtype, device, generator),
            _ => null,
        };
        Fpn = RegisterModule("fpn", new FeaturePyramidNetwork(inChannels, config.FpnChannels, extra, dtype: dtype, device: device, generator: generator));
        FreezeLayers(config.TrainableLayers);
    }

    public BackboneConfig Config { get; }
    public ResNet Body { get; }
    public FeaturePyramidNetwork Fpn { get; }

    /// <summary>Channels of every level the backbone returns.</summary>
    public int OutChannels => Config.FpnChannels;

    /// <summary>The names of the maps <see cref="Forward"/> returns, in order.</summary>
    public IReadOnlyList<string> FeatureNames
    {
        get
        {
            var names = Enumerable.Range(0, Config.ReturnedLayers.Length).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
            if (Config.ExtraBlocks == "pool") names.Add("pool");
            else if (Config.ExtraBlocks.StartsWith("p6p7", StringComparison.Ordinal)) names.AddRange(["p6", "p7"]);
            return names;
        }
    }

    /// <summary>The pyramid of a padded image batch [N, 3, H, W]; the caller disposes it.</summary>
    public FeatureMaps Forward(Tensor images)
    {
        var stages = Body.ForwardFeatures(images);
        try
        {
            var picked = Config.ReturnedLayers.Select(l => stages[l - 1]).ToArray();
            var names = Enumerable.Range(0, picked.Length).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            return Fpn.Forward(picked, names);
        }
        finally
        {
            foreach (var s in stages) s.Dispose();
        }
    }

    /// <summary>The deformable 3x3 convolution of a block in one of the configured stages (null elsewhere: a plain convolution).</summary>
    private static UnaryModule? DeformableConv(BackboneConfig config, BlockConvSpec s, DType dtype, Device? device, Generator? generator)
    {
        if (config.Dcn == "none" || !config.DcnStages.Contains(s.Stage)) return null;
        if (s.InChannels % config.DcnOffsetGroups != 0)
            throw new ArgumentException($"stage {s.Stage}'s 3x3 convolutions have {s.InChannels} channels, not divisible by {config.DcnOffsetGroups} offset groups", nameof(config));
        return config.Dcn == "dcnv2"
            ? new ModulatedDeformConv2d(s.InChannels, s.OutChannels, 3, s.Stride, s.Dilation, s.Dilation, s.Groups, config.DcnOffsetGroups, bias: false,
                dtype: dtype, device: device, generator: generator)
            : new DeformConv2dPack(s.InChannels, s.OutChannels, 3, s.Stride, s.Dilation, s.Dilation, s.Groups, config.DcnOffsetGroups, bias: false,
                dtype: dtype, device: device, generator: generator);
    }

    // torchvision's _resnet_fpn_extractor: only the last `trainable` of layer4..layer1, conv1 (and bn1 with all five) train.
    private void FreezeLayers(int trainable)
    {
        var train = new[] { "layer4", "layer3", "layer2", "layer1", "conv1" }.Take(trainable).ToList();
        if (trainable == 5) train.Add("bn1");
        foreach (var (name, p) in Body.NamedParameters())
            if (!train.Any(t => name.StartsWith(t + ".", StringComparison.Ordinal)))
                p.RequiresGrad = false;
    }

    private static int GroupsFor(int channels)
    {
        int g = Math.Min(32, channels);
        while (channels % g != 0) g--;
        return g;
    }
}
