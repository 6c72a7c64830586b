namespace Runtime.Vision.Data;

/// <summary>
/// Boundaries of binary masks as polygons along pixel edges. Each loop runs along the edges between
/// foreground and background pixels with the foreground on its right (clockwise on screen for outer
/// boundaries, counter-clockwise for holes); diagonal pinches are split so that every loop bounds one
/// 4-connected piece. Corners are at integer pixel-corner coordinates: pixel (x, y) spans
/// [x, x+1] x [y, y+1].
/// </summary>
public static class MaskContours
{
    /// <summary>
    /// The boundary loops of a row-major mask (nonzero = foreground) as closed lists of corner points
    /// (x, y interleaved, first point not repeated, collinear points merged).
    /// </summary>
    public static List<int[]> Trace(ReadOnlySpan<byte> mask, int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(height);
        ArgumentOutOfRangeException.ThrowIfNegative(width);
        if (mask.Length != (long)height * width) throw new ArgumentException($"{mask.Length} bytes are not a {height}x{width} mask", nameof(mask));
        int vw = width + 1;
        // Outgoing edges per corner vertex, one bit per direction: 0 = +x, 1 = +y, 2 = -x, 3 = -y.
        var edges = new byte[(height + 1) * vw];
        bool Fg(int x, int y, ReadOnlySpan<byte> m) => x >= 0 && y >= 0 && x < width && y < height && m[y * width + x] != 0;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                if (mask[y * width + x] == 0) continue;
                if (!Fg(x, y - 1, mask)) edges[y * vw + x] |= 1;               // top: (x,y) -> (x+1,y)
                if (!Fg(x + 1, y, mask)) edges[y * vw + x + 1] |= 2;           // right: (x+1,y) -> (x+1,y+1)
                if (!Fg(x, y + 1, mask)) edges[(y + 1) * vw + x + 1] |= 4;     // bottom: (x+1,y+1) -> (x,y+1)
                if (!Fg(x - 1, y, mask)) edges[(y + 1) * vw + x] |= 8;         // left: (x,y+1) -> (x,y)
            }
        ReadOnlySpan<int> dx = [1, 0, -1, 0];
        ReadOnlySpan<int> dy = [0, 1, 0, -1];
        var loops = new List<int[]>();
        var pts = new List<int>();
        for (int start = 0; start < edges.Length; start++)
        {
            while (edges[start] != 0)
            {
                int dir = System.Numerics.BitOperations.TrailingZeroCount(edges[start]);
                int v = start, prevDir = -1;
                pts.Clear();
                while (true)
                {
                    edges[v] &= (byte)~(1 << dir);
                    if (dir != prevDir) { pts.Add(v % vw); pts.Add(v / vw); }
                    prevDir = dir;
                    v += dx[dir] + dy[dir] * vw;
                    if (v == start) break;
                    // Prefer a right turn (towards the foreground), then straight on, then left.
                    int right = (dir + 1) & 3, left = (dir + 3) & 3;
                    if ((edges[v] & (1 << right)) != 0) dir = right;
                    else if ((edges[v] & (1 << dir)) != 0) { }
                    else if ((edges[v] & (1 << left)) != 0) dir = left;
                    else throw new InvalidOperationException("mask boundary does not close (internal error)");
                }
                // The walk may have started mid-way along a straight run: merge the last run into the first.
                if (pts.Count >= 6 && IsCollinear(pts[^2], pts[^1], pts[0], pts[1], pts[2], pts[3]))
                    pts.RemoveRange(0, 2);
                loops.Add(pts.ToArray());
            }
        }
        return loops;
    }

    private static bool IsCollinear(int x0, int y0, int x1, int y1, int x2, int y2) => (x1 - x0) * (y2 - y1) - (y1 - y0) * (x2 - x1) == 0;

    /// <summary>Twice the signed area of a loop (shoelace): positive for outer boundaries, negative for holes.</summary>
    public static long SignedArea2(ReadOnlySpan<int> loop)
    {
        long s = 0;
        int n = loop.Length / 2;
        for (int i = 0; i < n; i++)
        {
            int j = (i + 1) % n;
            s += (long)loop[2 * i] * loop[2 * j + 1] - (long)loop[2 * j] * loop[2 * i + 1];
        }
        return s;
    }

    /// <summary>
    /// The mask as COCO polygons that pycocotools rasterises back to exactly the same pixels (its
    /// pixel centres are at integer coordinates, so corners go to x - 0.5, y - 0.5); null when the mask
    /// has holes, which COCO polygons cannot express (use RLE then).
    /// </summary>
    public static List<double[]>? ToCocoPolygons(ReadOnlySpan<byte> mask, int height, int width)
    {
        var loops = Trace(mask, height, width);
        var res = new List<double[]>(loops.Count);
        foreach (var l in loops)
        {
            if (SignedArea2(l) < 0) return null;
            var p = new double[l.Length];
            for (int i = 0; i < l.Length; i++) p[i] = l[i] - 0.5;
            res.Add(p);
        }
        return res;
    }

    /// <summary>Marks the foreground pixels that touch the background (4-neighbourhood, image border counts as background).</summary>
    public static byte[] InnerBoundary(ReadOnlySpan<byte> mask, int height, int width, int thickness = 1)
    {
        if (mask.Length != (long)height * width) throw new ArgumentException($"{mask.Length} bytes are not a {height}x{width} mask", nameof(mask));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(thickness);
        var cur = mask.ToArray();
        var res = new byte[cur.Length];
        for (int t = 0; t < thickness; t++)
        {
            var next = (byte[])cur.Clone();
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    int i = y * width + x;
                    if (cur[i] == 0) continue;
                    bool edge = x == 0 || y == 0 || x == width - 1 || y == height - 1
                        || cur[i - 1] == 0 || cur[i + 1] == 0 || cur[i - width] == 0 || cur[i + width] == 0;
                    if (edge)
                    {
                        res[i] = 1;
                        next[i] = 0;
                    }
                }
            cur = next;
        }
        return res;
    }
}
