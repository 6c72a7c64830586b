namespace Runtime;

/// <summary>Shape arithmetic and the argument checks shared by operators.</summary>
internal static class Shapes
{
    public static long NumEl(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var s in shape) n *= s;
        return n;
    }

    public static long[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var st = new long[shape.Length];
        long acc = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            st[d] = acc;
            acc *= Math.Max(1, shape[d]);
        }
        return st;
    }

    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    public static int NormalizeDim(int dim, int rank, string paramName)
    {
        int r = Math.Max(rank, 1);
        if (dim < -r || dim >= r)
            throw new ArgumentOutOfRangeException(paramName, dim, $"dimension out of range (expected to be in [{-r}, {r - 1}])");
        return dim < 0 ? dim + r : dim;
    }

    /// <summary>Like <see cref="NormalizeDim"/>, for operators that need the dimension to exist (a 0-dim tensor has none).</summary>
    public static int NormalizeExistingDim(int dim, int rank, string paramName) => rank == 0
        ? throw new ArgumentOutOfRangeException(paramName, dim, "the tensor has no dimensions (it is 0-dim)")
        : NormalizeDim(dim, rank, paramName);

    public static int[] CheckShape(ReadOnlySpan<int> shape, string paramName)
    {
        foreach (var s in shape)
            if (s < 0) throw new ArgumentException($"negative dimension in shape {Format(shape)}", paramName);
        return shape.ToArray();
    }

    /// <summary>NumPy broadcasting of two shapes.</summary>
    public static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b, string paramName = "other")
    {
        int r = Math.Max(a.Length, b.Length);
        var res = new int[r];
        for (int i = 0; i < r; i++)
        {
            int da = i - (r - a.Length) >= 0 ? a[i - (r - a.Length)] : 1;
            int db = i - (r - b.Length) >= 0 ? b[i - (r - b.Length)] : 1;
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"shapes {Format(a)} and {Format(b)} cannot be broadcast together (dimension {i}: {da} vs {db})", paramName);
            res[i] = da == 1 ? db : da;
        }
        return res;
    }

    /// <summary>Strides that read a tensor of shape/strides as if expanded to <paramref name="target"/> (0 on broadcast dims).</summary>
    public static long[] BroadcastStrides(ReadOnlySpan<int> shape, ReadOnlySpan<long> strides, ReadOnlySpan<int> target)
    {
        var res = new long[target.Length];
        int off = target.Length - shape.Length;
        for (int i = 0; i < target.Length; i++)
        {
            int j = i - off;
            res[i] = j < 0 || shape[j] == 1 ? 0 : strides[j];
        }
        return res;
    }

    /// <summary>Strides for viewing (shape, strides) as newShape without copying, or null when a copy is needed (PyTorch's rule).</summary>
    public static long[]? ViewStrides(int[] shape, long[] strides, int[] newShape)
    {
        long numel = NumEl(shape);
        var res = new long[newShape.Length];
        if (numel == 0 || shape.Length == 0) return ContiguousStrides(newShape);
        int viewD = newShape.Length - 1;
        long chunkBase = strides.Length > 0 ? strides[^1] : 1;
        long tensorNumel = 1, viewNumel = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            tensorNumel *= shape[d];
            if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensorNumel * chunkBase))
            {
                while (viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] == 1))
                {
                    res[viewD] = viewNumel * chunkBase;
                    viewNumel *= newShape[viewD];
                    viewD--;
                }
                if (viewNumel != tensorNumel) return null;
                if (d > 0)
                {
                    chunkBase = strides[d - 1];
                    tensorNumel = 1;
                    viewNumel = 1;
                }
            }
        }
        if (viewD != -1) return null;
        return res;
    }
}
