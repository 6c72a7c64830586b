namespace Runtime.Vision.Ops;

/// <summary>
/// torchvision's detection Matcher: gives each prediction (column of an [M ground truth, N predictions]
/// quality matrix, e.g. IoU) the ground truth it overlaps most, or <see cref="BelowLowThreshold"/> when
/// that best quality is below the low threshold, <see cref="BetweenThresholds"/> when it is in
/// [low, high). With low-quality matches allowed, every prediction that attains some ground truth's best
/// quality (ties included) keeps its best match even below the thresholds.
/// </summary>
public sealed class Matcher
{
    public const int BelowLowThreshold = -1;
    public const int BetweenThresholds = -2;

    public Matcher(double highThreshold, double lowThreshold, bool allowLowQualityMatches = false)
    {
        if (!(lowThreshold <= highThreshold))
            throw new ArgumentException($"Matcher: lowThreshold ({lowThreshold}) must be <= highThreshold ({highThreshold})", nameof(lowThreshold));
        HighThreshold = highThreshold;
        LowThreshold = lowThreshold;
        AllowLowQualityMatches = allowLowQualityMatches;
    }

    public double HighThreshold { get; }

    public double LowThreshold { get; }

    public bool AllowLowQualityMatches { get; }

    /// <summary>The match of each prediction: Int64 [N] with ground-truth indices or the negative codes.</summary>
    public Tensor Match(Tensor matchQualityMatrix)
    {
        ArgumentNullException.ThrowIfNull(matchQualityMatrix);
        var q = matchQualityMatrix;
        if (q.Rank != 2)
            throw new ArgumentException($"Matcher: the quality matrix must be [ground truth, predictions], got {Boxes.ShapeText(q)}", nameof(matchQualityMatrix));
        if (q.NumEl == 0)
            throw new ArgumentException(q.Size(0) == 0
                ? "Matcher: no ground-truth boxes available for one of the images during training"
                : "Matcher: no proposal boxes available for one of the images during training", nameof(matchQualityMatrix));
        using var scope = new TensorScope();
        using var noGrad = Autograd.GradMode.NoGrad();
        var (vals, matches) = q.Detach().Max(0);
        var below = vals.Lt(LowThreshold);
        var between = vals.Ge(LowThreshold).LogicalAnd(vals.Lt(HighThreshold));
        var result = Tensor.Where(below, Tensor.Scalar(BelowLowThreshold, DType.Int64, q.Device),
            Tensor.Where(between, Tensor.Scalar(BetweenThresholds, DType.Int64, q.Device), matches));
        if (AllowLowQualityMatches)
        {
            // Predictions that reach some ground truth's highest quality (ties included) keep their best match.
            var (best, _) = q.Detach().Max(1, keepDim: true);
            var reaches = q.Eq(best).Any([0]);
            result = Tensor.Where(reaches, matches, result);
        }
        return scope.MoveOut(result.Contiguous());
    }
}
