using System.Text.Json;
using Runtime.Nn.Losses;
using static Runtime.Nn.Tests.Losses.LossTestUtil;
using L = Runtime.Nn.Losses.Losses;

namespace Runtime.Nn.Tests.Losses;

/// <summary>Every loss's value and input gradients against PyTorch 1.13 / torchvision 0.14 (float64).</summary>
public class LossGoldenTests
{
    private static readonly Lazy<JsonElement[]> Cases = new(() => LoadGolden("losses.json").EnumerateArray().ToArray());

    public static IEnumerable<object[]> CaseIds() =>
        Enumerable.Range(0, Cases.Value.Length).Select(i => new object[] { i, Cases.Value[i].GetProperty("name").GetString()! });

    private static Reduction ParseReduction(string s) => s switch
    {
        "none" => Reduction.None,
        "mean" => Reduction.Mean,
        "sum" => Reduction.Sum,
        _ => throw new ArgumentException(s),
    };

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void MatchesPyTorch(int index, string name)
    {
        var c = Cases.Value[index];
        using var scope = new TensorScope();
        var tensors = new Dictionary<string, Tensor>();
        foreach (var key in new[] { "input", "target", "weight", "pos_weight" })
        {
            if (!c.TryGetProperty(key, out var e)) continue;
            var shape = Ints(e.GetProperty("shape"));
            if (name == "cross_entropy" && key == "target")
                tensors[key] = Tensor.From<long>(Longs(e.GetProperty("data")), shape);
            else
            {
                var t = Tensor.From<double>(Doubles(e.GetProperty("data")), shape);
                if (e.TryGetProperty("grad", out _)) t.RequiresGrad = true;
                tensors[key] = t;
            }
        }
        var red = ParseReduction(c.GetProperty("reduction").GetString()!);
        Tensor? Opt(string k) => tensors.TryGetValue(k, out var t) ? t : null;
        var x = tensors["input"];
        var y = tensors["target"];
        var outT = name switch
        {
            "cross_entropy" => L.CrossEntropy(x, y, Opt("weight"), c.GetProperty("ignore_index").GetInt64(), red),
            "bce_with_logits" => L.BinaryCrossEntropyWithLogits(x, y, Opt("weight"), Opt("pos_weight"), red),
            "smooth_l1" => L.SmoothL1(x, y, c.GetProperty("beta").GetDouble(), red),
            "l1" => L.L1(x, y, red),
            "sigmoid_focal" => L.SigmoidFocalLoss(x, y, c.GetProperty("alpha").GetDouble(), c.GetProperty("gamma").GetDouble(), red),
            "dice" => L.DiceLoss(x, y, red),
            _ => throw new InvalidOperationException(name),
        };
        Assert.Equal(Ints(c.GetProperty("out_shape")), outT.Shape.ToArray());
        AssertClose(Doubles(c.GetProperty("out")), outT, what: $"{name} value");
        using var w = Tensor.From<double>(Doubles(c.GetProperty("out_weight")), outT.Shape.ToArray());
        using var weighted = outT * w;
        using var total = weighted.Sum();
        total.Backward();
        foreach (var (key, t) in tensors)
        {
            if (!c.GetProperty(key).TryGetProperty("grad", out var ge)) continue;
            Assert.NotNull(t.Grad);
            AssertClose(Doubles(ge), t.Grad!, what: $"{name} d/d{key}");
            t.Grad!.Dispose();
        }
    }
}
