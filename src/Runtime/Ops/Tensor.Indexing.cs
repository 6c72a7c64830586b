using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime;

public sealed partial class Tensor
{
    /// <summary>Checks an index tensor is integral and every value is in [0, size); returns it as Int64 (negative indices wrap when allowed).</summary>
    private static Tensor CheckIndex(Tensor index, long size, string paramName, bool allowNegative)
    {
        if (!index.DType.IsIntegral())
            throw new ArgumentException($"index tensor must be Int32 or Int64, got {index.DType.Name()}", paramName);
        var values = index.ToArrayAsLong();
        bool negative = false;
        foreach (var v in values)
        {
            if (v >= size || v < (allowNegative ? -size : 0))
                throw new ArgumentOutOfRangeException(paramName, v, $"index {v} is out of bounds for dimension of size {size}");
            negative |= v < 0;
        }
        if (!negative)
            // Backends read IndexSelect/IndexAdd indices as a contiguous run: a strided Int64 view is copied.
            return index.DType != DType.Int64 ? index.ToUntracked(DType.Int64)
                : index.IsContiguous ? index.Alias(register: false) : index.ContiguousUntracked();
        for (int i = 0; i < values.Length; i++)
            if (values[i] < 0) values[i] += size;
        return From<long>(values, index.ShapeArray, index.Device).Unscoped();
    }

    private long[] ToArrayAsLong()
    {
        if (DType == DType.Int64) return ToArray<long>();
        using var l = ToUntracked(DType.Int64);
        return l.ToArray<long>();
    }

    /// <summary>The entries at positions <paramref name="index"/> (1-D, integral; negative counts from the end) along <paramref name="dim"/>.</summary>
    public Tensor IndexSelect(int dim, Tensor index)
    {
        ArgumentNullException.ThrowIfNull(index);
        CheckSameDevice(index, nameof(index));
        if (index.Rank > 1) throw new ArgumentException($"index must be 0-D or 1-D, got shape {Shapes.Format(index.Shape)}", nameof(index));
        int d = Shapes.NormalizeDim(dim, Rank, nameof(dim));
        int n = Rank == 0 ? 1 : _shape[d];
        using var idx = CheckIndex(index, n, nameof(index), allowNegative: true);
        int m = (int)idx.NumEl;
        if (Rank == 0 && m != 1)
            throw new ArgumentException($"index into a 0-dim tensor must have one element, got {m}", nameof(index));
        var ns = ShapeArray.ToArray();
        if (Rank > 0) ns[d] = m;
        var y = Empty(ns, DType, Device);
        int outer = 1, inner = 1;
        for (int i = 0; i < d; i++) outer *= _shape[i];
        for (int i = d + 1; i < Rank; i++) inner *= _shape[i];
        if (y.NumEl > 0)
        {
            using var c = ContiguousUntracked();
            Backend.IndexSelect(c.KernelView, idx.KernelView, y.KernelView, outer, n, inner);
        }
        var srcShape = ShapeArray;
        return Record(y, "IndexSelect", [this], [idx], (g, s) =>
        {
            var z = Zeros(srcShape, g.DType, g.Device);
            using var gc = g.ContiguousUntracked();
            if (gc.NumEl > 0) g.Backend.IndexAdd(z.KernelView, s[0].KernelView, gc.KernelView, outer, n, inner);
            return [z];
        });
    }

    private Tensor ContiguousUntracked()
    {
        using var _ = GradMode.NoGrad();
        return Contiguous().Unscoped();
    }

    /// <summary>Checks the shapes of gather/scatter: same rank, index no larger than <paramref name="other"/> off <paramref name="dim"/>.</summary>
    private static void CheckGatherShapes(Tensor self, int dim, Tensor index, Tensor? other, string op)
    {
        if (index.Rank != self.Rank)
            throw new ArgumentException($"{op}: index has rank {index.Rank}, the tensor rank {self.Rank}", nameof(index));
        if (other != null && other.Rank != self.Rank)
            throw new ArgumentException($"{op}: source has rank {other.Rank} (shape {Shapes.Format(other.Shape)}), the tensor rank {self.Rank}", "source");
        for (int d = 0; d < self.Rank; d++)
        {
            if (d != dim && index._shape[d] > self._shape[d])
                throw new ArgumentException($"{op}: index shape {Shapes.Format(index.Shape)} exceeds tensor shape {Shapes.Format(self.Shape)} at dimension {d}", nameof(index));
            if (other != null && index._shape[d] > other._shape[d])
                throw new ArgumentException($"{op}: index shape {Shapes.Format(index.Shape)} exceeds source shape {Shapes.Format(other.Shape)} at dimension {d}", nameof(index));
        }
    }

    /// <summary>A view of the first index-shape entries of every dimension except <paramref name="dim"/>.</summary>
    private TensorView CroppedView(int dim, ReadOnlySpan<int> like)
    {
        var ns = ShapeArray.ToArray();
        for (int d = 0; d < Rank; d++) if (d != dim) ns[d] = like[d];
        return new TensorView(StorageOrThrow, _offset, ns, _strides, DType);
    }

    /// <summary>out[i][j][k] = this[index[i][j][k]][j][k] for dim 0 (and likewise for other dims), as torch.gather.</summary>
    public Tensor Gather(int dim, Tensor index)
    {
        ArgumentNullException.ThrowIfNull(index);
        CheckSameDevice(index, nameof(index));
        int d = Shapes.NormalizeDim(dim, Rank, nameof(dim));
        CheckGatherShapes(this, d, index, null, "Gather");
        using var idx = CheckIndex(index, _shape.Length == 0 ? 1 : _shape[d], nameof(index), allowNegative: false);
        var y = Empty(index.ShapeArray, DType, Device);
        if (y.NumEl > 0) Backend.Gather(CroppedView(d, index.Shape), d, idx.KernelView, y.KernelView);
        var srcShape = ShapeArray;
        return Record(y, "Gather", [this], [idx], (g, s) =>
        {
            var z = Zeros(srcShape, g.DType, g.Device);
            using var gc = g.ContiguousUntracked();
            if (gc.NumEl > 0) g.Backend.Scatter(z.CroppedView(d, s[0].Shape), d, s[0].KernelView, gc.KernelView, accumulate: true);
            return [z];
        });
    }

    /// <summary>A copy of this tensor with <paramref name="source"/> values written at index positions along dim (torch.scatter).</summary>
    public Tensor Scatter(int dim, Tensor index, Tensor source) => ScatterImpl(dim, index, source, accumulate: false);

    /// <summary>A copy of this tensor with <paramref name="source"/> values added at index positions along dim (torch.scatter_add).</summary>
    public Tensor ScatterAdd(int dim, Tensor index, Tensor source) => ScatterImpl(dim, index, source, accumulate: true);

    private Tensor ScatterImpl(int dim, Tensor index, Tensor source, bool accumulate)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(source);
        CheckSameDevice(index, nameof(index));
        CheckSameDevice(source, nameof(source));
        if (source.DType != DType) throw new ArgumentException($"source dtype {source.DType.Name()} differs from the tensor's {DType.Name()}", nameof(source));
        int d = Shapes.NormalizeDim(dim, Rank, nameof(dim));
        CheckGatherShapes(this, d, index, source, accumulate ? "ScatterAdd" : "Scatter");
        using var idx = CheckIndex(index, _shape.Length == 0 ? 1 : _shape[d], nameof(index), allowNegative: false);
        Tensor y;
        using (GradMode.NoGrad()) y = Clone();
        using var src = source.ContiguousUntracked();
        if (idx.NumEl > 0) Backend.Scatter(y.CroppedView(d, index.Shape), d, idx.KernelView, src.CroppedView(d, index.Shape), accumulate);
        var sourceShape = source.ShapeArray;
        return Record(y, accumulate ? "ScatterAdd" : "Scatter", [this, source], [idx], (g, s) =>
        {
            Tensor gself;
            if (accumulate) gself = g.Alias(register: true);
            else
            {
                // Overwritten positions get no gradient.
                using var zeros = ZerosLike(s[0]).To(g.DType);
                gself = g.Scatter(d, s[0], zeros);
            }
            using var gsrc = g.Gather(d, s[0]);
            Tensor gs;
            if (gsrc.Shape.SequenceEqual(sourceShape)) gs = gsrc.Alias(register: true);
            else gs = gsrc.Pad(PadTo(gsrc.ShapeArray, sourceShape));
            return [gself, gs];
        });
    }

    private static int[] PadTo(int[] from, int[] to)
    {
        var pad = new int[2 * from.Length];
        for (int i = 0; i < from.Length; i++) pad[2 * i + 1] = to[from.Length - 1 - i] - from[from.Length - 1 - i];
        return pad;
    }

    /// <summary>Indices (Int64, [count, rank]) of the non-zero elements in row-major order.</summary>
    public Tensor Nonzero()
    {
        using var b = DType == DType.Bool ? Alias(register: false) : ToUntracked(DType.Bool);
        var flags = b.ToArray<bool>();
        var hits = new List<long>();
        for (long i = 0; i < flags.LongLength; i++) if (flags[i]) hits.Add(i);
        var res = new long[hits.Count * (long)Rank];
        for (int h = 0; h < hits.Count; h++)
        {
            long rem = hits[h];
            for (int d = Rank - 1; d >= 0; d--)
            {
                res[(long)h * Rank + d] = rem % _shape[d];
                rem /= _shape[d];
            }
        }
        return From<long>(res, [hits.Count, Rank], Device);
    }

    /// <summary>The elements where <paramref name="mask"/> (broadcast with this tensor) is true, as a 1-D tensor.</summary>
    public Tensor MaskedSelect(Tensor mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        if (mask.DType != DType.Bool) throw new ArgumentException($"mask must be Bool, got {mask.DType.Name()}", nameof(mask));
        var shape = Shapes.Broadcast(Shape, mask.Shape, nameof(mask));
        using var me = mask.Expand(shape);
        using var flatMask = me.Reshape(-1);
        var flags = flatMask.ToArray<bool>();
        var lin = new List<long>();
        for (long i = 0; i < flags.LongLength; i++) if (flags[i]) lin.Add(i);
        using var idx = From<long>(lin.ToArray(), [lin.Count], Device);
        using var xe = Expand(shape);
        using var flat = xe.Reshape(-1);
        return flat.IndexSelect(0, idx);
    }

    /// <summary>Stable sort along <paramref name="dim"/>; NaN sorts last (first when descending).</summary>
    public (Tensor Values, Tensor Indices) Sort(int dim = -1, bool descending = false)
    {
        if (Rank == 0) return (Clone(), Zeros([], DType.Int64, Device));
        int d = Shapes.NormalizeDim(dim, Rank, nameof(dim));
        // Move the sorted dimension last and make rows contiguous.
        using var moved = Movedim(d, -1);
        using var rows = moved.ContiguousUntracked();
        int n = _shape[d];
        int outer = n == 0 ? 0 : (int)(NumEl / n);
        var vals = Empty(rows.ShapeArray, DType, Device);
        var idx = Empty(rows.ShapeArray, DType.Int64, Device);
        if (vals.NumEl > 0) Backend.Sort(rows.KernelView, vals.KernelView, idx.KernelView, outer, n, descending);
        using (vals)
        using (idx)
        {
            var indices = idx.Movedim(-1, d);
            // Values come from a gather, so they carry the gradient back through the permutation.
            var values = Gather(d, indices);
            return (values, indices);
        }
    }

    /// <summary>Indices that sort the tensor along <paramref name="dim"/> (stable).</summary>
    public Tensor Argsort(int dim = -1, bool descending = false)
    {
        // Indices carry no gradient; without NoGrad the discarded values' graph node would keep the index buffer alive.
        using var _ = GradMode.NoGrad();
        var (v, i) = Sort(dim, descending);
        v.Dispose();
        return i;
    }

    /// <summary>The <paramref name="k"/> largest (or smallest) entries along <paramref name="dim"/>, sorted, with their indices.</summary>
    public (Tensor Values, Tensor Indices) TopK(int k, int dim = -1, bool largest = true)
    {
        int d = Shapes.NormalizeDim(dim, Rank, nameof(dim));
        int n = Rank == 0 ? 1 : _shape[d];
        if (k < 0 || k > n) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [0, {n}] for dimension {d} of shape {Shapes.Format(Shape)}");
        var idxAll = Argsort(d, descending: largest);
        using (idxAll)
        {
            using var narrowed = idxAll.Narrow(d, 0, k);
            var idx = narrowed.Contiguous();
            return (Gather(d, idx), idx);
        }
    }

    /// <summary>One-hot encoding (Int64) of an integral tensor: a new last dimension of size <paramref name="numClasses"/> (-1: max + 1).</summary>
    public Tensor OneHot(int numClasses = -1)
    {
        if (!DType.IsIntegral()) throw new ArgumentException($"OneHot needs an integral tensor, got {DType.Name()}", nameof(numClasses));
        var values = ToArrayAsLong();
        long max = values.Length == 0 ? -1 : values.Max();
        if (numClasses < 0) numClasses = (int)(max + 1);
        if (values.Any(v => v < 0 || v >= numClasses))
            throw new ArgumentOutOfRangeException(nameof(numClasses), $"class values must be in [0, {numClasses}), got range [{values.DefaultIfEmpty().Min()}, {max}]");
        using var cls = Arange(numClasses, DType.Int64, Device);
        using var u = Unsqueeze(-1);
        using var eq = u.Eq(cls);
        return eq.To(DType.Int64);
    }
}
