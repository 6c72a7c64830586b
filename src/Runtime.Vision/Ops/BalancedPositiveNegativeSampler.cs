namespace Runtime.Vision.Ops;

/// <summary>
/// Picks, per image, the positives and negatives a detection loss uses, from matched indices or labels
/// (&gt;= 1 positive, 0 negative, anything else ignored): Bool masks [N] per image.
/// </summary>
public interface IPositiveNegativeSampler
{
    (Tensor[] Positive, Tensor[] Negative) Sample(IReadOnlyList<Tensor> matchedIdxs);
}

/// <summary>
/// torchvision's BalancedPositiveNegativeSampler: per image, a random subset of at most
/// <c>batchSizePerImage * positiveFraction</c> positives (matched index &gt;= 1) and negatives (== 0)
/// filling the rest of the batch (-1 and other negatives are ignored). Draws come from a seeded runtime
/// <see cref="Generator"/> (the same seed gives the same picks; torch's own RNG stream is not reproduced).
/// </summary>
public sealed class BalancedPositiveNegativeSampler : IPositiveNegativeSampler
{
    private readonly Generator _generator;

    public BalancedPositiveNegativeSampler(int batchSizePerImage, double positiveFraction, Generator? generator = null)
    {
        if (batchSizePerImage < 0)
            throw new ArgumentOutOfRangeException(nameof(batchSizePerImage), batchSizePerImage, "BalancedPositiveNegativeSampler: the batch size must be non-negative");
        if (!(positiveFraction >= 0 && positiveFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(positiveFraction), positiveFraction, "BalancedPositiveNegativeSampler: the positive fraction must be in [0, 1]");
        BatchSizePerImage = batchSizePerImage;
        PositiveFraction = positiveFraction;
        _generator = generator ?? Generator.Default;
    }

    public int BatchSizePerImage { get; }

    public double PositiveFraction { get; }

    /// <summary>
    /// For each image's matched indices (integer [N]), Bool masks [N] of the sampled positives and
    /// negatives, on the indices' device.
    /// </summary>
    public (Tensor[] Positive, Tensor[] Negative) Sample(IReadOnlyList<Tensor> matchedIdxs)
    {
        ArgumentNullException.ThrowIfNull(matchedIdxs);
        var pos = new Tensor[matchedIdxs.Count];
        var neg = new Tensor[matchedIdxs.Count];
        for (int i = 0; i < matchedIdxs.Count; i++)
        {
            var m = matchedIdxs[i];
            if (m.Rank != 1 || m.DType is not (DType.Int64 or DType.Int32))
                throw new ArgumentException($"BalancedPositiveNegativeSampler: matched indices must be integer [N], got {m.DType.Name()} {Boxes.ShapeText(m)} (image {i})", nameof(matchedIdxs));
            long[] values;
            using (var asLong = m.To(DType.Int64)) values = asLong.ToArray<long>();
            var positives = new List<int>();
            var negatives = new List<int>();
            for (int j = 0; j < values.Length; j++)
            {
                if (values[j] >= 1) positives.Add(j);
                else if (values[j] == 0) negatives.Add(j);
            }
            int numPos = Math.Min(positives.Count, (int)(BatchSizePerImage * PositiveFraction));
            int numNeg = Math.Min(negatives.Count, BatchSizePerImage - numPos);
            pos[i] = Mask(values.Length, Pick(positives, numPos), m.Device);
            neg[i] = Mask(values.Length, Pick(negatives, numNeg), m.Device);
        }
        return (pos, neg);
    }

    // The first k of a random permutation (a partial Fisher-Yates shuffle).
    private List<int> Pick(List<int> items, int k)
    {
        for (int j = 0; j < k; j++)
        {
            int r = (int)_generator.NextInt64(j, items.Count);
            (items[j], items[r]) = (items[r], items[j]);
        }
        return items.GetRange(0, k);
    }

    private static Tensor Mask(int n, List<int> picked, Device device)
    {
        var mask = new bool[n];
        foreach (var p in picked) mask[p] = true;
        using var host = Tensor.From<bool>(mask, n);
        return host.To(device);
    }
}
