namespace Runtime.Models.Detection;

/// <summary>Row selection helpers the detection heads share (index lists from masks, host index arrays).</summary>
internal static class Rows
{
    /// <summary>Ascending Int64 indices [K] of the true entries of a 1-D Bool mask (torch.where(mask)[0]).</summary>
    public static Tensor Where(Tensor mask)
    {
        using var nz = mask.Nonzero();
        using var col = nz.Select(1, 0);
        return col.Contiguous();
    }

    /// <summary>An Int64 index tensor on <paramref name="device"/>.</summary>
    public static Tensor Index(long[] values, Device device) => Tensor.From<long>(values, [values.Length], device);

    /// <summary>The first <paramref name="n"/> entries of a 1-D tensor (all of it when shorter), as a new handle.</summary>
    public static Tensor Head(Tensor x, int n) => x.Narrow(0, 0, Math.Min(n, x.Size(0)));

    /// <summary>Checks the targets of a training batch: boxes [G, 4] with x2 &gt; x1 and y2 &gt; y1 (torchvision's check).</summary>
    public static void CheckTargets(IReadOnlyList<Runtime.Vision.Data.DetectionTarget> targets, int imageCount)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Count != imageCount)
            throw new ArgumentException($"expected one target per image ({imageCount}), got {targets.Count}", nameof(targets));
        for (int i = 0; i < targets.Count; i++)
        {
            var b = targets[i].Boxes;
            if (b.Rank != 2 || b.Size(1) != 4)
                throw new ArgumentException($"target {i}: boxes must be [G, 4], got {Shapes.Format(b.Shape)}", nameof(targets));
            var v = b.ToDoubleArray();
            for (int g = 0; g < v.Length / 4; g++)
                if (!(v[4 * g + 2] > v[4 * g] && v[4 * g + 3] > v[4 * g + 1]))
                    throw new ArgumentException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                        $"target {i}: box {g} [{v[4 * g]}, {v[4 * g + 1]}, {v[4 * g + 2]}, {v[4 * g + 3]}] has no positive width and height"), nameof(targets));
        }
    }
}
