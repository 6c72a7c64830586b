namespace Runtime.Nn;

/// <summary>y = x W^T + b with W of shape [out, in]; PyTorch's default initialisation.</summary>
public sealed class Linear : UnaryModule
{
    public Linear(int inFeatures, int outFeatures, bool bias = true, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegative(outFeatures);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        var w = RegisterParameter("weight", Tensor.Zeros([outFeatures, inFeatures], dtype, device));
        Init.KaimingUniform_(w, a: Math.Sqrt(5), generator: generator);
        if (bias)
        {
            var b = RegisterParameter("bias", Tensor.Zeros([outFeatures], dtype, device));
            double bound = inFeatures > 0 ? 1 / Math.Sqrt(inFeatures) : 0;
            Init.Uniform_(b, -bound, bound, generator);
        }
        else RegisterParameter("bias", null, allowNull: true);
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Tensor Weight => GetParameter("weight")!;
    public Tensor? Bias => GetParameter("bias");

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var wt = Weight.MT;
        var y = input.MatMul(wt);
        if (Bias is not { } b) return y;
        using (y) return y + b;
    }
}
