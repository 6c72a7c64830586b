using Runtime.Backends;

namespace Runtime;

public sealed partial class Tensor
{
    internal delegate Tensor UnaryGrad(Tensor grad, Tensor x, Tensor y);

    /// <summary>
    /// Runs a unary kernel and records its gradient rule <paramref name="grad"/>(g, x, y) (null: not differentiable).
    /// Float-only functions turn integer inputs into Float32 first, as PyTorch does.
    /// </summary>
    /// <summary>What a unary op's gradient rule reads, so that autograd keeps only that alive until the backward.</summary>
    private enum Reads { InputAndOutput, Output, Nothing }

    private Tensor UnaryKernel(UnaryOp op, string name, double a, double b, bool floatOnly, UnaryGrad? grad, Reads reads = Reads.InputAndOutput)
    {
        using var x = floatOnly && !DType.IsFloating() ? ToUntracked(DType.Float32) : Alias(register: false);
        var y = Empty(ShapeArray, x.DType, Device);
        if (y.NumEl > 0) Backend.Unary(op, x.KernelView, y.KernelView, a, b);
        if (grad == null || !DType.IsFloating()) return y;
        // A rule that needs only the output (ReLU, exp, sigmoid, ...) must not keep the input alive: in a network the
        // input of a ReLU is a whole activation (a norm's output) that nothing else holds on to.
        return reads switch
        {
            Reads.Output => Record(y, name, [this], [y], (g, s) => [grad(g, null!, s[0])]),
            Reads.Nothing => Record(y, name, [this], [], (g, s) => [grad(g, null!, null!)]),
            _ => Record(y, name, [this], [this, y], (g, s) => [grad(g, s[0], s[1])]),
        };
    }

    private static Tensor ZeroGrad(Tensor g, Tensor x, Tensor y) => ZerosLike(g);

    public Tensor Neg() => UnaryKernel(UnaryOp.Neg, "Neg", 0, 0, false, (g, x, y) => g.Neg(), Reads.Nothing);

    public Tensor Abs() => UnaryKernel(UnaryOp.Abs, "Abs", 0, 0, false, (g, x, y) =>
    {
        using var s = x.Sign();
        return g * s;
    });

    public Tensor Sign() => UnaryKernel(UnaryOp.Sign, "Sign", 0, 0, false, ZeroGrad, Reads.Nothing);

    public Tensor Exp() => UnaryKernel(UnaryOp.Exp, "Exp", 0, 0, true, (g, x, y) => g * y, Reads.Output);

    public Tensor Log() => UnaryKernel(UnaryOp.Log, "Log", 0, 0, true, (g, x, y) => g / x);

    public Tensor Log1p() => UnaryKernel(UnaryOp.Log1p, "Log1p", 0, 0, true, (g, x, y) =>
    {
        using var d = x + 1.0;
        return g / d;
    });

    public Tensor Sqrt() => UnaryKernel(UnaryOp.Sqrt, "Sqrt", 0, 0, true, (g, x, y) =>
    {
        using var d = y * 2.0;
        return g / d;
    }, Reads.Output);

    public Tensor Rsqrt() => UnaryKernel(UnaryOp.Rsqrt, "Rsqrt", 0, 0, true, (g, x, y) =>
    {
        using var y3 = y.Pow(3);
        using var d = y3 * -0.5;
        return g * d;
    }, Reads.Output);

    public Tensor Reciprocal() => UnaryKernel(UnaryOp.Reciprocal, "Reciprocal", 0, 0, true, (g, x, y) =>
    {
        using var y2 = y.Square();
        using var d = -y2;
        return g * d;
    }, Reads.Output);

    public Tensor Square() => UnaryKernel(UnaryOp.Square, "Square", 0, 0, false, (g, x, y) =>
    {
        using var d = x * 2.0;
        return g * d;
    });

    public Tensor Sin() => UnaryKernel(UnaryOp.Sin, "Sin", 0, 0, true, (g, x, y) =>
    {
        using var c = x.Cos();
        return g * c;
    });

    public Tensor Cos() => UnaryKernel(UnaryOp.Cos, "Cos", 0, 0, true, (g, x, y) =>
    {
        using var s = x.Sin();
        using var ns = -s;
        return g * ns;
    });

    public Tensor Tanh() => UnaryKernel(UnaryOp.Tanh, "Tanh", 0, 0, true, (g, x, y) =>
    {
        using var y2 = y.Square();
        using var d = 1.0 - y2;
        return g * d;
    }, Reads.Output);

    public Tensor Sigmoid() => UnaryKernel(UnaryOp.Sigmoid, "Sigmoid", 0, 0, true, (g, x, y) =>
    {
        using var om = 1.0 - y;
        using var d = y * om;
        return g * d;
    }, Reads.Output);

    public Tensor Erf() => UnaryKernel(UnaryOp.Erf, "Erf", 0, 0, true, (g, x, y) =>
    {
        using var x2 = x.Square();
        using var nx2 = -x2;
        using var e = nx2.Exp();
        using var d = e * 1.1283791670955126;
        return g * d;
    });

    public Tensor Relu() => UnaryKernel(UnaryOp.Relu, "Relu", 0, 0, false, (g, x, y) =>
    {
        using var m = y.Gt(0.0);
        return g * m;
    }, Reads.Output);

    public Tensor LeakyRelu(double negativeSlope = 0.01) => UnaryKernel(UnaryOp.LeakyRelu, "LeakyRelu", negativeSlope, 0, true, (g, x, y) =>
    {
        using var pos = x.Gt(0.0);
        using var one = OnesLike(g);
        using var slope = FullLike(g, negativeSlope);
        using var d = Where(pos, one, slope);
        return g * d;
    });

    /// <summary>GELU: exact (erf) form, or the tanh approximation with <paramref name="approximateTanh"/>.</summary>
    public Tensor Gelu(bool approximateTanh = false) => approximateTanh
        ? UnaryKernel(UnaryOp.GeluTanh, "Gelu", 0, 0, true, (g, x, y) =>
        {
            const double k = 0.7978845608028654, c = 0.044715;
            using var x2 = x.Square();
            using var x3 = x2 * x;
            using var inner0 = x3 * c;
            using var inner1 = x + inner0;
            using var u = inner1 * k;
            using var t = u.Tanh();
            using var onePlusT = t + 1.0;
            using var left = onePlusT * 0.5;
            using var t2 = t.Square();
            using var sech2 = 1.0 - t2;
            using var du0 = x2 * (3 * c);
            using var du1 = du0 + 1.0;
            using var du = du1 * k;
            using var r0 = x * sech2;
            using var r1 = r0 * du;
            using var right = r1 * 0.5;
            using var d = left + right;
            return g * d;
        })
        : UnaryKernel(UnaryOp.Gelu, "Gelu", 0, 0, true, (g, x, y) =>
        {
            using var xs = x * 0.7071067811865476;
            using var e = xs.Erf();
            using var cdf0 = e + 1.0;
            using var cdf = cdf0 * 0.5;
            using var x2 = x.Square();
            using var h = x2 * -0.5;
            using var pdf0 = h.Exp();
            using var pdf = pdf0 * 0.3989422804014327;
            using var xpdf = x * pdf;
            using var d = cdf + xpdf;
            return g * d;
        });

    /// <summary>log(1 + exp(beta x)) / beta, linear where beta x exceeds <paramref name="threshold"/>.</summary>
    public Tensor Softplus(double beta = 1, double threshold = 20) => UnaryKernel(UnaryOp.Softplus, "Softplus", beta, threshold, true, (g, x, y) =>
    {
        using var bx = x * beta;
        using var s = bx.Sigmoid();
        using var lin = bx.Gt(threshold);
        using var one = OnesLike(s);
        using var d = Where(lin, one, s);
        return g * d;
    });

    public Tensor Floor() => UnaryKernel(UnaryOp.Floor, "Floor", 0, 0, false, ZeroGrad, Reads.Nothing);

    public Tensor Ceil() => UnaryKernel(UnaryOp.Ceil, "Ceil", 0, 0, false, ZeroGrad, Reads.Nothing);

    /// <summary>Rounds half to even.</summary>
    public Tensor Round() => UnaryKernel(UnaryOp.Round, "Round", 0, 0, false, ZeroGrad, Reads.Nothing);

    /// <summary>Limits values to [min, max]; either bound may be null. The gradient passes where min &lt;= x &lt;= max.</summary>
    public Tensor Clamp(double? min = null, double? max = null)
    {
        if (min == null && max == null) throw new ArgumentException("Clamp needs at least one of min and max", nameof(min));
        double lo = min ?? double.NegativeInfinity, hi = max ?? double.PositiveInfinity;
        return UnaryKernel(UnaryOp.Clamp, "Clamp", lo, hi, false, (g, x, y) =>
        {
            using var a = x.Ge(lo);
            using var b = x.Le(hi);
            using var m = a.LogicalAnd(b);
            return g * m;
        });
    }
}
