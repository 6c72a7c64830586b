namespace Runtime.Backends;

/// <summary>What the optional mask of <see cref="IBackend.Attention"/> holds.</summary>
public enum AttentionMaskKind
{
    /// <summary>No mask (the mask view is ignored).</summary>
    None,

    /// <summary>A Bool view: true (1) = the query may attend to the key, false = the score is -infinity.</summary>
    Boolean,

    /// <summary>A view of the queries' dtype added to the scaled scores (-infinity masks a key).</summary>
    Additive,
}

/// <summary>
/// The optional mask of a scaled dot-product attention: a view over [B, H, L, S] (zero strides for
/// broadcast dimensions) and what it holds; <paramref name="Causal"/> additionally hides key j from query
/// i when j &gt; i (top-left aligned, as torch's is_causal).
/// </summary>
public readonly record struct AttentionMask(AttentionMaskKind Kind, TensorView View, bool Causal)
{
    public static AttentionMask None(bool causal = false) => new(AttentionMaskKind.None, default, causal);
}

// Fused scaled dot-product attention (FlashAttention-2 style): memory linear in the sequence lengths,
// the L x S scores are never stored. Every tensor but the mask is a contiguous, validated view of
// one floating dtype; outputs are fresh buffers that the kernel writes completely.
// s[i, j] = scale * q[i] . k[j] + mask[i, j] (masked: -infinity); out[i] = sum_j softmax_j(s[i])[j] v[j].
// A row whose keys are all masked has out = 0 and logsumexp = -infinity (and a zero gradient).
public partial interface IBackend
{
    /// <summary>
    /// Forward: q [B, H, L, D], k [B, H, S, D], v [B, H, S, Dv] -> out [B, H, L, Dv] and the row
    /// logsumexp lse [B, H, L] of the masked, scaled scores.
    /// </summary>
    void Attention(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale, TensorView output, TensorView logSumExp);

    /// <summary>
    /// Backward: from dout [B, H, L, Dv], the forward's out and lse, writes dq, dk, dv (the shapes of
    /// q, k, v). The probabilities are recomputed tile by tile; deterministic (fixed summation order).
    /// </summary>
    void AttentionBackward(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale, TensorView output, TensorView logSumExp,
        TensorView gradOutput, TensorView gradQ, TensorView gradK, TensorView gradV);
}
