using System.Text.Json;

namespace Runtime.Cli.Tests;

/// <summary>
/// Every entry of the bench table runs once on tiny sizes and prints one JSON line per result with its
/// options read, so a new entry (or an option renamed) cannot break the command without a test failing.
/// </summary>
public sealed class BenchTableTests
{
    /// <summary>Tiny arguments for each entry; an entry too slow for the unit tests is listed in <see cref="Slow"/> instead.</summary>
    private static readonly Dictionary<string, string[]> Tiny = new()
    {
        ["matmul"] = ["--shape", "8,4,6"],
        ["conv2d"] = ["--shape", "1,4,6,6", "--out", "2", "--kernel", "3,1", "--stride", "2", "--padding", "1", "--groups", "2", "--backward"],
        ["add"] = ["--shape", "64"],
        ["mul"] = ["--shape", "4x4", "--dtype", "float64"],
        ["relu"] = ["--shape", "64"],
        ["exp"] = ["--shape", "64"],
        ["sum"] = ["--shape", "64"],
        ["softmax"] = ["--shape", "4,8"],
        ["maxpool2d"] = ["--shape", "1,2,8,8"],
        ["interpolate"] = ["--shape", "1,2,4,4"],
        ["nms"] = ["--boxes", "50", "--iou", "0.4"],
        ["batched_nms"] = ["--boxes", "50", "--classes", "3"],
        ["roi_align"] = ["--shape", "1,2,16,16", "--rois", "3", "--output", "2", "--sampling", "0", "--aligned", "--backward"],
        ["roi_pool"] = ["--shape", "1,2,16,16", "--rois", "3", "--scale", "0.5"],
        ["deform_roi_pool"] = ["--shape", "1,2,16,16", "--rois", "3", "--output", "2", "--sampling", "0", "--aligned", "--backward"],
        ["paste_masks"] = ["--shape", "3,5,5", "--height", "20", "--width", "30"],
        ["deform_conv2d"] = ["--shape", "1,2,6,6", "--out", "2", "--kernel", "3", "--no-mask", "--backward"],
        ["lsa"] = ["--shape", "6,8", "--seed", "7", "--maximize"],
        ["attention"] = ["--shape", "1,2,8,4", "--causal", "--backward"],
        ["axial_attention"] = ["--shape", "1,8,3,3", "--heads", "2"],
        ["fasterrcnn_compact"] = ["--size", "64", "--train"],
        ["maskrcnn_compact"] = ["--size", "64", "--train"],
        ["maskx_rcnn_compact"] = ["--size", "64", "--train", "--mask-head", "agnostic_mlp", "--no-stop-grad"],
        ["retinanet_compact"] = ["--size", "64"],
        ["fasterrcnn_dcnv2_compact"] = ["--size", "64", "--train"],
        ["maskrcnn_dcnv2_compact"] = ["--size", "64"],
        ["max_deeplab_compact"] = ["--size", "65", "--train"],
        ["dual_path_block"] = ["--size", "5", "--channels", "64", "--train"],
    };

    /// <summary>Entries that build a whole model (seconds each): their options are checked by the help test only.</summary>
    private static readonly HashSet<string> Slow = ["resnet50", .. Runtime.Models.ModelCatalog.AllNames.Where(n => !n.EndsWith("_compact", StringComparison.Ordinal))];

    [Fact]
    public void EveryEntryHasATinyCase()
    {
        foreach (var op in BenchOperators.All)
            Assert.True(Tiny.ContainsKey(op.Name) || Slow.Contains(op.Name), $"bench {op.Name} has no tiny case in BenchTableTests");
        Assert.All(Tiny.Keys, name => Assert.Contains(name, BenchOperators.All.Select(o => o.Name)));
    }

    /// <summary>Every entry with a <c>--shape</c> reads it as null when left out (its default), and as given otherwise.</summary>
    [Fact]
    public void LeftOutShape_ReadsAsNull()
    {
        int checkedEntries = 0;
        foreach (var op in BenchOperators.All)
        {
            if (op.Options.OfType<System.CommandLine.Option<int[]?>>().FirstOrDefault(o => o.Name == "--shape") is not { } shape) continue;
            var bare = new BenchRun(CommandLine.Parse(["bench", op.Name]));
            Assert.Null(bare.Get(shape));
            var given = new BenchRun(CommandLine.Parse(["bench", op.Name, "--shape", "3x4,5"]));
            Assert.Equal(new[] { 3, 4, 5 }, given.Get(shape));
            checkedEntries++;
        }
        Assert.True(checkedEntries >= 10, $"only {checkedEntries} entries have --shape");
    }

    public static TheoryData<string> TinyNames => [.. Tiny.Keys];

    [Theory]
    [MemberData(nameof(TinyNames))]
    public void EntryRunsOnTinySizes(string name)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CommandLine.Run(["bench", name, .. Tiny[name], "--repeat", "1", "--json"], output, error);
        Assert.True(code == 0, error.ToString());
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            Assert.Equal("runtime", doc.RootElement.GetProperty("impl").GetString());
            Assert.Equal(1, doc.RootElement.GetProperty("repeats").GetInt32());
        }
    }
}
