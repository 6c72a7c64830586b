using System.Globalization;
using Runtime.Cpu;

namespace Runtime.Cli;

/// <summary>
/// The options every <c>runtime bench</c> command reads the same way: <c>--device</c> (default cpu),
/// <c>--dtype float32|float64</c> (default float32), <c>--threads n</c> (applied to <see cref="CpuParallel"/>
/// at once), <c>--repeat n</c> and <c>--shape a,b,c</c> (or <c>a x b x c</c>); plus typed readers for a
/// command's own options.
/// </summary>
internal sealed class BenchOptions
{
    private readonly Dictionary<string, string?> _opts;

    public BenchOptions(Dictionary<string, string?> opts)
    {
        _opts = opts;
        Device = Value("device") is string d ? Device.Parse(d) : Device.Cpu;
        DType = Value("dtype") switch
        {
            null => DType.Float32,
            "float32" => DType.Float32,
            "float64" => DType.Float64,
            var dt => throw new ArgumentException($"unsupported --dtype '{dt}'"),
        };
        if (Value("threads") is string th) CpuParallel.Threads = int.Parse(th, CultureInfo.InvariantCulture);
        Repeat = Value("repeat") is string r ? int.Parse(r, CultureInfo.InvariantCulture) : null;
        Shape = Value("shape") is string s ? s.Split(',', 'x').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray() : null;
    }

    public Device Device { get; }

    public DType DType { get; }

    public int? Repeat { get; }

    /// <summary>The <c>--shape</c> dimensions, or null when it was not given.</summary>
    public int[]? Shape { get; }

    public bool Json => _opts.ContainsKey("json");

    public bool Has(string name) => _opts.ContainsKey(name);

    /// <summary>The value of <c>--name</c>, or null (also for a bare flag).</summary>
    public string? Value(string name) => _opts.TryGetValue(name, out var v) ? v : null;

    public int Int(string name, int fallback) => Value(name) is string v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public double Double(string name, double fallback) => Value(name) is string v ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public ulong ULong(string name, ulong fallback) => Value(name) is string v ? ulong.Parse(v, CultureInfo.InvariantCulture) : fallback;
}
