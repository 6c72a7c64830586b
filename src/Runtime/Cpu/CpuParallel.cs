namespace Runtime.Cpu;

/// <summary>
/// Splits a range of work items over the cores (on the <see cref="WorkerPool"/> threads); small ranges run on the
/// calling thread.
/// </summary>
public static class CpuParallel
{
    private static int _threads = Environment.ProcessorCount;

    /// <summary>Most threads a CPU kernel uses (default: the core count, or RUNTIME_NUM_THREADS).</summary>
    public static int Threads
    {
        get => _threads;
        set => _threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "need at least one thread");
    }

    static CpuParallel()
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("RUNTIME_NUM_THREADS"), out var n) && n >= 1) _threads = n;
    }

    /// <summary>
    /// Calls <paramref name="body"/>(start, end) over disjoint pieces of [0, total). Pieces hold at
    /// least <paramref name="grain"/> items; with one piece the call is made inline.
    /// </summary>
    public static void For(long total, long grain, Action<long, long> body)
    {
        if (total <= 0) return;
        int pieces = (int)Math.Min(_threads, Math.Max(1, total / Math.Max(1, grain)));
        if (pieces <= 1)
        {
            body(0, total);
            return;
        }
        WorkerPool.Run(pieces, pieces, i =>
        {
            long start = total * i / pieces, end = total * (i + 1) / pieces;
            if (end > start) body(start, end);
        });
    }
}
