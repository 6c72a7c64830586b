using Runtime.Nn.Checkpoints;

namespace Runtime.Nn.Tests.Checkpoints;

public class TorchvisionKeysTests
{
    [Theory]
    [InlineData("rpn.head.conv.weight", "rpn.head.conv.0.0.weight")]
    [InlineData("rpn.head.conv.bias", "rpn.head.conv.0.0.bias")]
    [InlineData("rpn.head.conv.0.0.weight", "rpn.head.conv.0.0.weight")]
    [InlineData("roi_heads.mask_head.mask_fcn1.weight", "roi_heads.mask_head.0.0.weight")]
    [InlineData("roi_heads.mask_head.mask_fcn4.bias", "roi_heads.mask_head.3.0.bias")]
    [InlineData("roi_heads.mask_predictor.mask_fcn_logits.weight", "roi_heads.mask_predictor.mask_fcn_logits.weight")]
    [InlineData("backbone.body.layer1.0.conv1.weight", "backbone.body.layer1.0.conv1.weight")]
    [InlineData("rpn.head.cls_logits.weight", "rpn.head.cls_logits.weight")]
    public void Upgrade_RenamesOldTorchvisionKeys(string old, string expected) => Assert.Equal(expected, TorchvisionKeys.Upgrade(old));

    [Fact]
    public void Upgrade_KeepsOrderAndTensors()
    {
        var a = Tensor.Zeros(2);
        var b = Tensor.Ones(3);
        var sd = new Dictionary<string, Tensor> { ["rpn.head.conv.weight"] = a, ["x"] = b };
        var up = TorchvisionKeys.Upgrade(sd);
        Assert.Equal(new[] { "rpn.head.conv.0.0.weight", "x" }, up.Keys.ToArray());
        Assert.Same(a, up["rpn.head.conv.0.0.weight"]);
        var both = new Dictionary<string, Tensor> { ["rpn.head.conv.weight"] = a, ["rpn.head.conv.0.0.weight"] = b };
        Assert.Throws<CheckpointFormatException>(() => TorchvisionKeys.Upgrade(both));
    }
}
