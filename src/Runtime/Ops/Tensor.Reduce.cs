using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime;

public sealed partial class Tensor
{
    private int[] NormalizeDims(int[]? dims, string paramName)
    {
        if (dims == null || dims.Length == 0) return Enumerable.Range(0, Rank).ToArray();
        var res = dims.Select(d => Shapes.NormalizeDim(d, Rank, paramName)).Distinct().OrderBy(d => d).ToArray();
        if (res.Length != dims.Length) throw new ArgumentException($"repeated dimension in {Shapes.Format(dims)}", paramName);
        return res;
    }

    private int[] ReducedShape(int[] dims, bool keepDim)
    {
        var res = new List<int>();
        for (int d = 0; d < Rank; d++)
        {
            if (Array.IndexOf(dims, d) < 0) res.Add(_shape[d]);
            else if (keepDim) res.Add(1);
        }
        return res.ToArray();
    }

    /// <summary>
    /// Brings the reduced dimensions together and returns a contiguous tensor laid out as [outer, k, inner].
    /// </summary>
    private (Tensor Block, int Outer, int K, int Inner) ReductionLayout(int[] dims)
    {
        bool adjacent = dims.Length == 0 || dims[^1] - dims[0] == dims.Length - 1;
        Tensor block;
        long outer = 1, k = 1, inner = 1;
        using (GradMode.NoGrad())
        {
            if (adjacent)
            {
                block = Contiguous().Unscoped();
                for (int d = 0; d < Rank; d++)
                {
                    if (dims.Length > 0 && d < dims[0]) outer *= _shape[d];
                    else if (Array.IndexOf(dims, d) >= 0) k *= _shape[d];
                    else inner *= _shape[d];
                }
            }
            else
            {
                var order = Enumerable.Range(0, Rank).Where(d => Array.IndexOf(dims, d) < 0).Concat(dims).ToArray();
                using var p = Permute(order);
                block = p.Contiguous().Unscoped();
                foreach (var d in dims) k *= _shape[d];
                outer = NumEl / Math.Max(1, k);
                if (k == 0) outer = Shapes.NumEl(ReducedShape(dims, false));
            }
        }
        return (block, (int)outer, (int)k, (int)inner);
    }

    private Tensor ReduceKernel(ReduceOp op, int[] dims, bool keepDim, DType compute)
    {
        var outShape = ReducedShape(dims, keepDim);
        using var x = DType == compute ? Alias(register: false) : ToUntracked(compute);
        var (block, outer, k, inner) = x.ReductionLayout(dims);
        using (block)
        {
            var y = Empty(outShape, compute, Device);
            if (y.NumEl > 0) Backend.Reduce(op, block.KernelView, y.KernelView, outer, k, inner);
            return y;
        }
    }

    /// <summary>Sum over <paramref name="dims"/> (all when empty). Integer and Bool inputs sum to Int64.</summary>
    public Tensor Sum(int[]? dims = null, bool keepDim = false)
    {
        var nd = NormalizeDims(dims, nameof(dims));
        var compute = DType.IsFloating() ? DType : DType.Int64;
        var y = ReduceKernel(ReduceOp.Sum, nd, keepDim, compute);
        var inShape = ShapeArray;
        var keepShape = ReducedShape(nd, true);
        return Record(y, "Sum", [this], [], (g, _) =>
        {
            using var r = g.Reshape(keepShape);
            return [r.Expand(inShape)];
        });
    }

    public Tensor Sum(int dim, bool keepDim = false) => Sum([dim], keepDim);

    /// <summary>Mean over <paramref name="dims"/> (all when empty).</summary>
    public Tensor Mean(int[]? dims = null, bool keepDim = false)
    {
        if (!DType.IsFloating()) throw new ArgumentException($"Mean needs a floating-point tensor, got {DType.Name()}", nameof(dims));
        var nd = NormalizeDims(dims, nameof(dims));
        long k = 1;
        if (Rank > 0) foreach (var d in nd) k *= _shape[d]; // a 0-d tensor reduces over its single element
        using var s = Sum(nd, keepDim);
        return s / (double)k;
    }

    public Tensor Mean(int dim, bool keepDim = false) => Mean([dim], keepDim);

    /// <summary>Variance over <paramref name="dims"/> with Bessel's correction by default (<paramref name="correction"/> = 1).</summary>
    public Tensor Var(int[]? dims = null, int correction = 1, bool keepDim = false)
    {
        var nd = NormalizeDims(dims, nameof(dims));
        long k = 1;
        if (Rank > 0) foreach (var d in nd) k *= _shape[d]; // a 0-d tensor reduces over its single element
        using var m = Mean(nd, keepDim: true);
        using var diff = this - m;
        using var sq = diff.Square();
        using var s = sq.Sum(nd, keepDim);
        return s / (double)Math.Max(0, k - correction);
    }

    public Tensor Var(int dim, int correction = 1, bool keepDim = false) => Var([dim], correction, keepDim);

    public Tensor Std(int[]? dims = null, int correction = 1, bool keepDim = false)
    {
        using var v = Var(dims, correction, keepDim);
        return v.Sqrt();
    }

    public Tensor Std(int dim, int correction = 1, bool keepDim = false) => Std([dim], correction, keepDim);

    /// <summary>Product over <paramref name="dims"/> (all when empty).</summary>
    public Tensor Prod(int[]? dims = null, bool keepDim = false)
    {
        var nd = NormalizeDims(dims, nameof(dims));
        var compute = DType.IsFloating() ? DType : DType.Int64;
        var y = ReduceKernel(ReduceOp.Prod, nd, keepDim, compute);
        var keepShape = ReducedShape(nd, true);
        return Record(y, "Prod", [this], [this, y], (g, s) =>
        {
            // d prod / d x_i = prod_{j != i} x_j, computed as prod / x_i (inputs containing zeros get NaN/inf there).
            using var yk = s[1].Reshape(keepShape);
            using var gk = g.Reshape(keepShape);
            using var q = yk / s[0];
            return [gk * q];
        });
    }

    /// <summary>Whether any element (along dims) is non-zero; Bool result.</summary>
    public Tensor Any(int[]? dims = null, bool keepDim = false)
    {
        using var b = DType == DType.Bool ? Alias(register: false) : ToUntracked(DType.Bool);
        return b.ReduceKernel(ReduceOp.Any, b.NormalizeDims(dims, nameof(dims)), keepDim, DType.Bool);
    }

    /// <summary>Whether all elements (along dims) are non-zero; Bool result.</summary>
    public Tensor All(int[]? dims = null, bool keepDim = false)
    {
        using var b = DType == DType.Bool ? Alias(register: false) : ToUntracked(DType.Bool);
        return b.ReduceKernel(ReduceOp.All, b.NormalizeDims(dims, nameof(dims)), keepDim, DType.Bool);
    }

    private void CheckNonEmpty(int d, string op)
    {
        if (_shape[d] == 0) throw new ArgumentException($"{op}: cannot reduce over an empty dimension {d} (shape {Shapes.Format(Shape)})");
    }

    /// <summary>Index (Int64) of the largest value along <paramref name="dim"/> (of the flattened tensor when null); first one on ties.</summary>
    public Tensor Argmax(int? dim = null, bool keepDim = false) => ArgExtreme(true, dim, keepDim);

    public Tensor Argmin(int? dim = null, bool keepDim = false) => ArgExtreme(false, dim, keepDim);

    private Tensor ArgExtreme(bool max, int? dim, bool keepDim)
    {
        if (dim == null)
        {
            using var flat = Reshape(-1);
            var r = flat.ArgExtreme(max, 0, false);
            if (!keepDim) return r;
            using (r) return r.Reshape(Enumerable.Repeat(1, Rank).ToArray());
        }
        int d = Shapes.NormalizeDim(dim.Value, Rank, nameof(dim));
        if (Rank > 0) CheckNonEmpty(d, max ? "Argmax" : "Argmin");
        var (block, outer, k, inner) = ReductionLayout([d]);
        using (block)
        {
            var y = Empty(ReducedShape([d], keepDim), DType.Int64, Device);
            if (y.NumEl > 0) Backend.ArgReduce(max, block.KernelView, y.KernelView, outer, k, inner);
            return y;
        }
    }

    /// <summary>Largest values along <paramref name="dim"/> and their indices (first on ties).</summary>
    public (Tensor Values, Tensor Indices) Max(int dim, bool keepDim = false) => Extreme(true, dim, keepDim);

    public (Tensor Values, Tensor Indices) Min(int dim, bool keepDim = false) => Extreme(false, dim, keepDim);

    private (Tensor, Tensor) Extreme(bool max, int dim, bool keepDim)
    {
        int d = Shapes.NormalizeDim(dim, Rank, nameof(dim));
        if (Rank == 0)
        {
            // A 0-d tensor is its own extreme (index 0); go through [1] since Gather needs a dimension.
            using var one = Reshape(1);
            return one.Extreme(max, 0, keepDim: false);
        }
        var idx = ArgExtreme(max, d, keepDim: true);
        var values = Gather(d, idx);
        if (keepDim) return (values, idx);
        using (idx)
        using (values)
            return (values.Squeeze(d), idx.Squeeze(d));
    }

    /// <summary>Largest element (a zero-dimensional tensor).</summary>
    public Tensor Max()
    {
        if (!(GradMode.IsEnabled && RequiresGrad)) return ExtremeUntracked(ReduceOp.Max);
        using var flat = Reshape(-1);
        var (v, i) = flat.Max(0);
        i.Dispose();
        return v;
    }

    public Tensor Min()
    {
        if (!(GradMode.IsEnabled && RequiresGrad)) return ExtremeUntracked(ReduceOp.Min);
        using var flat = Reshape(-1);
        var (v, i) = flat.Min(0);
        i.Dispose();
        return v;
    }

    /// <summary>Max or min of all elements with the SIMD reduction (no indices, so no gradient).</summary>
    private Tensor ExtremeUntracked(ReduceOp op)
    {
        if (NumEl == 0) throw new ArgumentException($"{op}: cannot reduce an empty tensor (shape {Shapes.Format(Shape)})");
        var y = ReduceKernel(op, NormalizeDims(null, "dims"), keepDim: false, DType);
        if (!DType.IsFloating()) return y;
        // The SIMD fold may drop NaN; PyTorch returns NaN when any element is NaN.
        using var nan = this.Ne(this);
        using var anyNan = nan.Any();
        if (anyNan.Item() == 0) return y;
        y.Dispose();
        return Scalar(double.NaN, DType, Device);
    }

    /// <summary>log(sum(exp(x))) over <paramref name="dims"/>, computed stably.</summary>
    public Tensor LogSumExp(int[] dims, bool keepDim = false)
    {
        var nd = NormalizeDims(dims, nameof(dims));
        Tensor m;
        using (GradMode.NoGrad())
        {
            using var detached = Detach();
            using var mx = detached.ReduceKernel(ReduceOp.Max, nd, keepDim: true, DType);
            using var inf = mx.Abs().Eq(double.PositiveInfinity);
            m = mx.MaskedFill(inf, 0).Unscoped();
        }
        using (m)
        {
            using var shifted = this - m;
            using var e = shifted.Exp();
            using var s = e.Sum(nd, keepDim: true);
            using var l = s.Log();
            using var r = l + m;
            return r.Reshape(ReducedShape(nd, keepDim));
        }
    }

    public Tensor LogSumExp(int dim, bool keepDim = false) => LogSumExp([dim], keepDim);

    /// <summary>Inclusive running sum along <paramref name="dim"/>. Integer inputs give Int64.</summary>
    public Tensor CumSum(int dim)
    {
        int d = Shapes.NormalizeDim(dim, Rank, nameof(dim));
        var compute = DType.IsFloating() ? DType : DType.Int64;
        using var x = DType == compute ? Alias(register: false) : ToUntracked(compute);
        var (block, outer, k, inner) = x.ReductionLayout(Rank == 0 ? [] : [d]);
        var y = Empty(ShapeArray, compute, Device);
        using (block)
            if (y.NumEl > 0) Backend.CumSum(block.KernelView, y.KernelView, outer, k, inner);
        bool scalar = Rank == 0;
        return Record(y, "CumSum", [this], [], (g, _) =>
        {
            if (scalar) return [g.Alias(register: true)];
            using var f = g.Flip(d);
            using var c = f.CumSum(d);
            return [c.Flip(d)];
        });
    }

    /// <summary>Softmax along <paramref name="dim"/>.</summary>
    public Tensor Softmax(int dim) => SoftmaxImpl(dim, log: false);

    /// <summary>Log-softmax along <paramref name="dim"/>.</summary>
    public Tensor LogSoftmax(int dim) => SoftmaxImpl(dim, log: true);

    private Tensor SoftmaxImpl(int dim, bool log)
    {
        if (!DType.IsFloating()) throw new ArgumentException($"softmax needs a floating-point tensor, got {DType.Name()}", nameof(dim));
        int d = Shapes.NormalizeDim(dim, Rank, nameof(dim));
        var (block, outer, k, inner) = ReductionLayout(Rank == 0 ? [] : [d]);
        var y = Empty(ShapeArray, DType, Device);
        using (block)
            if (y.NumEl > 0) Backend.Softmax(block.KernelView, y.KernelView, outer, k, inner, log);
        int rd = Rank == 0 ? 0 : d;
        bool scalar = Rank == 0;
        return Record(y, log ? "LogSoftmax" : "Softmax", [this], [y], (g, s) =>
        {
            if (scalar) return [ZerosLike(g)];
            if (log)
            {
                // dx = g - softmax * sum(g)
                using var sg = g.Sum(rd, keepDim: true);
                using var p = s[0].Exp();
                using var q = p * sg;
                return [g - q];
            }
            // dx = y * (g - sum(g * y))
            using var gy = g * s[0];
            using var sgy = gy.Sum(rd, keepDim: true);
            using var diff = g - sgy;
            return [s[0] * diff];
        });
    }
}
