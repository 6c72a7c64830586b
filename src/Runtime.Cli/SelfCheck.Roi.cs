namespace Runtime.Cli;

internal static partial class SelfCheckCommand
{
    private static IEnumerable<Check> RoiChecks()
    {
        yield break;
    }
}
