using System.Globalization;

namespace Runtime.Vision.Ops;

/// <summary>
/// The linear sum assignment problem (scipy.optimize.linear_sum_assignment): for a rectangular
/// <c>rows x cols</c> cost matrix, pick <c>min(rows, cols)</c> entries, no two in one row or one
/// column, whose total cost is least (or greatest with <c>maximize</c>).
/// </summary>
/// <remarks>
/// The solver grows the assignment one row at a time. For each new row it runs a Dijkstra-style search
/// for the cheapest alternating path to a free column in the reduced costs <c>c[i,j] - u[i] - v[j]</c>
/// (which dual feasibility keeps non-negative), then moves the dual potentials <c>u</c>, <c>v</c> by the
/// search distances so the path's edges become tight, and flips the path. Each row costs O(rows*cols),
/// so the whole solve is O(rows^2 * cols); the wide side is always the columns (a tall matrix is solved
/// transposed). Ties between equally short columns are broken as scipy's solver breaks them: the first
/// found in the scan order, preferring an unassigned column, so tied problems usually come out with
/// scipy's indices too.
/// <para>
/// Errors follow scipy: NaN and -inf entries (+inf when maximising, which negates the matrix) are
/// invalid; +inf (-inf when maximising) marks a forbidden pair, and a matrix in which no complete
/// assignment avoids them is infeasible. Both are <see cref="ArgumentException"/>s.
/// </para>
/// </remarks>
public static class LinearSumAssignment
{
    /// <summary>
    /// Solves the assignment for a row-major <paramref name="rows"/> x <paramref name="cols"/> matrix.
    /// Returns the rows (ascending) and their columns; <c>min(rows, cols)</c> pairs.
    /// </summary>
    public static (int[] RowIndices, int[] ColumnIndices) Solve(ReadOnlySpan<double> cost, int rows, int cols, bool maximize = false)
    {
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "linear_sum_assignment: rows must be non-negative");
        if (cols < 0) throw new ArgumentOutOfRangeException(nameof(cols), cols, "linear_sum_assignment: cols must be non-negative");
        if ((long)rows * cols != cost.Length)
            throw new ArgumentException($"linear_sum_assignment: a {rows} x {cols} cost matrix needs {(long)rows * cols} values, got {cost.Length}", nameof(cost));
        if (rows == 0 || cols == 0) return ([], []);

        bool transpose = rows > cols;
        int nr = transpose ? cols : rows, nc = transpose ? rows : cols;
        var work = new double[cost.Length];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<double> src = cost.Slice(r * cols, cols);
            for (int c = 0; c < cols; c++)
            {
                double x = maximize ? -src[c] : src[c];
                if (double.IsNaN(x) || double.IsNegativeInfinity(x))
                    throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                        $"linear_sum_assignment: the cost matrix contains an invalid entry {src[c]} at ({r}, {c}) (NaN and {(maximize ? "+inf when maximizing" : "-inf")} are not allowed)"), nameof(cost));
                work[transpose ? c * rows + r : r * cols + c] = x;
            }
        }

        var col4row = new int[nr];
        if (!SolveWide(work, nr, nc, col4row)) throw new ArgumentException("linear_sum_assignment: cost matrix is infeasible", nameof(cost));

        if (!transpose)
        {
            var ri = new int[nr];
            for (int i = 0; i < nr; i++) ri[i] = i;
            return (ri, col4row);
        }
        // Solved rows are the original columns: sort the pairs by original row.
        var colOfRow = new int[rows];
        Array.Fill(colOfRow, -1);
        for (int c = 0; c < nr; c++) colOfRow[col4row[c]] = c;
        var rowsOut = new int[nr];
        var colsOut = new int[nr];
        int k = 0;
        for (int r = 0; r < rows; r++)
        {
            if (colOfRow[r] < 0) continue;
            rowsOut[k] = r;
            colsOut[k] = colOfRow[r];
            k++;
        }
        return (rowsOut, colsOut);
    }

    /// <summary>Solves the assignment for a <c>[rows, cols]</c> array.</summary>
    public static (int[] RowIndices, int[] ColumnIndices) Solve(double[,] cost, bool maximize = false)
    {
        ArgumentNullException.ThrowIfNull(cost);
        int rows = cost.GetLength(0), cols = cost.GetLength(1);
        var flat = new double[(long)rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                flat[r * cols + c] = cost[r, c];
        return Solve(flat, rows, cols, maximize);
    }

    /// <summary>Solves the assignment for a 2-D tensor of any dtype on any device (its values are copied to the host as float64).</summary>
    public static (int[] RowIndices, int[] ColumnIndices) Solve(Tensor cost, bool maximize = false)
    {
        ArgumentNullException.ThrowIfNull(cost);
        if (cost.Rank != 2)
            throw new ArgumentException($"linear_sum_assignment: the cost must be a 2-D tensor, got shape {Shapes.Format(cost.Shape)}", nameof(cost));
        int rows = cost.Shape[0], cols = cost.Shape[1];
        double[] values = cost.NumEl == 0 ? [] : cost.ToDoubleArray();
        return Solve(values, rows, cols, maximize);
    }

    /// <summary>The total cost of an assignment (sum of the chosen entries).</summary>
    public static double TotalCost(ReadOnlySpan<double> cost, int cols, int[] rowIndices, int[] columnIndices)
    {
        double s = 0;
        for (int k = 0; k < rowIndices.Length; k++) s += cost[rowIndices[k] * cols + columnIndices[k]];
        return s;
    }

    /// <summary>
    /// The shortest augmenting path solver for <paramref name="nr"/> &lt;= <paramref name="nc"/> on a
    /// validated row-major matrix; fills <paramref name="col4row"/>. False when infeasible.
    /// </summary>
    private static unsafe bool SolveWide(double[] cost, int nr, int nc, int[] col4row)
    {
        var u = new double[nr];
        var v = new double[nc];
        var spc = new double[nc];       // shortest path cost to each column in this search
        var path = new int[nc];         // the row each column is reached from
        var row4col = new int[nc];
        var remaining = new int[nc];    // columns not yet scanned in this search (first `left` entries)
        var rowSeen = new bool[nr];
        var colSeen = new bool[nc];
        Array.Fill(col4row, -1);
        Array.Fill(row4col, -1);

        fixed (double* pc = cost, pu = u, pv = v, ps = spc)
        fixed (int* pPath = path, pRow4 = row4col, pCol4 = col4row, pRem = remaining)
        fixed (bool* pSR = rowSeen, pSC = colSeen)
        {
            for (int cur = 0; cur < nr; cur++)
            {
                // ---- Dijkstra search from row `cur` for the nearest free column.
                for (int it = 0; it < nc; it++)
                {
                    pRem[it] = nc - it - 1;
                    ps[it] = double.PositiveInfinity;
                    pSC[it] = false;
                }
                new Span<bool>(pSR, nr).Clear();
                int left = nc;
                double minVal = 0;
                int sink = -1;
                int i = cur;
                while (sink == -1)
                {
                    pSR[i] = true;
                    double* row = pc + (long)i * nc;
                    double ui = pu[i];
                    double lowest = double.PositiveInfinity;
                    int index = -1;
                    for (int it = 0; it < left; it++)
                    {
                        int j = pRem[it];
                        double r = minVal + row[j] - ui - pv[j];
                        double sj = ps[j];
                        if (r < sj)
                        {
                            pPath[j] = i;
                            ps[j] = r;
                            sj = r;
                        }
                        if (sj < lowest || (sj == lowest && pRow4[j] == -1))
                        {
                            lowest = sj;
                            index = it;
                        }
                    }
                    minVal = lowest;
                    if (double.IsPositiveInfinity(minVal)) return false;
                    int jj = pRem[index];
                    if (pRow4[jj] == -1) sink = jj;
                    else i = pRow4[jj];
                    pSC[jj] = true;
                    pRem[index] = pRem[--left];
                }

                // ---- Move the potentials so the path's edges are tight and the rest stay feasible.
                pu[cur] += minVal;
                for (int r = 0; r < nr; r++)
                    if (pSR[r] && r != cur) pu[r] += minVal - ps[pCol4[r]];
                for (int j = 0; j < nc; j++)
                    if (pSC[j]) pv[j] -= minVal - ps[j];

                // ---- Flip the alternating path back to `cur`.
                int jt = sink;
                while (true)
                {
                    int r = pPath[jt];
                    pRow4[jt] = r;
                    (pCol4[r], jt) = (jt, pCol4[r]);
                    if (r == cur) break;
                }
            }
        }
        return true;
    }
}
