using System.Buffers.Binary;
using System.Diagnostics;
using Runtime.Vision.Imaging;
using Xunit.Abstractions;

namespace Runtime.Vision.Tests.Imaging;

/// <summary>
/// Seeded mutation fuzzing: thousands of damaged copies of valid files (byte and bit flips, truncations, inserted
/// garbage, corrupted chunk/segment lengths, PNG chunks re-CRC'd after mutation so the damage reaches zlib and the
/// filters) must each decode or throw <see cref="ImageFormatException"/> — nothing else, no hang, no huge allocation.
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    private static readonly string[] Files =
    [
        "png_pil_rgb8.png", "png_rgba16_adam7.png", "png_palette2_trns.png", "png_gray4_adam7.png", "png_la8.png",
        "jpeg_q75_420.jpg", "jpeg_progressive_420.jpg", "jpeg_progressive_444.jpg", "jpeg_own_420_restart5.jpg",
        "jpeg_own_420_noninterleaved.jpg", "jpeg_exif_orientation6.jpg", "jpeg_gray.jpg", "jpeg_q30_422.jpg",
        "pnm_p6_255.ppm", "pnm_p3_255.ppm", "pnm_p5_65535.pgm", "pnm_p2_15.pgm",
    ];

    public static IEnumerable<object[]> FileNames => Files.Select(f => new object[] { f });

    private const int MutationsPerFile = 1200;
    private static readonly TimeSpan PerFileLimit = TimeSpan.FromSeconds(15);

    [Theory]
    [MemberData(nameof(FileNames))]
    public async Task MutatedFilesDecodeOrThrowImageFormatException(string file)
    {
        var original = File.ReadAllBytes(Path.Combine(GoldenImageTests.Dir, file));
        ImageDecoder.Decode(original); // the unmutated file is valid
        int ok = 0, rejected = 0;
        string? failure = null;
        double slowest = 0;
        var task = Task.Run(() =>
        {
            var rng = new Random(StableSeed(file));
            for (int i = 0; i < MutationsPerFile && failure == null; i++)
            {
                var (data, what) = Mutate(original, rng, i);
                long before = GC.GetAllocatedBytesForCurrentThread();
                var sw = Stopwatch.StartNew();
                try
                {
                    var img = ImageDecoder.Decode(data);
                    Assert.True(img.Pixels.Length == (long)img.Width * img.Height * img.Channels);
                    ok++;
                }
                catch (ImageFormatException) { rejected++; }
                catch (Exception e)
                {
                    failure = $"{file} mutation #{i} ({what}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
                }
                slowest = Math.Max(slowest, sw.Elapsed.TotalMilliseconds);
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                if (allocated > 64L << 20) failure ??= $"{file} mutation #{i} ({what}) allocated {allocated} bytes";
                if (sw.Elapsed > TimeSpan.FromSeconds(2)) failure ??= $"{file} mutation #{i} ({what}) took {sw.Elapsed}";
            }
        });
        var first = await Task.WhenAny(task, Task.Delay(PerFileLimit));
        Assert.True(first == task, $"{file}: fuzzing did not finish within {PerFileLimit} (a decoder hangs?)");
        await task;
        if (failure != null) Assert.Fail(failure);
        output.WriteLine($"{file}: {MutationsPerFile} mutations, {ok} decoded, {rejected} rejected, slowest {slowest:F1} ms");
    }

    private static int StableSeed(string s)
    {
        int h = 17;
        foreach (char c in s) h = h * 31 + c;
        return h & 0x7FFFFFFF;
    }

    private static (byte[] Data, string What) Mutate(byte[] src, Random rng, int i)
    {
        if (i % 8 == 7 && PngDecoder.IsPng(src)) return MutateDecompressedPng(src, rng);
        switch (i % 8)
        {
            case 0: // truncation at every N bytes, walking through the file
            {
                int step = Math.Max(1, src.Length / (MutationsPerFile / 8));
                int at = Math.Min(src.Length - 1, i / 8 * step);
                return (src[..at], $"truncate at {at}");
            }
            case 1: // a few random bytes replaced
            {
                var d = (byte[])src.Clone();
                int n = 1 + rng.Next(4);
                for (int k = 0; k < n; k++) d[rng.Next(d.Length)] = (byte)rng.Next(256);
                return (FixPngCrcs(d, rng.Next(2) == 0), $"{n} random bytes");
            }
            case 2: // single bit flips
            {
                var d = (byte[])src.Clone();
                int n = 1 + rng.Next(3);
                for (int k = 0; k < n; k++) d[rng.Next(d.Length)] ^= (byte)(1 << rng.Next(8));
                return (FixPngCrcs(d, true), $"{n} bit flips");
            }
            case 3: // inserted garbage
            {
                int at = rng.Next(src.Length), n = 1 + rng.Next(64);
                var g = new byte[n];
                rng.NextBytes(g);
                if (rng.Next(3) == 0) Array.Fill(g, (byte)0xFF);
                return ([.. src[..at], .. g, .. src[at..]], $"{n} garbage bytes at {at}");
            }
            case 4: // chunk / segment / header length corruption
                return CorruptLength(src, rng);
            case 5: // a run of the file zeroed or 0xFF-filled
            {
                var d = (byte[])src.Clone();
                int at = rng.Next(d.Length), n = Math.Min(d.Length - at, 1 + rng.Next(200));
                d.AsSpan(at, n).Fill(rng.Next(2) == 0 ? (byte)0 : (byte)0xFF);
                return (FixPngCrcs(d, true), $"{n} bytes filled at {at}");
            }
            case 6: // a block of the file copied over another place
            {
                var d = (byte[])src.Clone();
                int from = rng.Next(d.Length), to = rng.Next(d.Length);
                int n = Math.Min(Math.Min(d.Length - from, d.Length - to), 1 + rng.Next(100));
                Array.Copy(src, from, d, to, n);
                return (FixPngCrcs(d, true), $"{n} bytes copied {from}->{to}");
            }
            default: // truncation at a random point plus a damaged byte
            {
                int at = 1 + rng.Next(src.Length - 1);
                var d = src[..at];
                d[rng.Next(d.Length)] ^= 0x5A;
                return (FixPngCrcs(d, true), $"truncate at {at} + damage");
            }
        }
    }

    private static (byte[], string) CorruptLength(byte[] src, Random rng)
    {
        var d = (byte[])src.Clone();
        if (PngDecoder.IsPng(d))
        {
            var offsets = new List<int>();
            for (int p = 8; p + 8 <= d.Length;)
            {
                offsets.Add(p);
                int len = BinaryPrimitives.ReadInt32BigEndian(d.AsSpan(p));
                if (len < 0 || p + 12L + len > d.Length) break;
                p += 12 + len;
            }
            int at = offsets[rng.Next(offsets.Count)];
            uint v = rng.Next(4) switch { 0 => 0xFFFFFFFF, 1 => 0x7FFFFFFF, 2 => (uint)rng.Next(64), _ => (uint)rng.Next() };
            BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(at), v);
            // or an IHDR with a huge size
            if (rng.Next(3) == 0) { BinaryPrimitives.WriteInt32BigEndian(d.AsSpan(16), rng.Next()); BinaryPrimitives.WriteInt32BigEndian(d.AsSpan(20), rng.Next(1 << 16)); return (FixPngCrcs(d, true), "IHDR size"); }
            return (d, $"chunk length at {at} = {v}");
        }
        if (JpegDecoder.IsJpeg(d))
        {
            var markers = new List<int>();
            for (int p = 2; p + 4 <= d.Length; p++)
                if (d[p] == 0xFF && d[p + 1] is >= 0xC0 and <= 0xFE and not (>= 0xD0 and <= 0xD9)) markers.Add(p);
            int at = markers[rng.Next(markers.Count)];
            int kind = rng.Next(3);
            if (kind == 0) { d[at + 2] = (byte)rng.Next(256); d[at + 3] = (byte)rng.Next(256); return (d, $"segment length at {at}"); }
            // damage inside the segment header: dimensions, counts, table ids
            int off = at + 4 + rng.Next(8);
            if (off < d.Length) d[off] = (byte)(rng.Next(2) == 0 ? 0xFF : rng.Next(256));
            return (d, $"segment byte at {off}");
        }
        // PNM: replace a header number
        var text = System.Text.Encoding.ASCII.GetString(d, 0, Math.Min(d.Length, 40));
        string[] repl = ["0", "99999999", "65536", "-1", "4294967296", "1", "#"];
        int digit = text.IndexOfAny("0123456789".ToCharArray(), 2);
        if (digit < 0) return (d, "none");
        var head = System.Text.Encoding.ASCII.GetBytes(repl[rng.Next(repl.Length)]);
        return ([.. d[..digit], .. head, .. d[(digit + 1)..]], "header number");
    }

    /// <summary>
    /// Damages a PNG below the zlib layer: its header fields (size, bit depth, colour type, interlace) or its
    /// decompressed scanlines (filter bytes, samples, length), then recompresses and re-CRCs, so the damage reaches
    /// the header checks, the unfiltering and the sample unpacking.
    /// </summary>
    private static (byte[], string) MutateDecompressedPng(byte[] src, Random rng)
    {
        var chunks = new List<(string Type, byte[] Body)>();
        for (int p = 8; p + 12 <= src.Length;)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(src.AsSpan(p));
            chunks.Add((System.Text.Encoding.ASCII.GetString(src, p + 4, 4), src[(p + 8)..(p + 8 + len)]));
            p += 12 + len;
        }
        var idat = new MemoryStream();
        foreach (var c in chunks) if (c.Type == "IDAT") idat.Write(c.Body);
        idat.Position = 0;
        var raw = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(idat, System.IO.Compression.CompressionMode.Decompress)) z.CopyTo(raw);
        var data = raw.ToArray();
        var ihdr = (byte[])chunks[0].Body.Clone();
        string what;
        switch (rng.Next(5))
        {
            case 0:
                int field = rng.Next(5);
                if (field == 0) BinaryPrimitives.WriteInt32BigEndian(ihdr, Math.Max(1, BinaryPrimitives.ReadInt32BigEndian(ihdr) + rng.Next(-3, 40)));
                else if (field == 1) BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), Math.Max(1, BinaryPrimitives.ReadInt32BigEndian(ihdr.AsSpan(4)) + rng.Next(-3, 40)));
                else if (field == 2) ihdr[8] = (byte)(1 << rng.Next(5));
                else if (field == 3) ihdr[9] = (byte)rng.Next(7);
                else ihdr[12] ^= 1;
                what = $"IHDR field {field}";
                break;
            case 1:
                for (int k = 0; k < 1 + rng.Next(8); k++) if (data.Length > 0) data[rng.Next(data.Length)] = (byte)rng.Next(256);
                what = "raw bytes";
                break;
            case 2:
                data = data[..rng.Next(data.Length + 1)];
                what = "raw truncated";
                break;
            case 3:
                if (data.Length > 0) data[rng.Next(data.Length)] = (byte)rng.Next(5, 256);
                what = "bad filter byte";
                break;
            default:
                data = [.. data, .. new byte[rng.Next(1, 500)]];
                what = "raw too long";
                break;
        }
        var zout = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(zout, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        var png = new MemoryStream();
        png.Write(src.AsSpan(0, 8));
        void Chunk(string type, byte[] body)
        {
            var b = new byte[12 + body.Length];
            BinaryPrimitives.WriteInt32BigEndian(b, body.Length);
            System.Text.Encoding.ASCII.GetBytes(type).CopyTo(b, 4);
            body.CopyTo(b, 8);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8 + body.Length), Crc32.Compute(b.AsSpan(4, 4 + body.Length)));
            png.Write(b);
        }
        Chunk("IHDR", ihdr);
        foreach (var c in chunks) if (c.Type is "PLTE" or "tRNS") Chunk(c.Type, c.Body);
        Chunk("IDAT", zout.ToArray());
        Chunk("IEND", []);
        return (png.ToArray(), what);
    }

    /// <summary>Recomputes every PNG chunk CRC (so mutations get past the CRC check), if asked.</summary>
    private static byte[] FixPngCrcs(byte[] d, bool fix)
    {
        if (!fix || !PngDecoder.IsPng(d)) return d;
        for (int p = 8; p + 12 <= d.Length;)
        {
            long len = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(p));
            if (p + 12 + len > d.Length) break;
            uint crc = Crc32.Compute(d.AsSpan(p + 4, 4 + (int)len));
            BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(p + 8 + (int)len), crc);
            p += 12 + (int)len;
        }
        return d;
    }
}
