using System.Text.Json;
using Runtime.Tests;
using Runtime.Vision.Ops;

namespace Runtime.Vision.Tests.Ops;

/// <summary>
/// Modulated deformable RoI pooling (RoiOps.DeformRoiPool) against the float64 PyTorch reference written from the
/// DCNv2 paper (golden/ops/make_deform_roi.py -> deform_roi.json): forward and the input, offset and mask gradients in
/// float64 and float32; float64 finite differences; equality with RoIAlign without offset and mask; deterministic
/// backward; on every device.
/// </summary>
public class DeformRoiPoolTests
{
    public static TheoryData<string, string> GoldenCases()
    {
        var d = new TheoryData<string, string>();
        string[] cases = ["modulated_aligned_adaptive", "modulated_sampling2", "offset_only_far", "mask_only", "plain"];
        foreach (var dev in Runtime.Testing.TestDevices.Names)
            foreach (var c in cases)
                d.Add(dev, c);
        return d;
    }

    private static bool Has(JsonElement c, string name) => c.TryGetProperty(name, out _);

    [Theory, MemberData(nameof(GoldenCases))]
    public void MatchesPaperReference(string device, string name)
    {
        var dev = Device.Parse(device);
        var c = OpsGolden.Load("deform_roi.json").GetProperty(name);
        var size = c.GetProperty("output_size").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        foreach (var dt in new[] { DType.Float64, DType.Float32 })
        {
            double atol = dt == DType.Float64 ? 1e-10 : 2e-5, rtol = dt == DType.Float64 ? 1e-9 : 2e-4;
            using var scope = new TensorScope();
            var x = OpsGolden.Tensor(c.GetProperty("input"), dt, dev);
            var rois = OpsGolden.Tensor(c.GetProperty("rois"), dt, dev);
            var off = Has(c, "offset") ? OpsGolden.Tensor(c.GetProperty("offset"), dt, dev) : null;
            var m = Has(c, "mask") ? OpsGolden.Tensor(c.GetProperty("mask"), dt, dev) : null;
            x.RequiresGrad = true;
            if (off is not null) off.RequiresGrad = true;
            if (m is not null) m.RequiresGrad = true;
            var y = RoiOps.DeformRoiPool(x, rois, off, m, (size[0], size[1]), c.GetProperty("spatial_scale").GetDouble(),
                c.GetProperty("sampling_ratio").GetInt32(), c.GetProperty("gamma").GetDouble(), c.GetProperty("aligned").GetBoolean());
            Assert.Equal(dev, y.Device);
            Assert.Equal(OpsGolden.Shape(c.GetProperty("output")), y.Shape.ToArray());
            TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("output")), y, atol, rtol);
            y.Backward(OpsGolden.Tensor(c.GetProperty("gy"), dt, dev));
            TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_input")), x.Grad!, atol, rtol);
            // The offset gradient is scaled by gamma * roi size (up to ~10 here): float32 gets a wider absolute margin.
            if (off is not null) TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_offset")), off.Grad!, atol * 10, rtol * 5);
            if (m is not null) TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("grad_mask")), m.Grad!, atol, rtol);
        }
    }

    private static Tensor GradRois(Device dev) => Tensor.From<double>(
    [
        0, 0.5, 1.2, 4.3, 4.9,
        1, -2.0, 1.0, 3.5, 7.5,
        0, 2.2, 2.6, 2.5, 2.7,
        1, -3.0, -2.5, 9.0, 8.0,
        1, 4.1, 0.3, 6.8, 3.9,
    ], [5, 5], dev);

    /// <summary>Float64 central differences for the input, offset and mask gradients (aligned and not, fixed and adaptive grids).</summary>
    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void GradCheck(string device)
    {
        var dev = Device.Parse(device);
        using var rois = GradRois(dev);
        foreach (var (aligned, sampling, seed) in new[] { (true, 0, 31UL), (false, 2, 32UL) })
        {
            using var x = TestUtil.RandnF64([2, 2, 6, 7], seed);
            using var off0 = TestUtil.RandnF64([5, 2, 3, 2], seed + 10);
            using var off = off0 * 0.7;
            using var m = Tensor.Rand([5, 1, 3, 2], new Generator(seed + 20), DType.Float64);
            TestUtil.GradCheck(a => RoiOps.DeformRoiPool(a[0].To(dev), rois, a[1].To(dev), a[2].To(dev), (3, 2), 0.9, sampling, 0.15, aligned).To(Device.Cpu),
                [x, off.Detach(), m], atol: 1e-6, rtol: 1e-5);
        }
    }

    /// <summary>Without offset and mask the op is RoIAlign; zero offsets and a unit mask are the same.</summary>
    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void WithoutOffsetAndMaskItIsRoiAlign(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var x = Tensor.Randn([2, 5, 23, 19], new Generator(3), DType.Float32).To(dev);
        var rois = RandomRois(40, 2, 19 * 4, 23 * 4, 4, dev);
        foreach (var (aligned, sampling) in new[] { (false, 2), (true, 0) })
        {
            var want = RoiOps.RoiAlign(x, rois, (7, 7), 0.25, sampling, aligned).ToArray<float>();
            var plain = RoiOps.DeformRoiPool(x, rois, null, null, (7, 7), 0.25, sampling, 0.1, aligned).ToArray<float>();
            var zeros = RoiOps.DeformRoiPool(x, rois, Tensor.Zeros([40, 2, 7, 7], DType.Float32, dev), Tensor.Ones([40, 1, 7, 7], DType.Float32, dev),
                (7, 7), 0.25, sampling, 0.1, aligned).ToArray<float>();
            Assert.Equal(want, plain);
            Assert.Equal(want, zeros);
        }
    }

    /// <summary>Random rois over [0, w) x [0, h) of an image, sizes from 1 to about half the image.</summary>
    private static Tensor RandomRois(int k, int images, float w, float h, ulong seed, Device dev)
    {
        var g = new Generator(seed);
        using var u = Tensor.Rand([k, 4], g, DType.Float32);
        var v = u.ToArray<float>();
        var r = new float[k * 5];
        for (int i = 0; i < k; i++)
        {
            float x1 = v[i * 4] * w * 0.8f - 2, y1 = v[i * 4 + 1] * h * 0.8f - 2;
            r[i * 5] = i % images;
            r[i * 5 + 1] = x1;
            r[i * 5 + 2] = y1;
            r[i * 5 + 3] = x1 + 1 + v[i * 4 + 2] * w * 0.5f;
            r[i * 5 + 4] = y1 + 1 + v[i * 4 + 3] * h * 0.5f;
        }
        return Tensor.From<float>(r, [k, 5], dev);
    }

    /// <summary>
    /// Many rois over tiles of a larger map (offsets moving bins by up to about half a roi): two backward passes give the
    /// same bits, and the float32 result agrees with the float64 CPU one.
    /// </summary>
    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BackwardIsDeterministicAndAgreesWithFloat64(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var x = Tensor.Randn([2, 6, 37, 41], new Generator(21), DType.Float64);
        var rois = RandomRois(60, 2, 41 * 4, 37 * 4, 22, Device.Cpu).To(DType.Float64);
        var off = Tensor.Randn([60, 2, 7, 7], new Generator(24), DType.Float64) * 1.5;
        var m = Tensor.Rand([60, 1, 7, 7], new Generator(25), DType.Float64);
        var gy = Tensor.Randn([60, 6, 7, 7], new Generator(23), DType.Float64);
        double[][] Run(DType dt, Device d)
        {
            using var s = new TensorScope();
            var xd = x.To(dt).To(d).Detach();
            var od = off.To(dt).To(d).Detach();
            var md = m.To(dt).To(d).Detach();
            foreach (var t in new[] { xd, od, md }) t.RequiresGrad = true;
            var y = RoiOps.DeformRoiPool(xd, rois.To(dt).To(d), od, md, (7, 7), 0.25, 2, 0.1, aligned: true);
            y.Backward(gy.To(dt).To(d));
            return [y.ToDoubleArray(), xd.Grad!.ToDoubleArray(), od.Grad!.ToDoubleArray(), md.Grad!.ToDoubleArray()];
        }
        var first = Run(DType.Float32, dev);
        var second = Run(DType.Float32, dev);
        for (int i = 0; i < first.Length; i++) Assert.True(first[i].AsSpan().SequenceEqual(second[i]), $"result {i} differs between two runs on {dev}");
        var reference = Run(DType.Float64, Device.Cpu);
        string[] what = ["output", "grad_input", "grad_offset", "grad_mask"];
        for (int i = 0; i < first.Length; i++)
        {
            double scale = reference[i].Max(Math.Abs);
            using var t = Tensor.From<double>(first[i], [first[i].Length]);
            try
            {
                TestUtil.AssertClose(reference[i], t, 2e-5 * scale, 1e-4);
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"{what[i]} on {dev}: {e.Message}");
            }
        }
    }

    /// <summary>The CPU gives the same bits on one thread as on three.</summary>
    [Fact]
    public void CpuThreadCountDoesNotChangeBits()
    {
        using var scope = new TensorScope();
        var x = Tensor.Randn([2, 8, 30, 30], new Generator(41));
        var rois = RandomRois(50, 2, 120, 120, 42, Device.Cpu);
        var off = Tensor.Randn([50, 2, 7, 7], new Generator(43)) * 0.8;
        var m = Tensor.Rand([50, 1, 7, 7], new Generator(44));
        float[][] Once()
        {
            using var s = new TensorScope();
            var xd = x.Detach(); var od = off.Detach(); var md = m.Detach();
            foreach (var t in new[] { xd, od, md }) t.RequiresGrad = true;
            var y = RoiOps.DeformRoiPool(xd, rois, od, md, (7, 7), 0.25, 0, 0.1);
            y.Sum().Backward();
            return [y.ToArray<float>(), xd.Grad!.ToArray<float>(), od.Grad!.ToArray<float>(), md.Grad!.ToArray<float>()];
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

    [Fact]
    public void EmptyRoisAndBadInputs()
    {
        using var scope = new TensorScope();
        var x = Tensor.Randn([1, 3, 6, 6], new Generator(1)).Detach();
        x.RequiresGrad = true;
        var none = Tensor.Zeros([0, 5], DType.Float32);
        var y = RoiOps.DeformRoiPool(x, none, Tensor.Zeros([0, 2, 2, 2], DType.Float32), Tensor.Zeros([0, 1, 2, 2], DType.Float32), (2, 2));
        Assert.Equal(new[] { 0, 3, 2, 2 }, y.Shape.ToArray());
        y.Sum().Backward();
        Assert.All(x.Grad!.ToDoubleArray(), v => Assert.Equal(0.0, v));
        var rois = Tensor.From<float>([0, 1, 1, 4, 4], [1, 5]);
        var e = Assert.Throws<ArgumentException>(() => RoiOps.DeformRoiPool(x, rois, Tensor.Zeros([1, 2, 3, 3], DType.Float32), null, (2, 2)));
        Assert.Equal("offset", e.ParamName);
        Assert.Contains("[1, 2, 2, 2]", e.Message);
        Assert.Equal("mask", Assert.Throws<ArgumentException>(() => RoiOps.DeformRoiPool(x, rois, null, Tensor.Zeros([1, 2, 2, 2], DType.Float32), (2, 2))).ParamName);
        Assert.Equal("offset", Assert.Throws<ArgumentException>(() => RoiOps.DeformRoiPool(x, rois, Tensor.Zeros([1, 2, 2, 2], DType.Float64), null, (2, 2))).ParamName);
        Assert.Equal("gamma", Assert.Throws<ArgumentOutOfRangeException>(() => RoiOps.DeformRoiPool(x, rois, null, null, (2, 2), gamma: double.NaN)).ParamName);
        Assert.Equal("rois", Assert.Throws<ArgumentException>(() => RoiOps.DeformRoiPool(x, Tensor.From<float>([1, 1, 1, 4, 4], [1, 5]), null, null, (2, 2))).ParamName);
    }

    /// <summary>
    /// A fresh pack (zero last layers: offsets 0, modulation sigmoid(0) = 0.5) over an FPN gives half of
    /// MultiScaleRoIAlign; its last layers' bias gradients are hand-derivable: mask_fc.2.bias[b] = sigmoid'(0) *
    /// Σ_k Σ_c gy * RoIAlign, and offset_fc.4.bias = Σ_k of the op's offset gradient at zero offsets and mask 0.5.
    /// </summary>
    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void FreshPackIsHalfRoiAlignAndItsBranchesGetTheirGradients(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var gen = new Generator(51);
        var maps = new List<KeyValuePair<string, Tensor>>
        {
            new("0", Tensor.Randn([2, 3, 24, 20], gen, DType.Float64).To(dev)),
            new("1", Tensor.Randn([2, 3, 12, 10], gen, DType.Float64).To(dev)),
            new("pool", Tensor.Randn([2, 3, 6, 5], gen, DType.Float64).To(dev)),
        };
        var boxes = new[]
        {
            Tensor.From<double>([4, 5, 30, 40, 10, 3, 70, 90, 1, 1, 8, 6], [3, 4], dev),
            Tensor.From<double>([20, 10, 60, 35, 2, 30, 50, 95], [2, 4], dev),
        };
        var sizes = new[] { (96, 80), (90, 78) };
        using var pack = new MultiScaleDeformRoIPool(["0", "1"], 2, 2, 3, fcChannels: 5, dtype: DType.Float64, generator: new Generator(52));
        pack.To(dev);
        var plain = new MultiScaleRoIAlign(["0", "1"], 2, 2);
        var want = plain.Forward(maps, boxes, sizes) * 0.5;
        var got = pack.Forward(maps, boxes, sizes);
        TestUtil.AssertClose(want.ToDoubleArray(), got, 1e-12, 1e-12);
        Assert.Equal(["mask_fc.0.bias", "mask_fc.0.weight", "mask_fc.2.bias", "mask_fc.2.weight", "offset_fc.0.bias", "offset_fc.0.weight",
            "offset_fc.2.bias", "offset_fc.2.weight", "offset_fc.4.bias", "offset_fc.4.weight"], pack.StateDict().Keys.Order().ToArray());

        var gy = Tensor.Randn(got.ShapeArray, new Generator(53), DType.Float64).To(dev);
        got.Backward(gy);
        // mask_fc.2.bias: sigmoid'(0) = 1/4 times the sum over rois and channels of gy * (unmodulated) RoIAlign.
        var roiAlign = plain.Forward(maps, boxes, sizes);
        var maskBias = (gy * roiAlign).Sum([0, 1]).Reshape(-1) * 0.25;
        TestUtil.AssertClose(maskBias.ToDoubleArray(), pack.Pool.MaskFc![2].StateDict()["bias"].Grad!, 1e-12, 1e-10);
        // offset_fc.4.bias: the op's offset gradient (level by level; all these boxes fall on level "0" or "1"), summed over rois.
        var rois = RoiOps.ConvertBoxesToRoiFormat(boxes);
        var levels = plain.MapLevels!.Map(boxes);
        var sum = Tensor.Zeros([2 * 4], DType.Float64, dev);
        for (int k = 0; k < levels.Length; k++)
        {
            var off = Tensor.Zeros([1, 2, 2, 2], DType.Float64, dev).Detach();
            off.RequiresGrad = true;
            var row = rois.Narrow(0, k, 1);
            var y = RoiOps.DeformRoiPool(maps[levels[k]].Value, row, off, Tensor.Full([1, 1, 2, 2], 0.5, DType.Float64, dev), (2, 2),
                plain.Scales![levels[k]], 2, 0.1, aligned: false);
            y.Backward(gy.Narrow(0, k, 1));
            sum = sum + off.Grad!.Reshape(-1);
        }
        TestUtil.AssertClose(sum.ToDoubleArray(), pack.Pool.OffsetFc[4].StateDict()["bias"].Grad!, 1e-12, 1e-10);
        // The branches' first layers get gradients through the last ones only after those move: zero at start.
        Assert.All(pack.Pool.OffsetFc[0].StateDict()["weight"].Grad!.ToDoubleArray(), v => Assert.Equal(0.0, v));
    }

    /// <summary>
    /// With non-zero branches the multi-level pack runs its levels' plain poolings through the branches as one batch;
    /// that must equal each box pooled alone by the shared pool on its level's map (the branches are row-wise), in the
    /// output and in every parameter's and map's gradient.
    /// </summary>
    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BatchedLevelsEqualBoxByBoxPooling(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var gen = new Generator(61);
        var maps = new List<KeyValuePair<string, Tensor>>
        {
            new("0", Tensor.Randn([2, 3, 60, 50], gen, DType.Float64).To(dev)),
            new("1", Tensor.Randn([2, 3, 30, 25], gen, DType.Float64).To(dev)),
        };
        foreach (var m in maps) m.Value.RequiresGrad = true;
        // Boxes of side about 112 and up go to the coarser level (torchvision's mapper, canonical 224 at level 4).
        var boxes = new[]
        {
            Tensor.From<double>([4, 5, 30, 40, 10, 3, 170, 190, 1, 1, 8, 6], [3, 4], dev),
            Tensor.From<double>([20, 10, 160, 135, 2, 30, 50, 95], [2, 4], dev),
        };
        var sizes = new[] { (240, 200), (230, 198) };
        using var pack = new MultiScaleDeformRoIPool(["0", "1"], 2, 2, 3, fcChannels: 5, dtype: DType.Float64, generator: new Generator(62));
        // Non-zero last layers: real offsets (about a bin) and modulations away from 0.5.
        pack.LoadStateDict(new Dictionary<string, Tensor>
        {
            ["offset_fc.4.weight"] = Tensor.Randn([8, 5], gen, DType.Float64) * 0.5,
            ["mask_fc.2.weight"] = Tensor.Randn([4, 5], gen, DType.Float64) * 0.5,
        }, strict: false);
        pack.To(dev);
        var got = pack.Forward(maps, boxes, sizes);
        var levels = pack.MapLevels!.Map(boxes);
        Assert.Contains(0, levels);
        Assert.Contains(1, levels);
        var gy = Tensor.Randn(got.ShapeArray, new Generator(63), DType.Float64).To(dev);
        got.Backward(gy);
        var gotGrads = pack.Parameters().Select(p => p.Grad!.ToDoubleArray()).Concat(maps.Select(m => m.Value.Grad!.ToDoubleArray())).ToArray();
        foreach (var p in pack.Parameters()) p.Grad = null;
        foreach (var m in maps) m.Value.Grad = null;

        var rois = RoiOps.ConvertBoxesToRoiFormat(boxes);
        var rows = new List<Tensor>();
        for (int k = 0; k < levels.Length; k++)
            rows.Add(pack.Pool.Forward(maps[levels[k]].Value, rois.Narrow(0, k, 1), pack.Scales![levels[k]]));
        var want = Tensor.Cat(rows, 0);
        TestUtil.AssertClose(want.ToDoubleArray(), got, 1e-12, 1e-12);
        want.Backward(gy);
        var wantGrads = pack.Parameters().Select(p => p.Grad!.ToDoubleArray()).Concat(maps.Select(m => m.Value.Grad!.ToDoubleArray())).ToArray();
        for (int i = 0; i < wantGrads.Length; i++)
        {
            Assert.Contains(wantGrads[i], v => v != 0);
            for (int j = 0; j < wantGrads[i].Length; j++) Assert.Equal(wantGrads[i][j], gotGrads[i][j], 1e-10);
        }
    }
}
