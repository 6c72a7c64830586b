using Runtime.Cpu;

namespace Runtime.Tests.Cpu;

/// <summary>What the CPU convolution path tests compare against: a float64 convolution of the same float32 values.</summary>
internal static class ConvReference
{
    /// <summary>Uniform values in [-scale, scale) from a seeded generator.</summary>
    public static Tensor Random(int[] shape, int seed, double scale)
    {
        var r = new Random(seed);
        var v = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < v.Length; i++) v[i] = (float)((r.NextDouble() * 2 - 1) * scale);
        return Tensor.From(v, shape);
    }

    /// <summary>The float64 convolution of the float32 values (+ residual, then ReLU when asked).</summary>
    public static Tensor Of(Tensor x, Tensor weight, Tensor? bias, int stride, int pad, int dilation, Tensor? residual, bool relu)
    {
        using var _ = Runtime.Autograd.GradMode.NoGrad();
        using var x64 = x.To(DType.Float64);
        using var w64 = weight.To(DType.Float64);
        using var b64 = bias?.To(DType.Float64);
        var y = x64.Conv2d(w64, b64, stride, pad, dilation);
        if (residual != null)
        {
            using var r64 = residual.To(DType.Float64);
            using var old = y;
            y = y + r64;
        }
        if (relu)
        {
            using var old = y;
            y = y.Relu();
        }
        return y;
    }

    /// <summary>
    /// Runs <paramref name="body"/> with a path policy set through <paramref name="set"/>, then puts back what
    /// <paramref name="get"/> read before (callers are in <see cref="ConvPathCollection"/>, so none sees another's).
    /// </summary>
    public static T WithPolicy<T>(Func<CpuBackend.PathPolicy> get, Action<CpuBackend.PathPolicy> set, CpuBackend.PathPolicy policy, Func<T> body)
    {
        var old = get();
        set(policy);
        try
        {
            return body();
        }
        finally
        {
            set(old);
        }
    }

    /// <summary>Asserts |expected - actual| at most <paramref name="bound"/> times the largest |expected|.</summary>
    public static void AssertClose(Tensor expected, Tensor actual, double bound)
    {
        var e = expected.To(DType.Float64).ToArray<double>();
        var a = actual.To(DType.Float64).ToArray<double>();
        Assert.Equal(e.Length, a.Length);
        double scale = e.Max(Math.Abs), worst = 0;
        for (int i = 0; i < e.Length; i++) worst = Math.Max(worst, Math.Abs(e[i] - a[i]));
        Assert.True(worst <= bound * scale, $"max error {worst:E3} exceeds {bound:E1} x {scale:E3}");
    }
}

/// <summary>
/// The test classes that switch the CPU's convolution path policies (process-wide statics) run one after another, so
/// that none sees the other's policy (a Winograd result checked against the direct paths' tighter bound).
/// </summary>
[CollectionDefinition(Name)]
public sealed class ConvPathCollection
{
    public const string Name = "CPU convolution path policies";
}
