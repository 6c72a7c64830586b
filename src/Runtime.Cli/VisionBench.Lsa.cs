using System.Diagnostics;
using System.Globalization;
using Runtime.Cpu;
using Runtime.Vision.Ops;

namespace Runtime.Cli;

internal static partial class VisionBench
{
    /// <summary>
    /// <c>runtime bench lsa</c>: median time of <see cref="LinearSumAssignment"/> on an R x C float64 matrix
    /// (default 200 x 200) from the generator below, which benchmarks/scipy_lsa.py repeats so scipy solves the
    /// same numbers. On a GPU device the matrix lives there and the time includes its copy to the host.
    /// </summary>
    private static BenchOperator LsaOperator()
    {
        var shape = BenchOptions.Shape("cost matrix N, or R,C (default 200)");
        var seed = CliOptions.ULong("--seed", "seed of the cost matrix (default 1234)");
        var maximize = CliOptions.Flag("--maximize", "maximise the total instead of minimising it");
        return new BenchOperator("lsa", "linear sum assignment (scipy's linear_sum_assignment) on a float64 matrix; solves/s",
            [shape, seed, maximize], run =>
            {
                int[] sh = run.Get(shape) ?? [200];
                if (sh.Length is not (1 or 2)) throw new ArgumentException("lsa --shape is N or R,C");
                return RunLsa(run, sh[0], sh[^1], run.Get(seed) ?? 1234, run.Get(maximize));
            });
    }

    private static int RunLsa(BenchRun run, int rows, int cols, ulong seed, bool maximize)
    {
        var (device, repeat) = (run.Device, run.Repeat);
        double[] cost = LcgMatrix(seed, rows, cols);
        using var tensor = device == Device.Cpu ? null : Tensor.From<double>(cost, [rows, cols], device);
        double Once()
        {
            var sw = Stopwatch.StartNew();
            var res = tensor == null ? LinearSumAssignment.Solve(cost, rows, cols, maximize) : LinearSumAssignment.Solve(tensor, maximize);
            double ms = sw.Elapsed.TotalMilliseconds;
            GC.KeepAlive(res);
            return ms;
        }
        var (reps, median, min) = BenchCommand.Time(Once, repeat);
        // The solver runs on one thread whatever --threads says.
        var result = new BenchCommand.Result(maximize ? "lsa_max" : "lsa", $"{rows}x{cols}", DType.Float64.Name(), device.ToString(),
            1, reps, median, min, 1000 / median, "solves/s");
        run.Print(result);
        return 0;
    }

    /// <summary>
    /// Row-major values in [0, 1): x = x*6364136223846793005 + 1442695040888963407 (mod 2^64), value =
    /// (x >> 11) / 2^53. benchmarks/scipy_lsa.py and the tests' golden script use the same formula.
    /// </summary>
    private static double[] LcgMatrix(ulong seed, int rows, int cols)
    {
        var a = new double[(long)rows * cols];
        ulong x = seed;
        for (long k = 0; k < a.Length; k++)
        {
            x = unchecked(x * 6364136223846793005UL + 1442695040888963407UL);
            a[k] = (x >> 11) / 9007199254740992.0;
        }
        return a;
    }
}
