namespace Runtime.Cli;

internal static partial class VisionBench
{
    private static int RunAttention(string[] args) => throw new NotSupportedException($"bench {OpName(args)} is not built yet");
}
