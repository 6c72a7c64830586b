using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime;

public sealed partial class Tensor
{
    /// <summary>Attaches a gradient rule to <paramref name="y"/> when grad mode is on and an input requires grad.</summary>
    internal static Tensor Record(Tensor y, string name, Tensor[] inputs, Tensor[] save, Node.BackwardFn backward)
    {
        if (!GradMode.IsEnabled) return y;
        bool any = false;
        foreach (var t in inputs) any |= t.RequiresGrad;
        if (!any) return y;
        if (!y.DType.IsFloating())
            throw new InvalidOperationException($"{name}: result of dtype {y.DType.Name()} cannot carry a gradient");
        y.MarkComputed(new Node(name, inputs, save, backward));
        return y;
    }

    /// <summary>Sums a broadcast gradient back to an input's shape and dtype.</summary>
    internal static Tensor ReduceGrad(Tensor g, int[] shape, DType dtype)
    {
        var s = g.SumToShape(shape);
        if (s.DType == dtype) return s;
        var c = s.To(dtype);
        s.Dispose();
        return c;
    }

    /// <summary>Sums over the dimensions along which <paramref name="shape"/> was broadcast to this tensor's shape.</summary>
    public Tensor SumToShape(int[] shape)
    {
        if (Shape.SequenceEqual(shape)) return Alias(register: true);
        int lead = Rank - shape.Length;
        if (lead < 0) throw new ArgumentException($"cannot sum shape {Shapes.Format(Shape)} to the larger shape {Shapes.Format(shape)}", nameof(shape));
        var dims = new List<int>();
        for (int d = 0; d < Rank; d++)
            if (d < lead || (shape[d - lead] == 1 && _shape[d] != 1)) dims.Add(d);
        using var s = Sum(dims.ToArray(), keepDim: true);
        return s.Reshape(shape);
    }

    // ---------------- binary ----------------

    private static Tensor ScalarLike(Tensor t, double value, bool integral)
    {
        DType dt = t.DType.IsFloating() ? t.DType : integral ? (t.DType == DType.Bool ? DType.Int64 : t.DType) : DType.Float32;
        return Scalar(value, dt, t.Device);
    }

    /// <summary>Runs a binary kernel after broadcasting and converting both inputs to <paramref name="compute"/>.</summary>
    private static Tensor BinaryKernel(BinaryOp op, Tensor a, Tensor b, DType compute, DType result)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        a.CheckSameDevice(b, nameof(b));
        var shape = Shapes.Broadcast(a.Shape, b.Shape, nameof(b));
        using var ca = a.DType == compute ? a.Alias(register: false) : a.ToUntracked(compute);
        using var cb = b.DType == compute ? b.Alias(register: false) : b.ToUntracked(compute);
        var y = Empty(shape, result, a.Device);
        if (y.NumEl == 0) return y;
        var va = new TensorView(ca.StorageOrThrow, ca._offset, shape, Shapes.BroadcastStrides(ca.Shape, ca.Strides, shape), compute);
        var vb = new TensorView(cb.StorageOrThrow, cb._offset, shape, Shapes.BroadcastStrides(cb.Shape, cb.Strides, shape), compute);
        a.Backend.Binary(op, va, vb, y.KernelView);
        return y;
    }

    private static DType ArithmeticType(Tensor a, Tensor b)
    {
        var t = DTypes.Promote(a.DType, b.DType);
        return t == DType.Bool ? DType.Int64 : t;
    }

    public static Tensor Add(Tensor a, Tensor b)
    {
        var t = ArithmeticType(a, b);
        var y = BinaryKernel(BinaryOp.Add, a, b, t, t);
        int[] sa = a.ShapeArray, sb = b.ShapeArray;
        DType da = a.DType, db = b.DType;
        return Record(y, "Add", [a, b], [], (g, _) => [ReduceGrad(g, sa, da), ReduceGrad(g, sb, db)]);
    }

    public static Tensor Sub(Tensor a, Tensor b)
    {
        var t = ArithmeticType(a, b);
        var y = BinaryKernel(BinaryOp.Sub, a, b, t, t);
        int[] sa = a.ShapeArray, sb = b.ShapeArray;
        DType da = a.DType, db = b.DType;
        return Record(y, "Sub", [a, b], [], (g, _) =>
        {
            using var ng = -g;
            return [ReduceGrad(g, sa, da), ReduceGrad(ng, sb, db)];
        });
    }

    public static Tensor Mul(Tensor a, Tensor b)
    {
        var t = ArithmeticType(a, b);
        var y = BinaryKernel(BinaryOp.Mul, a, b, t, t);
        int[] sa = a.ShapeArray, sb = b.ShapeArray;
        DType da = a.DType, db = b.DType;
        return Record(y, "Mul", [a, b], [a, b], (g, s) =>
        {
            using var ga = g * s[1];
            using var gb = g * s[0];
            return [ReduceGrad(ga, sa, da), ReduceGrad(gb, sb, db)];
        });
    }

    /// <summary>True division: integer inputs give Float32.</summary>
    public static Tensor Div(Tensor a, Tensor b)
    {
        var t = ArithmeticType(a, b);
        if (!t.IsFloating()) t = DType.Float32;
        var y = BinaryKernel(BinaryOp.Div, a, b, t, t);
        int[] sa = a.ShapeArray, sb = b.ShapeArray;
        DType da = a.DType, db = b.DType;
        return Record(y, "Div", [a, b], [b, y], (g, s) =>
        {
            using var ga = g / s[0];
            using var q = ga * s[1];
            using var gb = -q;
            return [ReduceGrad(ga, sa, da), ReduceGrad(gb, sb, db)];
        });
    }

    public static Tensor Pow(Tensor a, Tensor b)
    {
        var t = ArithmeticType(a, b);
        var y = BinaryKernel(BinaryOp.Pow, a, b, t, t);
        int[] sa = a.ShapeArray, sb = b.ShapeArray;
        DType da = a.DType, db = b.DType;
        return Record(y, "Pow", [a, b], [a, b, y], (g, s) =>
        {
            // d/da = b * a^(b-1) (0 where b == 0); d/db = y * log(a) (taken as 0 where a == 0, as PyTorch does).
            using var bm1 = s[1] - 1.0;
            using var p = Pow(s[0], bm1);
            using var d1 = s[1] * p;
            using var b0 = s[1].Eq(0.0);
            using var d1z = d1.MaskedFill(b0, 0);
            using var ga = g * d1z;
            using var la = s[0].Log();
            using var zero = s[0].Eq(0.0);
            using var la0 = la.MaskedFill(zero, 0);
            using var d2 = s[2] * la0;
            using var gb = g * d2;
            return [ReduceGrad(ga, sa, da), ReduceGrad(gb, sb, db)];
        });
    }

    /// <summary>Elementwise maximum; NaN propagates. Ties send half the gradient to each side, as PyTorch.</summary>
    public static Tensor Maximum(Tensor a, Tensor b) => MinMax(BinaryOp.Maximum, a, b);

    public static Tensor Minimum(Tensor a, Tensor b) => MinMax(BinaryOp.Minimum, a, b);

    private static Tensor MinMax(BinaryOp op, Tensor a, Tensor b)
    {
        var t = ArithmeticType(a, b);
        var y = BinaryKernel(op, a, b, t, t);
        int[] sa = a.ShapeArray, sb = b.ShapeArray;
        DType da = a.DType, db = b.DType;
        return Record(y, op.ToString(), [a, b], [a, b], (g, s) =>
        {
            using var win = op == BinaryOp.Maximum ? s[0].Gt(s[1]) : s[0].Lt(s[1]);
            using var tie = s[0].Eq(s[1]);
            using var wa = win.To(g.DType);
            using var half = tie.To(g.DType) * 0.5;
            using var fa = wa + half;
            using var fb = 1.0 - fa;
            using var ga = g * fa;
            using var gb = g * fb;
            return [ReduceGrad(ga, sa, da), ReduceGrad(gb, sb, db)];
        });
    }

    private static Tensor Compare(BinaryOp op, Tensor a, Tensor b) => BinaryKernel(op, a, b, DTypes.Promote(a.DType, b.DType), DType.Bool);

    private static Tensor Logical(BinaryOp op, Tensor a, Tensor b)
    {
        using var ba = a.DType == DType.Bool ? a.Alias(register: false) : a.ToUntracked(DType.Bool);
        using var bb = b.DType == DType.Bool ? b.Alias(register: false) : b.ToUntracked(DType.Bool);
        return BinaryKernel(op, ba, bb, DType.Bool, DType.Bool);
    }

    public Tensor Eq(Tensor other) => Compare(BinaryOp.Eq, this, other);
    public Tensor Ne(Tensor other) => Compare(BinaryOp.Ne, this, other);
    public Tensor Lt(Tensor other) => Compare(BinaryOp.Lt, this, other);
    public Tensor Le(Tensor other) => Compare(BinaryOp.Le, this, other);
    public Tensor Gt(Tensor other) => Compare(BinaryOp.Gt, this, other);
    public Tensor Ge(Tensor other) => Compare(BinaryOp.Ge, this, other);

    public Tensor Eq(double value) => WithScalar(value, Eq);
    public Tensor Ne(double value) => WithScalar(value, Ne);
    public Tensor Lt(double value) => WithScalar(value, Lt);
    public Tensor Le(double value) => WithScalar(value, Le);
    public Tensor Gt(double value) => WithScalar(value, Gt);
    public Tensor Ge(double value) => WithScalar(value, Ge);

    private Tensor WithScalar(double value, Func<Tensor, Tensor> op)
    {
        using var s = ScalarLike(this, value, Math.Floor(value) == value && !DType.IsFloating() ? true : false);
        return op(s);
    }

    public Tensor LogicalAnd(Tensor other) => Logical(BinaryOp.LogicalAnd, this, other);
    public Tensor LogicalOr(Tensor other) => Logical(BinaryOp.LogicalOr, this, other);
    public Tensor LogicalXor(Tensor other) => Logical(BinaryOp.LogicalXor, this, other);

    public Tensor LogicalNot()
    {
        using var b = DType == DType.Bool ? Alias(register: false) : ToUntracked(DType.Bool);
        var y = Empty(ShapeArray, DType.Bool, Device);
        if (y.NumEl > 0) Backend.Unary(UnaryOp.LogicalNot, b.KernelView, y.KernelView, 0, 0);
        return y;
    }

    public Tensor Add(Tensor other) => Add(this, other);
    public Tensor Sub(Tensor other) => Sub(this, other);
    public Tensor Mul(Tensor other) => Mul(this, other);
    public Tensor Div(Tensor other) => Div(this, other);
    public Tensor Pow(Tensor exponent) => Pow(this, exponent);
    public Tensor Maximum(Tensor other) => Maximum(this, other);
    public Tensor Minimum(Tensor other) => Minimum(this, other);

    private static Tensor WithScalar(Tensor t, double value, bool integral, bool scalarFirst, Func<Tensor, Tensor, Tensor> op)
    {
        using var s = ScalarLike(t, value, integral);
        return scalarFirst ? op(s, t) : op(t, s);
    }

    // Integer scalars travel as Int64 (exact beyond 2^53), then take the tensor's dtype.
    private static Tensor WithScalar(Tensor t, long value, bool scalarFirst, Func<Tensor, Tensor, Tensor> op)
    {
        DType dt = t.DType == DType.Bool ? DType.Int64 : t.DType;
        using var l = From<long>([value], [], t.Device);
        using var s = dt == DType.Int64 ? l.Alias(register: false) : l.ToUntracked(dt);
        return scalarFirst ? op(s, t) : op(t, s);
    }

    public static Tensor operator +(Tensor a, Tensor b) => Add(a, b);
    public static Tensor operator -(Tensor a, Tensor b) => Sub(a, b);
    public static Tensor operator *(Tensor a, Tensor b) => Mul(a, b);
    public static Tensor operator /(Tensor a, Tensor b) => Div(a, b);
    public static Tensor operator -(Tensor a) => a.Neg();

    public static Tensor operator +(Tensor a, double b) => WithScalar(a, b, false, false, Add);
    public static Tensor operator +(double a, Tensor b) => WithScalar(b, a, false, true, Add);
    public static Tensor operator -(Tensor a, double b) => WithScalar(a, b, false, false, Sub);
    public static Tensor operator -(double a, Tensor b) => WithScalar(b, a, false, true, Sub);
    public static Tensor operator *(Tensor a, double b) => WithScalar(a, b, false, false, Mul);
    public static Tensor operator *(double a, Tensor b) => WithScalar(b, a, false, true, Mul);
    public static Tensor operator /(Tensor a, double b) => WithScalar(a, b, false, false, Div);
    public static Tensor operator /(double a, Tensor b) => WithScalar(b, a, false, true, Div);
    public static Tensor operator +(Tensor a, long b) => WithScalar(a, b, false, Add);
    public static Tensor operator +(long a, Tensor b) => WithScalar(b, a, true, Add);
    public static Tensor operator -(Tensor a, long b) => WithScalar(a, b, false, Sub);
    public static Tensor operator -(long a, Tensor b) => WithScalar(b, a, true, Sub);
    public static Tensor operator *(Tensor a, long b) => WithScalar(a, b, false, Mul);
    public static Tensor operator *(long a, Tensor b) => WithScalar(b, a, true, Mul);
    public static Tensor operator /(Tensor a, long b) => WithScalar(a, b, false, Div);
    public static Tensor operator /(long a, Tensor b) => WithScalar(b, a, true, Div);

    /// <summary>this ** exponent, elementwise.</summary>
    public Tensor Pow(double exponent) => UnaryKernel(UnaryOp.PowScalar, "Pow", exponent, 0, floatOnly: true, (g, x, y) =>
    {
        if (exponent == 0) return ZerosLike(g); // not 0 * x^-1, which is NaN at x = 0
        using var p = x.Pow(exponent - 1);
        using var d = p * exponent;
        return g * d;
    });

    public Tensor Maximum(double value) => WithScalar(this, value, !DType.IsFloating() && Math.Floor(value) == value, false, Maximum);

    public Tensor Minimum(double value) => WithScalar(this, value, !DType.IsFloating() && Math.Floor(value) == value, false, Minimum);

    // ---------------- where ----------------

    /// <summary>condition ? a : b elementwise, all three broadcast together.</summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(condition);
        if (condition.DType != DType.Bool)
            throw new ArgumentException($"condition must be Bool, got {condition.DType.Name()}", nameof(condition));
        a.CheckSameDevice(b, nameof(b));
        a.CheckSameDevice(condition, nameof(condition));
        var shape = Shapes.Broadcast(Shapes.Broadcast(condition.Shape, a.Shape, nameof(a)), b.Shape, nameof(b));
        var t = DTypes.Promote(a.DType, b.DType);
        using var ca = a.DType == t ? a.Alias(register: false) : a.ToUntracked(t);
        using var cb = b.DType == t ? b.Alias(register: false) : b.ToUntracked(t);
        var y = Empty(shape, t, a.Device);
        if (y.NumEl > 0)
        {
            TensorView Bc(Tensor x) => new(x.StorageOrThrow, x._offset, shape, Shapes.BroadcastStrides(x.Shape, x.Strides, shape), x.DType);
            a.Backend.Where(Bc(condition), Bc(ca), Bc(cb), y.KernelView);
        }
        int[] sa = a.ShapeArray, sb = b.ShapeArray;
        DType da = a.DType, db = b.DType;
        return Record(y, "Where", [a, b], [condition], (g, s) =>
        {
            using var zero = ZerosLike(g);
            using var ga = Where(s[0], g, zero);
            using var gb = Where(s[0], zero, g);
            return [ReduceGrad(ga, sa, da), ReduceGrad(gb, sb, db)];
        });
    }

    /// <summary>This tensor with <paramref name="value"/> where <paramref name="mask"/> is true.</summary>
    public Tensor MaskedFill(Tensor mask, double value)
    {
        using var v = Scalar(value, DType, Device);
        return Where(mask, v, this);
    }
}
