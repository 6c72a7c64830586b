namespace Runtime.Nn.Optim;

/// <summary>
/// Adam (torch.optim.Adam) and, with <c>decoupled</c>, AdamW (torch.optim.AdamW). Per step t:
/// Adam adds <c>wd p</c> to the gradient, AdamW multiplies <c>p</c> by <c>1 - lr wd</c>; then
/// <c>m = b1 m + (1 - b1) g</c>, <c>v = b2 v + (1 - b2) g²</c> (AMSGrad: <c>v̂ = max(v̂, v)</c> replaces v below),
/// <c>p -= lr / (1 - b1^t) · m / (sqrt(v) / sqrt(1 - b2^t) + eps)</c>.
/// </summary>
public class Adam : Optimizer
{
    private readonly Tensor?[] _m, _v, _vmax;
    private readonly long[] _steps;
    private readonly bool _decoupled;

    public Adam(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0, bool amsgrad = false)
        : this(parameters, lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled: false) { }

    private protected Adam(IEnumerable<Tensor> parameters, double lr, double beta1, double beta2, double eps, double weightDecay, bool amsgrad, bool decoupled)
        : base(parameters, lr)
    {
        if (beta1 < 0 || beta1 >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1)");
        if (beta2 < 0 || beta2 >= 1) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1)");
        if (eps < 0) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be non-negative");
        if (weightDecay < 0) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be non-negative");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weightDecay;
        AmsGrad = amsgrad;
        _decoupled = decoupled;
        int n = Parameters.Count;
        _m = new Tensor?[n];
        _v = new Tensor?[n];
        _vmax = new Tensor?[n];
        _steps = new long[n];
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }
    public bool AmsGrad { get; }

    protected override void Update(int index, Tensor param, Tensor grad)
    {
        long step = ++_steps[index];
        var g = grad;
        if (WeightDecay != 0)
        {
            if (_decoupled) param.MulInPlace(1 - LrOf(index) * WeightDecay);
            else g = grad + param * WeightDecay;
        }
        var m = _m[index] ??= NewState(param);
        var v = _v[index] ??= NewState(param);
        m.MulInPlace(Beta1);
        m.AddInPlace(g, 1 - Beta1);
        v.MulInPlace(Beta2);
        v.AddInPlace(g * g, 1 - Beta2);
        double bc1 = 1 - Math.Pow(Beta1, step);
        double bc2 = 1 - Math.Pow(Beta2, step);
        double stepSize = LrOf(index) / bc1;
        double bc2Sqrt = Math.Sqrt(bc2);
        var second = v;
        if (AmsGrad)
        {
            var vmax = _vmax[index] ??= NewState(param);
            vmax.CopyFrom(vmax.Maximum(v));
            second = vmax;
        }
        var denom = second.Sqrt() / bc2Sqrt + Eps;
        param.AddInPlace(m / denom, -stepSize);
    }

    /// <summary>
    /// The moments by parameter index ("exp_avg.{i}", "exp_avg_sq.{i}", "max_exp_avg_sq.{i}" with AMSGrad) and each
    /// parameter's step count ("step.{i}", an Int64 [1] tensor), for a checkpoint. The moments are the optimizer's own
    /// tensors; the step tensors are new (the caller disposes them).
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        for (int i = 0; i < _m.Length; i++)
        {
            if (_m[i] is not { } m || _v[i] is not { } v) continue;
            d[$"exp_avg.{i}"] = m;
            d[$"exp_avg_sq.{i}"] = v;
            if (_vmax[i] is { } vmax) d[$"max_exp_avg_sq.{i}"] = vmax;
            d[$"step.{i}"] = Tensor.From<long>([_steps[i]], [1]);
        }
        return d;
    }

    /// <summary>Restores a state saved by <see cref="StateDict"/> (copies; shapes must match the parameters).</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        foreach (var (key, value) in state)
        {
            int dot = key.LastIndexOf('.');
            string kind = dot < 0 ? key : key[..dot];
            if (dot < 0 || kind is not ("exp_avg" or "exp_avg_sq" or "max_exp_avg_sq" or "step")
                || !int.TryParse(key.AsSpan(dot + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i) || i >= _m.Length)
                throw new ArgumentException($"unexpected optimizer state '{key}' (this Adam has {_m.Length} parameters)", nameof(state));
            var p = Parameters[i];
            if (kind == "step")
            {
                using var cpu = value.To(Device.Cpu);
                using var steps = cpu.To(DType.Int64);
                _steps[i] = steps.ToArray<long>()[0];
                continue;
            }
            if (!value.Shape.SequenceEqual(p.Shape))
                throw new ArgumentException($"optimizer state '{key}' has shape [{string.Join(", ", value.Shape.ToArray())}], its parameter [{string.Join(", ", p.Shape.ToArray())}]", nameof(state));
            using var moved = value.To(p.Device);
            using var typed = moved.To(p.DType);
            var slot = kind switch { "exp_avg" => _m, "exp_avg_sq" => _v, _ => _vmax };
            slot[i]?.Dispose();
            slot[i] = NewState(p, typed);
        }
    }

    public override void Dispose()
    {
        DisposeAll(_m);
        DisposeAll(_v);
        DisposeAll(_vmax);
        Array.Clear(_m);
        Array.Clear(_v);
        Array.Clear(_vmax);
        base.Dispose();
    }
}

/// <summary>AdamW (torch.optim.AdamW): Adam with decoupled weight decay <c>p *= 1 - lr wd</c> (default wd 0.01).</summary>
public sealed class AdamW : Adam
{
    public AdamW(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 1e-2, bool amsgrad = false)
        : base(parameters, lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled: true) { }
}
