using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Vision.Data;

namespace Runtime.Models.Tests;

public class SmokeTests
{
    internal static FasterRcnnConfig TinyFrcnn => new()
    {
        Backbone = new BackboneConfig { Depth = 18, Widths = [8, 16, 32, 64], FpnChannels = 16 },
        NumClasses = 4, MinSize = [96], MaxSize = 160,
        AnchorSizes = [[8], [16], [32], [64], [128]],
        RepresentationSize = 32,
    };

    [Fact]
    public void FasterRcnnRunsBothWays()
    {
        using var model = new FasterRcnn(TinyFrcnn, generator: new Generator(1));
        var gen = new Generator(2);
        using var img = Tensor.Rand([3, 80, 112], gen);
        model.Eval();
        var dets = model.Predict([img]);
        Assert.Single(dets);
        foreach (var d in dets) d.Dispose();
        model.Train();
        using var target = DetectionTarget.FromArrays([10, 10, 50, 40, 60, 20, 100, 70], [1, 2], null, 0, 0, [0, 0], [1200, 2000], 1);
        using var sample = new DetectionSample(img.Clone(), target);
        var losses = model.ComputeLosses([sample]);
        Assert.Equal(["loss_box_reg", "loss_classifier", "loss_objectness", "loss_rpn_box_reg"], losses.Keys.Order().ToArray());
        using var total = losses.Values.Aggregate((a, b) => a + b);
        total.Backward();
        Assert.NotNull(model.RoiHeads.BoxPredictor.ClsScore.Weight.Grad);
    }
}
