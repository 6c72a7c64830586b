using System.Numerics;
using Runtime;

namespace Runtime.Vision.Imaging;

/// <summary>
/// A decoded raster image: <see cref="Width"/> x <see cref="Height"/> pixels of <see cref="Channels"/> 8-bit samples,
/// interleaved row-major (HWC) in <see cref="Pixels"/>. Channels: 1 gray (or palette index, see <see cref="Palette"/>),
/// 2 gray+alpha, 3 RGB, 4 RGBA.
/// Images decoded from 16-bit files (PNG bit depth 16, PGM/PPM with maxval above 255) also keep the full-precision
/// samples in <see cref="Pixels16"/> (same layout); <see cref="Pixels"/> then holds their high bytes (value &gt;&gt; 8),
/// as libpng's and PIL's 16-to-8-bit reduction does.
/// </summary>
public sealed class Image
{
    /// <summary>Largest width*height an image may have (2^28).</summary>
    public const long MaxPixelCount = 1L << 28;

    public int Width { get; }
    public int Height { get; }
    /// <summary>1 gray/index, 2 gray+alpha, 3 RGB, 4 RGBA.</summary>
    public int Channels { get; }
    /// <summary>8-bit samples, HWC: the sample of channel c at (x, y) is Pixels[(y * Width + x) * Channels + c].</summary>
    public byte[] Pixels { get; }
    /// <summary>16-bit samples (HWC) when the source had them, else null. Authoritative over <see cref="Pixels"/> when set.</summary>
    public ushort[]? Pixels16 { get; private set; }
    /// <summary>For a one-channel palette (indexed) image: the palette as RGBA quadruples (4 bytes an entry); else null.</summary>
    public byte[]? Palette { get; private set; }

    /// <summary>True when <see cref="Pixels16"/> holds 16-bit samples.</summary>
    public bool Is16Bit => Pixels16 != null;
    /// <summary>True for a one-channel image whose samples index <see cref="Palette"/>.</summary>
    public bool IsIndexed => Palette != null;
    /// <summary>Bytes in one row of <see cref="Pixels"/>.</summary>
    public int Stride => Width * Channels;
    public bool HasAlpha => Channels == 2 || Channels == 4 || (Palette != null && PaletteHasAlpha());

    /// <summary>A black (zeroed) image.</summary>
    public Image(int width, int height, int channels)
        : this(width, height, channels, new byte[CheckDims(width, height, channels)]) { }

    /// <summary>Wraps <paramref name="pixels"/> (HWC, length width*height*channels) without copying.</summary>
    public Image(int width, int height, int channels, byte[] pixels)
    {
        long n = CheckDims(width, height, channels);
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.Length != n)
            throw new ArgumentException($"{pixels.Length} bytes do not fit a {width}x{height}x{channels} image ({n} bytes)", nameof(pixels));
        Width = width; Height = height; Channels = channels; Pixels = pixels;
    }

    /// <summary>An image with 16-bit samples (HWC, wrapped without copying); <see cref="Pixels"/> gets their high bytes.</summary>
    public static Image FromPixels16(int width, int height, int channels, ushort[] samples)
    {
        long n = CheckDims(width, height, channels);
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Length != n)
            throw new ArgumentException($"{samples.Length} samples do not fit a {width}x{height}x{channels} image ({n} samples)", nameof(samples));
        var bytes = new byte[n];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)(samples[i] >> 8);
        return new Image(width, height, channels, bytes) { Pixels16 = samples };
    }

    /// <summary>A one-channel indexed image; <paramref name="palette"/> holds RGB triples (3 bytes an entry) or RGBA quadruples (4 bytes an entry; say so with <paramref name="paletteHasAlpha"/>), at most 256 entries.</summary>
    public static Image FromIndexed(int width, int height, byte[] indices, byte[] palette, bool paletteHasAlpha = false)
    {
        ArgumentNullException.ThrowIfNull(palette);
        int per = paletteHasAlpha ? 4 : 3;
        if (palette.Length % per != 0 || palette.Length == 0 || palette.Length / per > 256)
            throw new ArgumentException($"palette must hold 1..256 entries of {per} bytes, got {palette.Length} bytes", nameof(palette));
        var img = new Image(width, height, 1, indices);
        img.Palette = per == 4 ? (byte[])palette.Clone() : ExpandRgbPalette(palette);
        return img;
    }

    internal static byte[] ExpandRgbPalette(ReadOnlySpan<byte> rgb)
    {
        var pal = new byte[rgb.Length / 3 * 4];
        for (int i = 0, j = 0; i + 2 < rgb.Length; i += 3, j += 4)
        {
            pal[j] = rgb[i]; pal[j + 1] = rgb[i + 1]; pal[j + 2] = rgb[i + 2]; pal[j + 3] = 255;
        }
        return pal;
    }

    internal void SetPalette(byte[] rgba) => Palette = rgba;

    private bool PaletteHasAlpha()
    {
        var p = Palette!;
        for (int i = 3; i < p.Length; i += 4) if (p[i] != 255) return true;
        return false;
    }

    internal static long CheckDims(int width, int height, int channels)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"image size must be positive, got {width}x{height}");
        if (channels < 1 || channels > 4)
            throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1..4, got {channels}");
        if ((long)width * height > MaxPixelCount)
            throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}x{height} exceeds {MaxPixelCount} pixels");
        return (long)width * height * channels;
    }

    /// <summary>The 8-bit sample of channel <paramref name="c"/> at column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    public byte this[int x, int y, int c]
    {
        get => Pixels[Index(x, y, c)];
        set => Pixels[Index(x, y, c)] = value;
    }

    private int Index(int x, int y, int c)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height || (uint)c >= (uint)Channels)
            throw new ArgumentOutOfRangeException(nameof(x), $"({x}, {y}, {c}) is outside a {Width}x{Height}x{Channels} image");
        return (y * Width + x) * Channels + c;
    }

    public Image Clone()
    {
        var img = new Image(Width, Height, Channels, (byte[])Pixels.Clone())
        {
            Pixels16 = (ushort[]?)Pixels16?.Clone(),
            Palette = (byte[]?)Palette?.Clone(),
        };
        return img;
    }

    public override string ToString() =>
        $"Image {Width}x{Height}, {Channels} channel{(Channels == 1 ? "" : "s")}{(Is16Bit ? ", 16-bit" : "")}{(IsIndexed ? ", indexed" : "")}";

    // ---------------- colour conversions ----------------

    /// <summary>3-channel RGB (palette expanded, gray replicated, alpha dropped without compositing). Returns this image when already RGB.</summary>
    public Image ToRgb() => ConvertTo(3);

    /// <summary>4-channel RGBA (opaque alpha added where there was none).</summary>
    public Image ToRgba() => ConvertTo(4);

    /// <summary>1-channel luma, L = (19595 R + 38470 G + 7471 B + 2^15) &gt;&gt; 16 (ITU-R 601-2 as PIL's convert("L")); alpha dropped.</summary>
    public Image ToGray() => ConvertTo(1);

    /// <summary>Converts to 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels; 16-bit samples are kept. Returns this image when nothing changes.</summary>
    public Image ConvertTo(int channels)
    {
        if (channels < 1 || channels > 4) throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1..4, got {channels}");
        if (Palette != null)
        {
            var expanded = ExpandPalette();
            return channels == 4 ? expanded : expanded.ConvertTo(channels);
        }
        if (channels == Channels) return this;
        var dst = new byte[(long)Width * Height * channels];
        ConvertSamples<byte>(Pixels, Channels, dst, channels, 255);
        if (Pixels16 == null) return new Image(Width, Height, channels, dst);
        var dst16 = new ushort[dst.Length];
        ConvertSamples<ushort>(Pixels16, Channels, dst16, channels, 65535);
        return FromPixels16(Width, Height, channels, dst16);
    }

    private Image ExpandPalette()
    {
        var pal = Palette!;
        int n = pal.Length / 4;
        var dst = new byte[(long)Width * Height * 4];
        var src = Pixels;
        for (int i = 0, j = 0; i < src.Length; i++, j += 4)
        {
            int k = src[i];
            if (k < n) { k *= 4; dst[j] = pal[k]; dst[j + 1] = pal[k + 1]; dst[j + 2] = pal[k + 2]; dst[j + 3] = pal[k + 3]; }
            else dst[j + 3] = 255; // index past the palette: opaque black (as libpng)
        }
        return new Image(Width, Height, 4, dst);
    }

    private static void ConvertSamples<T>(ReadOnlySpan<T> src, int sc, Span<T> dst, int dc, int max) where T : unmanaged, IBinaryInteger<T>
    {
        T opaque = T.CreateTruncating(max);
        int n = src.Length / sc;
        for (int p = 0; p < n; p++)
        {
            var s = src.Slice(p * sc, sc);
            var d = dst.Slice(p * dc, dc);
            T a = sc == 2 ? s[1] : sc == 4 ? s[3] : opaque;
            if (dc <= 2)
            {
                T g;
                if (sc <= 2) g = s[0];
                else
                {
                    long r = long.CreateTruncating(s[0]), gg = long.CreateTruncating(s[1]), b = long.CreateTruncating(s[2]);
                    g = T.CreateTruncating((r * 19595 + gg * 38470 + b * 7471 + 0x8000) >> 16);
                }
                d[0] = g;
                if (dc == 2) d[1] = a;
            }
            else
            {
                if (sc <= 2) { d[0] = d[1] = d[2] = s[0]; }
                else { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; }
                if (dc == 4) d[3] = a;
            }
        }
    }

    // ---------------- geometry ----------------

    /// <summary>
    /// The image as an EXIF orientation value (1..8) says to display it: 2 mirror, 3 rotate 180, 4 flip vertical,
    /// 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise (as PIL's exif_transpose).
    /// Returns this image for 1 or an unknown value.
    /// </summary>
    public Image ApplyExifOrientation(int orientation)
    {
        if (orientation < 2 || orientation > 8) return this;
        bool swap = orientation >= 5;
        int w = Width, h = Height, c = Channels;
        int ow = swap ? h : w, oh = swap ? w : h;
        // For each output (ox, oy) find the source (sx, sy).
        var dst = new byte[Pixels.Length];
        var dst16 = Pixels16 == null ? null : new ushort[Pixels16.Length];
        for (int oy = 0; oy < oh; oy++)
        {
            for (int ox = 0; ox < ow; ox++)
            {
                int sx, sy;
                switch (orientation)
                {
                    case 2: sx = w - 1 - ox; sy = oy; break;
                    case 3: sx = w - 1 - ox; sy = h - 1 - oy; break;
                    case 4: sx = ox; sy = h - 1 - oy; break;
                    case 5: sx = oy; sy = ox; break;
                    case 6: sx = oy; sy = h - 1 - ox; break;
                    case 7: sx = w - 1 - oy; sy = h - 1 - ox; break;
                    default: sx = w - 1 - oy; sy = ox; break; // 8
                }
                int si = (sy * w + sx) * c, di = (oy * ow + ox) * c;
                for (int k = 0; k < c; k++) dst[di + k] = Pixels[si + k];
                if (dst16 != null) for (int k = 0; k < c; k++) dst16[di + k] = Pixels16![si + k];
            }
        }
        var img = new Image(ow, oh, c, dst) { Pixels16 = dst16, Palette = (byte[]?)Palette?.Clone() };
        return img;
    }

    // ---------------- tensors ----------------

    /// <summary>
    /// The image as a CHW Float32 tensor [Channels, Height, Width]. With <paramref name="scale01"/> (default) values are in
    /// 0..1 (sample / 255f, or / 65535f for 16-bit images — as torchvision's to_tensor, float32 division); otherwise the raw sample values (0..255, or 0..65535 for 16-bit).
    /// Indexed images are expanded to RGBA first; convert with <see cref="ToRgb"/> beforehand for 3 channels.
    /// </summary>
    public Tensor ToTensor(bool scale01 = true)
    {
        if (Palette != null) return ExpandPalette().ToTensor(scale01);
        int hw = Width * Height, c = Channels;
        var data = new float[(long)hw * c];
        if (Pixels16 != null)
        {
            float s = scale01 ? 65535f : 1f;
            var src = Pixels16;
            for (int ch = 0; ch < c; ch++)
                for (int i = 0, o = ch * hw; i < hw; i++) data[o + i] = src[i * c + ch] / s;
        }
        else
        {
            float s = scale01 ? 255f : 1f;
            var src = Pixels;
            for (int ch = 0; ch < c; ch++)
                for (int i = 0, o = ch * hw; i < hw; i++) data[o + i] = src[i * c + ch] / s;
        }
        return Tensor.From<float>(data, [c, Height, Width]);
    }

    /// <summary>The image as an HWC Float32 tensor [Height, Width, Channels], scaled as <see cref="ToTensor"/>.</summary>
    public Tensor ToTensorHwc(bool scale01 = true)
    {
        if (Palette != null) return ExpandPalette().ToTensorHwc(scale01);
        var data = new float[Pixels.Length];
        if (Pixels16 != null) { float s = scale01 ? 65535f : 1f; for (int i = 0; i < data.Length; i++) data[i] = Pixels16[i] / s; }
        else { float s = scale01 ? 255f : 1f; for (int i = 0; i < data.Length; i++) data[i] = Pixels[i] / s; }
        return Tensor.From<float>(data, [Height, Width, Channels]);
    }

    /// <summary>
    /// An 8-bit image from a CHW tensor [C, H, W] (C 1..4) or a 2-D [H, W] gray tensor of any numeric dtype. With
    /// <paramref name="scale01"/> (default) values are taken as 0..1 and multiplied by 255; otherwise as 0..255.
    /// Values are rounded to nearest and clamped; NaN becomes 0.
    /// </summary>
    public static Image FromTensor(Tensor tensor, bool scale01 = true)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        int c, h, w;
        if (tensor.Rank == 3) { c = tensor.Size(0); h = tensor.Size(1); w = tensor.Size(2); }
        else if (tensor.Rank == 2) { c = 1; h = tensor.Size(0); w = tensor.Size(1); }
        else throw new ArgumentException($"FromTensor expects a [C, H, W] or [H, W] tensor, got rank {tensor.Rank}", nameof(tensor));
        if (c < 1 || c > 4) throw new ArgumentException($"FromTensor expects 1..4 channels, got {c}", nameof(tensor));
        CheckDims(w, h, c);
        double[] v = tensor.ToDoubleArray();
        double s = scale01 ? 255.0 : 1.0;
        int hw = h * w;
        var px = new byte[(long)hw * c];
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < hw; i++)
            {
                double x = v[ch * hw + i] * s;
                px[i * c + ch] = x >= 255 ? (byte)255 : x > 0 ? (byte)(int)Math.Round(x, MidpointRounding.AwayFromZero) : (byte)0;
            }
        return new Image(w, h, c, px);
    }

    // ---------------- files ----------------

    /// <summary>Decodes a PNG, JPEG, PGM or PPM file, recognised by its first bytes (the extension is ignored).</summary>
    public static Image Load(string path, ImageDecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return ImageDecoder.Decode(File.ReadAllBytes(path), options);
    }

    /// <summary>Decodes an in-memory PNG, JPEG, PGM or PPM file.</summary>
    public static Image Decode(ReadOnlySpan<byte> data, ImageDecodeOptions? options = null) => ImageDecoder.Decode(data, options);

    /// <summary>
    /// Writes the image as PNG (.png) or Netpbm (.pgm/.ppm/.pnm: P5 for gray, P6 for colour) chosen by the extension,
    /// or as <paramref name="format"/> when given. The write is atomic: the bytes go to a temporary file in the same
    /// folder, which then replaces <paramref name="path"/>.
    /// </summary>
    public void Save(string path, ImageFormat format = ImageFormat.Unknown)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (format == ImageFormat.Unknown) format = FormatFromExtension(path);
        byte[] bytes = Encode(format);
        WriteAtomic(path, bytes);
    }

    /// <summary>Encodes the image as PNG (with default settings) or Netpbm binary.</summary>
    public byte[] Encode(ImageFormat format) => format switch
    {
        ImageFormat.Png => PngEncoder.Encode(this),
        ImageFormat.Pnm => PnmCodec.Encode(this),
        ImageFormat.Jpeg => throw new NotSupportedException("JPEG encoding is not implemented; save as PNG"),
        _ => throw new ArgumentException($"cannot encode format {format}", nameof(format)),
    };

    internal static ImageFormat FormatFromExtension(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".png" => ImageFormat.Png,
        ".ppm" or ".pgm" or ".pnm" => ImageFormat.Pnm,
        ".jpg" or ".jpeg" => ImageFormat.Jpeg,
        var e => throw new ArgumentException($"cannot tell the image format from the extension '{e}' of {path}; pass a format", nameof(path)),
    };

    /// <summary>Writes <paramref name="bytes"/> to a temporary file next to <paramref name="path"/>, then moves it over <paramref name="path"/>.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> bytes)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        string tmp = Path.Combine(dir, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..12] + ".tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
