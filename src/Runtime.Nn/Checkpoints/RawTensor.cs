using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Runtime.Nn.Checkpoints;

/// <summary>Builds tensors from little-endian raw bytes and back.</summary>
internal static class RawTensor
{
    public static Tensor Make(ReadOnlySpan<byte> bytes, string dtype, int[] shape)
    {
        long n = ShapeMath.NumEl(shape);
        switch (dtype)
        {
            case "F32": return Tensor.From(MemoryMarshal.Cast<byte, float>(bytes)[..(int)n], shape);
            case "F64": return Tensor.From(MemoryMarshal.Cast<byte, double>(bytes)[..(int)n], shape);
            case "I32": return Tensor.From(MemoryMarshal.Cast<byte, int>(bytes)[..(int)n], shape);
            case "I64": return Tensor.From(MemoryMarshal.Cast<byte, long>(bytes)[..(int)n], shape);
            case "BOOL":
            {
                var b = new bool[n];
                for (int i = 0; i < n; i++) b[i] = bytes[i] != 0;
                return Tensor.From<bool>(b, shape);
            }
            case "F16":
            {
                var f = new float[n];
                for (int i = 0; i < n; i++) f[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]));
                return Tensor.From<float>(f, shape);
            }
            case "BF16":
            {
                var f = new float[n];
                for (int i = 0; i < n; i++) f[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16);
                return Tensor.From<float>(f, shape);
            }
            case "I8":
            case "U8":
            case "I16":
            {
                var v = new int[n];
                for (int i = 0; i < n; i++)
                    v[i] = dtype == "I8" ? (sbyte)bytes[i] : dtype == "U8" ? bytes[i] : BinaryPrimitives.ReadInt16LittleEndian(bytes[(2 * i)..]);
                return Tensor.From<int>(v, shape);
            }
            default: throw new CheckpointFormatException($"unknown dtype '{dtype}'");
        }
    }

    /// <summary>Bytes per element of a safetensors dtype name, or 0 when unknown.</summary>
    public static int SizeOf(string dtype) => dtype switch
    {
        "F64" or "I64" => 8,
        "F32" or "I32" => 4,
        "F16" or "BF16" or "I16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => 0,
    };

    public static string Name(DType d) => d switch
    {
        DType.Float32 => "F32",
        DType.Float64 => "F64",
        DType.Int32 => "I32",
        DType.Int64 => "I64",
        DType.Bool => "BOOL",
        _ => throw new ArgumentException($"unsupported dtype {d}"),
    };

    public static byte[] Bytes(Tensor t)
    {
        switch (t.DType)
        {
            case DType.Float32: return MemoryMarshal.AsBytes<float>(t.ToArray<float>()).ToArray();
            case DType.Float64: return MemoryMarshal.AsBytes<double>(t.ToArray<double>()).ToArray();
            case DType.Int32: return MemoryMarshal.AsBytes<int>(t.ToArray<int>()).ToArray();
            case DType.Int64: return MemoryMarshal.AsBytes<long>(t.ToArray<long>()).ToArray();
            case DType.Bool:
            {
                var b = t.ToArray<bool>();
                var r = new byte[b.Length];
                for (int i = 0; i < b.Length; i++) r[i] = b[i] ? (byte)1 : (byte)0;
                return r;
            }
            default: throw new ArgumentException($"unsupported dtype {t.DType}");
        }
    }
}

internal static class ShapeMath
{
    public static long NumEl(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        return n;
    }
}
