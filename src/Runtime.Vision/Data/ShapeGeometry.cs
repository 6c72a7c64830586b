namespace Runtime.Vision.Data;

/// <summary>The object classes of the synthetic shapes data sets (category id = (int)kind + 1).</summary>
public enum ShapeKind
{
    Circle,
    Square,
    Triangle,
    Ellipse,
    Star,
    Hexagon,
}

/// <summary>
/// One placed shape: centre, radius (circumscribed), rotation and, for ellipses, the ratio of the
/// minor to the major axis. Rasterised at pixel centres: pixel (x, y) belongs to the shape when the
/// point (x + 0.5, y + 0.5) lies inside it.
/// </summary>
public readonly record struct ShapeGeometry(ShapeKind Kind, double CenterX, double CenterY, double Radius, double Angle, double Aspect = 1)
{
    /// <summary>The polygon outline (x, y interleaved) of polygonal kinds; null for circles and ellipses.</summary>
    public double[]? Outline()
    {
        return Kind switch
        {
            ShapeKind.Square => Regular(4, Angle + Math.PI / 4),
            ShapeKind.Triangle => Regular(3, Angle - Math.PI / 2),
            ShapeKind.Hexagon => Regular(6, Angle),
            ShapeKind.Star => Star(5, 0.45),
            _ => null,
        };
    }

    private double[] Regular(int n, double phase)
    {
        var p = new double[2 * n];
        for (int i = 0; i < n; i++)
        {
            double a = phase + 2 * Math.PI * i / n;
            p[2 * i] = CenterX + Radius * Math.Cos(a);
            p[2 * i + 1] = CenterY + Radius * Math.Sin(a);
        }
        return p;
    }

    private double[] Star(int points, double inner)
    {
        var p = new double[4 * points];
        for (int i = 0; i < 2 * points; i++)
        {
            double a = Angle - Math.PI / 2 + Math.PI * i / points;
            double r = i % 2 == 0 ? Radius : Radius * inner;
            p[2 * i] = CenterX + r * Math.Cos(a);
            p[2 * i + 1] = CenterY + r * Math.Sin(a);
        }
        return p;
    }

    /// <summary>Whether the point (px, py) lies inside the shape.</summary>
    public bool Contains(double px, double py, double[]? outline)
    {
        double dx = px - CenterX, dy = py - CenterY;
        switch (Kind)
        {
            case ShapeKind.Circle:
                return dx * dx + dy * dy <= Radius * Radius;
            case ShapeKind.Ellipse:
            {
                double c = Math.Cos(Angle), s = Math.Sin(Angle);
                double u = (dx * c + dy * s) / Radius, v = (-dx * s + dy * c) / (Radius * Aspect);
                return u * u + v * v <= 1;
            }
            default:
                return PointInPolygon(outline!, px, py);
        }
    }

    /// <summary>Even-odd rule.</summary>
    internal static bool PointInPolygon(double[] xy, double px, double py)
    {
        bool inside = false;
        int n = xy.Length / 2;
        for (int i = 0, j = n - 1; i < n; j = i++)
        {
            double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
            if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) inside = !inside;
        }
        return inside;
    }

    /// <summary>The shape's pixels in an image of the given size, row-major (1 inside).</summary>
    public byte[] Rasterize(int height, int width)
    {
        var mask = new byte[height * width];
        var outline = Outline();
        int x0 = Math.Max(0, (int)Math.Floor(CenterX - Radius) - 1), x1 = Math.Min(width - 1, (int)Math.Ceiling(CenterX + Radius) + 1);
        int y0 = Math.Max(0, (int)Math.Floor(CenterY - Radius) - 1), y1 = Math.Min(height - 1, (int)Math.Ceiling(CenterY + Radius) + 1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
                if (Contains(x + 0.5, y + 0.5, outline)) mask[y * width + x] = 1;
        return mask;
    }
}
