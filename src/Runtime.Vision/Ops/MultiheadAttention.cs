using Runtime.Autograd;
using Runtime.Nn;

namespace Runtime.Vision.Ops;

/// <summary>
/// torch.nn.MultiheadAttention (torch 1.13) with the same state names and math: in_proj_weight [3E, E],
/// in_proj_bias [3E], out_proj.weight [E, E], out_proj.bias [E]; queries, keys and values of the
/// embedding size (kdim = vdim = embed_dim; add_bias_kv and add_zero_attn are not offered).
/// The output goes through the fused <see cref="Attention.ScaledDotProductAttention"/> unless dropout is
/// active (training with p &gt; 0: explicit softmax, dropout, product). needWeights computes the
/// attention weights explicitly next to it.
/// </summary>
public sealed class MultiheadAttention : Module
{
    private readonly Dropout _dropout;

    public MultiheadAttention(int embedDim, int numHeads, double dropout = 0, bool bias = true, bool batchFirst = false,
        DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embedDim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numHeads);
        if (embedDim % numHeads != 0)
            throw new ArgumentException($"MultiheadAttention: embedDim ({embedDim}) must be divisible by numHeads ({numHeads})", nameof(numHeads));
        if (!dtype.IsFloating())
            throw new ArgumentException($"MultiheadAttention: dtype must be Float32 or Float64, got {dtype.Name()}", nameof(dtype));
        EmbedDim = embedDim;
        NumHeads = numHeads;
        HeadDim = embedDim / numHeads;
        BatchFirst = batchFirst;
        _dropout = new Dropout(dropout, generator);
        var w = RegisterParameter("in_proj_weight", Tensor.Zeros([3 * embedDim, embedDim], dtype, device));
        Init.XavierUniform_(w, generator: generator);
        if (bias) RegisterParameter("in_proj_bias", Tensor.Zeros([3 * embedDim], dtype, device));
        else RegisterParameter("in_proj_bias", null, allowNull: true);
        var proj = RegisterModule("out_proj", new Linear(embedDim, embedDim, bias, dtype, device, generator));
        if (proj.Bias is { } ob)
            using (GradMode.NoGrad()) ob.Fill_(0);
    }

    public int EmbedDim { get; }
    public int NumHeads { get; }
    public int HeadDim { get; }
    public bool BatchFirst { get; }
    public double Dropout => _dropout.P;
    public Tensor InProjWeight => GetParameter("in_proj_weight")!;
    public Tensor? InProjBias => GetParameter("in_proj_bias");
    public Linear OutProj => (Linear)NamedChildren().First(c => c.Name == "out_proj").Module;

    /// <summary>
    /// Attention of <paramref name="query"/> [L, N, E] ([N, L, E] when batch-first; [L, E] unbatched) over
    /// <paramref name="key"/> and <paramref name="value"/> [S, N, E]. <paramref name="keyPaddingMask"/> [N, S]:
    /// Bool true = ignore that key, or floating, added. <paramref name="attnMask"/> [L, S] or [N*heads, L, S]:
    /// Bool true = not allowed (torch.nn.MultiheadAttention's convention, the opposite of the Bool mask of
    /// <see cref="Attention.ScaledDotProductAttention"/>), or floating, added. Returns the output of the
    /// query's shape and, when <paramref name="needWeights"/>, the weights [N, L, S] averaged over heads
    /// (or [N, heads, L, S]). A query whose keys are all masked gets a zero attention output (torch: NaN);
    /// its returned weights are NaN as torch's.
    /// </summary>
    public (Tensor Output, Tensor? Weights) Forward(Tensor query, Tensor key, Tensor value, Tensor? keyPaddingMask = null, bool needWeights = true,
        Tensor? attnMask = null, bool averageAttnWeights = true)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        const string op = "MultiheadAttention";
        bool batched = query.Rank == 3;
        if (query.Rank is not (2 or 3) || key.Rank != query.Rank || value.Rank != query.Rank)
            throw new ArgumentException($"{op}: expected query, key and value all 3-D (batched) or all 2-D (unbatched), got shapes {Shapes.Format(query.Shape)}, {Shapes.Format(key.Shape)} and {Shapes.Format(value.Shape)}", nameof(query));
        foreach (var (t, name) in new[] { (query, "query"), (key, "key"), (value, "value") })
            if (t.Shape[^1] != EmbedDim)
                throw new ArgumentException($"{op}: expected {name} with embedding size {EmbedDim} in its last dimension, got shape {Shapes.Format(t.Shape)}", name);
        using var scope = new TensorScope();
        // Batch-first [N, L, E] views.
        Tensor Bf(Tensor t) => !batched ? t.Unsqueeze(0) : BatchFirst ? t : t.Transpose(0, 1);
        var q = Bf(query);
        var k = Bf(key);
        var v = Bf(value);
        int n = q.Shape[0], l = q.Shape[1], s = k.Shape[1];
        if (k.Shape[0] != n || v.Shape[0] != n || v.Shape[1] != s)
            throw new ArgumentException($"{op}: query, key and value disagree in batch size or key count: shapes {Shapes.Format(query.Shape)}, {Shapes.Format(key.Shape)} and {Shapes.Format(value.Shape)}", nameof(key));
        int e = EmbedDim, hd = HeadDim, heads = NumHeads;
        var w = InProjWeight;
        var b = InProjBias;
        Tensor Project(Tensor x, int part, int len)
        {
            var y = x.MatMul(w.Narrow(0, part * e, e).MT);
            if (b != null) y = y + b.Narrow(0, part * e, e);
            return y.Reshape(n, len, heads, hd).Permute(0, 2, 1, 3);
        }
        var qh = Project(q, 0, l);
        var kh = Project(k, 1, s);
        var vh = Project(v, 2, s);

        var (boolMask, addMask) = CombineMasks(op, keyPaddingMask, attnMask, batched, n, heads, l, s, query);
        double scale = 1.0 / Math.Sqrt(hd);
        Tensor? weights = null;
        Tensor attn;
        bool dropping = IsTraining && _dropout.P > 0;
        if (needWeights || dropping)
        {
            var scores = qh.MatMul(kh.MT) * scale;
            if (addMask != null) scores = scores + addMask;
            if (boolMask != null) scores = scores.MaskedFill(boolMask.LogicalNot(), double.NegativeInfinity);
            weights = scores.Softmax(-1);
            if (dropping)
            {
                _dropout.Train(true);
                weights = _dropout.Forward(weights);
            }
        }
        if (dropping) attn = weights!.MatMul(vh);
        else attn = Attention.ScaledDotProductAttention(qh, kh, vh, (Tensor?)boolMask ?? addMask);
        var merged = attn.Permute(0, 2, 1, 3).Reshape(n, l, e);
        var output = OutProj.Forward(merged);
        output = !batched ? output.Squeeze(0) : BatchFirst ? output : output.Transpose(0, 1);
        scope.MoveOut(output);
        if (!needWeights) return (output, null);
        var wOut = averageAttnWeights ? weights!.Mean(1) : weights!;
        if (!batched) wOut = wOut.Squeeze(0);
        scope.MoveOut(wOut);
        return (output, wOut);
    }

    /// <summary>
    /// The key-padding and attention masks as one mask for the scores [N, heads, L, S] (broadcastable):
    /// Bool (true = may attend) when both are Bool, else additive in the query's dtype.
    /// </summary>
    private static (Tensor? Bool, Tensor? Additive) CombineMasks(string op, Tensor? keyPaddingMask, Tensor? attnMask, bool batched, int n, int heads, int l, int s, Tensor query)
    {
        Tensor? kpm = null, am = null;
        if (keyPaddingMask != null)
        {
            int[] want = batched ? [n, s] : [s];
            if (!keyPaddingMask.ShapeArray.AsSpan().SequenceEqual(want))
                throw new ArgumentException($"{op}: expected keyPaddingMask of shape {Shapes.Format(want)}, got {Shapes.Format(keyPaddingMask.Shape)}", nameof(keyPaddingMask));
            CheckMaskType(op, keyPaddingMask, query, nameof(keyPaddingMask));
            kpm = keyPaddingMask.Reshape(n, 1, 1, s);
        }
        if (attnMask != null)
        {
            CheckMaskType(op, attnMask, query, nameof(attnMask));
            if (attnMask.Rank == 2 && attnMask.Shape[0] == l && attnMask.Shape[1] == s) am = attnMask;
            else if (attnMask.Rank == 3 && attnMask.Shape[0] == n * heads && attnMask.Shape[1] == l && attnMask.Shape[2] == s) am = attnMask.Reshape(n, heads, l, s);
            else
                throw new ArgumentException($"{op}: expected attnMask of shape [{l}, {s}] or [{n * heads}, {l}, {s}], got {Shapes.Format(attnMask.Shape)}", nameof(attnMask));
        }
        if (kpm == null && am == null) return (null, null);
        bool allBool = (kpm == null || kpm.DType == DType.Bool) && (am == null || am.DType == DType.Bool);
        if (allBool)
        {
            Tensor? allowed = null;
            foreach (var m in new[] { kpm, am })
            {
                if (m == null) continue;
                var ok = m.LogicalNot();
                allowed = allowed == null ? ok : allowed.LogicalAnd(ok);
            }
            return (allowed, null);
        }
        Tensor? add = null;
        foreach (var m in new[] { kpm, am })
        {
            if (m == null) continue;
            var a = m.DType == DType.Bool ? Tensor.Zeros(m.ShapeArray, query.DType, query.Device).MaskedFill(m, double.NegativeInfinity) : m.To(query.DType);
            add = add == null ? a : add + a;
        }
        return (null, add);
    }

    private static void CheckMaskType(string op, Tensor m, Tensor query, string name)
    {
        if (m.DType != DType.Bool && !m.DType.IsFloating())
            throw new ArgumentException($"{op}: {name} must be Bool or floating, got {m.DType.Name()}", name);
        if (m.Device != query.Device)
            throw new ArgumentException($"{op}: expected all tensors on one device, got query on {query.Device} and {name} on {m.Device}", name);
    }

    public override string ToString() => $"MultiheadAttention(embed_dim={EmbedDim}, num_heads={NumHeads}, dropout={Dropout}, batch_first={BatchFirst})";
}
