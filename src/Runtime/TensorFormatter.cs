using System.Globalization;
using System.Text;

namespace Runtime;

/// <summary>Prints tensors the way PyTorch does: nested brackets, aligned columns, "..." beyond 1000 elements.</summary>
internal static class TensorFormatter
{
    private const int Threshold = 1000, EdgeItems = 3;

    public static string Format(Tensor t)
    {
        if (t.IsDisposed) return "tensor(<disposed>)";
        var values = t.ToDoubleArray();
        var shape = t.ShapeArray;
        bool summarize = values.Length > Threshold;
        var shown = new List<double>();
        Collect(values, shape, 0, 0, summarize, shown);
        var fmt = Chooser(t.DType, shown);
        int width = shown.Count == 0 ? 1 : shown.Max(v => fmt(v).Length);
        var sb = new StringBuilder("tensor(");
        if (values.Length == 0 && shape.Length > 0) sb.Append("[]");
        else Write(sb, values, shape, 0, 0, summarize, fmt, width, "tensor(".Length);
        sb.Append(", shape=").Append(Shapes.Format(shape)).Append(", dtype=").Append(t.DType.Name());
        if (t.Device != Device.Cpu) sb.Append(", device=").Append(t.Device);
        if (t.GradFn != null) sb.Append(", grad_fn=<").Append(t.GradFn).Append('>');
        else if (t.RequiresGrad) sb.Append(", requires_grad=True");
        return sb.Append(')').ToString();
    }

    private static IEnumerable<long> Indices(int size, bool summarize)
    {
        if (!summarize || size <= 2 * EdgeItems)
        {
            for (long i = 0; i < size; i++) yield return i;
            yield break;
        }
        for (long i = 0; i < EdgeItems; i++) yield return i;
        yield return -1;
        for (long i = size - EdgeItems; i < size; i++) yield return i;
    }

    private static long Stride(int[] shape, int dim)
    {
        long s = 1;
        for (int d = dim + 1; d < shape.Length; d++) s *= shape[d];
        return s;
    }

    private static void Collect(double[] v, int[] shape, int dim, long offset, bool summarize, List<double> shown)
    {
        if (shape.Length == 0) { shown.Add(v[0]); return; }
        foreach (var i in Indices(shape[dim], summarize))
        {
            if (i < 0) continue;
            long o = offset + i * Stride(shape, dim);
            if (dim == shape.Length - 1) shown.Add(v[o]);
            else Collect(v, shape, dim + 1, o, summarize, shown);
        }
    }

    private static Func<double, string> Chooser(DType dtype, List<double> shown)
    {
        var ci = CultureInfo.InvariantCulture;
        if (dtype == DType.Bool) return v => v != 0 ? "True" : "False";
        if (!dtype.IsFloating()) return v => ((long)v).ToString(ci);
        var finite = shown.Where(double.IsFinite).Select(Math.Abs).ToList();
        bool ints = finite.All(x => x == Math.Floor(x));
        double max = finite.Count > 0 ? finite.Max() : 0, min = finite.Where(x => x > 0).DefaultIfEmpty(0).Min();
        string Special(double v) => double.IsNaN(v) ? "nan" : v > 0 ? "inf" : "-inf";
        if (ints && max < 1e8) return v => double.IsFinite(v) ? v.ToString("0", ci) + "." : Special(v);
        if (max >= 1e8 || (min > 0 && (min < 1e-4 || max / min > 1e3)))
            return v => double.IsFinite(v) ? v.ToString("0.0000e+00", ci) : Special(v);
        return v => double.IsFinite(v) ? v.ToString("0.0000", ci) : Special(v);
    }

    private static void Write(StringBuilder sb, double[] v, int[] shape, int dim, long offset, bool summarize, Func<double, string> fmt, int width, int indent)
    {
        if (shape.Length == 0)
        {
            sb.Append(fmt(v[0]));
            return;
        }
        sb.Append('[');
        bool first = true;
        foreach (var i in Indices(shape[dim], summarize))
        {
            if (!first)
            {
                sb.Append(',');
                if (dim == shape.Length - 1) sb.Append(' ');
                else sb.Append('\n', shape.Length - 1 - dim).Append(' ', indent + dim + 1);
            }
            first = false;
            if (i < 0)
            {
                sb.Append("...");
                continue;
            }
            long o = offset + i * Stride(shape, dim);
            if (dim == shape.Length - 1) sb.Append(fmt(v[o]).PadLeft(width));
            else Write(sb, v, shape, dim + 1, o, summarize, fmt, width, indent);
        }
        sb.Append(']');
    }
}
