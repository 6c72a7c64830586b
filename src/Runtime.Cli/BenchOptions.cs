using System.CommandLine;

namespace Runtime.Cli;

/// <summary>
/// The options that <c>runtime bench</c> entries share. <see cref="Common"/> (<c>--device</c>, <c>--threads</c>,
/// <c>--repeat</c>, <c>--json</c>) comes with every entry; an entry that honours <c>--dtype</c> lists
/// <see cref="DType"/> among its own options, and each entry declares its own <c>--shape</c> with
/// <see cref="Shape"/>, since what the sizes mean and their default differ from one to the next.
/// </summary>
internal static class BenchOptions
{
    public static readonly Option<Device> Device = CliOptions.Device("device to run on");

    public static readonly Option<int?> Threads = CliOptions.OptionalInt("--threads", "CPU threads (default: all cores)");

    public static readonly Option<int?> Repeat = CliOptions.OptionalInt("--repeat", "timed repetitions (default: enough for a stable median within a time budget)");

    public static readonly Option<bool> Json = CliOptions.Flag("--json", "one JSON object per line instead of a table row");

    public static readonly Option<DType> DType = CliOptions.DType("element type");

    public static IReadOnlyList<Option> Common { get; } = [Device, Threads, Repeat, Json];

    /// <summary>A <c>--shape</c> option: <paramref name="description"/> says what the sizes are and their default.</summary>
    public static Option<int[]?> Shape(string description) => CliOptions.Sizes("--shape", "a,b,...", description);
}
