namespace Runtime.Nn;

public sealed class ReLU : UnaryModule
{
    public override Tensor Forward(Tensor input) => input.Relu();
}

public sealed class LeakyReLU(double negativeSlope = 0.01) : UnaryModule
{
    public double NegativeSlope { get; } = negativeSlope;

    public override Tensor Forward(Tensor input) => input.LeakyRelu(NegativeSlope);
}

/// <summary>GELU; <c>approximate</c> is "none" (erf) or "tanh", as in PyTorch.</summary>
public sealed class GELU : UnaryModule
{
    public GELU(string approximate = "none")
    {
        if (approximate is not ("none" or "tanh"))
            throw new ArgumentException($"approximate must be \"none\" or \"tanh\", got \"{approximate}\"", nameof(approximate));
        Approximate = approximate;
    }

    public string Approximate { get; }

    public override Tensor Forward(Tensor input) => input.Gelu(Approximate == "tanh");
}

public sealed class Sigmoid : UnaryModule
{
    public override Tensor Forward(Tensor input) => input.Sigmoid();
}

public sealed class Identity : UnaryModule
{
    public override Tensor Forward(Tensor input) => Alias(input);
}

/// <summary>Zeroes elements with probability p in training and scales the rest by 1/(1-p); the identity in eval.</summary>
public sealed class Dropout : UnaryModule
{
    private readonly Generator? _generator;

    public Dropout(double p = 0.5, Generator? generator = null)
    {
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1]");
        P = p;
        _generator = generator;
    }

    public double P { get; }

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!IsTraining || P == 0) return Alias(input);
        if (P == 1) return input * 0.0;
        using var r = Tensor.Rand(input.Shape.ToArray(), _generator, input.DType, input.Device);
        using var keep = r.Ge(P);
        using var mask = keep.To(input.DType);
        using var scaledMask = mask * (1.0 / (1.0 - P));
        return input * scaledMask;
    }
}
