using Runtime.Autograd;

namespace Runtime.Nn.Optim;

/// <summary>
/// Base of the optimizers: one group of leaf parameters sharing a learning rate. <see cref="Step"/> updates
/// every parameter that has a gradient, in place and under <see cref="GradMode.NoGrad"/>.
/// </summary>
public abstract class Optimizer : IDisposable
{
    private readonly Tensor[] _params;

    protected Optimizer(IEnumerable<Tensor> parameters, double lr)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        _params = parameters.ToArray();
        if (_params.Length == 0) throw new ArgumentException("optimizer got an empty parameter list", nameof(parameters));
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i] ?? throw new ArgumentNullException(nameof(parameters), $"parameter {i} is null");
            if (!p.DType.IsFloating()) throw new ArgumentException($"parameter {i} has dtype {p.DType.Name()}; only floating-point tensors can be optimized", nameof(parameters));
            if (!p.IsLeaf) throw new ArgumentException($"parameter {i} is not a leaf tensor (it was computed by {p.GradFn})", nameof(parameters));
        }
        if (lr < 0 || double.IsNaN(lr)) throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be non-negative");
        Lr = lr;
        InitialLr = lr;
    }

    /// <summary>The parameters, in the order given.</summary>
    public IReadOnlyList<Tensor> Parameters => _params;

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
