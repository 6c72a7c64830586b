using Runtime.Autograd;

namespace Runtime.Nn;

/// <summary>Normalises over the trailing <c>normalizedShape</c> dims (biased variance), then weight * x + bias.</summary>
public sealed class LayerNorm : UnaryModule
{
    public LayerNorm(int[] normalizedShape, double eps = 1e-5, bool elementwiseAffine = true, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(normalizedShape);
        if (normalizedShape.Length == 0) throw new ArgumentException("normalizedShape must name at least one dim", nameof(normalizedShape));
        NormalizedShape = (int[])normalizedShape.Clone();
        Eps = eps;
        if (elementwiseAffine)
        {
            RegisterParameter("weight", Tensor.Ones(NormalizedShape, dtype, device));
            RegisterParameter("bias", Tensor.Zeros(NormalizedShape, dtype, device));
        }
    }

    public LayerNorm(int normalizedShape, double eps = 1e-5, bool elementwiseAffine = true, DType dtype = DType.Float32, Device? device = null)
        : this([normalizedShape], eps, elementwiseAffine, dtype, device) { }

    public int[] NormalizedShape { get; }
    public double Eps { get; }
    public Tensor? Weight => GetParameter("weight");
    public Tensor? Bias => GetParameter("bias");

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int k = NormalizedShape.Length;
        if (input.Rank < k || !input.Shape[(input.Rank - k)..].SequenceEqual(NormalizedShape))
            throw new ArgumentException($"LayerNorm over [{string.Join(", ", NormalizedShape)}] got input of shape [{string.Join(", ", input.Shape.ToArray())}]", nameof(input));
        var dims = Enumerable.Range(input.Rank - k, k).ToArray();
        using var mean = input.Mean(dims, keepDim: true);
        using var var = input.Var(dims, correction: 0, keepDim: true);
        using var centered = input - mean;
        using var veps = var + Eps;
        using var inv = veps.Rsqrt();
        var y = centered * inv;
        if (Weight is not { } w || Bias is not { } b) return y;
        using (y)
        {
            using var scaled = y * w;
            return scaled + b;
        }
    }
}

/// <summary>Shared parts of the per-channel normalisations over [N, C, ...] inputs.</summary>
public abstract class ChannelNorm : UnaryModule
{
    /// <summary>A per-channel vector viewed as [1, C, 1, ...] for an input of rank <paramref name="rank"/>.</summary>
    protected static Tensor AsChannel(Tensor v, int rank)
    {
        var shape = new int[rank];
        Array.Fill(shape, 1);
        shape[1] = v.Size(0);
        return v.Reshape(shape);
    }

    protected static void CheckInput(Tensor input, int channels, string layer)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank < 2 || input.Size(1) != channels)
            throw new ArgumentException($"{layer}({channels}) expects [N, {channels}, ...], got [{string.Join(", ", input.Shape.ToArray())}]", nameof(input));
    }
}

/// <summary>
/// BatchNorm over [N, C, H, W]: batch statistics in training (running stats updated with momentum and the
/// unbiased variance, num_batches_tracked counted), running statistics in eval.
/// </summary>
public class BatchNorm2d : ChannelNorm
{
    public BatchNorm2d(int numFeatures, double eps = 1e-5, double momentum = 0.1, bool affine = true, bool trackRunningStats = true, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numFeatures);
        NumFeatures = numFeatures;
        Eps = eps;
        Momentum = momentum;
        if (affine)
        {
            RegisterParameter("weight", Tensor.Ones([numFeatures], dtype, device));
            RegisterParameter("bias", Tensor.Zeros([numFeatures], dtype, device));
        }
        if (trackRunningStats)
        {
            RegisterBuffer("running_mean", Tensor.Zeros([numFeatures], dtype, device));
            RegisterBuffer("running_var", Tensor.Ones([numFeatures], dtype, device));
            RegisterBuffer("num_batches_tracked", Tensor.Zeros([], DType.Int64, device));
        }
        TrackRunningStats = trackRunningStats;
    }

    public int NumFeatures { get; }
    public double Eps { get; }
    public double Momentum { get; }
    public bool TrackRunningStats { get; }
    public Tensor? Weight => GetParameter("weight");
    public Tensor? Bias => GetParameter("bias");
    public Tensor? RunningMean => TrackRunningStats ? GetBuffer("running_mean") : null;
    public Tensor? RunningVar => TrackRunningStats ? GetBuffer("running_var") : null;
    public Tensor? NumBatchesTracked => TrackRunningStats ? GetBuffer("num_batches_tracked") : null;

    /// <summary>The rank the input must have (4 here).</summary>
    protected virtual int ExpectedRank => 4;

    /// <summary>
    /// <c>Forward(input).Relu()</c>; in eval mode with running statistics the ReLU is applied in the same pass as
    /// the normalisation (see <see cref="BatchNormFunctions.Affine"/>).
    /// </summary>
    internal Tensor ForwardRelu(Tensor input)
    {
        if (IsTraining || !TrackRunningStats)
        {
            using var y = Forward(input);
            return y.Relu();
        }
        CheckInput(input, NumFeatures, GetType().Name);
        if (input.Rank != ExpectedRank)
            throw new ArgumentException($"{GetType().Name} expects a rank-{ExpectedRank} input, got rank {input.Rank}", nameof(input));
        return BatchNormFunctions.Affine(input, RunningMean!, RunningVar!, Eps, Weight, Bias, relu: true);
    }

    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, NumFeatures, GetType().Name);
        if (input.Rank != ExpectedRank)
            throw new ArgumentException($"{GetType().Name} expects a rank-{ExpectedRank} input, got rank {input.Rank}", nameof(input));
        if (!IsTraining && TrackRunningStats)
            return BatchNormFunctions.Affine(input, RunningMean!, RunningVar!, Eps, Weight, Bias);

        long n = input.NumEl / NumFeatures;
        if (n <= 1) throw new ArgumentException($"expected more than 1 value per channel when training, got input of shape [{string.Join(", ", input.Shape.ToArray())}]", nameof(input));
        var y = BatchNormFunctions.Training(input, Weight, Bias, Eps, out var mean, out var var);
        using var _mean = mean;
        using var _var = var;
        if (TrackRunningStats)
        {
            using var _ = GradMode.NoGrad();
            var rm = RunningMean!;
            var rv = RunningVar!;
            using var oldMean = rm * (1 - Momentum);
            using var addMean = mean * Momentum;
            using var newMean = oldMean + addMean;
            using var oldVar = rv * (1 - Momentum);
            using var addVar = var * (Momentum * n / (n - 1));
            using var newVar = oldVar + addVar;
            rm.CopyFrom(newMean);
            rv.CopyFrom(newVar);
            var nbt = NumBatchesTracked!;
            nbt.Fill_(nbt.Item() + 1);
        }
        return y;
    }
}

/// <summary>BatchNorm over [N, C] or [N, C, L].</summary>
public sealed class BatchNorm1d(int numFeatures, double eps = 1e-5, double momentum = 0.1, bool affine = true, bool trackRunningStats = true, DType dtype = DType.Float32, Device? device = null)
    : BatchNorm2d(numFeatures, eps, momentum, affine, trackRunningStats, dtype, device)
{
    private int _rank = 2;

    protected override int ExpectedRank => _rank;

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank is not (2 or 3)) throw new ArgumentException($"BatchNorm1d expects a rank-2 or rank-3 input, got rank {input.Rank}", nameof(input));
        _rank = input.Rank;
        return base.Forward(input);
    }
}

/// <summary>
/// torchvision.ops.FrozenBatchNorm2d: weight, bias and running statistics are all buffers (never trained);
/// y = x * scale + shift with scale = weight * rsqrt(running_var + eps). A stored num_batches_tracked is ignored on load.
/// </summary>
public sealed class FrozenBatchNorm2d : ChannelNorm
{
    public FrozenBatchNorm2d(int numFeatures, double eps = 1e-5, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numFeatures);
        NumFeatures = numFeatures;
        Eps = eps;
        RegisterBuffer("weight", Tensor.Ones([numFeatures], dtype, device));
        RegisterBuffer("bias", Tensor.Zeros([numFeatures], dtype, device));
        RegisterBuffer("running_mean", Tensor.Zeros([numFeatures], dtype, device));
        RegisterBuffer("running_var", Tensor.Ones([numFeatures], dtype, device));
    }

    public int NumFeatures { get; }
    public double Eps { get; }
    public Tensor Weight => GetBuffer("weight");
    public Tensor Bias => GetBuffer("bias");
    public Tensor RunningMean => GetBuffer("running_mean");
    public Tensor RunningVar => GetBuffer("running_var");

    protected override bool IgnoresLoadKey(string localKey) => localKey == "num_batches_tracked";

    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, NumFeatures, nameof(FrozenBatchNorm2d));
        return BatchNormFunctions.Affine(input, RunningMean, RunningVar, Eps, Weight, Bias);
    }
}

/// <summary>Normalises each of <c>numGroups</c> channel groups per sample (biased variance), then a per-channel affine.</summary>
public sealed class GroupNorm : ChannelNorm
{
    public GroupNorm(int numGroups, int numChannels, double eps = 1e-5, bool affine = true, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numGroups);
        if (numChannels % numGroups != 0)
            throw new ArgumentException($"numChannels ({numChannels}) must be divisible by numGroups ({numGroups})", nameof(numChannels));
        NumGroups = numGroups;
        NumChannels = numChannels;
        Eps = eps;
        if (affine)
        {
            RegisterParameter("weight", Tensor.Ones([numChannels], dtype, device));
            RegisterParameter("bias", Tensor.Zeros([numChannels], dtype, device));
        }
    }

    public int NumGroups { get; }
    public int NumChannels { get; }
    public double Eps { get; }
    public Tensor? Weight => GetParameter("weight");
    public Tensor? Bias => GetParameter("bias");

    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, NumChannels, nameof(GroupNorm));
        var shape = input.Shape.ToArray();
        using var grouped = input.Reshape(shape[0], NumGroups, -1);
        using var mean = grouped.Mean(2, keepDim: true);
        using var var = grouped.Var(2, correction: 0, keepDim: true);
        using var centered = grouped - mean;
        using var veps = var + Eps;
        using var inv = veps.Rsqrt();
        using var normed = centered * inv;
        var y = normed.Reshape(shape);
        if (Weight is not { } w || Bias is not { } b) return y;
        using (y)
        {
            using var wc = AsChannel(w, shape.Length);
            using var bc = AsChannel(b, shape.Length);
            using var scaled = y * wc;
            return scaled + bc;
        }
    }
}

/// <summary>
/// The two batch-norm computations: a per-channel affine map folded from fixed statistics (eval mode,
/// FrozenBatchNorm2d) and batch statistics with a fused gradient rule (training mode).
/// </summary>
internal static class BatchNormFunctions
{
    /// <summary>
    /// x * scale + shift with scale = weight * rsqrt(var + eps) and shift = bias - mean * scale computed on the
    /// [C] vectors, so rsqrt runs C times; then ReLU when <paramref name="relu"/>. With no gradient wanted the map is
    /// read once (<see cref="Tensor.ChannelAffine"/>), else the multiply, add (and ReLU) run as separate ops.
    /// Differentiable in x, weight and bias.
    /// </summary>
    public static Tensor Affine(Tensor input, Tensor mean, Tensor var, double eps, Tensor? weight, Tensor? bias, bool relu = false)
    {
        int rank = input.Rank;
        using var veps = var + eps;
        using var inv = veps.Rsqrt();
        using var scale = weight != null ? weight * inv : inv.Reshape(inv.Size(0));
        using var shiftPart = mean * scale;
        using var shift = bias != null ? bias - shiftPart : shiftPart.Neg();
        return input.ChannelAffine(scale, shift, relu);
    }

    /// <summary>
    /// Normalises [N, C, ...] with the batch's per-channel mean and biased variance, then weight * x + bias.
    /// Reductions run over contiguous rows ([N, C, L] summed over L, then over N) rather than a permuted copy,
    /// and the gradient is the closed form of batch norm's backward
    /// (dx = scale * (g - mean(g) - xhat * mean(g * xhat)), dweight = sum(g * xhat), dbias = sum(g)),
    /// so training costs a handful of passes over the map instead of a graph of a dozen elementwise nodes.
    /// </summary>
    /// <summary>
    /// Per-channel sums [C] of t viewed as [N, C, L]: the rows are summed by a matrix product with a column of ones
    /// (a streaming GEMV, several times faster on the CPU than the row reduction), then the N partial sums are added.
    /// </summary>
    private static Tensor ChannelSums(Tensor t3)
    {
        int n = t3.Size(0), c = t3.Size(1), l = t3.Size(2);
        using var rows = t3.Reshape(n * c, l);
        using var ones = Tensor.Ones([l, 1], t3.DType, t3.Device);
        using var partial = rows.MatMul(ones);
        using var perSample = partial.Reshape(n, c);
        return perSample.Sum(0);
    }

    public static Tensor Training(Tensor input, Tensor? weight, Tensor? bias, double eps, out Tensor mean, out Tensor biasedVar)
    {
        int n = input.Size(0), c = input.Size(1);
        long count = input.NumEl / Math.Max(1, c);
        var shape = input.Shape.ToArray();
        bool affine = weight != null && bias != null;
        Tensor y, diff, invstd, scale;
        using (GradMode.NoGrad())
        {
            using var x3 = input.Reshape(n, c, -1);
            using (var s = ChannelSums(x3))
                mean = s / (double)count;
            using var mean3 = mean.Reshape(1, c, 1);
            diff = x3 - mean3;
            using (var sq = diff.Square())
            using (var q = ChannelSums(sq))
                biasedVar = q / (double)count;
            using (var ve = biasedVar + eps) invstd = ve.Rsqrt();
            scale = affine ? weight! * invstd : invstd.Reshape(c);
            using var scale3 = scale.Reshape(1, c, 1);
            using var scaled = diff * scale3;
            if (affine)
            {
                using var b3 = bias!.Reshape(1, c, 1);
                using var y3 = scaled + b3;
                y = y3.Reshape(shape);
            }
            else y = scaled.Reshape(shape);
        }
        bool needInput = input.RequiresGrad;
        Tensor[] inputs = affine ? [input, weight!, bias!] : [input];
        var result = Tensor.Record(y, "BatchNorm", inputs, [diff, invstd, scale], (g, saved) =>
        {
            var (d, inv, sc) = (saved[0], saved[1], saved[2]);
            using var g3 = g.Reshape(n, c, -1);
            using var gsum = ChannelSums(g3);
            using var gd = g3 * d;
            using var gdsum = ChannelSums(gd);
            Tensor? dx = null;
            if (needInput)
            {
                // dx = g * scale + diff * kb + kc with kb = -scale * invstd^2 * sum(g * diff) / count, kc = -scale * sum(g) / count.
                using var inv2 = inv.Square();
                using var t = sc * inv2;
                using var t2 = t * gdsum;
                using var kb = t2 * (-1.0 / count);
                using var t3 = sc * gsum;
                using var kc = t3 * (-1.0 / count);
                using var sc3 = sc.Reshape(1, c, 1);
                using var kb3 = kb.Reshape(1, c, 1);
                using var kc3 = kc.Reshape(1, c, 1);
                using var a = g3 * sc3;
                using var b = d * kb3;
                using var ab = a + b;
                using var dx3 = ab + kc3;
                dx = dx3.Reshape(shape);
            }
            if (!affine) return [dx];
            var dweight = gdsum * inv;
            return [dx, dweight, gsum.Clone()];
        });
        diff.Dispose();
        invstd.Dispose();
        scale.Dispose();
        return result;
    }
}
