using System.Numerics;
using System.Text;

namespace Runtime.Vision.Evaluation;

/// <summary>Bit-exact stand-ins for the numpy / Python behaviour the reference evaluators rely on.</summary>
internal static class PyCompat
{
    /// <summary><c>np.spacing(1)</c>: the gap between 1.0 and the next double.</summary>
    public const double Spacing1 = 2.220446049250313e-16;

    /// <summary>numpy's pairwise summation of a contiguous float64 array (<c>pairwise_sum_DOUBLE</c>, block 128, unroll 8).</summary>
    public static double PairwiseSum(ReadOnlySpan<double> a)
    {
        int n = a.Length;
        if (n < 8)
        {
            double res = 0.0;
            for (int i = 0; i < n; i++) res += a[i];
            return res;
        }
        if (n <= 128)
        {
            double r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7];
            int i;
            for (i = 8; i < n - (n % 8); i += 8)
            {
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3];
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7];
            }
            double res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
            for (; i < n; i++) res += a[i];
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return PairwiseSum(a[..n2]) + PairwiseSum(a[n2..]);
    }

    /// <summary>
    /// <c>np.mean</c> of a contiguous 1-D float64 array (NaN when empty): the reduction starts from 0 and adds the
    /// pairwise sum of each buffer-sized block (8192 elements) in turn, then divides by the count.
    /// </summary>
    public static double Mean(ReadOnlySpan<double> a)
    {
        if (a.Length == 0) return double.NaN;
        const int block = 8192;
        double acc = 0.0;
        for (int s = 0; s < a.Length; s += block) acc += PairwiseSum(a.Slice(s, Math.Min(block, a.Length - s)));
        return acc / a.Length;
    }

    /// <summary>Python's <c>'{:.Nf}'.format(v)</c>: exact decimal value of the double, rounded half to even.</summary>
    public static string FormatFixed(double v, int decimals)
    {
        if (double.IsNaN(v)) return "nan";
        if (double.IsInfinity(v)) return v > 0 ? "inf" : "-inf";
        bool neg = double.IsNegative(v);
        long bits = BitConverter.DoubleToInt64Bits(Math.Abs(v));
        int exp = (int)((bits >> 52) & 0x7FF);
        long frac = bits & 0xFFFFFFFFFFFFFL;
        BigInteger mant;
        int e2;
        if (exp == 0) { mant = frac; e2 = -1074; }
        else { mant = frac | (1L << 52); e2 = exp - 1075; }
        BigInteger scaled = mant * BigInteger.Pow(10, decimals);
        BigInteger q;
        if (e2 >= 0) q = scaled << e2;
        else
        {
            BigInteger den = BigInteger.One << -e2;
            q = BigInteger.DivRem(scaled, den, out BigInteger rem);
            int cmp = (rem * 2).CompareTo(den);
            if (cmp > 0 || (cmp == 0 && !q.IsEven)) q += 1;
        }
        string digits = q.ToString().PadLeft(decimals + 1, '0');
        var sb = new StringBuilder();
        if (neg) sb.Append('-');
        sb.Append(digits, 0, digits.Length - decimals);
        if (decimals > 0) sb.Append('.').Append(digits, digits.Length - decimals, decimals);
        return sb.ToString();
    }

    /// <summary>Stable argsort by descending key (numpy <c>argsort(-key, kind='mergesort')</c>; NaN last).</summary>
    public static int[] ArgsortDescendingStable(ReadOnlySpan<double> key)
    {
        var items = new DescKey[key.Length];
        for (int i = 0; i < items.Length; i++) items[i] = new DescKey(key[i], i);
        Array.Sort(items);   // unstable sort, but the index breaks every tie: the result is the stable order
        var idx = new int[items.Length];
        for (int i = 0; i < idx.Length; i++) idx[i] = items[i].Index;
        return idx;
    }

    private readonly record struct DescKey(double Key, int Index) : IComparable<DescKey>
    {
        public int CompareTo(DescKey o)
        {
            bool nx = double.IsNaN(Key), ny = double.IsNaN(o.Key);
            if (nx != ny) return nx ? 1 : -1;
            if (!nx)
            {
                if (Key > o.Key) return -1;
                if (Key < o.Key) return 1;
            }
            return Index.CompareTo(o.Index);
        }
    }

    /// <summary>Stable argsort of 0/1 flags, ascending (zeros first, each group in input order).</summary>
    public static int[] ArgsortStable(ReadOnlySpan<int> key)
    {
        var idx = new int[key.Length];
        int o = 0;
        for (int i = 0; i < key.Length; i++) if (key[i] == 0) idx[o++] = i;
        for (int i = 0; i < key.Length; i++) if (key[i] != 0) idx[o++] = i;
        return idx;
    }

    /// <summary><c>np.searchsorted(a, v, side='left')</c> for ascending <paramref name="a"/>: first i with a[i] &gt;= v.</summary>
    public static int SearchSortedLeft(ReadOnlySpan<double> a, double v)
    {
        int lo = 0, hi = a.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (a[mid] < v) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
