using Runtime.Tests;
using Runtime.Vision.Evaluation;
using Runtime.Vision.Ops;

namespace Runtime.Vision.Tests.Ops;

public class MasksTests
{
    private const string File = "lsa_masks.json";

    private static DType DTypeOf(string name) => name switch { "float64" => DType.Float64, "int64" => DType.Int64, _ => DType.Float32 };

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void PasteMasksMatchesTorchvision(string device)
    {
        var dev = Device.Parse(device);
        int n = 0;
        foreach (var c in OpsGolden.Load(File).GetProperty("paste").EnumerateArray())
        {
            string name = c.GetProperty("name").GetString()!;
            var mdt = DTypeOf(c.GetProperty("masks_dtype").GetString()!);
            var bdt = DTypeOf(c.GetProperty("boxes_dtype").GetString()!);
            int padding = c.GetProperty("padding").GetInt32();
            var img = c.GetProperty("image");
            (int, int) size = (img[0].GetInt32(), img[1].GetInt32());
            using var masks = OpsGolden.Tensor(c.GetProperty("masks"), mdt, dev);
            using var boxes = OpsGolden.Tensor(c.GetProperty("boxes"), bdt, dev);
            var expected = OpsGolden.Data(c.GetProperty("out"));
            using var y = Masks.PasteMasksInImage(masks, boxes, size, padding);
            Assert.Equal(mdt, y.DType);
            Assert.Equal(dev, y.Device);
            Assert.Equal(OpsGolden.Shape(c.GetProperty("out")), y.ShapeArray);
            TestUtil.AssertClose(expected, y, atol: mdt == DType.Float64 ? 1e-12 : 2e-6, rtol: 1e-5);
            // [N, M, M] masks paste the same.
            using var m3 = masks.Squeeze(1);
            using var y3 = Masks.PasteMasksInImage(m3, boxes, size, padding);
            TestUtil.AssertClose(expected, y3, atol: mdt == DType.Float64 ? 1e-12 : 2e-6, rtol: 1e-5);
            _ = name;
            n++;
        }
        Assert.Equal(6, n);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void PasteHandCaseAndEdges(string device)
    {
        var dev = Device.Parse(device);
        // A 1x1 mask of value 0.5 with no padding into box (1,1)-(2,3): a 2x3 block (w = 2, h = 3) of 0.5.
        using var m = Tensor.Full([1, 1, 1, 1], 0.5, DType.Float32, dev);
        using var b = Tensor.From<float>([1f, 1f, 2f, 3f], [1, 4], dev);
        using var y = Masks.PasteMasksInImage(m, b, (5, 4), padding: 0);
        var exp = new double[20];
        for (int yy = 1; yy <= 3; yy++)
            for (int xx = 1; xx <= 2; xx++)
                exp[yy * 4 + xx] = 0.5;
        TestUtil.AssertClose(exp, y);

        // A box wholly outside the image pastes nothing; no masks give [0, 1, H, W].
        using var far = Tensor.From<float>([50f, 50f, 60f, 60f], [1, 4], dev);
        using var yFar = Masks.PasteMasksInImage(m, far, (5, 4));
        TestUtil.AssertClose(new double[20], yFar);
        using var none = Tensor.Zeros([0, 1, 7, 7], DType.Float32, dev);
        using var noBoxes = Tensor.Zeros([0, 4], DType.Float32, dev);
        using var yNone = Masks.PasteMasksInImage(none, noBoxes, (6, 8));
        Assert.Equal([0, 1, 6, 8], yNone.ShapeArray);

        Assert.Throws<ArgumentException>(() => Masks.PasteMasksInImage(m, noBoxes, (5, 4)));
        using var m2 = Tensor.Zeros([1, 2, 3, 3], DType.Float32, dev);
        Assert.Throws<ArgumentException>(() => Masks.PasteMasksInImage(m2, b, (5, 4)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Masks.PasteMasksInImage(m, b, (5, 4), padding: -1));
    }

    private static double[] IouReference(bool[] a, bool[] b, int n, int m, int hw)
    {
        var o = new double[n * m];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                double inter = 0, union = 0;
                for (int p = 0; p < hw; p++)
                {
                    bool x = a[i * hw + p], y = b[j * hw + p];
                    if (x && y) inter++;
                    if (x || y) union++;
                }
                o[i * m + j] = union == 0 ? 0 : inter / union;
            }
        return o;
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void MaskIouMatchesLoopReference(string device)
    {
        var dev = Device.Parse(device);
        var rng = new Random(99);
        int n = 5, m = 4, h = 9, w = 11, hw = h * w;
        var a = new bool[n * hw];
        var b = new bool[m * hw];
        for (int i = 0; i < n; i++)
        {
            double p = i == 0 ? 0 : rng.NextDouble(); // mask 0 is empty
            for (int k = 0; k < hw; k++) a[i * hw + k] = rng.NextDouble() < p;
        }
        for (int j = 0; j < m; j++)
        {
            double p = j == 1 ? 0 : rng.NextDouble(); // mask 1 is empty
            for (int k = 0; k < hw; k++) b[j * hw + k] = rng.NextDouble() < p;
        }
        var expected = IouReference(a, b, n, m, hw);
        Assert.Equal(0, expected[0 * m + 1]); // empty vs empty
        using var ta = Tensor.From<bool>(a, [n, h, w], dev);
        using var tb = Tensor.From<bool>(b, [m, h, w], dev);
        using var iou = Masks.MaskIou(ta, tb);
        Assert.Equal(DType.Float32, iou.DType);
        Assert.Equal([n, m], iou.ShapeArray);
        TestUtil.AssertClose(expected, iou, atol: 1e-6, rtol: 1e-6);
        Assert.DoesNotContain(iou.ToDoubleArray(), double.IsNaN);
        // 0/1 float masks give the same.
        using var fa = ta.To(DType.Float32);
        using var fb = tb.To(DType.Float64);
        using var iouF = Masks.MaskIou(fa, fb);
        TestUtil.AssertClose(expected, iouF, atol: 1e-6, rtol: 1e-6);
    }

    [Fact]
    public void MaskIouHandCases()
    {
        // a0 = top row, b0 = left column of a 2x2 image: intersection 1, union 3.
        using var a = Tensor.From<bool>([true, true, false, false, false, false, false, false], [2, 2, 2]);
        using var b = Tensor.From<bool>([true, false, true, false, true, true, true, true, false, false, false, false], [3, 2, 2]);
        using var iou = Masks.MaskIou(a, b);
        TestUtil.AssertClose([1.0 / 3, 0.5, 0, 0, 0, 0], iou);
        using var none = Tensor.Zeros([0, 2, 2], DType.Bool, Device.Cpu);
        using var e = Masks.MaskIou(none, b);
        Assert.Equal([0, 3], e.ShapeArray);
        using var wrong = Tensor.Zeros([1, 3, 2], DType.Bool, Device.Cpu);
        Assert.Throws<ArgumentException>(() => Masks.MaskIou(a, wrong));
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void PolygonAndRleBridges(string device)
    {
        var dev = Device.Parse(device);
        var polys = new List<double[]>
        {
            new[] { 2.3, 1.1, 14.7, 3.9, 11.2, 12.6, 3.0, 9.4 },
            new[] { 10.0, 10.0, 18.5, 11.0, 15.0, 17.8 },
        };
        int h = 16, w = 20;
        Rle expected = Rle.FromPolygons(polys, h, w);
        using var raster = Masks.RasterizePolygons(polys, h, w, dev);
        Assert.Equal(DType.Bool, raster.DType);
        Assert.Equal([h, w], raster.ShapeArray);
        Assert.Equal(dev, raster.Device);
        byte[] row = expected.DecodeRowMajor();
        Assert.Equal(row, raster.ToArray<byte>());
        Assert.Equal(expected.Area, row.Count(x => x != 0));
        // Tensor -> RLE -> tensor round trips, from Bool and from integer masks.
        Assert.Equal(expected, Masks.ToRle(raster));
        using var asInt = raster.To(DType.Int32);
        Assert.Equal(expected, Masks.ToRle(asInt));
        using var back = Masks.FromRle(expected, dev);
        Assert.Equal(row, back.ToArray<byte>());
        // A non-contiguous view encodes its own (transposed) layout.
        using var t = raster.Transpose(0, 1);
        var trow = new byte[h * w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                trow[x * h + y] = row[y * w + x];
        Assert.Equal(Rle.EncodeRowMajor(trow, w, h), Masks.ToRle(t));
        Assert.Throws<ArgumentException>(() => Masks.ToRle(Tensor.Zeros(2, 2, 2)));
    }
}
