namespace Runtime.Cli;

internal static partial class SelfCheckCommand
{
    private static IEnumerable<Check> AttentionChecks()
    {
        yield break;
    }
}
