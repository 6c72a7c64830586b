namespace Runtime;

/// <summary>Element types a tensor can hold. <see cref="Bool"/> is stored as one byte per element (0 or 1).</summary>
public enum DType
{
    Bool,
    Int32,
    Int64,
    Float32,
    Float64,
}

/// <summary>Sizes, kinds and the promotion rule of <see cref="DType"/>.</summary>
public static class DTypes
{
    public static int SizeOf(this DType t) => t switch
    {
        DType.Bool => 1,
        DType.Int32 => 4,
        DType.Int64 => 8,
        DType.Float32 => 4,
        DType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    public static bool IsFloating(this DType t) => t is DType.Float32 or DType.Float64;

    public static bool IsIntegral(this DType t) => t is DType.Int32 or DType.Int64;

    /// <summary>
    /// The result type when two tensors meet: the later of Bool &lt; Int32 &lt; Int64 &lt; Float32 &lt; Float64.
    /// </summary>
    public static DType Promote(DType a, DType b) => (DType)Math.Max((int)a, (int)b);

    /// <summary>PyTorch-style name, e.g. <c>float32</c>.</summary>
    public static string Name(this DType t) => t switch
    {
        DType.Bool => "bool",
        DType.Int32 => "int32",
        DType.Int64 => "int64",
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        _ => t.ToString(),
    };

    /// <summary>The dtype of a CLR element type (float, double, int, long, bool).</summary>
    public static DType Of<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DType.Float32;
        if (typeof(T) == typeof(double)) return DType.Float64;
        if (typeof(T) == typeof(int)) return DType.Int32;
        if (typeof(T) == typeof(long)) return DType.Int64;
        if (typeof(T) == typeof(bool) || typeof(T) == typeof(byte)) return DType.Bool;
        throw new ArgumentException($"element type {typeof(T).Name} has no tensor dtype (use float, double, int, long or bool)", nameof(T));
    }
}
