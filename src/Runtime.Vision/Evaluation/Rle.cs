using System.Text;

namespace Runtime.Vision.Evaluation;

/// <summary>
/// A COCO run-length encoded binary mask (pycocotools <c>maskApi.c</c> semantics).
/// The mask is read in column-major order (down each column, then the next column, as COCO and
/// Matlab do); <see cref="Counts"/> alternate runs of 0s and 1s and always start with a run of 0s
/// (which may be empty). The counts sum to <c>Height * Width</c>.
/// </summary>
public sealed class Rle : IEquatable<Rle>
{
    private readonly uint[] _counts;

    /// <summary>Creates an RLE from uncompressed counts (copied). They must sum to height*width.</summary>
    public Rle(int height, int width, IReadOnlyList<uint> counts)
        : this(height, width, CopyCounts(counts), validate: true)
    {
    }

    private Rle(int height, int width, uint[] counts, bool validate)
    {
        if (height < 0 || width < 0) throw new ArgumentOutOfRangeException(nameof(height), "RLE size must be non-negative.");
        if (validate)
        {
            long sum = 0;
            foreach (uint c in counts) sum += c;
            if (sum != (long)height * width)
                throw new ArgumentException($"RLE counts sum to {sum}, expected height*width = {(long)height * width}.", nameof(counts));
        }
        Height = height;
        Width = width;
        _counts = counts;
    }

    private static uint[] CopyCounts(IReadOnlyList<uint> counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        var a = new uint[counts.Count];
        for (int i = 0; i < a.Length; i++) a[i] = counts[i];
        return a;
    }

    /// <summary>Mask height (rows).</summary>
    public int Height { get; }

    /// <summary>Mask width (columns).</summary>
    public int Width { get; }

    private System.Collections.ObjectModel.ReadOnlyCollection<uint>? _countsView;

    /// <summary>The run lengths: 0s, 1s, 0s, ... in column-major order (read-only).</summary>
    public IReadOnlyList<uint> Counts => _countsView ??= Array.AsReadOnly(_counts);

    /// <summary>The COCO "size" field, <c>[height, width]</c>.</summary>
    public int[] Size => [Height, Width];

    // ------------------------------------------------------------------ encode / decode

    /// <summary>Encodes a column-major mask (<c>mask[x * height + y]</c>); any nonzero byte is foreground.</summary>
    public static Rle Encode(ReadOnlySpan<byte> columnMajorMask, int height, int width)
    {
        long n = (long)height * width;
        if (columnMajorMask.Length != n) throw new ArgumentException($"Mask has {columnMajorMask.Length} elements, expected {n}.", nameof(columnMajorMask));
        var counts = new List<uint>();
        bool p = false;
        uint c = 0;
        for (int j = 0; j < columnMajorMask.Length; j++)
        {
            bool v = columnMajorMask[j] != 0;
            if (v != p) { counts.Add(c); c = 0; p = v; }
            c++;
        }
        counts.Add(c);
        return new Rle(height, width, counts.ToArray(), validate: false);
    }

    /// <summary>Encodes a row-major mask (<c>mask[y * width + x]</c>, the usual image layout); nonzero is foreground.</summary>
    public static Rle EncodeRowMajor(ReadOnlySpan<byte> rowMajorMask, int height, int width)
    {
        long n = (long)height * width;
        if (rowMajorMask.Length != n) throw new ArgumentException($"Mask has {rowMajorMask.Length} elements, expected {n}.", nameof(rowMajorMask));
        var col = new byte[n];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                col[(long)x * height + y] = rowMajorMask[y * width + x] != 0 ? (byte)1 : (byte)0;
        return Encode(col, height, width);
    }

    /// <summary>Decodes to a column-major 0/1 mask (<c>mask[x * height + y]</c>).</summary>
    public byte[] Decode()
    {
        var m = new byte[(long)Height * Width];
        int p = 0;
        byte v = 0;
        foreach (uint c in _counts)
        {
            if (v != 0) m.AsSpan(p, (int)c).Fill(1);
            p += (int)c;
            v = (byte)(1 - v);
        }
        return m;
    }

    /// <summary>Decodes to a row-major 0/1 mask (<c>mask[y * width + x]</c>).</summary>
    public byte[] DecodeRowMajor()
    {
        byte[] col = Decode();
        var row = new byte[col.Length];
        for (int x = 0; x < Width; x++)
            for (int y = 0; y < Height; y++)
                row[y * Width + x] = col[(long)x * Height + y];
        return row;
    }

    // ------------------------------------------------------------------ measures

    /// <summary>Number of foreground pixels (sum of the odd-indexed counts).</summary>
    public long Area
    {
        get
        {
            long a = 0;
            for (int j = 1; j < _counts.Length; j += 2) a += _counts[j];
            return a;
        }
    }

    /// <summary>
    /// Tight bounding box <c>[x, y, w, h]</c> of the foreground as pycocotools' <c>toBbox</c> computes it
    /// (all zeros for an empty mask).
    /// </summary>
    public double[] ToBbox()
    {
        uint h = (uint)Height, w = (uint)Width;
        int m = _counts.Length / 2 * 2;
        if (m == 0) return [0, 0, 0, 0];
        uint xs = w, ys = h, xe = 0, ye = 0, cc = 0, xp = 0;
        unchecked
        {
            for (int j = 0; j < m; j++)
            {
                cc += _counts[j];
                uint t = cc - (uint)(j % 2);
                uint y = t % h;
                uint x = (t - y) / h;
                if (j % 2 == 0) xp = x;
                else if (xp < x) { ys = 0; ye = h - 1; }
                xs = Math.Min(xs, x); xe = Math.Max(xe, x);
                ys = Math.Min(ys, y); ye = Math.Max(ye, y);
            }
            return [xs, ys, xe - xs + 1, ye - ys + 1];
        }
    }

    // ------------------------------------------------------------------ compressed string form

    /// <summary>
    /// The compressed "counts" string of COCO JSON: each count (from the fourth on, as the difference to
    /// the count two places earlier) is written in 5-bit little-endian groups, sign-extended, with bit 0x20
    /// marking "more groups follow", each group offset by ASCII 48.
    /// </summary>
    public string ToCompressedString()
    {
        var sb = new StringBuilder(_counts.Length * 2);
        for (int i = 0; i < _counts.Length; i++)
        {
            long x = _counts[i];
            if (i > 2) x -= _counts[i - 2];
            bool more = true;
            while (more)
            {
                int c = (int)(x & 0x1f);
                x >>= 5;
                more = (c & 0x10) != 0 ? x != -1 : x != 0;
                if (more) c |= 0x20;
                sb.Append((char)(c + 48));
            }
        }
        return sb.ToString();
    }

    /// <summary>Parses a compressed COCO "counts" string.</summary>
    public static Rle FromCompressedString(string counts, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(counts);
        var cnts = new List<uint>(counts.Length);
        int p = 0;
        while (p < counts.Length)
        {
            long x = 0;
            int k = 0;
            bool more = true;
            while (more)
            {
                if (p >= counts.Length) throw new FormatException("Truncated compressed RLE string.");
                int c = counts[p] - 48;
                if (c < 0 || c > 63) throw new FormatException($"Invalid character '{counts[p]}' in compressed RLE string.");
                x |= (long)(c & 0x1f) << (5 * k);
                more = (c & 0x20) != 0;
                p++; k++;
                if (!more && (c & 0x10) != 0) x |= -1L << (5 * k);
            }
            if (cnts.Count > 2) x += cnts[^2];
            cnts.Add(unchecked((uint)x));
        }
        return new Rle(height, width, cnts.ToArray(), validate: true);
    }

    // ------------------------------------------------------------------ rasterisation

    /// <summary>
    /// Rasterises one polygon <c>[x0, y0, x1, y1, ...]</c> exactly as pycocotools' <c>rleFrPoly</c>:
    /// vertices are scaled by 5 and rounded, the boundary is walked densely on that grid, and the points
    /// where it crosses the pixel-centre columns give the run boundaries (so a pixel is inside when its
    /// centre is inside, with COCO's particular tie rules).
    /// </summary>
    public static Rle FromPolygon(ReadOnlySpan<double> xy, int height, int width)
    {
        int k = xy.Length / 2;
        uint[] b = PolygonCounts(xy, k, height, width);
        return new Rle(height, width, b, validate: false);
    }

    private static uint[] PolygonCounts(ReadOnlySpan<double> xy, int k, int hh, int ww)
    {
        const double scale = 5;
        if (k == 0) return [(uint)((long)hh * ww)];
        var x = new int[k + 1];
        var y = new int[k + 1];
        for (int j = 0; j < k; j++) x[j] = (int)(scale * xy[j * 2] + .5);
        x[k] = x[0];
        for (int j = 0; j < k; j++) y[j] = (int)(scale * xy[j * 2 + 1] + .5);
        y[k] = y[0];
        long total = 0;
        for (int j = 0; j < k; j++) total += Math.Max(Math.Abs(x[j] - x[j + 1]), Math.Abs(y[j] - y[j + 1])) + 1;
        var u = new int[total];
        var v = new int[total];
        int m = 0;
        for (int j = 0; j < k; j++)
        {
            int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
            int dx = Math.Abs(xe - xs), dy = Math.Abs(ys - ye);
            bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if (flip) { (xs, xe) = (xe, xs); (ys, ye) = (ye, ys); }
            double s = dx >= dy ? (double)(ye - ys) / dx : (double)(xe - xs) / dy;
            if (dx >= dy)
            {
                for (int d = 0; d <= dx; d++)
                {
                    int t = flip ? dx - d : d;
                    u[m] = t + xs; v[m] = (int)(ys + s * t + .5); m++;
                }
            }
            else
            {
                for (int d = 0; d <= dy; d++)
                {
                    int t = flip ? dy - d : d;
                    v[m] = t + ys; u[m] = (int)(xs + s * t + .5); m++;
                }
            }
        }
        // points where the boundary crosses a pixel-centre column, downsampled to pixel coordinates
        int np = m;
        var bx = new List<int>();
        var by = new List<int>();
        for (int j = 1; j < np; j++)
        {
            if (u[j] == u[j - 1]) continue;
            double xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
            xd = (xd + .5) / scale - .5;
            if (Math.Floor(xd) != xd || xd < 0 || xd > ww - 1.0) continue;
            double yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
            yd = (yd + .5) / scale - .5;
            if (yd < 0) yd = 0; else if (yd > hh) yd = hh;
            yd = Math.Ceiling(yd);
            bx.Add((int)xd); by.Add((int)yd);
        }
        int kk = bx.Count;
        var a = new uint[kk + 1];
        unchecked
        {
            for (int j = 0; j < kk; j++) a[j] = (uint)(bx[j] * hh + by[j]);
            a[kk] = (uint)((long)hh * ww);
        }
        Array.Sort(a);
        uint prev = 0;
        for (int j = 0; j < a.Length; j++) { uint t = a[j]; a[j] -= prev; prev = t; }
        var outc = new List<uint>(a.Length);
        int jj = 0;
        outc.Add(a[jj++]);
        while (jj < a.Length)
        {
            if (a[jj] > 0) outc.Add(a[jj++]);
            else
            {
                jj++;
                if (jj < a.Length) outc[^1] += a[jj++];
            }
        }
        return outc.ToArray();
    }

    /// <summary>
    /// Rasterises a COCO polygon segmentation (a list of polygons) and merges the parts (union), as
    /// pycocotools' <c>annToRLE</c> does. As in <c>frPyObjects</c>, a list whose first entry has exactly
    /// four numbers is read as a list of boxes <c>[x, y, w, h]</c>.
    /// </summary>
    public static Rle FromPolygons(IReadOnlyList<double[]> polygons, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(polygons);
        if (polygons.Count == 0) return Empty(height, width);
        var parts = new List<Rle>(polygons.Count);
        bool boxes = polygons[0].Length == 4;
        foreach (double[] poly in polygons)
        {
            if (boxes)
            {
                if (poly.Length != 4) throw new ArgumentException("A segmentation whose first entry has 4 numbers is a list of boxes; every entry must then have 4.", nameof(polygons));
                parts.Add(FromBbox(poly[0], poly[1], poly[2], poly[3], height, width));
            }
            else parts.Add(FromPolygon(poly, height, width));
        }
        return Merge(parts, intersect: false);
    }

    /// <summary>Rasterises a box <c>[x, y, w, h]</c> as the polygon (x,y),(x,y+h),(x+w,y+h),(x+w,y) (pycocotools <c>frBbox</c>).</summary>
    public static Rle FromBbox(double x, double y, double w, double h, int height, int width)
    {
        double xs = x, xe = x + w, ys = y, ye = y + h;
        return FromPolygon([xs, ys, xs, ye, xe, ye, xe, ys], height, width);
    }

    /// <summary>An all-background mask.</summary>
    public static Rle Empty(int height, int width) => new(height, width, [(uint)((long)height * width)], validate: false);

    // ------------------------------------------------------------------ merge

    /// <summary>Union (or intersection) of masks of one size (pycocotools <c>merge</c>).</summary>
    public static Rle Merge(IReadOnlyList<Rle> rles, bool intersect = false)
    {
        ArgumentNullException.ThrowIfNull(rles);
        if (rles.Count == 0) return new Rle(0, 0, [], validate: false);
        int h = rles[0].Height, w = rles[0].Width;
        uint[] cnts = (uint[])rles[0]._counts.Clone();
        for (int i = 1; i < rles.Count; i++)
        {
            Rle bR = rles[i];
            if (bR.Height != h || bR.Width != w) throw new ArgumentException("Cannot merge masks of different sizes.", nameof(rles));
            uint[] A = cnts, B = bR._counts;
            var outc = new List<uint>(A.Length + B.Length);
            uint ca = A.Length > 0 ? A[0] : 0, cb = B.Length > 0 ? B[0] : 0;
            bool v = false, va = false, vb = false;
            int a = 1, b = 1;
            uint cc = 0, ct = 1;
            while (ct > 0)
            {
                uint c = Math.Min(ca, cb);
                cc += c; ct = 0;
                ca -= c; if (ca == 0 && a < A.Length) { ca = A[a++]; va = !va; }
                ct += ca;
                cb -= c; if (cb == 0 && b < B.Length) { cb = B[b++]; vb = !vb; }
                ct += cb;
                bool vp = v;
                v = intersect ? va && vb : va || vb;
                if (v != vp || ct == 0) { outc.Add(cc); cc = 0; }
            }
            cnts = outc.ToArray();
        }
        return new Rle(h, w, cnts, validate: false);
    }

    /// <summary>Union of masks.</summary>
    public static Rle Union(params Rle[] rles) => Merge(rles, intersect: false);

    /// <summary>Intersection of masks.</summary>
    public static Rle Intersection(params Rle[] rles) => Merge(rles, intersect: true);

    // ------------------------------------------------------------------ IoU

    /// <summary>
    /// IoU matrix <c>[dt.Count, gt.Count]</c> between masks (pycocotools <c>iou</c> on RLEs). For a crowd
    /// ground truth the union is the detection's area. Pairs whose boxes do not overlap are 0; pairs of
    /// different sizes whose boxes overlap are -1 (as pycocotools).
    /// </summary>
    public static double[,] Iou(IReadOnlyList<Rle> dt, IReadOnlyList<Rle> gt, IReadOnlyList<bool>? isCrowd = null)
    {
        ArgumentNullException.ThrowIfNull(dt);
        ArgumentNullException.ThrowIfNull(gt);
        if (isCrowd != null && isCrowd.Count != gt.Count) throw new ArgumentException("isCrowd must have one entry per ground truth.", nameof(isCrowd));
        var db = new double[dt.Count][];
        var gb = new double[gt.Count][];
        for (int d = 0; d < dt.Count; d++) db[d] = dt[d].ToBbox();
        for (int g = 0; g < gt.Count; g++) gb[g] = gt[g].ToBbox();
        double[,] o = BoxIou(db, gb, isCrowd);
        for (int g = 0; g < gt.Count; g++)
        {
            bool crowd = isCrowd != null && isCrowd[g];
            for (int d = 0; d < dt.Count; d++)
            {
                if (!(o[d, g] > 0)) continue;
                Rle D = dt[d], G = gt[g];
                if (D.Height != G.Height || D.Width != G.Width) { o[d, g] = -1; continue; }
                (long inter, long union) = IntersectUnion(D._counts, G._counts);
                if (inter == 0) union = 1;
                else if (crowd) union = D.Area;
                o[d, g] = (double)inter / union;
            }
        }
        return o;
    }

    /// <summary>IoU of two masks of one size (no crowd rule).</summary>
    public static double Iou(Rle a, Rle b, bool bIsCrowd = false) => Iou([a], [b], [bIsCrowd])[0, 0];

    private static (long Inter, long Union) IntersectUnion(uint[] A, uint[] B)
    {
        uint ca = A.Length > 0 ? A[0] : 0, cb = B.Length > 0 ? B[0] : 0;
        bool va = false, vb = false;
        int a = 1, b = 1;
        long inter = 0, union = 0;
        uint ct = 1;
        while (ct > 0)
        {
            uint c = Math.Min(ca, cb);
            if (va || vb) { union += c; if (va && vb) inter += c; }
            ct = 0;
            ca -= c; if (ca == 0 && a < A.Length) { ca = A[a++]; va = !va; }
            ct += ca;
            cb -= c; if (cb == 0 && b < B.Length) { cb = B[b++]; vb = !vb; }
            ct += cb;
        }
        return (inter, union);
    }

    /// <summary>
    /// IoU matrix <c>[dt.Count, gt.Count]</c> between boxes <c>[x, y, w, h]</c> (pycocotools <c>bbIou</c>):
    /// no +1 on widths; for a crowd ground truth the union is the detection's area.
    /// </summary>
    public static double[,] BoxIou(IReadOnlyList<double[]> dt, IReadOnlyList<double[]> gt, IReadOnlyList<bool>? isCrowd = null)
    {
        ArgumentNullException.ThrowIfNull(dt);
        ArgumentNullException.ThrowIfNull(gt);
        if (isCrowd != null && isCrowd.Count != gt.Count) throw new ArgumentException("isCrowd must have one entry per ground truth.", nameof(isCrowd));
        var o = new double[dt.Count, gt.Count];
        for (int g = 0; g < gt.Count; g++)
        {
            double[] G = gt[g];
            if (G.Length != 4) throw new ArgumentException("Boxes are [x, y, w, h].", nameof(gt));
            double ga = G[2] * G[3];
            bool crowd = isCrowd != null && isCrowd[g];
            for (int d = 0; d < dt.Count; d++)
            {
                double[] D = dt[d];
                if (D.Length != 4) throw new ArgumentException("Boxes are [x, y, w, h].", nameof(dt));
                double da = D[2] * D[3];
                double w = Math.Min(D[2] + D[0], G[2] + G[0]) - Math.Max(D[0], G[0]);
                if (w <= 0) continue;
                double h = Math.Min(D[3] + D[1], G[3] + G[1]) - Math.Max(D[1], G[1]);
                if (h <= 0) continue;
                double i = w * h;
                double u = crowd ? da : da + ga - i;
                o[d, g] = i / u;
            }
        }
        return o;
    }

    // ------------------------------------------------------------------ equality

    /// <inheritdoc />
    public bool Equals(Rle? other) =>
        other is not null && other.Height == Height && other.Width == Width && other._counts.AsSpan().SequenceEqual(_counts);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Rle r && Equals(r);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hc = new HashCode();
        hc.Add(Height); hc.Add(Width);
        foreach (uint c in _counts) hc.Add(c);
        return hc.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => $"Rle({Height}x{Width}, \"{ToCompressedString()}\")";
}
