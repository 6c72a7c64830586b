namespace Runtime.Models.Tests;

/// <summary>Central finite differences against backward, in float64: of a tensor input, or of a module's parameter changed in place.</summary>
internal static class FiniteDifferences
{
    /// <summary>Checks the gradient of the scalar <paramref name="f"/>(x) with respect to the Float64 tensor <paramref name="x"/>.</summary>
    public static void Check(Func<Tensor, Tensor> f, Tensor x, double eps = 1e-6, double atol = 1e-7, double rtol = 1e-5)
    {
        Assert.Equal(DType.Float64, x.DType);
        x.RequiresGrad = true;
        x.Grad = null;
        using (var y = f(x)) y.Backward();
        var analytic = x.Grad!.ToArray<double>();
        var values = x.ToArray<double>();
        using var noGrad = GradMode.NoGrad();
        double Eval(int i, double v)
        {
            var copy = (double[])values.Clone();
            copy[i] = v;
            using var xi = Tensor.From<double>(copy, x.Shape.ToArray());
            using var y = f(xi);
            return y.Item();
        }
        Compare(analytic, values, Eval, eps, atol, rtol);
    }

    /// <summary>
    /// Checks the gradient of the scalar <paramref name="loss"/>() with respect to <paramref name="parameter"/> (a Float64
    /// leaf the loss reads), changing the parameter's values in place and restoring them afterwards.
    /// </summary>
    public static void CheckParameter(Func<Tensor> loss, Tensor parameter, double eps = 1e-6, double atol = 1e-7, double rtol = 1e-5)
    {
        Assert.Equal(DType.Float64, parameter.DType);
        parameter.Grad = null;
        using (var y = loss()) y.Backward();
        var analytic = parameter.Grad!.ToArray<double>();
        var values = parameter.ToArray<double>();
        using var noGrad = GradMode.NoGrad();
        void Set(double[] v)
        {
            using var t = Tensor.From<double>(v, parameter.Shape.ToArray());
            parameter.CopyFrom(t);
        }
        double Eval(int i, double v)
        {
            var copy = (double[])values.Clone();
            copy[i] = v;
            Set(copy);
            using var y = loss();
            return y.Item();
        }
        try
        {
            Compare(analytic, values, Eval, eps, atol, rtol);
        }
        finally
        {
            Set(values);
        }
    }

    private static void Compare(double[] analytic, double[] values, Func<int, double, double> eval, double eps, double atol, double rtol)
    {
        Assert.Contains(analytic, g => g != 0);
        for (int i = 0; i < values.Length; i++)
        {
            double numeric = (eval(i, values[i] + eps) - eval(i, values[i] - eps)) / (2 * eps);
            Assert.True(Math.Abs(numeric - analytic[i]) <= atol + rtol * Math.Abs(numeric), $"element {i}: numeric {numeric:R}, analytic {analytic[i]:R}");
        }
    }
}
