using Runtime.Autograd;

namespace Runtime.Tests;

/// <summary>
/// The one-pass inference kernels (eval batch norm's per-channel affine map with an optional ReLU, residual add + ReLU)
/// give the bits of the composed elementwise ops they replace.
/// </summary>
public class FusedInferenceTests
{
    private static double[] Values(int n, int seed, bool withNaN)
    {
        var r = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = r.NextDouble() * 8 - 4;
        if (withNaN && n > 3) { v[1] = double.NaN; v[n - 2] = double.NaN; v[2] = 0; }
        return v;
    }

    private static Tensor Make(double[] v, int[] shape, DType dtype)
    {
        using var d = Tensor.From(v, shape);
        return d.To(dtype);
    }

    private static long[] Bits(Tensor t)
    {
        using var d = t.To(DType.Float64);
        return d.ToArray<double>().Select(BitConverter.DoubleToInt64Bits).ToArray();
    }

    public static TheoryData<int[], DType, bool> Cases()
    {
        var data = new TheoryData<int[], DType, bool>();
        foreach (var shape in new[] { new[] { 2, 5, 7, 9 }, new[] { 1, 3, 40 }, new[] { 3, 4, 1, 1 }, new[] { 2, 16, 8, 8 } })
            foreach (var dt in new[] { DType.Float32, DType.Float64 })
                foreach (bool relu in new[] { false, true })
                    data.Add(shape, dt, relu);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ChannelAffineMatchesComposedOps(int[] shape, DType dtype, bool relu)
    {
        int c = shape[1];
        long n = shape.Aggregate(1L, (a, b) => a * b);
        using var x = Make(Values((int)n, 1, true), shape, dtype);
        using var scale = Make(Values(c, 2, false), [c], dtype);
        using var shift = Make(Values(c, 3, false), [c], dtype);

        var bshape = new int[shape.Length];
        Array.Fill(bshape, 1);
        bshape[1] = c;
        using var s = scale.Reshape(bshape);
        using var b = shift.Reshape(bshape);
        using var scaled = x * s;
        using var sum = scaled + b;
        using var relued = sum.Relu();

        Tensor fused;
        using (GradMode.NoGrad()) fused = x.ChannelAffine(scale, shift, relu);
        using (fused)
            Assert.Equal(Bits(relu ? relued : sum), Bits(fused));
    }

    [Theory]
    [InlineData(DType.Float32, 1000)]
    [InlineData(DType.Float64, 77)]
    [InlineData(DType.Float32, 100_003)]
    public void AddReluMatchesComposedOps(DType dtype, int n)
    {
        using var a = Make(Values(n, 4, true), [n], dtype);
        using var b = Make(Values(n, 5, false), [n], dtype);
        using var sum = a + b;
        using var expected = sum.Relu();
        Tensor fused;
        using (GradMode.NoGrad()) fused = a.AddRelu(b);
        using (fused)
            Assert.Equal(Bits(expected), Bits(fused));
    }
}
