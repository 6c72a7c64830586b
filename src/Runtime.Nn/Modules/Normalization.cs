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

    /// <summary>(x - mean) * rsqrt(var + eps) * weight + bias with per-channel tensors (weight/bias optional).</summary>
    protected static Tensor Normalize(Tensor input, Tensor mean, Tensor var, double eps, Tensor? weight, Tensor? bias)
    {
        int rank = input.Rank;
        using var m = mean.Rank == rank ? Alias(mean) : AsChannel(mean, rank);
        using var v = var.Rank == rank ? Alias(var) : AsChannel(var, rank);
        using var centered = input - m;
        using var veps = v + eps;
        using var inv = veps.Rsqrt();
        var y = centered * inv;
        if (weight == null || bias == null) return y;
        using (y)
        {
            using var w = AsChannel(weight, rank);
            using var b = AsChannel(bias, rank);
            using var scaled = y * w;
            return scaled + b;
        }
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

    public override Tensor Forward(Tensor input)
    {
        CheckInput(input, NumFeatures, GetType().Name);
        if (input.Rank != ExpectedRank)
            throw new ArgumentException($"{GetType().Name} expects a rank-{ExpectedRank} input, got rank {input.Rank}", nameof(input));
        if (!IsTraining && TrackRunningStats)
            return Normalize(input, RunningMean!, RunningVar!, Eps, Weight, Bias);

        var dims = Enumerable.Range(0, input.Rank).Where(d => d != 1).ToArray();
        using var mean = input.Mean(dims, keepDim: true);
        using var var = input.Var(dims, correction: 0, keepDim: true);
        if (TrackRunningStats)
        {
            long n = input.NumEl / NumFeatures;
            if (n <= 1) throw new ArgumentException($"expected more than 1 value per channel when training, got input of shape [{string.Join(", ", input.Shape.ToArray())}]", nameof(input));
            using var _ = GradMode.NoGrad();
            var rm = RunningMean!;
            var rv = RunningVar!;
            using var bm = mean.Reshape(NumFeatures);
            using var bv = var.Reshape(NumFeatures);
            using var unbiased = bv * ((double)n / (n - 1));
            using var newMean = rm * (1 - Momentum);
            using var newMean2 = newMean + bm * Momentum;
            using var newVar = rv * (1 - Momentum);
            using var newVar2 = newVar + unbiased * Momentum;
            rm.CopyFrom(newMean2);
            rv.CopyFrom(newVar2);
            var nbt = NumBatchesTracked!;
            nbt.Fill_(nbt.Item() + 1);
        }
        return Normalize(input, mean, var, Eps, Weight, Bias);
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
        int rank = input.Rank;
        using var w = AsChannel(Weight, rank);
        using var b = AsChannel(Bias, rank);
        using var rv = AsChannel(RunningVar, rank);
        using var rm = AsChannel(RunningMean, rank);
        using var veps = rv + Eps;
        using var inv = veps.Rsqrt();
        using var scale = w * inv;
        using var shiftPart = rm * scale;
        using var shift = b - shiftPart;
        using var scaled = input * scale;
        return scaled + shift;
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
