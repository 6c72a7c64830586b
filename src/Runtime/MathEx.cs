namespace Runtime;

/// <summary>Scalar special functions the BCL lacks, accurate to double precision.</summary>
public static class MathEx
{
    private const double TwoOverSqrtPi = 1.1283791670955126;

    /// <summary>The error function. Taylor series near zero, a continued fraction for erfc in the tails.</summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double ax = Math.Abs(x);
        if (ax < 2.5)
        {
            // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
            double x2 = x * x, term = x, sum = x;
            for (int n = 1; n < 80; n++)
            {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }
            return TwoOverSqrtPi * sum;
        }
        if (ax > 6.5) return Math.Sign(x);
        return Math.Sign(x) * (1 - ErfcTail(ax));
    }

    // erfc(x) for x >= 2.5: exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) by modified Lentz.
    private static double ErfcTail(double x)
    {
        const double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int n = 1; n < 200; n++)
        {
            double an = n * 0.5;
            d = x + an * d;
            if (Math.Abs(d) < tiny) d = tiny;
            c = x + an / c;
            if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / f;
    }
}
