using Runtime.Autograd;

namespace Runtime.Tests;

/// <summary>The backward engine: accumulation, graph retention, shared inputs, NoGrad/Detach, in-place rules.</summary>
public class AutogradTests
{
    private static Tensor Leaf(params double[] v) => Tensor.From(v).RequiresGrad_();

    [Fact]
    public void Gradients_AccumulateAcrossBackwardCalls()
    {
        using var x = Leaf(1, -2, 3);
        for (int k = 1; k <= 2; k++)
        {
            using var sq = x * x;
            using var y = sq.Sum();
            y.Backward();
            TestUtil.AssertClose([2 * k * 1, 2 * k * -2, 2 * k * 3], x.Grad!);
        }
        Assert.True(x.IsLeaf);
        Assert.Equal(DType.Float64, x.Grad!.DType);
        x.Grad.Dispose();
        x.Grad = null;
        using (var y = x.Sum())
            y.Backward();
        TestUtil.AssertClose([1, 1, 1], x.Grad!);
        x.Grad!.Dispose();
    }

    [Fact]
    public void RetainGraph_AllowsSecondBackward_OtherwiseThrows()
    {
        using var x = Leaf(0.5, 2);
        using var e = x.Exp();
        using var y = e.Sum();
        y.Backward(retainGraph: true);
        TestUtil.AssertClose([Math.Exp(0.5), Math.Exp(2)], x.Grad!);
        y.Backward();
        TestUtil.AssertClose([2 * Math.Exp(0.5), 2 * Math.Exp(2)], x.Grad!);
        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("second time", ex.Message);

        using var z = Leaf(1, 2);
        using var s = z * z;
        using var t = s.Sum();
        t.Backward();
        Assert.Throws<InvalidOperationException>(() => t.Backward());
        TestUtil.AssertClose([2, 4], z.Grad!); // the failed call added nothing
    }

    [Fact]
    public void DiamondGraph_SumsGradientsOfBothPaths()
    {
        double[] xv = [0.3, -1.2, 2];
        using var x = Leaf(xv);
        using var h = x * 3.0;        // shared intermediate node
        using var a = h.Sin();        // path 1
        using var b = h * h;          // path 2 (h used twice in one op)
        using var sum = a + b;
        using var y = sum.Sum();
        y.Backward();
        var expected = xv.Select(v => 3 * (Math.Cos(3 * v) + 2 * 3 * v)).ToArray();
        TestUtil.AssertClose(expected, x.Grad!, 1e-12, 1e-12);
        Assert.Null(h.Grad); // only leaves get .Grad

        // A leaf used by two ops directly.
        using var w = Leaf(2, 5);
        using var p = w.Exp();
        using var q = w * 4.0;
        using var r = p + q;
        using var s = r.Sum();
        s.Backward();
        TestUtil.AssertClose([Math.Exp(2) + 4, Math.Exp(5) + 4], w.Grad!, 1e-12, 1e-12);
    }

    [Fact]
    public void NoGrad_ResultsDoNotRequireGrad()
    {
        using var x = Leaf(1, 2);
        Assert.True(GradMode.IsEnabled);
        Tensor y;
        using (GradMode.NoGrad())
        {
            Assert.False(GradMode.IsEnabled);
            using (GradMode.NoGrad()) Assert.False(GradMode.IsEnabled);
            Assert.False(GradMode.IsEnabled); // nested scopes count
            y = x * 2.0;
        }
        Assert.True(GradMode.IsEnabled);
        Assert.False(y.RequiresGrad);
        Assert.Null(y.GradFn);
        using var ys = y.Sum();
        Assert.Throws<InvalidOperationException>(() => ys.Backward());
        y.Dispose();

        using var z = x * 2.0;
        Assert.True(z.RequiresGrad);
        Assert.False(z.IsLeaf);
        Assert.Equal("MulBackward", z.GradFn!.ToString());
        Assert.Throws<InvalidOperationException>(() => z.RequiresGrad = false);

        // Ops whose inputs do not require grad record nothing.
        using var c = Tensor.Ones(2);
        using var d = c * 3.0;
        Assert.False(d.RequiresGrad);
        Assert.True(d.IsLeaf);
    }

    [Fact]
    public void Detach_CutsTheGraphAndSharesMemory()
    {
        using var x = Leaf(1, 2, 3);
        using var d = x.Detach();
        Assert.False(d.RequiresGrad);
        Assert.Same(x.StorageOrThrow, d.StorageOrThrow);
        using var p = d * x;
        using var y = p.Sum();
        y.Backward();
        TestUtil.AssertClose([1, 2, 3], x.Grad!); // d/dx (c * x) with c detached = c

        using var h = x.Exp();
        using var hd = h.Detach();
        Assert.True(hd.IsLeaf);
        Assert.False(hd.RequiresGrad);
        d.Fill_(0); // allowed: detached; writes go to x's memory
        TestUtil.AssertClose([0, 0, 0], x);
    }

    [Fact]
    public void Backward_NeedsScalarOrExplicitGradient()
    {
        using var x = Leaf(1, 2, 3);
        using var y = x * 3.0;
        var ex = Assert.Throws<ArgumentException>(() => y.Backward());
        Assert.Equal("gradient", ex.ParamName);
        Assert.Contains("[3]", ex.Message);

        using var wrong = Tensor.Ones([2], DType.Float64);
        Assert.Throws<ArgumentException>(() => y.Backward(wrong));

        using var g = Tensor.From(new double[] { 1, 2, 3 });
        y.Backward(g, retainGraph: true);
        TestUtil.AssertClose([3, 6, 9], x.Grad!);
        // A float32 gradient for a float64 output is converted.
        using var g32 = Tensor.From(new float[] { 1, 0, -1 });
        y.Backward(g32);
        TestUtil.AssertClose([6, 6, 6], x.Grad!);
        TestUtil.AssertClose([1, 2, 3], g); // the caller's gradient is untouched
        Assert.False(g.IsDisposed);
        Assert.False(g32.IsDisposed);

        // A one-element non-scalar output needs no gradient.
        using var z = Leaf(4);
        using var z2 = z * z;
        z2.Backward();
        TestUtil.AssertClose([8], z.Grad!);

        // Backward from a leaf.
        using var leaf = Tensor.Scalar(2, DType.Float64).RequiresGrad_();
        leaf.Backward();
        Assert.Equal(1.0, leaf.Grad!.Item());
    }

    [Fact]
    public void BroadcastGradients_AreReducedToTheLeafShape()
    {
        using var a = Tensor.From(new double[] { 1, 2, 3, 4, 5, 6 }, 2, 3).RequiresGrad_();
        using var row = Tensor.From(new double[] { 10, 20, 30 }).RequiresGrad_();
        using var col = Tensor.From(new double[] { 2, -1 }, 2, 1).RequiresGrad_();
        using var s = Tensor.Scalar(0.5, DType.Float64).RequiresGrad_();
        using var one = Tensor.From(new double[] { 3 }, 1, 1).RequiresGrad_();
        using var t1 = a + row;       // [2, 3]
        using var t2 = t1 * col;      // [2, 3]
        using var t3 = t2 * s;        // [2, 3]
        using var t4 = t3 - one;      // [2, 3]
        using var y = t4.Sum();
        y.Backward();
        // y = sum_ij ((a_ij + row_j) * col_i * s - one)
        TestUtil.AssertShape(a.Grad!, 2, 3);
        TestUtil.AssertClose([1, 1, 1, -0.5, -0.5, -0.5], a.Grad!);
        TestUtil.AssertShape(row.Grad!, 3);
        TestUtil.AssertClose([0.5, 0.5, 0.5], row.Grad!); // sum_i col_i * s = (2 - 1) * 0.5
        TestUtil.AssertShape(col.Grad!, 2, 1);
        TestUtil.AssertClose([(11 + 22 + 33) * 0.5, (14 + 25 + 36) * 0.5], col.Grad!);
        TestUtil.AssertShape(s.Grad!);
        TestUtil.AssertClose([(11 + 22 + 33) * 2 - (14 + 25 + 36)], s.Grad!);
        TestUtil.AssertShape(one.Grad!, 1, 1);
        TestUtil.AssertClose([-6], one.Grad!);

        TestUtil.GradCheck(x => { using var p = x[0] * x[1]; return p + x[2]; },
            [TestUtil.RandnF64([3, 1, 2], 1), TestUtil.RandnF64([4, 1], 2), TestUtil.RandnF64([1], 3)]);
    }

    [Fact]
    public void MixedPrecisionInputs_GetGradientsInTheirOwnDType()
    {
        using var a = Tensor.From(new float[] { 1, 2 }).RequiresGrad_();
        using var b = Tensor.From(new double[] { 3 }).RequiresGrad_();
        using var c = Tensor.Cat([a, b]);
        Assert.Equal(DType.Float64, c.DType);
        using var w = Tensor.From(new double[] { 10, 20, 30 });
        using var p = c * w;
        using var y = p.Sum();
        y.Backward();
        Assert.Equal(DType.Float32, a.Grad!.DType);
        Assert.Equal(DType.Float64, b.Grad!.DType);
        TestUtil.AssertClose([10, 20], a.Grad);
        TestUtil.AssertClose([30], b.Grad);

        using var s = a + b; // float32 + float64 -> float64, broadcast [2] + [1]
        using var s2 = s.Sum();
        s2.Backward();
        TestUtil.AssertClose([11, 21], a.Grad!);
        TestUtil.AssertClose([32], b.Grad!);
    }

    [Fact]
    public void RequiresGrad_OnIntegerTensorThrows()
    {
        using var i = Tensor.From(new int[] { 1, 2 });
        Assert.Throws<InvalidOperationException>(() => i.RequiresGrad = true);
        Assert.Throws<InvalidOperationException>(() => i.RequiresGrad_());
        using var b = Tensor.From(new[] { true });
        Assert.Throws<InvalidOperationException>(() => b.RequiresGrad_());
        i.RequiresGrad = false; // clearing is fine
        using var f = Tensor.Ones(2).RequiresGrad_();
        Assert.True(f.RequiresGrad);
        f.RequiresGrad_(false);
        Assert.False(f.RequiresGrad);
    }

    [Fact]
    public void InPlaceUpdates_OfGradTensors_ThrowOutsideNoGrad()
    {
        using var w = Tensor.From(new double[] { 1, 2 }).RequiresGrad_();
        using var delta = Tensor.From(new double[] { 0.5, 0.5 });
        Assert.Throws<InvalidOperationException>(() => w.AddInPlace(delta));
        Assert.Throws<InvalidOperationException>(() => w.Fill_(0));
        Assert.Throws<InvalidOperationException>(() => w.CopyFrom(delta));
        Assert.Throws<InvalidOperationException>(() => w.MulInPlace(2));
        using (var view = w.Narrow(0, 0, 1))
            Assert.Throws<InvalidOperationException>(() => view.Fill_(0)); // views of it too
        TestUtil.AssertClose([1, 2], w);

        using (GradMode.NoGrad())
        {
            w.AddInPlace(delta, -2);
            TestUtil.AssertClose([0, 1], w);
            w.MulInPlace(3);
            TestUtil.AssertClose([0, 3], w);
            w.CopyFrom(delta);
            TestUtil.AssertClose([0.5, 0.5], w);
            w.Fill_(7);
            TestUtil.AssertClose([7, 7], w);
        }
        Assert.True(w.RequiresGrad);
        Assert.True(w.IsLeaf);

        // Untracked tensors can be updated any time.
        using var plain = Tensor.Zeros(2);
        using var ones = Tensor.Ones(2);
        plain.AddInPlace(ones, 0.5);
        TestUtil.AssertClose([0.5, 0.5], plain);
    }

    [Fact]
    public void DisposingIntermediates_BeforeBackward_StillWorks()
    {
        double[] xv = [0.1, 0.7];
        using var x = Leaf(xv);
        var h = x.Exp();
        var hh = h * h;
        var t = hh.Tanh();
        using var y = t.Sum();
        h.Dispose();
        hh.Dispose();
        t.Dispose();
        Assert.True(h.IsDisposed);
        y.Backward();
        // y = sum tanh(exp(2x)); dy/dx = (1 - tanh^2(e^{2x})) * 2 e^{2x}
        var expected = xv.Select(v => { double u = Math.Exp(2 * v), th = Math.Tanh(u); return (1 - th * th) * 2 * u; }).ToArray();
        TestUtil.AssertClose(expected, x.Grad!, 1e-12, 1e-10);
        Assert.Throws<ObjectDisposedException>(() => h.ToArray<double>());
    }

    [Fact]
    public void Engine_NullGradientForOneInput_DoesNotStallOtherPaths()
    {
        // A custom node that returns no gradient for one of its inputs (allowed by the node contract).
        using var x = Leaf(1, 2);
        using var h = x * 2.0;
        var yv = Tensor.Empty([2], DType.Float64, x.Device);
        yv.CopyFrom(h);
        using var custom = Tensor.Record(yv, "Custom", [h, x], [], (g, _) => [null, g.Alias(register: true)]);
        using var sum = custom + h;
        using var y = sum.Sum();
        y.Backward();
        // d/dx via custom's second input: 1; via h (through the Add): 2. Custom gives h nothing.
        TestUtil.AssertClose([3, 3], x.Grad!);

        // A node that gets no gradient at all (k) must still release the node below it (h).
        using var x2 = Leaf(1, 2);
        using var h2 = x2 * 2.0;
        using var k = h2 * 3.0;
        var y2v = Tensor.Empty([2], DType.Float64, x2.Device);
        y2v.CopyFrom(h2);
        using var custom2 = Tensor.Record(y2v, "Custom", [k, h2], [], (g, _) => [null, g.Alias(register: true)]);
        using var y2 = custom2.Sum();
        y2.Backward();
        TestUtil.AssertClose([2, 2], x2.Grad!);
    }

    [Fact]
    public void GradOfComputationInFloat32_MatchesFloat64Reference()
    {
        using var x = Tensor.From(new float[] { 0.25f, -0.5f, 1.5f }).RequiresGrad_();
        using var s = x.Sigmoid();
        using var p = s * x;
        using var y = p.Sum();
        y.Backward();
        Assert.Equal(DType.Float32, x.Grad!.DType);
        double[] xv = [0.25, -0.5, 1.5];
        var expected = xv.Select(v => { double sg = 1 / (1 + Math.Exp(-v)); return sg + v * sg * (1 - sg); }).ToArray();
        TestUtil.AssertClose(expected, x.Grad!, 1e-6, 1e-5);
    }
}
