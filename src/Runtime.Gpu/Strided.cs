using System.Runtime.InteropServices;

namespace Runtime.Gpu;

/// <summary>
/// The kernel-side <c>Strided</c> struct (Kernels/common.k): an N-d loop over a shape shared by up to
/// four operands, passed by value. All fields are 64-bit, so the layout is the same in C# and both
/// kernel languages. Dim 0 is the innermost.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct StridedArg
{
    public const int MaxDims = 8;
    public const int MaxOps = 4;

    public long Rank;
    public long Small;
    public fixed long Offset[MaxOps];
    public fixed long Shape[MaxDims];
    public fixed long Stride[MaxOps * MaxDims];
}

/// <summary>
/// A strided loop after simplification (the CPU's StridedPlan idea): size-1 dims are dropped and dims
/// that are contiguous for every operand are merged, so most loops become one row. Loops with more
/// than <see cref="StridedArg.MaxDims"/> dims after that are split on the host over their outer dims.
/// </summary>
internal sealed class StridedLoop
{
    private readonly long[] _shape;          // outermost first
    private readonly long[][] _strides;      // [operand][dim], outermost first
    private readonly long[] _offsets;

    private StridedLoop(long[] shape, long[][] strides, long[] offsets, long total)
    {
        _shape = shape;
        _strides = strides;
        _offsets = offsets;
        Total = total;
    }

    public long Total { get; }

    /// <summary>Builds the loop over <paramref name="shape"/> for operands given as (element offset, strides).</summary>
    public static StridedLoop Create(int[] shape, params (long Offset, long[] Strides)[] operands)
    {
        if (operands.Length > StridedArg.MaxOps) throw new ArgumentException("at most four operands", nameof(operands));
        long total = 1;
        foreach (var s in shape) total *= s;
        var outShape = new List<long>();
        var outStrides = operands.Select(_ => new List<long>()).ToArray();
        for (int d = 0; d < shape.Length; d++)
        {
            if (shape[d] == 1) continue;
            int last = outShape.Count - 1;
            bool merge = last >= 0;
            for (int j = 0; j < operands.Length && merge; j++)
                merge = outStrides[j][last] == operands[j].Strides[d] * shape[d];
            if (merge)
            {
                outShape[last] *= shape[d];
                for (int j = 0; j < operands.Length; j++) outStrides[j][last] = operands[j].Strides[d];
            }
            else
            {
                outShape.Add(shape[d]);
                for (int j = 0; j < operands.Length; j++) outStrides[j].Add(operands[j].Strides[d]);
            }
        }
        if (outShape.Count == 0)
        {
            outShape.Add(total == 0 ? 0 : 1);
            foreach (var l in outStrides) l.Add(1);
        }
        return new StridedLoop(outShape.ToArray(), outStrides.Select(l => l.ToArray()).ToArray(),
            operands.Select(o => o.Offset).ToArray(), total);
    }

    /// <summary>
    /// The kernel arguments covering the whole loop with the number of items each covers: one, unless
    /// the loop has more than MaxDims dims, when each is a slice of the outer dims.
    /// </summary>
    public IEnumerable<(StridedArg Arg, long Count)> Pieces()
    {
        int rank = _shape.Length;
        int outerDims = Math.Max(0, rank - StridedArg.MaxDims);
        long outerCount = 1;
        for (int d = 0; d < outerDims; d++) outerCount *= _shape[d];
        var idx = new long[outerDims];
        for (long piece = 0; piece < outerCount; piece++)
        {
            long rem = piece;
            for (int d = outerDims - 1; d >= 0; d--)
            {
                idx[d] = rem % _shape[d];
                rem /= _shape[d];
            }
            var offsets = (long[])_offsets.Clone();
            for (int j = 0; j < offsets.Length; j++)
                for (int d = 0; d < outerDims; d++) offsets[j] += idx[d] * _strides[j][d];
            yield return Build(outerDims, offsets);
        }
    }

    private unsafe (StridedArg, long) Build(int firstDim, long[] offsets)
    {
        var a = new StridedArg();
        int r = _shape.Length - firstDim;
        a.Rank = r;
        long count = 1;
        for (int k = 0; k < r; k++)
        {
            int d = _shape.Length - 1 - k; // innermost first
            a.Shape[k] = _shape[d];
            count *= _shape[d];
            for (int j = 0; j < _strides.Length; j++) a.Stride[j * StridedArg.MaxDims + k] = _strides[j][d];
        }
        for (int j = 0; j < offsets.Length; j++) a.Offset[j] = offsets[j];
        a.Small = count <= uint.MaxValue ? 1 : 0;
        return (a, count);
    }
}
