using System.Buffers;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
/// transposed). The distances are computed with scipy's arithmetic and equally near columns are chosen
/// by scipy's rule (see <see cref="Nearest"/>), so when several assignments share the optimal total
/// (ties, as in integer matrices) the one returned is scipy's too.
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
        int bad = FirstInvalid(cost, maximize);
        if (bad >= 0)
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"linear_sum_assignment: the cost matrix contains an invalid entry {cost[bad]} at ({bad / cols}, {bad % cols}) (NaN and {(maximize ? "+inf when maximizing" : "-inf")} are not allowed)"), nameof(cost));

        double[] work = ArrayPool<double>.Shared.Rent(cost.Length);
        var col4row = new int[nr];
        bool feasible;
        try
        {
            Prepare(cost, rows, cols, maximize, transpose, work);
            feasible = SolveWide(work, nr, nc, col4row);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(work);
        }
        if (!feasible) throw new ArgumentException("linear_sum_assignment: cost matrix is infeasible", nameof(cost));

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

    /// <summary>The index of the first NaN or -inf entry (+inf when <paramref name="maximize"/>), or -1.</summary>
    private static int FirstInvalid(ReadOnlySpan<double> cost, bool maximize)
    {
        // Valid entries are those strictly above -inf (below +inf when maximising); NaN compares false.
        double bound = maximize ? double.PositiveInfinity : double.NegativeInfinity;
        int k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vb = Vector256.Create(bound);
            ref double c0 = ref MemoryMarshal.GetReference(cost);
            for (; k <= cost.Length - Vector256<double>.Count; k += Vector256<double>.Count)
            {
                var x = Vector256.LoadUnsafe(ref c0, (nuint)k);
                var ok = maximize ? Vector256.LessThan(x, vb) : Vector256.GreaterThan(x, vb);
                if (ok != Vector256<double>.AllBitsSet) break; // the scalar loop finds which
            }
        }
        for (; k < cost.Length; k++)
        {
            double x = cost[k];
            if (!(maximize ? x < bound : x > bound)) return k;
        }
        return -1;
    }

    /// <summary>Copies the validated cost into <paramref name="work"/>: negated when maximising, transposed when tall.</summary>
    private static void Prepare(ReadOnlySpan<double> cost, int rows, int cols, bool maximize, bool transpose, double[] work)
    {
        if (!transpose)
        {
            Span<double> w = work.AsSpan(0, cost.Length);
            if (!maximize)
            {
                cost.CopyTo(w);
                return;
            }
            int k = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                ref double c0 = ref MemoryMarshal.GetReference(cost);
                ref double w0 = ref MemoryMarshal.GetReference(w);
                for (; k <= cost.Length - Vector256<double>.Count; k += Vector256<double>.Count)
                    (-Vector256.LoadUnsafe(ref c0, (nuint)k)).StoreUnsafe(ref w0, (nuint)k);
            }
            for (; k < cost.Length; k++) w[k] = -cost[k];
            return;
        }
        // Tall: work is cols x rows. Blocks of 32 x 32 keep both sides in cache.
        const int B = 32;
        double sign = maximize ? -1 : 1;
        for (int r0 = 0; r0 < rows; r0 += B)
        {
            int r1 = Math.Min(rows, r0 + B);
            for (int c0 = 0; c0 < cols; c0 += B)
            {
                int c1 = Math.Min(cols, c0 + B);
                for (int r = r0; r < r1; r++)
                {
                    ReadOnlySpan<double> src = cost.Slice(r * cols, cols);
                    for (int c = c0; c < c1; c++) work[c * rows + r] = sign * src[c];
                }
            }
        }
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
    /// <remarks>
    /// Each step of a search scans one row over all columns at once (SIMD): columns already taken into
    /// the search tree carry a penalty of +inf in <c>pen</c>, which keeps them out of both the
    /// distance update and the minimum, so no index list has to be walked. scipy's solver walks such a
    /// list (<c>rem</c>, columns in descending order, a taken one replaced by the last), and its order
    /// decides between equally near columns, so the list is kept here too (with each column's place in
    /// <c>pos</c>) for <see cref="Nearest"/> to read. Every vector width computes the same values, so
    /// results do not depend on the machine.
    /// </remarks>
    private static unsafe bool SolveWide(double[] cost, int nr, int nc, int[] col4row)
    {
        var u = new double[nr];
        var v = new double[nc];
        var spc = new double[nc];        // distance to each column in this search
        var pen = new double[nc];        // 0 for columns still open in this search, +inf once scanned
        var path = new int[nc];          // the row each column is reached from
        var row4col = new int[nc];
        var seenRows = new int[nr];      // rows scanned in this search (the first `nRows`)
        var seenCols = new int[nc];      // columns scanned in this search (the first `nCols`)
        // scipy's list of open columns (the first `left` places) and each column's place in it, stored
        // only where they differ from the initial order (place k holds column nc-1-k): an entry counts
        // in search `cur` when its stamp is cur + 1, so no list has to be rebuilt per search.
        var rem = new int[nc];
        var remStamp = new int[nc];
        var pos = new int[nc];
        var posStamp = new int[nc];
        Array.Fill(col4row, -1);
        Array.Fill(row4col, -1);

        fixed (double* pc = cost, pu = u, pv = v, ps = spc, pp = pen)
        fixed (int* pPath = path, pRow4 = row4col, pCol4 = col4row, pSeenR = seenRows, pSeenC = seenCols, pRem = rem, pRemS = remStamp, pPos = pos, pPosS = posStamp)
        {
            for (int cur = 0; cur < nr; cur++)
            {
                // ---- Dijkstra search from row `cur` for the nearest free column.
                new Span<double>(ps, nc).Fill(double.PositiveInfinity);
                int stamp = cur + 1;
                var order = new Order(pRem, pRemS, pPos, pPosS, nc, stamp);
                int left = nc;
                int nRows = 0, nCols = 0;
                double minVal = 0;
                int sink = -1;
                int i = cur;
                while (sink == -1)
                {
                    pSeenR[nRows++] = i;
                    double lowest = ScanRow(pc + (long)i * nc, pv, ps, pp, pPath, nc, minVal, pu[i], i);
                    if (double.IsPositiveInfinity(lowest)) return false;
                    minVal = lowest;
                    int jj = Nearest(ps, pp, pRow4, order, nc, lowest);
                    pp[jj] = double.PositiveInfinity;
                    order.Remove(jj, --left);
                    pSeenC[nCols++] = jj;
                    if (pRow4[jj] == -1) sink = jj;
                    else i = pRow4[jj];
                }

                // ---- Move the potentials so the path's edges are tight and the rest stay feasible.
                pu[cur] += minVal;
                for (int k = 1; k < nRows; k++)
                {
                    int r = pSeenR[k];
                    pu[r] += minVal - ps[pCol4[r]];
                }
                for (int k = 0; k < nCols; k++)
                {
                    int j = pSeenC[k];
                    pv[j] -= minVal - ps[j];
                    pp[j] = 0;
                }

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

    /// <summary>
    /// One search step from row <paramref name="i"/>: <c>spc[j] = min(spc[j], minVal + c[i,j] - u[i] - v[j])</c>
    /// (evaluated left to right, as scipy does) for the open columns, recording <paramref name="i"/> in
    /// <c>path</c> where it improves, and returns the least distance among the open columns (+inf when
    /// none is reachable).
    /// </summary>
    private static unsafe double ScanRow(double* row, double* v, double* spc, double* pen, int* path, int nc, double minVal, double ui, int i)
    {
        int j = 0;
        double lowest = double.PositiveInfinity;
        if (Vector512.IsHardwareAccelerated && nc >= Vector512<double>.Count)
        {
            var vm = Vector512.Create(minVal);
            var vu = Vector512.Create(ui);
            var low = Vector512.Create(double.PositiveInfinity);
            for (; j <= nc - Vector512<double>.Count; j += Vector512<double>.Count)
            {
                var p = Vector512.Load(pen + j);
                var r = vm + Vector512.Load(row + j) - vu - Vector512.Load(v + j) + p;
                var s = Vector512.Load(spc + j);
                var lt = Vector512.LessThan(r, s);
                if (lt != Vector512<double>.Zero)
                {
                    s = Vector512.ConditionalSelect(lt, r, s);
                    s.Store(spc + j);
                    ulong bits = lt.ExtractMostSignificantBits();
                    while (bits != 0)
                    {
                        path[j + BitOperations.TrailingZeroCount(bits)] = i;
                        bits &= bits - 1;
                    }
                }
                low = Vector512.MinNative(low, s + p);
            }
            for (int k = 0; k < Vector512<double>.Count; k++) lowest = Math.Min(lowest, low.GetElement(k));
        }
        else if (Vector256.IsHardwareAccelerated && nc >= Vector256<double>.Count)
        {
            var vm = Vector256.Create(minVal);
            var vu = Vector256.Create(ui);
            var low = Vector256.Create(double.PositiveInfinity);
            for (; j <= nc - Vector256<double>.Count; j += Vector256<double>.Count)
            {
                var p = Vector256.Load(pen + j);
                var r = vm + Vector256.Load(row + j) - vu - Vector256.Load(v + j) + p;
                var s = Vector256.Load(spc + j);
                var lt = Vector256.LessThan(r, s);
                if (lt != Vector256<double>.Zero)
                {
                    s = Vector256.ConditionalSelect(lt, r, s);
                    s.Store(spc + j);
                    uint bits = lt.ExtractMostSignificantBits();
                    while (bits != 0)
                    {
                        path[j + BitOperations.TrailingZeroCount(bits)] = i;
                        bits &= bits - 1;
                    }
                }
                low = Vector256.MinNative(low, s + p);
            }
            for (int k = 0; k < Vector256<double>.Count; k++) lowest = Math.Min(lowest, low.GetElement(k));
        }
        for (; j < nc; j++)
        {
            double p = pen[j];
            double r = minVal + row[j] - ui - v[j] + p;
            double s = spc[j];
            if (r < s)
            {
                spc[j] = r;
                path[j] = i;
                s = r;
            }
            double sp = s + p;
            if (sp < lowest) lowest = sp;
        }
        return lowest;
    }

    /// <summary>
    /// The open column at distance <paramref name="lowest"/> that scipy's scan would pick: of the tied
    /// columns, the unassigned one latest in its list (<paramref name="pos"/>), else the earliest one.
    /// </summary>
    private static unsafe int Nearest(double* spc, double* pen, int* row4col, Order pos, int nc, double lowest)
    {
        int free = -1, freeAt = -1, first = -1, firstAt = int.MaxValue, j = 0;
        if (Vector512.IsHardwareAccelerated && nc >= Vector512<double>.Count)
        {
            var vl = Vector512.Create(lowest);
            for (; j <= nc - Vector512<double>.Count; j += Vector512<double>.Count)
            {
                ulong bits = Vector512.Equals(Vector512.Load(spc + j) + Vector512.Load(pen + j), vl).ExtractMostSignificantBits();
                while (bits != 0)
                {
                    Tie(j + BitOperations.TrailingZeroCount(bits), row4col, pos, ref free, ref freeAt, ref first, ref firstAt);
                    bits &= bits - 1;
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated && nc >= Vector256<double>.Count)
        {
            var vl = Vector256.Create(lowest);
            for (; j <= nc - Vector256<double>.Count; j += Vector256<double>.Count)
            {
                uint bits = Vector256.Equals(Vector256.Load(spc + j) + Vector256.Load(pen + j), vl).ExtractMostSignificantBits();
                while (bits != 0)
                {
                    Tie(j + BitOperations.TrailingZeroCount(bits), row4col, pos, ref free, ref freeAt, ref first, ref firstAt);
                    bits &= bits - 1;
                }
            }
        }
        for (; j < nc; j++)
            if (spc[j] + pen[j] == lowest) Tie(j, row4col, pos, ref free, ref freeAt, ref first, ref firstAt);
        return free >= 0 ? free : first;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Tie(int j, int* row4col, Order pos, ref int free, ref int freeAt, ref int first, ref int firstAt)
    {
        int at = pos.PlaceOf(j);
        if (row4col[j] == -1)
        {
            if (at > freeAt) { free = j; freeAt = at; }
        }
        else if (at < firstAt) { first = j; firstAt = at; }
    }

    /// <summary>
    /// scipy's list of the open columns of one search: place k starts with column nc-1-k, and taking a
    /// column moves the last open column into its place. Only moved entries are stored (stamped).
    /// </summary>
    private readonly unsafe struct Order(int* rem, int* remStamp, int* pos, int* posStamp, int nc, int stamp)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int PlaceOf(int j) => posStamp[j] == stamp ? pos[j] : nc - 1 - j;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int ColumnAt(int k) => remStamp[k] == stamp ? rem[k] : nc - 1 - k;

        /// <summary>Takes column <paramref name="j"/> out; <paramref name="lastPlace"/> is the last open place.</summary>
        public void Remove(int j, int lastPlace)
        {
            int at = PlaceOf(j), last = ColumnAt(lastPlace);
            rem[at] = last;
            remStamp[at] = stamp;
            pos[last] = at;
            posStamp[last] = stamp;
        }
    }
}
