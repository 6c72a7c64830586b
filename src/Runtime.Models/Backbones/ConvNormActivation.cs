namespace Runtime.Models.Backbones;

/// <summary>
/// torchvision's <c>Conv2dNormActivation</c>: a <see cref="Sequential"/> of a convolution ("0"), an optional
/// norm ("1") and an optional ReLU, so state-dict keys read <c>conv.0.0.weight</c>, <c>conv.0.1.weight</c>.
/// The convolution has a bias only without a norm (torchvision's default).
/// </summary>
public static class ConvNormActivation
{
    public static Sequential Create(int inChannels, int outChannels, int kernelSize, int stride = 1, Func<int, UnaryModule>? norm = null,
        bool relu = true, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        var conv = new Conv2d(inChannels, outChannels, kernelSize, stride, (kernelSize - 1) / 2, bias: norm == null, dtype: dtype, device: device, generator: generator);
        var seq = new Sequential(conv);
        if (norm != null) seq.Append(norm(outChannels));
        if (relu) seq.Append(new ReLU());
        return seq;
    }

    /// <summary>The convolution inside a block made by <see cref="Create"/>.</summary>
    public static Conv2d ConvOf(Sequential block) => (Conv2d)block[0];
}
