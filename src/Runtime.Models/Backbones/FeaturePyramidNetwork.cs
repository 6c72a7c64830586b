namespace Runtime.Models.Backbones;

/// <summary>
/// A block that adds coarser levels on top of an FPN's outputs (torchvision's <c>ExtraFPNBlock</c>).
/// It receives the FPN's results (finest first) and the backbone's input maps, and appends maps and names.
/// </summary>
public abstract class ExtraFpnBlock : Module
{
    /// <summary>Appends this block's maps to <paramref name="results"/> (which owns them).</summary>
    public abstract void Forward(FeatureMaps results, IReadOnlyList<Tensor> backboneMaps);
}

/// <summary>torchvision's <c>LastLevelMaxPool</c>: "pool" = max_pool2d(last result, kernel 1, stride 2).</summary>
public sealed class LastLevelMaxPool : ExtraFpnBlock
{
    public override void Forward(FeatureMaps results, IReadOnlyList<Tensor> backboneMaps) =>
        results.Add("pool", results[results.Count - 1].Value.MaxPool2d(1, 2, 0));
}

/// <summary>
/// torchvision's <c>LastLevelP6P7</c> (RetinaNet): p6 = conv3x3/2 of P5 when <c>inChannels == outChannels</c>,
/// else of C5; p7 = conv3x3/2 of relu(p6). Weights kaiming_uniform(a = 1), biases 0.
/// </summary>
public sealed class LastLevelP6P7 : ExtraFpnBlock
{
    public LastLevelP6P7(int inChannels, int outChannels, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        P6 = RegisterModule("p6", new Conv2d(inChannels, outChannels, 3, 2, 1, dtype: dtype, device: device, generator: generator));
        P7 = RegisterModule("p7", new Conv2d(outChannels, outChannels, 3, 2, 1, dtype: dtype, device: device, generator: generator));
        foreach (var c in new[] { P6, P7 })
        {
            Init.KaimingUniform_(c.Weight, a: 1, generator: generator);
            Init.Zeros_(c.Bias!);
        }
        UseP5 = inChannels == outChannels;
    }

    public Conv2d P6 { get; }
    public Conv2d P7 { get; }

    /// <summary>Whether p6 is computed from the FPN's P5 (true) or from the backbone's C5.</summary>
    public bool UseP5 { get; }

    public override void Forward(FeatureMaps results, IReadOnlyList<Tensor> backboneMaps)
    {
        var source = UseP5 ? results[results.Count - 1].Value : backboneMaps[^1];
        var p6 = P6.Forward(source);
        using var r = p6.Relu();
        var p7 = P7.Forward(r);
        results.Add("p6", p6);
        results.Add("p7", p7);
    }
}

/// <summary>
/// torchvision's <c>FeaturePyramidNetwork</c>: a 1x1 lateral ("inner") and a 3x3 output ("layer") block per
/// input map; top-down, each coarser inner result is resized (nearest) to the next finer lateral and added.
/// Keys <c>inner_blocks.i.0.weight</c>, <c>layer_blocks.i.0.weight</c>, <c>extra_blocks.*</c>; convolutions
/// kaiming_uniform(a = 1) with zero bias. An optional norm follows each convolution (torchvision's v2 models).
/// </summary>
public sealed class FeaturePyramidNetwork : Module
{
    private readonly List<Sequential> _inner = new();
    private readonly List<Sequential> _layer = new();

    public FeaturePyramidNetwork(IReadOnlyList<int> inChannelsList, int outChannels, ExtraFpnBlock? extraBlocks = null,
        Func<int, UnaryModule>? norm = null, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(inChannelsList);
        if (inChannelsList.Count == 0 || inChannelsList.Any(c => c <= 0))
            throw new ArgumentException($"FeaturePyramidNetwork: in channels must be positive, got [{string.Join(", ", inChannelsList)}]", nameof(inChannelsList));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outChannels);
        InChannels = inChannelsList.ToArray();
        OutChannels = outChannels;
        var inner = RegisterModule("inner_blocks", new ModuleList());
        var layer = RegisterModule("layer_blocks", new ModuleList());
        foreach (var c in inChannelsList)
        {
            var i = ConvNormActivation.Create(c, outChannels, 1, norm: norm, relu: false, dtype: dtype, device: device, generator: generator);
            var l = ConvNormActivation.Create(outChannels, outChannels, 3, norm: norm, relu: false, dtype: dtype, device: device, generator: generator);
            inner.Add(i);
            layer.Add(l);
            _inner.Add(i);
            _layer.Add(l);
        }
        foreach (var block in _inner.Concat(_layer))
        {
            var conv = ConvNormActivation.ConvOf(block);
            Init.KaimingUniform_(conv.Weight, a: 1, generator: generator);
            if (conv.Bias != null) Init.Zeros_(conv.Bias);
        }
        if (extraBlocks != null) ExtraBlocks = RegisterModule("extra_blocks", extraBlocks);
    }

    public IReadOnlyList<int> InChannels { get; }
    public int OutChannels { get; }
    public ExtraFpnBlock? ExtraBlocks { get; }

    /// <summary>The pyramid for backbone maps (finest first) named <paramref name="names"/>; the caller disposes the result.</summary>
    public FeatureMaps Forward(IReadOnlyList<Tensor> maps, IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(names);
        if (maps.Count != _inner.Count || names.Count != maps.Count)
            throw new ArgumentException($"FeaturePyramidNetwork: expected {_inner.Count} maps and names, got {maps.Count} maps and {names.Count} names", nameof(maps));
        for (int i = 0; i < maps.Count; i++)
            if (maps[i].Rank != 4 || maps[i].Size(1) != InChannels[i])
                throw new ArgumentException($"FeaturePyramidNetwork: map {i} must be [N, {InChannels[i]}, H, W], got {Shapes.Format(maps[i].Shape)}", nameof(maps));
        var outputs = new Tensor[maps.Count];
        var lastInner = _inner[^1].Forward(maps[^1]);
        try
        {
            outputs[^1] = _layer[^1].Forward(lastInner);
            for (int i = maps.Count - 2; i >= 0; i--)
            {
                using var lateral = _inner[i].Forward(maps[i]);
                using var topDown = lastInner.Interpolate((lateral.Size(2), lateral.Size(3)));
                var sum = lateral + topDown;
                lastInner.Dispose();
                lastInner = sum;
                outputs[i] = _layer[i].Forward(lastInner);
            }
        }
        catch
        {
            foreach (var o in outputs) o?.Dispose();
            throw;
        }
        finally
        {
            lastInner.Dispose();
        }
        var result = new FeatureMaps(names, outputs);
        ExtraBlocks?.Forward(result, maps);
        return result;
    }
}
