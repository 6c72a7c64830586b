using System.Text;

namespace Runtime.Vision.Imaging;

/// <summary>
/// Netpbm gray and colour maps: P2 (ASCII PGM), P3 (ASCII PPM), P5 (binary PGM), P6 (binary PPM), maxval 1..65535,
/// '#' comments. Decoding gives 1 (PGM) or 3 (PPM) channels: samples are rescaled to 0..255
/// (round(v * 255 / maxval)) when maxval &lt;= 255, and to 0..65535 in <see cref="Image.Pixels16"/>
/// (round(v * 65535 / maxval)) when maxval &gt; 255.
/// </summary>
public static class PnmCodec
{
    public static bool IsPnm(ReadOnlySpan<byte> data) =>
        data.Length >= 2 && data[0] == 'P' && data[1] is (byte)'2' or (byte)'3' or (byte)'5' or (byte)'6';

    public static Image Decode(ReadOnlySpan<byte> data, ImageDecodeOptions? options = null)
    {
        options ??= ImageDecodeOptions.Default;
        if (!IsPnm(data)) throw new ImageFormatException("PNM: not a P2, P3, P5 or P6 file");
        char kind = (char)data[1];
        bool ascii = kind is '2' or '3';
        int channels = kind is '2' or '5' ? 1 : 3;
        int pos = 2;
        long width = ReadHeaderNumber(data, ref pos, "width");
        long height = ReadHeaderNumber(data, ref pos, "height");
        long maxval = ReadHeaderNumber(data, ref pos, "maxval");
        options.CheckSize("PNM", width, height);
        if (maxval < 1 || maxval > 65535) throw new ImageFormatException($"PNM: maxval {maxval} is outside 1..65535");
        int w = (int)width, h = (int)height;
        long count = width * height * channels;
        bool wide = maxval > 255;

        if (!ascii)
        {
            // Exactly one whitespace byte separates the header from the raster.
            if (pos >= data.Length || !IsSpace(data[pos])) throw new ImageFormatException("PNM: truncated header");
            pos++;
            long need = count * (wide ? 2 : 1);
            if (data.Length - pos < need)
                throw new ImageFormatException($"PNM: raster needs {need} bytes but only {data.Length - pos} remain (truncated file?)");
        }
        else if (count > (data.Length - pos + 1) / 2 + 1)
            throw new ImageFormatException($"PNM: {data.Length - pos} bytes cannot hold {count} ASCII samples (truncated file?)");

        var px = new byte[count];
        ushort[]? px16 = wide ? new ushort[count] : null;
        // Lookup from sample value to output value (at most 65536 entries).
        int outMax = wide ? 65535 : 255;
        ushort[]? lut = maxval == outMax ? null : new ushort[maxval + 1];
        if (lut != null) for (int v = 0; v <= maxval; v++) lut[v] = (ushort)((v * (long)outMax * 2 + maxval) / (2 * maxval));

        for (long i = 0; i < count; i++)
        {
            int v;
            if (ascii) v = (int)Math.Min(ReadRasterNumber(data, ref pos), int.MaxValue);
            else if (wide) { v = data[pos] << 8 | data[pos + 1]; pos += 2; }
            else v = data[pos++];
            if (v > maxval) throw new ImageFormatException($"PNM: sample value {v} exceeds maxval {maxval}");
            int o = lut == null ? v : lut[v];
            if (wide) { px16![i] = (ushort)o; px[i] = (byte)(o >> 8); }
            else px[i] = (byte)o;
        }
        return wide ? Image.FromPixels16(w, h, channels, px16!) : new Image(w, h, channels, px);
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 0x0B or 0x0C;

    private static void SkipSpaceAndComments(ReadOnlySpan<byte> data, ref int pos)
    {
        while (pos < data.Length)
        {
            if (IsSpace(data[pos])) pos++;
            else if (data[pos] == '#') { while (pos < data.Length && data[pos] != '\n' && data[pos] != '\r') pos++; }
            else break;
        }
    }

    private static long ReadHeaderNumber(ReadOnlySpan<byte> data, ref int pos, string what)
    {
        int before = pos;
        SkipSpaceAndComments(data, ref pos);
        if (pos == before) throw new ImageFormatException($"PNM: expected whitespace before the {what}");
        return ReadDigits(data, ref pos, what);
    }

    private static long ReadRasterNumber(ReadOnlySpan<byte> data, ref int pos)
    {
        SkipSpaceAndComments(data, ref pos);
        return ReadDigits(data, ref pos, "sample");
    }

    private static long ReadDigits(ReadOnlySpan<byte> data, ref int pos, string what)
    {
        if (pos >= data.Length) throw new ImageFormatException($"PNM: file ends before the {what} (truncated file?)");
        if (data[pos] < '0' || data[pos] > '9') throw new ImageFormatException($"PNM: expected a number for the {what} at offset {pos}");
        long v = 0;
        while (pos < data.Length && data[pos] >= '0' && data[pos] <= '9')
        {
            v = v * 10 + (data[pos] - '0');
            if (v > int.MaxValue) throw new ImageFormatException($"PNM: {what} is too large");
            pos++;
        }
        if (pos < data.Length && !IsSpace(data[pos]) && data[pos] != '#')
            throw new ImageFormatException($"PNM: unexpected byte 0x{data[pos]:X2} after the {what} at offset {pos}");
        return v;
    }

    /// <summary>
    /// Encodes as binary P5 (1 channel) or P6 (3 channels); gray+alpha and RGBA lose their alpha, indexed images are
    /// expanded. 16-bit images are written with maxval 65535, others with 255. <paramref name="ascii"/> writes P2/P3.
    /// </summary>
    public static byte[] Encode(Image image, bool ascii = false)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.IsIndexed) image = image.ToRgb();
        else if (image.Channels == 2) image = image.ConvertTo(1);
        else if (image.Channels == 4) image = image.ConvertTo(3);
        int c = image.Channels;
        bool wide = image.Is16Bit;
        string magic = (c == 1 ? (ascii ? "P2" : "P5") : (ascii ? "P3" : "P6"));
        var header = Encoding.ASCII.GetBytes($"{magic}\n{image.Width} {image.Height}\n{(wide ? 65535 : 255)}\n");
        long n = image.Pixels.LongLength;
        if (!ascii)
        {
            var bytes = new byte[header.Length + n * (wide ? 2 : 1)];
            header.CopyTo(bytes, 0);
            if (wide)
            {
                var s = image.Pixels16!;
                for (long i = 0; i < n; i++) { bytes[header.Length + 2 * i] = (byte)(s[i] >> 8); bytes[header.Length + 2 * i + 1] = (byte)s[i]; }
            }
            else image.Pixels.CopyTo(bytes, header.Length);
            return bytes;
        }
        var sb = new StringBuilder();
        sb.Append(Encoding.ASCII.GetString(header));
        int perLine = image.Width * c;
        for (long i = 0; i < n; i++)
        {
            sb.Append(wide ? image.Pixels16![i] : image.Pixels[i]);
            sb.Append((i + 1) % perLine == 0 || (i + 1) % 16 == 0 ? '\n' : ' ');
        }
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    /// <summary>Encodes to <paramref name="path"/> atomically.</summary>
    public static void Save(Image image, string path, bool ascii = false) => Image.WriteAtomic(path, Encode(image, ascii));
}
