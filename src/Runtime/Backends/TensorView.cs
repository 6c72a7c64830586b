namespace Runtime.Backends;

/// <summary>
/// What a kernel sees of a tensor: storage, element offset, shape and element strides. Strides may be
/// zero (broadcast) or negative (flipped views made internally); kernels index only through them.
/// </summary>
public readonly struct TensorView
{
    public TensorView(Storage storage, long offset, int[] shape, long[] strides, DType dtype)
    {
        Storage = storage;
        Offset = offset;
        Shape = shape;
        Strides = strides;
        DType = dtype;
    }

    public Storage Storage { get; }

    /// <summary>Offset of element [0, 0, ...] in elements (not bytes).</summary>
    public long Offset { get; }

    public int[] Shape { get; }

    public long[] Strides { get; }

    public DType DType { get; }

    public int Rank => Shape.Length;

    public long NumEl
    {
        get
        {
            long n = 1;
            foreach (var s in Shape) n *= s;
            return n;
        }
    }

    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int d = Shape.Length - 1; d >= 0; d--)
            {
                if (Shape[d] != 1 && Strides[d] != expected) return false;
                expected *= Shape[d];
            }
            return true;
        }
    }
}
