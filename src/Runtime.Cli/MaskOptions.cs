using System.CommandLine;
using System.Globalization;
using Runtime.Models.Detection;
using Runtime.Vision.Data;

namespace Runtime.Cli;

/// <summary>
/// The mask options of <c>train</c>, <c>predict</c> and <c>bench</c>: partial mask supervision
/// (<c>--mask-classes</c>, any mask model) and Mask^X R-CNN's predictor (<c>--mask-head</c>, <c>--transfer-input</c>,
/// <c>--no-stop-grad</c>, the maskx_rcnn models). A checkpoint's config.json keeps them, so <c>eval</c> and
/// <c>predict</c> on a checkpoint folder need none.
/// </summary>
internal sealed class MaskOptions
{
    public Option<string?> MaskClasses { get; } = CliOptions.Text("--mask-classes", "names|ids",
        "partial mask supervision (mask models): the classes, comma-separated names or category ids, whose masks train the mask branch (set A); the others (B) train on boxes only and still get masks");

    public Option<string?> MaskHead { get; } = CliOptions.Choice("--mask-head",
        "Mask^X mask predictor: class-agnostic, weight transfer (FCN), either plus the class-agnostic MLP branch (default transfer_mlp)", MaskXRcnnConfig.MaskHeads);

    public Option<string?> TransferInput { get; } = CliOptions.Choice("--transfer-input",
        "Mask^X: the box predictor weights the weight transfer reads (default cls_box)", MaskXRcnnConfig.TransferInputs);

    public Option<bool> NoStopGrad { get; } = CliOptions.Flag("--no-stop-grad",
        "Mask^X: let the mask loss train the box predictor through the weight transfer (default: gradient stopped)");

    /// <summary>The options that shape a model's architecture (for a weights file without a config).</summary>
    public IEnumerable<Option> Architecture => [MaskHead, TransferInput];

    /// <summary>Every option.</summary>
    public IEnumerable<Option> All => [MaskClasses, MaskHead, TransferInput, NoStopGrad];

    public MaskSettings Read(ParseResult parse) =>
        new(parse.GetValue(MaskClasses), parse.GetValue(MaskHead), parse.GetValue(TransferInput), parse.GetValue(NoStopGrad));
}

/// <summary>The values of <see cref="MaskOptions"/> as given (null / false: not given).</summary>
internal sealed record MaskSettings(string? MaskClasses, string? MaskHead, string? TransferInput, bool NoStopGrad)
{
    /// <summary>No mask option given.</summary>
    public static MaskSettings None { get; } = new(null, null, null, false);

    /// <summary>
    /// <paramref name="config"/> with the given options applied; an option that does not fit the model
    /// (<paramref name="model"/>) is an error. <c>--mask-classes</c> names or category ids resolve through
    /// <paramref name="categories"/> (without one, numbers are labels).
    /// </summary>
    public DetectorConfig Apply(DetectorConfig config, string model, CategoryMap? categories)
    {
        if (MaskClasses != null)
        {
            if (config is not MaskRcnnConfig m)
                throw new ArgumentException($"--mask-classes applies to the mask models (maskrcnn_*, maskx_rcnn_*), not {model}");
            config = m with { MaskClasses = ParseClasses(MaskClasses, categories, config.NumClasses) };
        }
        if (MaskHead == null && TransferInput == null && !NoStopGrad) return config;
        if (config is not MaskXRcnnConfig x)
        {
            string given = MaskHead != null ? "--mask-head" : TransferInput != null ? "--transfer-input" : "--no-stop-grad";
            throw new ArgumentException($"{given} applies to the Mask^X models (maskx_rcnn_*), not {model}");
        }
        return x with
        {
            MaskHead = MaskHead ?? x.MaskHead,
            TransferInput = TransferInput ?? x.TransferInput,
            TransferStopGradient = x.TransferStopGradient && !NoStopGrad,
        };
    }

    /// <summary>Labels of comma-separated class names (any case) or category ids; at least one, none twice.</summary>
    public static int[] ParseClasses(string text, CategoryMap? categories, int numClasses)
    {
        var labels = new List<int>();
        foreach (var raw in text.Split(','))
        {
            var token = raw.Trim();
            int label;
            if (long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out long id))
            {
                if (categories == null) label = id < numClasses ? (int)id : 0;
                else label = categories.TryGetLabel(id, out int l) ? l : 0;
                if (label < 1) throw new ArgumentException($"--mask-classes: no class has category id {id}{Known(categories)}");
            }
            else
            {
                label = categories == null ? -1 : IndexOf(categories.Names, token);
                if (label < 1) throw new ArgumentException($"--mask-classes: unknown class '{token}'{Known(categories)}");
            }
            if (labels.Contains(label)) throw new ArgumentException($"--mask-classes: '{token}' is given twice");
            labels.Add(label);
        }
        return [.. labels];
    }

    private static int IndexOf(IReadOnlyList<string> names, string name)
    {
        for (int i = 1; i < names.Count; i++)
            if (string.Equals(names[i], name, StringComparison.OrdinalIgnoreCase)) return i;
        return -1;
    }

    private static string Known(CategoryMap? categories) =>
        categories == null ? " (without a data set the classes are labels 1..)" : $"; the classes are {string.Join(", ", categories.Categories.Select(c => $"{c.Name} ({c.Id})"))}";
}
