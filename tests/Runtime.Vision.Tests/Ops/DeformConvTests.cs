using System.Text.Json;
using Runtime.Tests;
using Runtime.Vision.Ops;

namespace Runtime.Vision.Tests.Ops;

public class DeformConvTests
{
    public static TheoryData<string, string> GoldenCases()
    {
        var d = new TheoryData<string, string>();
        string[] cases = ["mask", "nomask", "groups2", "offset_groups2_nomask", "stride2_dilation2", "rect", "awkward"];
        foreach (var dev in OpsDevices.Gpus.Select(g => g.ToString()).Prepend("cpu"))
            foreach (var c in cases)
                d.Add(dev, c);
        return d;
    }

    private static (int, int) Pair(JsonElement c, string name)
    {
        var a = c.GetProperty(name).EnumerateArray().Select(x => x.GetInt32()).ToArray();
        return (a[0], a[1]);
    }

    private static bool Has(JsonElement c, string name) => c.TryGetProperty(name, out _);

    /// <summary>Forward and all five gradients against torchvision, in float64 and float32.</summary>
    [Theory, MemberData(nameof(GoldenCases))]
    public void MatchesTorchvision(string device, string name)
    {
        var dev = Device.Parse(device);
        var c = OpsGolden.Load("deform.json").GetProperty(name);
        foreach (var dt in new[] { DType.Float64, DType.Float32 })
        {
            double atol = dt == DType.Float64 ? 1e-10 : 2e-4, rtol = dt == DType.Float64 ? 1e-9 : 2e-4;
            using var x = OpsGolden.Tensor(c.GetProperty("input"), dt, dev);
            using var off = OpsGolden.Tensor(c.GetProperty("offset"), dt, dev);
            using var w = OpsGolden.Tensor(c.GetProperty("weight"), dt, dev);
            using var m = Has(c, "mask") ? OpsGolden.Tensor(c.GetProperty("mask"), dt, dev) : null;
            using var b = Has(c, "bias") ? OpsGolden.Tensor(c.GetProperty("bias"), dt, dev) : null;
            using var gy = OpsGolden.Tensor(c.GetProperty("gy"), dt, dev);
            var leaves = new List<Tensor> { x, off, w };
            if (m is not null) leaves.Add(m);
            if (b is not null) leaves.Add(b);
            foreach (var l in leaves) l.RequiresGrad = true;
            using var y = DeformConvOps.DeformConv2d(x, off, w, b, Pair(c, "stride"), Pair(c, "padding"), Pair(c, "dilation"), m);
            TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("output")), y, atol, rtol);
            using var prod = y * gy;
            using var loss = prod.Sum();
            loss.Backward();
            TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_input")), x.Grad!, atol, rtol);
            // torchvision's float32 offset gradient differences large corner values: allow a little more.
            TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_offset")), off.Grad!, atol * 5, rtol * 5);
            TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_weight")), w.Grad!, atol, rtol);
            if (m is not null) TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_mask")), m.Grad!, atol, rtol);
            if (b is not null) TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_bias")), b.Grad!, atol, rtol);
        }
    }

    /// <summary>Non-contiguous input, offset, mask and weight (transposed copies) give the contiguous result.</summary>
    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void NonContiguousInputs(string device)
    {
        var dev = Device.Parse(device);
        var c = OpsGolden.Load("deform.json").GetProperty("mask");
        using var x = OpsGolden.Tensor(c.GetProperty("input"), DType.Float64, dev);
        using var off = OpsGolden.Tensor(c.GetProperty("offset"), DType.Float64, dev);
        using var w = OpsGolden.Tensor(c.GetProperty("weight"), DType.Float64, dev);
        using var m = OpsGolden.Tensor(c.GetProperty("mask"), DType.Float64, dev);
        using var b = OpsGolden.Tensor(c.GetProperty("bias"), DType.Float64, dev);
        // Same values, stored transposed in H and W.
        using var xt0 = x.Transpose(2, 3).Contiguous();
        using var xt = xt0.Transpose(2, 3);
        using var ot0 = off.Transpose(2, 3).Contiguous();
        using var ot = ot0.Transpose(2, 3);
        using var mt0 = m.Transpose(2, 3).Contiguous();
        using var mt = mt0.Transpose(2, 3);
        Assert.False(xt.IsContiguous);
        xt.RequiresGrad = true;
        ot.RequiresGrad = true;
        using var y = DeformConvOps.DeformConv2d(xt, ot, w, b, 1, 1, 1, mt);
        TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("output")), y, 1e-10, 1e-9);
        using var gy = OpsGolden.Tensor(c.GetProperty("gy"), DType.Float64, dev);
        using var prod = y * gy;
        using var loss = prod.Sum();
        loss.Backward();
        TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_input")), xt.Grad!, 1e-10, 1e-9);
        TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_offset")), ot.Grad!, 1e-10, 1e-9);
    }

    /// <summary>Float64 finite differences for all five gradients: with a mask, offset groups 2, weight groups 2, stride 2.</summary>
    [Fact]
    public void GradCheckAllInputs()
    {
        var gen = new Generator(11);
        using var x = Tensor.Randn([1, 4, 5, 5], gen, DType.Float64);
        using var off0 = Tensor.Randn([1, 2 * 2 * 4, 3, 3], gen, DType.Float64);
        using var off = off0 * 0.8;
        using var w = Tensor.Randn([4, 2, 2, 2], gen, DType.Float64);
        using var m = Tensor.Rand([1, 2 * 4, 3, 3], gen, DType.Float64);
        using var b = Tensor.Randn([4], gen, DType.Float64);
        TestUtil.GradCheck(a => DeformConvOps.DeformConv2d(a[0], a[1], a[2], a[4], (2, 2), (1, 1), (1, 1), a[3]),
            [x, off.Detach(), w, m, b], eps: 1e-6, atol: 1e-6, rtol: 1e-5);
    }

    /// <summary>Float64 finite differences without a mask, dilation 2, a non-contiguous input.</summary>
    [Fact]
    public void GradCheckNoMaskDilated()
    {
        var gen = new Generator(12);
        using var x = Tensor.Randn([2, 2, 6, 5], gen, DType.Float64);
        using var off = Tensor.Randn([2, 2 * 9, 6, 5], gen, DType.Float64);
        using var w = Tensor.Randn([3, 2, 3, 3], gen, DType.Float64);
        TestUtil.GradCheck(a =>
        {
            using var xt = a[0].Transpose(2, 3);
            using var xs = xt.Contiguous();
            using var xn = xs.Transpose(2, 3);
            return DeformConvOps.DeformConv2d(xn, a[1], a[2], null, (1, 1), (2, 2), (2, 2));
        }, [x, off, w], eps: 1e-6, atol: 1e-6, rtol: 1e-5);
    }

    /// <summary>
    /// A shape the CPU cuts into bands of output rows with images on separate threads (64 channels, 34x34), in float32,
    /// against the float64 CPU result.
    /// </summary>
    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BandedShapeMatchesFloat64(string device)
    {
        var dev = Device.Parse(device);
        var gen = new Generator(5);
        using var x = Tensor.Randn([2, 64, 34, 34], gen, DType.Float64);
        using var off0 = Tensor.Randn([2, 2 * 2 * 9, 34, 34], gen, DType.Float64);
        using var off = off0 * 2.0;
        using var w = Tensor.Randn([8, 64, 3, 3], gen, DType.Float64);
        using var m = Tensor.Rand([2, 2 * 9, 34, 34], gen, DType.Float64);
        using var gy = Tensor.Randn([2, 8, 34, 34], gen, DType.Float64);
        double[][] Run(DType dt, Device d)
        {
            using var xd0 = x.To(dt); using var xd = xd0.To(d);
            using var od0 = off.To(dt); using var od = od0.To(d);
            using var wd0 = w.To(dt); using var wd = wd0.To(d);
            using var md0 = m.To(dt); using var md = md0.To(d);
            using var gd0 = gy.To(dt); using var gd = gd0.To(d);
            foreach (var t in new[] { xd, od, wd, md }) t.RequiresGrad = true;
            using var y = DeformConvOps.DeformConv2d(xd, od, wd, null, 1, 1, 1, md);
            using var p = y * gd;
            using var l = p.Sum();
            l.Backward();
            return [y.ToDoubleArray(), xd.Grad!.ToDoubleArray(), od.Grad!.ToDoubleArray(), wd.Grad!.ToDoubleArray(), md.Grad!.ToDoubleArray()];
        }
        var reference = Run(DType.Float64, Device.Cpu);
        var got = Run(DType.Float32, dev);
        for (int i = 0; i < reference.Length; i++)
        {
            using var t = Tensor.From<double>(got[i], [got[i].Length]);
            TestUtil.AssertClose(reference[i], t, 5e-3, 1e-3);
        }
    }

    /// <summary>Two backward passes on every device give identical bits (GPU: sorted gathers, no atomics).</summary>
    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BackwardIsDeterministic(string device)
    {
        var dev = Device.Parse(device);
        var gen = new Generator(9);
        using var x0 = Tensor.Randn([2, 4, 8, 8], gen);
        using var off0 = Tensor.Randn([2, 2 * 2 * 9, 8, 8], gen);
        using var offs = off0 * 0.3; // small moves: many samples share target pixels
        using var w0 = Tensor.Randn([4, 4, 3, 3], gen);
        using var m0 = Tensor.Rand([2, 2 * 9, 8, 8], gen);
        float[][] Once()
        {
            using var x = x0.To(dev); using var off = offs.To(dev); using var w = w0.To(dev); using var m = m0.To(dev);
            foreach (var t in new[] { x, off, w, m }) t.RequiresGrad = true;
            using var y = DeformConvOps.DeformConv2d(x, off, w, null, 1, 1, 1, m);
            using var l = y.Sum();
            l.Backward();
            return [x.Grad!.ToArray<float>(), off.Grad!.ToArray<float>(), w.Grad!.ToArray<float>(), m.Grad!.ToArray<float>()];
        }
        var a = Once();
        var b = Once();
        for (int i = 0; i < a.Length; i++)
            Assert.Equal(a[i].Select(BitConverter.SingleToInt32Bits), b[i].Select(BitConverter.SingleToInt32Bits));
    }

    /// <summary>
    /// The CPU gives the same bits on one thread as on three (images on separate threads, bands of rows, the weight
    /// gradient summed over the same split of the images).
    /// </summary>
    [Fact]
    public void CpuThreadCountDoesNotChangeBits()
    {
        var gen = new Generator(21);
        using var x = Tensor.Randn([3, 64, 34, 34], gen);
        using var off0 = Tensor.Randn([3, 2 * 9, 34, 34], gen);
        using var off = off0 * 1.5;
        using var w = Tensor.Randn([8, 64, 3, 3], gen);
        using var m = Tensor.Rand([3, 9, 34, 34], gen);
        float[][] Once()
        {
            foreach (var t in new[] { x, off, w, m })
            {
                t.Grad?.Dispose();
                t.Grad = null;
                t.RequiresGrad = true;
            }
            using var y = DeformConvOps.DeformConv2d(x, off, w, null, 1, 1, 1, m);
            using var l = y.Sum();
            l.Backward();
            return [y.ToArray<float>(), x.Grad!.ToArray<float>(), off.Grad!.ToArray<float>(), w.Grad!.ToArray<float>(), m.Grad!.ToArray<float>()];
        }
        int saved = Runtime.Cpu.CpuParallel.Threads;
        float[][] one, three;
        try
        {
            Runtime.Cpu.CpuParallel.Threads = 1;
            one = Once();
            Runtime.Cpu.CpuParallel.Threads = 3;
            three = Once();
        }
        finally
        {
            Runtime.Cpu.CpuParallel.Threads = saved;
        }
        for (int i = 0; i < one.Length; i++)
            Assert.Equal(one[i].Select(BitConverter.SingleToInt32Bits), three[i].Select(BitConverter.SingleToInt32Bits));
    }

    /// <summary>A fresh pack layer samples the regular grid with mask 0.5: 0.5 x (plain conv without bias) + bias.</summary>
    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void PackLayerStartsAsHalfConv(string device)
    {
        var dev = Device.Parse(device);
        using var layer = new ModulatedDeformConv2d(4, 5, 3, stride: 1, padding: 1, offsetGroups: 2, dtype: DType.Float64, generator: new Generator(3));
        layer.To(dev);
        Assert.Equal([2 * 3 * 9, 4, 3, 3], layer.ConvOffset.Weight.Shape.ToArray());
        Assert.Equal(0.0, layer.ConvOffset.Weight.ToDoubleArray().Select(Math.Abs).Max());
        Assert.Equal(0.0, layer.ConvOffset.Bias!.ToDoubleArray().Select(Math.Abs).Max());
        using var x0 = Tensor.Randn([2, 4, 6, 7], new Generator(4), DType.Float64);
        using var x = x0.To(dev);
        using var y = layer.Forward(x);
        using var plain = x.Conv2d(layer.Weight, null, 1, 1);
        using var half = plain * 0.5;
        using var b = layer.Bias!.Reshape([1, 5, 1, 1]);
        using var expected = half + b;
        TestUtil.AssertClose(expected.ToDoubleArray(), y, 1e-10, 1e-9);
        // Gradients reach the offset predictor (its weight gradient is non-zero).
        using var l = y.Sum();
        l.Backward();
        Assert.Contains(layer.ConvOffset.Weight.Grad!.ToDoubleArray(), v => v != 0);
        Assert.NotNull(layer.Weight.Grad);
    }

    /// <summary>DeformConv2d's parameters have torchvision's shapes and initialisation bounds.</summary>
    [Fact]
    public void ModuleInitialisation()
    {
        using var layer = new DeformConv2d(6, 4, 3, padding: 1, groups: 2, generator: new Generator(1));
        Assert.Equal([4, 3, 3, 3], layer.Weight.Shape.ToArray());
        double bound = 1 / Math.Sqrt(27); // kaiming_uniform(a = sqrt 5): sqrt(6 / ((1 + 5) * fan_in)) = 1/sqrt(fan_in)
        Assert.All(layer.Weight.ToDoubleArray(), v => Assert.InRange(v, -bound, bound));
        Assert.All(layer.Bias!.ToDoubleArray(), v => Assert.InRange(v, -bound, bound));
        using var x = Tensor.Randn([1, 6, 5, 5], new Generator(2));
        using var off = Tensor.Zeros([1, 18, 5, 5], DType.Float32);
        using var y = layer.Forward(x, off);
        using var plain = x.Conv2d(layer.Weight, layer.Bias, 1, 1, 1, 2);
        TestUtil.AssertClose(plain.ToDoubleArray(), y, 1e-5, 1e-5);
    }

    [Fact]
    public void BadInputs()
    {
        using var x = Tensor.Zeros([1, 4, 6, 6], DType.Float32);
        using var w = Tensor.Zeros([3, 4, 3, 3], DType.Float32);
        using var off = Tensor.Zeros([1, 18, 6, 6], DType.Float32);
        using var m = Tensor.Zeros([1, 9, 6, 6], DType.Float32);
        // Offset channels not a multiple of 2*kH*kW.
        using var off17 = Tensor.Zeros([1, 17, 6, 6], DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x, off17, w, null, 1, 1, 1));
        Assert.Equal("offset", e.ParamName);
        Assert.Contains("[1, 17, 6, 6]", e.Message);
        // Offset groups that do not divide the input channels (3 groups, 4 channels).
        using var off54 = Tensor.Zeros([1, 54, 6, 6], DType.Float32);
        Assert.Equal("offset", Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x, off54, w, null, 1, 1, 1)).ParamName);
        // Mask channels != G*K.
        using var m8 = Tensor.Zeros([1, 8, 6, 6], DType.Float32);
        e = Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x, off, w, null, 1, 1, 1, m8));
        Assert.Equal("mask", e.ParamName);
        Assert.Contains("[1, 8, 6, 6]", e.Message);
        // Offset spatial size not the output size (no padding: 4x4).
        e = Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x, off, w, null, 1, 0, 1, m));
        Assert.Equal("offset", e.ParamName);
        Assert.Contains("4x4", e.Message);
        // Input channels not divisible by weight.shape[1].
        using var w3 = Tensor.Zeros([3, 3, 3, 3], DType.Float32);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x, off, w3, null, 1, 1, 1)).ParamName);
        // Output channels not divisible by the weight groups (4 / 2 = 2 groups, 3 outputs).
        using var w2 = Tensor.Zeros([3, 2, 3, 3], DType.Float32);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x, off, w2, null, 1, 1, 1)).ParamName);
        // Bias of the wrong length, batch mismatch, bad stride, 3-D input, dtype mismatch.
        using var b5 = Tensor.Zeros([5], DType.Float32);
        Assert.Equal("bias", Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x, off, w, b5, 1, 1, 1)).ParamName);
        using var off2 = Tensor.Zeros([2, 18, 6, 6], DType.Float32);
        Assert.Equal("offset", Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x, off2, w, null, 1, 1, 1)).ParamName);
        Assert.Equal("stride", Assert.Throws<ArgumentOutOfRangeException>(() => DeformConvOps.DeformConv2d(x, off, w, null, 0, 1, 1)).ParamName);
        using var x3 = Tensor.Zeros([4, 6, 6], DType.Float32);
        Assert.Equal("input", Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x3, off, w, null, 1, 1, 1)).ParamName);
        using var offd = Tensor.Zeros([1, 18, 6, 6], DType.Float64);
        Assert.Equal("offset", Assert.Throws<ArgumentException>(() => DeformConvOps.DeformConv2d(x, offd, w, null, 1, 1, 1)).ParamName);
        // Layers.
        Assert.Throws<ArgumentException>(() => new ModulatedDeformConv2d(6, 4, 3, offsetGroups: 4));
        Assert.Throws<ArgumentException>(() => new DeformConv2d(6, 4, 3, groups: 4));
    }
}
