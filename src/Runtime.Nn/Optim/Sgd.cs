namespace Runtime.Nn.Optim;

/// <summary>
/// Stochastic gradient descent as torch.optim.SGD: <c>d = g + wd p</c>; with momentum
/// <c>b = d</c> on the first step, then <c>b = momentum b + (1 - dampening) d</c>; <c>d = d + momentum b</c>
/// (Nesterov) or <c>d = b</c>; <c>p -= lr d</c>.
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly Tensor?[] _momentum;

    [System.Runtime.CompilerServices.OverloadResolutionPriority(1)] // [] means no tensors, not no groups
    public Sgd(IEnumerable<Tensor> parameters, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : this([new ParamGroup(parameters ?? throw new ArgumentNullException(nameof(parameters)))], lr, momentum, dampening, weightDecay, nesterov) { }

    /// <summary>SGD over parameter groups, each with its own learning-rate multiplier.</summary>
    public Sgd(IEnumerable<ParamGroup> groups, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : base(groups, lr)
    {
        if (momentum < 0) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be non-negative");
        if (weightDecay < 0) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be non-negative");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException("Nesterov momentum requires a momentum and zero dampening", nameof(nesterov));
        Momentum = momentum;
        Dampening = dampening;
        WeightDecay = weightDecay;
        Nesterov = nesterov;
        _momentum = new Tensor?[Parameters.Count];
    }

    public double Momentum { get; }
    public double Dampening { get; }
    public double WeightDecay { get; }
    public bool Nesterov { get; }

    protected override void Update(int index, Tensor param, Tensor grad)
    {
        Tensor d = WeightDecay != 0 ? grad + param * WeightDecay : grad;
        if (Momentum != 0)
        {
            var buf = _momentum[index];
            if (buf == null) _momentum[index] = buf = NewState(param, d);
            else
            {
                buf.MulInPlace(Momentum);
                buf.AddInPlace(d, 1 - Dampening);
            }
            d = Nesterov ? d + buf * Momentum : buf;
        }
        param.AddInPlace(d, -LrOf(index));
    }

    /// <summary>The momentum buffers by parameter index ("momentum_buffer.{i}"), for a checkpoint; the tensors are the optimizer's own.</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        for (int i = 0; i < _momentum.Length; i++)
            if (_momentum[i] is { } b) d[$"momentum_buffer.{i}"] = b;
        return d;
    }

    /// <summary>Restores momentum buffers saved by <see cref="StateDict"/> (copies; shapes must match the parameters).</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        foreach (var (key, value) in state)
        {
            const string prefix = "momentum_buffer.";
            if (!key.StartsWith(prefix, StringComparison.Ordinal) || !int.TryParse(key.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i) || i >= _momentum.Length)
                throw new ArgumentException($"unexpected optimizer state '{key}' (this optimizer has {_momentum.Length} parameters)", nameof(state));
            var p = Parameters[i];
            if (!value.Shape.SequenceEqual(p.Shape))
                throw new ArgumentException($"optimizer state '{key}' has shape [{string.Join(", ", value.Shape.ToArray())}], its parameter [{string.Join(", ", p.Shape.ToArray())}]", nameof(state));
            _momentum[i]?.Dispose();
            using var moved = value.To(p.Device);
            using var typed = moved.To(p.DType);
            _momentum[i] = NewState(p, typed);
        }
    }

    public override void Dispose()
    {
        DisposeAll(_momentum);
        Array.Clear(_momentum);
        base.Dispose();
    }
}
