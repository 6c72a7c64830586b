using System.Text.Json;
using Runtime.Autograd;

namespace Runtime.Nn.Tests.Modules;

/// <summary>Value assertions, a float64 finite-difference gradient check and the goldens of golden/modules.</summary>
internal static class ModuleTestUtil
{
    private static readonly Lazy<JsonElement> _goldens = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "golden", "modules", "modules.json"))).RootElement);

    public static JsonElement Golden(string name) => _goldens.Value.GetProperty(name);

    public static double[] Data(JsonElement t) => t.GetProperty("data").EnumerateArray().Select(e => e.GetDouble()).ToArray();

    public static int[] ShapeOf(JsonElement t) => t.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();

    public static Tensor ToTensor(JsonElement t) => Tensor.From<double>(Data(t), ShapeOf(t));

    public static void AssertClose(double[] expected, Tensor actual, double atol = 1e-9, double rtol = 1e-7)
    {
        var got = actual.ToDoubleArray();
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
            Assert.True(Math.Abs(expected[i] - got[i]) <= atol + rtol * Math.Abs(expected[i]),
                $"element {i}: expected {expected[i]}, got {got[i]} (|diff| {Math.Abs(expected[i] - got[i]):g3})");
    }

    public static void AssertGolden(JsonElement expected, Tensor actual, double atol = 1e-9, double rtol = 1e-7)
    {
        Assert.Equal(ShapeOf(expected), actual.Shape.ToArray());
        AssertClose(Data(expected), actual, atol, rtol);
    }

    public static Tensor RandnF64(int[] shape, ulong seed) => Tensor.Randn(shape, new Generator(seed), DType.Float64);

    /// <summary>Central differences against backward for every element of every (Float64) input.</summary>
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
            using var w = Tensor.Randn(y.Shape.ToArray(), new Generator(seed), DType.Float64);
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
}
