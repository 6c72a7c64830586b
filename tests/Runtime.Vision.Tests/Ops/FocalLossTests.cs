using System.Text.Json;
using Runtime.Nn.Losses;

namespace Runtime.Vision.Tests.Ops;

/// <summary>
/// torchvision's sigmoid_focal_loss (golden/ops/make_focal.py) on every device: Runtime.Nn's
/// Losses.SigmoidFocalLoss value and input gradient, float64 and float32.
/// </summary>
public class FocalLossTests
{
    private static JsonElement[] Cases => OpsGolden.Load("focal.json").GetProperty("cases").EnumerateArray().ToArray();

    public static TheoryData<string, int> DevicesAndCases()
    {
        var d = new TheoryData<string, int>();
        foreach (var dev in OpsDevices.All())
            for (int i = 0; i < Cases.Length; i++) d.Add(dev, i);
        return d;
    }

    [Theory, MemberData(nameof(DevicesAndCases))]
    public void MatchesTorchvision(string device, int index)
    {
        var dev = Device.Parse(device);
        var c = Cases[index];
        var red = c.GetProperty("reduction").GetString() switch { "none" => Reduction.None, "mean" => Reduction.Mean, _ => Reduction.Sum };
        double alpha = c.GetProperty("alpha").GetDouble(), gamma = c.GetProperty("gamma").GetDouble();
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            using var scope = new TensorScope();
            var x = OpsGolden.Tensor(c.GetProperty("input"), dtype, dev).RequiresGrad_();
            var t = OpsGolden.Tensor(c.GetProperty("target"), dtype, dev);
            var y = Losses.SigmoidFocalLoss(x, t, alpha, gamma, red);
            Assert.Equal(OpsGolden.Shape(c.GetProperty("out")), y.Shape.ToArray());
            Assert.Equal(dev, y.Device);
            double tol = dtype == DType.Float64 ? 1e-10 : 2e-5;
            Runtime.Tests.TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("out")), y.To(Device.Cpu), tol, tol);
            var w = OpsGolden.Tensor(c.GetProperty("out_weight"), dtype, dev);
            (y * w).Sum().Backward();
            Runtime.Tests.TestUtil.AssertClose(OpsGolden.Data(c.GetProperty("input_grad")), x.Grad!.To(Device.Cpu), tol, tol);
        }
    }
}
