namespace Runtime.Cli;

internal static partial class SelfCheckCommand
{
    private static IEnumerable<Check> BoxChecks()
    {
        yield break;
    }
}
