using Runtime.Backends;

namespace Runtime;

public sealed partial class Tensor
{
    /// <summary>A new tensor object sharing this one's storage with another shape/strides/offset (no copy).</summary>
    private Tensor MakeView(int[] shape, long[] strides, long offset) =>
        new(StorageOrThrow, shape, strides, offset, DType, shareStorage: true);

    private int[] InferShape(int[] shape, string paramName)
    {
        int infer = -1;
        long known = 1;
        var res = (int[])shape.Clone();
        for (int i = 0; i < res.Length; i++)
        {
            if (res[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"only one dimension can be -1 in {Shapes.Format(shape)}", paramName);
                infer = i;
            }
            else if (res[i] < 0) throw new ArgumentException($"invalid dimension {res[i]} in {Shapes.Format(shape)}", paramName);
            else known *= res[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || NumEl % known != 0)
                throw new ArgumentException($"shape {Shapes.Format(shape)} is invalid for input of size {NumEl} (shape {Shapes.Format(Shape)})", paramName);
            res[infer] = (int)(NumEl / known);
        }
        else if (known != NumEl)
            throw new ArgumentException($"shape {Shapes.Format(shape)} is invalid for input of size {NumEl} (shape {Shapes.Format(Shape)})", paramName);
        return res;
    }

    /// <summary>Same data with a new shape, without copying; throws if the strides do not allow it (see <see cref="Reshape"/>).</summary>
    public Tensor View(params int[] shape)
    {
        var ns = InferShape(shape, nameof(shape));
        var st = Shapes.ViewStrides(_shape, _strides, ns) ??
            throw new InvalidOperationException($"view of shape {Shapes.Format(ns)} is not compatible with the strides of a {Shapes.Format(Shape)} tensor; use Reshape (which copies)");
        var src = ShapeArray;
        return Record(MakeView(ns, st, _offset), "View", [this], [], (g, _) => [g.Reshape(src)]);
    }

    /// <summary>Same data with a new shape: a view when the strides allow, otherwise a copy. One dimension may be -1.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var ns = InferShape(shape, nameof(shape));
        if (Shapes.ViewStrides(_shape, _strides, ns) != null) return View(ns);
        using var c = Clone();
        return c.View(ns);
    }

    /// <summary>Flattens dimensions startDim..endDim into one.</summary>
    public Tensor Flatten(int startDim = 0, int endDim = -1)
    {
        if (Rank == 0) return Reshape(1);
        int s = Shapes.NormalizeDim(startDim, Rank, nameof(startDim)), e = Shapes.NormalizeDim(endDim, Rank, nameof(endDim));
        if (s > e) throw new ArgumentException($"startDim {startDim} comes after endDim {endDim}", nameof(startDim));
        var ns = new List<int>();
        for (int d = 0; d < s; d++) ns.Add(_shape[d]);
        long m = 1;
        for (int d = s; d <= e; d++) m *= _shape[d];
        ns.Add((int)m);
        for (int d = e + 1; d < Rank; d++) ns.Add(_shape[d]);
        return Reshape(ns.ToArray());
    }

    /// <summary>Reorders the dimensions.</summary>
    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank)
            throw new ArgumentException($"permutation {Shapes.Format(dims)} has {dims.Length} entries for a tensor of rank {Rank}", nameof(dims));
        var seen = new bool[Rank];
        var ns = new int[Rank];
        var st = new long[Rank];
        var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int d = Shapes.NormalizeDim(dims[i], Rank, nameof(dims));
            if (seen[d]) throw new ArgumentException($"dimension {d} repeats in permutation {Shapes.Format(dims)}", nameof(dims));
            seen[d] = true;
            ns[i] = _shape[d];
            st[i] = _strides[d];
            inverse[d] = i;
        }
        return Record(MakeView(ns, st, _offset), "Permute", [this], [], (g, _) => [g.Permute(inverse)]);
    }

    /// <summary>Swaps two dimensions.</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        var p = new int[Rank];
        for (int i = 0; i < Rank; i++) p[i] = i;
        int a = Shapes.NormalizeExistingDim(dim0, Rank, nameof(dim0)), b = Shapes.NormalizeExistingDim(dim1, Rank, nameof(dim1));
        (p[a], p[b]) = (p[b], p[a]);
        return Permute(p);
    }

    /// <summary>Transpose of the last two dimensions.</summary>
    public Tensor MT => Rank < 2 ? throw new InvalidOperationException($"MT needs rank >= 2, got {Rank}") : Transpose(-2, -1);

    /// <summary>Elements start, start+step, ... below end along <paramref name="dim"/> (negative start/end count from the end; clipped like Python slices).</summary>
    public Tensor Slice(int dim, long start, long end, long step = 1)
    {
        int d = Shapes.NormalizeExistingDim(dim, Rank, nameof(dim));
        if (step <= 0) throw new ArgumentOutOfRangeException(nameof(step), step, "slice step must be positive");
        long n = _shape[d];
        if (start < 0) start += n;
        if (end < 0) end += n;
        start = Math.Clamp(start, 0, n);
        end = Math.Clamp(end, start, n);
        int len = (int)((end - start + step - 1) / step);
        var ns = ShapeArray.ToArray();
        var st = StridesArray.ToArray();
        ns[d] = len;
        st[d] = _strides[d] * step;
        var srcShape = ShapeArray;
        var view = MakeView(ns, st, _offset + start * _strides[d]);
        long s0 = start;
        return Record(view, "Slice", [this], [], (g, _) =>
        {
            var z = Zeros(srcShape, g.DType, g.Device);
            using var target = z.Slice(d, s0, s0 + (long)len * step, step);
            target.CopyFrom(g);
            return [z];
        });
    }

    /// <summary>The <paramref name="length"/> elements from <paramref name="start"/> along <paramref name="dim"/> (a view).</summary>
    public Tensor Narrow(int dim, long start, int length)
    {
        int d = Shapes.NormalizeExistingDim(dim, Rank, nameof(dim));
        if (start < 0) start += _shape[d];
        if (start < 0 || length < 0 || start + length > _shape[d])
            throw new ArgumentOutOfRangeException(nameof(start), $"narrow({dim}, {start}, {length}) is out of range for dimension of size {_shape[d]} (shape {Shapes.Format(Shape)})");
        return Slice(d, start, start + length);
    }

    /// <summary>The sub-tensor at <paramref name="index"/> along <paramref name="dim"/> (that dimension removed).</summary>
    public Tensor Select(int dim, long index)
    {
        int d = Shapes.NormalizeExistingDim(dim, Rank, nameof(dim));
        long i = index < 0 ? index + _shape[d] : index;
        if (i < 0 || i >= _shape[d])
            throw new ArgumentOutOfRangeException(nameof(index), index, $"index out of range for dimension {d} of size {_shape[d]}");
        using var n = Narrow(d, i, 1);
        return n.Squeeze(d);
    }

    /// <summary>Indexer: <c>t[i]</c> selects along the first dimension.</summary>
    [System.Runtime.CompilerServices.IndexerName("At")]
    public Tensor this[long index] => Select(0, index);

    /// <summary>A broadcast view with size-1 (or new leading) dimensions repeated; -1 keeps a size.</summary>
    public Tensor Expand(params int[] shape)
    {
        if (shape.Length < Rank)
            throw new ArgumentException($"expand to {Shapes.Format(shape)} has fewer dimensions than the tensor's {Shapes.Format(Shape)}", nameof(shape));
        var ns = new int[shape.Length];
        var st = new long[shape.Length];
        int off = shape.Length - Rank;
        for (int i = 0; i < shape.Length; i++)
        {
            int j = i - off;
            int want = shape[i];
            if (want < -1) throw new ArgumentException($"invalid size {want} in expand shape {Shapes.Format(shape)}", nameof(shape));
            if (j < 0)
            {
                if (want < 0) throw new ArgumentException($"cannot use -1 for a new leading dimension in {Shapes.Format(shape)}", nameof(shape));
                ns[i] = want;
                st[i] = 0;
            }
            else if (want == -1 || want == _shape[j])
            {
                ns[i] = _shape[j];
                st[i] = _strides[j];
            }
            else if (_shape[j] == 1)
            {
                ns[i] = want;
                st[i] = 0;
            }
            else throw new ArgumentException($"cannot expand shape {Shapes.Format(Shape)} to {Shapes.Format(shape)} (dimension {i})", nameof(shape));
        }
        var src = ShapeArray;
        var dt = DType;
        return Record(MakeView(ns, st, _offset), "Expand", [this], [], (g, _) => [ReduceGrad(g, src, dt)]);
    }

    /// <summary>Removes size-1 dimensions (all of them, or only <paramref name="dim"/>).</summary>
    public Tensor Squeeze(int? dim = null)
    {
        var ns = new List<int>();
        var st = new List<long>();
        int only = dim is { } dd ? Shapes.NormalizeDim(dd, Rank, nameof(dim)) : -1;
        for (int d = 0; d < Rank; d++)
        {
            bool drop = _shape[d] == 1 && (only < 0 || only == d);
            if (!drop)
            {
                ns.Add(_shape[d]);
                st.Add(_strides[d]);
            }
        }
        var src = ShapeArray;
        return Record(MakeView(ns.ToArray(), st.ToArray(), _offset), "Squeeze", [this], [], (g, _) => [g.Reshape(src)]);
    }

    /// <summary>Inserts a size-1 dimension at <paramref name="dim"/> (in [-rank-1, rank]).</summary>
    public Tensor Unsqueeze(int dim)
    {
        if (dim < -Rank - 1 || dim > Rank)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, $"dimension out of range (expected to be in [{-Rank - 1}, {Rank}])");
        int d = dim < 0 ? dim + Rank + 1 : dim;
        var ns = ShapeArray.ToList();
        var st = StridesArray.ToList();
        ns.Insert(d, 1);
        st.Insert(d, d < Rank ? _strides[d] * _shape[d] : 1);
        var src = ShapeArray;
        return Record(MakeView(ns.ToArray(), st.ToArray(), _offset), "Unsqueeze", [this], [], (g, _) => [g.Reshape(src)]);
    }

    /// <summary>Sliding windows of <paramref name="size"/> along <paramref name="dim"/> with <paramref name="step"/>, as a new last dimension (a view).</summary>
    public Tensor Unfold(int dim, int size, int step)
    {
        int d = Shapes.NormalizeExistingDim(dim, Rank, nameof(dim));
        if (size < 0 || size > _shape[d]) throw new ArgumentOutOfRangeException(nameof(size), size, $"window larger than dimension {d} of size {_shape[d]}");
        if (step <= 0) throw new ArgumentOutOfRangeException(nameof(step), step, "step must be positive");
        var ns = ShapeArray.ToList();
        var st = StridesArray.ToList();
        ns[d] = (_shape[d] - size) / step + 1;
        st[d] = _strides[d] * step;
        ns.Add(size);
        st.Add(_strides[d]);
        var srcShape = ShapeArray;
        var view = MakeView(ns.ToArray(), st.ToArray(), _offset);
        int windows = ns[d];
        return Record(view, "Unfold", [this], [], (g, _) =>
        {
            // Windows may overlap: add each window's gradient into place.
            var z = Zeros(srcShape, g.DType, g.Device);
            for (int w = 0; w < windows; w++)
            {
                using var gw = g.Select(d, w);
                using var gwm = gw.Movedim(-1, d);
                using var target = z.Narrow(d, (long)w * step, size);
                using var sum = target + gwm;
                target.CopyFrom(sum);
            }
            return [z];
        });
    }

    /// <summary>Moves dimension <paramref name="source"/> to position <paramref name="destination"/>.</summary>
    public Tensor Movedim(int source, int destination)
    {
        int s = Shapes.NormalizeDim(source, Rank, nameof(source)), t = Shapes.NormalizeDim(destination, Rank, nameof(destination));
        var order = Enumerable.Range(0, Rank).Where(i => i != s).ToList();
        order.Insert(t, s);
        return Permute(order.ToArray());
    }

    /// <summary>Reverses the order of elements along the given dimensions (a copy).</summary>
    public Tensor Flip(params int[] dims)
    {
        var st = StridesArray.ToArray();
        long off = _offset;
        var flipped = new HashSet<int>();
        foreach (var dd in dims)
        {
            int d = Shapes.NormalizeExistingDim(dd, Rank, nameof(dims));
            if (!flipped.Add(d)) throw new ArgumentException($"dimension {d} appears twice in flip dims", nameof(dims));
            if (_shape[d] > 0) off += (_shape[d] - 1) * st[d];
            st[d] = -st[d];
        }
        var y = Empty(ShapeArray, DType, Device);
        if (y.NumEl > 0) Backend.Copy(new TensorView(StorageOrThrow, off, _shape, st, DType), y.KernelView);
        var ds = dims.ToArray();
        return Record(y, "Flip", [this], [], (g, _) => [g.Flip(ds)]);
    }

    /// <summary>Tiles the tensor: dimension i repeated repeats[i] times (leading repeats add dimensions), like torch.repeat.</summary>
    public Tensor Repeat(params int[] repeats)
    {
        if (repeats.Length < Rank)
            throw new ArgumentException($"repeat needs at least {Rank} counts for shape {Shapes.Format(Shape)}, got {repeats.Length}", nameof(repeats));
        int lead = repeats.Length - Rank;
        // View as [.., 1, s_i, ..], expand to [.., r_i, s_i, ..], then merge each pair.
        var inter = new List<int>();
        var expanded = new List<int>();
        var final = new int[repeats.Length];
        for (int i = 0; i < repeats.Length; i++)
        {
            if (repeats[i] < 0) throw new ArgumentException($"negative repeat count {repeats[i]}", nameof(repeats));
            int s = i < lead ? 1 : _shape[i - lead];
            inter.Add(1);
            inter.Add(s);
            expanded.Add(repeats[i]);
            expanded.Add(s);
            final[i] = repeats[i] * s;
        }
        using var v = Reshape(inter.ToArray());
        using var e = v.Expand(expanded.ToArray());
        return e.Reshape(final);
    }

    /// <summary>
    /// Pads with a constant. <paramref name="pad"/> lists (before, after) pairs starting from the last
    /// dimension, as torch.nn.functional.pad; negative amounts crop.
    /// </summary>
    public Tensor Pad(int[] pad, double value = 0)
    {
        if (pad.Length % 2 != 0 || pad.Length / 2 > Rank)
            throw new ArgumentException($"pad needs pairs for at most {Rank} dimensions, got {pad.Length} values", nameof(pad));
        var ns = ShapeArray.ToArray();
        for (int i = 0; i < pad.Length / 2; i++)
        {
            int d = Rank - 1 - i;
            ns[d] = _shape[d] + pad[2 * i] + pad[2 * i + 1];
            if (ns[d] < 0) throw new ArgumentException($"padding {pad[2 * i]}, {pad[2 * i + 1]} makes dimension {d} (size {_shape[d]}) negative", nameof(pad));
        }
        var y = Full(ns, value, DType, Device);
        // Source region (after cropping) and where it lands.
        Tensor src = Alias(register: false), dst = y.Alias(register: false);
        for (int i = 0; i < pad.Length / 2; i++)
        {
            int d = Rank - 1 - i, before = pad[2 * i], after = pad[2 * i + 1];
            int srcStart = Math.Max(0, -before), srcEnd = _shape[d] - Math.Max(0, -after);
            int len = Math.Max(0, srcEnd - srcStart);
            var s2 = src.NarrowRaw(d, srcStart, len);
            var d2 = dst.NarrowRaw(d, Math.Max(0, before), len);
            src.Dispose();
            dst.Dispose();
            src = s2;
            dst = d2;
        }
        if (dst.NumEl > 0) Backend.Copy(src.KernelView, dst.KernelView);
        src.Dispose();
        dst.Dispose();
        var srcShape = ShapeArray;
        var p = pad.ToArray();
        return Record(y, "Pad", [this], [], (g, _) =>
        {
            var neg = new int[p.Length];
            for (int i = 0; i < p.Length; i++) neg[i] = -p[i];
            return [g.Pad(neg)];
        });
    }

    /// <summary>An untracked, unscoped narrow view (internal plumbing).</summary>
    private Tensor NarrowRaw(int d, long start, int length)
    {
        var ns = ShapeArray.ToArray();
        ns[d] = length;
        return new Tensor(StorageOrThrow, ns, StridesArray, _offset + start * _strides[d], DType, shareStorage: true, register: false);
    }

    /// <summary>Concatenates tensors along <paramref name="dim"/>; all other sizes must agree.</summary>
    public static Tensor Cat(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0) throw new ArgumentException("Cat needs at least one tensor", nameof(tensors));
        var first = tensors[0];
        int d = Shapes.NormalizeExistingDim(dim, first.Rank, nameof(dim));
        var dtype = first.DType;
        foreach (var t in tensors) dtype = DTypes.Promote(dtype, t.DType);
        var ns = first.ShapeArray.ToArray();
        ns[d] = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            first.CheckSameDevice(t, nameof(tensors));
            if (t.Rank != first.Rank)
                throw new ArgumentException($"Cat: tensor {i} has rank {t.Rank}, tensor 0 has rank {first.Rank}", nameof(tensors));
            for (int k = 0; k < t.Rank; k++)
                if (k != d && t._shape[k] != first._shape[k])
                    throw new ArgumentException($"Cat: sizes must match except in dimension {d}; tensor {i} has shape {Shapes.Format(t.Shape)}, tensor 0 {Shapes.Format(first.Shape)}", nameof(tensors));
            ns[d] += t._shape[d];
        }
        var y = Empty(ns, dtype, first.Device);
        long pos = 0;
        var sizes = new int[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            sizes[i] = t._shape[d];
            if (t.NumEl > 0)
            {
                using var part = y.NarrowRaw(d, pos, t._shape[d]);
                first.Backend.Copy(t.KernelView, part.KernelView);
            }
            pos += t._shape[d];
        }
        var dtypes = tensors.Select(t => t.DType).ToArray();
        return Record(y, "Cat", tensors.ToArray(), [], (g, _) =>
        {
            var res = new Tensor?[sizes.Length];
            long p = 0;
            for (int i = 0; i < sizes.Length; i++)
            {
                using var n = g.Narrow(d, p, sizes[i]);
                res[i] = n.To(dtypes[i]);
                p += sizes[i];
            }
            return res;
        });
    }

    /// <summary>Stacks same-shaped tensors along a new dimension.</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0) throw new ArgumentException("Stack needs at least one tensor", nameof(tensors));
        for (int i = 1; i < tensors.Count; i++)
            if (!tensors[i].Shape.SequenceEqual(tensors[0].Shape))
                throw new ArgumentException($"Stack: tensor {i} has shape {Shapes.Format(tensors[i].Shape)}, tensor 0 {Shapes.Format(tensors[0].Shape)}", nameof(tensors));
        var parts = tensors.Select(t => t.Unsqueeze(dim)).ToArray();
        try
        {
            return Cat(parts, dim);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    /// <summary>Splits into pieces of <paramref name="splitSize"/> along <paramref name="dim"/> (the last may be smaller); views.</summary>
    public Tensor[] Split(int splitSize, int dim = 0)
    {
        if (splitSize <= 0) throw new ArgumentOutOfRangeException(nameof(splitSize), splitSize, "split size must be positive");
        int d = Shapes.NormalizeExistingDim(dim, Rank, nameof(dim));
        var res = new List<Tensor>();
        for (int s = 0; s < _shape[d] || (s == 0 && _shape[d] == 0); s += splitSize)
        {
            res.Add(Narrow(d, s, Math.Min(splitSize, _shape[d] - s)));
            if (_shape[d] == 0) break;
        }
        return res.ToArray();
    }

    /// <summary>Splits into pieces of the given sizes along <paramref name="dim"/>; views.</summary>
    public Tensor[] Split(int[] sizes, int dim = 0)
    {
        int d = Shapes.NormalizeExistingDim(dim, Rank, nameof(dim));
        if (sizes.Sum() != _shape[d] || sizes.Any(s => s < 0))
            throw new ArgumentException($"split sizes {Shapes.Format(sizes)} do not add up to dimension {d} of size {_shape[d]}", nameof(sizes));
        var res = new Tensor[sizes.Length];
        long p = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            res[i] = Narrow(d, p, sizes[i]);
            p += sizes[i];
        }
        return res;
    }

    /// <summary>Splits into <paramref name="chunks"/> nearly equal pieces (ceil division, as torch.chunk).</summary>
    public Tensor[] Chunk(int chunks, int dim = 0)
    {
        if (chunks <= 0) throw new ArgumentOutOfRangeException(nameof(chunks), chunks, "chunk count must be positive");
        int d = Shapes.NormalizeExistingDim(dim, Rank, nameof(dim));
        int size = Math.Max(1, (_shape[d] + chunks - 1) / chunks);
        return Split(size, d);
    }
}
