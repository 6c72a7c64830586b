namespace Runtime.Vision.Imaging;

/// <summary>JPEG reader (work in progress).</summary>
public static class JpegDecoder
{
    public static Image Decode(ReadOnlySpan<byte> data, ImageDecodeOptions? options = null)
    {
        _ = options;
        _ = data;
        throw new ImageFormatException("JPEG: decoding is not implemented yet");
    }
}
