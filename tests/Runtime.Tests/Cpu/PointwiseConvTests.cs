using Runtime.Autograd;
using Runtime.Cpu;

namespace Runtime.Tests.Cpu;

/// <summary>
/// Pointwise (1x1) float32 convolutions on the channel-major GEMM path, whose weights are packed for the deep-K
/// configuration (K blocks of up to 1024, fewer B columns per block): depths over one and two blocks, stride 1 and 2,
/// batch 1 (the weight times each image) and 3 (the implicit GEMM over all images), with and without prepacked
/// weights, against a float64 convolution of the same values.
/// </summary>
[Collection(ConvPathCollection.Name)]
public class PointwiseConvTests
{
    private const double Bound = 1e-5;

    [CpuTheory("the deep-K configuration is the CPU's")]
    [InlineData(1, 1300, 7, 7, 96, 1)]     // two K blocks of 650
    [InlineData(3, 2200, 5, 6, 40, 1)]     // three K blocks, images side by side
    [InlineData(1, 1100, 14, 14, 72, 2)]   // stride 2
    [InlineData(3, 600, 9, 9, 130, 2)]     // one K block deeper than 384, Cout off the sliver
    [InlineData(2, 64, 20, 20, 48, 1)]     // shallow: the blocking is unchanged
    public void MatchesFloat64Convolution(int batch, int cin, int h, int w, int cout, int stride)
    {
        using var x = ConvReference.Random([batch, cin, h, w], 21, 1.0);
        using var weight = ConvReference.Random([cout, cin, 1, 1], 22, Math.Sqrt(2.0 / cin));
        using var bias = ConvReference.Random([cout], 23, 0.1);
        using var reference = ConvReference.Of(x, weight, bias, stride, 0, 1, null, false);
        ConvReference.WithPolicy(() => CpuBackend.PixelMajor, p => CpuBackend.PixelMajor = p, CpuBackend.PathPolicy.Off, () =>
        {
            using (var training = x.Conv2d(weight, bias, stride, 0))
                ConvReference.AssertClose(reference, training, Bound);
            using var _ = GradMode.NoGrad();
            for (int call = 0; call < 2; call++) // packs the weight, then reuses it
            {
                using var y = x.Conv2d(weight, bias, stride, 0);
                ConvReference.AssertClose(reference, y, Bound);
            }
            return 0;
        });
    }
}
