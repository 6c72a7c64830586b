using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Text.Json;

namespace Runtime.Cli;

/// <summary>
/// The <c>runtime</c> command, on System.CommandLine: builds the command tree once, parses, runs the chosen
/// command, and turns every bad input into one line on stderr (<c>runtime: message</c>). Usage errors exit
/// with 2, input the command could not work with (a missing or malformed file, an unavailable device) with 1.
/// </summary>
internal static class CommandLine
{
    /// <summary>
    /// The commands of <c>runtime</c>, in help order. A new command is one file with a
    /// <c>static Command Create()</c> (its options, arguments and <c>SetAction</c>) and one line here.
    /// </summary>
    private static IEnumerable<Command> Commands() =>
    [
        DevicesCommand.Create(),
        SelfCheckCommand.Create(),
        BenchCommand.Create(),
        ModelCommands.Train(),
        ModelCommands.Eval(),
        ModelCommands.Predict(),
        DrawCommand.Create(),
        ConvertCommand.Create(),
    ];

    private static readonly Lazy<CommandGroup> Root = new(Build);

    private static CommandGroup Build()
    {
        var root = new CommandGroup("runtime", "the runtime's command line: devices, self-checks, benchmarks, detector training, evaluation and prediction, COCO drawing, checkpoints.", "command");
        root.Options.Add(new HelpOption());
        foreach (var c in Commands()) root.Subcommands.Add(c);
        root.Subcommands.Add(HelpCommand(root));
        return root;
    }

    /// <summary><c>runtime help [command ...]</c>: the same text as <c>runtime [command ...] --help</c>.</summary>
    private static Command HelpCommand(Command root)
    {
        var path = new Argument<string[]>("command") { Arity = ArgumentArity.ZeroOrMore, Description = "the command to describe" };
        var help = new Command("help", "this text, or a command's (runtime help bench)") { path };
        help.SetAction(parse => root.Parse([.. parse.GetValue(path) ?? [], "--help"]).Invoke(parse.InvocationConfiguration));
        return help;
    }

    /// <summary>Runs <c>runtime args</c> writing to <paramref name="output"/> and <paramref name="error"/>; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var config = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        if (args.Length == 0)
        {
            Root.Value.Parse(["--help"]).Invoke(config);
            return 1;
        }
        var parse = Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            error.WriteLine($"runtime: {UsageError(parse)}");
            return 2;
        }
        try
        {
            return parse.Invoke(config);
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"runtime: {OneLine(e)}");
            return 2;
        }
        catch (Exception e) when (e is FormatException or IOException or InvalidDataException or UnauthorizedAccessException
            or InvalidOperationException or JsonException or NotSupportedException)
        {
            error.WriteLine($"runtime: {OneLine(e)}");
            return 1;
        }
    }

    /// <summary>Parses <c>runtime args</c> without running anything.</summary>
    internal static ParseResult Parse(string[] args) => Root.Value.Parse(args);

    /// <summary>The one line for a parse that failed: what was wrong, and where to read more.</summary>
    private static string UsageError(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        string path = string.Join(' ', CommandPath(command));
        var word = parse.UnmatchedTokens.FirstOrDefault();
        string message;
        if (command is CommandGroup group && word is null or [not '-', ..])
        {
            string known = string.Join(", ", group.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
            message = word is null ? $"'{path}' needs {Article(group.Noun)} {group.Noun}; known: {known}" : $"unknown {group.Noun} '{word}'; known: {known}";
        }
        else if (parse.Errors.FirstOrDefault(e => e.SymbolResult is OptionResult or ArgumentResult) is { } valueError)
            message = valueError.Message; // an option's own parser saying what was wrong with its value
        else if (word is not null)
            message = word.StartsWith('-') ? $"unknown option '{word}' for '{path}'" : $"unexpected argument '{word}' for '{path}'";
        else
            message = parse.Errors[0].Message;
        return $"{message.TrimEnd('.')}; see '{path} --help'";
    }

    private static IEnumerable<string> CommandPath(Command command)
    {
        var parent = command.Parents.OfType<Command>().FirstOrDefault();
        return parent is null ? [command.Name] : [.. CommandPath(parent), command.Name];
    }

    private static string Article(string noun) => noun is [var c, ..] && "aeiou".Contains(c) ? "an" : "a";

    /// <summary>An exception's message on one line, without .NET's "(Parameter 'x')" and "Actual value was" tails.</summary>
    internal static string OneLine(Exception e)
    {
        var line = e.Message.Split('\n')[0].TrimEnd('\r');
        if (e is ArgumentException { ParamName: { } name } && line.EndsWith($" (Parameter '{name}')", StringComparison.Ordinal))
            line = line[..^$" (Parameter '{name}')".Length];
        return line;
    }

    /// <summary>Where a command's action writes its output (the console, or what a test passed to <see cref="Run"/>).</summary>
    internal static TextWriter Output(this ParseResult parse) => parse.InvocationConfiguration.Output;
}

/// <summary>
/// A command that only holds sub-commands (<c>runtime</c> itself, <c>runtime bench</c>); <see cref="Noun"/>
/// names what its sub-commands are in errors ("unknown operator 'x'; known: ...").
/// </summary>
internal sealed class CommandGroup(string name, string description, string noun) : Command(name, description)
{
    public string Noun { get; } = noun;
}
