namespace Runtime.Vision.Imaging;

/// <summary>The file formats the codecs know.</summary>
public enum ImageFormat
{
    Unknown = 0,
    Png,
    Jpeg,
    /// <summary>Netpbm: PBM is not supported, PGM (P2/P5) and PPM (P3/P6) are.</summary>
    Pnm,
}
