using System.CommandLine;
using System.Globalization;

namespace Runtime.Cli;

/// <summary>
/// Typed options for every command. Each parser says in one line what was wrong with a value
/// ("--threads: expected an integer, got 'abc'"), so numbers, sizes, devices and dtypes are read the same
/// way everywhere and a bad one is a usage error, not an exception from deep inside a benchmark.
/// </summary>
internal static class CliOptions
{
    public static Option<int> Int(string name, string description, int defaultValue, int min = 1) =>
        WithDefault(Parsed(name, "n", description, t => ParseInt(t, min)), defaultValue);

    /// <summary>An integer option whose default depends on other values (null when it was not given).</summary>
    public static Option<int?> OptionalInt(string name, string description, int min = 1) =>
        Parsed<int?>(name, "n", description, t => ParseInt(t, min));

    public static Option<double> Double(string name, string description, double defaultValue) =>
        WithDefault(Parsed(name, "x", description, ParseDouble), defaultValue);

    public static Option<ulong?> ULong(string name, string description) =>
        Parsed<ulong?>(name, "n", description, t => ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var v)
            ? v : throw new FormatException($"expected a non-negative integer, got '{t}'"));

    /// <summary>Sizes written <c>a,b,c</c> or <c>axbxc</c>; null when the option was not given.</summary>
    public static Option<int[]?> Sizes(string name, string helpName, string description) =>
        Parsed<int[]?>(name, helpName, description, ParseSizes);

    public static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    /// <summary>One of <paramref name="choices"/> (exact spelling); null when the option was not given.</summary>
    public static Option<string?> Choice(string name, string description, IReadOnlyList<string> choices) =>
        Parsed<string?>(name, string.Join('|', choices), description, t => choices.Contains(t)
            ? t : throw new FormatException($"expected {string.Join(", ", choices.Take(choices.Count - 1))} or {choices[^1]}, got '{t}'"));

    public static Option<string?> Text(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description };

    /// <summary><c>--device</c>, the CPU unless given.</summary>
    public static Option<Device> Device(string description) =>
        WithDefault(Parsed("--device", "cpu|cuda:i|opencl:i", description, ParseDevice), Runtime.Device.Cpu);

    /// <summary><c>--device</c> that must be given.</summary>
    public static Option<Device> RequiredDevice(string helpName, string description)
    {
        var option = Parsed("--device", helpName, description, ParseDevice);
        option.Required = true;
        return option;
    }

    public static Option<DType> DType(string description) =>
        WithDefault(Parsed("--dtype", "float32|float64", description, t => t.ToLowerInvariant() switch
        {
            "float32" => Runtime.DType.Float32,
            "float64" => Runtime.DType.Float64,
            _ => throw new FormatException($"expected float32 or float64, got '{t}'"),
        }), Runtime.DType.Float32);

    private static Option<T> WithDefault<T>(Option<T> option, T value)
    {
        option.DefaultValueFactory = _ => value;
        return option;
    }

    /// <summary>
    /// An option read by <paramref name="parse"/>, which throws <see cref="FormatException"/> with what was wrong;
    /// that becomes the parse error "--name: message".
    /// </summary>
    private static Option<T> Parsed<T>(string name, string helpName, string description, Func<string, T> parse) =>
        new(name)
        {
            HelpName = helpName,
            Description = description,
            CustomParser = result =>
            {
                if (result.Tokens.Count == 0) return default!;
                string text = result.Tokens[^1].Value;
                try
                {
                    return parse(text);
                }
                catch (FormatException e)
                {
                    result.AddError($"{name}: {e.Message}");
                    return default!;
                }
            },
        };

    private static int ParseInt(string text, int min)
    {
        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v))
            throw new FormatException($"expected an integer, got '{text}'");
        return v >= min ? v : throw new FormatException($"expected an integer of at least {min}, got '{text}'");
    }

    private static double ParseDouble(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)
            ? v : throw new FormatException($"expected a number, got '{text}'");

    private static int[] ParseSizes(string text)
    {
        var parts = text.Split(',', 'x');
        var sizes = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out sizes[i]))
                throw new FormatException($"expected sizes such as 8,256,14,14 or 1024, got '{text}'");
        return sizes;
    }

    private static Device ParseDevice(string text)
    {
        try
        {
            return Runtime.Device.Parse(text);
        }
        catch (ArgumentException e)
        {
            throw new FormatException(CommandLine.OneLine(e), e);
        }
    }
}
