using System.Text.Json;
using Runtime.Tests;
using Runtime.Vision.Ops;

namespace Runtime.Vision.Tests.Ops;

/// <summary>AnchorGenerator, BoxCoder, Matcher and BalancedPositiveNegativeSampler against torchvision 0.14 (golden/ops/make_boxes.py).</summary>
public class DetectionUtilsTests
{
    private static JsonElement G => OpsGolden.Load("boxes.json");

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void AnchorGeneratorMatchesTorchvisionFpn(string device)
    {
        var d = Device.Parse(device);
        var a = G.GetProperty("anchors");
        var gen = new AnchorGenerator([[32], [64], [128], [256], [512]], Enumerable.Repeat<IReadOnlyList<double>>([0.5, 1.0, 2.0], 5).ToArray());
        Assert.Equal(a.GetProperty("num_per_location").EnumerateArray().Select(x => x.GetInt32()), gen.NumAnchorsPerLocation());
        int level = 0;
        foreach (var cell in a.GetProperty("cell_anchors").EnumerateArray())
        {
            using var c = gen.CellAnchors(level++, DType.Float32, d);
            TestUtil.AssertClose(OpsGolden.Data(cell), c, 0, 0);
        }
        var sizes = a.GetProperty("feature_sizes").EnumerateArray().Select(s => (s[0].GetInt32(), s[1].GetInt32())).ToArray();
        using var images = Tensor.Zeros([2, 3, 64, 48], DType.Float32, d);
        var maps = sizes.Select(s => Tensor.Zeros([2, 8, s.Item1, s.Item2], DType.Float32, d)).ToArray();
        var anchors = gen.Forward(images, [(60, 45), (64, 40)], maps);
        Assert.Equal(2, anchors.Length);
        foreach (var per in anchors)
        {
            Assert.Equal(d, per.Device);
            TestUtil.AssertShape(per, OpsGolden.Shape(a.GetProperty("anchors")));
            TestUtil.AssertClose(OpsGolden.Data(a.GetProperty("anchors")), per, 0, 0);
            per.Dispose();
        }
        foreach (var m in maps) m.Dispose();
    }

    [Fact]
    public void AnchorGeneratorOddSizesRatiosAndFloat64()
    {
        var a = G.GetProperty("anchors_odd");
        var gen = new AnchorGenerator([[16, 40], [100]], [[0.25, 1.5], [0.7, 1.0, 3.0]]);
        Assert.Equal(new[] { 4, 3 }, gen.NumAnchorsPerLocation());
        var anchors = gen.Forward((50, 70), 1, [(7, 9), (3, 4)], DType.Float64);
        Assert.Equal(DType.Float64, anchors[0].DType);
        TestUtil.AssertClose(OpsGolden.Data(a.GetProperty("anchors")), anchors[0], 0, 0);
        anchors[0].Dispose();
        Assert.Equal("aspectRatios", Assert.Throws<ArgumentException>(() => new AnchorGenerator([[32]], [[1.0], [2.0]])).ParamName);
        Assert.Equal("featureSizes", Assert.Throws<ArgumentException>(() => gen.Forward((50, 70), 1, [(7, 9)])).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AnchorGenerator([[32]], [[-1.0]]));
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BoxCoderEncodeDecodeMatchTorchvision(string device)
    {
        var d = Device.Parse(device);
        var c = G.GetProperty("box_coder");
        using var reference = OpsGolden.Tensor(c.GetProperty("reference"), DType.Float32, d);
        using var proposals = OpsGolden.Tensor(c.GetProperty("proposals"), DType.Float32, d);
        foreach (var name in new[] { "rpn", "rcnn" })
        {
            var e = c.GetProperty(name);
            var w = e.GetProperty("weights").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            var coder = new BoxCoder((w[0], w[1], w[2], w[3]));
            using var enc = coder.EncodeSingle(reference, proposals);
            TestUtil.AssertClose(OpsGolden.Data(e.GetProperty("encode")), enc, 1e-5, 1e-5);
            using var codes = OpsGolden.Tensor(e.GetProperty("codes"), DType.Float32, d);
            using var dec = coder.DecodeSingle(codes, proposals);
            TestUtil.AssertShape(dec, 10, 8);
            // Includes codes far past the clamp: those sides are exp(log(1000/16)) = 62.5 widths.
            TestUtil.AssertClose(OpsGolden.Data(e.GetProperty("decode")), dec, 1e-3, 1e-5);
            using var p1 = proposals.Narrow(0, 0, 4);
            using var p2 = proposals.Narrow(0, 4, 6);
            using var decList = coder.Decode(codes, [p1, p2]);
            TestUtil.AssertShape(decList, 10, 2, 4);
            TestUtil.AssertClose(OpsGolden.Data(e.GetProperty("decode_list")), decList, 1e-3, 1e-5);
            var encList = coder.Encode([reference.Narrow(0, 0, 3), reference.Narrow(0, 3, 7)], [proposals.Narrow(0, 0, 3), proposals.Narrow(0, 3, 7)]);
            TestUtil.AssertClose(OpsGolden.Data(e.GetProperty("encode_list_0")), encList[0], 1e-5, 1e-5);
            TestUtil.AssertClose(OpsGolden.Data(e.GetProperty("encode_list_1")), encList[1], 1e-5, 1e-5);
            foreach (var t in encList) t.Dispose();
        }
    }

    [Fact]
    public void BoxCoderRoundTripsAndChecksArguments()
    {
        var c = G.GetProperty("box_coder");
        using var reference = OpsGolden.Tensor(c.GetProperty("reference"), DType.Float64, Device.Cpu);
        using var proposals = OpsGolden.Tensor(c.GetProperty("proposals"), DType.Float64, Device.Cpu);
        var coder = new BoxCoder((10, 10, 5, 5));
        using var enc = coder.EncodeSingle(reference, proposals);
        using var back = coder.DecodeSingle(enc, proposals);
        TestUtil.AssertClose(reference.ToDoubleArray(), back, 1e-9, 1e-9);
        Assert.Equal(Math.Log(1000.0 / 16), coder.BboxXformClip);
        Assert.Equal("relCodes", Assert.Throws<ArgumentException>(() => coder.DecodeSingle(Tensor.Zeros([10, 5], DType.Float64), proposals)).ParamName);
        Assert.Equal("proposals", Assert.Throws<ArgumentException>(() => coder.EncodeSingle(reference, proposals.Narrow(0, 0, 3))).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new BoxCoder((1, 0, 1, 1)));
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void MatcherMatchesTorchvision(string device)
    {
        var d = Device.Parse(device);
        var m = G.GetProperty("matcher");
        using var q = OpsGolden.Tensor(m.GetProperty("quality"), DType.Float32, d);
        using var hq = OpsGolden.Tensor(m.GetProperty("hand_quality"), DType.Float32, d);
        foreach (var allow in new[] { false, true })
        {
            var key = allow ? "true" : "false";
            using var r = new Matcher(0.7, 0.3, allow).Match(q);
            Assert.Equal(DType.Int64, r.DType);
            Assert.Equal(Longs(m.GetProperty("matches_" + key)), r.ToArray<long>());
            using var h = new Matcher(0.5, 0.3, allow).Match(hq);
            Assert.Equal(Longs(m.GetProperty("hand_matches_" + key)), h.ToArray<long>());
        }
        using var eq = new Matcher(0.5, 0.5).Match(hq);
        Assert.Equal(Longs(m.GetProperty("hand_equal_thresholds")), eq.ToArray<long>());
        // Hand-derived: gt 0's best 0.4 at predictions 1 and 3 (a tie) and gt 2's best 0.25 at prediction 4
        // keep their matches with low quality on; prediction 0 (best 0.1) stays below the low threshold.
        Assert.Equal(new long[] { -1, 0, 1, 0, 2 }, OpsGolden.Data(m.GetProperty("hand_matches_true")).Select(v => (long)v));
    }

    [Fact]
    public void MatcherRejectsEmptyMatricesAndBadThresholds()
    {
        var noGt = Assert.Throws<ArgumentException>(() => new Matcher(0.7, 0.3).Match(Tensor.Zeros([0, 5], DType.Float32)));
        Assert.Contains("ground-truth", noGt.Message);
        var noPred = Assert.Throws<ArgumentException>(() => new Matcher(0.7, 0.3).Match(Tensor.Zeros([3, 0], DType.Float32)));
        Assert.Contains("proposal", noPred.Message);
        Assert.Equal("lowThreshold", Assert.Throws<ArgumentException>(() => new Matcher(0.3, 0.7)).ParamName);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void SamplerPicksValidCountsAndIsSeeded(string device)
    {
        var d = Device.Parse(device);
        var gen = new Generator(3);
        var matched = new long[300];
        for (int i = 0; i < matched.Length; i++) matched[i] = (long)(gen.NextDouble() * 5) - 2; // -2..2
        using var m = Tensor.From<long>(matched, matched.Length).To(d);
        using var few = Tensor.From<long>([0, 1, -1, 0, 3], 5).To(d);
        (bool[][] Pos, bool[][] Neg) Run(ulong seed)
        {
            var s = new BalancedPositiveNegativeSampler(64, 0.25, new Generator(seed));
            var (pos, neg) = s.Sample([m, few]);
            var r = (pos.Select(p => p.ToArray<bool>()).ToArray(), neg.Select(p => p.ToArray<bool>()).ToArray());
            foreach (var t in pos.Concat(neg)) { Assert.Equal(d, t.Device); Assert.Equal(DType.Bool, t.DType); t.Dispose(); }
            return r;
        }
        var (p1, n1) = Run(42);
        Assert.Equal(16, p1[0].Count(x => x));
        Assert.Equal(48, n1[0].Count(x => x));
        for (int i = 0; i < matched.Length; i++)
        {
            if (p1[0][i]) Assert.True(matched[i] >= 1);
            if (n1[0][i]) Assert.Equal(0, matched[i]);
        }
        // Too few candidates: all positives (2) and all negatives (2) are taken.
        Assert.Equal(new[] { false, true, false, false, true }, p1[1]);
        Assert.Equal(new[] { true, false, false, true, false }, n1[1]);
        var (p2, n2) = Run(42);
        Assert.Equal(p1[0], p2[0]);
        Assert.Equal(n1[0], n2[0]);
        var (p3, _) = Run(43);
        Assert.NotEqual(p1[0], p3[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new BalancedPositiveNegativeSampler(64, 1.5));
    }

    private static long[] Longs(JsonElement e) => OpsGolden.Data(e).Select(v => (long)v).ToArray();
}
