using Runtime.Nn.Losses;
using static Runtime.Nn.Tests.Losses.LossTestUtil;
using L = Runtime.Nn.Losses.Losses;

namespace Runtime.Nn.Tests.Losses;

/// <summary>Finite-difference gradient checks and argument validation of the losses.</summary>
public class LossTests
{
    private static Tensor Targets01(int[] shape, ulong seed)
    {
        using var r = Tensor.Rand(shape, new Generator(seed), DType.Float64);
        using var b = r.Gt(0.5);
        return b.To(DType.Float64);
    }

    [Fact]
    public void CrossEntropy_GradCheck()
    {
        using var scope = new TensorScope();
        using var t = Tensor.From<long>([2, 0, -100, 1], 4);
        using var w = Tensor.From<double>([0.3, 1.0, 2.0], 3);
        GradCheck(a => L.CrossEntropy(a[0], t, w), [RandnF64([4, 3], 1)]);
        GradCheck(a => L.CrossEntropy(a[0], t, null, -100, Reduction.None), [RandnF64([4, 3], 2)]);
        using var t2 = Tensor.From<long>([0, 1, 2, 1, 0, 2], 2, 3);
        GradCheck(a => L.CrossEntropy(a[0], t2, null, -100, Reduction.Sum), [RandnF64([2, 3, 3], 3)]);
    }

    [Fact]
    public void BceWithLogits_GradCheck()
    {
        using var scope = new TensorScope();
        using var w = Tensor.From<double>([0.5, 2.0, 1.0], 3);
        using var pw = Tensor.From<double>([3.0, 1.0, 0.2], 3);
        using var tt = Tensor.Rand([2, 3], new Generator(5), DType.Float64);
        GradCheck(a => L.BinaryCrossEntropyWithLogits(a[0], a[1], w, pw), [RandnF64([2, 3], 4, 3.0), tt.Clone()]);
        GradCheck(a => L.BinaryCrossEntropyWithLogits(a[0], a[1], null, null, Reduction.None), [RandnF64([2, 3], 6, 3.0), tt.Clone()]);
    }

    [Fact]
    public void BceAndFocal_ExactGradientAtZeroLogit()
    {
        // d/dx BCE(x, t) = sigmoid(x) - t, so 0.5 - t at x = 0 (a subgradient form would give -t or 1 - t).
        using var scope = new TensorScope();
        var x = Tensor.From<double>([0.0, 0.0, 0.0, 1e-300], 4).RequiresGrad_();
        var t = Tensor.From<double>([0.0, 1.0, 0.3, 1.0], 4);
        var l = L.BinaryCrossEntropyWithLogits(x, t, reduction: Reduction.Sum);
        AssertClose([Math.Log(4) + 2 * Math.Log(2)], l, 1e-15, 1e-15);
        l.Backward();
        AssertClose([0.5, -0.5, 0.2, -0.5], x.Grad!, 1e-15, 1e-15);
        GradCheck(a => L.BinaryCrossEntropyWithLogits(a[0], t, null, null, Reduction.None), [Tensor.Zeros([4], DType.Float64)]);
        GradCheck(a => L.SigmoidFocalLoss(a[0], t), [Tensor.Zeros([4], DType.Float64)]);
        using var big = Tensor.From<double>([800.0, -800.0, 40.0], 3);
        using var tb = Tensor.From<double>([1.0, 0.0, 1.0], 3);
        using var lb = L.BinaryCrossEntropyWithLogits(big, tb, reduction: Reduction.None);
        AssertClose([0.0, 0.0, Math.Exp(-40)], lb, 0, 1e-12);
    }

    [Fact]
    public void SmoothL1AndL1_GradCheck()
    {
        using var scope = new TensorScope();
        GradCheck(a => L.SmoothL1(a[0], a[1], 0.7), [RandnF64([3, 3], 7), RandnF64([3, 3], 8)]);
        GradCheck(a => L.SmoothL1(a[0], a[1], 1.0, Reduction.Sum), [RandnF64([3, 3], 9), RandnF64([3, 3], 10)]);
        GradCheck(a => L.L1(a[0], a[1], Reduction.None), [RandnF64([3, 3], 11), RandnF64([3, 3], 12)]);
    }

    [Fact]
    public void SigmoidFocal_GradCheck()
    {
        using var scope = new TensorScope();
        var t = Targets01([4, 3], 13);
        GradCheck(a => L.SigmoidFocalLoss(a[0], t), [RandnF64([4, 3], 14, 2.0)]);
        GradCheck(a => L.SigmoidFocalLoss(a[0], t, -1, 1.5, Reduction.Mean), [RandnF64([4, 3], 15, 2.0)]);
    }

    [Fact]
    public void SigmoidFocalFromLabels_GradCheck()
    {
        using var scope = new TensorScope();
        using var labels = Tensor.From<long>([2, -1, 0, -2, 1, -1], 6);
        GradCheck(a => L.SigmoidFocalLossFromLabels(a[0], labels), [RandnF64([6, 3], 16, 2.0)]);
        GradCheck(a => L.SigmoidFocalLossFromLabels(a[0], labels, -1, 1.5), [RandnF64([6, 3], 17, 2.0)]);
    }

    /// <summary>
    /// Against torchvision's formulation, <c>sigmoid_focal_loss(x[valid], one_hot[valid], reduction="sum")</c>, value
    /// and gradient, over more rows than one band (4096) so that the bands' seams are crossed.
    /// </summary>
    [Fact]
    public void SigmoidFocalFromLabels_MatchesOneHotOverValidRows()
    {
        using var scope = new TensorScope();
        const int n = 4096 * 2 + 37, c = 5;
        var rng = new Random(18);
        var lab = new long[n];
        for (int i = 0; i < n; i++) lab[i] = rng.Next(-2, c);
        var labels = Tensor.From(lab, n);
        var oneHot = new double[n * c];
        var validRows = new List<long>();
        for (int i = 0; i < n; i++)
        {
            if (lab[i] >= 0) oneHot[i * c + lab[i]] = 1;
            if (lab[i] >= -1) validRows.Add(i);
        }
        var valid = Tensor.From(validRows.ToArray(), validRows.Count);
        var t = Tensor.From(oneHot, n, c);

        var x1 = RandnF64([n, c], 19, 3.0).RequiresGrad_();
        var ours = L.SigmoidFocalLossFromLabels(x1, labels);
        ours.Backward();
        var x2 = x1.Detach().Clone().RequiresGrad_();
        var reference = L.SigmoidFocalLoss(x2.IndexSelect(0, valid), t.IndexSelect(0, valid), reduction: Reduction.Sum);
        reference.Backward();
        AssertClose(reference.ToArray<double>(), ours, 1e-12, 1e-12);
        AssertClose(x2.Grad!.ToArray<double>(), x1.Grad!, 1e-13, 1e-12);
        Assert.True(reference.Item() > 100); // thousands of rows: a real sum, not a degenerate one

        // Float32 agrees with the float64 reference to float rounding.
        using var x3 = x1.Detach().To(DType.Float32);
        using var l3 = L.SigmoidFocalLossFromLabels(x3, labels);
        Assert.Equal(reference.Item(), l3.Item(), reference.Item() * 1e-5);
    }

    [Fact]
    public void SigmoidFocalFromLabels_RejectsBadArguments()
    {
        using var scope = new TensorScope();
        var x = Tensor.Zeros([4, 3], DType.Float64);
        var e1 = Assert.Throws<ArgumentException>(() => L.SigmoidFocalLossFromLabels(x, Tensor.Zeros([3], DType.Int64)));
        Assert.Equal("labels", e1.ParamName);
        Assert.Contains("[4]", e1.Message);
        Assert.Contains("[3]", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => L.SigmoidFocalLossFromLabels(x, Tensor.Zeros([4], DType.Float64)));
        Assert.Contains("integral", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => L.SigmoidFocalLossFromLabels(Tensor.Zeros([12], DType.Float64), Tensor.Zeros([12], DType.Int64)));
        Assert.Equal("inputs", e3.ParamName);
        // No rows at all: a zero loss and a zero gradient.
        var empty = Tensor.Zeros([0, 3], DType.Float64).RequiresGrad_();
        var l = L.SigmoidFocalLossFromLabels(empty, Tensor.Zeros([0], DType.Int64));
        Assert.Equal(0.0, l.Item());
        l.Backward();
        Assert.Equal([0, 3], empty.Grad!.Shape.ToArray());
    }

    [Fact]
    public void Dice_GradCheck()
    {
        using var scope = new TensorScope();
        var t = Targets01([2, 3, 4], 16);
        GradCheck(a => L.DiceLoss(a[0], t, Reduction.None), [RandnF64([2, 3, 4], 17, 2.0)]);
        GradCheck(a => L.DiceLoss(a[0], a[1], Reduction.Mean), [RandnF64([2, 3, 4], 18, 2.0), Targets01([2, 3, 4], 19)]);
    }

    [Fact]
    public void Dice_PerfectPredictionIsNearZero()
    {
        using var scope = new TensorScope();
        using var t = Tensor.From<double>([1, 0, 1, 0], 1, 4);
        using var x = t * 60.0 - 30.0;
        using var l = L.DiceLoss(x, t, Reduction.None);
        Assert.True(l.Item() < 1e-9);
    }

    [Fact]
    public void CrossEntropy_TargetOutOfRange_NamesValue()
    {
        using var scope = new TensorScope();
        using var x = Tensor.Zeros([2, 3], DType.Float64);
        using var t = Tensor.From<long>([1, 7], 2);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => L.CrossEntropy(x, t));
        Assert.Contains("7", ex.Message);
        Assert.Contains("3 classes", ex.Message);
        using var tn = Tensor.From<long>([-1, 0], 2);
        var ex2 = Assert.Throws<ArgumentOutOfRangeException>(() => L.CrossEntropy(x, tn));
        Assert.Contains("-1", ex2.Message);
    }

    [Fact]
    public void ShapeMismatch_NamesShapes()
    {
        using var scope = new TensorScope();
        using var x = Tensor.Zeros([2, 3], DType.Float64);
        using var t = Tensor.From<long>([1, 0, 2], 3);
        var ex = Assert.Throws<ArgumentException>(() => L.CrossEntropy(x, t));
        Assert.Contains("[3]", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
        using var w = Tensor.Ones([4], DType.Float64);
        using var t2 = Tensor.From<long>([1, 0], 2);
        var exw = Assert.Throws<ArgumentException>(() => L.CrossEntropy(x, t2, w));
        Assert.Contains("[4]", exw.Message);

        using var y = Tensor.Zeros([3, 2], DType.Float64);
        foreach (var f in new Func<Tensor>[]
                 {
                     () => L.BinaryCrossEntropyWithLogits(x, y), () => L.SmoothL1(x, y), () => L.L1(x, y),
                     () => L.SigmoidFocalLoss(x, y), () => L.DiceLoss(x, y),
                 })
        {
            var e = Assert.Throws<ArgumentException>(f);
            Assert.Contains("[3, 2]", e.Message);
            Assert.Contains("[2, 3]", e.Message);
        }
    }

    [Fact]
    public void CrossEntropy_FloatTargetRejected()
    {
        using var scope = new TensorScope();
        using var x = Tensor.Zeros([2, 3], DType.Float64);
        using var t = Tensor.Zeros([2], DType.Float64);
        var ex = Assert.Throws<ArgumentException>(() => L.CrossEntropy(x, t));
        Assert.Contains("float64", ex.Message);
    }

    [Fact]
    public void CrossEntropy_AllIgnoredMeanIsNaN_Int32TargetsAccepted()
    {
        using var scope = new TensorScope();
        var x = RandnF64([3, 4], 21);
        var ign = Tensor.From<long>([-100, -100, -100], 3);
        Assert.True(double.IsNaN(L.CrossEntropy(x, ign).Item()));
        Assert.Equal(0.0, L.CrossEntropy(x, ign, reduction: Reduction.Sum).Item());
        var t64 = Tensor.From<long>([3, 0, 1], 3);
        var t32 = Tensor.From<int>([3, 0, 1], 3);
        Assert.Equal(L.CrossEntropy(x, t64).Item(), L.CrossEntropy(x, t32).Item(), 15);
        // mean = -(1/N) sum log_softmax(x)[n, t_n]
        var lp = x.LogSoftmax(1).ToArray<double>();
        double expected = -(lp[0 * 4 + 3] + lp[1 * 4 + 0] + lp[2 * 4 + 1]) / 3;
        Assert.Equal(expected, L.CrossEntropy(x, t64).Item(), 14);
    }

    [Fact]
    public void Float32_Works()
    {
        using var scope = new TensorScope();
        using var x = Tensor.Randn([4, 3], new Generator(1)).RequiresGrad_();
        using var t = Tensor.From<long>([0, 1, 2, 1], 4);
        using var l = L.CrossEntropy(x, t);
        Assert.Equal(DType.Float32, l.DType);
        l.Backward();
        Assert.Equal(DType.Float32, x.Grad!.DType);
        x.Grad.Dispose();
    }
}
