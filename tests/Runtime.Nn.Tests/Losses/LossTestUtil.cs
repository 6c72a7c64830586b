using System.Text.Json;
using Runtime.Autograd;

namespace Runtime.Nn.Tests.Losses;

/// <summary>Golden loading, closeness assertions and a float64 finite-difference gradient check (copied from Runtime.Tests).</summary>
public static class LossTestUtil
{
    public static JsonElement LoadGolden(string file)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "golden", "losses_optim", file);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    public static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(ReadDouble).ToArray();

    public static double ReadDouble(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString() switch
        {
            "inf" or "Infinity" => double.PositiveInfinity,
            "-inf" or "-Infinity" => double.NegativeInfinity,
            _ => double.NaN,
        },
        _ => v.GetDouble(),
    };

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    public static long[] Longs(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt64()).ToArray();

    public static void AssertClose(double[] expected, double[] got, double atol, double rtol, string what = "")
    {
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
        {
            double e = expected[i], g = got[i];
            if (double.IsNaN(e)) { Assert.True(double.IsNaN(g), $"{what} element {i}: expected NaN, got {g}"); continue; }
            Assert.True(Math.Abs(e - g) <= atol + rtol * Math.Abs(e), $"{what} element {i}: expected {e}, got {g} (|diff| {Math.Abs(e - g):g3})");
        }
    }

    public static void AssertClose(double[] expected, Tensor actual, double atol = 1e-12, double rtol = 1e-10, string what = "") =>
        AssertClose(expected, actual.ToDoubleArray(), atol, rtol, what);

    /// <summary>
    /// Compares the backward pass of <paramref name="f"/> with central differences, for every input element.
    /// Inputs must be Float64 leaves; a random output weighting makes non-scalar outputs checkable.
    /// </summary>
    public static void GradCheck(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-4, ulong seed = 7)
    {
        foreach (var x in inputs)
        {
            Assert.Equal(DType.Float64, x.DType);
            x.RequiresGrad = true;
            x.Grad?.Dispose();
            x.Grad = null;
        }
        double[] weights;
        {
            using var y = f(inputs);
            Assert.True(y.RequiresGrad, "output does not require grad");
            using var w = Tensor.Randn(y.ShapeArrayCopy(), new Generator(seed), DType.Float64);
            weights = w.ToArray<double>();
            using var prod = y * w;
            using var loss = prod.Sum();
            loss.Backward();
        }
        for (int k = 0; k < inputs.Length; k++)
        {
            var x = inputs[k];
            var analytic = x.Grad == null ? new double[x.NumEl] : x.Grad.ToArray<double>();
            var values = x.ToArray<double>();
            for (int i = 0; i < values.Length; i++)
            {
                double orig = values[i];
                double Eval(double v)
                {
                    values[i] = v;
                    using var _ = GradMode.NoGrad();
                    using var xi = Tensor.From<double>(values, x.Shape.ToArray());
                    var args = (Tensor[])inputs.Clone();
                    args[k] = xi;
                    using var y = f(args);
                    var yv = y.ToArray<double>();
                    double s = 0;
                    for (int j = 0; j < yv.Length; j++) s += yv[j] * weights[j];
                    return s;
                }
                double numeric = (Eval(orig + eps) - Eval(orig - eps)) / (2 * eps);
                values[i] = orig;
                Assert.True(Math.Abs(numeric - analytic[i]) <= atol + rtol * Math.Abs(numeric),
                    $"input {k} element {i}: analytic {analytic[i]}, numeric {numeric}");
            }
        }
    }

    public static int[] ShapeArrayCopy(this Tensor t) => t.Shape.ToArray();

    public static Tensor F64(double[] data, int[] shape) => Tensor.From<double>(data, shape);

    public static Tensor RandnF64(int[] shape, ulong seed, double scale = 1.0)
    {
        using var r = Tensor.Randn(shape, new Generator(seed), DType.Float64);
        return r * scale;
    }
}
