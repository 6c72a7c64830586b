using System.Text.Json;
using Runtime.Models.Panoptic;

namespace Runtime.Models.Tests;

/// <summary>
/// DeepLab2's auxiliary semantic decoder (ASPP, stride-8 and stride-4 fusion) against golden/make_max_deeplab.py's
/// PyTorch reference with the same weights: output and the gradients of the three inputs and of every parameter in
/// training mode (dropout off), output and input gradients in eval mode, on every device, to 1e-4 of each tensor's
/// largest magnitude in float32. Also the dropout's reproducibility from <see cref="MaxDeepLab.DropoutGenerator"/>.
/// </summary>
public class MaxDeepLabSemanticDecoderTests
{
    private static readonly JsonElement Doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Golden.Folder, "max_deeplab_semantic.json"))).RootElement.Clone();

    private static Tensor Load(JsonElement t, Device device) =>
        Tensor.From<float>(Golden.Data(t).Select(v => (float)v).ToArray(), Golden.Shape(t)).To(device);

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    private static SemanticDecoder Build(Device device, double dropout)
    {
        var c = Doc.GetProperty("config");
        var decoder = new SemanticDecoder(c.GetProperty("high_channels").GetInt32(), Ints(c.GetProperty("low_channels")), Ints(c.GetProperty("projections")),
            c.GetProperty("aspp_channels").GetInt32(), Ints(c.GetProperty("rates")), c.GetProperty("decoder_channels").GetInt32(),
            new Generator(5), dropout, device: device, generator: new Generator(1));
        MaxDeepLabBlockTests.LoadGolden(decoder, Doc.GetProperty("checkpoint").GetString()!);
        return decoder;
    }

    [Theory]
    [MemberData(nameof(Runtime.Testing.TestDevices.All), MemberType = typeof(Runtime.Testing.TestDevices))]
    public void MatchesTorchReference(string device)
    {
        var dev = Device.Parse(device);
        foreach (var mode in new[] { "train", "eval" })
        {
            using var decoder = Build(dev, dropout: 0);
            decoder.Train(mode == "train");
            var inputs = Doc.GetProperty("inputs");
            var expected = Doc.GetProperty(mode);
            using var scope = new TensorScope();
            var xs = new[] { "high", "low0", "low1" }.Select(k => Load(inputs.GetProperty(k), dev)).ToArray();
            foreach (var x in xs) x.RequiresGrad = true;
            var output = decoder.Forward(xs[0], [xs[1], xs[2]]);
            MaxDeepLabBlockTests.AssertClose(expected.GetProperty("out"), output, 1e-4, $"{mode} output");
            (output * Load(inputs.GetProperty("grad_out"), dev)).Sum().Backward();
            var grads = expected.GetProperty("grads");
            for (int i = 0; i < 3; i++)
                MaxDeepLabBlockTests.AssertClose(grads.GetProperty(i == 0 ? "high" : $"low{i - 1}"), xs[i].Grad!, 1e-4, $"{mode} d input {i}");
            if (mode != "train") continue;
            var parameters = decoder.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
            int compared = 0;
            foreach (var g in grads.EnumerateObject())
            {
                if (g.Name is "high" or "low0" or "low1") continue;
                Assert.True(parameters.TryGetValue(g.Name, out var p), $"no parameter {g.Name}");
                MaxDeepLabBlockTests.AssertClose(g.Value, p!.Grad!, 1e-4, $"d {g.Name}");
                compared++;
            }
            Assert.Equal(parameters.Count, compared);
        }
    }

    [Fact]
    public void AsppDropoutIsOnlyInTrainingAndRepeatsFromItsSeed()
    {
        var dropoutGenerator = new Generator(9);
        using var withDropout = new Aspp(12, 6, [1, 2, 3], 0.1, dropoutGenerator, generator: new Generator(1));
        using var without = new Aspp(12, 6, [1, 2, 3], 0, null, generator: new Generator(1));
        using var scope = new TensorScope();
        var x = Load(Doc.GetProperty("inputs").GetProperty("high"), Device.Cpu);
        withDropout.Eval();
        without.Eval();
        Assert.Equal(without.Forward(x).ToArray<float>(), withDropout.Forward(x).ToArray<float>());
        withDropout.Train();
        without.Train();
        dropoutGenerator.ManualSeed(3);
        var a = withDropout.Forward(x).ToArray<float>();
        dropoutGenerator.ManualSeed(3);
        var b = withDropout.Forward(x).ToArray<float>();
        var plain = without.Forward(x).ToArray<float>();
        Assert.Equal(a, b);
        // Each value is dropped (0) or kept and scaled by 1 / (1 - 0.1); about a tenth of the non-zero ones are dropped.
        int dropped = 0, nonZero = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (plain[i] == 0) { Assert.Equal(0, a[i]); continue; }
            nonZero++;
            if (a[i] == 0) dropped++;
            else Assert.True(Math.Abs(a[i] - plain[i] / 0.9) <= 1e-6 * Math.Max(1, Math.Abs(a[i])), $"value {i}: {a[i]} is neither 0 nor {plain[i]} / 0.9");
        }
        Assert.InRange(dropped, 1, nonZero / 4);
    }
}
