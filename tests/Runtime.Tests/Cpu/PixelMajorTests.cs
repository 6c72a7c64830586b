using Runtime.Autograd;
using Runtime.Backends;
using Runtime.Cpu;

namespace Runtime.Tests.Cpu;

/// <summary>
/// The pixel-major forward (output pixels as the micro-kernel's rows, for inference on small maps) against a float64
/// convolution of the same float32 values: ResNet-50's batch-1 shapes it is meant for, strides 1-3, dilation 2,
/// kernels 1, 3, 5 and 7, paddings 0-3, widths that are and are not a multiple of 7 (the two ways of packing the
/// pixels), batches whose thread shares cut through an image, channel counts off the 32-wide sliver; its epilogue; its
/// cached W^T following in-place weight updates; the rule that picks it.
/// </summary>
[Collection(ConvPathCollection.Name)]
public class PixelMajorTests
{
    /// <summary>The direct paths' bound: |y32 - y64| at most 1e-5 of the largest |y64| of the output.</summary>
    private const double Bound = 1e-5;

    public static TheoryData<int, int, int, int, int, int, int, int, int> Shapes() => new()
    {
        // batch, Cin, H, W, Cout, kernel, stride, padding, dilation
        { 1, 512, 7, 7, 512, 3, 1, 1, 1 },      // ResNet-50 layer4 3x3: 7 slivers, shared out by channels
        { 1, 256, 28, 28, 256, 3, 2, 1, 1 },    // layer3's first 3x3 (stride 2)
        { 1, 512, 14, 14, 512, 3, 2, 1, 1 },    // layer4's first 3x3 (stride 2)
        { 1, 1024, 14, 14, 2048, 1, 2, 0, 1 },  // layer4's downsample 1x1 stride 2
        { 1, 2048, 7, 7, 512, 1, 1, 0, 1 },     // layer4 1x1
        { 3, 64, 7, 7, 96, 3, 1, 1, 1 },        // 21 slivers: the threads' shares cut through image 1
        { 8, 256, 7, 7, 300, 1, 1, 0, 1 },      // batch 8, Cout not a multiple of 32
        { 2, 32, 14, 14, 64, 3, 1, 2, 2 },      // dilation 2
        { 2, 24, 28, 28, 40, 7, 2, 3, 1 },      // 7x7 stride 2 (a stem)
        { 1, 40, 14, 14, 24, 3, 2, 1, 1 },      // stride 2, padding on both edges of every sliver
        { 3, 64, 9, 11, 40, 3, 2, 1, 1 },       // 5 x 6 output: width not a multiple of 7
        { 2, 48, 15, 15, 72, 3, 1, 2, 2 },      // 15 x 15 output, dilation 2
        { 1, 16, 21, 21, 24, 5, 3, 2, 1 },      // stride 3
        { 1, 20, 7, 7, 33, 3, 1, 0, 1 },        // no padding, 5 x 5 output
    };

    [CpuTheory("the pixel-major path is the CPU's")]
    [MemberData(nameof(Shapes))]
    public void MatchesFloat64Convolution(int batch, int cin, int h, int w, int cout, int kernel, int stride, int pad, int dilation)
    {
        using var x = ConvReference.Random([batch, cin, h, w], 1, 1.0);
        using var weight = ConvReference.Random([cout, cin, kernel, kernel], 2, Math.Sqrt(2.0 / (kernel * kernel * cin)));
        using var bias = ConvReference.Random([cout], 3, 0.1);
        using var y = WithPolicy(CpuBackend.PathPolicy.Always, () =>
        {
            // Without AVX-512 (the avx2 and scalar CI passes) the path is off and this checks the other paths instead.
            var g = Geometry(batch, cin, h, w, cout, kernel, stride, pad, dilation);
            Assert.Equal(Avx512, CpuBackend.PixelMajorApplies(g, DType.Float32, true));
            using var _ = GradMode.NoGrad();
            return x.Conv2d(weight, bias, stride, pad, dilation);
        });
        using var reference = ConvReference.Of(x, weight, bias, stride, pad, dilation, null, false);
        ConvReference.AssertClose(reference, y, Bound);
    }

    [CpuFact("the pixel-major path is the CPU's")]
    public void AgreesWithTheChannelMajorPath()
    {
        // Same K blocks, one FMA chain per output: the two float32 paths round alike.
        using var x = ConvReference.Random([2, 96, 14, 14], 11, 1.0);
        using var weight = ConvReference.Random([160, 96, 3, 3], 12, 0.05);
        using var bias = ConvReference.Random([160], 13, 0.1);
        using var _ = GradMode.NoGrad();
        using var pixel = WithPolicy(CpuBackend.PathPolicy.Always, () => x.Conv2d(weight, bias, 2, 1));
        using var channel = WithPolicy(CpuBackend.PathPolicy.Off, () => x.Conv2d(weight, bias, 2, 1));
        ConvReference.AssertClose(channel, pixel, 1e-6);
    }

    [CpuTheory("the pixel-major path is the CPU's")]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void EpilogueAddsTheResidualAndAppliesTheRelu(bool withResidual, bool relu)
    {
        int batch = 2, cin = 64, h = 14, w = 14, cout = 40;
        var g = Geometry(batch, cin, h, w, cout, 3, 2, 1, 1);
        using var x = ConvReference.Random([batch, cin, h, w], 4, 1.0);
        using var weight = ConvReference.Random([cout, cin, 3, 3], 5, Math.Sqrt(2.0 / (9 * cin)));
        using var bias = ConvReference.Random([cout], 6, 0.5);
        using var residual = ConvReference.Random([batch, cout, 7, 7], 7, 1.0);
        using var y = Tensor.Empty([batch, cout, 7, 7], DType.Float32, Device.Cpu);
        WithPolicy(CpuBackend.PathPolicy.Always, () =>
        {
            using (GradMode.NoGrad())
            using (var xc = x.Contiguous())
                Backend().Conv2dFused(xc.KernelView, weight.KernelView, bias.KernelView, withResidual ? residual.KernelView : null, relu, y.KernelView, g);
            return 0;
        });
        using var reference = ConvReference.Of(x, weight, bias, 2, 1, 1, withResidual ? residual : null, relu);
        ConvReference.AssertClose(reference, y, Bound);
        if (relu) Assert.True(y.ToArray<float>().Min() == 0);
    }

    [CpuFact("the pixel-major path is the CPU's")]
    public void CachedWeightsFollowInPlaceUpdates()
    {
        int cin = 128, cout = 64;
        using var x = ConvReference.Random([1, cin, 7, 7], 8, 1.0);
        using var weight = ConvReference.Random([cout, cin, 3, 3], 9, 0.05);
        using var other = ConvReference.Random([cout, cin, 3, 3], 10, 0.05);
        WithPolicy(CpuBackend.PathPolicy.Always, () =>
        {
            using var _ = GradMode.NoGrad();
            using var first = x.Conv2d(weight, null, 1, 1);
            ConvReference.AssertClose(ConvReference.Of(x, weight, null, 1, 1, 1, null, false), first, Bound);
            weight.CopyFrom(other);
            using var second = x.Conv2d(weight, null, 1, 1);
            using var expected = ConvReference.Of(x, other, null, 1, 1, 1, null, false);
            ConvReference.AssertClose(expected, second, Bound);
            weight.MulInPlace(-2);
            using var third = x.Conv2d(weight, null, 1, 1);
            using var scaled = expected * -2;
            ConvReference.AssertClose(scaled, third, Bound);
            return 0;
        });
    }

    [CpuTheory("the pixel-major path is the CPU's")]
    [InlineData(1, 512, 7, 7, 512, 3, 1, true)]      // 49 pixels: 64 columns on the channel-major path
    [InlineData(1, 256, 28, 28, 256, 3, 2, true)]    // 196 pixels against 224
    [InlineData(1, 2048, 7, 7, 512, 1, 1, true)]
    [InlineData(8, 128, 56, 56, 128, 3, 2, false)]   // 6272 pixels: no padding to save, the transposition to pay
    [InlineData(1, 256, 14, 14, 1024, 1, 1, false)]  // K = 256: the transposition costs more than the padding saves
    [InlineData(1, 64, 56, 56, 64, 3, 1, false)]
    public void RulePicksThePath(int batch, int cin, int h, int w, int cout, int kernel, int stride, bool expected)
    {
        Assert.Equal(CpuBackend.PathPolicy.Auto, CpuBackend.PixelMajor);
        var g = Geometry(batch, cin, h, w, cout, kernel, stride, kernel / 2, 1);
        Assert.Equal(expected && Avx512, CpuBackend.PixelMajorApplies(g, DType.Float32, true));
        Assert.False(CpuBackend.PixelMajorApplies(g, DType.Float64, true));
        Assert.False(CpuBackend.PixelMajorApplies(g, DType.Float32, false)); // training: W^T is not cached
        Assert.False(CpuBackend.PixelMajorApplies(g with { Groups = 2 }, DType.Float32, true));
    }

    /// <summary>Runs <paramref name="body"/> under a PixelMajor policy.</summary>
    private static T WithPolicy<T>(CpuBackend.PathPolicy policy, Func<T> body) =>
        ConvReference.WithPolicy(() => CpuBackend.PixelMajor, p => CpuBackend.PixelMajor = p, policy, body);

    private static bool Avx512 => System.Runtime.Intrinsics.X86.Avx512F.IsSupported;

    private static IBackend Backend() => BackendRegistry.For(Device.Cpu);

    private static Conv2dGeometry Geometry(int batch, int cin, int h, int w, int cout, int kernel, int stride, int pad, int dilation)
    {
        int oh = (h + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1, ow = (w + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
        return new(batch, cin, h, w, cout, oh, ow, kernel, kernel, stride, stride, pad, pad, dilation, dilation, 1);
    }
}
