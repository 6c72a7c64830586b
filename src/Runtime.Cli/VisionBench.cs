namespace Runtime.Cli;

/// <summary>
/// <c>runtime bench</c> for the vision operators. Each family has its own file (VisionBench.Boxes.cs,
/// VisionBench.Roi.cs, VisionBench.Deform.cs, VisionBench.Lsa.cs, VisionBench.Attention.cs) with a
/// <c>Run(string[] args)</c> that parses its options and prints the same rows / JSON lines as the
/// core benchmarks (<see cref="BenchCommand.Result"/>).
/// </summary>
internal static partial class VisionBench
{
    /// <summary>The operator names this class benchmarks, with the method that runs each.</summary>
    private static readonly Dictionary<string, Func<string[], int>> Ops = new()
    {
        ["nms"] = RunNms,
        ["batched_nms"] = RunNms,
        ["roi_align"] = RunRoi,
        ["roi_pool"] = RunRoi,
        ["deform_conv2d"] = RunDeform,
        ["lsa"] = RunLsa,
        ["attention"] = RunAttention,
        ["axial_attention"] = RunAttention,
    };

    /// <summary>The vision operator named among the arguments, if any (as <c>bench resnet50</c> finds its name).</summary>
    public static string? OpName(string[] args) => args.FirstOrDefault(Ops.ContainsKey);

    public static int Run(string[] args) => Ops[OpName(args)!](args);
}
