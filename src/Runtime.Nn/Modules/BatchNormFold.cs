using Runtime.Autograd;

namespace Runtime.Nn;

/// <summary>
/// A convolution's weight [Cout, ...] and bias with the batch norm after it folded in, for inference:
/// <c>w' = w * s</c> per output channel and <c>b' = b * s + (beta - mean * s)</c> with
/// <c>s = gamma * rsqrt(running_var + eps)</c>, so that <c>conv(x, w') + b' = norm(conv(x, w) + b)</c>.
/// </summary>
/// <remarks>
/// <para>The fold runs once, on the parameters' device and in their dtype, with the same <c>s</c> and shift the eval
/// norm computes (<see cref="BatchNorm2d"/>), so the fused output differs from the layer-by-layer one only by the
/// rounding of <c>w * s</c> and the order of the products: in float32 a few units in the last place per layer
/// (the model tests bound whole networks at 1e-4 of the largest output, in float64 at 1e-10).</para>
/// <para>Staleness: the cache remembers each source tensor (weight, bias, gamma, beta, running mean and variance,
/// and the norm) with its <see cref="Tensor.Version"/>, which every in-place write (CopyFrom, Fill_, the optimizers,
/// checkpoint loading, the running-statistics update of a training step) advances. <see cref="Get"/> compares them
/// on every call and refolds, disposing the previous folded tensors, when a tensor was replaced or written.</para>
/// <para>The owner (the convolution layer) disposes it. Like the modules, not for concurrent forwards from several threads.</para>
/// </remarks>
public sealed class BatchNormFold : IDisposable
{
    private UnaryModule? _norm;
    private Tensor?[] _sources = [];
    private long[] _versions = [];
    private Tensor? _weight, _bias;

    /// <summary>How many times the weights were folded (once, then once per change of a source tensor).</summary>
    public long FoldCount { get; private set; }

    /// <summary>
    /// Whether <paramref name="norm"/> has fixed statistics now: a <see cref="BatchNorm2d"/> (or <see cref="BatchNorm1d"/>)
    /// in eval mode that tracks running statistics, or a <see cref="FrozenBatchNorm2d"/> in eval mode.
    /// </summary>
    public static bool IsFoldable(UnaryModule norm) => Statistics(norm) is not null;

    /// <summary>
    /// Whether inference fusion applies to <paramref name="conv"/> and the <paramref name="norm"/> after it: fusion on for
    /// both, autograd off (<see cref="GradMode.NoGrad"/>) and the norm foldable (<see cref="IsFoldable"/>).
    /// </summary>
    public static bool Applies(Module conv, UnaryModule norm)
    {
        ArgumentNullException.ThrowIfNull(conv);
        ArgumentNullException.ThrowIfNull(norm);
        return conv.InferenceFusion && norm.InferenceFusion && !GradMode.IsEnabled && IsFoldable(norm);
    }

    /// <summary>
    /// The folded weight (shaped like <paramref name="weight"/>) and bias [Cout] for the convolution weight, its
    /// optional bias and <paramref name="norm"/>: the cached pair when no source changed since the last fold, else a
    /// new fold. The returned tensors belong to this cache (do not dispose them); they stay valid until the next call.
    /// </summary>
    /// <exception cref="ArgumentException">The norm is not foldable, or its channels, dtype or device do not match the weight's.</exception>
    public (Tensor Weight, Tensor Bias) Get(Tensor weight, Tensor? bias, UnaryModule norm)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(norm);
        var stats = Statistics(norm) ?? throw new ArgumentException(
            $"{norm.GetType().Name} has no fixed statistics to fold (training mode, or no running statistics)", nameof(norm));
        Tensor?[] sources = [weight, bias, stats.Mean, stats.Var, stats.Gamma, stats.Beta];
        if (_weight is null || !ReferenceEquals(_norm, norm) || !Current(sources))
            Refold(weight, bias, norm, stats, sources);
        return (_weight!, _bias!);
    }

    private bool Current(Tensor?[] sources)
    {
        if (sources.Length != _sources.Length) return false;
        for (int i = 0; i < sources.Length; i++)
        {
            if (!ReferenceEquals(sources[i], _sources[i])) return false;
            if (sources[i] is { } t && t.Version != _versions[i]) return false;
        }
        return true;
    }

    private void Refold(Tensor weight, Tensor? bias, UnaryModule norm, NormStatistics stats, Tensor?[] sources)
    {
        int c = weight.Size(0);
        foreach (var (name, t) in new[] { ("bias", bias), ("running_mean", stats.Mean), ("running_var", stats.Var), ("weight", stats.Gamma), ("bias", stats.Beta) })
        {
            if (t is null) continue;
            if (t.Rank != 1 || t.Size(0) != c || t.DType != weight.DType || t.Device != weight.Device)
                throw new ArgumentException(
                    $"cannot fold {norm.GetType().Name} into a convolution weight {Shapes.Format(weight.Shape)} ({weight.DType.Name()} on {weight.Device}): its {name} is {Shapes.Format(t.Shape)} ({t.DType.Name()} on {t.Device})",
                    nameof(norm));
        }
        Release();
        // Versions first: a write racing the fold then shows as a change at the next call.
        _versions = sources.Select(t => t?.Version ?? 0).ToArray();
        using (GradMode.NoGrad())
        {
            // The eval norm's own scale and shift (BatchNormFunctions.Affine), so only the products are reordered.
            using var veps = stats.Var + stats.Eps;
            using var inv = veps.Rsqrt();
            using var scale = stats.Gamma is { } g ? g * inv : inv.Reshape(c);
            using var shiftPart = stats.Mean * scale;
            using var shift = stats.Beta is { } b ? b - shiftPart : shiftPart.Neg();
            var shape = new int[weight.Rank];
            Array.Fill(shape, 1);
            shape[0] = c;
            using var perChannel = scale.Reshape(shape);
            _weight = (weight * perChannel).Unscoped();
            if (bias is null) _bias = shift.Clone().Unscoped();
            else
            {
                using var scaledBias = bias * scale;
                _bias = (scaledBias + shift).Unscoped();
            }
        }
        _norm = norm;
        _sources = sources;
        FoldCount++;
    }

    /// <summary>
    /// The layer-by-layer reference for a convolution output: <c>norm(convOutput)</c>, plus <paramref name="residual"/>,
    /// then ReLU when <paramref name="relu"/> (each op as the layers run on their own; <paramref name="convOutput"/> is
    /// not disposed).
    /// </summary>
    public static Tensor Unfused(Tensor convOutput, UnaryModule norm, Tensor? residual = null, bool relu = false)
    {
        ArgumentNullException.ThrowIfNull(convOutput);
        ArgumentNullException.ThrowIfNull(norm);
        if (residual is null)
        {
            if (!relu) return norm.Forward(convOutput);
            // BatchNorm2d's own norm + ReLU (one pass in eval); BatchNorm1d's rank check lives in its Forward.
            if (norm is BatchNorm2d bn and not BatchNorm1d) return bn.ForwardRelu(convOutput);
            using var n = norm.Forward(convOutput);
            return n.Relu();
        }
        using var normed = norm.Forward(convOutput);
        return relu ? normed.AddRelu(residual) : normed + residual;
    }

    /// <summary>Disposes the folded tensors.</summary>
    public void Dispose() => Release();

    private void Release()
    {
        _weight?.Dispose();
        _bias?.Dispose();
        _weight = _bias = null;
        _norm = null;
        _sources = [];
        _versions = [];
    }

    private sealed record NormStatistics(Tensor Mean, Tensor Var, Tensor? Gamma, Tensor? Beta, double Eps);

    private static NormStatistics? Statistics(UnaryModule norm) => norm switch
    {
        BatchNorm2d { IsTraining: false, TrackRunningStats: true } bn => new(bn.RunningMean!, bn.RunningVar!, bn.Weight, bn.Bias, bn.Eps),
        FrozenBatchNorm2d { IsTraining: false } f => new(f.RunningMean, f.RunningVar, f.Weight, f.Bias, f.Eps),
        _ => null,
    };
}
