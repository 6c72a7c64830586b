using Runtime.Vision.Data;
using Runtime.Vision.Drawing;
using Runtime.Vision.Imaging;
using Runtime.Vision.Tests.Data;

namespace Runtime.Vision.Tests.Drawing;

public class DrawingTests
{
    private static Image Gray(int w, int h)
    {
        var img = new Image(w, h, 3);
        Array.Fill(img.Pixels, (byte)100);
        return img;
    }

    private static Rgb At(Image img, int x, int y) => new(img[x, y, 0], img[x, y, 1], img[x, y, 2]);

    [Fact]
    public void BoxEdgesHaveTheBoxColourInTheSavedPng()
    {
        using var tmp = new TempFolder();
        var img = Gray(64, 48);
        var red = new Rgb(255, 0, 0);
        Draw.Boxes(img, [new DrawBox(10, 20, 40, 30, Color: red)], thickness: 2);
        var path = tmp["box.png"];
        img.Save(path);
        var back = Image.Load(path);
        Assert.Equal((64, 48, 3), (back.Width, back.Height, back.Channels));
        // Edges are the 2 pixels just inside [10, 40) x [20, 30).
        foreach (var (x, y) in new[] { (10, 20), (11, 25), (39, 29), (38, 22), (25, 20), (25, 21), (25, 28), (25, 29) })
            Assert.Equal(red, At(back, x, y));
        foreach (var (x, y) in new[] { (9, 20), (40, 25), (25, 19), (25, 30), (25, 25), (12, 22) })
            Assert.Equal(new Rgb(100, 100, 100), At(back, x, y));
    }

    [Fact]
    public void CaptionsUseTheFontAndStayInsideTheImage()
    {
        var img = Gray(60, 30);
        Draw.Boxes(img, [new DrawBox(2, 2, 20, 20, "cat", 0.875f, new Rgb(0, 0, 255))]);
        // Box at the top edge: the caption goes inside, on a blue background with white text.
        int w = BitmapFont.MeasureWidth("cat 0.88") + 2;
        Assert.Equal(new Rgb(0, 0, 255), At(img, 2, 2));
        Assert.Equal(new Rgb(0, 0, 255), At(img, 2 + w - 1, 2));
        int white = 0;
        for (int y = 2; y < 11; y++)
            for (int x = 2; x < 2 + w; x++)
                if (At(img, x, y) == Rgb.White) white++;
        Assert.InRange(white, 20, 200);
        Assert.Equal(47, BitmapFont.MeasureWidth("cat 0.88"));
    }

    [Fact]
    public void FontGlyphsAreThe5x7Shapes()
    {
        // 'I': a full middle column, bars at the top and bottom.
        for (int row = 0; row < 7; row++) Assert.True(BitmapFont.IsSet('I', 2, row));
        Assert.True(BitmapFont.IsSet('I', 1, 0) && BitmapFont.IsSet('I', 3, 6));
        Assert.False(BitmapFont.IsSet('I', 0, 3));
        for (int col = 0; col < 5; col++)
            for (int row = 0; row < 7; row++) Assert.False(BitmapFont.IsSet(' ', col, row));
        // Unknown characters draw as '?'.
        Assert.Equal(BitmapFont.IsSet('?', 2, 3), BitmapFont.IsSet('\u00e9', 2, 3));
        var img = Gray(20, 10);
        Draw.Text(img, 1, 1, "I", Rgb.Black, scale: 2);
        Assert.Equal(Rgb.Black, At(img, 1 + 4, 1 + 6)); // middle column (2) at scale 2, row 3
        Assert.Equal(new Rgb(100, 100, 100), At(img, 1, 1 + 6));
    }

    [Fact]
    public void MasksAreTranslucentWithSolidOutlines()
    {
        var img = Gray(10, 10);
        var mask = new byte[100];
        for (int y = 2; y < 8; y++)
            for (int x = 2; x < 8; x++) mask[y * 10 + x] = 1;
        var green = new Rgb(0, 200, 0);
        Draw.Masks(img, mask, 1, alpha: 0.5, colors: [green]);
        Assert.Equal(green, At(img, 2, 2)); // boundary
        Assert.Equal(new Rgb(50, 150, 50), At(img, 4, 4)); // inside: half way
        Assert.Equal(new Rgb(100, 100, 100), At(img, 1, 1));
        using var t = Tensor.From<byte>(mask, [1, 10, 10]);
        var img2 = Gray(10, 10);
        Draw.Masks(img2, t, 0.5, [green]);
        Assert.Equal(img.Pixels, img2.Pixels);
    }

    [Fact]
    public void PanopticMapsColourSegmentsAndOutlineThings()
    {
        var img = Gray(8, 4);
        var ids = new int[32];
        for (int i = 0; i < 32; i++) ids[i] = i % 8 < 4 ? 5 : 9; // left half segment 5 (a thing), right half 9 (stuff)
        Draw.Panoptic(img, ids, alpha: 1, thingIds: new HashSet<int> { 5 }, colorOf: id => id == 5 ? new Rgb(10, 20, 30) : new Rgb(40, 50, 60));
        Assert.Equal(new Rgb(10, 20, 30), At(img, 1, 1));
        Assert.Equal(Rgb.White, At(img, 3, 1)); // thing pixel next to another segment
        Assert.Equal(new Rgb(40, 50, 60), At(img, 4, 1)); // stuff boundaries are not drawn
        Assert.Equal(new Rgb(40, 50, 60), At(img, 7, 3));
    }

    [Fact]
    public void DrawsAGeneratedSampleToAPngOfTheImageSize()
    {
        using var tmp = new TempFolder();
        var files = ShapesDataset.Generate(tmp["set"], 1, 3, new ShapesOptions { MinImageSize = 64, MaxImageSize = 80 });
        var ds = new CocoDetection(files.ImageFolder, files.InstancesJson);
        using var s = ds.Get(0);
        var drawn = Visualize.Sample(s, ds.Categories.Names);
        drawn.Save(tmp["gt.png"]);
        var back = Image.Load(tmp["gt.png"]);
        Assert.Equal((s.Width, s.Height), (back.Width, back.Height));
        // The first instance's bottom edge is drawn in palette colour 0 wherever no caption covers it.
        var b = s.Target.Boxes.ToArray<float>();
        var labels = s.Target.Labels.ToArray<long>();
        var captions = Draw.Captions(Draw.ToImage(s.Image), Enumerable.Range(0, labels.Length)
            .Select(i => new DrawBox(b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3], ds.Categories.Names[(int)labels[i]])).ToList());
        int bottom = (int)MathF.Round(b[3]) - 1, uncovered = 0;
        for (int x = (int)MathF.Round(b[0]); x < (int)MathF.Round(b[2]); x++)
        {
            if (captions.Any(r => r!.Value.Overlaps(new PixelRect(x, bottom, 1, 1)))) continue;
            Assert.Equal(Palette.Get(0), At(back, x, bottom));
            uncovered++;
        }
        Assert.True(uncovered > 0);
    }
}
