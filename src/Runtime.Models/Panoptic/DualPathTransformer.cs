using Runtime.Vision.Ops;

namespace Runtime.Models.Panoptic;

/// <summary>
/// A 1x1 convolution over a sequence [B, Cin, L] without bias, then BatchNorm1d, then optionally ReLU (DeepLab2's
/// "Conv1D" with batch norm, used by the memory path and the pixel path of the dual-path transformer). State names:
/// <c>weight</c> [Cout, Cin], <c>bn.*</c>.
/// </summary>
public sealed class PointwiseConvBn : UnaryModule
{
    /// <param name="initStd">Normal initialisation with this standard deviation (null: He normal, sqrt(2 / Cin)).</param>
    /// <param name="zeroGamma">Start the batch norm's weight at zero (the last layer of a residual branch).</param>
    public PointwiseConvBn(int inChannels, int outChannels, bool relu, double? initStd = null, bool zeroGamma = false,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outChannels);
        InChannels = inChannels;
        OutChannels = outChannels;
        Relu = relu;
        var w = RegisterParameter("weight", Tensor.Zeros([outChannels, inChannels], dtype, device));
        Init.Normal_(w, 0, initStd ?? Math.Sqrt(2.0 / inChannels), generator);
        Bn = RegisterModule("bn", new BatchNorm1d(outChannels, dtype: dtype, device: device));
        if (zeroGamma) Init.Zeros_(Bn.Weight!);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public bool Relu { get; }
    public Tensor Weight => GetParameter("weight")!;
    public BatchNorm1d Bn { get; }

    /// <summary>[B, Cin, L] to [B, Cout, L].</summary>
    public override Tensor Forward(Tensor input) => Forward(input, null, Relu);

    /// <summary>
    /// bn(weight · input) + <paramref name="residual"/> [B, Cout, L], then ReLU when <paramref name="relu"/> (the
    /// layer's own <see cref="Relu"/> is not applied): a residual update and its activation. In inference (eval,
    /// <see cref="GradMode.NoGrad"/>, fusion on) the norm is folded into the weight (cached, refolded when a source
    /// tensor changes) and the product runs as a 1x1 convolution with the bias, residual and ReLU in its epilogue.
    /// </summary>
    public Tensor Forward(Tensor input, Tensor? residual, bool relu)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 3 || input.Size(1) != InChannels)
            throw new ArgumentException($"PointwiseConvBn: expected [B, {InChannels}, L], got {Shapes.Format(input.Shape)}", nameof(input));
        if (residual is not null && (residual.Rank != 3 || residual.Size(0) != input.Size(0) || residual.Size(1) != OutChannels || residual.Size(2) != input.Size(2)))
            throw new ArgumentException($"PointwiseConvBn: residual must be [{input.Size(0)}, {OutChannels}, {input.Size(2)}], got {Shapes.Format(residual.Shape)}", nameof(residual));
        if (BatchNormFold.Applies(this, Bn))
        {
            _fold ??= new BatchNormFold();
            var (w, b) = _fold.Get(Weight, null, Bn);
            using var scope = new TensorScope();
            var y = input.Unsqueeze(3).Conv2dFused(w.Reshape(OutChannels, InChannels, 1, 1), b, (1, 1), (0, 0), (1, 1), 1, residual?.Unsqueeze(3), relu);
            return scope.MoveOut(y.Squeeze(3));
        }
        using var product = Weight.MatMul(input);
        return BatchNormFold.Unfused(product, Bn, residual, relu);
    }

    private BatchNormFold? _fold;

    /// <summary>The folded weight and bias of the fused path: null until it has run (and after fusion is turned off or the layer moved).</summary>
    public BatchNormFold? InferenceFold => _fold;

    protected override void ReleaseCaches()
    {
        _fold?.Dispose();
        _fold = null;
    }
}

/// <summary>
/// Multi-head attention as the dual-path transformer computes it (DeepLab2's AttentionOperation): similarity
/// q·k without a 1/sqrt(d) scale, batch-normalised per head ("similarity_bn", BatchNorm2d over the heads), softmax
/// over the keys, the retrieved values batch-normalised per output channel ("value_bn", BatchNorm1d over
/// heads x value channels) and passed through ReLU. All tensors are channel-first: q [B, h, dk, Lq],
/// k [B, h, dk, Lk], v [B, h, dv, Lk]; the result is [B, h*dv, Lq] (channel = head * dv + d).
/// </summary>
public sealed class DualPathAttention : Module
{
    public DualPathAttention(int heads, int valueChannels, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(valueChannels);
        Heads = heads;
        ValueChannels = valueChannels;
        SimilarityBn = RegisterModule("similarity_bn", new BatchNorm2d(heads, dtype: dtype, device: device));
        ValueBn = RegisterModule("value_bn", new BatchNorm1d(valueChannels, dtype: dtype, device: device));
    }

    public int Heads { get; }

    /// <summary>Total value channels (heads x per-head).</summary>
    public int ValueChannels { get; }

    public BatchNorm2d SimilarityBn { get; }
    public BatchNorm1d ValueBn { get; }

    public Tensor Forward(Tensor query, Tensor key, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        if (query.Rank != 4 || key.Rank != 4 || value.Rank != 4 || query.Size(1) != Heads || key.Size(1) != Heads || value.Size(1) != Heads
            || query.Size(2) != key.Size(2) || key.Size(3) != value.Size(3) || value.Size(2) * Heads != ValueChannels)
            throw new ArgumentException($"DualPathAttention: expected q [B, {Heads}, dk, Lq], k [B, {Heads}, dk, Lk], v [B, {Heads}, {ValueChannels / Heads}, Lk], got {Shapes.Format(query.Shape)}, {Shapes.Format(key.Shape)}, {Shapes.Format(value.Shape)}", nameof(query));
        using var scope = new TensorScope();
        var similarity = query.MT.MatMul(key);                  // [B, h, Lq, Lk]
        var weights = SimilarityBn.Forward(similarity).Softmax(-1);
        var retrieved = value.MatMul(weights.MT);               // [B, h, dv, Lq]
        var flat = retrieved.Reshape(retrieved.Size(0), ValueChannels, retrieved.Size(3));
        return scope.MoveOut(ValueBn.Forward(flat).Relu());
    }
}

/// <summary>
/// The transformer half of a dual-path block (MaX-DeepLab, Wang et al. 2021; DeepLab2's DualPathTransformerLayer):
/// given the pixel path's features after its pixel-to-pixel (axial) block and the N memory slots, it runs
/// <list type="bullet">
/// <item>memory-to-pixel and memory-to-memory attention as ONE attention whose queries are the memory and whose keys
/// and values are the concatenation of the pixels' and the memory's, then a 1x1 output projection with batch norm
/// (zero-initialised gamma), added to the memory and ReLU;</item>
/// <item>the memory feed-forward network (1x1 to <see cref="FfnChannels"/>, BN, ReLU, 1x1 back, BN with zero gamma),
/// added and ReLU;</item>
/// <item>pixel-to-memory attention (pixels query the input memory's keys and values), a 1x1 output projection with
/// batch norm (zero gamma), added to the pixel input (no activation: the block applies it).</item>
/// </list>
/// Both paths first project down to the bottleneck width (pixels after a ReLU), then compute q, k, v with one 1x1
/// convolution and batch norm each. Pixels are [B, Cp, L] and memory [B, Cm, N], channels first.
/// </summary>
public sealed class DualPathTransformerLayer : Module
{
    public DualPathTransformerLayer(int pixelChannels, int memoryChannels, int filters = 128, int heads = 8, int ffnChannels = 2048,
        double bottleneckExpansion = 2, double keyExpansion = 1, double valueExpansion = 2,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pixelChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(memoryChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(filters);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegative(ffnChannels);
        int bottleneck = (int)Math.Round(filters * bottleneckExpansion);
        int keyDepth = (int)Math.Round(filters * keyExpansion), valueDepth = (int)Math.Round(filters * valueExpansion);
        if (keyDepth % heads != 0 || valueDepth % heads != 0)
            throw new ArgumentException($"DualPathTransformerLayer: key depth {keyDepth} and value depth {valueDepth} must be divisible by the {heads} heads", nameof(heads));
        PixelChannels = pixelChannels;
        MemoryChannels = memoryChannels;
        Heads = heads;
        BottleneckChannels = bottleneck;
        KeyDepth = keyDepth;
        ValueDepth = valueDepth;
        FfnChannels = ffnChannels;
        double qkvStd = 1 / Math.Sqrt(bottleneck);
        MemoryConv1 = RegisterModule("memory_conv1", new PointwiseConvBn(memoryChannels, bottleneck, relu: true, dtype: dtype, device: device, generator: generator));
        PixelConv1 = RegisterModule("pixel_conv1", new PointwiseConvBn(pixelChannels, bottleneck, relu: true, dtype: dtype, device: device, generator: generator));
        MemoryQkv = RegisterModule("memory_qkv", new PointwiseConvBn(bottleneck, 2 * keyDepth + valueDepth, relu: false, qkvStd, dtype: dtype, device: device, generator: generator));
        PixelQkv = RegisterModule("pixel_qkv", new PointwiseConvBn(bottleneck, 2 * keyDepth + valueDepth, relu: false, qkvStd, dtype: dtype, device: device, generator: generator));
        MemoryAttention = RegisterModule("memory_attention", new DualPathAttention(heads, valueDepth, dtype, device));
        PixelAttention = RegisterModule("pixel_attention", new DualPathAttention(heads, valueDepth, dtype, device));
        MemoryConv3 = RegisterModule("memory_conv3", new PointwiseConvBn(valueDepth, memoryChannels, relu: false, zeroGamma: true, dtype: dtype, device: device, generator: generator));
        if (ffnChannels > 0)
        {
            MemoryFfn1 = RegisterModule("memory_ffn1", new PointwiseConvBn(memoryChannels, ffnChannels, relu: true, dtype: dtype, device: device, generator: generator));
            MemoryFfn2 = RegisterModule("memory_ffn2", new PointwiseConvBn(ffnChannels, memoryChannels, relu: false, zeroGamma: true, dtype: dtype, device: device, generator: generator));
        }
        PixelConv3 = RegisterModule("pixel_conv3", new PointwiseConvBn(valueDepth, pixelChannels, relu: false, zeroGamma: true, dtype: dtype, device: device, generator: generator));
    }

    public int PixelChannels { get; }
    public int MemoryChannels { get; }
    public int Heads { get; }
    public int BottleneckChannels { get; }
    public int KeyDepth { get; }
    public int ValueDepth { get; }
    public int FfnChannels { get; }

    public PointwiseConvBn MemoryConv1 { get; }
    public PointwiseConvBn PixelConv1 { get; }
    public PointwiseConvBn MemoryQkv { get; }
    public PointwiseConvBn PixelQkv { get; }
    public DualPathAttention MemoryAttention { get; }
    public DualPathAttention PixelAttention { get; }
    public PointwiseConvBn MemoryConv3 { get; }
    public PointwiseConvBn? MemoryFfn1 { get; }
    public PointwiseConvBn? MemoryFfn2 { get; }
    public PointwiseConvBn PixelConv3 { get; }

    /// <summary>
    /// pixels [B, Cp, L] (the pixel block's output before its activation) and memory [B, Cm, N] to the new pixels
    /// (before activation) and the new memory.
    /// </summary>
    public (Tensor Pixels, Tensor Memory) Forward(Tensor pixels, Tensor memory)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(memory);
        if (pixels.Rank != 3 || pixels.Size(1) != PixelChannels || memory.Rank != 3 || memory.Size(1) != MemoryChannels || memory.Size(0) != pixels.Size(0))
            throw new ArgumentException($"DualPathTransformerLayer: expected pixels [B, {PixelChannels}, L] and memory [B, {MemoryChannels}, N], got {Shapes.Format(pixels.Shape)} and {Shapes.Format(memory.Shape)}", nameof(pixels));
        using var scope = new TensorScope();
        int b = pixels.Size(0), l = pixels.Size(2), n = memory.Size(2), h = Heads;
        var memorySpace = MemoryConv1.Forward(memory);
        var pixelSpace = PixelConv1.Forward(pixels.Relu());
        var memoryQkv = MemoryQkv.Forward(memorySpace);
        var pixelQkv = PixelQkv.Forward(pixelSpace);
        Tensor Heads4(Tensor qkv, int start, int channels, int length) => qkv.Narrow(1, start, channels).Reshape(b, h, channels / h, length);
        var memoryQuery = Heads4(memoryQkv, 0, KeyDepth, n);
        var memoryKey = Heads4(memoryQkv, KeyDepth, KeyDepth, n);
        var memoryValue = Heads4(memoryQkv, 2 * KeyDepth, ValueDepth, n);
        var pixelQuery = Heads4(pixelQkv, 0, KeyDepth, l);
        var pixelKey = Heads4(pixelQkv, KeyDepth, KeyDepth, l);
        var pixelValue = Heads4(pixelQkv, 2 * KeyDepth, ValueDepth, l);

        // Memory-to-pixel and memory-to-memory: one softmax over [pixels, memory].
        var keys = Tensor.Cat([pixelKey, memoryKey], 3);
        var values = Tensor.Cat([pixelValue, memoryValue], 3);
        var memoryOut = MemoryConv3.Forward(MemoryAttention.Forward(memoryQuery, keys, values), memory, relu: true);
        if (MemoryFfn1 != null && MemoryFfn2 != null)
            memoryOut = MemoryFfn2.Forward(MemoryFfn1.Forward(memoryOut), memoryOut, relu: true);

        // Pixel-to-memory, against the input memory's keys and values.
        var pixelsOut = PixelConv3.Forward(PixelAttention.Forward(pixelQuery, memoryKey, memoryValue), pixels, relu: false);
        return (scope.MoveOut(pixelsOut), scope.MoveOut(memoryOut));
    }
}

/// <summary>
/// The axial-attention bottleneck of MaX-DeepLab's pixel path (DeepLab2's AxialBlock with axial attention):
/// 1x1 convolution to 2f channels, BN, ReLU, height-axis then width-axis attention (Axial-DeepLab's
/// position-sensitive attention with batch norms on q/k/v, on the similarities and on the outputs; keys f, values
/// 2f channels), ReLU, 1x1 convolution to 4f, BN (zero-initialised gamma), plus the shortcut (a 1x1 convolution and
/// BN when the widths differ). <see cref="ForwardPreActivation"/> returns the sum before the final ReLU, which the
/// dual-path block's transformer reads; <see cref="Forward"/> applies the ReLU.
/// State names: conv_down, bn_down, height, width, conv_up, bn_up, downsample.{0,1}.
/// </summary>
public sealed class AxialBottleneck : UnaryModule
{
    public AxialBottleneck(int inChannels, int filters, int heads, int span, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(filters);
        InChannels = inChannels;
        Filters = filters;
        int inner = 2 * filters, outC = 4 * filters;
        ConvDown = RegisterModule("conv_down", new Conv2d(inChannels, inner, 1, bias: false, dtype: dtype, device: device, generator: generator));
        BnDown = RegisterModule("bn_down", new BatchNorm2d(inner, dtype: dtype, device: device));
        Height = RegisterModule("height", new AxialAttention(inner, heads, span, AxialAxis.Height, dtype, device, generator, batchNorm: true, qkvBatchNorm: true));
        Width = RegisterModule("width", new AxialAttention(inner, heads, span, AxialAxis.Width, dtype, device, generator, batchNorm: true, qkvBatchNorm: true));
        ConvUp = RegisterModule("conv_up", new Conv2d(inner, outC, 1, bias: false, dtype: dtype, device: device, generator: generator));
        BnUp = RegisterModule("bn_up", new BatchNorm2d(outC, dtype: dtype, device: device));
        Init.KaimingNormal_(ConvDown.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
        Init.KaimingNormal_(ConvUp.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
        Init.Zeros_(BnUp.Weight!);
        if (inChannels != outC)
        {
            var conv = new Conv2d(inChannels, outC, 1, bias: false, dtype: dtype, device: device, generator: generator);
            Init.KaimingNormal_(conv.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
            Downsample = RegisterModule("downsample", new Sequential(conv, new BatchNorm2d(outC, dtype: dtype, device: device)));
        }
    }

    public int InChannels { get; }
    public int Filters { get; }
    public int OutChannels => 4 * Filters;
    public Conv2d ConvDown { get; }
    public BatchNorm2d BnDown { get; }
    public AxialAttention Height { get; }
    public AxialAttention Width { get; }
    public Conv2d ConvUp { get; }
    public BatchNorm2d BnUp { get; }
    public Sequential? Downsample { get; }

    /// <summary>branch(x) + shortcut(x) for an activated input [B, Cin, H, W], before the ReLU.</summary>
    public Tensor ForwardPreActivation(Tensor input) => Run(input, relu: false);

    public override Tensor Forward(Tensor input) => Run(input, relu: true);

    /// <summary>The block; conv_up, bn_up, the shortcut sum (and the ReLU) are one fused convolution in inference.</summary>
    private Tensor Run(Tensor input, bool relu)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 || input.Size(1) != InChannels)
            throw new ArgumentException($"AxialBottleneck: expected [B, {InChannels}, H, W], got {Shapes.Format(input.Shape)}", nameof(input));
        using var scope = new TensorScope();
        var z = ConvDown.ForwardNorm(input, BnDown, relu: true);
        z = Width.Forward(Height.Forward(z)).Relu();
        var shortcut = Downsample?.Forward(input) ?? input;
        return scope.MoveOut(ConvUp.ForwardNorm(z, BnUp, shortcut, relu));
    }
}

/// <summary>
/// A dual-path transformer block (MaX-DeepLab): the pixel path's axial-attention bottleneck (pixel-to-pixel
/// attention along H, then W) followed by the transformer layer that couples it with the memory path
/// (memory-to-pixel + memory-to-memory attention, the memory FFN, pixel-to-memory attention). It takes an activated
/// pixel input [B, Cin, H, W] and the memory [B, Cm, N], and returns the activated pixels [B, 4f, H, W] and the new
/// memory, so it can replace any residual block of a stage. State names: <c>axial.*</c>, <c>transformer.*</c>.
/// </summary>
public sealed class DualPathBlock : Module
{
    public DualPathBlock(int inChannels, int filters, int axialHeads, int span, int memoryChannels,
        int transformerFilters = 128, int transformerHeads = 8, int ffnChannels = 2048,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        Axial = RegisterModule("axial", new AxialBottleneck(inChannels, filters, axialHeads, span, dtype, device, generator));
        Transformer = RegisterModule("transformer", new DualPathTransformerLayer(4 * filters, memoryChannels, transformerFilters, transformerHeads, ffnChannels,
            dtype: dtype, device: device, generator: generator));
    }

    public AxialBottleneck Axial { get; }
    public DualPathTransformerLayer Transformer { get; }
    public int InChannels => Axial.InChannels;
    public int OutChannels => Axial.OutChannels;

    public (Tensor Pixels, Tensor Memory) Forward(Tensor pixels, Tensor memory)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(memory);
        using var scope = new TensorScope();
        var s = Axial.ForwardPreActivation(pixels);
        int b = s.Size(0), c = s.Size(1), hh = s.Size(2), ww = s.Size(3);
        var (p, m) = Transformer.Forward(s.Reshape(b, c, hh * ww), memory);
        var outPixels = p.Relu().Reshape(b, c, hh, ww);
        return (scope.MoveOut(outPixels), scope.MoveOut(m));
    }
}
