namespace Runtime.Cli;

// The vision operators' self-checks, one file per family (SelfCheck.Boxes.cs, SelfCheck.Roi.cs,
// SelfCheck.Deform.cs, SelfCheck.Attention.cs), each yielding Checks like the core ones.
internal static partial class SelfCheckCommand
{
    private static IEnumerable<Check> VisionChecks() =>
        BoxChecks().Concat(RoiChecks()).Concat(DeformChecks()).Concat(AttentionChecks());
}
