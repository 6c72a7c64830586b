using System.Runtime.Intrinsics;
using Runtime.Backends;

namespace Runtime.Cpu;

/// <summary>
/// One elementwise function: a double-precision scalar form (used for every dtype) and, where the
/// function is hot, float32 SIMD forms. Parameters a and b carry slope, bounds, beta, exponent.
/// </summary>
internal interface IUnaryFn
{
    static abstract double F(double x, double a, double b);

    static virtual bool Simd => false;

    static virtual Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => throw new NotSupportedException();

    static virtual Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => throw new NotSupportedException();
}

internal static class UnaryFns
{
    public struct Neg : IUnaryFn
    {
        public static double F(double x, double a, double b) => -x;
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => -x;
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => -x;
    }

    public struct Abs : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Abs(x);
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.Abs(x);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256.Abs(x);
    }

    public struct Sign : IUnaryFn
    {
        public static double F(double x, double a, double b) => x > 0 ? 1 : x < 0 ? -1 : x;
    }

    public struct Exp : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Exp(x);
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.Exp(x);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256.Exp(x);
    }

    public struct Log : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Log(x);
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.Log(x);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256.Log(x);
    }

    public struct Log1p : IUnaryFn
    {
        // log(u) * x / (u - 1) with u = 1 + x cancels the rounding of 1 + x (Goldberg): accurate to a few ulps everywhere.
        public static double F(double x, double a, double b)
        {
            double u = 1 + x;
            return u == 1 || double.IsPositiveInfinity(u) ? x : Math.Log(u) * x / (u - 1);
        }
    }

    public struct Sqrt : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Sqrt(x);
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.Sqrt(x);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256.Sqrt(x);
    }

    public struct Rsqrt : IUnaryFn
    {
        public static double F(double x, double a, double b) => 1 / Math.Sqrt(x);
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512<float>.One / Vector512.Sqrt(x);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256<float>.One / Vector256.Sqrt(x);
    }

    public struct Reciprocal : IUnaryFn
    {
        public static double F(double x, double a, double b) => 1 / x;
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512<float>.One / x;
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256<float>.One / x;
    }

    public struct Square : IUnaryFn
    {
        public static double F(double x, double a, double b) => x * x;
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => x * x;
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => x * x;
    }

    public struct Sin : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Sin(x);
    }

    public struct Cos : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Cos(x);
    }

    public struct Tanh : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Tanh(x);
    }

    public struct Sigmoid : IUnaryFn
    {
        public static double F(double x, double a, double b) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-x));
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-x));
    }

    public struct Erf : IUnaryFn
    {
        public static double F(double x, double a, double b) => MathEx.Erf(x);
    }

    public struct Relu : IUnaryFn
    {
        public static double F(double x, double a, double b) => x > 0 || double.IsNaN(x) ? x : 0;
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.Max(x, Vector512<float>.Zero);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256.Max(x, Vector256<float>.Zero);
    }

    public struct LeakyRelu : IUnaryFn
    {
        public static double F(double x, double a, double b) => x > 0 ? x : x * a;
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, x * a);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, x * a);
    }

    public struct Gelu : IUnaryFn
    {
        public static double F(double x, double a, double b) => 0.5 * x * (1 + MathEx.Erf(x * 0.7071067811865476));
    }

    public struct GeluTanh : IUnaryFn
    {
        public static double F(double x, double a, double b) => 0.5 * x * (1 + Math.Tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    }

    /// <summary>a = beta, b = threshold (linear above it), as torch.nn.functional.softplus.</summary>
    public struct Softplus : IUnaryFn
    {
        public static double F(double x, double a, double b) => x * a > b ? x : Log1p.F(Math.Exp(x * a), 0, 0) / a;
    }

    public struct Floor : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Floor(x);
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.Floor(x);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256.Floor(x);
    }

    public struct Ceil : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Ceiling(x);
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.Ceiling(x);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256.Ceiling(x);
    }

    /// <summary>Round half to even, as torch.round.</summary>
    public struct Round : IUnaryFn
    {
        public static double F(double x, double a, double b) => Math.Round(x, MidpointRounding.ToEven);
    }

    /// <summary>a = lower bound, b = upper bound (±inf when absent).</summary>
    public struct Clamp : IUnaryFn
    {
        public static double F(double x, double a, double b) => double.IsNaN(x) ? x : Math.Min(Math.Max(x, a), b);
        public static bool Simd => true;
        public static Vector512<float> V(Vector512<float> x, Vector512<float> a, Vector512<float> b) => Vector512.Min(Vector512.Max(x, a), b);
        public static Vector256<float> V(Vector256<float> x, Vector256<float> a, Vector256<float> b) => Vector256.Min(Vector256.Max(x, a), b);
    }

    public struct PowScalar : IUnaryFn
    {
        public static double F(double x, double a, double b) => a == 2 ? x * x : Math.Pow(x, a);
    }

    public struct LogicalNot : IUnaryFn
    {
        public static double F(double x, double a, double b) => x == 0 ? 1 : 0;
    }
}
