using Runtime.Backends;

namespace Runtime;

public sealed partial class Tensor
{
    /// <summary>
    /// Matrix product with torch.matmul's rules: 1-D operands are promoted to a row (left) or column
    /// (right) and that dimension is removed afterwards; leading (batch) dimensions broadcast.
    /// </summary>
    public Tensor MatMul(Tensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        CheckSameDevice(other, nameof(other));
        if (Rank == 0 || other.Rank == 0)
            throw new ArgumentException($"matmul needs operands of rank >= 1, got shapes {Shapes.Format(Shape)} and {Shapes.Format(other.Shape)}", nameof(other));
        if (DType == DType.Bool || other.DType == DType.Bool)
            throw new ArgumentException("matmul does not take Bool tensors", nameof(other));
        if (DType != other.DType)
            throw new ArgumentException($"matmul needs operands of one dtype, got {DType.Name()} and {other.DType.Name()}", nameof(other));
        var a = Rank == 1 ? Unsqueeze(0) : this;
        var b = other.Rank == 1 ? other.Unsqueeze(1) : other;
        try
        {
            int m = a._shape[^2], k = a._shape[^1], k2 = b._shape[^2], n = b._shape[^1];
            if (k != k2)
                throw new ArgumentException($"matmul shapes {Shapes.Format(Shape)} and {Shapes.Format(other.Shape)} do not line up ({k} vs {k2})", nameof(other));
            int[] batch;
            try { batch = Shapes.Broadcast(a.Shape[..^2], b.Shape[..^2], nameof(other)); }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"matmul shapes {Shapes.Format(Shape)} and {Shapes.Format(other.Shape)}: batch dimensions do not broadcast ({e.Message})", nameof(other), e);
            }
            using var y = Bmm(a, b, batch, m, k, n);
            // Remove the dimensions 1-D operands gained.
            var outShape = batch.ToList();
            if (Rank > 1) outShape.Add(m);
            if (other.Rank > 1) outShape.Add(n);
            return y.Reshape(outShape.ToArray());
        }
        finally
        {
            if (!ReferenceEquals(a, this)) a.Dispose();
            if (!ReferenceEquals(b, other)) b.Dispose();
        }
    }

    /// <summary>Batched product of a [..., m, k] and b [..., k, n] broadcast over <paramref name="batch"/>; result [batch..., m, n].</summary>
    private static Tensor Bmm(Tensor a, Tensor b, int[] batch, int m, int k, int n)
    {
        var aShape = batch.Concat(new[] { m, k }).ToArray();
        var bShape = batch.Concat(new[] { k, n }).ToArray();
        int bs = (int)Shapes.NumEl(batch);
        var y = Empty(batch.Concat(new[] { m, n }).ToArray(), a.DType, a.Device);
        if (y.NumEl > 0)
        {
            using var ea = a.Expand(aShape);
            using var eb = b.Expand(bShape);
            using var a3 = ea.AsBatch3(bs, m, k);
            using var b3 = eb.AsBatch3(bs, k, n);
            var c3 = new TensorView(y.StorageOrThrow, 0, [bs, m, n], [(long)m * n, n, 1], y.DType);
            a.Backend.MatMul(a3.KernelView, b3.KernelView, c3, accumulate: false);
        }
        int[] sa = a.ShapeArray, sb = b.ShapeArray;
        return Record(y, "MatMul", [a, b], [a, b], (g, s) =>
        {
            using var bt = s[1].MT;
            using var at = s[0].MT;
            using var ga = g.MatMul(bt);
            using var gb = at.MatMul(g);
            return [ga.SumToShape(sa), gb.SumToShape(sb)];
        });
    }

    /// <summary>An untracked [batch, r, c] view when the batch dimensions collapse to one stride, else a contiguous copy.</summary>
    private Tensor AsBatch3(int batch, int r, int c)
    {
        int lead = Rank - 2;
        long[] st;
        if (lead == 0) st = [0, _strides[^2], _strides[^1]];
        else
        {
            // Batch dims collapse when each stride equals the next stride times the next size (or a dim has size 1).
            var bdims = Enumerable.Range(0, lead).Where(d => _shape[d] != 1).ToArray();
            bool ok = true;
            for (int i = 0; i + 1 < bdims.Length; i++)
                ok &= _strides[bdims[i]] == _strides[bdims[i + 1]] * _shape[bdims[i + 1]];
            if (!ok)
            {
                using var _ = Autograd.GradMode.NoGrad();
                using var cont = Contiguous();
                return cont.AsBatch3(batch, r, c);
            }
            long bstride = bdims.Length == 0 ? 0 : _strides[bdims[^1]];
            st = [bstride, _strides[^2], _strides[^1]];
        }
        return new Tensor(StorageOrThrow, [batch, r, c], st, _offset, DType, shareStorage: true, register: false);
    }

    /// <summary>Dot product of two 1-D tensors.</summary>
    public Tensor Dot(Tensor other)
    {
        if (Rank != 1 || other.Rank != 1)
            throw new ArgumentException($"Dot needs two 1-D tensors, got {Shapes.Format(Shape)} and {Shapes.Format(other.Shape)}", nameof(other));
        return MatMul(other);
    }
}
