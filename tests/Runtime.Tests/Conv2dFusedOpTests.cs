using Runtime.Autograd;

namespace Runtime.Tests;

/// <summary>
/// <see cref="Tensor.Conv2dFused"/>: without a gradient wanted (the backend's fused convolution) and with one (the
/// composed ops) it gives Conv2d + residual + ReLU computed op by op, including the gradients; bad residuals are refused.
/// </summary>
public class Conv2dFusedOpTests
{
    public static TheoryData<string, DType, bool, bool, bool> Cases()
    {
        var data = new TheoryData<string, DType, bool, bool, bool>();
        foreach (var geometry in new[] { "pointwise", "3x3s2", "grouped", "unbatched" })
            foreach (var dtype in new[] { DType.Float32, DType.Float64 })
                foreach (var (bias, residual, relu) in new[] { (true, true, true), (false, true, false), (true, false, true), (false, false, false) })
                    data.Add(geometry, dtype, bias, residual, relu);
        return data;
    }

    private sealed record Setup(int[] X, int[] W, (int, int) Stride, (int, int) Padding, (int, int) Dilation, int Groups);

    private static Setup Geometry(string name) => name switch
    {
        "pointwise" => new([2, 6, 5, 7], [4, 6, 1, 1], (1, 1), (0, 0), (1, 1), 1),
        "3x3s2" => new([2, 3, 9, 8], [5, 3, 3, 3], (2, 2), (1, 1), (1, 1), 1),
        "grouped" => new([1, 4, 7, 7], [6, 2, 3, 3], (1, 1), (2, 2), (2, 2), 2),
        _ => new([3, 6, 6], [4, 3, 3, 3], (1, 1), (1, 1), (1, 1), 1),
    };

    private static Tensor Composed(Tensor x, Tensor w, Tensor? b, Setup s, Tensor? r, bool relu)
    {
        using var conv = x.Conv2d(w, b, s.Stride, s.Padding, s.Dilation, s.Groups);
        using var sum = r is null ? conv.Reshape(conv.Shape.ToArray()) : conv + r;
        return relu ? sum.Relu() : sum.Reshape(sum.Shape.ToArray());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesComposedOpsWithAndWithoutGradients(string geometry, DType dtype, bool withBias, bool withResidual, bool relu)
    {
        var s = Geometry(geometry);
        var gen = new Generator(5);
        using var x = Tensor.Randn(s.X, gen, dtype);
        using var w = Tensor.Randn(s.W, gen, dtype);
        using var b = withBias ? Tensor.Randn([s.W[0]], gen, dtype) : null;
        int[] outShape;
        using (GradMode.NoGrad())
        using (var probe = x.Conv2d(w, null, s.Stride, s.Padding, s.Dilation, s.Groups))
            outShape = probe.Shape.ToArray();
        using var r = withResidual ? Tensor.Randn(outShape, gen, dtype) : null;
        double tol = dtype == DType.Float64 ? 1e-12 : 1e-5;

        // No gradient wanted: the backend's fused convolution.
        using (GradMode.NoGrad())
        {
            using var fused = x.Conv2dFused(w, b, s.Stride, s.Padding, s.Dilation, s.Groups, r, relu);
            using var reference = Composed(x, w, b, s, r, relu);
            Assert.Equal(outShape, fused.Shape.ToArray());
            Assert.False(fused.RequiresGrad);
            TestUtil.AssertClose(reference.ToDoubleArray(), fused, tol, tol);
            if (relu) Assert.All(fused.ToDoubleArray(), v => Assert.True(v >= 0));
        }

        // Gradients wanted: the composed ops, whose gradients are the op-by-op ones.
        Tensor[] leaves = [x, w, .. b is null ? Array.Empty<Tensor>() : [b], .. r is null ? Array.Empty<Tensor>() : [r]];
        foreach (var t in leaves) t.RequiresGrad = true;
        using var upstream = Tensor.Randn(outShape, gen, dtype);
        double[][] Grads(Func<Tensor> f)
        {
            foreach (var t in leaves) { t.Grad?.Dispose(); t.Grad = null; }
            using var y = f();
            using var weighted = y * upstream;
            using var loss = weighted.Sum();
            loss.Backward();
            return leaves.Select(t => t.Grad!.ToDoubleArray()).ToArray();
        }
        var got = Grads(() => x.Conv2dFused(w, b, s.Stride, s.Padding, s.Dilation, s.Groups, r, relu));
        var want = Grads(() => Composed(x, w, b, s, r, relu));
        for (int i = 0; i < leaves.Length; i++)
            Assert.Equal(want[i], got[i]);
        foreach (var t in leaves) { t.Grad?.Dispose(); t.Grad = null; }
    }

    [Fact]
    public void BadResidualIsRefused()
    {
        using var x = Tensor.Randn([1, 3, 6, 6], new Generator(1));
        using var w = Tensor.Randn([4, 3, 3, 3], new Generator(2));
        using var wrongShape = Tensor.Zeros([1, 4, 6, 6]);
        var e = Assert.Throws<ArgumentException>(() => x.Conv2dFused(w, null, (1, 1), (0, 0), (1, 1), 1, wrongShape, true));
        Assert.Equal("residual", e.ParamName);
        Assert.Contains("[1, 4, 4, 4]", e.Message);
        using var wrongType = Tensor.Zeros([1, 4, 4, 4], DType.Float64);
        e = Assert.Throws<ArgumentException>(() => x.Conv2dFused(w, null, (1, 1), (0, 0), (1, 1), 1, wrongType, false));
        Assert.Equal("residual", e.ParamName);
        using var wrongWeight = Tensor.Randn([4, 2, 3, 3], new Generator(3));
        e = Assert.Throws<ArgumentException>(() => x.Conv2dFused(wrongWeight, null, (1, 1), (0, 0), (1, 1), 1, null, false));
        Assert.Equal("weight", e.ParamName);
    }
}
