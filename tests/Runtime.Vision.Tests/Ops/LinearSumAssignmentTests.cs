using System.Text.Json;
using Runtime.Vision.Ops;

namespace Runtime.Vision.Tests.Ops;

public class LinearSumAssignmentTests
{
    private const string File = "lsa_masks.json";

    /// <summary>
    /// The generator of make_lsa_masks.py and VisionBench.Lsa.cs: x = x*6364136223846793005 + 1442695040888963407
    /// (mod 2^64), value = (x >> 11) / 2^53, row-major.
    /// </summary>
    internal static double[] Lcg(ulong seed, int rows, int cols)
    {
        var a = new double[rows * cols];
        ulong x = seed;
        for (int k = 0; k < a.Length; k++)
        {
            x = unchecked(x * 6364136223846793005UL + 1442695040888963407UL);
            a[k] = (x >> 11) / 9007199254740992.0;
        }
        return a;
    }

    private static (double[] Cost, int Rows, int Cols) CaseMatrix(JsonElement c)
    {
        if (c.TryGetProperty("lcg", out var l))
        {
            var sh = l.GetProperty("shape");
            int r = sh[0].GetInt32(), k = sh[1].GetInt32();
            return (Lcg(l.GetProperty("seed").GetUInt64(), r, k), r, k);
        }
        var t = c.GetProperty("cost");
        var shape = OpsGolden.Shape(t);
        return (OpsGolden.Data(t), shape[0], shape[1]);
    }

    /// <summary>A complete assignment: min(rows, cols) pairs, rows strictly ascending, columns distinct, all in range.</summary>
    private static void AssertValid(int[] ri, int[] ci, int rows, int cols)
    {
        Assert.Equal(Math.Min(rows, cols), ri.Length);
        Assert.Equal(ri.Length, ci.Length);
        var used = new HashSet<int>();
        for (int k = 0; k < ri.Length; k++)
        {
            Assert.InRange(ri[k], 0, rows - 1);
            Assert.InRange(ci[k], 0, cols - 1);
            if (k > 0) Assert.True(ri[k] > ri[k - 1], "rows must be strictly ascending");
            Assert.True(used.Add(ci[k]), $"column {ci[k]} used twice");
        }
    }

    [Fact]
    public void MatchesScipyOnEveryGoldenCase()
    {
        var root = OpsGolden.Load(File);
        int cases = 0, sameIndices = 0, tiedCases = 0;
        foreach (var c in root.GetProperty("lsa").EnumerateArray())
        {
            string name = c.GetProperty("name").GetString()!;
            bool maximize = c.GetProperty("maximize").GetBoolean();
            var (cost, rows, cols) = CaseMatrix(c);
            int[] er = c.GetProperty("rows").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            int[] ec = c.GetProperty("cols").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            double total = c.GetProperty("total").GetDouble();

            var (ri, ci) = LinearSumAssignment.Solve(cost, rows, cols, maximize);
            AssertValid(ri, ci, rows, cols);
            double got = LinearSumAssignment.TotalCost(cost, cols, ri, ci);
            Assert.True(Math.Abs(got - total) <= 1e-9 * Math.Max(1, Math.Abs(total)), $"{name}: total {got}, scipy {total}");
            bool same = ri.AsSpan().SequenceEqual(er) && ci.AsSpan().SequenceEqual(ec);
            // Cases without ties have one optimum: the indices must be scipy's. Tied integer cases may
            // differ only where several assignments share the optimal total (checked above).
            bool tied = name.StartsWith("int_ties", StringComparison.Ordinal) || name.StartsWith("all_equal", StringComparison.Ordinal) || name == "maximize_int_8x8";
            if (!tied) Assert.True(same, $"{name}: got rows [{string.Join(",", ri)}] cols [{string.Join(",", ci)}], scipy cols [{string.Join(",", ec)}]");
            if (same) sameIndices++;
            if (tied) tiedCases++;
            cases++;
        }
        Assert.True(cases >= 60, $"only {cases} golden cases");
        // The solver picks between equally near columns as scipy's does, so the tied cases come out
        // with scipy's indices too.
        Assert.True(tiedCases >= 39, $"{tiedCases} tied cases");
        Assert.Equal(cases, sameIndices);
    }

    [Fact]
    public void RefusesWhatScipyRefuses()
    {
        foreach (var c in OpsGolden.Load(File).GetProperty("lsa_errors").EnumerateArray())
        {
            string name = c.GetProperty("name").GetString()!;
            string message = c.GetProperty("message").GetString()!;
            var t = c.GetProperty("cost");
            var shape = OpsGolden.Shape(t);
            var cost = OpsGolden.Data(t);
            var e = Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(cost, shape[0], shape[1], c.GetProperty("maximize").GetBoolean()));
            if (message.Contains("infeasible")) Assert.Contains("cost matrix is infeasible", e.Message);
            else Assert.Contains("invalid entry", e.Message);
            Assert.Equal("cost", e.ParamName);
            _ = name;
        }
    }

    [Fact]
    public void InvalidEntryMessageNamesTheEntry()
    {
        var e = Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(new double[,] { { 1, 2, 3 }, { 4, double.NaN, 6 } }));
        Assert.Contains("at (1, 1)", e.Message);
        Assert.Contains("NaN", e.Message);
        // A tall matrix is solved transposed; the message still names the original entry.
        e = Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(new double[,] { { 1, 2 }, { 3, 4 }, { double.NegativeInfinity, 6 } }));
        Assert.Contains("at (2, 0)", e.Message);
        e = Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(new double[,] { { 1, double.PositiveInfinity } }, maximize: true));
        Assert.Contains("at (0, 1)", e.Message);
        // Deep inside a larger matrix (past the vectorised part of the check).
        var big = Lcg(3, 10, 10);
        big[7 * 10 + 3] = double.NaN;
        big[8 * 10 + 1] = double.NegativeInfinity;
        e = Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(big, 10, 10));
        Assert.Contains("at (7, 3)", e.Message);
        big[7 * 10 + 3] = double.PositiveInfinity;
        e = Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(big, 10, 10));
        Assert.Contains("-Infinity at (8, 1)", e.Message);
        e = Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(big, 10, 10, maximize: true));
        Assert.Contains("at (7, 3)", e.Message);
        // +inf is only a forbidden pair when minimising; -inf only when maximising.
        var (r, c) = LinearSumAssignment.Solve(new double[,] { { double.PositiveInfinity, 5 } });
        Assert.Equal([0], r);
        Assert.Equal([1], c);
        (r, c) = LinearSumAssignment.Solve(new double[,] { { double.NegativeInfinity, 5 } }, maximize: true);
        Assert.Equal([1], c);
    }

    [Fact]
    public void BadArguments()
    {
        Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(new double[5], 2, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => LinearSumAssignment.Solve(new double[0], -1, 0));
        using var t3 = Tensor.Zeros(2, 2, 2);
        var e = Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(t3));
        Assert.Contains("2-D", e.Message);
    }

    [Fact]
    public void EmptyMatricesGiveEmptyResults()
    {
        foreach (var (r, c) in new[] { (0, 0), (0, 5), (5, 0) })
        {
            var (ri, ci) = LinearSumAssignment.Solve(new double[r * c], r, c);
            Assert.Empty(ri);
            Assert.Empty(ci);
            using var t = Tensor.Zeros(r, c);
            (ri, ci) = LinearSumAssignment.Solve(t, maximize: true);
            Assert.Empty(ri);
            Assert.Empty(ci);
        }
    }

    private static double BruteForce(double[] cost, int rows, int cols, bool maximize)
    {
        // Best total over all injections of the smaller side into the larger.
        bool tall = rows > cols;
        int a = tall ? cols : rows, b = tall ? rows : cols;
        double At(int i, int j) => tall ? cost[j * cols + i] : cost[i * cols + j];
        double best = maximize ? double.NegativeInfinity : double.PositiveInfinity;
        var used = new bool[b];
        void Rec(int i, double s)
        {
            if (i == a)
            {
                if (maximize ? s > best : s < best) best = s;
                return;
            }
            for (int j = 0; j < b; j++)
            {
                if (used[j]) continue;
                used[j] = true;
                Rec(i + 1, s + At(i, j));
                used[j] = false;
            }
        }
        Rec(0, 0);
        return best;
    }

    [Fact]
    public void OptimalAgainstBruteForceUpToSeven()
    {
        var rng = new Random(1234);
        for (int trial = 0; trial < 300; trial++)
        {
            int rows = rng.Next(1, 8), cols = rng.Next(1, 8);
            bool maximize = trial % 3 == 0;
            bool ints = trial % 2 == 0;
            var cost = new double[rows * cols];
            for (int k = 0; k < cost.Length; k++) cost[k] = ints ? rng.Next(-3, 4) : rng.NextDouble() * 20 - 10;
            if (trial % 5 == 0)
                for (int k = 0; k < cost.Length; k++)
                    if (rng.NextDouble() < 0.25) cost[k] = maximize ? double.NegativeInfinity : double.PositiveInfinity;
            double best = BruteForce(cost, rows, cols, maximize);
            if (double.IsInfinity(best))
            {
                var e = Assert.Throws<ArgumentException>(() => LinearSumAssignment.Solve(cost, rows, cols, maximize));
                Assert.Contains("infeasible", e.Message);
                continue;
            }
            var (ri, ci) = LinearSumAssignment.Solve(cost, rows, cols, maximize);
            AssertValid(ri, ci, rows, cols);
            double got = LinearSumAssignment.TotalCost(cost, cols, ri, ci);
            Assert.True(Math.Abs(got - best) <= 1e-9, $"trial {trial} ({rows}x{cols}, maximize {maximize}): {got} vs brute force {best}");
        }
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void TensorOverloadAnyDTypeAndLayout(string device)
    {
        var dev = Device.Parse(device);
        var c = OpsGolden.Load(File).GetProperty("lsa").EnumerateArray().First(x => x.GetProperty("name").GetString() == "int_ties_5x12");
        var (cost, rows, cols) = CaseMatrix(c);
        double total = c.GetProperty("total").GetDouble();
        // A tied case: scipy's indices from every dtype, device and layout.
        int[] ec = c.GetProperty("cols").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        Assert.Equal(total, LinearSumAssignment.TotalCost(cost, cols, Enumerable.Range(0, rows).ToArray(), ec), 9);
        foreach (var dt in new[] { DType.Float32, DType.Float64, DType.Int32, DType.Int64 })
        {
            using var t = OpsGolden.Tensor(c.GetProperty("cost"), dt, dev);
            var (ri, ci) = LinearSumAssignment.Solve(t);
            Assert.Equal(Enumerable.Range(0, rows).ToArray(), ri);
            Assert.Equal(ec, ci);
            // The transposed (non-contiguous) view is the 12 x 5 problem with the roles swapped.
            using var tt = t.Transpose(0, 1);
            var (rt, ct) = LinearSumAssignment.Solve(tt);
            Assert.Equal(rows, rt.Length);
            var costT = new double[rows * cols];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    costT[j * rows + i] = cost[i * cols + j];
            Assert.Equal(LinearSumAssignment.TotalCost(cost, cols, ri, ci), LinearSumAssignment.TotalCost(costT, rows, rt, ct), 9);
        }
        // The double[,] overload agrees with the span one.
        var arr = new double[rows, cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                arr[i, j] = cost[i * cols + j];
        Assert.Equal(ec, LinearSumAssignment.Solve(arr).ColumnIndices);
    }

    [Fact]
    public void HandCases()
    {
        // The classic 3x3 example: rows 0,1,2 -> columns 1,0,2, total 5.
        var (r, c) = LinearSumAssignment.Solve(new double[,] { { 4, 1, 3 }, { 2, 0, 5 }, { 3, 2, 2 } });
        Assert.Equal([0, 1, 2], r);
        Assert.Equal([1, 0, 2], c);
        (r, c) = LinearSumAssignment.Solve(new double[,] { { 4, 1, 3 }, { 2, 0, 5 }, { 3, 2, 2 } }, maximize: true);
        Assert.Equal([0, 2, 1], c); // 4 + 5 + 2 = 11
        // Tall: three rows, two columns; rows 0 and 2 win.
        (r, c) = LinearSumAssignment.Solve(new double[,] { { 1, 9 }, { 5, 5 }, { 9, 1 } });
        Assert.Equal([0, 2], r);
        Assert.Equal([0, 1], c);
    }
}
