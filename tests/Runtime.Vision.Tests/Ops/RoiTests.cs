using System.Text.Json;
using Runtime.Tests;
using Runtime.Vision.Ops;

namespace Runtime.Vision.Tests.Ops;

/// <summary>
/// RoIAlign, RoIPool and MultiScaleRoIAlign against torchvision 0.14 (golden/ops/make_roi.py ->
/// roi.json), float64 gradient checks, GPU backward determinism, and bad input; on every device.
/// </summary>
public class RoiTests
{
    private static Tensor Golden(JsonElement c, string name, Device dev) => OpsGolden.Tensor(c.GetProperty(name), DType.Float32, dev);

    private static (int, int) Size(JsonElement c) => (c.GetProperty("output")[0].GetInt32(), c.GetProperty("output")[1].GetInt32());

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void MatchesTorchvision(string device)
    {
        var dev = Device.Parse(device);
        foreach (var c in OpsGolden.Load("roi.json").GetProperty("cases").EnumerateArray())
        {
            string name = c.GetProperty("name").GetString()!;
            using var scope = new TensorScope();
            var baseT = Golden(c, "input", dev);
            baseT.RequiresGrad = true;
            string view = c.GetProperty("view").GetString()!;
            Func<Tensor, Tensor> asView = view switch
            {
                "permute0312" => t => t.Permute(0, 3, 1, 2),
                "channels_step2" => t => t.Slice(1, 0, t.Shape[1], 2),
                _ => t => t,
            };
            var x = asView(baseT);
            if (view != "none") Assert.False(x.IsContiguous, name);
            var rois = Golden(c, "rois", dev);
            double scale = c.GetProperty("scale").GetDouble();
            var y = c.GetProperty("op").GetString() == "roi_align"
                ? RoiOps.RoiAlign(x, rois, Size(c), scale, c.GetProperty("sampling").GetInt32(), c.GetProperty("aligned").GetBoolean())
                : RoiOps.RoiPool(x, rois, Size(c), scale);
            Assert.Equal(OpsGolden.Shape(c.GetProperty("y")), y.Shape.ToArray());
            Assert.Equal(dev, y.Device);
            TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("y")), y, atol: 1e-5, rtol: 1e-4);
            y.Backward(Golden(c, "gy", dev));
            Assert.NotNull(baseT.Grad);
            var gx = asView(baseT.Grad!);
            Assert.Equal(OpsGolden.Shape(c.GetProperty("gx")), gx.Shape.ToArray());
            TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("gx")), gx, atol: 1e-5, rtol: 1e-4);
        }
    }

    /// <summary>The FPN maps of make_roi.py: x[flat i] = sin(0.37 i + level), float64 then float32.</summary>
    private static List<KeyValuePair<string, Tensor>> FpnMaps(JsonElement c, Device dev)
    {
        int ch = c.GetProperty("channels").GetInt32();
        var maps = new List<KeyValuePair<string, Tensor>>();
        int level = 0;
        foreach (var s in c.GetProperty("map_sizes").EnumerateArray().Select(e => e.GetInt32()))
        {
            var v = new float[2 * ch * s * s];
            for (int i = 0; i < v.Length; i++) v[i] = (float)Math.Sin(0.37 * i + level);
            var t = Tensor.From<float>(v, [2, ch, s, s], dev);
            t.RequiresGrad = true;
            maps.Add(new(level.ToString(System.Globalization.CultureInfo.InvariantCulture), t));
            level++;
        }
        maps.Add(new("pool", Tensor.Zeros([2, ch, 4, 4], DType.Float32, dev)));
        return maps;
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void MultiScaleMatchesTorchvision(string device)
    {
        var dev = Device.Parse(device);
        foreach (var c in OpsGolden.Load("roi.json").GetProperty("multiscale").EnumerateArray())
        {
            using var scope = new TensorScope();
            string name = c.GetProperty("name").GetString()!;
            var maps = FpnMaps(c, dev);
            var names = c.GetProperty("names").EnumerateArray().Select(e => e.GetString()!).ToArray();
            var boxes = c.GetProperty("boxes").EnumerateArray().Select(b => OpsGolden.Tensor(b, DType.Float32, dev)).ToArray();
            var sizes = c.GetProperty("image_sizes").EnumerateArray().Select(s => (s[0].GetInt32(), s[1].GetInt32())).ToArray();
            using var m = new MultiScaleRoIAlign(names, Size(c), 2, canonicalScale: c.GetProperty("canonical_scale").GetInt32());
            var y = m.Forward(maps, boxes, sizes);
            Assert.Equal(c.GetProperty("scales").EnumerateArray().Select(e => e.GetDouble()).ToArray(), m.Scales);
            if (names.Length > 1)
            {
                var levels = c.GetProperty("levels").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                Assert.Equal(levels, m.MapLevels!.Map(boxes));
                if (name == "ms_four_levels") Assert.Equal(new[] { 0, 1, 2, 3 }, levels.Distinct().Order().ToArray());
            }
            Assert.Equal(OpsGolden.Shape(c.GetProperty("y")), y.Shape.ToArray());
            TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("y")), y, atol: 1e-5, rtol: 1e-4);
            var gx = c.GetProperty("gx").EnumerateArray().ToArray();
            if (gx.Length == 0) continue;
            y.Backward(Golden(c, "gy", dev));
            for (int i = 0; i < names.Length; i++)
            {
                var map = maps.First(kv => kv.Key == names[i]).Value;
                Assert.NotNull(map.Grad);
                TestUtil.AssertClose(OpsGolden.Data(gx[i]), map.Grad!, atol: 1e-5, rtol: 1e-4);
            }
        }
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BoxListEqualsRois(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var x = Tensor.Randn([2, 3, 12, 10], new Generator(3), DType.Float32, dev);
        var b0 = Tensor.From<float>([1, 1, 6, 7, 0.5f, 2, 9, 11], [2, 4], dev);
        var b1 = Tensor.From<float>([3, 2, 8, 5], [1, 4], dev);
        var rois = Tensor.From<float>([0, 1, 1, 6, 7, 0, 0.5f, 2, 9, 11, 1, 3, 2, 8, 5], [3, 5], dev);
        TestUtil.AssertClose(RoiOps.RoiAlign(x, rois, (3, 3), 0.5, 2).ToDoubleArray(), RoiOps.RoiAlign(x, [b0, b1], (3, 3), 0.5, 2), 0, 0);
        TestUtil.AssertClose(RoiOps.RoiPool(x, rois, (2, 2)).ToDoubleArray(), new RoIPool((2, 2), 1.0).Forward(x, [b0, b1]), 0, 0);
        TestUtil.AssertClose(rois.ToDoubleArray(), RoiOps.ConvertBoxesToRoiFormat([b0, b1]), 0, 0);
    }

    /// <summary>Rois over a small map: inside, partly outside, tiny, larger than the map, one for each image.</summary>
    private static Tensor GradRois(Device dev) => Tensor.From<double>(
    [
        0, 0.5, 1.2, 4.3, 4.9,
        1, -2.0, 1.0, 3.5, 7.5,
        0, 2.2, 2.6, 2.5, 2.7,
        1, -3.0, -2.5, 9.0, 8.0,
        1, 4.1, 0.3, 6.8, 3.9,
    ], [5, 5], dev);

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void RoiAlignGradCheck(string device)
    {
        var dev = Device.Parse(device);
        using var rois = GradRois(dev);
        foreach (var (aligned, sampling) in new[] { (false, 2), (true, 0), (false, 0) })
        {
            using var x = TestUtil.RandnF64([2, 2, 6, 7], 11);
            TestUtil.GradCheck(a => RoiOps.RoiAlign(a[0].To(dev), rois, (3, 2), 1.0, sampling, aligned).To(Device.Cpu), [x]);
        }
        // A non-contiguous input: [N, H, W, C] storage seen as [N, C, H, W].
        using var xt = TestUtil.RandnF64([2, 6, 7, 2], 12);
        TestUtil.GradCheck(a => RoiOps.RoiAlign(a[0].To(dev).Permute(0, 3, 1, 2), rois, (2, 3), 0.8, 2, true).To(Device.Cpu), [xt]);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void RoiPoolGradCheck(string device)
    {
        var dev = Device.Parse(device);
        using var rois = GradRois(dev);
        using var x = TestUtil.RandnF64([2, 2, 6, 7], 13);
        TestUtil.GradCheck(a => RoiOps.RoiPool(a[0].To(dev), rois, (3, 2), 1.0).To(Device.Cpu), [x]);
        using var xt = TestUtil.RandnF64([2, 6, 7, 2], 14);
        TestUtil.GradCheck(a => RoiOps.RoiPool(a[0].To(dev).Permute(0, 3, 1, 2), rois, (2, 2), 0.7).To(Device.Cpu), [xt]);
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

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BackwardIsDeterministicAndAgreesWithCpu(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var xc = Tensor.Randn([2, 6, 37, 41], new Generator(21), DType.Float32);
        var roisC = RandomRois(60, 2, 41 * 4, 37 * 4, 22, Device.Cpu);
        var gyC = Tensor.Randn([60, 6, 7, 7], new Generator(23), DType.Float32);
        foreach (bool pool in new[] { false, true })
        {
            float[] Grad(Device d)
            {
                using var s = new TensorScope();
                var x = xc.To(d).Detach();
                x.RequiresGrad = true;
                var rois = roisC.To(d);
                var y = pool ? RoiOps.RoiPool(x, rois, (7, 7), 0.25) : RoiOps.RoiAlign(x, rois, (7, 7), 0.25, 2);
                y.Backward(gyC.To(d));
                return x.Grad!.ToArray<float>();
            }
            var first = Grad(dev);
            var second = Grad(dev);
            Assert.True(first.AsSpan().SequenceEqual(second), $"{(pool ? "RoiPool" : "RoiAlign")} backward on {dev} differs between two runs");
            TestUtil.AssertClose(Grad(Device.Cpu).Select(v => (double)v).ToArray(), Tensor.From<float>(first, [first.Length]), atol: 1e-5, rtol: 1e-4);
        }
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void EmptyRoisGiveEmptyOutputAndZeroGradient(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var x = Tensor.Randn([1, 4, 5, 6], new Generator(5), DType.Float32, dev);
        x.RequiresGrad = true;
        var rois = Tensor.Zeros([0, 5], DType.Float32, dev);
        var y = RoiOps.RoiAlign(x, rois, (7, 7), 1.0, 2);
        Assert.Equal(new[] { 0, 4, 7, 7 }, y.Shape.ToArray());
        var p = RoiOps.RoiPool(x, rois, (2, 3));
        Assert.Equal(new[] { 0, 4, 2, 3 }, p.Shape.ToArray());
        (y.Sum() + p.Sum()).Backward();
        TestUtil.AssertClose(new double[x.NumEl], x.Grad!, 0, 0);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BadInputIsRejected(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var x = Tensor.Randn([2, 3, 8, 8], new Generator(1), DType.Float32, dev);
        var ok = Tensor.From<float>([1, 0, 0, 4, 4], [1, 5], dev);
        var e = Assert.Throws<ArgumentException>(() => RoiOps.RoiAlign(x, Tensor.Zeros([3, 4], DType.Float32, dev), (7, 7)));
        Assert.Contains("[3, 4]", e.Message);
        Assert.Equal("rois", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => RoiOps.RoiAlign(x, Tensor.From<float>([0, 0, 0, 1, 1, 2, 0, 0, 4, 4], [2, 5], dev), (7, 7)));
        Assert.Contains("rois[1, 0] = 2", e.Message);
        Assert.Contains("N = 2", e.Message);
        e = Assert.Throws<ArgumentException>(() => RoiOps.RoiPool(x, Tensor.From<float>([-1, 0, 0, 1, 1], [1, 5], dev), (7, 7)));
        Assert.Contains("rois[0, 0] = -1", e.Message);
        e = Assert.Throws<ArgumentException>(() => RoiOps.RoiAlign(x, Tensor.From<float>([0.5f, 0, 0, 1, 1], [1, 5], dev), (7, 7)));
        Assert.Contains("0.5", e.Message);
        e = Assert.Throws<ArgumentException>(() => RoiOps.RoiAlign(x, Tensor.From<float>([0, 0, float.NaN, 1, 1], [1, 5], dev), (7, 7)));
        Assert.Contains("rois[0, 2]", e.Message);
        e = Assert.Throws<ArgumentException>(() => RoiOps.RoiAlign(x, ok.To(DType.Float64), (7, 7)));
        Assert.Contains("float64", e.Message);
        e = Assert.Throws<ArgumentException>(() => RoiOps.RoiAlign(x.Sum(0), ok, (7, 7)));
        Assert.Equal("input", e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => RoiOps.RoiAlign(x, ok, (0, 7)));
        Assert.Throws<ArgumentOutOfRangeException>(() => RoiOps.RoiPool(x, ok, (7, 7), -1.0));
        e = Assert.Throws<ArgumentException>(() => RoiOps.RoiAlign(x, [Tensor.Zeros([2, 5], DType.Float32, dev)], (7, 7)));
        Assert.Contains("boxes[0]", e.Message);
        using var m = new MultiScaleRoIAlign(["0", "5"], 7, 2);
        e = Assert.Throws<ArgumentException>(() => m.Forward([new("0", x)], [ok.Slice(1, 1, 5)], [(32, 32)]));
        Assert.Contains("'5'", e.Message);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void RoiPoolTiesAndNaNMatchTheScalarRule(string device)
    {
        // Small whole numbers (many ties) and some NaN: float32 (the CPU's vector path) and float64 (the
        // scalar loop) must pick the same first maximum in scan order; NaN never wins.
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var v = Tensor.Rand([2, 3, 30, 41], new Generator(8), DType.Float64).ToArray<double>();
        for (int i = 0; i < v.Length; i++) v[i] = i % 17 == 0 ? double.NaN : Math.Floor(v[i] * 4);
        var x64 = Tensor.From<double>(v, [2, 3, 30, 41]);
        var rois64 = RandomRois(40, 2, 41, 30, 9, Device.Cpu).To(DType.Float64);
        var (y64, a64) = RoiOps.RoiPoolWithArgmax(x64, rois64, (3, 4), 1.0);
        var (y32, a32) = RoiOps.RoiPoolWithArgmax(x64.To(DType.Float32).To(dev), rois64.To(DType.Float32).To(dev), (3, 4), 1.0);
        Assert.Equal(a64.ToArray<int>(), a32.ToArray<int>());
        TestUtil.AssertClose(y64.ToDoubleArray(), y32, 0, 0);
        // Every pick is the value at its position.
        var xs = v;
        var picks = a64.ToArray<int>();
        var vals = y64.ToArray<double>();
        var rr = rois64.ToArray<double>();
        for (int o = 0; o < picks.Length; o++)
        {
            if (picks[o] < 0) continue;
            int roi = o / (3 * 3 * 4), ch = o / 12 % 3;
            int img = (int)rr[roi * 5];
            Assert.Equal(xs[(img * 3 + ch) * 30 * 41 + picks[o]], vals[o]);
        }
    }

    [Fact]
    public void LevelMapperFollowsTheFpnRule()
    {
        // k = floor(4 + log2(sqrt(area) / 224) + 1e-6), clamped to [2, 5].
        var mapper = new LevelMapper(2, 5);
        using var boxes = Tensor.From<float>([0, 0, 224, 224, 0, 0, 111, 111, 0, 0, 112, 112, 0, 0, 10, 10, 0, 0, 900, 900, 0, 0, 448, 448], [6, 4]);
        Assert.Equal(new[] { 2, 0, 1, 0, 3, 3 }, mapper.Map([boxes]));
        Assert.Equal(0.25, MultiScaleRoIAlign.InferScale(200, 800));
        Assert.Equal(0.125, MultiScaleRoIAlign.InferScale(101, 800));
    }
}
