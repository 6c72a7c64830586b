namespace Runtime.Backends;

/// <summary>Elementwise one-input operations. Parameters (slope, bounds, beta...) travel as two doubles.</summary>
public enum UnaryOp
{
    Neg, Abs, Sign, Exp, Log, Log1p, Sqrt, Rsqrt, Reciprocal, Square, Sin, Cos, Tanh, Sigmoid, Erf,
    Relu, LeakyRelu, Gelu, GeluTanh, Softplus, Floor, Ceil, Round, Clamp, PowScalar, LogicalNot,
}

/// <summary>Elementwise two-input operations. Comparisons and logical ops write <see cref="DType.Bool"/>.</summary>
public enum BinaryOp
{
    Add, Sub, Mul, Div, Pow, Maximum, Minimum,
    Eq, Ne, Lt, Le, Gt, Ge,
    LogicalAnd, LogicalOr, LogicalXor,
}

/// <summary>Reductions over the middle axis of an [outer, k, inner] block.</summary>
public enum ReduceOp
{
    Sum, Prod, Max, Min, Any, All,
}

public static class OpKinds
{
    public static bool IsComparison(this BinaryOp op) => op is >= BinaryOp.Eq and <= BinaryOp.Ge;

    public static bool IsLogical(this BinaryOp op) => op is >= BinaryOp.LogicalAnd;
}
