using System.Runtime.InteropServices;
using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime;

public sealed partial class Tensor
{
    // ---------------- factories ----------------

    public static Tensor Zeros(params int[] shape) => Full(shape, 0.0);

    public static Tensor Zeros(int[] shape, DType dtype, Device? device = null) => Full(shape, 0.0, dtype, device);

    public static Tensor Ones(params int[] shape) => Full(shape, 1.0);

    public static Tensor Ones(int[] shape, DType dtype, Device? device = null) => Full(shape, 1.0, dtype, device);

    /// <summary>A tensor of the given shape filled with <paramref name="value"/>.</summary>
    public static Tensor Full(int[] shape, double value, DType dtype = DType.Float32, Device? device = null)
    {
        var t = Empty(Shapes.CheckShape(shape, nameof(shape)), dtype, device ?? Device.Default);
        if (t.NumEl > 0) t.Backend.Fill(t.KernelView, value);
        return t;
    }

    public static Tensor ZerosLike(Tensor x) => Full(x.ShapeArray, 0, x.DType, x.Device);

    public static Tensor OnesLike(Tensor x) => Full(x.ShapeArray, 1, x.DType, x.Device);

    public static Tensor FullLike(Tensor x, double value) => Full(x.ShapeArray, value, x.DType, x.Device);

    /// <summary>A one-element, zero-dimensional tensor.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32, Device? device = null) => Full([], value, dtype, device);

    /// <summary>Values start, start+step, ... below end (like torch.arange). Default dtype Int64 for integral arguments.</summary>
    public static Tensor Arange(long end, DType dtype = DType.Int64, Device? device = null) => Arange(0, end, 1, dtype, device);

    public static Tensor Arange(double start, double end, double step = 1, DType dtype = DType.Float32, Device? device = null)
    {
        if (step == 0 || double.IsNaN(step)) throw new ArgumentException("step must be non-zero", nameof(step));
        if ((end - start) / step < 0)
            throw new ArgumentException($"range [{start}, {end}) is empty in the direction of step {step}", nameof(step));
        long n = (long)Math.Ceiling((end - start) / step);
        var values = new double[n];
        for (long i = 0; i < n; i++) values[i] = start + i * step;
        return FromDoubles(values, [(int)n], dtype, device);
    }

    /// <summary><paramref name="steps"/> evenly spaced values from start to end inclusive.</summary>
    public static Tensor Linspace(double start, double end, int steps, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        var values = new double[steps];
        double step = steps > 1 ? (end - start) / (steps - 1) : 0;
        // Fill from both ends like PyTorch so that the last value is exactly end.
        // (steps == 1 gives start, as torch.linspace.)
        for (int i = 0; i < steps; i++) values[i] = steps == 1 || i < steps / 2 ? start + step * i : end - step * (steps - 1 - i);
        return FromDoubles(values, [steps], dtype, device);
    }

    /// <summary>An n x m matrix with ones on the diagonal.</summary>
    public static Tensor Eye(int n, int? m = null, DType dtype = DType.Float32, Device? device = null)
    {
        int cols = m ?? n;
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(cols, nameof(m));
        var values = new double[(long)n * cols];
        for (int i = 0; i < Math.Min(n, cols); i++) values[(long)i * cols + i] = 1;
        return FromDoubles(values, [n, cols], dtype, device);
    }

    /// <summary>Uniform samples in [0, 1).</summary>
    public static Tensor Rand(int[] shape, Generator? generator = null, DType dtype = DType.Float32, Device? device = null)
    {
        var g = generator ?? Generator.Default;
        var values = new double[Shapes.NumEl(Shapes.CheckShape(shape, nameof(shape)))];
        for (long i = 0; i < values.LongLength; i++) values[i] = g.NextDouble();
        return FromDoubles(values, shape, dtype, device);
    }

    /// <summary>Standard normal samples.</summary>
    public static Tensor Randn(int[] shape, Generator? generator = null, DType dtype = DType.Float32, Device? device = null)
    {
        var g = generator ?? Generator.Default;
        var values = new double[Shapes.NumEl(Shapes.CheckShape(shape, nameof(shape)))];
        for (long i = 0; i < values.LongLength; i++) values[i] = g.NextNormal();
        return FromDoubles(values, shape, dtype, device);
    }

    /// <summary>Uniform integers in [low, high).</summary>
    public static Tensor RandInt(long low, long high, int[] shape, Generator? generator = null, DType dtype = DType.Int64, Device? device = null)
    {
        if (high <= low) throw new ArgumentException($"RandInt needs low < high, got [{low}, {high})", nameof(high));
        var g = generator ?? Generator.Default;
        var values = new long[Shapes.NumEl(Shapes.CheckShape(shape, nameof(shape)))];
        for (long i = 0; i < values.LongLength; i++) values[i] = g.NextInt64(low, high);
        using var t = From<long>(values, shape, device);
        return t.To(dtype);
    }

    /// <summary>A tensor holding a copy of <paramref name="data"/> with the given shape (default: 1-D).</summary>
    public static Tensor From<T>(ReadOnlySpan<T> data, int[]? shape = null, Device? device = null) where T : unmanaged
    {
        var dtype = DTypes.Of<T>();
        var sh = shape == null ? [data.Length] : Shapes.CheckShape(shape, nameof(shape));
        if (Shapes.NumEl(sh) != data.Length)
            throw new ArgumentException($"{data.Length} values do not fill shape {Shapes.Format(sh)} ({Shapes.NumEl(sh)} elements)", nameof(shape));
        var t = Empty(sh, dtype, device ?? Device.Default);
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(data);
        if (typeof(T) == typeof(bool))
        {
            var copy = bytes.ToArray();
            for (int i = 0; i < copy.Length; i++) copy[i] = copy[i] != 0 ? (byte)1 : (byte)0;
            bytes = copy;
        }
        if (bytes.Length > 0) t.Backend.Upload(bytes, t.StorageOrThrow, 0);
        return t;
    }

    /// <summary>A tensor holding a copy of <paramref name="data"/> reshaped to <paramref name="shape"/> (default: 1-D).</summary>
    public static Tensor From<T>(T[] data, params int[] shape) where T : unmanaged =>
        From<T>((ReadOnlySpan<T>)data, shape.Length == 0 ? null : shape);

    internal static Tensor FromDoubles(double[] values, int[] shape, DType dtype, Device? device)
    {
        using var t = From<double>(values, shape, device);
        return dtype == DType.Float64 ? t.Alias(register: true) : t.To(dtype);
    }

    // ---------------- copies, conversions, host access ----------------

    /// <summary>A contiguous copy of this tensor on the same device (differentiable).</summary>
    public Tensor Clone()
    {
        var y = Empty(ShapeArray, DType, Device);
        if (NumEl > 0) Backend.Copy(KernelView, y.KernelView);
        return Record(y, "Clone", [this], [], (g, _) => [g.Alias(register: true)]);
    }

    /// <summary>This tensor if already contiguous (a new handle), else a contiguous copy.</summary>
    public Tensor Contiguous() => IsContiguous ? Record(Alias(register: true), "Contiguous", [this], [], (g, _) => [g.Alias(register: true)]) : Clone();

    /// <summary>Converts the element type (differentiable between floating types).</summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return Record(Alias(register: true), "To", [this], [], (g, _) => [g.Alias(register: true)]);
        var y = Empty(ShapeArray, dtype, Device);
        if (NumEl > 0) Backend.Copy(KernelView, y.KernelView);
        if (!dtype.IsFloating()) return y;
        var from = DType;
        return Record(y, "To", [this], [], (g, _) => [g.To(from)]);
    }

    /// <summary>Copies the tensor to another device (differentiable).</summary>
    public Tensor To(Device device)
    {
        if (device == Device) return Record(Alias(register: true), "To", [this], [], (g, _) => [g.Alias(register: true)]);
        using var src = Contiguous();
        var y = Empty(ShapeArray, DType, device);
        if (NumEl > 0)
        {
            var host = new byte[NumEl * DType.SizeOf()];
            src.Backend.Download(src.StorageOrThrow, src.StorageOffset * DType.SizeOf(), host);
            y.Backend.Upload(host, y.StorageOrThrow, 0);
        }
        var from = Device;
        return Record(y, "ToDevice", [this], [], (g, _) => [g.To(from)]);
    }

    /// <summary>The values, in row-major order, as a new array. T must match the dtype (bool for Bool).</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        var res = new T[NumEl];
        CopyTo<T>(res);
        return res;
    }

    /// <summary>Copies the values, in row-major order, into <paramref name="destination"/>.</summary>
    public void CopyTo<T>(Span<T> destination) where T : unmanaged
    {
        var want = DTypes.Of<T>();
        if (want != DType)
            throw new ArgumentException($"tensor has dtype {DType.Name()}, cannot copy it out as {typeof(T).Name} (convert with To(DType.{want}) first)", nameof(T));
        if (destination.Length < NumEl)
            throw new ArgumentException($"destination holds {destination.Length} elements, the tensor {NumEl}", nameof(destination));
        if (NumEl == 0) return;
        using var c = Contiguous();
        Backend.Download(c.StorageOrThrow, c.StorageOffset * DType.SizeOf(), MemoryMarshal.AsBytes(destination[..(int)NumEl]));
    }

    /// <summary>The values converted to double, row-major.</summary>
    public double[] ToDoubleArray()
    {
        using var d = DType == DType.Float64 ? Alias(register: false) : ToUntracked(DType.Float64);
        return d.ToArray<double>();
    }

    private Tensor ToUntracked(DType dtype)
    {
        using var _ = GradMode.NoGrad();
        return To(dtype).Unscoped();
    }

    /// <summary>The single value of a one-element tensor, as a double.</summary>
    public double Item()
    {
        if (NumEl != 1) throw new InvalidOperationException($"Item() needs a one-element tensor, got shape {Shapes.Format(Shape)}");
        return ToDoubleArray()[0];
    }

    // ---------------- in-place updates (optimizers, initialisers) ----------------

    /// <summary>Refuses an in-place update of a tensor autograd tracks; otherwise marks its memory modified.</summary>
    private void BeginInPlace(string op)
    {
        if (GradMode.IsEnabled && RequiresGrad)
            throw new InvalidOperationException($"{op}: in-place update of a tensor that requires grad; wrap it in GradMode.NoGrad()");
        StorageOrThrow.MarkModified();
    }

    /// <summary>Copies <paramref name="source"/> (broadcast to this shape, any dtype) into this tensor.</summary>
    public Tensor CopyFrom(Tensor source)
    {
        BeginInPlace(nameof(CopyFrom));
        ArgumentNullException.ThrowIfNull(source);
        CheckSameDevice(source, nameof(source));
        var target = ShapeArray;
        var merged = Shapes.Broadcast(target, source.Shape, nameof(source));
        if (!merged.AsSpan().SequenceEqual(target))
            throw new ArgumentException($"cannot copy a tensor of shape {Shapes.Format(source.Shape)} into one of shape {Shapes.Format(target)}", nameof(source));
        var sv = source.KernelView;
        var view = new TensorView(sv.Storage, sv.Offset, target, Shapes.BroadcastStrides(source.Shape, source.Strides, target), source.DType);
        if (NumEl > 0) Backend.Copy(view, KernelView);
        return this;
    }

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    public Tensor Fill_(double value)
    {
        BeginInPlace(nameof(Fill_));
        if (NumEl > 0) Backend.Fill(KernelView, value);
        return this;
    }

    /// <summary>this += alpha * other (other broadcast to this shape).</summary>
    public Tensor AddInPlace(Tensor other, double alpha = 1)
    {
        BeginInPlace(nameof(AddInPlace));
        using var _ = GradMode.NoGrad();
        using var scaled = alpha == 1 ? other.Alias(register: false) : other * alpha;
        using var sum = this + scaled;
        return CopyFrom(sum);
    }

    /// <summary>this *= factor.</summary>
    public Tensor MulInPlace(double factor)
    {
        BeginInPlace(nameof(MulInPlace));
        using var _ = GradMode.NoGrad();
        using var p = this * factor;
        return CopyFrom(p);
    }

    internal void CheckSameDevice(Tensor other, string paramName)
    {
        if (other.Device != Device)
            throw new ArgumentException($"expected all tensors on one device, got {Device} and {other.Device}", paramName);
    }
}
