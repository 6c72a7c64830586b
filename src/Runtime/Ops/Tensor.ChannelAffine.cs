using Runtime.Autograd;
using Runtime.Cpu;

namespace Runtime;

public sealed partial class Tensor
{
    /// <summary>
    /// <c>x * scale + shift</c> with <paramref name="scale"/> and <paramref name="shift"/> [C] broadcast over
    /// channel dim 1 of x [N, C, ...], then <see cref="Relu"/> when <paramref name="relu"/> (eval batch norm and the
    /// ReLU after it). On the CPU, with no gradient wanted, this is one pass over the map with the same bits as the
    /// composed ops; otherwise it is the composed ops themselves.
    /// </summary>
    internal Tensor ChannelAffine(Tensor scale, Tensor shift, bool relu)
    {
        bool grad = GradMode.IsEnabled && (RequiresGrad || scale.RequiresGrad || shift.RequiresGrad);
        if (!grad && Backend is CpuBackend cpu && Rank >= 2 && DType is DType.Float32 or DType.Float64
            && scale.DType == DType && shift.DType == DType && scale.Rank == 1 && shift.Rank == 1
            && scale._shape[0] == _shape[1] && shift._shape[0] == _shape[1] && scale.Device == Device && shift.Device == Device)
        {
            long plane = 1;
            for (int d = 2; d < Rank; d++) plane *= _shape[d];
            using var xc = ContiguousUntracked();
            using var sc = scale.ContiguousUntracked();
            using var bc = shift.ContiguousUntracked();
            var y = Empty(ShapeArray, DType, Device);
            if (y.NumEl > 0) cpu.ChannelAffine(xc.KernelView, sc.KernelView, bc.KernelView, y.KernelView, _shape[1], plane, relu);
            return y;
        }

        var shape = new int[Rank];
        Array.Fill(shape, 1);
        shape[1] = _shape[1];
        using var s = scale.Reshape(shape);
        using var b = shift.Reshape(shape);
        using var scaled = this * s;
        if (!relu) return scaled + b;
        using var sum = scaled + b;
        return sum.Relu();
    }
}

public sealed partial class Tensor
{
    /// <summary>
    /// <c>(this + other).Relu()</c> (a residual sum and its ReLU): one pass on the CPU when no gradient is wanted and
    /// both have one shape and dtype, else the two ops.
    /// </summary>
    internal Tensor AddRelu(Tensor other)
    {
        bool grad = GradMode.IsEnabled && (RequiresGrad || other.RequiresGrad);
        if (!grad && Backend is CpuBackend cpu && DType is DType.Float32 or DType.Float64 && other.DType == DType
            && other.Device == Device && ShapeArray.AsSpan().SequenceEqual(other.ShapeArray))
        {
            using var ac = ContiguousUntracked();
            using var bc = other.ContiguousUntracked();
            var y = Empty(ShapeArray, DType, Device);
            if (y.NumEl > 0) cpu.AddRelu(ac.KernelView, bc.KernelView, y.KernelView);
            return y;
        }
        using var sum = this + other;
        return sum.Relu();
    }
}
