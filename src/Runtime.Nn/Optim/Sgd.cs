namespace Runtime.Nn.Optim;

/// <summary>
/// Stochastic gradient descent as torch.optim.SGD: <c>d = g + wd p</c>; with momentum
/// <c>b = d</c> on the first step, then <c>b = momentum b + (1 - dampening) d</c>; <c>d = d + momentum b</c>
/// (Nesterov) or <c>d = b</c>; <c>p -= lr d</c>.
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly Tensor?[] _momentum;

    public Sgd(IEnumerable<Tensor> parameters, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : base(parameters, lr)
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
        param.AddInPlace(d, -Lr);
    }

    public override void Dispose()
    {
        DisposeAll(_momentum);
        Array.Clear(_momentum);
        base.Dispose();
    }
}
