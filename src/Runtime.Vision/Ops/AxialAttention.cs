using Runtime.Nn;

namespace Runtime.Vision.Ops;

/// <summary>The image axis an <see cref="AxialAttention"/> attends along.</summary>
public enum AxialAxis
{
    /// <summary>Along H: each column of the feature map is one sequence.</summary>
    Height,

    /// <summary>Along W: each row is one sequence.</summary>
    Width,
}

/// <summary>
/// Position-sensitive axial self-attention (Wang et al. 2020, Axial-DeepLab; the pixel path of
/// MaX-DeepLab): along one axis of x [N, C, H, W], for every output position o,
/// y_o = sum_p softmax_p(q_o.k_p + q_o.rq[p-o] + k_p.rk[p-o]) (v_p + rv[p-o]), per head, with learned
/// relative embeddings rq, rk [2*span-1, C/(2*heads)] and rv [2*span-1, C/heads] shared by the heads.
/// q, k (C/2 channels each) and v (C channels) come from one 1x1 projection without bias ("qkv", a
/// Linear [2C, C]), without a 1/sqrt(d) scale. By default this is the paper's formula as written; with
/// <c>batchNorm</c> the three similarity terms are batch-normalised separately before they are summed
/// ("bn_similarity", BatchNorm2d over the 3*heads maps [qk, qr, kr]) and so are the two output terms
/// ("bn_output", BatchNorm1d over the 2*C channels [a v, a rv]), as Axial-DeepLab's implementation does;
/// <c>qkvBatchNorm</c> also normalises the 2C projected channels [q, k, v] ("bn_qkv", BatchNorm1d) before they are
/// split, as DeepLab2's axial layer (MaX-DeepLab) does. The length along the axis must be at most <see cref="Span"/>. Composed of tensor
/// operators, so it runs on every device and differentiates through the core's rules.
/// </summary>
public sealed class AxialAttention : UnaryModule
{
    public AxialAttention(int channels, int heads, int span, AxialAxis axis, DType dtype = DType.Float32, Device? device = null, Generator? generator = null,
        bool batchNorm = false, bool qkvBatchNorm = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(span);
        if (channels % 2 != 0 || channels / 2 % heads != 0)
            throw new ArgumentException($"AxialAttention: channels ({channels}) must be even and channels/2 divisible by heads ({heads})", nameof(heads));
        if (axis is not (AxialAxis.Height or AxialAxis.Width))
            throw new ArgumentOutOfRangeException(nameof(axis), axis, "AxialAttention: axis must be Height or Width");
        Channels = channels;
        Heads = heads;
        Span = span;
        Axis = axis;
        QkDim = channels / 2 / heads;
        VDim = channels / heads;
        RegisterModule("qkv", new Linear(channels, 2 * channels, bias: false, dtype, device, generator));
        // Axial-DeepLab's initialisation: normal with variance 1 / (per-head dims).
        Init.Normal_(RegisterParameter("relative_q", Tensor.Zeros([2 * span - 1, QkDim], dtype, device)), 0, Math.Sqrt(1.0 / QkDim), generator);
        Init.Normal_(RegisterParameter("relative_k", Tensor.Zeros([2 * span - 1, QkDim], dtype, device)), 0, Math.Sqrt(1.0 / QkDim), generator);
        Init.Normal_(RegisterParameter("relative_v", Tensor.Zeros([2 * span - 1, VDim], dtype, device)), 0, Math.Sqrt(1.0 / VDim), generator);
        if (qkvBatchNorm) BnQkv = RegisterModule("bn_qkv", new BatchNorm1d(2 * channels, dtype: dtype, device: device));
        if (batchNorm)
        {
            BnSimilarity = RegisterModule("bn_similarity", new BatchNorm2d(3 * heads, dtype: dtype, device: device));
            BnOutput = RegisterModule("bn_output", new BatchNorm1d(2 * channels, dtype: dtype, device: device));
        }
    }

    /// <summary>The batch norm of the 2C projected channels, when built with qkvBatchNorm.</summary>
    public BatchNorm1d? BnQkv { get; }

    /// <summary>The similarity batch norm (3*heads maps), when built with batchNorm.</summary>
    public BatchNorm2d? BnSimilarity { get; }

    /// <summary>The output batch norm (2*C channels), when built with batchNorm.</summary>
    public BatchNorm1d? BnOutput { get; }

    public int Channels { get; }
    public int Heads { get; }
    public int Span { get; }
    public AxialAxis Axis { get; }

    /// <summary>Query/key channels per head (C / (2 * heads)).</summary>
    public int QkDim { get; }

    /// <summary>Value channels per head (C / heads).</summary>
    public int VDim { get; }

    public Linear Qkv => (Linear)NamedChildren().First(c => c.Name == "qkv").Module;
    public Tensor RelativeQ => GetParameter("relative_q")!;
    public Tensor RelativeK => GetParameter("relative_k")!;
    public Tensor RelativeV => GetParameter("relative_v")!;

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 || input.Shape[1] != Channels)
            throw new ArgumentException($"AxialAttention: expected input [N, {Channels}, H, W], got shape {Shapes.Format(input.Shape)}", nameof(input));
        if (BnQkv != null && BatchNormFold.Applies(this, BnQkv))
        {
            // Inference: bn_qkv folded into the projection (cached, refolded when a source tensor changes).
            _fold ??= new BatchNormFold();
            var (w, b) = _fold.Get(Qkv.Weight, null, BnQkv);
            return Compute(input, w, RelativeQ, RelativeK, RelativeV, Heads, Span, Axis, BnSimilarity, BnOutput, null, b);
        }
        return Compute(input, Qkv.Weight, RelativeQ, RelativeK, RelativeV, Heads, Span, Axis, BnSimilarity, BnOutput, BnQkv);
    }

    private BatchNormFold? _fold;

    /// <summary>The projection with bn_qkv folded in, once an inference forward has run (null otherwise).</summary>
    public BatchNormFold? InferenceFold => _fold;

    protected override void ReleaseCaches()
    {
        _fold?.Dispose();
        _fold = null;
    }

    /// <summary>
    /// The functional form of <see cref="Forward"/>: input [N, C, H, W], qkvWeight [2C, C], relativeQ and
    /// relativeK [2*span-1, C/(2*heads)], relativeV [2*span-1, C/heads]; differentiable in all five.
    /// </summary>
    public static Tensor Apply(Tensor input, Tensor qkvWeight, Tensor relativeQ, Tensor relativeK, Tensor relativeV, int heads, int span, AxialAxis axis) =>
        Compute(input, qkvWeight, relativeQ, relativeK, relativeV, heads, span, axis, null, null, null);

    private static Tensor Compute(Tensor input, Tensor qkvWeight, Tensor relativeQ, Tensor relativeK, Tensor relativeV, int heads, int span, AxialAxis axis,
        BatchNorm2d? bnSimilarity, BatchNorm1d? bnOutput, BatchNorm1d? bnQkv, Tensor? qkvBias = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(qkvWeight);
        ArgumentNullException.ThrowIfNull(relativeQ);
        ArgumentNullException.ThrowIfNull(relativeK);
        ArgumentNullException.ThrowIfNull(relativeV);
        if (input.Rank != 4)
            throw new ArgumentException($"AxialAttention: expected input [N, C, H, W], got shape {Shapes.Format(input.Shape)}", nameof(input));
        int n = input.Shape[0], c = input.Shape[1], hh = input.Shape[2], ww = input.Shape[3];
        if (heads < 1 || c % 2 != 0 || c / 2 % heads != 0)
            throw new ArgumentException($"AxialAttention: channels ({c}) must be even and channels/2 divisible by heads ({heads})", nameof(heads));
        int cq = c / 2, h = heads, dq = cq / heads, dv = c / heads, m = 2 * span - 1;
        if (!qkvWeight.ShapeArray.AsSpan().SequenceEqual([2 * c, c]))
            throw new ArgumentException($"AxialAttention: expected qkvWeight [{2 * c}, {c}], got {Shapes.Format(qkvWeight.Shape)}", nameof(qkvWeight));
        if (!relativeQ.ShapeArray.AsSpan().SequenceEqual([m, dq]) || !relativeK.ShapeArray.AsSpan().SequenceEqual([m, dq]) || !relativeV.ShapeArray.AsSpan().SequenceEqual([m, dv]))
            throw new ArgumentException($"AxialAttention: expected relative embeddings [{m}, {dq}], [{m}, {dq}], [{m}, {dv}], got {Shapes.Format(relativeQ.Shape)}, {Shapes.Format(relativeK.Shape)}, {Shapes.Format(relativeV.Shape)}", nameof(relativeQ));
        int len = axis == AxialAxis.Height ? hh : ww, other = axis == AxialAxis.Height ? ww : hh;
        if (len > span)
            throw new ArgumentException($"AxialAttention: the {axis} axis of input {Shapes.Format(input.Shape)} is {len} long, more than the span {span} of the relative embeddings", nameof(input));
        using var scope = new TensorScope();
        int bs = n * other;
        // [N, other, len, C] sequences.
        var seq = (axis == AxialAxis.Height ? input.Permute(0, 3, 2, 1) : input.Permute(0, 2, 3, 1)).Reshape(bs, len, c);
        var qkv = seq.MatMul(qkvWeight.MT);
        if (bnQkv != null) qkv = bnQkv.Forward(qkv.Permute(0, 2, 1)).Permute(0, 2, 1);
        if (qkvBias != null) qkv = qkv + qkvBias;
        var q = qkv.Narrow(-1, 0, cq).Reshape(bs, len, h, dq).Permute(0, 2, 1, 3);
        var k = qkv.Narrow(-1, cq, cq).Reshape(bs, len, h, dq).Permute(0, 2, 1, 3);
        var v = qkv.Narrow(-1, 2 * cq, c).Reshape(bs, len, h, dv).Permute(0, 2, 1, 3);
        // Relative embeddings per (o, p): index p - o + span - 1.
        var offsets = new long[len * len];
        for (int o = 0; o < len; o++)
            for (int p = 0; p < len; p++) offsets[o * len + p] = p - o + span - 1;
        var idx = Tensor.From<long>(offsets, [len * len]).To(input.Device);
        var rq = relativeQ.IndexSelect(0, idx).Reshape(len, len, dq);   // [o, p, c]
        var rk = relativeK.IndexSelect(0, idx).Reshape(len, len, dq);
        var rv = relativeV.IndexSelect(0, idx).Reshape(len, len, dv);
        var qk = q.MatMul(k.MT);                                          // [bs, h, o, p]
        // q_o . rq[o, p]: batched over o.
        var qr = q.Permute(2, 0, 1, 3).Reshape(len, bs * h, dq).MatMul(rq.MT) // [o, bs*h, p]
            .Reshape(len, bs, h, len).Permute(1, 2, 0, 3);
        // k_p . rk[o, p]: batched over p.
        var kr = k.Permute(2, 0, 1, 3).Reshape(len, bs * h, dq).MatMul(rk.Permute(1, 2, 0)) // [p, bs*h, o]
            .Reshape(len, bs, h, len).Permute(1, 2, 3, 0);
        var logits = bnSimilarity == null
            ? qk + qr + kr
            : bnSimilarity.Forward(Tensor.Cat([qk, qr, kr], 1)).Reshape(bs, 3, h, len, len).Sum(1);
        var a = logits.Softmax(-1);
        var av = a.Permute(2, 0, 1, 3).Reshape(len, bs * h, len).MatMul(rv)  // [o, bs*h, dv]
            .Reshape(len, bs, h, dv).Permute(1, 2, 0, 3);
        var sv = a.MatMul(v);                                             // [bs, h, o, dv]
        Tensor y;
        if (bnOutput == null) y = (sv + av).Permute(0, 2, 1, 3).Reshape(n, other, len, c);
        else
        {
            // Channels [a v (C), a rv (C)] at each position, normalised, then summed.
            var both = Tensor.Stack([sv, av], 1).Permute(0, 1, 2, 4, 3).Reshape(bs, 2 * c, len);
            y = bnOutput.Forward(both).Reshape(bs, 2, c, len).Sum(1).Permute(0, 2, 1).Reshape(n, other, len, c);
        }
        var result = axis == AxialAxis.Height ? y.Permute(0, 3, 2, 1) : y.Permute(0, 3, 1, 2);
        return scope.MoveOut(result.Contiguous());
    }

    public override string ToString() => $"AxialAttention(channels={Channels}, heads={Heads}, span={Span}, axis={Axis})";
}

/// <summary>
/// The axial-attention bottleneck of Axial-DeepLab / MaX-DeepLab: conv 1x1 (channels to inner) - BN -
/// ReLU - height-axis attention - width-axis attention - ReLU - conv 1x1 (inner to channels) - BN, plus
/// the input, then ReLU. State names: conv_down, bn1, height, width, conv_up, bn2.
/// </summary>
public sealed class AxialBlock : UnaryModule
{
    public AxialBlock(int channels, int innerChannels, int heads, int span, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ConvDown = RegisterModule("conv_down", new Conv2d(channels, innerChannels, 1, bias: false, dtype: dtype, device: device, generator: generator));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(innerChannels, dtype: dtype, device: device));
        Height = RegisterModule("height", new AxialAttention(innerChannels, heads, span, AxialAxis.Height, dtype, device, generator));
        Width = RegisterModule("width", new AxialAttention(innerChannels, heads, span, AxialAxis.Width, dtype, device, generator));
        ConvUp = RegisterModule("conv_up", new Conv2d(innerChannels, channels, 1, bias: false, dtype: dtype, device: device, generator: generator));
        Bn2 = RegisterModule("bn2", new BatchNorm2d(channels, dtype: dtype, device: device));
    }

    public Conv2d ConvDown { get; }
    public BatchNorm2d Bn1 { get; }
    public AxialAttention Height { get; }
    public AxialAttention Width { get; }
    public Conv2d ConvUp { get; }
    public BatchNorm2d Bn2 { get; }

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = new TensorScope();
        var z = ConvDown.ForwardNorm(input, Bn1, relu: true);
        z = Width.Forward(Height.Forward(z)).Relu();
        return scope.MoveOut(ConvUp.ForwardNorm(z, Bn2, input, relu: true));
    }
}
