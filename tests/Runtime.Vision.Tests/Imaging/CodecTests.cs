using System.Buffers.Binary;
using System.Text;
using Runtime;
using Runtime.Vision.Imaging;

namespace Runtime.Vision.Tests.Imaging;

public class CodecTests
{
    private static byte[] Golden(string name) => File.ReadAllBytes(Path.Combine(GoldenImageTests.Dir, name));

    private static byte[] Chunk(string type, byte[] body)
    {
        var b = new byte[12 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, body.Length);
        Encoding.ASCII.GetBytes(type).CopyTo(b, 4);
        body.CopyTo(b, 8);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8 + body.Length), Crc32.Compute(b.AsSpan(4, 4 + body.Length)));
        return b;
    }

    private static byte[] Ihdr(uint w, uint h, byte depth = 8, byte type = 2, byte interlace = 0)
    {
        var b = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(b, w);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), h);
        b[8] = depth; b[9] = type; b[12] = interlace;
        return b;
    }

    private static readonly byte[] Sig = [137, 80, 78, 71, 13, 10, 26, 10];

    private static void Rejects(byte[] data, string messagePart, ImageDecodeOptions? options = null)
    {
        var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(data, options));
        Assert.Contains(messagePart, e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void PngErrorsAreImageFormatExceptions()
    {
        var good = Golden("png_pil_rgb8.png");
        var badCrc = (byte[])good.Clone();
        badCrc[20] ^= 1; // inside IHDR
        Rejects(badCrc, "CRC");
        Rejects(good[..40], "truncated");
        Rejects([.. Sig, .. Chunk("IEND", [])], "IHDR");
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(4, 4)), .. Chunk("IEND", [])], "no IDAT");
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(4, 4, depth: 4, type: 2)), .. Chunk("IDAT", [1]), .. Chunk("IEND", [])], "bit depth");
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(4, 4, interlace: 2)), .. Chunk("IDAT", [1]), .. Chunk("IEND", [])], "interlace");
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(0, 4)), .. Chunk("IEND", [])], "size");
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(70000, 70000)), .. Chunk("IDAT", [1]), .. Chunk("IEND", [])], "exceeds");
        // A header promising far more pixels than the compressed data could hold: rejected before allocating.
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(10000, 10000)), .. Chunk("IDAT", [0x78, 0x9C, 3, 0]), .. Chunk("IEND", [])], "cannot hold");
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(4, 4)), .. Chunk("ABCD", []), .. Chunk("IDAT", [1]), .. Chunk("IEND", [])], "critical");
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(2, 2, type: 3)), .. Chunk("IDAT", [1]), .. Chunk("IEND", [])], "PLTE");
        // A bad filter type byte inside otherwise valid zlib data.
        var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Fastest, true)) zs.Write(new byte[] { 7, 1, 2, 3, 0, 1, 2, 3 });
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(1, 2)), .. Chunk("IDAT", z.ToArray()), .. Chunk("IEND", [])], "filter");
        // Corrupt zlib data.
        Rejects([.. Sig, .. Chunk("IHDR", Ihdr(1, 1)), .. Chunk("IDAT", [0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0xFF]), .. Chunk("IEND", [])], "PNG");
        // The limit is configurable.
        Rejects(good, "exceeds", new ImageDecodeOptions { MaxPixels = 100 });
    }

    [Fact]
    public void PngMissingIendIsAccepted()
    {
        var good = Golden("png_pil_rgb8.png");
        var img = ImageDecoder.Decode(good[..^12]);
        Assert.Equal(ImageDecoder.Decode(good).Pixels, img.Pixels);
    }

    [Fact]
    public void JpegErrorsAreImageFormatExceptions()
    {
        var good = Golden("jpeg_q75_420.jpg");
        Rejects(good[..3], "JPEG");
        Rejects(good[..200], "JPEG");
        Rejects(good[..(good.Length / 2)], "ends early");
        // SOF9 (arithmetic coding) and 12-bit SOF1.
        var arith = (byte[])good.Clone();
        int sof = IndexOfMarker(arith, 0xC0);
        arith[sof + 1] = 0xC9;
        Rejects(arith, "arithmetic");
        var twelve = (byte[])good.Clone();
        twelve[sof + 4] = 12;
        Rejects(twelve, "12-bit");
        // A frame header promising a huge image in a small file.
        var huge = (byte[])good.Clone();
        huge[sof + 5] = 0x3F; huge[sof + 6] = 0xFF; huge[sof + 7] = 0x3F; huge[sof + 8] = 0xFF;
        Rejects(huge, "cannot hold");
        Rejects(good, "exceeds", new ImageDecodeOptions { MaxPixels = 1000 });
    }

    private static int IndexOfMarker(byte[] d, byte m)
    {
        for (int i = 0; i + 1 < d.Length; i++) if (d[i] == 0xFF && d[i + 1] == m) return i;
        throw new InvalidOperationException("marker not found");
    }

    [Fact]
    public void JpegWithoutEoiDecodes()
    {
        var good = Golden("jpeg_q75_420.jpg");
        Assert.Equal(ImageDecoder.Decode(good).Pixels, ImageDecoder.Decode(good[..^2]).Pixels);
    }

    [Fact]
    public void UnknownAndEmptyDataAreRejected()
    {
        Rejects([], "empty");
        Rejects("GIF89a......"u8.ToArray(), "unknown image format");
        Assert.Equal(ImageFormat.Png, ImageDecoder.DetectFormat(Golden("png_la8.png")));
        Assert.Equal(ImageFormat.Jpeg, ImageDecoder.DetectFormat(Golden("jpeg_gray.jpg")));
        Assert.Equal(ImageFormat.Pnm, ImageDecoder.DetectFormat(Golden("pnm_p3_255.ppm")));
    }

    [Theory]
    [InlineData(1, false, false)]
    [InlineData(3, false, false)]
    [InlineData(1, true, false)]
    [InlineData(3, true, false)]
    [InlineData(1, false, true)]
    [InlineData(3, true, true)]
    public void PnmRoundTrip(int channels, bool ascii, bool wide)
    {
        var rng = new Random(channels * 4 + (ascii ? 2 : 0) + (wide ? 1 : 0));
        Image img;
        if (wide)
        {
            var s = new ushort[13 * 7 * channels];
            for (int i = 0; i < s.Length; i++) s[i] = (ushort)rng.Next(65536);
            img = Image.FromPixels16(13, 7, channels, s);
        }
        else
        {
            var px = new byte[13 * 7 * channels];
            rng.NextBytes(px);
            img = new Image(13, 7, channels, px);
        }
        var back = ImageDecoder.Decode(PnmCodec.Encode(img, ascii));
        Assert.Equal((13, 7, channels), (back.Width, back.Height, back.Channels));
        Assert.Equal(img.Pixels, back.Pixels);
        Assert.Equal(img.Pixels16, back.Pixels16);
    }

    [Fact]
    public void PnmErrors()
    {
        Rejects("P5\n2 2\n255\n\x01\x02\x03"u8.ToArray(), "truncated");
        Rejects("P2\n2 1\n15\n3 16\n"u8.ToArray(), "exceeds maxval");
        Rejects("P5\n2 2\n0\n\x01\x02\x03\x04"u8.ToArray(), "maxval");
        Rejects("P5\n2 2\n70000\n"u8.ToArray(), "maxval");
        Rejects("P6\n99999999999 2\n255\n"u8.ToArray(), "too large");
        Rejects("P3\n2 x\n255\n"u8.ToArray(), "number");
        Rejects("P2\n2 1\n255\n1\n"u8.ToArray(), "PNM");
    }

    [Fact]
    public void TensorConversions()
    {
        var px = new byte[] { 0, 255, 10, 20, 30, 40, 51, 102, 153, 204, 1, 2 }; // 2x2 RGB
        var img = new Image(2, 2, 3, px);
        using var t = img.ToTensor();
        Assert.Equal(new[] { 3, 2, 2 }, t.Shape.ToArray());
        Assert.Equal(DType.Float32, t.DType);
        var v = t.ToArray<float>();
        // CHW: channel 0 is R of the 4 pixels.
        Assert.Equal(new[] { 0f, 20 / 255f, 51 / 255f, 204 / 255f }, v[..4]);
        using var raw = img.ToTensor(scale01: false);
        Assert.Equal(new[] { 255f, 30f, 102f, 1f }, raw.ToArray<float>()[4..8]);
        Assert.Equal(px, Image.FromTensor(t).Pixels);
        Assert.Equal(px, Image.FromTensor(raw, scale01: false).Pixels);
        using var hwc = img.ToTensorHwc(scale01: false);
        Assert.Equal(new[] { 2, 2, 3 }, hwc.Shape.ToArray());
        Assert.Equal(px.Select(b => (float)b).ToArray(), hwc.ToArray<float>());

        // Clamping and rounding; a 2-D tensor is a gray image.
        using var g = Tensor.From<float>([-0.5f, 0.5f / 255f, 1.5f / 255f, 2f], [2, 2]);
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, Image.FromTensor(g).Pixels);

        // 16-bit images use their full precision.
        var img16 = Image.FromPixels16(1, 1, 1, [65535]);
        using var t16 = img16.ToTensor();
        Assert.Equal(1f, t16.ToArray<float>()[0]);
        using var t16raw = img16.ToTensor(scale01: false);
        Assert.Equal(65535f, t16raw.ToArray<float>()[0]);
    }

    [Fact]
    public void ColourConversions()
    {
        var rgb = new Image(2, 1, 3, [255, 0, 0, 10, 200, 30]);
        var gray = rgb.ToGray();
        Assert.Equal(new byte[] { 76, (10 * 19595 + 200 * 38470 + 30 * 7471 + 0x8000) >> 16 }, gray.Pixels);
        Assert.Equal(new byte[] { 255, 0, 0, 255, 10, 200, 30, 255 }, rgb.ToRgba().Pixels);
        Assert.Equal(new byte[] { 76, 76, 76, 124, 124, 124 }, gray.ToRgb().Pixels);
        var la = new Image(1, 1, 2, [9, 99]);
        Assert.Equal(new byte[] { 9, 9, 9, 99 }, la.ToRgba().Pixels);
        Assert.Same(rgb, rgb.ToRgb());
        var rgb16 = Image.FromPixels16(1, 1, 3, [1000, 2000, 3000]);
        Assert.Equal(new ushort[] { 1000, 2000, 3000, 65535 }, rgb16.ToRgba().Pixels16);
    }

    [Fact]
    public void ExifOrientationGeometry()
    {
        // 3x2 image with distinct values: value = 10*y + x.
        var img = new Image(3, 2, 1, [0, 1, 2, 10, 11, 12]);
        Assert.Equal(new byte[] { 2, 1, 0, 12, 11, 10 }, img.ApplyExifOrientation(2).Pixels);
        Assert.Equal(new byte[] { 12, 11, 10, 2, 1, 0 }, img.ApplyExifOrientation(3).Pixels);
        Assert.Equal(new byte[] { 10, 11, 12, 0, 1, 2 }, img.ApplyExifOrientation(4).Pixels);
        var t = img.ApplyExifOrientation(5); // transpose
        Assert.Equal((2, 3), (t.Width, t.Height));
        Assert.Equal(new byte[] { 0, 10, 1, 11, 2, 12 }, t.Pixels);
        Assert.Equal(new byte[] { 10, 0, 11, 1, 12, 2 }, img.ApplyExifOrientation(6).Pixels); // 90 clockwise
        Assert.Equal(new byte[] { 12, 2, 11, 1, 10, 0 }, img.ApplyExifOrientation(7).Pixels);
        Assert.Equal(new byte[] { 2, 12, 1, 11, 0, 10 }, img.ApplyExifOrientation(8).Pixels); // 90 counter-clockwise
        Assert.Same(img, img.ApplyExifOrientation(1));
    }
}
