using Runtime.Autograd;

namespace Runtime.Tests;

/// <summary>Assertions on tensor values and a float64 finite-difference gradient check.</summary>
public static class TestUtil
{
    public static void AssertClose(double[] expected, Tensor actual, double atol = 1e-6, double rtol = 1e-5)
    {
        var got = actual.ToDoubleArray();
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
        {
            double e = expected[i], g = got[i];
            if (double.IsNaN(e)) { Assert.True(double.IsNaN(g), $"element {i}: expected NaN, got {g}"); continue; }
            if (double.IsInfinity(e)) { Assert.Equal(e, g); continue; }
            Assert.True(Math.Abs(e - g) <= atol + rtol * Math.Abs(e), $"element {i}: expected {e}, got {g} (|diff| {Math.Abs(e - g):g3})");
        }
    }

    public static void AssertShape(Tensor t, params int[] shape) =>
        Assert.Equal(shape, t.Shape.ToArray());

    public static Tensor RandnF64(int[] shape, ulong seed) =>
        Tensor.Randn(shape, new Generator(seed), DType.Float64);

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
            using var w = Tensor.Randn(y.ShapeArray, new Generator(seed), DType.Float64);
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
                    using var xi = Tensor.From<double>(values, x.ShapeArray);
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
