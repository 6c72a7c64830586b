using System.Text.Json;
using Runtime.Vision.Data;

namespace Runtime.Vision.Tests.Data;

public class TransformTests
{
    private static readonly Lazy<JsonElement> Golden = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "golden", "data", "data_goldens.json"))).RootElement);

    private static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    [Theory]
    [InlineData(480, 640, 800, 1066)]
    [InlineData(640, 480, 1066, 800)]
    [InlineData(427, 640, 799, 1199)]
    [InlineData(375, 500, 799, 1066)]
    [InlineData(100, 1000, 133, 1333)]
    [InlineData(612, 612, 800, 800)]
    public void ResizeRuleMatchesTorchvision(int h, int w, int eh, int ew) =>
        Assert.Equal((eh, ew), GeneralizedRcnnTransform.ResizedSize(h, w, 800, 1333));

    [Fact]
    public void ResizeRuleAndPaddingMatchTheGolden()
    {
        foreach (var c in Golden.Value.GetProperty("resize_sizes").EnumerateArray())
        {
            var input = Ints(c.GetProperty("in"));
            var expected = Ints(c.GetProperty("out"));
            var padded = Ints(c.GetProperty("padded"));
            var (h, w) = GeneralizedRcnnTransform.ResizedSize(input[0], input[1], c.GetProperty("min_size").GetInt32(), c.GetProperty("max_size").GetInt32());
            Assert.Equal((expected[0], expected[1]), (h, w));
            Assert.Equal((padded[0], padded[1]), (GeneralizedRcnnTransform.RoundUp(h, 32), GeneralizedRcnnTransform.RoundUp(w, 32)));
        }
    }

    [Fact]
    public void BilinearMatchesAHandComputedCase()
    {
        // 1x2 -> 1x4: scale 0.5, sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (index 1, no right neighbour).
        Assert.Equal([10f, 12.5f, 17.5f, 20f], Resize.Bilinear([10f, 20f], 1, 1, 2, 1, 4));
        // 2x2 -> 3x3: scale 2/3, sources 1/6-ish... centre pixel is the mean of all four.
        var r = Resize.Bilinear([0f, 3f, 6f, 9f], 1, 2, 2, 3, 3);
        Assert.Equal(4.5f, r[4], 5);
        Assert.Equal(0f, r[0]);
        Assert.Equal(9f, r[8]);
        // Same size is the identity.
        float[] v = [1, 2, 3, 4, 5, 6];
        Assert.Equal(v, Resize.Bilinear(v, 2, 1, 3, 1, 3));
    }

    [Fact]
    public void BilinearMatchesTorchInterpolate()
    {
        var g = Golden.Value.GetProperty("bilinear");
        var input = Floats(g.GetProperty("input"));
        int c = g.GetProperty("channels").GetInt32(), h = g.GetProperty("height").GetInt32(), w = g.GetProperty("width").GetInt32();
        foreach (var k in g.GetProperty("cases").EnumerateArray())
        {
            int oh = k.GetProperty("height").GetInt32(), ow = k.GetProperty("width").GetInt32();
            var expected = Floats(k.GetProperty("output"));
            var actual = Resize.Bilinear(input, c, h, w, oh, ow);
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6f, $"{oh}x{ow} [{i}]: {actual[i]} vs torch {expected[i]}");
        }
    }

    [Fact]
    public void NearestMatchesTorchInterpolate()
    {
        var g = Golden.Value.GetProperty("nearest");
        var input = Floats(g.GetProperty("input")).Select(f => (byte)f).ToArray();
        int n = g.GetProperty("planes").GetInt32(), h = g.GetProperty("height").GetInt32(), w = g.GetProperty("width").GetInt32();
        foreach (var k in g.GetProperty("cases").EnumerateArray())
        {
            int oh = k.GetProperty("height").GetInt32(), ow = k.GetProperty("width").GetInt32();
            var expected = Floats(k.GetProperty("output")).Select(f => (byte)f).ToArray();
            Assert.Equal(expected, Resize.Nearest<byte>(input, n, h, w, oh, ow));
        }
    }

    [Fact]
    public void GeneralizedRcnnTransformMatchesTorchvision()
    {
        var g = Golden.Value.GetProperty("transform");
        var t = new GeneralizedRcnnTransform(g.GetProperty("min_size").GetInt32(), g.GetProperty("max_size").GetInt32());
        var samples = new List<DetectionSample>();
        var images = g.GetProperty("images").EnumerateArray().ToArray();
        var boxes = g.GetProperty("boxes").EnumerateArray().ToArray();
        var masks = g.GetProperty("masks").EnumerateArray().ToArray();
        for (int i = 0; i < images.Length; i++)
        {
            var shape = Ints(images[i].GetProperty("shape"));
            var b = Floats(boxes[i]);
            var mshape = Ints(masks[i].GetProperty("shape"));
            var m = Ints(masks[i].GetProperty("data")).Select(v => (byte)v).ToArray();
            int n = b.Length / 4;
            samples.Add(new DetectionSample(Tensor.From<float>(Floats(images[i].GetProperty("data")), shape),
                DetectionTarget.FromArrays(b, Enumerable.Repeat(1L, n).ToArray(), m, mshape[1], mshape[2], new long[n], new float[n], i)));
        }
        using var batch = t.Apply(samples);
        Assert.Equal(Ints(g.GetProperty("batch_shape")), batch.Images.Tensors.Shape.ToArray());
        Assert.Equal(g.GetProperty("image_sizes").EnumerateArray().Select(s => (s[0].GetInt32(), s[1].GetInt32())), batch.Images.ImageSizes);
        Assert.Equal(samples.Select(s => (s.Height, s.Width)), batch.Images.OriginalSizes);
        var values = batch.Images.Tensors.ToArray<float>();
        var idx = Ints(g.GetProperty("sample_index"));
        var want = Floats(g.GetProperty("sample_value"));
        for (int i = 0; i < idx.Length; i++) Assert.True(Math.Abs(values[idx[i]] - want[i]) < 2e-5f, $"[{idx[i]}]: {values[idx[i]]} vs {want[i]}");
        Assert.Equal(g.GetProperty("batch_sum").GetDouble(), values.Sum(v => (double)v), 2);
        var outBoxes = g.GetProperty("out_boxes").EnumerateArray().ToArray();
        var outMasks = g.GetProperty("out_masks").EnumerateArray().ToArray();
        for (int i = 0; i < samples.Count; i++)
        {
            Assert.Equal(Floats(outBoxes[i]), batch.Targets[i].Boxes.ToArray<float>());
            Assert.Equal(Ints(outMasks[i].GetProperty("shape")), batch.Targets[i].Masks!.Shape.ToArray());
            Assert.Equal(Ints(outMasks[i].GetProperty("data")).Select(v => (byte)v).ToArray(), batch.Targets[i].Masks!.ToArray<byte>());
        }
        // The inputs are untouched and still usable.
        Assert.Equal(Floats(images[0].GetProperty("data")), samples[0].Image.ToArray<float>());
        foreach (var s in samples) s.Dispose();
    }

    private static DetectionSample Sample(int h, int w, float[] boxes, byte[] masks)
    {
        int n = boxes.Length / 4;
        var img = new float[3 * h * w];
        for (int i = 0; i < img.Length; i++) img[i] = i;
        return new DetectionSample(Tensor.From<float>(img, [3, h, w]),
            DetectionTarget.FromArrays(boxes, Enumerable.Range(1, n).Select(i => (long)i).ToArray(), masks, h, w, new long[n], new float[n], 1));
    }

    [Fact]
    public void HorizontalFlipMirrorsImageBoxesAndMasks()
    {
        var mask = new byte[2 * 2 * 4];
        mask[0] = 1; // mask 0 (0,0)
        mask[8 + 4 + 1] = 1; // mask 1 (1,1)
        using var s = RandomHorizontalFlip.Flip(Sample(2, 4, [0, 0, 1, 1, 1, 0, 3.5f, 2], mask));
        Assert.Equal([3f, 0, 4, 1, 0.5f, 0, 3, 2], s.Target.Boxes.ToArray<float>());
        var m = s.Target.Masks!.ToArray<byte>();
        Assert.Equal(1, m[3]);
        Assert.Equal(1, m[8 + 4 + 2]);
        Assert.Equal(2, m.Sum(b => b));
        var img = s.Image.ToArray<float>();
        Assert.Equal([3f, 2, 1, 0, 7, 6, 5, 4], img[..8]);
        Assert.Equal([1L, 2], s.Target.Labels.ToArray<long>());
    }

    [Fact]
    public void RandomFlipFollowsItsProbabilityAndGenerator()
    {
        int flipped = 0;
        for (int i = 0; i < 200; i++)
        {
            var g = new Generator((ulong)i);
            using var s = new RandomHorizontalFlip(0.3).Apply(Sample(1, 2, [0, 0, 1, 1], [1, 0]), g);
            if (s.Target.Boxes.ToArray<float>()[0] == 1) flipped++;
        }
        Assert.InRange(flipped, 40, 80);
        using var never = new RandomHorizontalFlip(0).Apply(Sample(1, 2, [0, 0, 1, 1], [1, 0]), new Generator(1));
        Assert.Equal(0f, never.Target.Boxes.ToArray<float>()[0]);
    }

    [Fact]
    public void BatchPadsToMultiplesOf32()
    {
        using var a = Tensor.Ones(3, 33, 50);
        using var b = Tensor.Ones(3, 64, 20);
        using var batch = GeneralizedRcnnTransform.Batch([a, b]);
        Assert.Equal([2, 3, 64, 64], batch.Tensors.Shape.ToArray());
        Assert.Equal([(33, 50), (64, 20)], batch.ImageSizes);
        var v = batch.Tensors.ToArray<float>();
        Assert.Equal(1f, v[32 * 64 + 49]); // image 0, channel 0, row 32, col 49
        Assert.Equal(0f, v[32 * 64 + 50]); // padding
        Assert.Equal(0f, v[33 * 64]);
        Assert.Equal(3 * 33 * 50 + 3 * 64 * 20, v.Sum());
        using var c = Tensor.Ones(3, 7, 9);
        using var d = GeneralizedRcnnTransform.Batch([c], 1);
        Assert.Equal([1, 3, 7, 9], d.Tensors.Shape.ToArray());
    }

    [Fact]
    public void ResizeTransformScalesBoxesAndMasks()
    {
        var mask = new byte[4 * 6];
        mask[6 + 2] = 1;
        using var s = ResizeTransform.Apply(Sample(4, 6, [1, 1, 3, 2], mask), 8, 100);
        Assert.Equal([3, 8, 12], s.Image.Shape.ToArray());
        Assert.Equal([2f, 2, 6, 4], s.Target.Boxes.ToArray<float>());
        var m = s.Target.Masks!.ToArray<byte>();
        Assert.Equal(4, m.Sum(b => b)); // nearest 2x: one pixel becomes a 2x2 block
        Assert.Equal(1, m[2 * 12 + 4]);
        Assert.Equal(1, m[3 * 12 + 5]);
    }

    [Fact]
    public void CollateGivesPaddedBatchesFromTheLoader()
    {
        var ds = Dataset.FromFunc(5, i => Sample(10, 20, [1, 1, 5, 5], new byte[10 * 20]));
        var t = new GeneralizedRcnnTransform(40, 100);
        using var loader = new DataLoader<DetectionSample, DetectionBatch>(ds, t.Collate, new DataLoaderOptions { BatchSize = 2, NumWorkers = 2 });
        var shapes = new List<int[]>();
        foreach (var b in loader)
            using (b)
            {
                shapes.Add(b.Images.Tensors.Shape.ToArray());
                Assert.Equal((40, 80), b.Images.ImageSizes[0]);
                Assert.Equal([4f, 4, 20, 20], b.Targets[0].Boxes.ToArray<float>());
            }
        Assert.Equal([[2, 3, 64, 96], [2, 3, 64, 96], [1, 3, 64, 96]], shapes);
    }

    [Fact]
    public void NormalizeUsesImageNetStatistics()
    {
        using var x = Tensor.Full([3, 1, 2], 0.5);
        using var y = new Normalize().Apply(x);
        var v = y.ToArray<float>();
        Assert.Equal((0.5f - 0.485f) / 0.229f, v[0], 6);
        Assert.Equal((0.5f - 0.456f) / 0.224f, v[2], 6);
        Assert.Equal((0.5f - 0.406f) / 0.225f, v[5], 6);
    }

    [Fact]
    public void RandomScaleCropGivesTheCropSizeAndPadsWithTheIgnoreId()
    {
        var img = new float[3 * 10 * 10];
        var ids = new int[100];
        for (int i = 0; i < 100; i++) ids[i] = i % 10 < 5 ? 7 : 9;
        var segs = new[] { new PanopticSegment(7, 1, 1, true, false, 50, [0, 0, 5, 10]), new PanopticSegment(9, 2, 2, false, false, 50, [5, 0, 5, 10]) };
        var t = new RandomScaleCrop(0.5, 0.5, 8, 12, imagePadValue: [0.25f]);
        using var s = t.Apply(new PanopticSample(Tensor.From<float>(img, [3, 10, 10]), Tensor.From<int>(ids, [10, 10]), segs, 3), new Generator(1));
        Assert.Equal([3, 8, 12], s.Image.Shape.ToArray());
        Assert.Equal([8, 12], s.SegmentIds.Shape.ToArray());
        var outIds = s.SegmentIds.ToArray<int>();
        // Scaled to 5x5, so most of the 8x12 crop is padding (id 0, image 0.25).
        Assert.Equal(96 - 25, outIds.Count(v => v == 0));
        Assert.Equal(25, s.Segments.Sum(g => g.Area));
        Assert.Equal(96 - 25, s.Image.ToArray<float>().Take(96).Count(v => v == 0.25f));
        using var sem = s.SemanticLabels(ignoreLabel: 255);
        Assert.Equal(96 - 25, sem.ToArray<long>().Count(v => v == 255));
        // Same generator seed, same crop.
        using var again = t.Apply(new PanopticSample(Tensor.From<float>(img, [3, 10, 10]), Tensor.From<int>(ids, [10, 10]), segs, 3), new Generator(1));
        Assert.Equal(outIds, again.SegmentIds.ToArray<int>());
    }
}
