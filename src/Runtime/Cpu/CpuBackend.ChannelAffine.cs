using System.Numerics;
using System.Runtime.Intrinsics;
using Runtime.Backends;

namespace Runtime.Cpu;

internal sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// y[n, c, l] = x[n, c, l] * scale[c] + shift[c] (then max(., 0), NaN kept, when <paramref name="relu"/>) over
    /// contiguous x and y viewed as [N, C, L]: eval batch norm and the ReLU after it in one pass over the map. The
    /// multiply and the add are rounded separately, so the result has the bits of <c>x * scale + shift</c> computed
    /// as two elementwise ops (and of <c>Relu</c> after them).
    /// </summary>
    internal void ChannelAffine(TensorView x, TensorView scale, TensorView shift, TensorView y, long channels, long plane, bool relu)
    {
        if (x.DType == DType.Float32)
            ChannelAffineFor((float*)Ptr(x), (float*)Ptr(scale), (float*)Ptr(shift), (float*)Ptr(y), channels, plane, x.NumEl / Math.Max(1, plane), relu);
        else
            ChannelAffineFor((double*)Ptr(x), (double*)Ptr(scale), (double*)Ptr(shift), (double*)Ptr(y), channels, plane, x.NumEl / Math.Max(1, plane), relu);
    }

    private static void ChannelAffineFor<T>(T* x, T* scale, T* shift, T* y, long channels, long plane, long rows, bool relu)
        where T : unmanaged, INumber<T>
    {
        CpuParallel.For(rows, Math.Max(1, (1L << 15) / Math.Max(1, plane)), (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                long c = r % channels;
                if (relu) AffineRow<T, True>(x + r * plane, y + r * plane, plane, scale[c], shift[c]);
                else AffineRow<T, False>(x + r * plane, y + r * plane, plane, scale[c], shift[c]);
            }
        });
    }

    private interface IFlag { static abstract bool Value { get; } }
    private struct True : IFlag { public static bool Value => true; }
    private struct False : IFlag { public static bool Value => false; }

    private static void AffineRow<T, TRelu>(T* x, T* y, long n, T s, T b)
        where T : unmanaged, INumber<T>
        where TRelu : struct, IFlag
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<T> vs = Vector512.Create(s), vb = Vector512.Create(b);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                var v = Vector512.Load(x + i) * vs + vb;
                if (TRelu.Value) v = Vector512.Max(v, Vector512<T>.Zero);
                v.Store(y + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<T> vs = Vector256.Create(s), vb = Vector256.Create(b);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                var v = Vector256.Load(x + i) * vs + vb;
                if (TRelu.Value) v = Vector256.Max(v, Vector256<T>.Zero);
                v.Store(y + i);
            }
        }
        for (; i < n; i++)
        {
            T v = x[i] * s + b;
            if (TRelu.Value && !(v > T.Zero || T.IsNaN(v))) v = T.Zero;
            y[i] = v;
        }
    }
}

internal sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// y = max(a + b, 0) (NaN kept) over contiguous views of one shape: a residual sum and the ReLU after it in one
    /// pass, with the bits of <c>(a + b).Relu()</c>.
    /// </summary>
    internal void AddRelu(TensorView a, TensorView b, TensorView y)
    {
        if (a.DType == DType.Float32) AddReluFor((float*)Ptr(a), (float*)Ptr(b), (float*)Ptr(y), a.NumEl);
        else AddReluFor((double*)Ptr(a), (double*)Ptr(b), (double*)Ptr(y), a.NumEl);
    }

    private static void AddReluFor<T>(T* a, T* b, T* y, long count) where T : unmanaged, INumber<T>
    {
        CpuParallel.For(count, 1L << 15, (i0, i1) =>
        {
            long i = i0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i <= i1 - Vector512<T>.Count; i += Vector512<T>.Count)
                    Vector512.Max(Vector512.Load(a + i) + Vector512.Load(b + i), Vector512<T>.Zero).Store(y + i);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                for (; i <= i1 - Vector256<T>.Count; i += Vector256<T>.Count)
                    Vector256.Max(Vector256.Load(a + i) + Vector256.Load(b + i), Vector256<T>.Zero).Store(y + i);
            }
            for (; i < i1; i++)
            {
                T v = a[i] + b[i];
                y[i] = v > T.Zero || T.IsNaN(v) ? v : T.Zero;
            }
        });
    }
}
