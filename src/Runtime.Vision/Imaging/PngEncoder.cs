using System.Buffers.Binary;
using System.IO.Compression;

namespace Runtime.Vision.Imaging;

/// <summary>How <see cref="PngEncoder"/> picks each row's filter.</summary>
public enum PngFilterStrategy
{
    /// <summary>Per row, the filter whose output has the minimum sum of absolute values (as signed bytes) — libpng's heuristic. Palette and sub-8-bit images use None.</summary>
    Adaptive = -1,
    None = 0,
    Sub = 1,
    Up = 2,
    Average = 3,
    Paeth = 4,
}

/// <summary>
/// PNG writer. Colour type follows the image: 1 channel gray (or palette when <see cref="Image.Palette"/> is set,
/// packed to 1/2/4 bits when the palette is small), 2 gray+alpha, 3 RGB, 4 RGBA; bit depth 16 when the image has
/// <see cref="Image.Pixels16"/>, else 8. Not interlaced.
/// </summary>
public static class PngEncoder
{
    internal static ReadOnlySpan<byte> Signature => [137, 80, 78, 71, 13, 10, 26, 10];

    private const int IdatChunkSize = 1 << 18;

    /// <summary>Encodes <paramref name="image"/>; <paramref name="compressionLevel"/> is zlib's 0 (store) .. 9 (smallest), default 6.</summary>
    public static byte[] Encode(Image image, int compressionLevel = 6, PngFilterStrategy filter = PngFilterStrategy.Adaptive)
    {
        using var ms = new MemoryStream();
        Encode(image, ms, compressionLevel, filter);
        return ms.ToArray();
    }

    /// <summary>Encodes to <paramref name="path"/> atomically (temporary file in the same folder, then moved over the target).</summary>
    public static void Save(Image image, string path, int compressionLevel = 6, PngFilterStrategy filter = PngFilterStrategy.Adaptive) =>
        Image.WriteAtomic(path, Encode(image, compressionLevel, filter));

    public static void Encode(Image image, Stream output, int compressionLevel = 6, PngFilterStrategy filter = PngFilterStrategy.Adaptive)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfLessThan(compressionLevel, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(compressionLevel, 9);
        if (filter is < PngFilterStrategy.Adaptive or > PngFilterStrategy.Paeth)
            throw new ArgumentOutOfRangeException(nameof(filter));

        int w = image.Width, h = image.Height, ch = image.Channels;
        byte colorType;
        int bitDepth;
        byte[]? palette = image.Palette;
        if (palette != null)
        {
            colorType = 3;
            int n = palette.Length / 4;
            int maxIndex = 0;
            foreach (byte b in image.Pixels) if (b > maxIndex) maxIndex = b;
            if (maxIndex >= n)
                throw new ArgumentException($"pixel index {maxIndex} is past the {n}-entry palette", nameof(image));
            bitDepth = n <= 2 ? 1 : n <= 4 ? 2 : n <= 16 ? 4 : 8;
        }
        else
        {
            colorType = ch switch { 1 => (byte)0, 2 => (byte)4, 3 => (byte)2, _ => (byte)6 };
            bitDepth = image.Is16Bit ? 16 : 8;
        }

        output.Write(Signature);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, w);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], h);
        ihdr[8] = (byte)bitDepth; ihdr[9] = colorType; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
        WriteChunk(output, "IHDR"u8, ihdr);
        if (palette != null)
        {
            int n = palette.Length / 4;
            var plte = new byte[n * 3];
            int trnsLen = 0;
            for (int i = 0; i < n; i++)
            {
                plte[i * 3] = palette[i * 4]; plte[i * 3 + 1] = palette[i * 4 + 1]; plte[i * 3 + 2] = palette[i * 4 + 2];
                if (palette[i * 4 + 3] != 255) trnsLen = i + 1;
            }
            WriteChunk(output, "PLTE"u8, plte);
            if (trnsLen > 0)
            {
                var trns = new byte[trnsLen];
                for (int i = 0; i < trnsLen; i++) trns[i] = palette[i * 4 + 3];
                WriteChunk(output, "tRNS"u8, trns);
            }
        }

        int samplesPerPixel = palette != null ? 1 : ch;
        int rowBytes = (int)(((long)w * samplesPerPixel * bitDepth + 7) / 8);
        int bpp = Math.Max(1, samplesPerPixel * bitDepth / 8);
        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, new ZLibCompressionOptions { CompressionLevel = compressionLevel }, leaveOpen: true))
        {
            var prev = new byte[rowBytes];
            var cur = new byte[rowBytes];
            var outRow = new byte[rowBytes + 1];
            var trial = filter == PngFilterStrategy.Adaptive ? new byte[rowBytes + 1] : null;
            bool adaptive = filter == PngFilterStrategy.Adaptive && palette == null && bitDepth >= 8;
            var fixedFilter = filter == PngFilterStrategy.Adaptive ? PngFilterStrategy.None : filter;
            for (int y = 0; y < h; y++)
            {
                FillRow(image, y, bitDepth, cur);
                if (adaptive)
                {
                    long best = long.MaxValue;
                    for (int f = 0; f <= 4; f++)
                    {
                        long cost = ApplyFilter(f, cur, prev, bpp, trial!);
                        if (cost < best) { best = cost; Buffer.BlockCopy(trial!, 0, outRow, 0, outRow.Length); }
                    }
                }
                else ApplyFilter((int)fixedFilter, cur, prev, bpp, outRow);
                z.Write(outRow);
                (prev, cur) = (cur, prev);
            }
        }
        var zbytes = compressed.GetBuffer().AsSpan(0, (int)compressed.Length);
        for (int off = 0; off < zbytes.Length; off += IdatChunkSize)
            WriteChunk(output, "IDAT"u8, zbytes.Slice(off, Math.Min(IdatChunkSize, zbytes.Length - off)));
        if (zbytes.Length == 0) WriteChunk(output, "IDAT"u8, []);
        WriteChunk(output, "IEND"u8, []);
    }

    private static void FillRow(Image image, int y, int bitDepth, byte[] row)
    {
        int w = image.Width, ch = image.Channels;
        if (bitDepth == 16)
        {
            var src = image.Pixels16!.AsSpan(y * w * ch, w * ch);
            for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(row.AsSpan(i * 2), src[i]);
        }
        else if (bitDepth == 8) image.Pixels.AsSpan(y * w * ch, w * ch).CopyTo(row);
        else
        {
            var src = image.Pixels.AsSpan(y * w, w);
            Array.Clear(row);
            int perByte = 8 / bitDepth;
            for (int x = 0; x < w; x++)
                row[x / perByte] |= (byte)(src[x] << (8 - bitDepth * (x % perByte + 1)));
        }
    }

    /// <summary>Writes filter byte + filtered row into <paramref name="dst"/>; returns the sum of |signed byte| (the heuristic's cost).</summary>
    private static long ApplyFilter(int f, byte[] cur, byte[] prev, int bpp, byte[] dst)
    {
        dst[0] = (byte)f;
        int n = cur.Length;
        long cost = 0;
        var d = dst.AsSpan(1, n);
        switch (f)
        {
            case 0:
                cur.CopyTo(d);
                break;
            case 1:
                for (int i = 0; i < n; i++) d[i] = (byte)(cur[i] - (i >= bpp ? cur[i - bpp] : 0));
                break;
            case 2:
                for (int i = 0; i < n; i++) d[i] = (byte)(cur[i] - prev[i]);
                break;
            case 3:
                for (int i = 0; i < n; i++) d[i] = (byte)(cur[i] - (((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1));
                break;
            default:
                for (int i = 0; i < n; i++)
                {
                    int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                    d[i] = (byte)(cur[i] - PngDecoder.Paeth(a, b, c));
                }
                break;
        }
        for (int i = 0; i < n; i++) { int v = (sbyte)d[i]; cost += v < 0 ? -v : v; }
        return cost;
    }

    private static void WriteChunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
        type.CopyTo(head[4..]);
        s.Write(head);
        s.Write(data);
        uint crc = Crc32.Update(Crc32.Update(0, type), data);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, crc);
        s.Write(tail);
    }
}
