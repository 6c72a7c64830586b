namespace Runtime.Vision.Imaging;

/// <summary>Settings for <see cref="ImageDecoder"/>. The defaults suit most uses; <see cref="Default"/> is shared and immutable.</summary>
public sealed record ImageDecodeOptions
{
    /// <summary>Default settings: EXIF orientation applied, palettes expanded, at most 2^28 pixels.</summary>
    public static ImageDecodeOptions Default { get; } = new();

    /// <summary>JPEG: rotate/flip the image as its EXIF orientation tag (0x0112) says, like PIL's <c>ImageOps.exif_transpose</c>. Default true.</summary>
    public bool ApplyExifOrientation { get; init; } = true;

    /// <summary>
    /// PNG colour type 3: true (default) gives RGB, or RGBA where a tRNS chunk is present;
    /// false gives one channel of palette indices with <see cref="Image.Palette"/> set
    /// (what segmentation masks such as PASCAL VOC's need: the index is the class id).
    /// </summary>
    public bool ExpandPalette { get; init; } = true;

    /// <summary>PNG: a tRNS chunk on a gray or RGB image adds an alpha channel (0 where the colour matches, else opaque). Default true; false ignores tRNS there.</summary>
    public bool ApplyTransparency { get; init; } = true;

    /// <summary>Largest width*height accepted; bigger headers throw <see cref="ImageFormatException"/> before anything is allocated. Default 2^28.</summary>
    public long MaxPixels { get; init; } = 1L << 28;

    internal void CheckSize(string format, long width, long height)
    {
        if (width <= 0 || height <= 0)
            throw new ImageFormatException($"{format}: invalid image size {width}x{height}");
        if (width * height > MaxPixels)
            throw new ImageFormatException($"{format}: image size {width}x{height} exceeds the limit of {MaxPixels} pixels (ImageDecodeOptions.MaxPixels)");
    }
}
