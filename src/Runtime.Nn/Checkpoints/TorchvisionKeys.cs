using System.Text.RegularExpressions;

namespace Runtime.Nn.Checkpoints;

/// <summary>
/// Renames the pre-0.13 torchvision state-dict keys that the published COCO checkpoints use, as
/// torchvision's own <c>_load_from_state_dict</c> of <c>RPNHead</c> and <c>MaskRCNNHeads</c> does:
/// <c>rpn.head.conv.{weight,bias}</c> → <c>rpn.head.conv.0.0.{weight,bias}</c> and
/// <c>roi_heads.mask_head.mask_fcn{i}.{weight,bias}</c> → <c>roi_heads.mask_head.{i-1}.0.{weight,bias}</c>, and
/// RetinaNet's v1 heads (<c>RetinaNetClassificationHead</c> / <c>RetinaNetRegressionHead</c>, whose convolutions sat
/// at even places of a conv/ReLU sequence): <c>head.classification_head.conv.{2i}.{weight,bias}</c> →
/// <c>head.classification_head.conv.{i}.0.{weight,bias}</c>, the same for <c>regression_head</c>.
/// </summary>
public static partial class TorchvisionKeys
{
    [GeneratedRegex(@"^(.*roi_heads\.mask_head\.)mask_fcn([1-9][0-9]*)\.(weight|bias)$")]
    private static partial Regex MaskFcn();

    [GeneratedRegex(@"^(.*rpn\.head\.)conv\.(weight|bias)$")]
    private static partial Regex RpnConv();

    [GeneratedRegex(@"^(.*head\.(?:classification_head|regression_head)\.)conv\.([0-9]*[02468])\.(weight|bias)$")]
    private static partial Regex RetinaConv();

    /// <summary>The new-style name of <paramref name="key"/> (itself when no rename applies).</summary>
    public static string Upgrade(string key)
    {
        var m = RpnConv().Match(key);
        if (m.Success) return $"{m.Groups[1].Value}conv.0.0.{m.Groups[2].Value}";
        m = RetinaConv().Match(key);
        if (m.Success) return $"{m.Groups[1].Value}conv.{int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) / 2}.0.{m.Groups[3].Value}";
        m = MaskFcn().Match(key);
        if (m.Success) return $"{m.Groups[1].Value}{int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) - 1}.0.{m.Groups[3].Value}";
        return key;
    }

    /// <summary>A copy of <paramref name="stateDict"/> with old torchvision keys renamed, order kept.</summary>
    public static IReadOnlyDictionary<string, Tensor> Upgrade(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        var result = new OrderedDictionary<string, Tensor>();
        foreach (var (k, v) in stateDict)
        {
            var nk = Upgrade(k);
            if (nk != k && stateDict.ContainsKey(nk))
                throw new CheckpointFormatException($"state dict holds both '{k}' and its new name '{nk}'");
            result[nk] = v;
        }
        return result;
    }
}
