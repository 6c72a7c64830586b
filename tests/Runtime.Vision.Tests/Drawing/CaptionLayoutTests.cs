using Runtime.Vision.Drawing;
using Runtime.Vision.Imaging;

namespace Runtime.Vision.Tests.Drawing;

public class CaptionLayoutTests
{
    private static readonly Rgb Background = new(100, 100, 100);

    private static Image Gray(int w, int h)
    {
        var img = new Image(w, h, 3);
        Array.Fill(img.Pixels, (byte)100);
        return img;
    }

    private static Rgb At(Image img, int x, int y) => new(img[x, y, 0], img[x, y, 1], img[x, y, 2]);

    /// <summary>Rows of the glyph as drawn at scale 1: '#' for a text pixel, '.' for the background.</summary>
    private static string[] Rendered(char c)
    {
        var img = Gray(7, 9);
        Draw.Text(img, 1, 1, c.ToString(), Rgb.Black);
        var rows = new string[BitmapFont.GlyphHeight];
        for (int y = 0; y < rows.Length; y++)
        {
            var row = new char[BitmapFont.GlyphWidth];
            for (int x = 0; x < row.Length; x++) row[x] = At(img, 1 + x, 1 + y) == Rgb.Black ? '#' : '.';
            rows[y] = new string(row);
        }
        return rows;
    }

    [Fact]
    public void LowerCaseGIsNotANine()
    {
        // 'g' sits on the lower-case rows (top two blank) with a closed bowl and a hook below it;
        // '9' starts in the top row with a round head and a tail curling left.
        Assert.Equal([".....", ".....", ".####", "#...#", ".####", "....#", ".###."], Rendered('g'));
        Assert.Equal([".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."], Rendered('9'));
        // The other descenders keep to the same rows and differ from 'g' and from each other.
        Assert.Equal([".....", ".....", "####.", "#...#", "####.", "#....", "#...."], Rendered('p'));
        Assert.Equal([".....", ".....", ".##.#", "#..##", ".####", "....#", "....#"], Rendered('q'));
        Assert.Equal([".....", ".....", "#...#", "#...#", ".####", "....#", ".###."], Rendered('y'));
        Assert.Equal(["...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."], Rendered('j'));
    }

    [Fact]
    public void NeighbouringCaptionsGetDisjointRectangles()
    {
        // Both captions would go 9 pixels above their boxes, 49 wide: [10, 59) and [20, 69) x [21, 30)
        // overlap. The first keeps that spot; the second moves inside its box's top edge.
        var img = Gray(100, 80);
        var red = new Rgb(255, 0, 0);
        var yellow = new Rgb(255, 225, 25);
        DrawBox[] boxes = [new(10, 30, 40, 60, "cat", 0.9f, red), new(20, 30, 50, 60, "dog", 0.8f, yellow)];
        var rects = Draw.Captions(img, boxes);
        Assert.Equal(new PixelRect(10, 21, 49, 9), rects[0]);
        Assert.Equal(new PixelRect(20, 30, 49, 9), rects[1]);
        Assert.False(rects[0]!.Value.Overlaps(rects[1]!.Value));

        // Every pixel of both captions is there: the text colour on the glyphs, the box colour around them.
        AssertCaption(img, rects[0]!.Value, "cat 0.90", red, Rgb.White);
        AssertCaption(img, rects[1]!.Value, "dog 0.80", yellow, Rgb.Black);
        Assert.Equal(Background, At(img, 9, 25));
        Assert.Equal(Background, At(img, 69, 35));

        // Boxes draws the same captions over the boxes' edges.
        var drawn = Gray(100, 80);
        Draw.Boxes(drawn, boxes);
        AssertCaption(drawn, rects[0]!.Value, "cat 0.90", red, Rgb.White);
        AssertCaption(drawn, rects[1]!.Value, "dog 0.80", yellow, Rgb.Black);
        Assert.Equal(red, At(drawn, 10, 45));
    }

    private static void AssertCaption(Image img, PixelRect rect, string text, Rgb background, Rgb ink)
    {
        for (int y = rect.Y; y < rect.Bottom; y++)
            for (int x = rect.X; x < rect.Right; x++)
            {
                int dx = x - rect.X - 1, dy = y - rect.Y - 1;
                int k = dx >= 0 ? dx / (BitmapFont.GlyphWidth + 1) : -1, col = dx >= 0 ? dx % (BitmapFont.GlyphWidth + 1) : -1;
                bool set = k >= 0 && k < text.Length && BitmapFont.IsSet(text[k], col, dy);
                Assert.Equal(set ? ink : background, At(img, x, y));
            }
    }

    [Fact]
    public void ACrowdedColumnFillsDownwardsThenSettlesForTheLeastOverlap()
    {
        // Eight captions 7x9 for the same box [5, 40) x [5, 40) on a 64x64 image. No room above
        // (5 < 9): inside the top edge at 5, below the box at 40, then down from the box's top
        // under the captions already there: 14, 23; 32 would touch the one at 40, so 49.
        var boxes = Enumerable.Repeat(new PixelRect(5, 5, 35, 35), 8).ToArray();
        var sizes = Enumerable.Repeat((7, 9), 8).ToArray();
        var rects = CaptionLayout.Place(64, 64, boxes, sizes);
        Assert.Equal([5, 40, 14, 23, 49], rects.Take(5).Select(r => r.Y));
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < i; j++) Assert.False(rects[i].Overlaps(rects[j]));
        // The column is then full; the rest still land inside the image, all 7 wide at x = 5.
        Assert.All(rects, r => Assert.True(r is { X: 5, Width: 7, Height: 9, Y: >= 0 } && r.Bottom <= 64));
    }

    [Fact]
    public void ThirtyDetectionsOnA256ImageKeepTheirCaptionsApartAndInside()
    {
        var rng = new Random(12);
        var boxes = new DrawBox[30];
        for (int i = 0; i < boxes.Length; i++)
        {
            float x = rng.Next(-20, 240), y = rng.Next(-20, 240);
            boxes[i] = new DrawBox(x, y, x + rng.Next(8, 80), y + rng.Next(8, 80), $"class{i % 7}", (float)rng.NextDouble());
        }
        var img = Gray(256, 256);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Draw.Boxes(img, boxes);
        var rects = Draw.Captions(Gray(256, 256), boxes).Select(r => r!.Value).ToArray();
        Assert.InRange(watch.ElapsedMilliseconds, 0, 2000);
        foreach (var r in rects)
        {
            Assert.Equal((BitmapFont.MeasureWidth("class0 0.00") + 2, 9), (r.Width, r.Height));
            Assert.True(r.X >= 0 && r.Y >= 0 && r.Right <= 256 && r.Bottom <= 256, $"{r} leaves the image");
        }
        for (int i = 0; i < rects.Length; i++)
            for (int j = 0; j < i; j++) Assert.False(rects[i].Overlaps(rects[j]), $"captions {j} and {i} overlap");

        // Each caption simply above its box (inside at the top edge) would have collided.
        var naive = boxes.Select(b =>
        {
            int w = rects[0].Width, x = Math.Clamp((int)b.X1, 0, 256 - w), y = (int)b.Y1;
            return new PixelRect(x, y - 9 >= 0 ? y - 9 : Math.Max(0, y), w, 9);
        }).ToArray();
        int collisions = 0;
        for (int i = 0; i < naive.Length; i++)
            for (int j = 0; j < i; j++) collisions += naive[i].Overlaps(naive[j]) ? 1 : 0;
        Assert.True(collisions >= 5, $"{collisions} collisions");
    }

    [Fact]
    public void ManyCaptionsOnOneSpotStillFinishInsideTheImage()
    {
        var boxes = Enumerable.Repeat(new PixelRect(100, 100, 20, 20), 400).ToArray();
        var sizes = Enumerable.Repeat((60, 9), 400).ToArray();
        var rects = CaptionLayout.Place(128, 128, boxes, sizes);
        // 128 rows hold 14 captions of 9; each is moved left to fit (128 - 60 = 68).
        Assert.Equal(14, rects.Take(14).Select(r => r.Y).Distinct().Count());
        Assert.All(rects, r => Assert.True(r is { X: 68, Y: >= 0, Bottom: <= 128 }));
    }
}
