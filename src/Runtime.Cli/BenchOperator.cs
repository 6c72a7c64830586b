using System.CommandLine;
using Runtime.Backends;
using Runtime.Cpu;

namespace Runtime.Cli;

/// <summary>
/// One entry of <c>runtime bench</c>: its name, a one-line description, its own options (the
/// <see cref="BenchOptions.Common"/> ones come with every entry) and what running it does.
/// </summary>
internal sealed record BenchOperator(string Name, string Description, IReadOnlyList<Option> Options, Func<BenchRun, int> Run)
{
    public Command ToCommand()
    {
        var command = new Command(Name, Description);
        foreach (var o in Options.Concat(BenchOptions.Common)) command.Options.Add(o);
        command.SetAction(parse => Run(new BenchRun(parse)));
        return command;
    }
}

/// <summary>
/// The table of <c>runtime bench</c>: the help, the "unknown operator" error and the dispatch all read it.
/// To add an entry, declare a <see cref="BenchOperator"/> next to the code it times (options created in the
/// same place as the delegate that reads them, so the two cannot drift) and add it, or its family's list,
/// here; it then shows up in <c>runtime --help</c>, <c>runtime bench --help</c> and the tests at once.
/// </summary>
internal static class BenchOperators
{
    public static readonly IReadOnlyList<BenchOperator> All =
    [
        .. BenchCommand.Operators,
        ResNetBench.Operator,
        .. VisionBench.Operators,
        .. ModelBench.Operators,
        .. PanopticBench.Operators,
    ];
}

/// <summary>
/// One parsed <c>runtime bench</c> call: the common options already read (the device checked to be
/// available, <c>--threads</c> applied to <see cref="CpuParallel"/>), the entry's own through <see cref="Get{T}"/>,
/// and the writer results go to.
/// </summary>
internal sealed class BenchRun
{
    private readonly ParseResult _parse;

    public BenchRun(ParseResult parse)
    {
        _parse = parse;
        Output = parse.Output();
        Device = Get(BenchOptions.Device);
        BackendRegistry.For(Device); // an unavailable device fails here, before any work, with the backend's reason
        if (Get(BenchOptions.Threads) is int threads) CpuParallel.Threads = threads;
        Repeat = Get(BenchOptions.Repeat);
        Json = Get(BenchOptions.Json);
    }

    public Device Device { get; }

    public int? Repeat { get; }

    public bool Json { get; }

    public TextWriter Output { get; }

    /// <summary>The <c>--dtype</c> value, for entries that list <see cref="BenchOptions.DType"/>.</summary>
    public DType DType => Get(BenchOptions.DType);

    public T Get<T>(Option<T> option) => _parse.GetValue(option)!;

    /// <summary>The parsed command line (for option groups that read several options at once).</summary>
    public ParseResult Parse => _parse;

    /// <summary>
    /// A sizes option (<see cref="CliOptions.Sizes"/>): null when it was left out. System.CommandLine reads a left-out
    /// array option as an empty array, and a given one is never empty, so empty means "use the entry's default".
    /// </summary>
    public int[]? Get(Option<int[]?> option) => _parse.GetValue(option) is { Length: > 0 } sizes ? sizes : null;

    public void Print(BenchCommand.Result result) => Output.WriteLine(Json ? result.ToJson() : result.ToRow());
}
