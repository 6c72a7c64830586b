using System.IO.Compression;
using System.Text.Json;
using Runtime.Vision.Imaging;
using Xunit.Abstractions;

namespace Runtime.Vision.Tests.Imaging;

/// <summary>
/// Decodes every file under golden/images/ and compares it with the pixels PIL produced at generation time
/// (golden/make_images.py): PNG and PGM/PPM exactly, JPEG within the manifest's max/mean tolerance.
/// </summary>
public class GoldenImageTests(ITestOutputHelper output)
{
    internal sealed record Entry(string File, int Width, int Height, int Channels, int Bits, int RowStep, string Compare, int TolMax, double TolMean, string Note);

    internal static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "golden", "images");

    private static readonly Lazy<Dictionary<string, Entry>> Manifest = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "manifest.json")));
        var d = new Dictionary<string, Entry>();
        foreach (var e in doc.RootElement.EnumerateArray())
            d[e.GetProperty("file").GetString()!] = new Entry(
                e.GetProperty("file").GetString()!, e.GetProperty("width").GetInt32(), e.GetProperty("height").GetInt32(),
                e.GetProperty("channels").GetInt32(), e.GetProperty("bits").GetInt32(), e.GetProperty("row_step").GetInt32(),
                e.GetProperty("compare").GetString()!, e.GetProperty("tol_max").GetInt32(), e.GetProperty("tol_mean").GetDouble(),
                e.GetProperty("note").GetString() ?? "");
        return d;
    });

    internal static Entry Lookup(string file) => Manifest.Value[file];

    public static IEnumerable<object[]> Files(string prefix) =>
        Manifest.Value.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Order().Select(k => new object[] { k });

    public static IEnumerable<object[]> PngFiles => Files("png_");
    public static IEnumerable<object[]> JpegFiles => Files("jpeg_");
    public static IEnumerable<object[]> PnmFiles => Files("pnm_");

    internal static byte[] Expected(Entry e)
    {
        using var z = new ZLibStream(File.OpenRead(Path.Combine(Dir, e.File + ".expected.z")), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        z.CopyTo(ms);
        return ms.ToArray();
    }

    [Theory]
    [MemberData(nameof(PngFiles))]
    public void Png(string file) => CheckExact(file);

    [Theory]
    [MemberData(nameof(PnmFiles))]
    public void Pnm(string file) => CheckExact(file);

    private static void CheckExact(string file)
    {
        var e = Manifest.Value[file];
        var img = Image.Load(Path.Combine(Dir, file));
        Assert.Equal((e.Width, e.Height, e.Channels), (img.Width, img.Height, img.Channels));
        var exp = Expected(e);
        if (e.Bits == 16)
        {
            Assert.True(img.Is16Bit, "expected 16-bit samples");
            var want = new ushort[exp.Length / 2];
            for (int i = 0; i < want.Length; i++) want[i] = (ushort)(exp[2 * i] | exp[2 * i + 1] << 8);
            Assert.Equal(want, img.Pixels16);
            for (int i = 0; i < want.Length; i++) Assert.Equal((byte)(want[i] >> 8), img.Pixels[i]);
        }
        else
        {
            Assert.False(img.Is16Bit);
            Assert.Equal(exp, img.Pixels);
        }
    }

    [Theory]
    [MemberData(nameof(JpegFiles))]
    public void Jpeg(string file)
    {
        var e = Manifest.Value[file];
        var img = Image.Load(Path.Combine(Dir, file));
        Assert.Equal((e.Width, e.Height, e.Channels), (img.Width, img.Height, img.Channels));
        var (max, mean, count) = Diff(img, Expected(e), e.RowStep);
        output.WriteLine($"{file}: max |diff| {max}, mean {mean:F4}, {count} samples differ");
        Assert.True(max <= e.TolMax, $"{file}: max abs diff {max} > {e.TolMax}");
        Assert.True(mean <= e.TolMean, $"{file}: mean abs diff {mean} > {e.TolMean}");
    }

    internal static (int Max, double Mean, int Count) Diff(Image img, byte[] exp, int rowStep)
    {
        int stride = img.Width * img.Channels, max = 0, count = 0;
        long sum = 0, n = 0;
        for (int y = 0, r = 0; y < img.Height; y += rowStep, r++)
            for (int i = 0; i < stride; i++)
            {
                int d = Math.Abs(img.Pixels[y * stride + i] - exp[r * stride + i]);
                if (d > max) max = d;
                if (d != 0) count++;
                sum += d; n++;
            }
        return (max, (double)sum / n, count);
    }

    [Fact]
    public void ExifOrientationCanBeTurnedOff()
    {
        foreach (int o in new[] { 3, 6, 8 })
        {
            var data = File.ReadAllBytes(Path.Combine(Dir, $"jpeg_exif_orientation{o}.jpg"));
            Assert.Equal(o, JpegDecoder.ReadExifOrientation(data));
            var raw = ImageDecoder.Decode(data, new ImageDecodeOptions { ApplyExifOrientation = false });
            Assert.Equal((32, 24), (raw.Width, raw.Height));
            var plain = ImageDecoder.Decode(File.ReadAllBytes(Path.Combine(Dir, "jpeg_exif_orientation1.jpg")));
            Assert.Equal(plain.Pixels, raw.Pixels);
            var oriented = ImageDecoder.Decode(data);
            Assert.Equal(raw.ApplyExifOrientation(o).Pixels, oriented.Pixels);
        }
    }

    [Fact]
    public void PaletteIndicesCanBeKept()
    {
        var data = File.ReadAllBytes(Path.Combine(Dir, "png_palette4_trns.png"));
        var idx = ImageDecoder.Decode(data, new ImageDecodeOptions { ExpandPalette = false });
        Assert.Equal(1, idx.Channels);
        Assert.True(idx.IsIndexed);
        Assert.True(idx.Pixels.All(b => b < 16));
        Assert.Equal(ImageDecoder.Decode(data).Pixels, idx.ToRgba().Pixels);
        // Re-encoding keeps the palette and the indices.
        var again = ImageDecoder.Decode(PngEncoder.Encode(idx), new ImageDecodeOptions { ExpandPalette = false });
        Assert.Equal(idx.Pixels, again.Pixels);
        Assert.Equal(idx.Palette, again.Palette);
    }

    [Fact]
    public void GoldenFolderIsSmall()
    {
        long total = new DirectoryInfo(Dir).EnumerateFiles().Sum(f => f.Length);
        Assert.True(total < 1_500_000, $"golden/images holds {total} bytes");
    }
}
