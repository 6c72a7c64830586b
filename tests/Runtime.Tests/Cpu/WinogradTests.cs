using Runtime.Autograd;
using Runtime.Backends;
using Runtime.Cpu;

namespace Runtime.Tests.Cpu;

/// <summary>
/// The Winograd F(4x4, 3x3) path of float32 3x3 stride-1 convolutions against a float64 convolution of the same
/// (float32-rounded) values, on the ResNet-50 and FPN layer shapes (planes scaled down where the real ones would make
/// the suite slow, odd sizes kept), paddings 0-2, batch 1 and 8, with its epilogue (bias, residual, ReLU), the cached
/// transformed weights following in-place weight updates, and the rule that picks the path.
/// </summary>
[Collection(ConvPathCollection.Name)]
public class WinogradTests
{
    /// <summary>
    /// The documented bound: |y32 - y64| at most 5e-5 of the largest |y64| of the output (the float32 im2col path
    /// is within about 2e-7 of it; F(4x4, 3x3) multiplies the rounding by the transforms' growth).
    /// </summary>
    private const double Bound = 5e-5;

    public static TheoryData<int, int, int, int, int, int> Shapes() => new()
    {
        // batch, Cin, H, W, Cout, padding
        { 1, 64, 56, 56, 64, 1 },     // ResNet-50 layer1 3x3
        { 8, 64, 20, 20, 64, 1 },     // layer1 at batch 8 (plane scaled down)
        { 1, 128, 28, 28, 128, 1 },   // layer2 3x3
        { 8, 128, 12, 12, 128, 1 },
        { 1, 256, 14, 14, 256, 1 },   // layer3 3x3
        { 8, 256, 14, 14, 256, 1 },
        { 1, 512, 9, 11, 512, 1 },    // layer4 width, odd plane
        { 1, 256, 25, 34, 256, 1 },   // FPN / RPN 3x3 on a stride-32 level of an 800 x 1088 image
        { 2, 256, 33, 17, 256, 1 },   // odd sizes, tiles overhang both edges
        { 1, 32, 21, 19, 48, 0 },     // no padding
        { 2, 24, 15, 18, 40, 2 },     // padding 2 (output larger than input)
        { 1, 300, 16, 16, 20, 1 },    // Cin over one channel block, Cout not a multiple of the sliver
        { 8, 512, 7, 7, 512, 1 },     // layer4 at batch 8: 32 tiles, stages split over the threads
        { 3, 64, 16, 16, 64, 1 },     // 48 tiles in one chunk
        { 5, 40, 16, 16, 24, 1 },     // 80 tiles: a full chunk and a partial one
    };

    [CpuTheory("the Winograd path is the CPU's")]
    [MemberData(nameof(Shapes))]
    public void MatchesFloat64Convolution(int batch, int cin, int h, int w, int cout, int pad)
    {
        using var x = ConvReference.Random([batch, cin, h, w], 1, 1.0);
        using var weight = ConvReference.Random([cout, cin, 3, 3], 2, Math.Sqrt(2.0 / (9 * cin)));
        using var bias = ConvReference.Random([cout], 3, 0.1);
        using var y = WithPolicy(CpuBackend.PathPolicy.Always, () =>
        {
            // Without AVX2 + FMA (the scalar CI pass) the path is off and this checks the GEMM path instead.
            Assert.Equal(Simd, CpuBackend.WinogradApplies(Geometry(batch, cin, h, w, cout, pad), DType.Float32));
            return x.Conv2d(weight, bias, 1, pad);
        });
        using var reference = ConvReference.Of(x, weight, bias, 1, pad, 1, null, false);
        ConvReference.AssertClose(reference, y, Bound);
    }

    [CpuTheory("the Winograd path is the CPU's")]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void EpilogueAddsTheResidualAndAppliesTheRelu(bool withResidual, bool relu)
    {
        int batch = 2, cin = 64, h = 18, w = 13, cout = 40;
        var g = Geometry(batch, cin, h, w, cout, 1);
        using var x = ConvReference.Random([batch, cin, h, w], 4, 1.0);
        using var weight = ConvReference.Random([cout, cin, 3, 3], 5, Math.Sqrt(2.0 / (9 * cin)));
        using var bias = ConvReference.Random([cout], 6, 0.5);
        using var residual = ConvReference.Random([batch, cout, h, w], 7, 1.0);
        using var y = Tensor.Empty([batch, cout, h, w], DType.Float32, Device.Cpu);
        using (GradMode.NoGrad())
        using (var xc = x.Contiguous())
            Backend().Conv2dFused(xc.KernelView, weight.KernelView, bias.KernelView, withResidual ? residual.KernelView : null, relu, y.KernelView, g);
        using var reference = ConvReference.Of(x, weight, bias, 1, 1, 1, withResidual ? residual : null, relu);
        ConvReference.AssertClose(reference, y, Bound);
        if (relu) Assert.True(y.ToArray<float>().Min() == 0);
    }

    [CpuFact("the Winograd path is the CPU's")]
    public void CachedWeightsFollowInPlaceUpdates()
    {
        int cin = 32, cout = 32, h = 32, w = 32;
        using var x = ConvReference.Random([1, cin, h, w], 8, 1.0);
        using var weight = ConvReference.Random([cout, cin, 3, 3], 9, 0.1);
        using var other = ConvReference.Random([cout, cin, 3, 3], 10, 0.1);
        using (GradMode.NoGrad())
        {
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
        }
    }

    [CpuFact("the Winograd path is the CPU's")]
    public void WinogradAndDirectPathsAgreeWithGradients()
    {
        // Training forwards take the Winograd path too; the backward is the GEMM one, so the gradients are unchanged.
        using var x = ConvReference.Random([2, 16, 12, 12], 11, 1.0).RequiresGrad_();
        using var weight = ConvReference.Random([16, 16, 3, 3], 12, 0.2).RequiresGrad_();
        using var y = WithPolicy(CpuBackend.PathPolicy.Always, () => x.Conv2d(weight, null, 1, 1));
        using var direct = WithPolicy(CpuBackend.PathPolicy.Off, () => x.Conv2d(weight, null, 1, 1));
        ConvReference.AssertClose(direct, y, Bound);
        using var gy = ConvReference.Random([2, 16, 12, 12], 13, 1.0);
        y.Backward(gy);
        var gx = x.Grad!.ToArray<float>();
        var gw = weight.Grad!.ToArray<float>();
        x.Grad = null;
        weight.Grad = null;
        direct.Backward(gy);
        Assert.Equal(gx, x.Grad!.ToArray<float>());
        Assert.Equal(gw, weight.Grad!.ToArray<float>());
    }

    /// <summary>Runs <paramref name="body"/> under a Winograd policy.</summary>
    private static T WithPolicy<T>(CpuBackend.PathPolicy policy, Func<T> body) =>
        ConvReference.WithPolicy(() => CpuBackend.Winograd, p => CpuBackend.Winograd = p, policy, body);

    [CpuTheory("the Winograd path is the CPU's")]
    [InlineData(1, 512, 7, 7, 512, 1, false)]    // 4 tiles: the transformed weights cost more than they save
    [InlineData(8, 512, 7, 7, 512, 1, true)]     // 32 tiles
    [InlineData(1, 8, 32, 32, 64, 1, false)]     // too few input channels
    [InlineData(1, 256, 14, 14, 256, 1, true)]   // 16 tiles
    [InlineData(1, 64, 12, 12, 64, 1, false)]    // 9 tiles
    public void RulePicksThePath(int batch, int cin, int h, int w, int cout, int pad, bool expected)
    {
        Assert.Equal(CpuBackend.PathPolicy.Auto, CpuBackend.Winograd);
        Assert.Equal(expected && Simd, CpuBackend.WinogradApplies(Geometry(batch, cin, h, w, cout, pad), DType.Float32));
        Assert.False(CpuBackend.WinogradApplies(Geometry(batch, cin, h, w, cout, pad), DType.Float64));
        Assert.False(CpuBackend.WinogradApplies(Geometry(batch, cin, h, w, cout, pad) with { StrideH = 2, StrideW = 2 }, DType.Float32));
    }

    private static bool Simd => System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported;

    private static IBackend Backend() => BackendRegistry.For(Device.Cpu);

    private static Conv2dGeometry Geometry(int batch, int cin, int h, int w, int cout, int pad) =>
        new(batch, cin, h, w, cout, h + 2 * pad - 2, w + 2 * pad - 2, 3, 3, 1, 1, pad, pad, 1, 1, 1);
}
