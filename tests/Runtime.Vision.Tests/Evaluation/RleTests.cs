using System.Text.Json;
using Runtime.Vision.Evaluation;

namespace Runtime.Vision.Tests.Evaluation;

public class RleTests
{
    // Mask 2x3, column-major [0,0 | 1,1 | 0,1]: runs 2 zeros, 2 ones, 1 zero, 1 one.
    private static readonly byte[] SmallColMajor = [0, 0, 1, 1, 0, 1];

    [Fact]
    public void EncodeCountsColumnMajorRuns()
    {
        Rle r = Rle.Encode(SmallColMajor, 2, 3);
        Assert.Equal(new uint[] { 2, 2, 1, 1 }, r.Counts);
        Assert.Equal(3, r.Area);
        Assert.Equal(SmallColMajor, r.Decode());
    }

    [Fact]
    public void EncodeStartsWithEmptyZeroRunWhenFirstPixelIsSet()
    {
        Rle r = Rle.Encode([1, 1, 0, 1], 2, 2);
        Assert.Equal(new uint[] { 0, 2, 1, 1 }, r.Counts);
        Assert.Equal(new uint[] { 0, 4 }, Rle.Encode([1, 1, 1, 1], 2, 2).Counts);
        Assert.Equal(new uint[] { 4 }, Rle.Encode([0, 0, 0, 0], 2, 2).Counts);
    }

    [Fact]
    public void RowMajorHelpersTransposeToColumnMajor()
    {
        // row-major 2x3: row0 = 0 1 0, row1 = 0 1 1 -> column-major 0,0 | 1,1 | 0,1
        byte[] rowMajor = [0, 1, 0, 0, 1, 1];
        Rle r = Rle.EncodeRowMajor(rowMajor, 2, 3);
        Assert.Equal(Rle.Encode(SmallColMajor, 2, 3), r);
        Assert.Equal(rowMajor, r.DecodeRowMajor());
    }

    [Fact]
    public void RandomRoundTrips()
    {
        var rng = new Random(11);
        foreach ((int h, int w) in new[] { (1, 1), (1, 7), (5, 1), (13, 17), (64, 48) })
        {
            foreach (double density in new[] { 0.0, 0.05, 0.5, 0.95, 1.0 })
            {
                var m = new byte[h * w];
                for (int i = 0; i < m.Length; i++) m[i] = rng.NextDouble() < density ? (byte)1 : (byte)0;
                Rle r = Rle.Encode(m, h, w);
                Assert.Equal(m, r.Decode());
                Assert.Equal(m.Count(v => v != 0), r.Area);
                string s = r.ToCompressedString();
                Assert.Equal(r, Rle.FromCompressedString(s, h, w));
                Assert.Equal(r, new Rle(h, w, r.Counts.ToArray()));
            }
        }
    }

    [Fact]
    public void CompressedStringOfKnownMasks()
    {
        // counts [2,2,1,1]: 2 -> '2', 2 -> '2', 1 -> '1', then 1 - counts[1] = -1 -> 0x1f + 48 = 'O'
        Assert.Equal("221O", Rle.Encode(SmallColMajor, 2, 3).ToCompressedString());
        // 40 = 0b1_01000: low group 8 with the continuation bit (8|0x20)+48 = 'X', then 1 -> '1'
        Assert.Equal("X1", Rle.Empty(5, 8).ToCompressedString());
        // 16 has bit 0x10 set, which would read as negative, so a 0 group follows: (16|0x20)+48 = '`', '0'
        Assert.Equal("`0", Rle.Empty(4, 4).ToCompressedString());
        // empty first run, full mask: "0", then 4 -> '4'
        Assert.Equal("04", Rle.Encode([1, 1, 1, 1], 2, 2).ToCompressedString());
        Assert.Equal(new uint[] { 2, 2, 1, 1 }, Rle.FromCompressedString("221O", 2, 3).Counts);
        Assert.Equal(new uint[] { 40 }, Rle.FromCompressedString("X1", 5, 8).Counts);
    }

    [Fact]
    public void CompressedStringRejectsWrongSize()
    {
        Assert.Throws<ArgumentException>(() => Rle.FromCompressedString("221O", 3, 3));
        Assert.Throws<ArgumentException>(() => new Rle(2, 2, [1, 2]));
    }

    [Fact]
    public void BboxOfMasks()
    {
        Assert.Equal(new double[] { 0, 0, 0, 0 }, Rle.Empty(4, 4).ToBbox());
        // column-major 2x3 [0,0|1,1|0,1]: columns 1..2, rows 0..1
        Assert.Equal(new double[] { 1, 0, 2, 2 }, Rle.Encode(SmallColMajor, 2, 3).ToBbox());
        // single pixel at x=3, y=1 in a 4x5 mask
        var m = new byte[20];
        m[3 * 4 + 1] = 1;
        Assert.Equal(new double[] { 3, 1, 1, 1 }, Rle.Encode(m, 4, 5).ToBbox());
    }

    private static HashSet<(int X, int Y)> Pixels(Rle r)
    {
        byte[] m = r.Decode();
        var s = new HashSet<(int, int)>();
        for (int x = 0; x < r.Width; x++)
            for (int y = 0; y < r.Height; y++)
                if (m[x * r.Height + y] != 0) s.Add((x, y));
        return s;
    }

    [Fact]
    public void PolygonSquareCoversItsPixels()
    {
        // square with corners (2,2)-(12,12): pixel (x,y) spans [x,x+1]x[y,y+1], so x,y in 2..11
        Rle r = Rle.FromPolygon([2, 2, 2, 12, 12, 12, 12, 2], 14, 14);
        var expected = new HashSet<(int, int)>();
        for (int x = 2; x <= 11; x++) for (int y = 2; y <= 11; y++) expected.Add((x, y));
        Assert.Equal(expected, Pixels(r));
        Assert.Equal(100, r.Area);
        Assert.Equal(new double[] { 2, 2, 10, 10 }, r.ToBbox());
        // the same square given as a box, and counter-clockwise
        Assert.Equal(r, Rle.FromBbox(2, 2, 10, 10, 14, 14));
        Assert.Equal(r, Rle.FromPolygon([2, 2, 12, 2, 12, 12, 2, 12], 14, 14));
    }

    [Fact]
    public void PolygonTriangleTakesPixelsWithCentreStrictlyInside()
    {
        // right triangle (0,0),(10,0),(0,10): centre (x+.5, y+.5) strictly below x+y=10 -> x+y <= 8 (45 pixels)
        Rle r = Rle.FromPolygon([0, 0, 10, 0, 0, 10], 12, 12);
        var expected = new HashSet<(int, int)>();
        for (int x = 0; x < 12; x++) for (int y = 0; y < 12; y++) if (x + y <= 8) expected.Add((x, y));
        Assert.Equal(expected, Pixels(r));
        Assert.Equal(45, r.Area);

        // (1,1),(9,1),(1,9): x,y >= 1 and x+y <= 8 -> 7+6+...+1 = 28 pixels
        Rle r2 = Rle.FromPolygon([1, 1, 9, 1, 1, 9], 11, 11);
        var expected2 = new HashSet<(int, int)>();
        for (int x = 1; x < 11; x++) for (int y = 1; y < 11; y++) if (x + y <= 8) expected2.Add((x, y));
        Assert.Equal(expected2, Pixels(r2));
    }

    [Fact]
    public void PolygonIsClippedToTheImage()
    {
        // box reaching past every border covers the whole 6x5 image
        Rle r = Rle.FromPolygon([-4, -4, -4, 20, 20, 20, 20, -4], 5, 6);
        Assert.Equal(30, r.Area);
        Assert.Equal(Rle.Empty(5, 6), Rle.FromPolygon([], 5, 6));
    }

    [Fact]
    public void PolygonsAreMergedByUnion()
    {
        Rle a = Rle.FromPolygon([0, 0, 0, 4, 4, 4, 4, 0], 8, 8);
        Rle b = Rle.FromPolygon([2, 2, 2, 6, 6, 6, 6, 2], 8, 8);
        Rle both = Rle.FromPolygons([new double[] { 0, 0, 0, 4, 4, 4, 4, 0 }, new double[] { 2, 2, 2, 6, 6, 6, 6, 2 }], 8, 8);
        Assert.Equal(16 + 16 - 4, both.Area);
        Assert.Equal(Rle.Union(a, b), both);
        // a first entry of four numbers means boxes [x, y, w, h] (pycocotools frPyObjects)
        Assert.Equal(Rle.FromBbox(1, 1, 3, 2, 8, 8), Rle.FromPolygons([new double[] { 1, 1, 3, 2 }], 8, 8));
    }

    [Fact]
    public void MergeUnionAndIntersection()
    {
        // 1x6 masks: a = 1 1 1 0 0 0, b = 0 0 1 1 0 1
        Rle a = Rle.Encode([1, 1, 1, 0, 0, 0], 1, 6);
        Rle b = Rle.Encode([0, 0, 1, 1, 0, 1], 1, 6);
        Assert.Equal(new byte[] { 1, 1, 1, 1, 0, 1 }, Rle.Union(a, b).Decode());
        Assert.Equal(new uint[] { 0, 4, 1, 1 }, Rle.Union(a, b).Counts);
        Assert.Equal(new byte[] { 0, 0, 1, 0, 0, 0 }, Rle.Intersection(a, b).Decode());
        Assert.Equal(new uint[] { 2, 1, 3 }, Rle.Intersection(a, b).Counts);
        Assert.Equal(a, Rle.Merge([a]));
        Assert.Throws<ArgumentException>(() => Rle.Union(a, Rle.Empty(2, 3)));
    }

    [Fact]
    public void MaskIouWithCrowd()
    {
        // 4x4: gt = left two columns (8 px), dt = first column plus the top row of column 2 (4 + 1 = 5 px)
        var gm = new byte[16];
        for (int i = 0; i < 8; i++) gm[i] = 1;
        var dm = new byte[16];
        for (int i = 0; i < 4; i++) dm[i] = 1;
        dm[8] = 1;
        Rle g = Rle.Encode(gm, 4, 4), d = Rle.Encode(dm, 4, 4);
        double[,] o = Rle.Iou([d], [g, g], [false, true]);
        Assert.Equal(4.0 / 9.0, o[0, 0]);   // union 8 + 5 - 4 = 9
        Assert.Equal(4.0 / 5.0, o[0, 1]);   // crowd: union = detection area
        Assert.Equal(0.0, Rle.Iou(Rle.Empty(4, 4), g));
        Assert.Equal(1.0, Rle.Iou(g, g));
    }

    [Fact]
    public void BoxIouUsesNoPlusOneAndCrowdUnion()
    {
        double[,] o = Rle.BoxIou([new double[] { 0, 0, 10, 10 }, new double[] { 5, 0, 10, 10 }, new double[] { 10, 0, 5, 5 }],
            [new double[] { 0, 0, 10, 10 }, new double[] { 0, 0, 20, 20 }], [false, true]);
        Assert.Equal(1.0, o[0, 0]);
        Assert.Equal(50.0 / 150.0, o[1, 0]);
        Assert.Equal(0.0, o[2, 0]);            // touching edges: zero overlap
        Assert.Equal(1.0, o[0, 1]);            // crowd: 100 / detection area 100
        Assert.Equal(1.0, o[2, 1]);
    }

    // ------------------------------------------------------------------ goldens from the reference rules

    private static JsonElement Golden(string name) => GoldenFiles.Load(name);

    private static uint[] Counts(JsonElement e) => e.EnumerateArray().Select(x => x.GetUInt32()).ToArray();

    [Fact]
    public void GoldenMasksEncodeLikeReference()
    {
        foreach (JsonElement c in Golden("rle_cases.json").GetProperty("masks").EnumerateArray())
        {
            int h = c.GetProperty("h").GetInt32(), w = c.GetProperty("w").GetInt32();
            byte[] m = c.GetProperty("mask_colmajor").EnumerateArray().Select(x => (byte)x.GetInt32()).ToArray();
            Rle r = Rle.Encode(m, h, w);
            Assert.Equal(Counts(c.GetProperty("counts")), r.Counts);
            Assert.Equal(c.GetProperty("string").GetString(), r.ToCompressedString());
            Assert.Equal(r, Rle.FromCompressedString(c.GetProperty("string").GetString()!, h, w));
            Assert.Equal(c.GetProperty("area").GetInt64(), r.Area);
            Assert.Equal(c.GetProperty("bbox").EnumerateArray().Select(x => x.GetDouble()).ToArray(), r.ToBbox());
        }
    }

    [Fact]
    public void GoldenPolygonsRasteriseLikeReference()
    {
        int n = 0;
        foreach (JsonElement c in Golden("rle_cases.json").GetProperty("polygons").EnumerateArray())
        {
            int h = c.GetProperty("h").GetInt32(), w = c.GetProperty("w").GetInt32();
            Rle r;
            if (c.TryGetProperty("xy", out JsonElement xy)) r = Rle.FromPolygon(xy.EnumerateArray().Select(x => x.GetDouble()).ToArray(), h, w);
            else
            {
                double[] b = c.GetProperty("bbox").EnumerateArray().Select(x => x.GetDouble()).ToArray();
                r = Rle.FromBbox(b[0], b[1], b[2], b[3], h, w);
            }
            Assert.Equal(Counts(c.GetProperty("counts")), r.Counts);
            Assert.Equal(c.GetProperty("string").GetString(), r.ToCompressedString());
            n++;
        }
        Assert.True(n >= 10);
    }

    [Fact]
    public void GoldenMergesAndIousMatchReference()
    {
        JsonElement g = Golden("rle_cases.json");
        foreach (JsonElement c in g.GetProperty("merges").EnumerateArray())
        {
            int h = c.GetProperty("h").GetInt32(), w = c.GetProperty("w").GetInt32();
            Rle[] ins = c.GetProperty("inputs").EnumerateArray().Select(x => new Rle(h, w, Counts(x))).ToArray();
            Assert.Equal(Counts(c.GetProperty("union")), Rle.Merge(ins, false).Counts);
            Assert.Equal(Counts(c.GetProperty("intersection")), Rle.Merge(ins, true).Counts);
        }
        foreach (JsonElement c in g.GetProperty("ious").EnumerateArray())
        {
            int h = c.GetProperty("h").GetInt32(), w = c.GetProperty("w").GetInt32();
            Rle[] dt = c.GetProperty("dt").EnumerateArray().Select(x => new Rle(h, w, Counts(x))).ToArray();
            Rle[] gt = c.GetProperty("gt").EnumerateArray().Select(x => new Rle(h, w, Counts(x))).ToArray();
            bool[] crowd = c.GetProperty("iscrowd").EnumerateArray().Select(x => x.GetInt32() != 0).ToArray();
            double[,] o = Rle.Iou(dt, gt, crowd);
            double[][] e = c.GetProperty("iou").EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetDouble()).ToArray()).ToArray();
            for (int d = 0; d < dt.Length; d++)
                for (int k = 0; k < gt.Length; k++)
                    Assert.Equal(e[d][k], o[d, k]);
        }
    }
}
