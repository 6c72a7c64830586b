using Runtime.Backends;

namespace Runtime.Tests;

/// <summary>
/// The default convolution kernels of <see cref="IBackend"/> (<see cref="ConvComposition"/>: im2col from strided copies,
/// col2im from strided adds, the products from im2col + matmul) against the device's own kernels, which replace them
/// and are themselves checked against torch and a loop reference in <see cref="ConvTests"/>.
/// </summary>
public class ConvCompositionTests
{
    public static TheoryData<int[], DType> Geometries()
    {
        // {N, Cin, H, W, Cout, OH, OW, kH, kW, sH, sW, pH, pW, dH, dW, groups}
        var shapes = new[]
        {
            new[] { 2, 3, 6, 5, 4, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1 },
            [3, 4, 9, 8, 6, 4, 3, 3, 2, 2, 3, 1, 0, 1, 2, 2],
            [2, 6, 5, 5, 6, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, 6],
            [2, 5, 4, 3, 7, 4, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1],
            // A transposed convolution's geometry: H, W one larger than the forward formula gives (output padding).
            [1, 3, 8, 8, 2, 3, 3, 3, 3, 2, 2, 0, 0, 1, 1, 1],
        };
        var data = new TheoryData<int[], DType>();
        foreach (var s in shapes)
        {
            data.Add(s, DType.Float32);
            data.Add(s, DType.Float64);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void DefaultCompositions_MatchBackendKernels(int[] s, DType dtype)
    {
        var g = new Conv2dGeometry(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13], s[14], s[15]);
        var gen = new Generator(42);
        using var x = Tensor.Randn([g.Batch, g.InChannels, g.Height, g.Width], gen, dtype);
        using var w = Tensor.Randn([g.OutChannels, g.InPerGroup, g.KernelH, g.KernelW], gen, dtype);
        using var b = Tensor.Randn([g.OutChannels], gen, dtype);
        using var gy = Tensor.Randn([g.Batch, g.OutChannels, g.OutHeight, g.OutWidth], gen, dtype);
        using var cols = Tensor.Randn([g.ColumnRows, g.Batch * g.OutPlane], gen, dtype);
        var backend = x.Backend;
        double tol = dtype == DType.Float64 ? 1e-12 : 1e-5;

        void Compare(int[] shape, Action<IBackend, TensorView> viaKernel, Action<IBackend, TensorView> viaComposition)
        {
            using var expected = Tensor.Full(shape, double.NaN, dtype);
            using var actual = Tensor.Full(shape, double.NaN, dtype);
            viaKernel(backend, expected.KernelView);
            viaComposition(backend, actual.KernelView);
            TestUtil.AssertClose(expected.ToDoubleArray(), actual, tol, tol);
        }

        int[] colShape = [g.ColumnRows, g.Batch * g.OutPlane];
        Compare(colShape, (be, o) => be.Im2Col(x.KernelView, o, g), (be, o) => ConvComposition.Im2Col(be, x.KernelView, o, g));
        Compare(x.ShapeArray, (be, o) => be.Col2Im(cols.KernelView, o, g), (be, o) => ConvComposition.Col2Im(be, cols.KernelView, o, g));
        Compare(gy.ShapeArray, (be, o) => be.Conv2d(x.KernelView, w.KernelView, b.KernelView, o, g),
            (be, o) => ConvComposition.Conv2d(be, x.KernelView, w.KernelView, b.KernelView, o, g));
        Compare(x.ShapeArray, (be, o) => be.Conv2dGradInput(gy.KernelView, w.KernelView, o, g),
            (be, o) => ConvComposition.Conv2dGradInput(be, gy.KernelView, w.KernelView, o, g));
        Compare(w.ShapeArray, (be, o) => be.Conv2dGradWeight(x.KernelView, gy.KernelView, o, g),
            (be, o) => ConvComposition.Conv2dGradWeight(be, x.KernelView, gy.KernelView, o, g));
    }
}
