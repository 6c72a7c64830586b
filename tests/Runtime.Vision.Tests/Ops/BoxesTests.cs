using System.Text.Json;
using Runtime.Nn.Losses;
using Runtime.Tests;
using Runtime.Vision.Ops;

namespace Runtime.Vision.Tests.Ops;

/// <summary>Box operators and NMS against torchvision 0.14 goldens (golden/ops/make_boxes.py), on every device.</summary>
public class BoxesTests
{
    private static JsonElement G => OpsGolden.Load("boxes.json");

    private static Tensor Load(string key, Device d, DType t = DType.Float32) => OpsGolden.Tensor(G.GetProperty(key), t, d);

    private static Tensor Load(JsonElement e, Device d, DType t = DType.Float32) => OpsGolden.Tensor(e, t, d);

    private static double[] Data(string key) => OpsGolden.Data(G.GetProperty(key));

    private static long[] Longs(JsonElement e) => OpsGolden.Data(e).Select(v => (long)v).ToArray();

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BoxIouAndGeneralizedIouMatchTorchvision(string device)
    {
        var d = Device.Parse(device);
        using var a = Load("iou_a", d);
        using var b = Load("iou_b", d);
        using var area = Boxes.BoxArea(a);
        TestUtil.AssertClose(Data("box_area"), area, 1e-5, 1e-6);
        using var iou = Boxes.BoxIou(a, b);
        TestUtil.AssertShape(iou, 7, 5);
        TestUtil.AssertClose(Data("box_iou"), iou, 1e-6, 1e-5);
        Assert.Equal(1.0, iou.ToDoubleArray()[0], 6);
        using var giou = Boxes.GeneralizedBoxIou(a, b);
        TestUtil.AssertClose(Data("generalized_box_iou"), giou, 1e-6, 1e-5);
        using var a64 = Load("iou_a", d, DType.Float64);
        using var b64 = Load("iou_b", d, DType.Float64);
        using var iou64 = Boxes.BoxIou(a64, b64);
        Assert.Equal(DType.Float64, iou64.DType);
        TestUtil.AssertClose(Data("box_iou64"), iou64, 1e-6, 1e-6);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BoxIouOfNonContiguousBoxes(string device)
    {
        var d = Device.Parse(device);
        using var a = Load("iou_a", d);
        using var b = Load("iou_b", d);
        // The same boxes as a column-major view: [4, 7] transposed.
        using var at = a.Transpose(0, 1).Contiguous();
        using var aview = at.Transpose(0, 1);
        Assert.False(aview.IsContiguous);
        using var iou = Boxes.BoxIou(aview, b);
        TestUtil.AssertClose(Data("box_iou"), iou, 1e-6, 1e-5);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void GeneralizedBoxIouLossAndGradientMatchTorchvision(string device)
    {
        var d = Device.Parse(device);
        foreach (var (red, key) in new[] { (Reduction.None, "none"), (Reduction.Mean, "mean"), (Reduction.Sum, "sum") })
        {
            using var p = Load("giou_p", d, DType.Float64);
            using var g = Load("giou_g", d, DType.Float64);
            using var loss = Boxes.GeneralizedBoxIouLoss(p, g, red);
            TestUtil.AssertClose(Data("giou_loss_" + key), loss, 1e-10, 1e-9);
        }
        using var pr = Load("giou_p", d, DType.Float64).RequiresGrad_();
        using var gr = Load("giou_g", d, DType.Float64).RequiresGrad_();
        using var w = Load("giou_grad_w", d, DType.Float64);
        using (var l = Boxes.GeneralizedBoxIouLoss(pr, gr))
        using (var weighted = l * w)
        using (var s = weighted.Sum())
            s.Backward();
        TestUtil.AssertClose(Data("giou_grad_p"), pr.Grad!, 1e-10, 1e-8);
        TestUtil.AssertClose(Data("giou_grad_g"), gr.Grad!, 1e-10, 1e-8);
    }

    [Fact]
    public void GeneralizedBoxIouLossGradCheck()
    {
        using var p0 = OpsGolden.Tensor(G.GetProperty("giou_p"), DType.Float64, Device.Cpu);
        using var g0 = OpsGolden.Tensor(G.GetProperty("giou_g"), DType.Float64, Device.Cpu);
        var p = p0.Clone();
        var g = g0.Clone();
        TestUtil.GradCheck(x => Boxes.GeneralizedBoxIouLoss(x[0], x[1]), [p, g]);
        TestUtil.GradCheck(x => Boxes.GeneralizedBoxIouLoss(x[0], x[1], Reduction.Mean), [p, g]);
        // Non-contiguous boxes: every other row of a [12, 4] stack.
        var wide = Tensor.Cat([p0, g0], 1).Reshape(12, 4).Contiguous();
        TestUtil.GradCheck(x => Boxes.GeneralizedBoxIouLoss(x[0].Slice(0, 0, 12, 2), x[0].Slice(0, 1, 12, 2), Reduction.Sum), [wide]);
        // The pairwise GIoU and IoU are differentiable too.
        TestUtil.GradCheck(x => Boxes.GeneralizedBoxIou(x[0], x[1]), [p, g]);
        TestUtil.GradCheck(x => Boxes.BoxIou(x[0], x[1]), [p, g]);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void GeneralizedBoxIouLossOfSingleBoxesAndEmptyMean(string device)
    {
        var d = Device.Parse(device);
        using var a = Tensor.From<float>([0f, 0f, 2f, 2f], 4).To(d);
        using var b = Tensor.From<float>([1f, 1f, 3f, 3f], 4).To(d);
        using var l = Boxes.GeneralizedBoxIouLoss(a, b);
        // inter 1, union 7, enclosing 9: 1 - (1/7 - 2/9).
        Assert.Equal(1 - (1 / (7 + 1e-7) - 2 / (9 + 1e-7)), l.Item(), 5);
        using var e = Tensor.Zeros([0, 4], DType.Float32, d);
        using var m = Boxes.GeneralizedBoxIouLoss(e, e, Reduction.Mean);
        Assert.Equal(0.0, m.Item());
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void NmsMatchesTorchvision(string device)
    {
        var d = Device.Parse(device);
        foreach (var c in G.GetProperty("nms").EnumerateObject())
        {
            var t = c.Value.GetProperty("boxes").GetProperty("shape")[0].GetInt32() == 700 ? DType.Float64 : DType.Float32;
            using var boxes = Load(c.Value.GetProperty("boxes"), d, t);
            using var scores = Load(c.Value.GetProperty("scores"), d, t);
            double thr = c.Value.GetProperty("threshold").GetDouble();
            using var keep = Boxes.Nms(boxes, scores, thr);
            Assert.Equal(DType.Int64, keep.DType);
            Assert.True(Longs(c.Value.GetProperty("keep")).SequenceEqual(keep.ToArray<long>()), $"case {c.Name} on {device}");
        }
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void BatchedNmsMatchesTorchvision(string device)
    {
        var d = Device.Parse(device);
        foreach (var c in G.GetProperty("batched_nms").EnumerateObject())
        {
            using var boxes = Load(c.Value.GetProperty("boxes"), d);
            using var scores = Load(c.Value.GetProperty("scores"), d);
            using var idxs = Load(c.Value.GetProperty("idxs"), d, DType.Int64);
            using var keep = Boxes.BatchedNms(boxes, scores, idxs, c.Value.GetProperty("threshold").GetDouble());
            Assert.True(Longs(c.Value.GetProperty("keep")).SequenceEqual(keep.ToArray<long>()), $"case {c.Name} on {device}");
        }
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void NmsOfEmptyAndNonContiguousInputs(string device)
    {
        var d = Device.Parse(device);
        using var none = Tensor.Zeros([0, 4], DType.Float32, d);
        using var noScores = Tensor.Zeros([0], DType.Float32, d);
        using var k0 = Boxes.Nms(none, noScores, 0.5);
        TestUtil.AssertShape(k0, 0);
        using var k1 = Boxes.BatchedNms(none, noScores, Tensor.Zeros([0], DType.Int64, d), 0.5);
        TestUtil.AssertShape(k1, 0);
        var c = G.GetProperty("nms").GetProperty("random");
        using var boxes = Load(c.GetProperty("boxes"), d);
        using var scores = Load(c.GetProperty("scores"), d);
        using var bt = boxes.Transpose(0, 1).Contiguous();
        using var bview = bt.Transpose(0, 1);
        using var wideScores = Tensor.Stack([scores, scores], 1);
        using var sview = wideScores.Select(1, 0);
        Assert.False(bview.IsContiguous);
        Assert.False(sview.IsContiguous);
        using var keep = Boxes.Nms(bview, sview, c.GetProperty("threshold").GetDouble());
        Assert.True(Longs(c.GetProperty("keep")).SequenceEqual(keep.ToArray<long>()));
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void NmsAgreesWithCpuOnManyClusteredBoxes(string device)
    {
        // 2000 boxes: 32 blocks of 64 on the GPU path; compared with a plain O(N^2) reference.
        var d = Device.Parse(device);
        var gen = new Generator(11);
        int n = 2000;
        var data = new float[n * 4];
        var sc = new float[n];
        for (int i = 0; i < n; i++)
        {
            double cx = (i % 50) * 37 + gen.NextDouble() * 20, cy = (i % 7) * 41 + gen.NextDouble() * 20;
            double w = 10 + gen.NextDouble() * 40, h = 10 + gen.NextDouble() * 40;
            data[4 * i] = (float)(cx - w / 2);
            data[4 * i + 1] = (float)(cy - h / 2);
            data[4 * i + 2] = (float)(cx + w / 2);
            data[4 * i + 3] = (float)(cy + h / 2);
            sc[i] = (float)Math.Round(gen.NextDouble() * 100) / 100; // many ties
        }
        using var boxes = Tensor.From<float>(data, n, 4).To(d);
        using var scores = Tensor.From<float>(sc, n).To(d);
        using var keep = Boxes.Nms(boxes, scores, 0.45);
        Assert.Equal(ReferenceNms(data, sc, 0.45), keep.ToArray<long>());
        // One infinite coordinate sends the CPU to its other (vector compaction) algorithm: same answer.
        float saved = data[4 * 17 + 2];
        data[4 * 17 + 2] = float.PositiveInfinity;
        using var boxesInf = Tensor.From<float>(data, n, 4).To(d);
        using var keepInf = Boxes.Nms(boxesInf, scores, 0.45);
        Assert.Equal(ReferenceNms(data, sc, 0.45), keepInf.ToArray<long>());
        // Classes: each class alone, merged back in score order.
        var cls = Enumerable.Range(0, n).Select(i => (long)(i % 3)).ToArray();
        using var idxs = Tensor.From<long>(cls, n).To(d);
        using var keepCls = Boxes.BatchedNms(boxes, scores, idxs, 0.3);
        data[4 * 17 + 2] = saved;
        var expected = Enumerable.Range(0, 3).SelectMany(c =>
        {
            var members = Enumerable.Range(0, n).Where(i => i % 3 == c).ToArray();
            var sub = members.SelectMany(i => data.Skip(4 * i).Take(4)).ToArray();
            return ReferenceNms(sub, members.Select(i => sc[i]).ToArray(), 0.3).Select(k => members[k]);
        }).OrderByDescending(i => sc[i]).ThenBy(i => i).Select(i => (long)i).ToArray();
        Assert.Equal(expected, keepCls.ToArray<long>());
    }

    // Stable score order, suppress when IoU (float32, same formula) > threshold.
    private static long[] ReferenceNms(float[] b, float[] s, double thr)
    {
        var order = Enumerable.Range(0, s.Length).OrderByDescending(i => s[i]).ToArray();
        var kept = new List<int>();
        foreach (var i in order)
        {
            bool ok = true;
            foreach (var j in kept)
            {
                float iw = MathF.Max(MathF.Min(b[4 * i + 2], b[4 * j + 2]) - MathF.Max(b[4 * i], b[4 * j]), 0f);
                float ih = MathF.Max(MathF.Min(b[4 * i + 3], b[4 * j + 3]) - MathF.Max(b[4 * i + 1], b[4 * j + 1]), 0f);
                float inter = iw * ih;
                float aj = (b[4 * j + 2] - b[4 * j]) * (b[4 * j + 3] - b[4 * j + 1]);
                float ai = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
                if ((double)(inter / (aj + ai - inter)) > thr) { ok = false; break; }
            }
            if (ok) kept.Add(i);
        }
        return kept.Select(k => (long)k).ToArray();
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void ClipRemoveSmallAndConvertMatchTorchvision(string device)
    {
        var d = Device.Parse(device);
        using var cb = Load("clip_in", d);
        using var clipped = Boxes.ClipBoxesToImage(cb, (50, 40));
        AssertF32(Data("clip_out"), clipped);
        using var cb3 = cb.Reshape(3, 3, 4);
        using var clipped3 = Boxes.ClipBoxesToImage(cb3, (30, 45));
        TestUtil.AssertShape(clipped3, 3, 3, 4);
        AssertF32(Data("clip3_out"), clipped3);
        using var rs = Load("small_in", d);
        using var keep = Boxes.RemoveSmallBoxes(rs, 5.0);
        Assert.Equal(Data("small_keep").Select(v => (long)v), keep.ToArray<long>());
        using var cv = Load("convert_in", d);
        foreach (var fi in new[] { "xyxy", "xywh", "cxcywh" })
            foreach (var fo in new[] { "xyxy", "xywh", "cxcywh" })
            {
                using var c = Boxes.BoxConvert(cv, Boxes.ParseFormat(fi), Boxes.ParseFormat(fo));
                TestUtil.AssertClose(Data($"convert_{fi}_{fo}"), c, 1e-5, 1e-6);
            }
        // Integer boxes: clipping keeps the dtype.
        using var ib = Tensor.From<long>([-5, 3, 70, 20], 1, 4).To(d);
        using var ic = Boxes.ClipBoxesToImage(ib, (10, 60));
        Assert.Equal(DType.Int64, ic.DType);
        Assert.Equal(new long[] { 0, 3, 60, 10 }, ic.ToArray<long>());
    }

    // Exact float32 equality (the golden holds the shortest text of each float32).
    private static void AssertF32(double[] expected, Tensor actual) =>
        Assert.Equal(expected.Select(v => (float)v), actual.ToArray<float>());

    [Fact]
    public void BadInputsThrowArgumentExceptions()
    {
        using var b3 = Tensor.Zeros([5, 3], DType.Float32);
        using var b4 = Tensor.Zeros([5, 4], DType.Float32);
        using var s5 = Tensor.Zeros([5], DType.Float32);
        using var s4 = Tensor.Zeros([4], DType.Float32);
        using var ib = Tensor.Zeros([5, 4], DType.Int64);
        Assert.Equal("boxes1", Assert.Throws<ArgumentException>(() => Boxes.BoxIou(b3, b4)).ParamName);
        Assert.Equal("boxes", Assert.Throws<ArgumentException>(() => Boxes.Nms(b3, s5, 0.5)).ParamName);
        Assert.Equal("scores", Assert.Throws<ArgumentException>(() => Boxes.Nms(b4, s4, 0.5)).ParamName);
        Assert.Equal("boxes", Assert.Throws<ArgumentException>(() => Boxes.Nms(ib, s5, 0.5)).ParamName);
        Assert.Equal("idxs", Assert.Throws<ArgumentException>(() => Boxes.BatchedNms(b4, s5, s5, 0.5)).ParamName);
        Assert.Equal("idxs", Assert.Throws<ArgumentException>(() => Boxes.BatchedNms(b4, s5, Tensor.Zeros([3], DType.Int64), 0.5)).ParamName);
        Assert.Equal("boxes2", Assert.Throws<ArgumentException>(() => Boxes.GeneralizedBoxIouLoss(b4, Tensor.Zeros([4, 4], DType.Float32))).ParamName);
        Assert.Equal("boxes", Assert.Throws<ArgumentException>(() => Boxes.ClipBoxesToImage(b3, (4, 4))).ParamName);
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => Boxes.ParseFormat("xxyy")).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => Boxes.BoxConvert(b4, (BoxFormat)7, BoxFormat.Xyxy));
    }
}
