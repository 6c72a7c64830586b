using Runtime.Autograd;

namespace Runtime.Nn.Optim;

/// <summary>Gradient clipping (torch.nn.utils.clip_grad_norm_).</summary>
public static class GradClip
{
    /// <summary>
    /// The total <paramref name="normType"/>-norm of all gradients (as if concatenated; <see cref="double.PositiveInfinity"/>
    /// for the max-abs norm). When it exceeds <paramref name="maxNorm"/>, every gradient is scaled in place by
    /// <c>maxNorm / (total + 1e-6)</c>. Parameters without a gradient are skipped; returns the norm before clipping.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm, double normType = 2.0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (double.IsNaN(normType) || normType <= 0) throw new ArgumentOutOfRangeException(nameof(normType), normType, "norm type must be positive (or +infinity)");
        var grads = parameters.Select(p => p.Grad).Where(g => g != null).Cast<Tensor>().ToArray();
        if (grads.Length == 0) return 0.0;
        using var _ = GradMode.NoGrad();
        using var scope = new TensorScope();
        double total;
        if (double.IsPositiveInfinity(normType))
        {
            total = 0;
            foreach (var g in grads)
                if (g.NumEl > 0) total = Math.Max(total, g.Abs().Max().Item());
        }
        else
        {
            // torch: the norm of the per-tensor norms
            double acc = 0;
            foreach (var g in grads)
            {
                double n = normType == 2.0 ? Math.Sqrt(g.Square().Sum().Item()) : Math.Pow(g.Abs().Pow(normType).Sum().Item(), 1.0 / normType);
                acc += Math.Pow(n, normType);
            }
            total = Math.Pow(acc, 1.0 / normType);
        }
        double coef = maxNorm / (total + 1e-6);
        if (coef < 1)
            foreach (var g in grads) g.MulInPlace(coef);
        return total;
    }
}
