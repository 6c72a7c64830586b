using Runtime.Autograd;
using static Runtime.Nn.Tests.Modules.ModuleTestUtil;

namespace Runtime.Nn.Tests.Modules;

public class ModuleTests
{
    /// <summary>Same layout as make_goldens.py's nn.Sequential.</summary>
    private static Sequential SmallSequential() => new(
        new Linear(4, 3), new BatchNorm1d(3), new ReLU(),
        new Sequential(new Linear(3, 2, bias: false), new LayerNorm(2)),
        new GroupNorm(1, 2));

    [Fact]
    public void StateDictNamesShapesAndDtypesMatchPyTorch()
    {
        using var m = SmallSequential();
        var expected = Golden("sequential_state_dict").EnumerateArray().ToList();
        var sd = m.StateDict().ToList();
        Assert.Equal(expected.Select(e => e.GetProperty("name").GetString()), sd.Select(kv => kv.Key));
        for (int i = 0; i < sd.Count; i++)
        {
            Assert.Equal(ShapeOf(expected[i]), sd[i].Value.Shape.ToArray());
            Assert.Equal(expected[i].GetProperty("dtype").GetString() == "torch.int64" ? DType.Int64 : DType.Float32, sd[i].Value.DType);
        }
        var paramNames = Golden("sequential_parameters").EnumerateArray().Select(e => e.GetString());
        Assert.Equal(paramNames, m.NamedParameters().Select(p => p.Name));
        Assert.Equal(9, m.Parameters().Count());
        Assert.Equal(["1.running_mean", "1.running_var", "1.num_batches_tracked"], m.NamedBuffers().Select(b => b.Name));
    }

    [Fact]
    public void TrainEvalPropagatesToChildren()
    {
        using var m = SmallSequential();
        Assert.All(m.NamedModules(), x => Assert.True(x.Module.IsTraining));
        m.Eval();
        Assert.All(m.NamedModules(), x => Assert.False(x.Module.IsTraining));
        m.Train();
        Assert.All(m.NamedModules(), x => Assert.True(x.Module.IsTraining));
        Assert.Equal(["", "0", "1", "2", "3", "3.0", "3.1", "4"], m.NamedModules().Select(x => x.Name));
    }

    [Fact]
    public void LoadStateDictRoundTripsInPlace()
    {
        using var a = SmallSequential();
        using var b = SmallSequential();
        var weightBefore = b.StateDict()["0.weight"];
        using (GradMode.NoGrad()) a.StateDict()["1.running_mean"].Fill_(0.25);
        a.StateDict()["1.num_batches_tracked"].Fill_(7);
        var result = b.LoadStateDict(a.StateDict());
        Assert.Empty(result.MissingKeys);
        Assert.Empty(result.UnexpectedKeys);
        Assert.Same(weightBefore, b.StateDict()["0.weight"]);
        Assert.True(weightBefore.RequiresGrad);
        foreach (var (k, v) in a.StateDict())
            Assert.Equal(v.ToDoubleArray(), b.StateDict()[k].ToDoubleArray());
        Assert.Equal(7, b.StateDict()["1.num_batches_tracked"].Item());
        Assert.Equal(DType.Int64, b.StateDict()["1.num_batches_tracked"].DType);
    }

    [Fact]
    public void StrictLoadListsMissingUnexpectedAndMisShapedKeysInOneMessage()
    {
        using var m = SmallSequential();
        var dict = m.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
        dict.Remove("1.running_var");
        dict.Remove("4.bias");
        using var extra = Tensor.Zeros(2);
        dict["5.weight"] = extra;
        using var wrong = Tensor.Zeros(3, 5);
        dict["0.weight"] = wrong;
        var ex = Assert.Throws<ArgumentException>(() => m.LoadStateDict(dict));
        Assert.Contains("missing keys: 1.running_var, 4.bias", ex.Message);
        Assert.Contains("unexpected keys: 5.weight", ex.Message);
        Assert.Contains("0.weight: expected shape [3, 4], got [3, 5]", ex.Message);

        // Non-strict still refuses shape mismatches, but reports missing/unexpected keys instead of throwing.
        var ex2 = Assert.Throws<ArgumentException>(() => m.LoadStateDict(dict, strict: false));
        Assert.DoesNotContain("missing keys", ex2.Message);
        dict.Remove("0.weight");
        var res = m.LoadStateDict(dict, strict: false);
        Assert.Equal(["0.weight", "1.running_var", "4.bias"], res.MissingKeys);
        Assert.Equal(["5.weight"], res.UnexpectedKeys);
    }

    [Fact]
    public void FrozenBatchNormIgnoresNumBatchesTrackedOnLoad()
    {
        using var bn = new BatchNorm2d(3);
        using var frozen = new FrozenBatchNorm2d(3);
        var res = frozen.LoadStateDict(bn.StateDict());
        Assert.Empty(res.UnexpectedKeys);
        Assert.Empty(frozen.Parameters());
        Assert.Equal(["weight", "bias", "running_mean", "running_var"], frozen.StateDict().Keys);
    }

    [Fact]
    public void RequiresGradFreezesAndToKeepsFlags()
    {
        using var m = SmallSequential();
        m.RequiresGrad(false);
        Assert.All(m.Parameters(), p => Assert.False(p.RequiresGrad));
        m.RequiresGrad();
        Assert.All(m.Parameters(), p => Assert.True(p.RequiresGrad));
        var before = m.Parameters().ToList();
        m.To(Device.Cpu);
        Assert.Equal(before, m.Parameters().ToList());
        Assert.All(m.Parameters(), p => Assert.True(p.RequiresGrad && p.IsLeaf && p.Device == Device.Cpu));
    }

    [Fact]
    public void DisposeDisposesParametersAndBuffers()
    {
        var m = SmallSequential();
        var tensors = m.StateDict().Values.ToList();
        m.Dispose();
        Assert.All(tensors, t => Assert.True(t.IsDisposed));
        m.Dispose();
    }

    [Fact]
    public void SequentialAppliesInOrderAndModuleListIndexes()
    {
        using var s = new Sequential(new LeakyReLU(0.5), new Sigmoid());
        using var x = Tensor.From<float>(new float[] { -2f, 0f, 2f }, 3);
        using var y = s.Forward(x);
        var expected = new[] { -1.0, 0, 2 }.Select(v => 1 / (1 + Math.Exp(-v))).ToArray();
        AssertClose(expected, y, 1e-6, 1e-6);
        using var list = new ModuleList(new Linear(2, 2), new Linear(2, 3));
        Assert.Equal(2, list.Count);
        Assert.Equal(["0.weight", "0.bias", "1.weight", "1.bias"], list.StateDict().Keys);
        Assert.IsType<Linear>(list[1]);
    }

    [Fact]
    public void BackwardThroughSequentialReachesEveryParameterAndZeroGradClears()
    {
        using var m = new Sequential(new Linear(4, 3, generator: new Generator(1)), new BatchNorm1d(3), new GELU(), new Linear(3, 2, generator: new Generator(2)), new LayerNorm(2));
        using var x = Tensor.Randn([5, 4], new Generator(3));
        using var y = m.Forward(x);
        using var w = Tensor.Randn([5, 2], new Generator(4));
        using var prod = y * w;
        using var loss = prod.Sum();
        loss.Backward();
        foreach (var (name, p) in m.NamedParameters())
        {
            Assert.True(p.Grad != null, $"{name} has no gradient");
            Assert.Equal(p.Shape.ToArray(), p.Grad!.Shape.ToArray());
        }
        m.ZeroGrad();
        Assert.All(m.Parameters(), p => Assert.Null(p.Grad));
    }

    private sealed class Computed : Module
    {
        public Computed(Tensor t) => RegisterParameter("w", t);
    }

    [Fact]
    public void ParametersMustBeFloatingLeaves()
    {
        using var a = Tensor.Ones([2], DType.Float32).RequiresGrad_();
        using var b = a * 2.0;
        Assert.Throws<ArgumentException>(() => new Computed(b));
        using var i = Tensor.Zeros([2], DType.Int64);
        Assert.Throws<ArgumentException>(() => new Computed(i));
    }

    private sealed class Dup : Module
    {
        public Dup()
        {
            RegisterParameter("w", Tensor.Zeros(1));
            RegisterBuffer("w", Tensor.Zeros(1));
        }
    }

    [Fact]
    public void DuplicateNamesAreRejected() => Assert.Throws<ArgumentException>(() => new Dup());
}
