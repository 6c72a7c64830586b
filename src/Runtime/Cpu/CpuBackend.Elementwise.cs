using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Runtime.Backends;

namespace Runtime.Cpu;

internal interface IBinaryFn
{
    static abstract T F<T>(T a, T b) where T : unmanaged, INumber<T>;

    static virtual bool Simd => true;

    static virtual Vector512<T> V<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged => throw new NotSupportedException();

    static virtual Vector256<T> V<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged => throw new NotSupportedException();
}

internal interface ICompareFn
{
    static abstract bool F<T>(T a, T b) where T : unmanaged, INumber<T>;
}

internal static class BinaryFns
{
    public struct Add : IBinaryFn
    {
        public static T F<T>(T a, T b) where T : unmanaged, INumber<T> => a + b;
        public static Vector512<T> V<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged => a + b;
        public static Vector256<T> V<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged => a + b;
    }

    public struct Sub : IBinaryFn
    {
        public static T F<T>(T a, T b) where T : unmanaged, INumber<T> => a - b;
        public static Vector512<T> V<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged => a - b;
        public static Vector256<T> V<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged => a - b;
    }

    public struct Mul : IBinaryFn
    {
        public static T F<T>(T a, T b) where T : unmanaged, INumber<T> => a * b;
        public static Vector512<T> V<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged => a * b;
        public static Vector256<T> V<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged => a * b;
    }

    public struct Div : IBinaryFn
    {
        public static T F<T>(T a, T b) where T : unmanaged, INumber<T> => a / b;
        public static bool Simd => false;
    }

    public struct Pow : IBinaryFn
    {
        public static T F<T>(T a, T b) where T : unmanaged, INumber<T>
        {
            if (typeof(T) != typeof(float) && typeof(T) != typeof(double) && b >= T.Zero)
            {
                // integers: exact square-and-multiply (wrapping on overflow, as PyTorch), not via double
                T r = T.One;
                for (T e = b; e > T.Zero; e /= (T.One + T.One), a *= a)
                    if (T.IsOddInteger(e)) r *= a;
                return r;
            }
            return T.CreateTruncating(Math.Pow(double.CreateTruncating(a), double.CreateTruncating(b)));
        }
        public static bool Simd => false;
    }

    public struct Maximum : IBinaryFn
    {
        public static T F<T>(T a, T b) where T : unmanaged, INumber<T> => T.Max(a, b);
        public static Vector512<T> V<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged => Vector512.Max(a, b);
        public static Vector256<T> V<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged => Vector256.Max(a, b);
    }

    public struct Minimum : IBinaryFn
    {
        public static T F<T>(T a, T b) where T : unmanaged, INumber<T> => T.Min(a, b);
        public static Vector512<T> V<T>(Vector512<T> a, Vector512<T> b) where T : unmanaged => Vector512.Min(a, b);
        public static Vector256<T> V<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged => Vector256.Min(a, b);
    }

    public struct Eq : ICompareFn { public static bool F<T>(T a, T b) where T : unmanaged, INumber<T> => a == b; }
    public struct Ne : ICompareFn { public static bool F<T>(T a, T b) where T : unmanaged, INumber<T> => a != b; }
    public struct Lt : ICompareFn { public static bool F<T>(T a, T b) where T : unmanaged, INumber<T> => a < b; }
    public struct Le : ICompareFn { public static bool F<T>(T a, T b) where T : unmanaged, INumber<T> => a <= b; }
    public struct Gt : ICompareFn { public static bool F<T>(T a, T b) where T : unmanaged, INumber<T> => a > b; }
    public struct Ge : ICompareFn { public static bool F<T>(T a, T b) where T : unmanaged, INumber<T> => a >= b; }
    public struct And : ICompareFn { public static bool F<T>(T a, T b) where T : unmanaged, INumber<T> => a != T.Zero && b != T.Zero; }
    public struct Or : ICompareFn { public static bool F<T>(T a, T b) where T : unmanaged, INumber<T> => a != T.Zero || b != T.Zero; }
    public struct Xor : ICompareFn { public static bool F<T>(T a, T b) where T : unmanaged, INumber<T> => (a != T.Zero) != (b != T.Zero); }
}

internal sealed unsafe partial class CpuBackend
{
    internal static nint Ptr(TensorView v) => (nint)((CpuStorage)v.Storage).Pointer + (nint)(v.Offset * v.DType.SizeOf());

    // ---------------- copy and fill ----------------

    private struct CopyRow<TS, TD> : IRowKernel
        where TS : unmanaged, INumber<TS>
        where TD : unmanaged, INumber<TD>
    {
        public nint Src, Dst;
        public bool ToBool;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Run(long o0, long o1, long o2, long o3, long n, long s0, long s1, long s2, long s3)
        {
            TS* s = (TS*)Src + o0;
            TD* d = (TD*)Dst + o1;
            if (typeof(TS) == typeof(TD) && s0 == 1 && s1 == 1)
            {
                Buffer.MemoryCopy(s, d, n * sizeof(TD), n * sizeof(TD));
                return;
            }
            if (ToBool)
                for (long i = 0; i < n; i++) d[i * s1] = s[i * s0] != TS.Zero ? TD.One : TD.Zero;
            else
                for (long i = 0; i < n; i++) d[i * s1] = TD.CreateTruncating(s[i * s0]);
        }
    }

    public void Copy(TensorView source, TensorView destination)
    {
        var plan = StridedPlan.Create(destination.Shape, source.Strides, destination.Strides);
        nint src = Ptr(source), dst = Ptr(destination);
        bool toBool = destination.DType == DType.Bool;
        switch (source.DType)
        {
            case DType.Float32: CopyFrom<float>(plan, src, dst, destination.DType, toBool); break;
            case DType.Float64: CopyFrom<double>(plan, src, dst, destination.DType, toBool); break;
            case DType.Int32: CopyFrom<int>(plan, src, dst, destination.DType, toBool); break;
            case DType.Int64: CopyFrom<long>(plan, src, dst, destination.DType, toBool); break;
            default: CopyFrom<byte>(plan, src, dst, destination.DType, toBool); break;
        }
    }

    private static void CopyFrom<TS>(StridedPlan plan, nint src, nint dst, DType to, bool toBool) where TS : unmanaged, INumber<TS>
    {
        switch (to)
        {
            case DType.Float32: plan.Run(new CopyRow<TS, float> { Src = src, Dst = dst }); break;
            case DType.Float64: plan.Run(new CopyRow<TS, double> { Src = src, Dst = dst }); break;
            case DType.Int32: plan.Run(new CopyRow<TS, int> { Src = src, Dst = dst }); break;
            case DType.Int64: plan.Run(new CopyRow<TS, long> { Src = src, Dst = dst }); break;
            default: plan.Run(new CopyRow<TS, byte> { Src = src, Dst = dst, ToBool = toBool }); break;
        }
    }

    private struct FillRow<T> : IRowKernel where T : unmanaged
    {
        public nint Dst;
        public T Value;

        public void Run(long o0, long o1, long o2, long o3, long n, long s0, long s1, long s2, long s3)
        {
            T* d = (T*)Dst + o0;
            if (s0 == 1) new Span<T>(d, (int)n).Fill(Value);
            else for (long i = 0; i < n; i++) d[i * s0] = Value;
        }
    }

    public void Fill(TensorView destination, double value)
    {
        var plan = StridedPlan.Create(destination.Shape, destination.Strides);
        nint d = Ptr(destination);
        switch (destination.DType)
        {
            case DType.Float32: plan.Run(new FillRow<float> { Dst = d, Value = (float)value }); break;
            case DType.Float64: plan.Run(new FillRow<double> { Dst = d, Value = value }); break;
            case DType.Int32: plan.Run(new FillRow<int> { Dst = d, Value = (int)value }); break;
            case DType.Int64: plan.Run(new FillRow<long> { Dst = d, Value = (long)value }); break;
            default: plan.Run(new FillRow<byte> { Dst = d, Value = value != 0 ? (byte)1 : (byte)0 }); break;
        }
    }

    // ---------------- unary ----------------

    private struct UnaryRow<T, TF> : IRowKernel
        where T : unmanaged, INumber<T>
        where TF : struct, IUnaryFn
    {
        public nint X, Y;
        public double A, B;

        public void Run(long o0, long o1, long o2, long o3, long n, long s0, long s1, long s2, long s3)
        {
            T* x = (T*)X + o0;
            T* y = (T*)Y + o1;
            long i = 0;
            if (typeof(T) == typeof(float) && TF.Simd && s0 == 1 && s1 == 1)
            {
                float* xf = (float*)x, yf = (float*)y;
                if (Vector512.IsHardwareAccelerated)
                {
                    var a = Vector512.Create((float)A);
                    var b = Vector512.Create((float)B);
                    for (; i <= n - 16; i += 16) Vector512.Store(TF.V(Vector512.Load(xf + i), a, b), yf + i);
                }
                else if (Vector256.IsHardwareAccelerated)
                {
                    var a = Vector256.Create((float)A);
                    var b = Vector256.Create((float)B);
                    for (; i <= n - 8; i += 8) Vector256.Store(TF.V(Vector256.Load(xf + i), a, b), yf + i);
                }
            }
            for (; i < n; i++) y[i * s1] = T.CreateTruncating(TF.F(double.CreateTruncating(x[i * s0]), A, B));
        }
    }

    public void Unary(UnaryOp op, TensorView x, TensorView y, double alpha, double beta)
    {
        if (op == UnaryOp.LogicalNot)
        {
            // x has been converted to Bool by the front-end.
            RunUnary<byte, UnaryFns.LogicalNot>(x, y, alpha, beta);
            return;
        }
        switch (x.DType)
        {
            case DType.Float32: UnaryFor<float>(op, x, y, alpha, beta); break;
            case DType.Float64: UnaryFor<double>(op, x, y, alpha, beta); break;
            case DType.Int32: UnaryFor<int>(op, x, y, alpha, beta); break;
            case DType.Int64: UnaryFor<long>(op, x, y, alpha, beta); break;
            default: UnaryFor<byte>(op, x, y, alpha, beta); break;
        }
    }

    private static void UnaryFor<T>(UnaryOp op, TensorView x, TensorView y, double a, double b) where T : unmanaged, INumber<T>
    {
        switch (op)
        {
            case UnaryOp.Neg: RunUnary<T, UnaryFns.Neg>(x, y, a, b); break;
            case UnaryOp.Abs: RunUnary<T, UnaryFns.Abs>(x, y, a, b); break;
            case UnaryOp.Sign: RunUnary<T, UnaryFns.Sign>(x, y, a, b); break;
            case UnaryOp.Exp: RunUnary<T, UnaryFns.Exp>(x, y, a, b); break;
            case UnaryOp.Log: RunUnary<T, UnaryFns.Log>(x, y, a, b); break;
            case UnaryOp.Log1p: RunUnary<T, UnaryFns.Log1p>(x, y, a, b); break;
            case UnaryOp.Sqrt: RunUnary<T, UnaryFns.Sqrt>(x, y, a, b); break;
            case UnaryOp.Rsqrt: RunUnary<T, UnaryFns.Rsqrt>(x, y, a, b); break;
            case UnaryOp.Reciprocal: RunUnary<T, UnaryFns.Reciprocal>(x, y, a, b); break;
            case UnaryOp.Square: RunUnary<T, UnaryFns.Square>(x, y, a, b); break;
            case UnaryOp.Sin: RunUnary<T, UnaryFns.Sin>(x, y, a, b); break;
            case UnaryOp.Cos: RunUnary<T, UnaryFns.Cos>(x, y, a, b); break;
            case UnaryOp.Tanh: RunUnary<T, UnaryFns.Tanh>(x, y, a, b); break;
            case UnaryOp.Sigmoid: RunUnary<T, UnaryFns.Sigmoid>(x, y, a, b); break;
            case UnaryOp.Erf: RunUnary<T, UnaryFns.Erf>(x, y, a, b); break;
            case UnaryOp.Relu: RunUnary<T, UnaryFns.Relu>(x, y, a, b); break;
            case UnaryOp.LeakyRelu: RunUnary<T, UnaryFns.LeakyRelu>(x, y, a, b); break;
            case UnaryOp.Gelu: RunUnary<T, UnaryFns.Gelu>(x, y, a, b); break;
            case UnaryOp.GeluTanh: RunUnary<T, UnaryFns.GeluTanh>(x, y, a, b); break;
            case UnaryOp.Softplus: RunUnary<T, UnaryFns.Softplus>(x, y, a, b); break;
            case UnaryOp.Floor: RunUnary<T, UnaryFns.Floor>(x, y, a, b); break;
            case UnaryOp.Ceil: RunUnary<T, UnaryFns.Ceil>(x, y, a, b); break;
            case UnaryOp.Round: RunUnary<T, UnaryFns.Round>(x, y, a, b); break;
            case UnaryOp.Clamp: RunUnary<T, UnaryFns.Clamp>(x, y, a, b); break;
            case UnaryOp.PowScalar: RunUnary<T, UnaryFns.PowScalar>(x, y, a, b); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "unknown unary op");
        }
    }

    private static void RunUnary<T, TF>(TensorView x, TensorView y, double a, double b)
        where T : unmanaged, INumber<T>
        where TF : struct, IUnaryFn
    {
        var plan = StridedPlan.Create(y.Shape, x.Strides, y.Strides);
        plan.Run(new UnaryRow<T, TF> { X = Ptr(x), Y = Ptr(y), A = a, B = b }, 1 << 14);
    }

    // ---------------- binary ----------------

    private struct BinaryRow<T, TF> : IRowKernel
        where T : unmanaged, INumber<T>
        where TF : struct, IBinaryFn
    {
        public nint A, B, Y;

        public void Run(long o0, long o1, long o2, long o3, long n, long s0, long s1, long s2, long s3)
        {
            T* a = (T*)A + o0, b = (T*)B + o1, y = (T*)Y + o2;
            long i = 0;
            if (TF.Simd && s2 == 1 && (s0 == 1 || s0 == 0) && (s1 == 1 || s1 == 0) && typeof(T) != typeof(byte))
            {
                if (Vector512.IsHardwareAccelerated)
                {
                    int w = Vector512<T>.Count;
                    if (s0 == 1 && s1 == 1)
                        for (; i <= n - w; i += w) Vector512.Store(TF.V(Vector512.Load(a + i), Vector512.Load(b + i)), y + i);
                    else if (s0 == 0 && s1 == 1)
                    {
                        var av = Vector512.Create(*a);
                        for (; i <= n - w; i += w) Vector512.Store(TF.V(av, Vector512.Load(b + i)), y + i);
                    }
                    else if (s0 == 1)
                    {
                        var bv = Vector512.Create(*b);
                        for (; i <= n - w; i += w) Vector512.Store(TF.V(Vector512.Load(a + i), bv), y + i);
                    }
                }
                else if (Vector256.IsHardwareAccelerated)
                {
                    int w = Vector256<T>.Count;
                    if (s0 == 1 && s1 == 1)
                        for (; i <= n - w; i += w) Vector256.Store(TF.V(Vector256.Load(a + i), Vector256.Load(b + i)), y + i);
                    else if (s0 == 0 && s1 == 1)
                    {
                        var av = Vector256.Create(*a);
                        for (; i <= n - w; i += w) Vector256.Store(TF.V(av, Vector256.Load(b + i)), y + i);
                    }
                    else if (s0 == 1)
                    {
                        var bv = Vector256.Create(*b);
                        for (; i <= n - w; i += w) Vector256.Store(TF.V(Vector256.Load(a + i), bv), y + i);
                    }
                }
            }
            for (; i < n; i++) y[i * s2] = TF.F(a[i * s0], b[i * s1]);
        }
    }

    private struct CompareRow<T, TF> : IRowKernel
        where T : unmanaged, INumber<T>
        where TF : struct, ICompareFn
    {
        public nint A, B, Y;

        public void Run(long o0, long o1, long o2, long o3, long n, long s0, long s1, long s2, long s3)
        {
            T* a = (T*)A + o0, b = (T*)B + o1;
            byte* y = (byte*)Y + o2;
            for (long i = 0; i < n; i++) y[i * s2] = TF.F(a[i * s0], b[i * s1]) ? (byte)1 : (byte)0;
        }
    }

    public void Binary(BinaryOp op, TensorView a, TensorView b, TensorView y)
    {
        switch (a.DType)
        {
            case DType.Float32: BinaryFor<float>(op, a, b, y); break;
            case DType.Float64: BinaryFor<double>(op, a, b, y); break;
            case DType.Int32: BinaryFor<int>(op, a, b, y); break;
            case DType.Int64: BinaryFor<long>(op, a, b, y); break;
            default: BinaryFor<byte>(op, a, b, y); break;
        }
    }

    private static void BinaryFor<T>(BinaryOp op, TensorView a, TensorView b, TensorView y) where T : unmanaged, INumber<T>
    {
        var plan = StridedPlan.Create(y.Shape, a.Strides, b.Strides, y.Strides);
        nint pa = Ptr(a), pb = Ptr(b), py = Ptr(y);
        switch (op)
        {
            case BinaryOp.Add: plan.Run(new BinaryRow<T, BinaryFns.Add> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Sub: plan.Run(new BinaryRow<T, BinaryFns.Sub> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Mul: plan.Run(new BinaryRow<T, BinaryFns.Mul> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Div: plan.Run(new BinaryRow<T, BinaryFns.Div> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Pow: plan.Run(new BinaryRow<T, BinaryFns.Pow> { A = pa, B = pb, Y = py }, 1 << 12); break;
            case BinaryOp.Maximum: plan.Run(new BinaryRow<T, BinaryFns.Maximum> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Minimum: plan.Run(new BinaryRow<T, BinaryFns.Minimum> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Eq: plan.Run(new CompareRow<T, BinaryFns.Eq> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Ne: plan.Run(new CompareRow<T, BinaryFns.Ne> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Lt: plan.Run(new CompareRow<T, BinaryFns.Lt> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Le: plan.Run(new CompareRow<T, BinaryFns.Le> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Gt: plan.Run(new CompareRow<T, BinaryFns.Gt> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.Ge: plan.Run(new CompareRow<T, BinaryFns.Ge> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.LogicalAnd: plan.Run(new CompareRow<T, BinaryFns.And> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.LogicalOr: plan.Run(new CompareRow<T, BinaryFns.Or> { A = pa, B = pb, Y = py }); break;
            case BinaryOp.LogicalXor: plan.Run(new CompareRow<T, BinaryFns.Xor> { A = pa, B = pb, Y = py }); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "unknown binary op");
        }
    }

    // ---------------- where ----------------

    private struct WhereRow<T> : IRowKernel where T : unmanaged
    {
        public nint C, A, B, Y;

        public void Run(long o0, long o1, long o2, long o3, long n, long s0, long s1, long s2, long s3)
        {
            byte* c = (byte*)C + o0;
            T* a = (T*)A + o1, b = (T*)B + o2, y = (T*)Y + o3;
            for (long i = 0; i < n; i++) y[i * s3] = c[i * s0] != 0 ? a[i * s1] : b[i * s2];
        }
    }

    public void Where(TensorView condition, TensorView a, TensorView b, TensorView y)
    {
        var plan = StridedPlan.Create(y.Shape, condition.Strides, a.Strides, b.Strides, y.Strides);
        nint pc = Ptr(condition), pa = Ptr(a), pb = Ptr(b), py = Ptr(y);
        switch (y.DType.SizeOf())
        {
            case 1: plan.Run(new WhereRow<byte> { C = pc, A = pa, B = pb, Y = py }); break;
            case 4: plan.Run(new WhereRow<int> { C = pc, A = pa, B = pb, Y = py }); break;
            default: plan.Run(new WhereRow<long> { C = pc, A = pa, B = pb, Y = py }); break;
        }
    }
}
