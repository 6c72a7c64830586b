using System.IO.Compression;
using System.Text.Json;
using Runtime.Autograd;
using Runtime.Backends;
using Runtime.Nn.Models;
using Runtime.Nn.Tests.Modules;
using static Runtime.Nn.Tests.Modules.ModuleTestUtil;

namespace Runtime.Nn.Tests.Models;

/// <summary>
/// A device other than the CPU for the ResNet-50 golden: RUNTIME_DEVICE when it names one, else opencl:0
/// (PoCL runs OpenCL on the CPU); none available skips the test.
/// </summary>
public sealed class AcceleratorFactAttribute : FactAttribute
{
    private static readonly Lazy<(Device? Device, string Why)> Found = new(() =>
    {
        var d = Device.Default.Type != DeviceType.Cpu ? Device.Default : Device.OpenCL(0);
        try
        {
            BackendRegistry.For(d);
            return (d, "");
        }
        catch (InvalidOperationException e)
        {
            return (null, e.Message);
        }
    });

    public static Device Device => Found.Value.Device ?? throw new InvalidOperationException(Found.Value.Why);

    public AcceleratorFactAttribute()
    {
        if (Found.Value.Device == null) Skip = "no accelerator device: " + Found.Value.Why;
    }
}

public class ResNetTests
{
    private static readonly Lazy<JsonElement> Resnet50Golden = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "golden", "resnet", "resnet50.json"))).RootElement);

    /// <summary>Decompresses golden/resnet/<paramref name="name"/>.gz into a fresh temporary folder and returns the file's path.</summary>
    private static string Decompress(string name, string folder)
    {
        string target = Path.Combine(folder, name);
        using var src = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "golden", "resnet", name + ".gz"));
        using var gz = new GZipStream(src, CompressionMode.Decompress);
        using var dst = File.Create(target);
        gz.CopyTo(dst);
        return target;
    }

    private static IReadOnlyDictionary<string, Tensor> LoadGoldenCheckpoint(string file)
    {
        string folder = Path.Combine(Path.GetTempPath(), "runtime-nn-resnet-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            string path = Decompress(file, folder);
            return file.EndsWith(".pth", StringComparison.Ordinal) ? Runtime.Nn.Checkpoints.TorchCheckpoint.Load(path) : Runtime.Nn.Checkpoints.Safetensors.Load(path);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The script's input: element i is (base[(i + a) % P] * base[(i / P + b) % P]) * 3 in float32.</summary>
    private static (Tensor Input, double[] Logits, int[] LogitShape) GoldenInput(string name)
    {
        var g = Resnet50Golden.Value;
        int p = g.GetProperty("period").GetInt32();
        var bas = g.GetProperty("base").EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
        var spec = g.GetProperty("inputs").GetProperty(name);
        var shape = spec.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        long a = spec.GetProperty("a").GetInt64(), b = spec.GetProperty("b").GetInt64();
        var data = new float[shape.Aggregate(1, (x, y) => x * y)];
        for (long i = 0; i < data.Length; i++) data[i] = bas[(i + a) % p] * bas[(i / p + b) % p] * 3f;
        var logits = spec.GetProperty("logits");
        return (Tensor.From(data, shape), Data(logits), ShapeOf(logits));
    }

    private static void AssertLogits(double[] expected, int[] shape, Tensor actual)
    {
        Assert.Equal(shape, actual.Shape.ToArray());
        var got = actual.ToDoubleArray();
        double maxRef = expected.Max(Math.Abs), maxDiff = 0;
        for (int i = 0; i < got.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(got[i] - expected[i]));
        Assert.True(maxRef > 0.5, $"reference logits are degenerate (max |logit| {maxRef})");
        Assert.True(maxDiff <= 1e-4 * maxRef, $"max |logit difference| {maxDiff:g4} exceeds 1e-4 of max |logit| {maxRef:g4}");
    }

    private static void CheckProbesAndLayout(IReadOnlyDictionary<string, Tensor> sd)
    {
        var g = Resnet50Golden.Value;
        var keys = g.GetProperty("keys").EnumerateArray().ToList();
        Assert.Equal(keys.Select(k => k.GetProperty("name").GetString()).Order(StringComparer.Ordinal), sd.Keys.Order(StringComparer.Ordinal));
        foreach (var k in keys)
        {
            var t = sd[k.GetProperty("name").GetString()!];
            Assert.Equal(k.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(), t.Shape.ToArray());
            Assert.Equal(k.GetProperty("dtype").GetString() == "int64" ? DType.Int64 : DType.Float32, t.DType);
        }
        foreach (var probe in g.GetProperty("probes").EnumerateObject())
        {
            using var flat = sd[probe.Name].Reshape(-1);
            var values = flat.ToDoubleArray();
            var idx = probe.Value.GetProperty("index").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var want = probe.Value.GetProperty("values").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            for (int i = 0; i < idx.Length; i++) Assert.Equal(want[i], values[idx[i]]);
        }
        Assert.Equal(g.GetProperty("num_batches_tracked").GetInt64(), (long)sd["layer2.1.bn2.num_batches_tracked"].Item());
    }

    private static ResNet LoadedResNet50(string file, Func<int, UnaryModule>? normLayer = null)
    {
        var sd = LoadGoldenCheckpoint(file);
        try
        {
            CheckProbesAndLayout(sd);
            var model = ResNet.ResNet50(normLayer: normLayer, generator: new Generator(3));
            var res = model.LoadStateDict(sd);
            Assert.Empty(res.MissingKeys);
            Assert.Empty(res.UnexpectedKeys);
            model.Eval();
            return model;
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }
    }

    private static void CheckLogits(ResNet model, string input, Device? device = null)
    {
        var (x, logits, shape) = GoldenInput(input);
        using var _x = x;
        using var noGrad = GradMode.NoGrad();
        using var xd = device is { } d ? x.To(d) : x.Reshape(x.Shape.ToArray());
        using var y = model.Forward(xd);
        using var yc = y.To(Device.Cpu);
        AssertLogits(logits, shape, yc);
    }

    [Fact]
    public void ResNet50FromPthCheckpointMatchesTorchLogits()
    {
        using var model = LoadedResNet50("resnet50.pth");
        Assert.Equal(7, (long)model.StateDict()["bn1.num_batches_tracked"].Item());
        CheckLogits(model, "cpu224");
    }

    [Fact]
    public void ResNet50FromSafetensorsMatchesTorchLogits()
    {
        using var model = LoadedResNet50("resnet50.safetensors");
        CheckLogits(model, "cpu224");
        CheckLogits(model, "small112");
    }

    [Fact]
    public void ResNet50WithFrozenBatchNormMatchesTorchLogits()
    {
        // torchvision's detection backbones: the same checkpoint into FrozenBatchNorm2d layers (num_batches_tracked dropped).
        using var model = LoadedResNet50("resnet50.safetensors", ResNet.FrozenBatchNorm());
        Assert.IsType<FrozenBatchNorm2d>(model.Bn1);
        Assert.DoesNotContain(model.StateDict().Keys, k => k.EndsWith("num_batches_tracked", StringComparison.Ordinal));
        CheckLogits(model, "small112");
    }

    /// <summary>The device run uses the 1x3x112x112 input (PoCL runs OpenCL kernels on the CPU, slowly).</summary>
    [AcceleratorFact]
    public void ResNet50OnAcceleratorMatchesTorchLogits()
    {
        using var model = LoadedResNet50("resnet50.safetensors");
        var device = AcceleratorFactAttribute.Device;
        model.To(device);
        Assert.Equal(device, model.Conv1.Weight.Device);
        CheckLogits(model, "small112", device);
    }

    public static TheoryData<string> Architectures => new() { "resnet18", "resnet34", "resnet101", "resnext50_32x4d", "wide_resnet50_2" };

    private static ResNet Build(string name, int numClasses) => name switch
    {
        "resnet18" => ResNet.ResNet18(numClasses),
        "resnet34" => ResNet.ResNet34(numClasses),
        "resnet50" => ResNet.ResNet50(numClasses),
        "resnet101" => ResNet.ResNet101(numClasses),
        "resnext50_32x4d" => ResNet.ResNeXt50_32x4d(numClasses),
        "wide_resnet50_2" => ResNet.WideResNet50_2(numClasses),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void StateDictLayoutIsTorchvisions(string name)
    {
        using var model = Build(name, 10);
        var expected = Golden("resnet_state_dicts").GetProperty(name).EnumerateArray()
            .Select(e => (e[0].GetString()!, e[1].EnumerateArray().Select(v => v.GetInt32()).ToArray())).ToList();
        var actual = model.StateDict().Select(kv => (kv.Key, kv.Value.Shape.ToArray())).ToList();
        Assert.Equal(expected.Select(e => e.Item1), actual.Select(a => a.Key));
        for (int i = 0; i < expected.Count; i++) Assert.True(expected[i].Item2.SequenceEqual(actual[i].Item2), $"{expected[i].Item1}: shape");
    }

    [Fact]
    public void ResNet50StateDictOrderIsTorchvisions()
    {
        using var model = ResNet.ResNet50();
        var expected = Resnet50Golden.Value.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("name").GetString()).ToArray();
        Assert.Equal(expected, model.StateDict().Keys.ToArray());
    }

    [Fact]
    public void ReplaceStrideWithDilationMatchesTorchvision()
    {
        using var model = ResNet.ResNet50(replaceStrideWithDilation: [false, true, true]);
        var expected = Golden("resnet50_dilated_conv2");
        int n = 0;
        foreach (var (name, m) in model.NamedModules())
        {
            if (!name.EndsWith("conv2", StringComparison.Ordinal)) continue;
            var conv = Assert.IsType<Conv2d>(m);
            var want = expected.GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(want, new[] { conv.Stride.H, conv.Dilation.H, conv.Padding.H });
            n++;
        }
        Assert.Equal(16, n);
        var ds = Assert.IsType<Conv2d>(((ResidualBlock)model.Layer4[0]).Downsample![0]);
        Assert.Equal((1, 1), ds.Stride);
    }

    /// <summary>torchvision's BasicBlock and Bottleneck (stride, downsample, groups, width, dilation) in training mode, float64.</summary>
    [Theory]
    [InlineData("basic_block")]
    [InlineData("bottleneck")]
    public void BlocksMatchTorchvisionInTraining(string name)
    {
        var g = Golden(name);
        Func<int, UnaryModule> norm = c => new BatchNorm2d(c, dtype: DType.Float64);
        using ResidualBlock block = name == "basic_block"
            ? new BasicBlock(4, 4, 1, null, 1, 64, 1, norm, DType.Float64, null, null)
            : new Bottleneck(4, 4, 2, new Sequential(new Conv2d(4, 16, 1, 2, bias: false, dtype: DType.Float64), norm(16)), 2, 32, 2, norm, DType.Float64, null, null);
        var state = g.GetProperty("state").EnumerateObject().ToDictionary(p => p.Name, p => ToTensor(p.Value));
        try
        {
            var res = block.LoadStateDict(state, strict: false);
            Assert.Empty(res.UnexpectedKeys);
            Assert.All(res.MissingKeys, k => Assert.EndsWith("num_batches_tracked", k));
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
        using var x = ToTensor(g.GetProperty("input")).RequiresGrad_();
        using var y = block.Forward(x);
        AssertGolden(g.GetProperty("output"), y, 1e-9, 1e-7);
        using var up = ToTensor(g.GetProperty("upstream"));
        using var prod = y * up;
        using var loss = prod.Sum();
        loss.Backward();
        AssertGolden(g.GetProperty("input_grad"), x.Grad!, 1e-9, 1e-7);
        var sd = block.StateDict();
        foreach (var grad in g.GetProperty("grads").EnumerateObject())
            AssertGolden(grad.Value, sd[grad.Name].Grad!, 1e-9, 1e-7);
    }

    [Fact]
    public void InitialisationIsTorchvisions()
    {
        using var model = ResNet.ResNet18(generator: new Generator(21));
        // kaiming_normal_(mode = fan_out, relu): std sqrt(2 / (Cout * kH * kW)).
        var w = model.Layer3[1].StateDict()["conv2.weight"].ToDoubleArray();
        double std = Math.Sqrt(w.Select(v => v * v).Average()), want = Math.Sqrt(2.0 / (256 * 9));
        Assert.InRange(std, 0.97 * want, 1.03 * want);
        var c1 = model.Conv1.Weight.ToDoubleArray();
        Assert.InRange(Math.Sqrt(c1.Select(v => v * v).Average()), 0.9 * Math.Sqrt(2.0 / (64 * 49)), 1.1 * Math.Sqrt(2.0 / (64 * 49)));
        var bn = Assert.IsType<BatchNorm2d>(((BasicBlock)model.Layer1[0]).Bn1);
        Assert.All(bn.Weight!.ToDoubleArray(), v => Assert.Equal(1.0, v));
        Assert.All(bn.Bias!.ToDoubleArray(), v => Assert.Equal(0.0, v));
        // The classifier keeps Linear's default U(-1/sqrt(512), 1/sqrt(512)).
        Assert.All(model.Fc!.Weight.ToDoubleArray(), v => Assert.InRange(v, -1 / Math.Sqrt(512), 1 / Math.Sqrt(512)));

        using var zero = ResNet.ResNet18(zeroInitResidual: true);
        foreach (var block in zero.Layer2.Children().Cast<BasicBlock>())
        {
            Assert.All(((BatchNorm2d)block.Bn2).Weight!.ToDoubleArray(), v => Assert.Equal(0.0, v));
            Assert.All(((BatchNorm2d)block.Bn1).Weight!.ToDoubleArray(), v => Assert.Equal(1.0, v));
        }
        using var zeroFrozen = new ResNet(ResNetBlock.Bottleneck, [1, 1, 1, 1], 10, zeroInitResidual: true, normLayer: ResNet.FrozenBatchNorm());
        Assert.All(((FrozenBatchNorm2d)((Bottleneck)zeroFrozen.Layer4[0]).Bn3).Weight.ToDoubleArray(), v => Assert.Equal(0.0, v));
    }

    [Fact]
    public void FeaturesAreTheStageOutputsAndFeedTheClassifier()
    {
        using var model = ResNet.ResNet18(numClasses: 7, generator: new Generator(2));
        model.Eval();
        using var x = Tensor.Randn([2, 3, 64, 48], new Generator(3));
        using var noGrad = GradMode.NoGrad();
        var feats = model.ForwardFeatures(x);
        try
        {
            Assert.Equal([2, 64, 16, 12], feats[0].Shape.ToArray());
            Assert.Equal([2, 128, 8, 6], feats[1].Shape.ToArray());
            Assert.Equal([2, 256, 4, 3], feats[2].Shape.ToArray());
            Assert.Equal([2, 512, 2, 2], feats[3].Shape.ToArray());
            Assert.Equal([64, 128, 256, 512], model.FeatureChannels.ToArray());
            using var pooled = feats[3].Mean([2, 3]);
            using var logits = model.Fc!.Forward(pooled);
            using var y = model.Forward(x);
            AssertClose(logits.ToDoubleArray(), y, 1e-5, 1e-5);
        }
        finally
        {
            foreach (var f in feats) f.Dispose();
        }
    }

    [Fact]
    public void TrainingStepReachesEveryParameter()
    {
        using var model = new ResNet(ResNetBlock.Bottleneck, [1, 1, 1, 1], numClasses: 3, generator: new Generator(6));
        using var x = Tensor.Randn([2, 3, 32, 32], new Generator(7));
        using var y = model.Forward(x);
        using var target = Tensor.From(new long[] { 0, 2 }, 2);
        using var loss = Runtime.Nn.Losses.Losses.CrossEntropy(y, target);
        loss.Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            Assert.True(p.Grad != null, $"{name} has no gradient");
            Assert.True(p.Grad!.ToDoubleArray().Any(v => v != 0), $"{name} has an all-zero gradient");
        }
        Assert.Equal(1, (long)model.StateDict()["layer3.0.bn2.num_batches_tracked"].Item());
    }

    [Fact]
    public void BadArgumentsAreReported()
    {
        Assert.Equal("layers", Assert.Throws<ArgumentException>(() => new ResNet(ResNetBlock.Basic, [2, 2, 2])).ParamName);
        Assert.Equal("replaceStrideWithDilation", Assert.Throws<ArgumentException>(() => new ResNet(ResNetBlock.Bottleneck, [1, 1, 1, 1], replaceStrideWithDilation: [true])).ParamName);
        Assert.Equal("groups", Assert.Throws<ArgumentException>(() => new ResNet(ResNetBlock.Basic, [1, 1, 1, 1], groups: 2)).ParamName);
        Assert.Equal("dilation", Assert.Throws<ArgumentException>(() => new ResNet(ResNetBlock.Basic, [2, 2, 2, 2], replaceStrideWithDilation: [false, false, true])).ParamName);
        using var model = ResNet.ResNet18(numClasses: 2);
        using var gray = Tensor.Zeros(1, 1, 32, 32);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(gray));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("[1, 1, 32, 32]", e.Message);
        using var chw = Tensor.Zeros(3, 32, 32);
        Assert.Throws<ArgumentException>(() => model.ForwardFeatures(chw));
    }
}
