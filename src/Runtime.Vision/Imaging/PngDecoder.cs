using System.Buffers.Binary;
using System.IO.Compression;

namespace Runtime.Vision.Imaging;

/// <summary>
/// PNG reader: colour types 0, 2, 3, 4, 6; bit depths 1, 2, 4, 8, 16; PLTE and tRNS (palette, gray and RGB);
/// Adam7 interlace; the five filter types; any number of IDAT chunks; every chunk's CRC checked.
/// Output channels: gray 1 (2 with tRNS), gray+alpha 2, RGB 3 (4 with tRNS), RGBA 4, palette 3 or 4 (or 1 channel
/// of indices when <see cref="ImageDecodeOptions.ExpandPalette"/> is false). Gray below 8 bits is scaled to 0..255
/// (v * 255 / (2^depth - 1)); 16-bit images keep <see cref="Image.Pixels16"/>.
/// </summary>
public static class PngDecoder
{
    private static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    public static bool IsPng(ReadOnlySpan<byte> data) => data.Length >= 8 && data[..8].SequenceEqual(PngEncoder.Signature);

    public static Image Decode(ReadOnlySpan<byte> data, ImageDecodeOptions? options = null)
    {
        options ??= ImageDecodeOptions.Default;
        if (!IsPng(data)) throw new ImageFormatException("PNG: missing PNG signature");

        int width = 0, height = 0, bitDepth = 0, colorType = -1, interlace = 0;
        byte[]? plte = null;
        byte[]? trns = null;
        var idat = new MemoryStream();
        bool seenIdat = false, seenIend = false, idatEnded = false;
        int pos = 8;
        bool first = true;
        while (pos < data.Length)
        {
            if (data.Length - pos < 12) throw new ImageFormatException($"PNG: truncated chunk header at offset {pos}");
            uint len = BinaryPrimitives.ReadUInt32BigEndian(data[pos..]);
            if (len > int.MaxValue) throw new ImageFormatException($"PNG: chunk length {len} at offset {pos} is invalid");
            if (len > data.Length - pos - 12)
                throw new ImageFormatException($"PNG: chunk at offset {pos} claims {len} bytes but only {data.Length - pos - 12} remain (truncated file?)");
            var type = data.Slice(pos + 4, 4);
            var body = data.Slice(pos + 8, (int)len);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(data[(pos + 8 + (int)len)..]);
            string typeName = ChunkName(type);
            for (int i = 0; i < 4; i++)
                if (!((type[i] >= 'A' && type[i] <= 'Z') || (type[i] >= 'a' && type[i] <= 'z')))
                    throw new ImageFormatException($"PNG: invalid chunk type '{typeName}' at offset {pos}");
            if (Crc32.Update(Crc32.Update(0, type), body) != crc)
                throw new ImageFormatException($"PNG: CRC mismatch in chunk '{typeName}' at offset {pos}");
            pos += 12 + (int)len;

            if (first)
            {
                if (typeName != "IHDR") throw new ImageFormatException($"PNG: first chunk is '{typeName}', expected IHDR");
                first = false;
            }
            if (seenIdat && typeName != "IDAT") idatEnded = true;
            switch (typeName)
            {
                case "IHDR":
                    if (colorType >= 0) throw new ImageFormatException("PNG: more than one IHDR chunk");
                    if (len != 13) throw new ImageFormatException($"PNG: IHDR has {len} bytes, expected 13");
                    uint w = BinaryPrimitives.ReadUInt32BigEndian(body), h = BinaryPrimitives.ReadUInt32BigEndian(body[4..]);
                    if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue)
                        throw new ImageFormatException($"PNG: invalid image size {w}x{h}");
                    options.CheckSize("PNG", w, h);
                    width = (int)w; height = (int)h;
                    bitDepth = body[8]; colorType = body[9]; interlace = body[12];
                    bool okDepth = colorType switch
                    {
                        0 => bitDepth is 1 or 2 or 4 or 8 or 16,
                        3 => bitDepth is 1 or 2 or 4 or 8,
                        2 or 4 or 6 => bitDepth is 8 or 16,
                        _ => false,
                    };
                    if (!okDepth) throw new ImageFormatException($"PNG: invalid colour type {colorType} / bit depth {bitDepth}");
                    if (body[10] != 0) throw new ImageFormatException($"PNG: unknown compression method {body[10]}");
                    if (body[11] != 0) throw new ImageFormatException($"PNG: unknown filter method {body[11]}");
                    if (interlace > 1) throw new ImageFormatException($"PNG: unknown interlace method {interlace}");
                    break;
                case "PLTE":
                    if (seenIdat) throw new ImageFormatException("PNG: PLTE after IDAT");
                    if (len == 0 || len % 3 != 0 || len > 768) throw new ImageFormatException($"PNG: PLTE has {len} bytes (must be a multiple of 3, at most 768)");
                    plte = body.ToArray();
                    break;
                case "tRNS":
                    if (seenIdat) throw new ImageFormatException("PNG: tRNS after IDAT");
                    trns = body.ToArray();
                    break;
                case "IDAT":
                    if (idatEnded) throw new ImageFormatException("PNG: IDAT chunks are not consecutive");
                    seenIdat = true;
                    idat.Write(body);
                    break;
                case "IEND":
                    seenIend = true;
                    break;
                default:
                    if ((type[0] & 0x20) == 0) throw new ImageFormatException($"PNG: unknown critical chunk '{typeName}'");
                    break; // ancillary: ignored
            }
            if (seenIend) break;
        }
        if (colorType < 0) throw new ImageFormatException("PNG: no IHDR chunk");
        if (!seenIdat) throw new ImageFormatException("PNG: no IDAT chunk (truncated file?)");
        if (colorType == 3 && plte == null) throw new ImageFormatException("PNG: palette image without PLTE chunk");

        int channelsIn = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        int bitsPerPixel = channelsIn * bitDepth;

        // Raw (filtered) size, checked against what the compressed data could possibly hold.
        long rawSize = 0;
        if (interlace == 0) rawSize = (long)height * (1 + RowBytes(width, bitsPerPixel));
        else
            foreach (var p in Adam7)
            {
                long pw = PassSize(width, p.X0, p.Dx), ph = PassSize(height, p.Y0, p.Dy);
                if (pw > 0 && ph > 0) rawSize += ph * (1 + RowBytes(pw, bitsPerPixel));
            }
        if (rawSize > idat.Length * 1032L + 1024 || rawSize > int.MaxValue - 64)
            throw new ImageFormatException($"PNG: {idat.Length} bytes of compressed data cannot hold a {width}x{height} image (truncated or corrupt)");

        var raw = new byte[rawSize];
        Inflate(idat, raw);

        // Transparency
        int trnsGray = -1, trnsR = -1, trnsG = -1, trnsB = -1;
        if (trns != null && options.ApplyTransparency)
        {
            if (colorType == 0)
            {
                if (trns.Length < 2) throw new ImageFormatException("PNG: tRNS for a gray image needs 2 bytes");
                trnsGray = BinaryPrimitives.ReadUInt16BigEndian(trns);
            }
            else if (colorType == 2)
            {
                if (trns.Length < 6) throw new ImageFormatException("PNG: tRNS for an RGB image needs 6 bytes");
                trnsR = BinaryPrimitives.ReadUInt16BigEndian(trns); trnsG = BinaryPrimitives.ReadUInt16BigEndian(trns.AsSpan(2)); trnsB = BinaryPrimitives.ReadUInt16BigEndian(trns.AsSpan(4));
            }
        }
        byte[]? paletteRgba = null;
        if (colorType == 3)
        {
            paletteRgba = Image.ExpandRgbPalette(plte);
            if (trns != null)
            {
                if (trns.Length > plte!.Length / 3) throw new ImageFormatException($"PNG: tRNS has {trns.Length} entries, the palette {plte.Length / 3}");
                for (int i = 0; i < trns.Length; i++) paletteRgba[i * 4 + 3] = trns[i];
            }
        }

        bool expandPalette = colorType == 3 && options.ExpandPalette;
        int outCh = colorType switch
        {
            0 => trnsGray >= 0 ? 2 : 1,
            2 => trnsR >= 0 ? 4 : 3,
            3 => !options.ExpandPalette ? 1 : (trns != null ? 4 : 3),
            4 => 2,
            _ => 4,
        };
        var ctx = new Ctx
        {
            Width = width, Height = height, BitDepth = bitDepth, ChannelsIn = channelsIn, OutCh = outCh,
            Out = new byte[(long)width * height * outCh],
            Out16 = bitDepth == 16 ? new ushort[(long)width * height * outCh] : null,
            Palette = expandPalette ? paletteRgba : null, Indexed = colorType == 3 && !expandPalette, PaletteCount = (plte?.Length ?? 0) / 3,
            TrnsGray = trnsGray, TrnsR = trnsR, TrnsG = trnsG, TrnsB = trnsB,
        };

        int bpp = Math.Max(1, bitsPerPixel / 8);
        int offset = 0;
        if (interlace == 0) offset = DecodePass(raw, offset, width, height, 0, 0, 1, 1, bitsPerPixel, bpp, ctx);
        else
            foreach (var p in Adam7)
            {
                int pw = PassSize(width, p.X0, p.Dx), ph = PassSize(height, p.Y0, p.Dy);
                if (pw > 0 && ph > 0) offset = DecodePass(raw, offset, pw, ph, p.X0, p.Y0, p.Dx, p.Dy, bitsPerPixel, bpp, ctx);
            }

        Image img;
        if (ctx.Out16 != null)
        {
            img = Image.FromPixels16(width, height, outCh, ctx.Out16);
        }
        else img = new Image(width, height, outCh, ctx.Out);
        if (colorType == 3 && !options.ExpandPalette) img.SetPalette(paletteRgba!);
        return img;
    }

    private static string ChunkName(ReadOnlySpan<byte> type)
    {
        Span<char> c = stackalloc char[4];
        for (int i = 0; i < 4; i++) c[i] = type[i] >= 32 && type[i] < 127 ? (char)type[i] : '?';
        return new string(c);
    }

    private static long RowBytes(long w, int bitsPerPixel) => (w * bitsPerPixel + 7) / 8;

    private static int PassSize(int size, int start, int step) => size <= start ? 0 : (size - start + step - 1) / step;

    private static void Inflate(MemoryStream idat, byte[] raw)
    {
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            int got = 0;
            while (got < raw.Length)
            {
                int n = z.Read(raw, got, raw.Length - got);
                if (n == 0) break;
                got += n;
            }
            if (got < raw.Length)
                throw new ImageFormatException($"PNG: image data ends after {got} of {raw.Length} bytes (truncated or corrupt)");
        }
        catch (Exception e) when (e is InvalidDataException || (e is IOException && e is not ImageFormatException))
        {
            // InvalidDataException for bad deflate data; ZLibException (an IOException) for some zlib error codes.
            throw new ImageFormatException($"PNG: corrupt zlib data: {e.Message}", e);
        }
    }

    private sealed class Ctx
    {
        public int Width, Height, BitDepth, ChannelsIn, OutCh;
        public required byte[] Out;
        public ushort[]? Out16;
        public byte[]? Palette;
        public int PaletteCount;
        public bool Indexed;
        public int TrnsGray, TrnsR, TrnsG, TrnsB;
    }

    internal static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static int DecodePass(byte[] raw, int offset, int pw, int ph, int x0, int y0, int dx, int dy, int bitsPerPixel, int bpp, Ctx ctx)
    {
        int rowBytes = (int)RowBytes(pw, bitsPerPixel);
        var prevRow = new byte[rowBytes];
        for (int r = 0; r < ph; r++)
        {
            int f = raw[offset];
            var cur = raw.AsSpan(offset + 1, rowBytes);
            Unfilter(f, cur, prevRow, bpp);
            EmitRow(cur, pw, y0 + r * dy, x0, dx, ctx);
            cur.CopyTo(prevRow);
            offset += 1 + rowBytes;
        }
        return offset;
    }

    private static unsafe void UnfilterPaeth(Span<byte> cur, ReadOnlySpan<byte> prev, int bpp)
    {
        int n = cur.Length;
        fixed (byte* c = cur)
        fixed (byte* p = prev)
        {
            for (int i = bpp; i < n; i++)
            {
                int a = c[i - bpp], b = p[i], cc = p[i - bpp];
                int pa = b - cc, pb = a - cc;
                int pc = pa + pb;
                pa = pa < 0 ? -pa : pa; pb = pb < 0 ? -pb : pb; pc = pc < 0 ? -pc : pc;
                int pred = pb < pa ? b : a;
                int best = pb < pa ? pb : pa;
                pred = pc < best ? cc : pred;
                c[i] = (byte)(c[i] + pred);
            }
        }
    }

    private static void Unfilter(int f, Span<byte> cur, ReadOnlySpan<byte> prev, int bpp)
    {
        int n = cur.Length;
        switch (f)
        {
            case 0: break;
            case 1:
                for (int i = bpp; i < n; i++) cur[i] += cur[i - bpp];
                break;
            case 2:
                for (int i = 0; i < n; i++) cur[i] += prev[i];
                break;
            case 3:
                for (int i = 0; i < bpp && i < n; i++) cur[i] += (byte)(prev[i] >> 1);
                for (int i = bpp; i < n; i++) cur[i] += (byte)((cur[i - bpp] + prev[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < bpp && i < n; i++) cur[i] += prev[i];
                UnfilterPaeth(cur, prev, bpp);
                break;
            default:
                throw new ImageFormatException($"PNG: invalid filter type {f}");
        }
    }

    private static void EmitRow(ReadOnlySpan<byte> row, int pw, int y, int x0, int dx, Ctx c)
    {
        int w = c.Width, oc = c.OutCh;
        var outp = c.Out;
        int rowBase = y * w;
        if (c.BitDepth == 8)
        {
            if (c.Palette == null && c.TrnsGray < 0 && c.TrnsR < 0)
            {
                int ci = c.ChannelsIn;
                if (dx == 1) { row[..(pw * ci)].CopyTo(outp.AsSpan(rowBase * oc)); return; }
                for (int i = 0; i < pw; i++)
                {
                    int o = (rowBase + x0 + i * dx) * oc;
                    for (int k = 0; k < ci; k++) outp[o + k] = row[i * ci + k];
                }
                return;
            }
        }
        if (c.BitDepth == 16)
        {
            var o16 = c.Out16!;
            int ci = c.ChannelsIn;
            for (int i = 0; i < pw; i++)
            {
                int o = (rowBase + x0 + i * dx) * oc;
                int s = i * ci * 2;
                for (int k = 0; k < ci; k++) o16[o + k] = (ushort)(row[s + 2 * k] << 8 | row[s + 2 * k + 1]);
                if (c.TrnsGray >= 0) o16[o + 1] = o16[o] == c.TrnsGray ? (ushort)0 : (ushort)65535;
                else if (c.TrnsR >= 0)
                    o16[o + 3] = o16[o] == c.TrnsR && o16[o + 1] == c.TrnsG && o16[o + 2] == c.TrnsB ? (ushort)0 : (ushort)65535;
            }
            return;
        }
        if (c.BitDepth == 8 && c.ChannelsIn == 3) // RGB with tRNS
        {
            for (int i = 0; i < pw; i++)
            {
                int o = (rowBase + x0 + i * dx) * 4;
                byte r = row[i * 3], g = row[i * 3 + 1], b = row[i * 3 + 2];
                outp[o] = r; outp[o + 1] = g; outp[o + 2] = b;
                outp[o + 3] = r == c.TrnsR && g == c.TrnsG && b == c.TrnsB ? (byte)0 : (byte)255;
            }
            return;
        }
        // One input channel (gray or palette index), 1..8 bits.
        int depth = c.BitDepth;
        int mask = (1 << depth) - 1;
        int scale = depth == 8 ? 1 : 255 / mask;
        var pal = c.Palette;
        for (int i = 0; i < pw; i++)
        {
            int v;
            if (depth == 8) v = row[i];
            else
            {
                int bit = i * depth;
                v = (row[bit >> 3] >> (8 - depth - (bit & 7))) & mask;
            }
            int o = (rowBase + x0 + i * dx) * oc;
            if (pal != null)
            {
                if (v < c.PaletteCount)
                {
                    int p = v * 4;
                    outp[o] = pal[p]; outp[o + 1] = pal[p + 1]; outp[o + 2] = pal[p + 2];
                    if (oc == 4) outp[o + 3] = pal[p + 3];
                }
                else
                {
                    outp[o] = outp[o + 1] = outp[o + 2] = 0;
                    if (oc == 4) outp[o + 3] = 255;
                }
            }
            else if (c.Indexed) outp[o] = (byte)v;
            else
            {
                outp[o] = (byte)(v * scale);
                if (oc == 2) outp[o + 1] = v == c.TrnsGray ? (byte)0 : (byte)255;
            }
        }
    }
}
