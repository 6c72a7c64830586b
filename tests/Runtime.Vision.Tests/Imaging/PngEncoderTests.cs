using System.Buffers.Binary;
using Runtime.Vision.Imaging;

namespace Runtime.Vision.Tests.Imaging;

public class PngEncoderTests
{
    private static Image Random(int w, int h, int c, int seed, bool smooth = false)
    {
        var rng = new Random(seed);
        var px = new byte[w * h * c];
        if (!smooth) rng.NextBytes(px);
        else
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int k = 0; k < c; k++) px[(y * w + x) * c + k] = (byte)(x * 3 + y * 5 + k * 40 + rng.Next(4));
        return new Image(w, h, c, px);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void RoundTrip8Bit(int channels)
    {
        foreach (bool smooth in new[] { false, true })
            foreach (var filter in new[] { PngFilterStrategy.Adaptive, PngFilterStrategy.None, PngFilterStrategy.Sub, PngFilterStrategy.Up, PngFilterStrategy.Average, PngFilterStrategy.Paeth })
            {
                var img = Random(37, 23, channels, channels * 7 + (int)filter, smooth);
                var bytes = PngEncoder.Encode(img, 6, filter);
                var back = PngDecoder.Decode(bytes);
                Assert.Equal((img.Width, img.Height, img.Channels), (back.Width, back.Height, back.Channels));
                Assert.Equal(img.Pixels, back.Pixels);
                Assert.False(back.Is16Bit);
                CheckChunks(bytes);
            }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void RoundTrip16Bit(int channels)
    {
        var rng = new Random(channels);
        var s = new ushort[19 * 11 * channels];
        for (int i = 0; i < s.Length; i++) s[i] = (ushort)rng.Next(65536);
        var img = Image.FromPixels16(19, 11, channels, s);
        var back = PngDecoder.Decode(PngEncoder.Encode(img));
        Assert.True(back.Is16Bit);
        Assert.Equal(s, back.Pixels16);
        Assert.Equal(img.Pixels, back.Pixels);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(16)]
    [InlineData(200)]
    public void RoundTripPalette(int entries)
    {
        var rng = new Random(entries);
        var pal = new byte[entries * 4];
        rng.NextBytes(pal);
        pal[3] = 0; // one transparent entry
        var idx = new byte[29 * 13];
        for (int i = 0; i < idx.Length; i++) idx[i] = (byte)rng.Next(entries);
        var img = Image.FromIndexed(29, 13, idx, pal, paletteHasAlpha: true);
        var bytes = PngEncoder.Encode(img);
        var kept = PngDecoder.Decode(bytes, new ImageDecodeOptions { ExpandPalette = false });
        Assert.Equal(idx, kept.Pixels);
        Assert.Equal(pal, kept.Palette);
        var rgba = PngDecoder.Decode(bytes);
        Assert.Equal(4, rgba.Channels);
        Assert.Equal(img.ToRgba().Pixels, rgba.Pixels);
        Assert.Equal(bytes[24], entries <= 2 ? 1 : entries <= 4 ? 2 : entries <= 16 ? 4 : 8); // IHDR bit depth
    }

    [Fact]
    public void CompressionLevelsAllDecode()
    {
        var img = Random(64, 48, 3, 1, smooth: true);
        int? stored = null, best = null;
        for (int level = 0; level <= 9; level++)
        {
            var bytes = PngEncoder.Encode(img, level);
            Assert.Equal(img.Pixels, PngDecoder.Decode(bytes).Pixels);
            if (level == 0) stored = bytes.Length;
            if (level == 9) best = bytes.Length;
        }
        Assert.True(best < stored);
    }

    [Fact]
    public void SaveIsAtomicAndLoads()
    {
        string dir = Path.Combine(Path.GetTempPath(), "imaging-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "a.png");
            var img = Random(10, 7, 3, 5);
            img.Save(path);
            var img2 = Random(10, 7, 4, 6);
            img2.Save(path); // overwrite
            Assert.Equal(img2.Pixels, Image.Load(path).Pixels);
            Assert.Single(Directory.GetFiles(dir)); // no temporary left behind
            img.Save(Path.Combine(dir, "b.ppm"));
            Assert.Equal(img.Pixels, Image.Load(Path.Combine(dir, "b.ppm")).Pixels);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>Walks the chunks: lengths, CRCs (recomputed independently) and IHDR first / IEND last.</summary>
    private static void CheckChunks(byte[] png)
    {
        Assert.Equal(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }, png[..8]);
        int pos = 8;
        var types = new List<string>();
        while (pos < png.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(png, pos + 4, 4);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + len));
            Assert.Equal(ReferenceCrc(png.AsSpan(pos + 4, 4 + len)), crc);
            types.Add(type);
            pos += 12 + len;
        }
        Assert.Equal(png.Length, pos);
        Assert.Equal("IHDR", types[0]);
        Assert.Equal("IEND", types[^1]);
    }

    private static uint ReferenceCrc(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }
}
