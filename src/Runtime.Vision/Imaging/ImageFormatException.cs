namespace Runtime.Vision.Imaging;

/// <summary>
/// The one exception the image codecs throw for data they cannot decode: a corrupt, truncated,
/// unsupported or oversized file. Derives from <see cref="IOException"/> (<see cref="InvalidDataException"/> is sealed),
/// so a caller catching I/O failures while loading files catches it too.
/// </summary>
public sealed class ImageFormatException : IOException
{
    public ImageFormatException(string message) : base(message) { }

    public ImageFormatException(string message, Exception? inner) : base(message, inner) { }
}
