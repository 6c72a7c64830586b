namespace Runtime.Vision.Imaging;

/// <summary>Decodes PNG, JPEG and PGM/PPM data, telling the format from its first bytes.</summary>
public static class ImageDecoder
{
    /// <summary>The format the first bytes announce, or <see cref="ImageFormat.Unknown"/>.</summary>
    public static ImageFormat DetectFormat(ReadOnlySpan<byte> data)
    {
        if (PngDecoder.IsPng(data)) return ImageFormat.Png;
        if (data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat.Jpeg;
        if (PnmCodec.IsPnm(data)) return ImageFormat.Pnm;
        return ImageFormat.Unknown;
    }

    /// <summary>Decodes an image; throws <see cref="ImageFormatException"/> for unknown, corrupt or truncated data.</summary>
    public static Image Decode(ReadOnlySpan<byte> data, ImageDecodeOptions? options = null)
    {
        options ??= ImageDecodeOptions.Default;
        return DetectFormat(data) switch
        {
            ImageFormat.Png => PngDecoder.Decode(data, options),
            ImageFormat.Jpeg => JpegDecoder.Decode(data, options),
            ImageFormat.Pnm => PnmCodec.Decode(data, options),
            _ => throw new ImageFormatException(data.Length == 0 ? "empty image data" : "unknown image format (not PNG, JPEG, PGM or PPM)"),
        };
    }
}
