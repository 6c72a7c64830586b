using System.Numerics;
using Runtime.Backends;

namespace Runtime.Gpu;

// The IBackend kernels: each picks a kernel of Kernels/*.k, packs its arguments and sizes the launch.
public abstract partial class GpuBackend
{
    // ---------------- copy and fill ----------------

    public void Fill(TensorView destination, double value)
    {
        ulong bits = destination.DType switch
        {
            DType.Float32 => BitConverter.SingleToUInt32Bits((float)value),
            DType.Float64 => BitConverter.DoubleToUInt64Bits(value),
            DType.Int32 => (uint)(int)value,
            DType.Int64 => (ulong)(long)value,
            _ => value != 0 ? 1UL : 0UL,
        };
        var loop = StridedLoop.Create(destination.Shape, (destination.Offset, destination.Strides));
        lock (Gate)
        {
            Enter();
            var k = Kernel("bits", GpuDialect.BitsDefines(destination.DType.SizeOf()), "fill");
            var y = Buf(destination);
            foreach (var (arg, n) in loop.Pieces())
                LaunchItems(k, n, Args().Buffer(y).Strided(arg).I64(n).Add(bits));
        }
    }

    public void Copy(TensorView source, TensorView destination)
    {
        lock (Gate)
        {
            Enter();
            nint x = Buf(source), y = Buf(destination);
            int es = source.DType.SizeOf();
            if (source.DType == destination.DType && source.IsContiguous && destination.IsContiguous)
            {
                RawCopy(x, source.Offset * es, y, destination.Offset * es, source.NumEl * es);
                return;
            }
            if (!SupportsFloat64 && (source.DType == DType.Float64 || destination.DType == DType.Float64))
            {
                CopyThroughHost(source, destination);
                return;
            }
            var loop = StridedLoop.Create(destination.Shape, (source.Offset, source.Strides), (destination.Offset, destination.Strides));
            var k = Kernel("copy", GpuDialect.CopyDefines(source.DType, destination.DType), "copy");
            foreach (var (arg, n) in loop.Pieces())
                LaunchItems(k, n, Args().Buffer(x).Buffer(y).Strided(arg).I64(n));
        }
    }

    /// <summary>Conversions to and from Float64 on a device without doubles: through the host, contiguous views only.</summary>
    private void CopyThroughHost(TensorView source, TensorView destination)
    {
        if (!source.IsContiguous || !destination.IsContiguous)
            Require(DType.Float64, "Copy");
        long n = source.NumEl;
        var src = new byte[n * source.DType.SizeOf()];
        RawDownload(Buf(source), source.Offset * source.DType.SizeOf(), src);
        var dst = new byte[n * destination.DType.SizeOf()];
        for (long i = 0; i < n; i++)
        {
            double v = source.DType switch
            {
                DType.Float32 => BitConverter.ToSingle(src, (int)(i * 4)),
                DType.Float64 => BitConverter.ToDouble(src, (int)(i * 8)),
                DType.Int32 => BitConverter.ToInt32(src, (int)(i * 4)),
                DType.Int64 => BitConverter.ToInt64(src, (int)(i * 8)),
                _ => src[i],
            };
            switch (destination.DType)
            {
                case DType.Float32: BitConverter.TryWriteBytes(dst.AsSpan((int)(i * 4)), (float)v); break;
                case DType.Float64: BitConverter.TryWriteBytes(dst.AsSpan((int)(i * 8)), v); break;
                case DType.Int32: BitConverter.TryWriteBytes(dst.AsSpan((int)(i * 4)), (int)v); break;
                case DType.Int64: BitConverter.TryWriteBytes(dst.AsSpan((int)(i * 8)), (long)v); break;
                default: dst[i] = v != 0 ? (byte)1 : (byte)0; break;
            }
        }
        RawUpload(dst, Buf(destination), destination.Offset * destination.DType.SizeOf());
    }

    // ---------------- elementwise ----------------

    public void Unary(UnaryOp op, TensorView x, TensorView y, double alpha, double beta)
    {
        Require(x.DType, op.ToString());
        var loop = StridedLoop.Create(y.Shape, (x.Offset, x.Strides), (y.Offset, y.Strides));
        lock (Gate)
        {
            Enter();
            var k = Kernel("elementwise", GpuDialect.TypeDefines(x.DType), "unary");
            nint px = Buf(x), py = Buf(y);
            foreach (var (arg, n) in loop.Pieces())
            {
                var args = Args().Buffer(px).Buffer(py).Strided(arg).I64(n).I32((int)op);
                if (SupportsFloat64) args.Add(alpha).Add(beta);
                else args.Add((float)alpha).Add((float)beta);
                LaunchItems(k, n, args);
            }
        }
    }

    public void Binary(BinaryOp op, TensorView a, TensorView b, TensorView y)
    {
        Require(a.DType, op.ToString());
        var loop = StridedLoop.Create(y.Shape, (a.Offset, a.Strides), (b.Offset, b.Strides), (y.Offset, y.Strides));
        lock (Gate)
        {
            Enter();
            bool toBool = op.IsComparison() || op.IsLogical();
            var k = Kernel("elementwise", GpuDialect.TypeDefines(a.DType), toBool ? "compare" : "binary");
            nint pa = Buf(a), pb = Buf(b), py = Buf(y);
            foreach (var (arg, n) in loop.Pieces())
                LaunchItems(k, n, Args().Buffer(pa).Buffer(pb).Buffer(py).Strided(arg).I64(n).I32((int)op));
        }
    }

    public void Where(TensorView condition, TensorView a, TensorView b, TensorView y)
    {
        var loop = StridedLoop.Create(y.Shape, (condition.Offset, condition.Strides), (a.Offset, a.Strides), (b.Offset, b.Strides), (y.Offset, y.Strides));
        lock (Gate)
        {
            Enter();
            var k = Kernel("bits", GpuDialect.BitsDefines(y.DType.SizeOf()), "where_select");
            nint pc = Buf(condition), pa = Buf(a), pb = Buf(b), py = Buf(y);
            foreach (var (arg, n) in loop.Pieces())
                LaunchItems(k, n, Args().Buffer(pc).Buffer(pa).Buffer(pb).Buffer(py).Strided(arg).I64(n));
        }
    }

    // ---------------- reductions ----------------

    /// <summary>Columns per group for [outer, k, inner] kernels: adjacent inner positions share a group (coalesced loads).</summary>
    private static int ColumnsPerGroup(long inner) => inner >= 32 ? 32 : (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, inner));

    private const int ReduceLocal = 256;

    /// <summary>Power-of-two group size for the tree reductions: 256, or less where the kernel allows less.</summary>
    private static int GroupSize(KernelFunction k) => Math.Min(ReduceLocal, 1 << (31 - BitOperations.LeadingZeroCount((uint)Math.Max(1, k.MaxLocalSize))));

    public void Reduce(ReduceOp op, TensorView x, TensorView y, int outer, int k, int inner)
    {
        Require(x.DType, op.ToString());
        if (k == 0)
        {
            Fill(y, op is ReduceOp.Prod or ReduceOp.Min or ReduceOp.All ? 1 : 0);
            return;
        }
        lock (Gate)
        {
            Enter();
            ReduceRaw(op, x.DType, Buf(x), x.Offset, Buf(y), y.Offset, outer, k, inner);
        }
    }

    private void ReduceRaw(ReduceOp op, DType t, nint x, long xoff, nint y, long yoff, long outer, long k, long inner)
    {
        var kern = Kernel("reduce", GpuDialect.TypeDefines(t), "reduce");
        int local = GroupSize(kern);
        int lx = Math.Min(ColumnsPerGroup(inner), local);
        int ly = local / lx;
        long tiles = (inner + lx - 1) / lx;
        long groups = outer * tiles;
        // Few long rows: split each into parts reduced by separate groups, then reduce the parts.
        long parts = 1;
        if (groups < MaxGroups && k > 16L * ly)
            parts = Math.Min(Math.Max(1, MaxGroups / groups), (k + 16L * ly - 1) / (16L * ly));
        long chunk = (k + parts - 1) / parts;
        parts = (k + chunk - 1) / chunk;
        if (parts == 1)
        {
            LaunchGroups(kern, groups, local, Args().Buffer(x).I64(xoff).Buffer(y).I64(yoff).I32((int)op)
                .I64(outer).I64(k).I64(inner).I64(1).I64(chunk).I32(lx));
            return;
        }
        using var partial = new GpuBuffer(this, outer * parts * inner * t.SizeOf());
        LaunchGroups(kern, groups * parts, local, Args().Buffer(x).I64(xoff).Buffer(partial.Handle).I64(0).I32((int)op)
            .I64(outer).I64(k).I64(inner).I64(parts).I64(chunk).I32(lx));
        ReduceRaw(op, t, partial.Handle, 0, y, yoff, outer, parts, inner);
    }

    public void ArgReduce(bool max, TensorView x, TensorView indices, int outer, int k, int inner)
    {
        Require(x.DType, "ArgReduce");
        lock (Gate)
        {
            Enter();
            ArgReduceRaw(max, x.DType, Buf(x), x.Offset, 0, Buf(indices), indices.Offset, outer, k, inner);
        }
    }

    /// <summary>Like <see cref="ReduceRaw"/>: long rows split into parts whose (value, index) pairs are reduced again.</summary>
    private void ArgReduceRaw(bool max, DType t, nint x, long xoff, nint candidates, nint y, long yoff, long outer, long k, long inner)
    {
        var kern = Kernel("reduce", GpuDialect.TypeDefines(t), "arg_reduce");
        int local = GroupSize(kern);
        int lx = Math.Min(ColumnsPerGroup(inner), local);
        int ly = local / lx;
        long tiles = (inner + lx - 1) / lx;
        long groups = outer * tiles;
        long parts = 1;
        if (groups < MaxGroups && k > 16L * ly)
            parts = Math.Min(Math.Max(1, MaxGroups / groups), (k + 16L * ly - 1) / (16L * ly));
        long chunk = (k + parts - 1) / parts;
        parts = (k + chunk - 1) / chunk;
        nint cand = candidates != 0 ? candidates : x; // any buffer when unused
        if (parts == 1)
        {
            LaunchGroups(kern, groups, local, Args().Buffer(x).I64(xoff).Buffer(cand).I32(candidates != 0 ? 1 : 0)
                .Buffer(y).I64(yoff).Buffer(y).I32(max ? 1 : 0).I64(outer).I64(k).I64(inner).I64(1).I64(chunk).I32(lx));
            return;
        }
        using var values = new GpuBuffer(this, outer * parts * inner * t.SizeOf());
        using var index = new GpuBuffer(this, outer * parts * inner * 8);
        LaunchGroups(kern, groups * parts, local, Args().Buffer(x).I64(xoff).Buffer(cand).I32(candidates != 0 ? 1 : 0)
            .Buffer(index.Handle).I64(0).Buffer(values.Handle).I32(max ? 1 : 0).I64(outer).I64(k).I64(inner).I64(parts).I64(chunk).I32(lx));
        ArgReduceRaw(max, t, values.Handle, 0, index.Handle, y, yoff, outer, parts, inner);
    }

    public void Softmax(TensorView x, TensorView y, int outer, int k, int inner, bool log)
    {
        Require(x.DType, "Softmax");
        lock (Gate)
        {
            Enter();
            var kern = Kernel("softmax", GpuDialect.TypeDefines(x.DType), "softmax");
            int local = GroupSize(kern);
            // Short rows: fewer lanes per column, more columns per group.
            int lx = Math.Min(ColumnsPerGroup(inner), local);
            long tiles = (inner + lx - 1) / lx;
            LaunchGroups(kern, (long)outer * tiles, local, Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(y)).I64(y.Offset)
                .I64(outer).I64(k).I64(inner).I32(lx).I32(log ? 1 : 0));
        }
    }

    public void CumSum(TensorView x, TensorView y, int outer, int k, int inner)
    {
        Require(x.DType, "CumSum");
        lock (Gate)
        {
            Enter();
            var defs = GpuDialect.TypeDefines(x.DType);
            var rowsKernel = Kernel("reduce", defs, "cumsum_rows");
            int local = GroupSize(rowsKernel);
            if (inner == 1 && k > 32)
            {
                LaunchGroups(rowsKernel, outer, local, Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(y)).I64(y.Offset).I64(outer).I64(k));
            }
            else if ((long)outer * inner < 2048 && k > 1024)
            {
                // Few long columns: transpose them into rows, scan the rows in parallel, transpose back.
                long n = (long)outer * k * inner;
                int es = x.DType.SizeOf();
                using var rows = new GpuBuffer(this, n * es);
                using var scanned = new GpuBuffer(this, n * es);
                long[] blockStrides = [(long)k * inner, inner, 1], rowStrides = [(long)k * inner, 1, k];
                var copy = Kernel("copy", GpuDialect.CopyDefines(x.DType, x.DType), "copy");
                foreach (var (arg, cnt) in StridedLoop.Create([outer, k, inner], (x.Offset, blockStrides), (0, rowStrides)).Pieces())
                    LaunchItems(copy, cnt, Args().Buffer(Buf(x)).Buffer(rows.Handle).Strided(arg).I64(cnt));
                LaunchGroups(rowsKernel, (long)outer * inner, local, Args().Buffer(rows.Handle).I64(0).Buffer(scanned.Handle).I64(0).I64((long)outer * inner).I64(k));
                foreach (var (arg, cnt) in StridedLoop.Create([outer, k, inner], (0, rowStrides), (y.Offset, blockStrides)).Pieces())
                    LaunchItems(copy, cnt, Args().Buffer(scanned.Handle).Buffer(Buf(y)).Strided(arg).I64(cnt));
            }
            else
            {
                var kern = Kernel("reduce", defs, "cumsum_columns");
                LaunchItems(kern, (long)outer * inner, Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(y)).I64(y.Offset).I64(outer).I64(k).I64(inner));
            }
        }
    }

    // ---------------- matrix product ----------------

    /// <summary>Tile shape of the matrix product: (BM, BN, BK, TM, TN).</summary>
    internal virtual (int BM, int BN, int BK, int TM, int TN) MatMulTiles(DType t) => (64, 64, 16, 4, 4);

    /// <summary>Overrides the tile shape (tests run the CUDA tile shape on OpenCL).</summary>
    internal (int BM, int BN, int BK, int TM, int TN)? MatMulTilesOverride { get; set; }

    public void MatMul(TensorView a, TensorView b, TensorView c, bool accumulate)
    {
        if (a.DType == DType.Bool) throw new ArgumentException("matmul does not support dtype bool", nameof(a));
        Require(a.DType, "MatMul");
        int batch = a.Shape[0], m = a.Shape[1], kk = a.Shape[2], n = b.Shape[2];
        var (bm, bn, bk, tm, tn) = MatMulTilesOverride ?? MatMulTiles(a.DType);
        lock (Gate)
        {
            Enter();
            var defs = GpuDialect.TypeDefines(a.DType) + $"#define BM {bm}\n#define BN {bn}\n#define BK {bk}\n#define TM {tm}\n#define TN {tn}\n";
            var kern = Kernel("matmul", defs, "matmul");
            int threads = bm / tm * (bn / tn);
            long tiles = (long)batch * ((m + bm - 1) / bm) * ((n + bn - 1) / bn);
            LaunchGroups(kern, tiles, threads, Args()
                .Buffer(Buf(a)).I64(a.Offset).I64(a.Strides[0]).I64(a.Strides[1]).I64(a.Strides[2])
                .Buffer(Buf(b)).I64(b.Offset).I64(b.Strides[0]).I64(b.Strides[1]).I64(b.Strides[2])
                .Buffer(Buf(c)).I64(c.Offset).I64(batch).I64(m).I64(n).I64(kk).I32(accumulate ? 1 : 0));
        }
    }

    // ---------------- indexing ----------------

    public void IndexSelect(TensorView x, TensorView index, TensorView y, int outer, int n, int inner)
    {
        int m = index.Shape.Length == 0 ? 1 : index.Shape[0];
        long istride = index.Shape.Length == 0 ? 0 : index.Strides[0];
        lock (Gate)
        {
            Enter();
            var k = Kernel("bits", GpuDialect.BitsDefines(x.DType.SizeOf()), "index_select");
            LaunchItems(k, (long)outer * m * inner, Args().Buffer(Buf(x)).I64(x.Offset).Buffer(Buf(index)).I64(index.Offset).I64(istride)
                .Buffer(Buf(y)).I64(y.Offset).I64(outer).I64(n).I64(m).I64(inner));
        }
    }

    public void IndexAdd(TensorView y, TensorView index, TensorView source, int outer, int n, int inner)
    {
        if (y.DType == DType.Bool) throw new ArgumentException("index_add does not support dtype bool", nameof(y));
        Require(y.DType, "IndexAdd");
        int m = index.Shape.Length == 0 ? 1 : index.Shape[0];
        long istride = index.Shape.Length == 0 ? 1 : index.Strides[0];
        lock (Gate)
        {
            Enter();
            // Sort the index stably; each target row then sums its sources in index order (no atomics).
            using var keys = new GpuBuffer(this, (long)m * 8);
            using var order = new GpuBuffer(this, (long)m * 8);
            nint idx = Buf(index);
            long ioff = index.Offset;
            GpuBuffer? packed = null;
            if (istride != 1 && m > 1)
            {
                packed = new GpuBuffer(this, (long)m * 8);
                var loop = StridedLoop.Create([m], (index.Offset, [istride]), (0, [1]));
                var ck = Kernel("copy", GpuDialect.CopyDefines(DType.Int64, DType.Int64), "copy");
                foreach (var (arg, cnt) in loop.Pieces())
                    LaunchItems(ck, cnt, Args().Buffer(idx).Buffer(packed.Handle).Strided(arg).I64(cnt));
                idx = packed.Handle;
                ioff = 0;
            }
            SortRaw(DType.Int64, idx, ioff, keys.Handle, 0, order.Handle, 0, 1, m, descending: false);
            packed?.Dispose();
            var k = Kernel("index", GpuDialect.TypeDefines(y.DType), "index_add_sorted");
            LaunchItems(k, (long)outer * n * inner, Args().Buffer(Buf(y)).I64(y.Offset).Buffer(Buf(source)).I64(source.Offset)
                .Buffer(keys.Handle).Buffer(order.Handle).I64(outer).I64(n).I64(m).I64(inner));
        }
    }

    public void Gather(TensorView x, int dim, TensorView index, TensorView y)
    {
        var shape = index.Shape.Length == 0 ? [1] : index.Shape;
        var xs = x.Rank == 0 ? [0L] : (long[])x.Strides.Clone();
        long dimStride = xs[dim];
        xs[dim] = 0;
        var loop = StridedLoop.Create(shape, (index.Offset, Pad(index.Strides)), (x.Offset, xs), (y.Offset, Pad(y.Strides)));
        lock (Gate)
        {
            Enter();
            var k = Kernel("bits", GpuDialect.BitsDefines(x.DType.SizeOf()), "gather");
            nint pi = Buf(index), px = Buf(x), py = Buf(y);
            foreach (var (arg, n) in loop.Pieces())
                LaunchItems(k, n, Args().Buffer(pi).Buffer(px).Buffer(py).Strided(arg).I64(n).I64(dimStride));
        }
    }

    private static long[] Pad(long[] strides) => strides.Length == 0 ? [0L] : strides;

    public void Scatter(TensorView y, int dim, TensorView index, TensorView source, bool accumulate)
    {
        Require(y.DType, "Scatter");
        int rank = index.Rank;
        int m = rank == 0 ? 1 : index.Shape[dim];
        long istep = rank == 0 ? 0 : index.Strides[dim];
        long sstep = rank == 0 ? 0 : source.Strides[dim];
        long ystep = rank == 0 ? 0 : y.Strides[dim];
        int targets = rank == 0 ? 1 : y.Shape[dim];
        // Columns: every position of the index except along dim. Targets of different columns never meet.
        int[] cols = rank == 0 ? [] : index.Shape.Where((_, d) => d != dim).ToArray();
        long[] Drop(long[] s) => rank == 0 ? [] : s.Where((_, d) => d != dim).ToArray();
        long columns = 1;
        foreach (var c in cols) columns *= c;
        lock (Gate)
        {
            Enter();
            nint pi = Buf(index), ps = Buf(source), py = Buf(y);
            var colLoop = StridedLoop.Create(cols, (source.Offset, Drop(source.Strides)), (y.Offset, Drop(y.Strides)));
            var colPieces = colLoop.Pieces().Take(2).ToList();
            if (columns >= 4096 || m <= 32 || colPieces.Count != 1)
            {
                // Many columns: one work-item walks each column in order.
                var loop = StridedLoop.Create(cols, (index.Offset, Drop(index.Strides)), (source.Offset, Drop(source.Strides)), (y.Offset, Drop(y.Strides)));
                var k = Kernel("index", GpuDialect.TypeDefines(y.DType), "scatter_columns");
                foreach (var (arg, n) in loop.Pieces())
                    LaunchItems(k, n, Args().Buffer(pi).Buffer(ps).Buffer(py).Strided(arg).I64(n)
                        .I64(m).I64(istep).I64(sstep).I64(ystep).I32(accumulate ? 1 : 0), local: 64);
                return;
            }
            // Few long columns: sort each column's indices (stably), then one work-item per target.
            using var keys = new GpuBuffer(this, columns * m * 8);
            using var sorted = new GpuBuffer(this, columns * m * 8);
            using var order = new GpuBuffer(this, columns * m * 8);
            var gatherShape = cols.Append(m).ToArray();
            var packed = StridedLoop.Create(gatherShape, (index.Offset, Drop(index.Strides).Append(istep).ToArray()),
                (0, Contiguous(gatherShape)));
            var ck = Kernel("copy", GpuDialect.CopyDefines(DType.Int64, DType.Int64), "copy");
            foreach (var (arg, n) in packed.Pieces())
                LaunchItems(ck, n, Args().Buffer(pi).Buffer(keys.Handle).Strided(arg).I64(n));
            SortRaw(DType.Int64, keys.Handle, 0, sorted.Handle, 0, order.Handle, 0, columns, m, descending: false);
            var sk = Kernel("index", GpuDialect.TypeDefines(y.DType), "scatter_sorted");
            LaunchItems(sk, columns * targets, Args().Buffer(ps).Buffer(py).Strided(colPieces[0].Arg).I64(columns).I64(m).I64(targets)
                .Buffer(sorted.Handle).Buffer(order.Handle).I64(sstep).I64(ystep).I32(accumulate ? 1 : 0));
        }
    }

    private static long[] Contiguous(int[] shape)
    {
        var s = new long[shape.Length];
        long acc = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            s[d] = acc;
            acc *= shape[d];
        }
        return s;
    }

    // ---------------- sort ----------------

    public void Sort(TensorView x, TensorView values, TensorView indices, int outer, int n, bool descending)
    {
        Require(x.DType, "Sort");
        lock (Gate)
        {
            Enter();
            SortRaw(x.DType, Buf(x), x.Offset, Buf(values), values.Offset, Buf(indices), indices.Offset, outer, n, descending);
        }
    }

    /// <summary>Bitonic sort of rows padded to a power of two, in local memory when a row fits, else one global step per launch.</summary>
    private void SortRaw(DType t, nint x, long xoff, nint values, long voff, nint indices, long ioff, long rows, long n, bool descending)
    {
        if (rows == 0 || n == 0) return;
        long npow = (long)BitOperations.RoundUpToPowerOf2((ulong)n);
        int limit = SortLocalLimit;
        var defs = GpuDialect.TypeDefines(t) + $"#define SORT_LOCAL {limit}\n";
        if (npow <= limit)
        {
            var k = Kernel("sort", defs, "sort_local");
            int local = (int)Math.Clamp(npow / 2, 1, Math.Min(256, k.MaxLocalSize));
            LaunchGroups(k, rows, local, Args().Buffer(x).I64(xoff).Buffer(values).I64(voff).Buffer(indices).I64(ioff)
                .I64(rows).I64(n).I32((int)npow).I32(descending ? 1 : 0));
            return;
        }
        using var keys = new GpuBuffer(this, rows * npow * t.SizeOf());
        using var idx = new GpuBuffer(this, rows * npow * 8);
        var init = Kernel("sort", defs, "sort_init");
        LaunchItems(init, rows * npow, Args().Buffer(x).I64(xoff).Buffer(keys.Handle).Buffer(idx.Handle).I64(rows).I64(n).I64(npow));
        var step = Kernel("sort", defs, "sort_step");
        for (long kk = 2; kk <= npow; kk <<= 1)
            for (long j = kk >> 1; j > 0; j >>= 1)
                LaunchItems(step, rows * (npow / 2), Args().Buffer(keys.Handle).Buffer(idx.Handle).I64(rows).I64(n).I64(npow)
                    .I64(kk).I64(j).I32(descending ? 1 : 0));
        var finish = Kernel("sort", defs, "sort_finish");
        LaunchItems(finish, rows * n, Args().Buffer(keys.Handle).Buffer(idx.Handle).Buffer(values).I64(voff).Buffer(indices).I64(ioff)
            .I64(rows).I64(n).I64(npow));
    }
}
