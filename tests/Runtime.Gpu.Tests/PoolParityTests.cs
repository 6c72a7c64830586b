namespace Runtime.Gpu.Tests;

/// <summary>
/// Pooling and resampling kernels (pool.k) against the CPU backend on inputs that span many
/// work-groups: outputs, max-pool indices, and input gradients (the gather backward kernels).
/// </summary>
public class PoolParityTests
{
    private static readonly (string Name, Func<Tensor, Tensor> Op)[] Ops =
    [
        ("max 3x3/s2/p1", x => x.MaxPool2d(3, 2, 1)),
        ("max 2x3 dilated, ceil", x => x.MaxPool2d((2, 3), (2, 1), (1, 1), (2, 2), ceilMode: true)),
        ("avg 3x3/s2/p1 no pad count, ceil", x => x.AvgPool2d(3, 2, 1, ceilMode: true, countIncludePad: false)),
        ("avg 2x2 divisor 3", x => x.AvgPool2d((2, 2), (1, 2), (1, 0), divisorOverride: 3)),
        ("adaptive 7x5", x => x.AdaptiveAvgPool2d((7, 5))),
        ("adaptive up 50x61", x => x.AdaptiveAvgPool2d((50, 61))),
        ("nearest 2x", x => x.Interpolate((2.0, 2.0))),
        ("nearest scale 1.7, 0.45", x => x.Interpolate((1.7, 0.45))),
        ("bilinear 3.3x", x => x.Interpolate((3.3, 3.3), InterpolationMode.Bilinear)),
        ("bilinear aligned to 17x90", x => x.Interpolate((17, 90), InterpolationMode.Bilinear, alignCorners: true)),
    ];

    public static TheoryData<int, DType> Cases()
    {
        var d = new TheoryData<int, DType>();
        for (int i = 0; i < Ops.Length; i++)
        {
            d.Add(i, DType.Float32);
            d.Add(i, DType.Float64);
        }
        return d;
    }

    [GpuTheory]
    [MemberData(nameof(Cases))]
    public void MatchesTheCpu(int op, DType dtype)
    {
        var (name, f) = Ops[op];
        double tol = dtype == DType.Float32 ? 1e-5 : 1e-12;
        using var x = Parity.Randn(31, dtype, 2, 5, 43, 37);
        Parity.Check(name, t => f(t[0]), [x], tol, tol);
        int[] outShape;
        using (var y = f(x)) outShape = y.Shape.ToArray();
        using var grad = Parity.Randn(32, dtype, outShape);
        Parity.Check(name + " backward", t =>
        {
            using var leaf = t[0].Detach().RequiresGrad_();
            using var y = f(leaf);
            y.Backward(t[1]);
            var gr = leaf.Grad!;
            leaf.Grad = null;
            return gr;
        }, [x, grad], 10 * tol, 10 * tol);
    }

    [GpuFact]
    public void MaxPoolIndices_MatchTheCpu_WithTiesAndNaN()
    {
        // Coarse values (many ties) and a few NaNs: the first maximum in scan order, or the last NaN.
        using var r = Parity.Randn(33, DType.Float32, 2, 3, 41, 38);
        using var coarse = r.Floor();
        var v = coarse.ToArray<float>();
        for (int i = 0; i < v.Length; i += 97) v[i] = float.NaN;
        using var x = Tensor.From<float>(v, [2, 3, 41, 38], Device.Cpu);
        Parity.Check("max values", t => t[0].MaxPool2d(3, 2, 1), [x]);
        Parity.Check("max indices", t => Indices(t[0], (3, 3), (2, 2), (1, 1), (1, 1), false), [x]);
        Parity.Check("max indices dilated", t => Indices(t[0], (3, 2), (1, 2), (1, 1), (2, 3), true), [x]);
    }

    private static Tensor Indices(Tensor x, (int, int) kernel, (int, int) stride, (int, int) padding, (int, int) dilation, bool ceilMode)
    {
        var (values, indices) = x.MaxPool2dWithIndices(kernel, stride, padding, dilation, ceilMode);
        values.Dispose();
        return indices;
    }
}
