using Runtime.Autograd;

namespace Runtime.Nn;

/// <summary>torch.nn.init: in-place initialisers (run under no-grad) with PyTorch's fan computation.</summary>
public static class Init
{
    /// <summary>(fan_in, fan_out) as torch.nn.init._calculate_fan_in_and_fan_out: dims 1 and 0 times the receptive field.</summary>
    public static (int FanIn, int FanOut) CalculateFanInAndFanOut(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Rank < 2)
            throw new ArgumentException($"fan in and fan out need a tensor of rank >= 2, got rank {tensor.Rank}", nameof(tensor));
        int receptive = 1;
        for (int d = 2; d < tensor.Rank; d++) receptive *= tensor.Size(d);
        return (tensor.Size(1) * receptive, tensor.Size(0) * receptive);
    }

    /// <summary>torch.nn.init.calculate_gain for "linear", "conv*", "sigmoid", "tanh", "relu", "leaky_relu", "selu".</summary>
    public static double CalculateGain(string nonlinearity, double? param = null) => nonlinearity switch
    {
        "linear" or "conv1d" or "conv2d" or "conv3d" or "sigmoid" => 1.0,
        "tanh" => 5.0 / 3,
        "relu" => Math.Sqrt(2.0),
        "leaky_relu" => Math.Sqrt(2.0 / (1 + (param ?? 0.01) * (param ?? 0.01))),
        "selu" => 3.0 / 4,
        _ => throw new ArgumentException($"unknown nonlinearity \"{nonlinearity}\"", nameof(nonlinearity)),
    };

    /// <summary>U(low, high) in place.</summary>
    public static Tensor Uniform_(Tensor tensor, double low = 0, double high = 1, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var _ = GradMode.NoGrad();
        using var r = Tensor.Rand(tensor.Shape.ToArray(), generator, tensor.DType, tensor.Device);
        using var scaled = r * (high - low);
        using var shifted = scaled + low;
        return tensor.CopyFrom(shifted);
    }

    /// <summary>N(mean, std^2) in place.</summary>
    public static Tensor Normal_(Tensor tensor, double mean = 0, double std = 1, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var _ = GradMode.NoGrad();
        using var r = Tensor.Randn(tensor.Shape.ToArray(), generator, tensor.DType, tensor.Device);
        using var scaled = r * std;
        using var shifted = scaled + mean;
        return tensor.CopyFrom(shifted);
    }

    public static Tensor Constant_(Tensor tensor, double value)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var _ = GradMode.NoGrad();
        return tensor.Fill_(value);
    }

    public static Tensor Zeros_(Tensor tensor) => Constant_(tensor, 0);

    public static Tensor Ones_(Tensor tensor) => Constant_(tensor, 1);

    private static int Fan(Tensor tensor, string mode)
    {
        var (fanIn, fanOut) = CalculateFanInAndFanOut(tensor);
        return mode switch
        {
            "fan_in" => fanIn,
            "fan_out" => fanOut,
            _ => throw new ArgumentException($"mode must be \"fan_in\" or \"fan_out\", got \"{mode}\"", nameof(mode)),
        };
    }

    /// <summary>U(-b, b) with b = gain * sqrt(3 / fan); Linear and Conv use a = sqrt(5), which gives b = 1/sqrt(fan_in).</summary>
    public static Tensor KaimingUniform_(Tensor tensor, double a = 0, string mode = "fan_in", string nonlinearity = "leaky_relu", Generator? generator = null)
    {
        double std = CalculateGain(nonlinearity, a) / Math.Sqrt(Fan(tensor, mode));
        double bound = Math.Sqrt(3.0) * std;
        return Uniform_(tensor, -bound, bound, generator);
    }

    /// <summary>N(0, std^2) with std = gain / sqrt(fan).</summary>
    public static Tensor KaimingNormal_(Tensor tensor, double a = 0, string mode = "fan_in", string nonlinearity = "leaky_relu", Generator? generator = null)
    {
        double std = CalculateGain(nonlinearity, a) / Math.Sqrt(Fan(tensor, mode));
        return Normal_(tensor, 0, std, generator);
    }

    /// <summary>U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).</summary>
    public static Tensor XavierUniform_(Tensor tensor, double gain = 1, Generator? generator = null)
    {
        var (fanIn, fanOut) = CalculateFanInAndFanOut(tensor);
        double bound = gain * Math.Sqrt(6.0 / (fanIn + fanOut));
        return Uniform_(tensor, -bound, bound, generator);
    }

    /// <summary>N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).</summary>
    public static Tensor XavierNormal_(Tensor tensor, double gain = 1, Generator? generator = null)
    {
        var (fanIn, fanOut) = CalculateFanInAndFanOut(tensor);
        return Normal_(tensor, 0, gain * Math.Sqrt(2.0 / (fanIn + fanOut)), generator);
    }
}
