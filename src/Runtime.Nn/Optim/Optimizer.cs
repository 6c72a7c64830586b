using Runtime.Autograd;

namespace Runtime.Nn.Optim;

/// <summary>
/// Parameters whose learning rate is the optimizer's times <paramref name="LrMultiplier"/> (torch's parameter
/// groups, as detection recipes use them for the offset layers of deformable convolutions).
/// </summary>
public sealed record ParamGroup(IEnumerable<Tensor> Parameters, double LrMultiplier = 1.0);

/// <summary>
/// Base of the optimizers: leaf parameters sharing a learning rate, each group of them (<see cref="ParamGroup"/>)
/// scaled by its multiplier. <see cref="Step"/> updates every parameter that has a gradient, in place and under
/// <see cref="GradMode.NoGrad"/>. Parameters are indexed in the order given, groups one after the other.
/// </summary>
public abstract class Optimizer : IDisposable
{
    private readonly Tensor[] _params;
    private readonly double[] _lrMultipliers;

    protected Optimizer(IEnumerable<Tensor> parameters, double lr)
        : this([new ParamGroup(parameters ?? throw new ArgumentNullException(nameof(parameters)))], lr) { }

    protected Optimizer(IEnumerable<ParamGroup> groups, double lr)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var list = groups.Select(g => (Params: g.Parameters.ToArray(), g.LrMultiplier)).ToArray();
        foreach (var (_, m) in list)
            if (!(m >= 0) || double.IsInfinity(m)) throw new ArgumentOutOfRangeException(nameof(groups), m, "a learning-rate multiplier must be non-negative and finite");
        _params = list.SelectMany(g => g.Params).ToArray();
        _lrMultipliers = list.SelectMany(g => g.Params.Select(_ => g.LrMultiplier)).ToArray();
        if (_params.Length == 0) throw new ArgumentException("optimizer got an empty parameter list", nameof(groups));
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i] ?? throw new ArgumentNullException(nameof(groups), $"parameter {i} is null");
            if (!p.DType.IsFloating()) throw new ArgumentException($"parameter {i} has dtype {p.DType.Name()}; only floating-point tensors can be optimized", nameof(groups));
            if (!p.IsLeaf) throw new ArgumentException($"parameter {i} is not a leaf tensor (it was computed by {p.GradFn})", nameof(groups));
        }
        if (lr < 0 || double.IsNaN(lr)) throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be non-negative");
        Lr = lr;
        InitialLr = lr;
    }

    /// <summary>The parameters, in the order given.</summary>
    public IReadOnlyList<Tensor> Parameters => _params;

    /// <summary>Each parameter's learning-rate multiplier (its group's; 1 without groups).</summary>
    public IReadOnlyList<double> LrMultipliers => _lrMultipliers;

    /// <summary>The learning rate of parameter <paramref name="index"/>: <see cref="Lr"/> times its group's multiplier.</summary>
    protected double LrOf(int index) => Lr * _lrMultipliers[index];

    /// <summary>The current learning rate (schedulers set it).</summary>
    public double Lr { get; set; }

    /// <summary>The learning rate the optimizer was created with (schedulers' base rate).</summary>
    public double InitialLr { get; }

    /// <summary>How many times <see cref="Step"/> ran.</summary>
    public long StepCount { get; private set; }

    /// <summary>One update of every parameter with a gradient.</summary>
    public void Step()
    {
        using var _ = GradMode.NoGrad();
        StepCount++;
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            if (p.Grad == null) continue;
            if (!p.Grad.Shape.SequenceEqual(p.Shape))
                throw new InvalidOperationException($"parameter {i}: gradient shape [{string.Join(", ", p.Grad.Shape.ToArray())}] differs from the parameter's [{string.Join(", ", p.Shape.ToArray())}]");
            using var scope = new TensorScope();
            Update(i, p, p.Grad);
        }
    }

    /// <summary>Updates parameter <paramref name="index"/> in place from its gradient (runs under NoGrad, inside a tensor scope).</summary>
    protected abstract void Update(int index, Tensor param, Tensor grad);

    /// <summary>Disposes and clears every parameter's gradient (torch's <c>zero_grad(set_to_none=True)</c>).</summary>
    public void ZeroGrad()
    {
        foreach (var p in _params)
        {
            p.Grad?.Dispose();
            p.Grad = null;
        }
    }

    /// <summary>A persistent state buffer (kept out of any tensor scope).</summary>
    protected static Tensor NewState(Tensor like, Tensor? init = null)
    {
        using var _ = GradMode.NoGrad();
        var t = Tensor.ZerosLike(like).MoveOutOfScopes();
        if (init != null) t.CopyFrom(init);
        return t;
    }

    /// <summary>Releases the state buffers.</summary>
    public virtual void Dispose() => GC.SuppressFinalize(this);

    protected static void DisposeAll(IEnumerable<Tensor?> tensors)
    {
        foreach (var t in tensors) t?.Dispose();
    }
}

internal static class ScopeExtensions
{
    /// <summary>Moves a tensor out of every enclosing scope, so the caller owns it.</summary>
    public static Tensor MoveOutOfScopes(this Tensor t)
    {
        for (int i = 0; i < 64; i++) t = t.MoveToOuterScope();
        return t;
    }
}
