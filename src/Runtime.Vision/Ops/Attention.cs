using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime.Vision.Ops;

/// <summary>
/// Scaled dot-product attention with fused kernels (FlashAttention-2 style): memory linear in the
/// sequence lengths, the L x S probabilities recomputed tile by tile in the backward pass.
/// </summary>
public static class Attention
{
    /// <summary>
    /// softmax(q k^T * scale + mask) v over the last two dimensions. <paramref name="query"/> [..., L, D],
    /// <paramref name="key"/> [..., S, D], <paramref name="value"/> [..., S, Dv] with the same leading
    /// dimensions (none, [B] or [B, H]); the result is [..., L, Dv].
    /// <paramref name="mask"/> (broadcastable to [..., L, S]): Bool, true = the query may attend to the key
    /// (torch's boolean attn_mask), or floating, added to the scaled scores (converted to the query's dtype;
    /// it gets no gradient, so one that requires grad is refused). <paramref name="isCausal"/> hides key j
    /// from query i when j &gt; i (top-left aligned, torch 2's is_causal); it may be combined with a mask.
    /// <paramref name="scale"/> defaults to 1/sqrt(D).
    /// A query row whose keys are all masked gives zeros and a zero gradient (torch 1.13's explicit
    /// softmax gives NaN there).
    /// </summary>
    public static Tensor ScaledDotProductAttention(Tensor query, Tensor key, Tensor value, Tensor? mask = null, bool isCausal = false, double? scale = null)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        const string op = "ScaledDotProductAttention";
        var (lead, l, d, s, dv) = CheckInputs(op, query, key, value);
        double sc = scale ?? (d > 0 ? 1.0 / Math.Sqrt(d) : 1.0);
        if (!double.IsFinite(sc))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, $"{op}: scale must be finite");
        int b = lead.Length >= 1 ? lead[0] : 1, h = lead.Length == 2 ? lead[1] : 1;
        int[] q4 = [b, h, l, d], k4 = [b, h, s, d], v4 = [b, h, s, dv], o4 = [b, h, l, dv];
        var outShape = lead.Concat(new[] { l, dv }).ToArray();
        var lseShape = lead.Concat(new[] { l }).ToArray();

        Tensor? maskView = ExpandMask(op, mask, query, lead, l, s, b, h);
        try
        {
            var kind = mask == null ? AttentionMaskKind.None : mask.DType == DType.Bool ? AttentionMaskKind.Boolean : AttentionMaskKind.Additive;
            var y = Tensor.Empty(outShape, query.DType, query.Device);
            var lse = Tensor.Empty(lseShape, query.DType, query.Device);
            using var qc = Untracked(query);
            using var kc = Untracked(key);
            using var vc = Untracked(value);
            if (y.NumEl > 0)
                query.Backend.Attention(View(qc, q4), View(kc, k4), View(vc, v4), MaskOf(kind, maskView, isCausal), sc, View(y, o4), View(lse, [b, h, l]));
            Tensor[] saved = maskView == null ? [qc, kc, vc, y, lse] : [qc, kc, vc, y, lse, maskView];
            var qShape = query.ShapeArray;
            var kShape = key.ShapeArray;
            var vShape = value.ShapeArray;
            var result = Tensor.Record(y, op, [query, key, value], saved, (g, sv) =>
            {
                var gq = Tensor.Empty(qShape, g.DType, g.Device);
                var gk = Tensor.Empty(kShape, g.DType, g.Device);
                var gv = Tensor.Empty(vShape, g.DType, g.Device);
                if (l == 0 || s == 0 || b * h == 0)
                {
                    // Nothing to attend or no queries: zero gradients (the kernels need both sides).
                    gq.Fill_(0);
                    gk.Fill_(0);
                    gv.Fill_(0);
                    return [gq, gk, gv];
                }
                using var gc = Untracked(g);
                g.Backend.AttentionBackward(View(sv[0], q4), View(sv[1], k4), View(sv[2], v4), MaskOf(kind, sv.Length > 5 ? sv[5] : null, isCausal), sc,
                    View(sv[3], o4), View(sv[4], [b, h, l]), View(gc, o4), View(gq, q4), View(gk, k4), View(gv, v4));
                return [gq, gk, gv];
            });
            lse.Dispose();
            return result;
        }
        finally
        {
            maskView?.Dispose();
        }
    }

    /// <summary>Checks q, k, v and returns the leading dims and L, D, S, Dv.</summary>
    private static (int[] Lead, int L, int D, int S, int Dv) CheckInputs(string op, Tensor q, Tensor k, Tensor v)
    {
        foreach (var (t, name) in new[] { (q, "query"), (k, "key"), (v, "value") })
        {
            if (t.Rank is < 2 or > 4)
                throw new ArgumentException($"{op}: expected {name} of rank 2, 3 or 4 ([L, D], [B, L, D] or [B, H, L, D]), got shape {Shapes.Format(t.Shape)}", name);
            if (!t.DType.IsFloating())
                throw new ArgumentException($"{op}: expected a Float32 or Float64 {name}, got {t.DType.Name()}", name);
        }
        if (k.DType != q.DType || v.DType != q.DType)
            throw new ArgumentException($"{op}: query, key and value must have one dtype, got {q.DType.Name()}, {k.DType.Name()} and {v.DType.Name()}", "key");
        if (k.Device != q.Device || v.Device != q.Device)
            throw new ArgumentException($"{op}: expected all tensors on one device, got {q.Device}, {k.Device} and {v.Device}", "key");
        if (k.Rank != q.Rank || v.Rank != q.Rank)
            throw new ArgumentException($"{op}: query, key and value must have one rank, got shapes {Shapes.Format(q.Shape)}, {Shapes.Format(k.Shape)} and {Shapes.Format(v.Shape)}", "key");
        var lead = q.ShapeArray[..^2];
        if (!lead.AsSpan().SequenceEqual(k.ShapeArray.AsSpan(0, lead.Length)) || !lead.AsSpan().SequenceEqual(v.ShapeArray.AsSpan(0, lead.Length)))
            throw new ArgumentException($"{op}: query, key and value must share their leading dimensions, got shapes {Shapes.Format(q.Shape)}, {Shapes.Format(k.Shape)} and {Shapes.Format(v.Shape)}", "key");
        int l = q.Shape[^2], d = q.Shape[^1], s = k.Shape[^2];
        if (k.Shape[^1] != d)
            throw new ArgumentException($"{op}: key's last dimension must equal query's ({d}), got shapes query {Shapes.Format(q.Shape)} and key {Shapes.Format(k.Shape)}", "key");
        if (v.Shape[^2] != s)
            throw new ArgumentException($"{op}: value must have as many rows as key ({s}), got shapes key {Shapes.Format(k.Shape)} and value {Shapes.Format(v.Shape)}", "value");
        return (lead, l, d, s, v.Shape[^1]);
    }

    /// <summary>The mask as a [B, H, L, S] view (zero strides where it broadcasts), in Bool or the query's dtype.</summary>
    private static Tensor? ExpandMask(string op, Tensor? mask, Tensor q, int[] lead, int l, int s, int b, int h)
    {
        if (mask == null) return null;
        if (mask.Device != q.Device)
            throw new ArgumentException($"{op}: expected all tensors on one device, got query on {q.Device} and mask on {mask.Device}", nameof(mask));
        if (mask.DType != DType.Bool && !mask.DType.IsFloating())
            throw new ArgumentException($"{op}: mask must be Bool (true = may attend) or floating (added to the scores), got {mask.DType.Name()}", nameof(mask));
        if (mask.DType != DType.Bool && mask.RequiresGrad && GradMode.IsEnabled)
            throw new ArgumentException($"{op}: an additive mask gets no gradient; detach it (it requires grad)", nameof(mask));
        int[] target = lead.Concat(new[] { l, s }).ToArray();
        bool ok = mask.Rank <= target.Length;
        for (int i = 1; ok && i <= mask.Rank; i++)
            ok = mask.Shape[^i] == 1 || mask.Shape[^i] == target[^i];
        if (!ok)
            throw new ArgumentException($"{op}: mask of shape {Shapes.Format(mask.Shape)} cannot be broadcast to the scores' shape {Shapes.Format(target)}", nameof(mask));
        using var _ = GradMode.NoGrad();
        using var typed = mask.DType == DType.Bool || mask.DType == q.DType ? mask.Alias(register: false) : mask.To(q.DType).Unscoped();
        var shape4 = new int[4];
        int[] target4 = [b, h, l, s];
        // Right-align the mask's dims with [lead..., L, S], then with [B, H, L, S].
        var full = Enumerable.Repeat(1, target.Length - mask.Rank).Concat(mask.ShapeArray).ToArray();
        int pad = 4 - full.Length;
        for (int i = 0; i < 4; i++) shape4[i] = i < pad ? 1 : full[i - pad];
        using var r = typed.Reshape(shape4).Unscoped();
        return r.Expand(target4).Unscoped();
    }

    private static AttentionMask MaskOf(AttentionMaskKind kind, Tensor? mask, bool causal) =>
        mask == null ? AttentionMask.None(causal) : new AttentionMask(kind, mask.KernelView, causal);

    /// <summary>A contiguous tensor with the same values that records nothing (an alias when already contiguous).</summary>
    internal static Tensor Untracked(Tensor t)
    {
        using var _ = GradMode.NoGrad();
        return t.IsContiguous ? t.Alias(register: false) : t.Contiguous().Unscoped();
    }

    /// <summary>A contiguous tensor's kernel view with another (same-size) shape.</summary>
    private static TensorView View(Tensor t, int[] shape)
    {
        var kv = t.KernelView;
        var strides = new long[shape.Length];
        long st = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = st;
            st *= shape[i];
        }
        return new TensorView(kv.Storage, kv.Offset, shape, strides, kv.DType);
    }
}
