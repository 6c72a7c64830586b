namespace Runtime.Cli;

/// <summary>
/// <c>runtime bench</c> for the vision operators. Each family has its own file (VisionBench.Boxes.cs,
/// VisionBench.Roi.cs, VisionBench.Masks.cs, VisionBench.Deform.cs, VisionBench.Lsa.cs, VisionBench.Attention.cs) with the
/// factory of its entries, which print the same rows / JSON lines as the core benchmarks
/// (<see cref="BenchCommand.Result"/>).
/// </summary>
internal static partial class VisionBench
{
    /// <summary>The vision operators' entries of the bench table.</summary>
    public static IReadOnlyList<BenchOperator> Operators { get; } =
    [
        NmsOperator(batched: false),
        NmsOperator(batched: true),
        RoiOperator(align: true),
        RoiOperator(align: false),
        DeformRoiOperator(),
        PasteMasksOperator(),
        DeformOperator(),
        LsaOperator(),
        AttentionOperator(),
        AxialAttentionOperator(),
    ];
}
