using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Runtime.Cpu;

/// <summary>
/// Single- and double-precision general matrix multiply in the BLIS/GotoBLAS style.
/// <c>C (m x n) = A (m x k) * B (k x n)</c>, or <c>C += A * B</c> when accumulating. A(i,p) is at
/// <c>a[i*rsA + p*csA]</c>, B(p,j) at <c>b[p*rsB + j*csB]</c> and C(i,j) at <c>c[i*ldc + j]</c>; the operand strides
/// are arbitrary (transposed, strided, or 0 for broadcast) because both operands are always packed.
/// </summary>
/// <remarks>
/// <para>Loop nest run by each thread over the block of C it owns:</para>
/// <code>
/// for ic in M step MC            A panel MC x KC, packed into MR-row slivers (L2/L3)
///   for pc in K step KC
///     pack A(ic.., pc..)
///     for jc in N step NC        B block KC x NC, packed into NR-column slivers (L2)
///       pack B(pc.., jc..)
///       for ir in MC step MR     one A sliver (MR x KC) stays in L1 ...
///         for jr in NC step NR   ... while B slivers stream from L2
///           micro-kernel: the MR x NR tile of C lives in registers; A is broadcast, B loaded as vectors
/// </code>
/// <para>Edge tiles are computed from zero-padded slivers into a small temporary tile and then merged, so nothing
/// outside the operands is read or written. Packing buffers are 64-byte aligned, one per thread, and reused across
/// calls. The micro-kernel is picked at start-up: AVX-512 (8 x 32 float, 8 x 16 double), AVX2+FMA (6 x 16 float,
/// 6 x 8 double), or portable scalar code (4 x 4). Threads split C by rows (or by columns when C is short and wide);
/// each runs the whole loop nest on its part. Row-vector (m == 1) and column-vector (n == 1) products take
/// unpacked, memory-bound paths.</para>
/// <para>The general entry (<see cref="Run{T, TA, TB}"/>) is what convolutions use: A and B come from panel sources
/// (<see cref="IPanelA{T}"/>, <see cref="IPanelB{T}"/>: strided matrices, a weight packed once, a B packed once and
/// shared by the threads, or a convolution's input unfolded on the fly by <see cref="ConvColumns{T}"/>), C is laid out
/// image by image (<see cref="Output{T}"/>), and an <see cref="Epilogue{T}"/> (bias per row, residual, ReLU) is applied
/// to each tile after its last K block: in registers by the AVX-512 kernels, on the stored tile otherwise. The sources
/// are structs, so the JIT specialises the loop nest for each and inlines their packing.</para>
/// </remarks>
internal static unsafe class Gemm
{
    /// <summary>
    /// Products with fewer multiply-adds than this run on the calling thread (measured crossover on 2 Zen 5 cores:
    /// waking a pool thread costs about as much as a 96^3 product).
    /// </summary>
    private const double MinParallelWork = 128.0 * 128.0 * 128.0;

    /// <summary>C = A * B (or C += A * B when <paramref name="accumulate"/>), float32.</summary>
    public static void Sgemm(int m, int n, int k, float* a, long rsA, long csA, float* b, long rsB, long csB, float* c, long ldc, bool accumulate, int maxThreads)
        => Run(SingleConfigs[0], m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate, maxThreads);

    /// <summary>C = A * B (or C += A * B when <paramref name="accumulate"/>), float64.</summary>
    public static void Dgemm(int m, int n, int k, double* a, long rsA, long csA, double* b, long rsB, long csB, double* c, long ldc, bool accumulate, int maxThreads)
        => Run(DoubleConfigs[0], m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate, maxThreads);

    // ------------------------------------------------------------------------------------------------
    // Configurations
    // ------------------------------------------------------------------------------------------------

    /// <summary>
    /// A micro-kernel with its blocking. <c>Kernel(kc, a, b, c, ldc, acc)</c> computes
    /// C[r*ldc + j] (=|+=) sum_p A[p*MR + r] * B[p*NR + j] for r &lt; MR, j &lt; NR from packed slivers of A and B.
    /// </summary>
    internal sealed class Config<T> where T : unmanaged
    {
        public readonly string Name;
        public readonly int MR, NR, KC, MC, NC;
        public readonly delegate*<long, T*, T*, T*, long, bool, void> Kernel;

        /// <summary>
        /// The kernel with the epilogue applied in registers before the store, or null (the driver then applies it to the
        /// stored tile): <c>FusedKernel(kc, a, b, c, ldc, acc, bias, residual, relu)</c> adds bias[r] to row r when bias is
        /// not null, the residual tile (laid out like C, with ldc) when not null, then ReLU.
        /// </summary>
        public readonly delegate*<long, T*, T*, T*, long, bool, T*, T*, bool, void> FusedKernel;

        /// <summary>
        /// The depth MC and NC are sized for: K blocks deeper than this (up to KC) get proportionally fewer rows of A
        /// per panel and columns of B per block, so that the panel and the block keep their cache footprint.
        /// </summary>
        public readonly int BlockDepth;

        public Config(string name, int mr, int nr, int kc, int mc, int nc, delegate*<long, T*, T*, T*, long, bool, void> kernel,
            delegate*<long, T*, T*, T*, long, bool, T*, T*, bool, void> fusedKernel = null, int blockDepth = 0)
        {
            if (mc % mr != 0 || nc % nr != 0)
                throw new ArgumentException("MC and NC must be multiples of MR and NR");
            (Name, MR, NR, KC, MC, NC) = (name, mr, nr, kc, mc, nc);
            BlockDepth = blockDepth > 0 ? Math.Min(blockDepth, kc) : kc;
            Kernel = kernel;
            FusedKernel = fusedKernel;
        }

        /// <summary>Most rows of A in a panel of depth <paramref name="kc"/> (MC at <see cref="BlockDepth"/> or less).</summary>
        public int McFor(int kc) => kc <= BlockDepth ? MC : Math.Max(MR, (int)((long)MC * BlockDepth / kc) / MR * MR);

        /// <summary>Most columns of B in a block of depth <paramref name="kc"/> (NC at <see cref="BlockDepth"/> or less).</summary>
        public int NcFor(int kc) => kc <= BlockDepth ? NC : Math.Max(NR, (int)((long)NC * BlockDepth / kc) / NR * NR);

        /// <summary>Per-thread scratch: A panel, B block, edge tile, each 64-byte aligned.</summary>
        public nuint ScratchBytes => (nuint)((Math.Max((long)MC * BlockDepth, (long)McFor(KC) * KC) + Math.Max((long)BlockDepth * NC, (long)KC * NcFor(KC)) + (long)MR * NR) * sizeof(T) + 3 * 64);

        public override string ToString() => $"{Name} {MR}x{NR} KC={KC} MC={MC} NC={NC}";
    }

    /// <summary>Every float32 configuration this CPU can run, fastest first (the first is the one used).</summary>
    internal static readonly Config<float>[] SingleConfigs = CreateSingleConfigs();

    /// <summary>Every float64 configuration this CPU can run, fastest first (the first is the one used).</summary>
    internal static readonly Config<double>[] DoubleConfigs = CreateDoubleConfigs();

    private static Config<float>[] CreateSingleConfigs()
    {
        var list = new List<Config<float>>();
        // Zen 5 (48 KB L1D, 1 MB L2): A sliver 8 x 384 = 12 KB in L1, B block 384 x 256 = 384 KB in L2.
        if (Avx512F.IsSupported)
            list.Add(new Config<float>("avx512", 8, 32, 384, 1536, 256, &S512_8x32, &S512_8x32Fused));
        if (Avx2.IsSupported && Fma.IsSupported)
            list.Add(new Config<float>("avx2", 6, 16, 256, 1536, 480, &S256_6x16));
        list.Add(new Config<float>("scalar", 4, 4, 256, 512, 512, &ScalarKernel4x4<float>));
        return list.ToArray();
    }

    /// <summary>
    /// The float32 configuration of pointwise convolutions: the first one's kernels with K blocks of up to 1024 instead
    /// of 384 (A sliver 8 x 1024 = 32 KB in L1) and B blocks of proportionally fewer columns (1024 x 96), so C is
    /// reloaded and stored fewer times. Measured on 2 cores in one process alternating the two blockings: ResNet-50's
    /// batch-8 1x1 convolutions with K = 512-1024 4-12% faster, 1x2048x7x7 -> 512 12%, 1x1024x56x56 -> 1024 8%, K &lt;= 384
    /// unchanged; 3x3 convolutions on 7x7 and 14x14 maps (49 to 196 columns) 14-27% slower, so they keep the first.
    /// Null without AVX-512.
    /// </summary>
    internal static readonly Config<float>? DeepSingleConfig =
        Avx512F.IsSupported ? new Config<float>("avx512-deep", 8, 32, 1024, 1536, 256, &S512_8x32, &S512_8x32Fused, blockDepth: 384) : null;

    /// <summary>
    /// The float32 configuration of products whose rows are a convolution's output pixels and whose columns its output
    /// channels (<c>CpuBackend.PixelMajorForward</c>): 7 x 32 on AVX-512, else null.
    /// </summary>
    internal static readonly Config<float>? PixelMajorConfig =
        Avx512F.IsSupported ? new Config<float>("avx512-7x32", 7, 32, 384, 7 * 220, 256, &S512_7x32) : null;

    private static Config<double>[] CreateDoubleConfigs()
    {
        var list = new List<Config<double>>();
        // A sliver 8 x 384 = 24 KB in L1, B block 384 x 160 = 480 KB in L2.
        if (Avx512F.IsSupported)
            list.Add(new Config<double>("avx512", 8, 16, 384, 1024, 160, &D512_8x16, &D512_8x16Fused));
        if (Avx2.IsSupported && Fma.IsSupported)
            list.Add(new Config<double>("avx2", 6, 8, 256, 768, 240, &D256_6x8));
        list.Add(new Config<double>("scalar", 4, 4, 256, 256, 256, &ScalarKernel4x4<double>));
        return list.ToArray();
    }

    // ------------------------------------------------------------------------------------------------
    // Operands, output and epilogue
    // ------------------------------------------------------------------------------------------------

    /// <summary>Where the driver gets A from: the MR-row slivers of the block A(ic.., pc..), mc x kc.</summary>
    internal interface IPanelA<T> where T : unmanaged
    {
        /// <summary>
        /// The packed block (sliver s at result + s*mr*kc, element (p, r) at + p*mr + r, zero rows past mc), either
        /// packed into <paramref name="buffer"/> (room for MC x KC) or found already packed.
        /// </summary>
        T* Panel(T* buffer, int ic, int mc, int pc, int kc, int mr);
    }

    /// <summary>Where the driver gets B from: the NR-column slivers of the block B(pc.., jc..), kc x nc.</summary>
    internal interface IPanelB<T> where T : unmanaged
    {
        /// <summary>
        /// The packed block (sliver s at result + s*nr*kc, element (p, j) at + p*nr + j, zero columns past nc), either
        /// packed into <paramref name="buffer"/> (room for KC x NC) or found already packed.
        /// </summary>
        T* Block(T* buffer, int pc, int kc, int jc, int nc, int nr);
    }

    /// <summary>A(i, p) at a[i*rs + p*cs].</summary>
    internal readonly struct StridedA<T>(T* a, long rs, long cs) : IPanelA<T> where T : unmanaged, INumber<T>
    {
        public readonly T* A = a;
        public readonly long Rs = rs, Cs = cs;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public T* Panel(T* buffer, int ic, int mc, int pc, int kc, int mr)
        {
            PackA(buffer, A + ic * Rs + pc * Cs, mc, kc, Rs, Cs, mr);
            return buffer;
        }
    }

    /// <summary>B(p, j) at b[p*rs + j*cs].</summary>
    internal readonly struct StridedB<T>(T* b, long rs, long cs) : IPanelB<T> where T : unmanaged, INumber<T>
    {
        public readonly T* B = b;
        public readonly long Rs = rs, Cs = cs;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public T* Block(T* buffer, int pc, int kc, int jc, int nc, int nr)
        {
            PackB(buffer, B + pc * Rs + jc * Cs, kc, nc, Rs, Cs, nr);
            return buffer;
        }
    }

    /// <summary>
    /// A B packed beforehand (<see cref="PackWholeB{T, TB}"/>): for each K block starting at pc, the NR-column slivers of
    /// all columns at packed + pc*nPadded, so the block (pc, jc) is at + jc*kc.
    /// </summary>
    internal readonly struct PackedB<T>(T* packed, int nPadded) : IPanelB<T> where T : unmanaged
    {
        private readonly T* _packed = packed;
        private readonly long _nPadded = nPadded;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public T* Block(T* buffer, int pc, int kc, int jc, int nc, int nr) => _packed + pc * _nPadded + (long)jc * kc;
    }

    /// <summary>Elements <see cref="PackWholeB{T, TB}"/> writes for a k x n B: n rounded up to NR, times k.</summary>
    internal static long PackedLengthB<T>(Config<T> cfg, int k, int n) where T : unmanaged => (long)RoundUp(n, cfg.NR) * k;

    /// <summary>
    /// Packs the part of B in K block <paramref name="kBlock"/> and sliver range [s0, s1) in the layout
    /// <see cref="PackedB{T}"/> reads (callers split the (K block, slivers) pairs between threads); B must be a source
    /// that packs into the buffer it is given.
    /// </summary>
    internal static void PackWholeB<T, TB>(Config<T> cfg, in TB b, T* dst, int k, int n, int kBlock, int s0, int s1)
        where T : unmanaged where TB : struct, IPanelB<T>
    {
        int kcBlock = KBlock(cfg, k), nr = cfg.NR, nPadded = RoundUp(n, nr), pc = kBlock * kcBlock, kc = Math.Min(kcBlock, k - pc);
        int perCall = cfg.NC / nr;
        for (int s = s0; s < s1; s += perCall)
        {
            int jc = s * nr, nc = Math.Min(Math.Min(s1, s + perCall) * nr, n) - jc;
            if (nc > 0) b.Block(dst + (long)pc * nPadded + (long)jc * kc, pc, kc, jc, nc, nr);
        }
    }

    /// <summary>Whether a product of this shape on <paramref name="maxThreads"/> threads is split by rows (each thread packing all of B).</summary>
    internal static bool SplitsRows<T>(Config<T> cfg, int m, int n, int k, int maxThreads) where T : unmanaged =>
        ChooseThreads(cfg, m, n, k, maxThreads, out bool splitM) > 1 && splitM;

    /// <summary>
    /// An A packed once for a configuration (<see cref="PackWhole{T}"/>): for each K block (depth
    /// <see cref="KBlock{T}"/>) starting at pc, the MR-row slivers of all rows at packed + pc*mPadded.
    /// </summary>
    internal readonly struct PackedA<T>(T* packed, int mPadded) : IPanelA<T> where T : unmanaged
    {
        private readonly T* _packed = packed;
        private readonly long _mPadded = mPadded;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public T* Panel(T* buffer, int ic, int mc, int pc, int kc, int mr) => _packed + pc * _mPadded + (long)ic * kc;
    }

    /// <summary>Elements <see cref="PackWhole{T}"/> writes for an m x k A: m rounded up to MR, times k.</summary>
    internal static long PackedLength<T>(Config<T> cfg, int m, int k) where T : unmanaged => (long)RoundUp(m, cfg.MR) * k;

    /// <summary>Packs all of A (element (i, p) at a[i*rs + p*cs], m x k) in the layout <see cref="PackedA{T}"/> reads.</summary>
    internal static void PackWhole<T>(Config<T> cfg, T* dst, T* a, int m, int k, long rs, long cs) where T : unmanaged, INumber<T>
    {
        int mPadded = RoundUp(m, cfg.MR), kcBlock = KBlock(cfg, k);
        for (int pc = 0; pc < k; pc += kcBlock)
            PackA(dst + (long)pc * mPadded, a + pc * cs, m, Math.Min(kcBlock, k - pc), rs, cs, cfg.MR);
    }

    internal static int RoundUp(int value, int unit) => (value + unit - 1) / unit * unit;

    /// <summary>
    /// Where C(i, j) lives: columns come in runs of <see cref="ColsPerImage"/> (an image's output pixels), run r at
    /// c + r*imageStride, and within a run C(i, j) at + i*ldc + j. A plain matrix is a single run.
    /// </summary>
    internal readonly struct Output<T> where T : unmanaged
    {
        public readonly T* C;
        public readonly long Ldc, ColsPerImage, ImageStride;

        public Output(T* c, long ldc, long colsPerImage = long.MaxValue, long imageStride = 0)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(colsPerImage);
            C = c;
            (Ldc, ColsPerImage, ImageStride) = (ldc, colsPerImage, imageStride);
        }

        /// <summary>
        /// The address of C(i, j) and how many of the <paramref name="cols"/> columns from j on share its run (len);
        /// true when all of them do.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Tile(int i, int j, int cols, out T* dst, out int len)
        {
            if (ColsPerImage == long.MaxValue)
            {
                dst = C + i * Ldc + j;
                len = cols;
                return true;
            }
            long run = j / ColsPerImage, off = j - run * ColsPerImage;
            dst = C + run * ImageStride + i * Ldc + off;
            len = (int)Math.Min(cols, ColsPerImage - off);
            return len == cols;
        }
    }

    /// <summary>
    /// What happens to each finished tile of C: + bias[row] (a convolution's per output channel bias), + the residual
    /// (laid out like C: at residual + (address in C - C)), then ReLU (NaN stays NaN), in that order.
    /// </summary>
    internal readonly struct Epilogue<T>(T* bias, T* residual, bool relu) where T : unmanaged, INumber<T>
    {
        public readonly T* Bias = bias, Residual = residual;
        public readonly bool Relu = relu;

        public bool Any => Bias != null || Residual != null || Relu;

        /// <summary>The epilogue on rows x cols of C at dst (C's origin at c0, first row index row).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Apply(T* dst, long ldc, T* c0, int row, int rows, int cols)
        {
            T* res = Residual == null ? null : Residual + (dst - c0);
            for (int r = 0; r < rows; r++)
                ApplyRow(dst + r * ldc, res == null ? null : res + r * ldc, Bias == null ? T.Zero : Bias[row + r], cols);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void ApplyRow(T* d, T* res, T bias, int cols)
        {
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vb = Vector512.Create(bias);
                for (; j <= cols - Vector512<T>.Count; j += Vector512<T>.Count)
                {
                    var v = Vector512.Load(d + j) + vb;
                    if (res != null) v += Vector512.Load(res + j);
                    if (Relu) v = Vector512.Max(v, Vector512<T>.Zero);
                    v.Store(d + j);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vb = Vector256.Create(bias);
                for (; j <= cols - Vector256<T>.Count; j += Vector256<T>.Count)
                {
                    var v = Vector256.Load(d + j) + vb;
                    if (res != null) v += Vector256.Load(res + j);
                    if (Relu) v = Vector256.Max(v, Vector256<T>.Zero);
                    v.Store(d + j);
                }
            }
            for (; j < cols; j++)
            {
                T v = d[j] + bias;
                if (res != null) v += res[j];
                if (Relu && !(v > T.Zero || T.IsNaN(v))) v = T.Zero;
                d[j] = v;
            }
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Driver
    // ------------------------------------------------------------------------------------------------

    /// <summary>GEMM with an explicit configuration (the public entry points use the first supported one).</summary>
    internal static void Run<T>(Config<T> cfg, int m, int n, int k, T* a, long rsA, long csA, T* b, long rsB, long csB, T* c, long ldc, bool accumulate, int maxThreads)
        where T : unmanaged, INumber<T>
        => Run(cfg, m, n, k, new StridedA<T>(a, rsA, csA), new StridedB<T>(b, rsB, csB), new Output<T>(c, ldc), default, accumulate, maxThreads);

    /// <summary>
    /// The general product: A and B come from any <see cref="IPanelA{T}"/> and <see cref="IPanelB{T}"/> (strided
    /// matrices, a prepacked weight, a convolution's input read as its unfolded columns), C is written through
    /// <paramref name="c"/> (which may lay runs of columns out image by image) and each finished tile goes through the
    /// <paramref name="epilogue"/> while it is still in L1.
    /// </summary>
    internal static void Run<T, TA, TB>(Config<T> cfg, int m, int n, int k, in TA a, in TB b, in Output<T> c, in Epilogue<T> epilogue, bool accumulate, int maxThreads)
        where T : unmanaged, INumber<T>
        where TA : struct, IPanelA<T>
        where TB : struct, IPanelB<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (m == 0 || n == 0)
            return;
        if (k == 0)
        {
            if (!accumulate)
            {
                for (int i = 0; i < m; i++)
                    for (int j = 0, len; j < n; j += len)
                    {
                        c.Tile(i, j, n - j, out T* dst, out len);
                        new Span<T>(dst, len).Clear();
                    }
            }
            if (epilogue.Any)
                ApplyEpilogue(c, epilogue, 0, m, 0, n);
            return;
        }

        int threads = ChooseThreads(cfg, m, n, k, maxThreads, out bool splitM);
        if (threads <= 1)
        {
            RunBlock(cfg, 0, m, 0, n, k, a, b, c, epilogue, accumulate);
            return;
        }

        var job = new Job<T, TA, TB>(cfg, m, n, k, a, b, c, epilogue, accumulate, threads, splitM);
        job.Run();
    }

    private static int ChooseThreads<T>(Config<T> cfg, int m, int n, int k, int maxThreads, out bool splitM)
        where T : unmanaged
    {
        splitM = true;
        double work = (double)m * n * k;
        int threads = Math.Min(Math.Max(maxThreads, 1), Environment.ProcessorCount);
        if (threads <= 1 || work < MinParallelWork)
            return 1;
        // At least half of MinParallelWork per thread.
        threads = (int)Math.Min(threads, work / (MinParallelWork / 2));

        int mTiles = (m + cfg.MR - 1) / cfg.MR;
        int nTiles = (n + cfg.NR - 1) / cfg.NR;
        // Splitting M makes every thread pack all of B (k x n), splitting N all of A (m x k): duplicate the smaller
        // operand, provided the split dimension has enough tiles to balance the threads.
        bool mOk = mTiles >= 2 * threads, nOk = nTiles >= 2 * threads;
        splitM = mOk && nOk ? m >= n : mOk || (!nOk && mTiles >= nTiles);
        return Math.Max(1, Math.Min(threads, splitM ? mTiles : nTiles));
    }

    /// <summary>
    /// One multi-threaded product, cut into <c>parts</c> blocks of rows (or columns) of C; each block runs the whole
    /// loop nest. The blocks are parts of one <see cref="WorkerPool"/> job: the caller claims blocks too, so a worker
    /// that starts late only means the caller does more of them.
    /// </summary>
    private sealed class Job<T, TA, TB>(Config<T> cfg, int m, int n, int k, TA a, TB b, Output<T> c, Epilogue<T> epilogue, bool accumulate, int parts, bool splitM)
        where T : unmanaged, INumber<T>
        where TA : struct, IPanelA<T>
        where TB : struct, IPanelB<T>
    {
        public void Run() => WorkerPool.Run(parts, parts, RunPart);

        private void RunPart(int part)
        {
            int tile = splitM ? cfg.MR : cfg.NR;
            int extent = splitM ? m : n;
            int tiles = (extent + tile - 1) / tile;
            int s0 = (int)((long)tiles * part / parts) * tile;
            int s1 = Math.Min(extent, (int)((long)tiles * (part + 1) / parts) * tile);
            if (s1 <= s0)
                return;
            if (splitM)
                RunBlock(cfg, s0, s1, 0, n, k, a, b, c, epilogue, accumulate);
            else
                RunBlock(cfg, 0, m, s0, s1, k, a, b, c, epilogue, accumulate);
        }
    }

    [ThreadStatic] private static byte* t_scratch;
    [ThreadStatic] private static nuint t_scratchBytes;

    /// <summary>This thread's packing buffer (64-byte aligned), grown on demand and kept for later calls.</summary>
    private static byte* Scratch(nuint bytes)
    {
        if (t_scratchBytes < bytes)
        {
            if (t_scratch != null)
                NativeMemory.AlignedFree(t_scratch);
            t_scratch = null;
            t_scratchBytes = 0;
            t_scratch = (byte*)NativeMemory.AlignedAlloc(bytes, 64);
            t_scratchBytes = bytes;
        }
        return t_scratch;
    }

    private static T* AlignUp<T>(T* p) where T : unmanaged => (T*)(((nuint)p + 63) & ~(nuint)63);

    /// <summary>Splits <paramref name="total"/> into equal blocks of at most <paramref name="max"/>, rounded up to <paramref name="unit"/>.</summary>
    private static int BlockSize(int total, int max, int unit)
    {
        int blocks = (total + max - 1) / max;
        int size = (total + blocks - 1) / blocks;
        size = (size + unit - 1) / unit * unit;
        return Math.Min(size, max);
    }

    /// <summary>The depth of the K blocks a product of depth <paramref name="k"/> is cut into (what a prepacked A must use).</summary>
    internal static int KBlock<T>(Config<T> cfg, int k) where T : unmanaged => BlockSize(Math.Max(k, 1), cfg.KC, 1);

    /// <summary>Single-threaded product on the block [m0, m1) x [n0, n1) of C.</summary>
    private static void RunBlock<T, TA, TB>(Config<T> cfg, int m0, int m1, int n0, int n1, int k, in TA a, in TB b, in Output<T> c, in Epilogue<T> epilogue, bool accumulate)
        where T : unmanaged, INumber<T>
        where TA : struct, IPanelA<T>
        where TB : struct, IPanelB<T>
    {
        int m = m1 - m0, n = n1 - n0;
        // Vector-shaped products are memory bound: skip packing.
        if (typeof(TA) == typeof(StridedA<T>) && typeof(TB) == typeof(StridedB<T>) && !epilogue.Any && c.ColsPerImage >= n1)
        {
            var sa = Unsafe.As<TA, StridedA<T>>(ref Unsafe.AsRef(in a));
            var sb = Unsafe.As<TB, StridedB<T>>(ref Unsafe.AsRef(in b));
            if (VectorProduct(m, n, k, sa.A + m0 * sa.Rs, sa.Rs, sa.Cs, sb.B + n0 * sb.Cs, sb.Rs, sb.Cs, c.C + m0 * c.Ldc + n0, c.Ldc, accumulate))
                return;
        }

        int mr = cfg.MR, nr = cfg.NR;
        byte* scratch = Scratch(cfg.ScratchBytes);
        T* aPack = AlignUp((T*)scratch);
        int kcBlock = KBlock(cfg, k);
        int mcBlock = BlockSize(m, cfg.McFor(kcBlock), mr);
        int ncBlock = BlockSize(n, cfg.NcFor(kcBlock), nr);
        T* bPack = AlignUp(aPack + (long)mcBlock * kcBlock);
        T* tile = AlignUp(bPack + (long)kcBlock * ncBlock);
        var kernel = cfg.Kernel;
        var fusedKernel = cfg.FusedKernel;
        bool fused = epilogue.Any;
        long ldc = c.Ldc;

        for (int ic = m0; ic < m1; ic += mcBlock)
        {
            int mc = Math.Min(mcBlock, m1 - ic);
            for (int pc = 0; pc < k; pc += kcBlock)
            {
                int kc = Math.Min(kcBlock, k - pc);
                bool acc = accumulate || pc > 0;
                bool last = fused && pc + kc == k;
                T* ap0 = a.Panel(aPack, ic, mc, pc, kc, mr);
                for (int jc = n0; jc < n1; jc += ncBlock)
                {
                    int nc = Math.Min(ncBlock, n1 - jc);
                    T* bp0 = b.Block(bPack, pc, kc, jc, nc, nr);
                    for (int ir = 0; ir < mc; ir += mr)
                    {
                        int rows = Math.Min(mr, mc - ir);
                        int row = ic + ir;
                        T* ap = ap0 + (long)ir * kc;
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int cols = Math.Min(nr, nc - jr);
                            T* bp = bp0 + (long)jr * kc;
                            bool whole = c.Tile(row, jc + jr, cols, out T* dst, out int len);
                            if (rows == mr && cols == nr && whole)
                            {
                                if (!last)
                                    kernel(kc, ap, bp, dst, ldc, acc);
                                else if (fusedKernel != null)
                                    fusedKernel(kc, ap, bp, dst, ldc, acc, epilogue.Bias == null ? null : epilogue.Bias + row,
                                        epilogue.Residual == null ? null : epilogue.Residual + (dst - c.C), epilogue.Relu);
                                else
                                {
                                    kernel(kc, ap, bp, dst, ldc, acc);
                                    epilogue.Apply(dst, ldc, c.C, row, rows, cols);
                                }
                                continue;
                            }
                            kernel(kc, ap, bp, tile, nr, false);
                            // Edge tiles, and tiles whose columns run into the next image, are merged piece by piece.
                            for (int j = 0; ; )
                            {
                                MergePiece(tile, nr, j, len, dst, ldc, rows, acc, last, epilogue, c.C, row);
                                j += len;
                                if (j >= cols)
                                    break;
                                c.Tile(row, jc + jr + j, cols - j, out dst, out len);
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Applies the epilogue to rows [m0, m1) x columns [n0, n1) of C (products with k = 0).</summary>
    private static void ApplyEpilogue<T>(in Output<T> c, in Epilogue<T> epilogue, int m0, int m1, int n0, int n1)
        where T : unmanaged, INumber<T>
    {
        for (int j = n0; j < n1;)
        {
            c.Tile(m0, j, n1 - j, out T* dst, out int len);
            epilogue.Apply(dst, c.Ldc, c.C, m0, m1 - m0, len);
            j += len;
        }
    }

    /// <summary>
    /// Row-vector (m == 1) and column-vector (n == 1) products, unpacked; false when the product is not one of those
    /// (or its operands are not laid out for them).
    /// </summary>
    private static bool VectorProduct<T>(int m, int n, int k, T* a, long rsA, long csA, T* b, long rsB, long csB, T* c, long ldc, bool accumulate)
        where T : unmanaged, INumber<T>
    {
        if (m == 1 && csB == 1)
        {
            RowTimesMatrix(n, k, a, csA, b, rsB, c, accumulate);
            return true;
        }
        if (m == 1 && csA == 1 && rsB == 1)
        {
            Dots(n, k, b, csB, a, c, 1, accumulate);
            return true;
        }
        if (n == 1 && csA == 1 && rsB == 1)
        {
            Dots(m, k, a, rsA, b, c, ldc, accumulate);
            return true;
        }
        return false;
    }

    /// <summary>
    /// Columns [j0, j0+len) of a rows x ldt tile merged into C at dst (= or += by <paramref name="acc"/>), then the
    /// epilogue when <paramref name="last"/>. AVX-512 does it with masked loads and stores of whole tile vectors
    /// (tiles split at image boundaries are common in late stages); other CPUs element by element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MergePiece<T>(T* tile, int ldt, int j0, int len, T* dst, long ldc, int rows, bool acc, bool last, in Epilogue<T> e, T* c0, int row)
        where T : unmanaged, INumber<T>
    {
        int lanes = Vector512<T>.Count;
        if (Avx512F.IsSupported && (typeof(T) == typeof(float) || typeof(T) == typeof(double)) && ldt % lanes == 0)
        {
            T* res = last && e.Residual != null ? e.Residual + (dst - c0) : null;
            bool bias = last && e.Bias != null, relu = last && e.Relu;
            for (int cb = j0 / lanes * lanes; cb < j0 + len; cb += lanes)
            {
                T lo = T.CreateTruncating(Math.Max(j0, cb) - cb), hi = T.CreateTruncating(Math.Min(j0 + len, cb + lanes) - cb);
                var mask = Vector512.GreaterThanOrEqual(Vector512<T>.Indices, Vector512.Create(lo)) & Vector512.LessThan(Vector512<T>.Indices, Vector512.Create(hi));
                long shift = cb - j0; // lane l of the vector is column cb + l of the tile, at dst + shift + l
                for (int r = 0; r < rows; r++)
                {
                    var v = Vector512.Load(tile + r * ldt + cb);
                    T* d = dst + r * ldc + shift;
                    if (acc) v += MaskLoad(d, mask);
                    if (bias) v += Vector512.Create(e.Bias[row + r]);
                    if (res != null) v += MaskLoad(res + r * ldc + shift, mask);
                    if (relu) v = Vector512.Max(v, Vector512<T>.Zero);
                    MaskStore(d, mask, v);
                }
            }
            return;
        }
        MergeTile(tile + j0, ldt, dst, ldc, rows, len, acc);
        if (last)
            e.Apply(dst, ldc, c0, row, rows, len);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> MaskLoad<T>(T* p, Vector512<T> mask) where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            return Avx512F.MaskLoad((float*)p, mask.AsSingle(), Vector512<float>.Zero).As<float, T>();
        return Avx512F.MaskLoad((double*)p, mask.AsDouble(), Vector512<double>.Zero).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MaskStore<T>(T* p, Vector512<T> mask, Vector512<T> v) where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            Avx512F.MaskStore((float*)p, mask.AsSingle(), v.AsSingle());
        else
            Avx512F.MaskStore((double*)p, mask.AsDouble(), v.AsDouble());
    }

    private static void MergeTile<T>(T* tile, int ldt, T* c, long ldc, int rows, int cols, bool acc)
        where T : unmanaged, INumber<T>
    {
        for (int r = 0; r < rows; r++)
        {
            T* t = tile + r * ldt;
            T* d = c + r * ldc;
            if (acc)
            {
                for (int j = 0; j < cols; j++)
                    d[j] += t[j];
            }
            else
            {
                for (int j = 0; j < cols; j++)
                    d[j] = t[j];
            }
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Vector-shaped products (m == 1 or n == 1)
    // ------------------------------------------------------------------------------------------------

    /// <summary>c[0..n) (+)= sum_p a[p*csA] * b[p*rsB + j] (a row vector times a matrix with contiguous rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowTimesMatrix<T>(int n, int k, T* a, long csA, T* b, long rsB, T* c, bool accumulate)
        where T : unmanaged, INumber<T>
    {
        if (!accumulate)
            new Span<T>(c, n).Clear();
        const int Chunk = 2048; // columns of C kept in L1 while the rows of B stream past
        for (int j0 = 0; j0 < n; j0 += Chunk)
        {
            int len = Math.Min(Chunk, n - j0);
            T* cj = c + j0;
            int p = 0;
            for (; p + 4 <= k; p += 4)
            {
                T* b0 = b + p * rsB + j0;
                Axpy4(cj, len, a[p * csA], b0, a[(p + 1) * csA], b0 + rsB, a[(p + 2) * csA], b0 + 2 * rsB, a[(p + 3) * csA], b0 + 3 * rsB);
            }
            for (; p < k; p++)
            {
                T s = a[p * csA];
                T* bp = b + p * rsB + j0;
                int j = 0;
                if (Vector.IsHardwareAccelerated)
                {
                    var vs = new Vector<T>(s);
                    for (; j <= len - Vector<T>.Count; j += Vector<T>.Count)
                        Unsafe.WriteUnaligned(cj + j, Unsafe.ReadUnaligned<Vector<T>>(cj + j) + vs * Unsafe.ReadUnaligned<Vector<T>>(bp + j));
                }
                for (; j < len; j++)
                    cj[j] += s * bp[j];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy4<T>(T* c, int len, T s0, T* b0, T s1, T* b1, T s2, T* b2, T s3, T* b3)
        where T : unmanaged, INumber<T>
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<T> v0 = new(s0), v1 = new(s1), v2 = new(s2), v3 = new(s3);
            for (; j <= len - Vector<T>.Count; j += Vector<T>.Count)
            {
                Vector<T> acc = Unsafe.ReadUnaligned<Vector<T>>(c + j);
                acc += v0 * Unsafe.ReadUnaligned<Vector<T>>(b0 + j);
                acc += v1 * Unsafe.ReadUnaligned<Vector<T>>(b1 + j);
                acc += v2 * Unsafe.ReadUnaligned<Vector<T>>(b2 + j);
                acc += v3 * Unsafe.ReadUnaligned<Vector<T>>(b3 + j);
                Unsafe.WriteUnaligned(c + j, acc);
            }
        }
        for (; j < len; j++)
            c[j] += s0 * b0[j] + s1 * b1[j] + s2 * b2[j] + s3 * b3[j];
    }

    /// <summary>out[i*outStride] (+)= dot(x + i*xStride, y) over k contiguous elements, for i in [0, count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dots<T>(int count, int k, T* x, long xStride, T* y, T* output, long outStride, bool accumulate)
        where T : unmanaged, INumber<T>
    {
        for (int i = 0; i < count; i++)
        {
            T* xi = x + i * xStride;
            T sum = T.Zero;
            int p = 0;
            if (Vector.IsHardwareAccelerated)
            {
                Vector<T> s0 = Vector<T>.Zero, s1 = Vector<T>.Zero, s2 = Vector<T>.Zero, s3 = Vector<T>.Zero;
                int w = Vector<T>.Count;
                for (; p <= k - 4 * w; p += 4 * w)
                {
                    s0 += Unsafe.ReadUnaligned<Vector<T>>(xi + p) * Unsafe.ReadUnaligned<Vector<T>>(y + p);
                    s1 += Unsafe.ReadUnaligned<Vector<T>>(xi + p + w) * Unsafe.ReadUnaligned<Vector<T>>(y + p + w);
                    s2 += Unsafe.ReadUnaligned<Vector<T>>(xi + p + 2 * w) * Unsafe.ReadUnaligned<Vector<T>>(y + p + 2 * w);
                    s3 += Unsafe.ReadUnaligned<Vector<T>>(xi + p + 3 * w) * Unsafe.ReadUnaligned<Vector<T>>(y + p + 3 * w);
                }
                for (; p <= k - w; p += w)
                    s0 += Unsafe.ReadUnaligned<Vector<T>>(xi + p) * Unsafe.ReadUnaligned<Vector<T>>(y + p);
                sum = Vector.Sum((s0 + s1) + (s2 + s3));
            }
            for (; p < k; p++)
                sum += xi[p] * y[p];
            T* o = output + i * outStride;
            *o = accumulate ? *o + sum : sum;
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Packing
    // ------------------------------------------------------------------------------------------------

    /// <summary>
    /// Packs the mc x kc block of A (element (i,p) at src[i*rs + p*cs]) into slivers of <paramref name="mr"/> rows:
    /// sliver s holds dst[s*mr*kc + p*mr + r] = A(s*mr + r, p), zero-padded past mc.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA<T>(T* dst, T* src, int mc, int kc, long rs, long cs, int mr)
        where T : unmanaged, INumber<T>
    {
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            T* d = dst + (long)ir * kc;
            T* s = src + ir * rs;
            if (cs == 1)
            {
                // Row-major A: each row is contiguous along p; transpose it into the sliver.
                PackLines(d, mr, s, rs, rows, kc);
            }
            else if (rs == 1)
            {
                // Column-major A (A^T given): the sliver's rows are contiguous for each p.
                for (int p = 0; p < kc; p++)
                    CopyRow(d + (long)p * mr, s + p * cs, rows);
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    T* sp = s + p * cs;
                    T* dp = d + (long)p * mr;
                    for (int r = 0; r < rows; r++)
                        dp[r] = sp[r * rs];
                }
            }
            if (rows < mr)
            {
                for (int p = 0; p < kc; p++)
                {
                    T* dp = d + (long)p * mr;
                    for (int r = rows; r < mr; r++)
                        dp[r] = T.Zero;
                }
            }
        }
    }

    /// <summary>
    /// Packs the kc x nc block of B (element (p,j) at src[p*rs + j*cs]) into slivers of <paramref name="nr"/> columns:
    /// sliver s holds dst[s*nr*kc + p*nr + j] = B(p, s*nr + j), zero-padded past nc.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB<T>(T* dst, T* src, int kc, int nc, long rs, long cs, int nr)
        where T : unmanaged, INumber<T>
    {
        int jr = 0;
        if (cs == 1)
        {
            // Row-major B: walk each source row once across all full slivers (sequential reads). The rows are
            // short (nc elements) and far apart, so the row a few steps ahead is prefetched explicitly.
            const int Ahead = 4;
            int full = nc / nr;
            long sliver = (long)nr * kc;
            long rowBytes = (long)full * nr * sizeof(T);
            for (int p = 0; p < kc; p++)
            {
                T* sp = src + p * rs;
                T* dp = dst + (long)p * nr;
                if (Sse.IsSupported && p + Ahead < kc)
                {
                    byte* ahead = (byte*)(sp + Ahead * rs);
                    for (long o = 0; o < rowBytes; o += 64)
                        Sse.Prefetch0(ahead + o);
                }
                for (int q = 0; q < full; q++)
                    CopyRow(dp + q * sliver, sp + q * nr, nr);
            }
            jr = full * nr;
        }
        for (; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr);
            T* d = dst + (long)jr * kc;
            T* s = src + jr * cs;
            if (rs == 1)
            {
                // Column-major B (B^T given): each column is contiguous along p; transpose it into the sliver.
                PackLines(d, nr, s, cs, cols, kc);
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    T* sp = s + p * rs;
                    T* dp = d + (long)p * nr;
                    for (int j = 0; j < cols; j++)
                        dp[j] = sp[j * cs];
                }
            }
            if (cols < nr)
            {
                for (int p = 0; p < kc; p++)
                {
                    T* dp = d + (long)p * nr;
                    for (int j = cols; j < nr; j++)
                        dp[j] = T.Zero;
                }
            }
        }
    }

    /// <summary>
    /// Transposing copy: <paramref name="lines"/> source lines, line l contiguous at src + l*stride,
    /// are written to dst[p*ld + l] for p in [0, kc). Vectorised in groups of 4 lines.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackLines<T>(T* dst, int ld, T* src, long stride, int lines, int kc)
        where T : unmanaged
    {
        int l = 0;
        if (Avx.IsSupported)
        {
            if (typeof(T) == typeof(float))
            {
                for (; l + 4 <= lines; l += 4)
                    Transpose4xN((float*)dst + l, ld, (float*)src + l * stride, stride, kc);
            }
            else if (typeof(T) == typeof(double))
            {
                for (; l + 4 <= lines; l += 4)
                    Transpose4xN((double*)dst + l, ld, (double*)src + l * stride, stride, kc);
            }
        }
        for (; l < lines; l++)
        {
            T* sl = src + l * stride;
            T* dl = dst + l;
            for (int p = 0; p < kc; p++)
                dl[(long)p * ld] = sl[p];
        }
    }

    /// <summary>dst[p*ld + r] = src[r*stride + p] for r in [0,4), p in [0,kc); 8 columns per step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose4xN(float* dst, int ld, float* src, long stride, int kc)
    {
        float* s0 = src, s1 = src + stride, s2 = src + 2 * stride, s3 = src + 3 * stride;
        int p = 0;
        for (; p + 8 <= kc; p += 8)
        {
            Vector256<float> r0 = Avx.LoadVector256(s0 + p), r1 = Avx.LoadVector256(s1 + p);
            Vector256<float> r2 = Avx.LoadVector256(s2 + p), r3 = Avx.LoadVector256(s3 + p);
            Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);   // a0 b0 a1 b1 | a4 b4 a5 b5 ; a2 b2 a3 b3 | ...
            Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);   // c0 d0 c1 d1 | c4 d4 c5 d5 ; ...
            Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE); // a0 b0 c0 d0 | a4 ..; a1 b1 c1 d1 | a5 ..
            Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE); // a2 b2 c2 d2 | a6 ..; a3 b3 c3 d3 | a7 ..
            float* d = dst + (long)p * ld;
            u0.GetLower().Store(d);
            u1.GetLower().Store(d + ld);
            u2.GetLower().Store(d + 2 * ld);
            u3.GetLower().Store(d + 3 * ld);
            u0.GetUpper().Store(d + 4 * ld);
            u1.GetUpper().Store(d + 5 * ld);
            u2.GetUpper().Store(d + 6 * ld);
            u3.GetUpper().Store(d + 7 * ld);
        }
        for (; p < kc; p++)
        {
            float* d = dst + (long)p * ld;
            d[0] = s0[p];
            d[1] = s1[p];
            d[2] = s2[p];
            d[3] = s3[p];
        }
    }

    /// <summary>dst[p*ld + r] = src[r*stride + p] for r in [0,4), p in [0,kc); 4 columns per step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose4xN(double* dst, int ld, double* src, long stride, int kc)
    {
        double* s0 = src, s1 = src + stride, s2 = src + 2 * stride, s3 = src + 3 * stride;
        int p = 0;
        for (; p + 4 <= kc; p += 4)
        {
            Vector256<double> r0 = Avx.LoadVector256(s0 + p), r1 = Avx.LoadVector256(s1 + p);
            Vector256<double> r2 = Avx.LoadVector256(s2 + p), r3 = Avx.LoadVector256(s3 + p);
            Vector256<double> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);   // a0 b0 | a2 b2 ; a1 b1 | a3 b3
            Vector256<double> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);   // c0 d0 | c2 d2 ; c1 d1 | c3 d3
            double* d = dst + (long)p * ld;
            Avx.Permute2x128(t0, t2, 0x20).Store(d);            // a0 b0 c0 d0
            Avx.Permute2x128(t1, t3, 0x20).Store(d + ld);       // a1 b1 c1 d1
            Avx.Permute2x128(t0, t2, 0x31).Store(d + 2 * ld);   // a2 b2 c2 d2
            Avx.Permute2x128(t1, t3, 0x31).Store(d + 3 * ld);   // a3 b3 c3 d3
        }
        for (; p < kc; p++)
        {
            double* d = dst + (long)p * ld;
            d[0] = s0[p];
            d[1] = s1[p];
            d[2] = s2[p];
            d[3] = s3[p];
        }
    }

    /// <summary>d[0..count) = s[0..count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CopyRow<T>(T* d, T* s, int count) where T : unmanaged
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= count - Vector512<T>.Count; i += Vector512<T>.Count)
                Vector512.Load(s + i).Store(d + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= count - Vector256<T>.Count; i += Vector256<T>.Count)
                Vector256.Load(s + i).Store(d + i);
        }
        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= count - Vector128<T>.Count; i += Vector128<T>.Count)
                Vector128.Load(s + i).Store(d + i);
        }
        for (; i < count; i++)
            d[i] = s[i];
    }

    // ------------------------------------------------------------------------------------------------
    // Micro-kernels. Each computes an MR x NR tile over kc steps from packed slivers: per step it loads NR
    // values of B as vectors, broadcasts each of the MR values of A and issues MR * NR / lanes FMAs into
    // accumulators that stay in registers (AVX-512 8 x 32 float: 16 zmm accumulators + 2 B + 1 broadcast).
    // ------------------------------------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScalarKernel4x4<T>(long kc, T* a, T* b, T* c, long ldc, bool acc)
        where T : unmanaged, INumber<T>
    {
        T c00 = T.Zero, c01 = T.Zero, c02 = T.Zero, c03 = T.Zero;
        T c10 = T.Zero, c11 = T.Zero, c12 = T.Zero, c13 = T.Zero;
        T c20 = T.Zero, c21 = T.Zero, c22 = T.Zero, c23 = T.Zero;
        T c30 = T.Zero, c31 = T.Zero, c32 = T.Zero, c33 = T.Zero;
        for (long p = kc; p > 0; p--)
        {
            T b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
            T a0 = a[0];
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            T a1 = a[1];
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            T a2 = a[2];
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            T a3 = a[3];
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            a += 4;
            b += 4;
        }
        T* r0 = c, r1 = c + ldc, r2 = c + 2 * ldc, r3 = c + 3 * ldc;
        if (acc)
        {
            r0[0] += c00; r0[1] += c01; r0[2] += c02; r0[3] += c03;
            r1[0] += c10; r1[1] += c11; r1[2] += c12; r1[3] += c13;
            r2[0] += c20; r2[1] += c21; r2[2] += c22; r2[3] += c23;
            r3[0] += c30; r3[1] += c31; r3[2] += c32; r3[3] += c33;
        }
        else
        {
            r0[0] = c00; r0[1] = c01; r0[2] = c02; r0[3] = c03;
            r1[0] = c10; r1[1] = c11; r1[2] = c12; r1[3] = c13;
            r2[0] = c20; r2[1] = c21; r2[2] = c22; r2[3] = c23;
            r3[0] = c30; r3[1] = c31; r3[2] = c32; r3[3] = c33;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void S512_8x32(long kc, float* a, float* b, float* c, long ldc, bool acc) => S512_8x32Body(kc, a, b, c, ldc, acc, null, null, false);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void S512_8x32Fused(long kc, float* a, float* b, float* c, long ldc, bool acc, float* bias, float* residual, bool relu) =>
        S512_8x32Body(kc, a, b, c, ldc, acc, bias, residual, relu);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void S512_8x32Body(long kc, float* a, float* b, float* c, long ldc, bool acc, float* bias, float* residual, bool relu)
    {
        Vector512<float> c0_0 = default, c0_1 = default;
        Vector512<float> c1_0 = default, c1_1 = default;
        Vector512<float> c2_0 = default, c2_1 = default;
        Vector512<float> c3_0 = default, c3_1 = default;
        Vector512<float> c4_0 = default, c4_1 = default;
        Vector512<float> c5_0 = default, c5_1 = default;
        Vector512<float> c6_0 = default, c6_1 = default;
        Vector512<float> c7_0 = default, c7_1 = default;
        for (long p = kc; p > 0; p--)
        {
            Vector512<float> b0 = Vector512.Load(b + 0); Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, b1, c6_1);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, b1, c7_1);
            a += 8;
            b += 32;
        }
        if (acc)
        {
            c0_0 += Vector512.Load(c + 0 * ldc + 0); c0_1 += Vector512.Load(c + 0 * ldc + 16);
            c1_0 += Vector512.Load(c + 1 * ldc + 0); c1_1 += Vector512.Load(c + 1 * ldc + 16);
            c2_0 += Vector512.Load(c + 2 * ldc + 0); c2_1 += Vector512.Load(c + 2 * ldc + 16);
            c3_0 += Vector512.Load(c + 3 * ldc + 0); c3_1 += Vector512.Load(c + 3 * ldc + 16);
            c4_0 += Vector512.Load(c + 4 * ldc + 0); c4_1 += Vector512.Load(c + 4 * ldc + 16);
            c5_0 += Vector512.Load(c + 5 * ldc + 0); c5_1 += Vector512.Load(c + 5 * ldc + 16);
            c6_0 += Vector512.Load(c + 6 * ldc + 0); c6_1 += Vector512.Load(c + 6 * ldc + 16);
            c7_0 += Vector512.Load(c + 7 * ldc + 0); c7_1 += Vector512.Load(c + 7 * ldc + 16);
        }
        if (bias != null)
        {
            Vector512<float> v;
            v = Vector512.Create(bias[0]); c0_0 += v; c0_1 += v;
            v = Vector512.Create(bias[1]); c1_0 += v; c1_1 += v;
            v = Vector512.Create(bias[2]); c2_0 += v; c2_1 += v;
            v = Vector512.Create(bias[3]); c3_0 += v; c3_1 += v;
            v = Vector512.Create(bias[4]); c4_0 += v; c4_1 += v;
            v = Vector512.Create(bias[5]); c5_0 += v; c5_1 += v;
            v = Vector512.Create(bias[6]); c6_0 += v; c6_1 += v;
            v = Vector512.Create(bias[7]); c7_0 += v; c7_1 += v;
        }
        if (residual != null)
        {
            float* r = residual;
            c0_0 += Vector512.Load(r + 0 * ldc + 0); c0_1 += Vector512.Load(r + 0 * ldc + 16);
            c1_0 += Vector512.Load(r + 1 * ldc + 0); c1_1 += Vector512.Load(r + 1 * ldc + 16);
            c2_0 += Vector512.Load(r + 2 * ldc + 0); c2_1 += Vector512.Load(r + 2 * ldc + 16);
            c3_0 += Vector512.Load(r + 3 * ldc + 0); c3_1 += Vector512.Load(r + 3 * ldc + 16);
            c4_0 += Vector512.Load(r + 4 * ldc + 0); c4_1 += Vector512.Load(r + 4 * ldc + 16);
            c5_0 += Vector512.Load(r + 5 * ldc + 0); c5_1 += Vector512.Load(r + 5 * ldc + 16);
            c6_0 += Vector512.Load(r + 6 * ldc + 0); c6_1 += Vector512.Load(r + 6 * ldc + 16);
            c7_0 += Vector512.Load(r + 7 * ldc + 0); c7_1 += Vector512.Load(r + 7 * ldc + 16);
        }
        if (relu)
        {
            var z = Vector512<float>.Zero;
            c0_0 = Vector512.Max(c0_0, z); c0_1 = Vector512.Max(c0_1, z);
            c1_0 = Vector512.Max(c1_0, z); c1_1 = Vector512.Max(c1_1, z);
            c2_0 = Vector512.Max(c2_0, z); c2_1 = Vector512.Max(c2_1, z);
            c3_0 = Vector512.Max(c3_0, z); c3_1 = Vector512.Max(c3_1, z);
            c4_0 = Vector512.Max(c4_0, z); c4_1 = Vector512.Max(c4_1, z);
            c5_0 = Vector512.Max(c5_0, z); c5_1 = Vector512.Max(c5_1, z);
            c6_0 = Vector512.Max(c6_0, z); c6_1 = Vector512.Max(c6_1, z);
            c7_0 = Vector512.Max(c7_0, z); c7_1 = Vector512.Max(c7_1, z);
        }
        c0_0.Store(c + 0 * ldc + 0); c0_1.Store(c + 0 * ldc + 16);
        c1_0.Store(c + 1 * ldc + 0); c1_1.Store(c + 1 * ldc + 16);
        c2_0.Store(c + 2 * ldc + 0); c2_1.Store(c + 2 * ldc + 16);
        c3_0.Store(c + 3 * ldc + 0); c3_1.Store(c + 3 * ldc + 16);
        c4_0.Store(c + 4 * ldc + 0); c4_1.Store(c + 4 * ldc + 16);
        c5_0.Store(c + 5 * ldc + 0); c5_1.Store(c + 5 * ldc + 16);
        c6_0.Store(c + 6 * ldc + 0); c6_1.Store(c + 6 * ldc + 16);
        c7_0.Store(c + 7 * ldc + 0); c7_1.Store(c + 7 * ldc + 16);
    }

    /// <summary>
    /// The 7 x 32 float kernel of <see cref="PixelMajorConfig"/> (14 accumulators): seven rows, so that the output
    /// pixels of a convolution whose planes are multiples of 7 (every ResNet plane: 7, 14, 28, 56, 112) fill whole
    /// slivers. No fused epilogue: its callers apply it while transposing the result.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void S512_7x32(long kc, float* a, float* b, float* c, long ldc, bool acc)
    {
        Vector512<float> c0_0 = default, c0_1 = default;
        Vector512<float> c1_0 = default, c1_1 = default;
        Vector512<float> c2_0 = default, c2_1 = default;
        Vector512<float> c3_0 = default, c3_1 = default;
        Vector512<float> c4_0 = default, c4_1 = default;
        Vector512<float> c5_0 = default, c5_1 = default;
        Vector512<float> c6_0 = default, c6_1 = default;
        for (long p = kc; p > 0; p--)
        {
            Vector512<float> b0 = Vector512.Load(b + 0); Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, b1, c6_1);
            a += 7;
            b += 32;
        }
        if (acc)
        {
            c0_0 += Vector512.Load(c + 0 * ldc + 0); c0_1 += Vector512.Load(c + 0 * ldc + 16);
            c1_0 += Vector512.Load(c + 1 * ldc + 0); c1_1 += Vector512.Load(c + 1 * ldc + 16);
            c2_0 += Vector512.Load(c + 2 * ldc + 0); c2_1 += Vector512.Load(c + 2 * ldc + 16);
            c3_0 += Vector512.Load(c + 3 * ldc + 0); c3_1 += Vector512.Load(c + 3 * ldc + 16);
            c4_0 += Vector512.Load(c + 4 * ldc + 0); c4_1 += Vector512.Load(c + 4 * ldc + 16);
            c5_0 += Vector512.Load(c + 5 * ldc + 0); c5_1 += Vector512.Load(c + 5 * ldc + 16);
            c6_0 += Vector512.Load(c + 6 * ldc + 0); c6_1 += Vector512.Load(c + 6 * ldc + 16);
        }
        c0_0.Store(c + 0 * ldc + 0); c0_1.Store(c + 0 * ldc + 16);
        c1_0.Store(c + 1 * ldc + 0); c1_1.Store(c + 1 * ldc + 16);
        c2_0.Store(c + 2 * ldc + 0); c2_1.Store(c + 2 * ldc + 16);
        c3_0.Store(c + 3 * ldc + 0); c3_1.Store(c + 3 * ldc + 16);
        c4_0.Store(c + 4 * ldc + 0); c4_1.Store(c + 4 * ldc + 16);
        c5_0.Store(c + 5 * ldc + 0); c5_1.Store(c + 5 * ldc + 16);
        c6_0.Store(c + 6 * ldc + 0); c6_1.Store(c + 6 * ldc + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void D512_8x16(long kc, double* a, double* b, double* c, long ldc, bool acc) => D512_8x16Body(kc, a, b, c, ldc, acc, null, null, false);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void D512_8x16Fused(long kc, double* a, double* b, double* c, long ldc, bool acc, double* bias, double* residual, bool relu) =>
        D512_8x16Body(kc, a, b, c, ldc, acc, bias, residual, relu);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void D512_8x16Body(long kc, double* a, double* b, double* c, long ldc, bool acc, double* bias, double* residual, bool relu)
    {
        Vector512<double> c0_0 = default, c0_1 = default;
        Vector512<double> c1_0 = default, c1_1 = default;
        Vector512<double> c2_0 = default, c2_1 = default;
        Vector512<double> c3_0 = default, c3_1 = default;
        Vector512<double> c4_0 = default, c4_1 = default;
        Vector512<double> c5_0 = default, c5_1 = default;
        Vector512<double> c6_0 = default, c6_1 = default;
        Vector512<double> c7_0 = default, c7_1 = default;
        for (long p = kc; p > 0; p--)
        {
            Vector512<double> b0 = Vector512.Load(b + 0); Vector512<double> b1 = Vector512.Load(b + 8);
            Vector512<double> a0 = Vector512.Create(a[0]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            Vector512<double> a1 = Vector512.Create(a[1]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            Vector512<double> a2 = Vector512.Create(a[2]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            Vector512<double> a3 = Vector512.Create(a[3]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            Vector512<double> a4 = Vector512.Create(a[4]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            Vector512<double> a5 = Vector512.Create(a[5]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            Vector512<double> a6 = Vector512.Create(a[6]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, b1, c6_1);
            Vector512<double> a7 = Vector512.Create(a[7]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, b1, c7_1);
            a += 8;
            b += 16;
        }
        if (acc)
        {
            c0_0 += Vector512.Load(c + 0 * ldc + 0); c0_1 += Vector512.Load(c + 0 * ldc + 8);
            c1_0 += Vector512.Load(c + 1 * ldc + 0); c1_1 += Vector512.Load(c + 1 * ldc + 8);
            c2_0 += Vector512.Load(c + 2 * ldc + 0); c2_1 += Vector512.Load(c + 2 * ldc + 8);
            c3_0 += Vector512.Load(c + 3 * ldc + 0); c3_1 += Vector512.Load(c + 3 * ldc + 8);
            c4_0 += Vector512.Load(c + 4 * ldc + 0); c4_1 += Vector512.Load(c + 4 * ldc + 8);
            c5_0 += Vector512.Load(c + 5 * ldc + 0); c5_1 += Vector512.Load(c + 5 * ldc + 8);
            c6_0 += Vector512.Load(c + 6 * ldc + 0); c6_1 += Vector512.Load(c + 6 * ldc + 8);
            c7_0 += Vector512.Load(c + 7 * ldc + 0); c7_1 += Vector512.Load(c + 7 * ldc + 8);
        }
        if (bias != null)
        {
            Vector512<double> v;
            v = Vector512.Create(bias[0]); c0_0 += v; c0_1 += v;
            v = Vector512.Create(bias[1]); c1_0 += v; c1_1 += v;
            v = Vector512.Create(bias[2]); c2_0 += v; c2_1 += v;
            v = Vector512.Create(bias[3]); c3_0 += v; c3_1 += v;
            v = Vector512.Create(bias[4]); c4_0 += v; c4_1 += v;
            v = Vector512.Create(bias[5]); c5_0 += v; c5_1 += v;
            v = Vector512.Create(bias[6]); c6_0 += v; c6_1 += v;
            v = Vector512.Create(bias[7]); c7_0 += v; c7_1 += v;
        }
        if (residual != null)
        {
            double* r = residual;
            c0_0 += Vector512.Load(r + 0 * ldc + 0); c0_1 += Vector512.Load(r + 0 * ldc + 8);
            c1_0 += Vector512.Load(r + 1 * ldc + 0); c1_1 += Vector512.Load(r + 1 * ldc + 8);
            c2_0 += Vector512.Load(r + 2 * ldc + 0); c2_1 += Vector512.Load(r + 2 * ldc + 8);
            c3_0 += Vector512.Load(r + 3 * ldc + 0); c3_1 += Vector512.Load(r + 3 * ldc + 8);
            c4_0 += Vector512.Load(r + 4 * ldc + 0); c4_1 += Vector512.Load(r + 4 * ldc + 8);
            c5_0 += Vector512.Load(r + 5 * ldc + 0); c5_1 += Vector512.Load(r + 5 * ldc + 8);
            c6_0 += Vector512.Load(r + 6 * ldc + 0); c6_1 += Vector512.Load(r + 6 * ldc + 8);
            c7_0 += Vector512.Load(r + 7 * ldc + 0); c7_1 += Vector512.Load(r + 7 * ldc + 8);
        }
        if (relu)
        {
            var z = Vector512<double>.Zero;
            c0_0 = Vector512.Max(c0_0, z); c0_1 = Vector512.Max(c0_1, z);
            c1_0 = Vector512.Max(c1_0, z); c1_1 = Vector512.Max(c1_1, z);
            c2_0 = Vector512.Max(c2_0, z); c2_1 = Vector512.Max(c2_1, z);
            c3_0 = Vector512.Max(c3_0, z); c3_1 = Vector512.Max(c3_1, z);
            c4_0 = Vector512.Max(c4_0, z); c4_1 = Vector512.Max(c4_1, z);
            c5_0 = Vector512.Max(c5_0, z); c5_1 = Vector512.Max(c5_1, z);
            c6_0 = Vector512.Max(c6_0, z); c6_1 = Vector512.Max(c6_1, z);
            c7_0 = Vector512.Max(c7_0, z); c7_1 = Vector512.Max(c7_1, z);
        }
        c0_0.Store(c + 0 * ldc + 0); c0_1.Store(c + 0 * ldc + 8);
        c1_0.Store(c + 1 * ldc + 0); c1_1.Store(c + 1 * ldc + 8);
        c2_0.Store(c + 2 * ldc + 0); c2_1.Store(c + 2 * ldc + 8);
        c3_0.Store(c + 3 * ldc + 0); c3_1.Store(c + 3 * ldc + 8);
        c4_0.Store(c + 4 * ldc + 0); c4_1.Store(c + 4 * ldc + 8);
        c5_0.Store(c + 5 * ldc + 0); c5_1.Store(c + 5 * ldc + 8);
        c6_0.Store(c + 6 * ldc + 0); c6_1.Store(c + 6 * ldc + 8);
        c7_0.Store(c + 7 * ldc + 0); c7_1.Store(c + 7 * ldc + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void S256_6x16(long kc, float* a, float* b, float* c, long ldc, bool acc)
    {
        Vector256<float> c0_0 = default, c0_1 = default;
        Vector256<float> c1_0 = default, c1_1 = default;
        Vector256<float> c2_0 = default, c2_1 = default;
        Vector256<float> c3_0 = default, c3_1 = default;
        Vector256<float> c4_0 = default, c4_1 = default;
        Vector256<float> c5_0 = default, c5_1 = default;
        for (long p = kc; p > 0; p--)
        {
            Vector256<float> b0 = Vector256.Load(b + 0); Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c0_0 = Fma.MultiplyAdd(a0, b0, c0_0);
            c0_1 = Fma.MultiplyAdd(a0, b1, c0_1);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c1_0 = Fma.MultiplyAdd(a1, b0, c1_0);
            c1_1 = Fma.MultiplyAdd(a1, b1, c1_1);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c2_0 = Fma.MultiplyAdd(a2, b0, c2_0);
            c2_1 = Fma.MultiplyAdd(a2, b1, c2_1);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c3_0 = Fma.MultiplyAdd(a3, b0, c3_0);
            c3_1 = Fma.MultiplyAdd(a3, b1, c3_1);
            Vector256<float> a4 = Vector256.Create(a[4]);
            c4_0 = Fma.MultiplyAdd(a4, b0, c4_0);
            c4_1 = Fma.MultiplyAdd(a4, b1, c4_1);
            Vector256<float> a5 = Vector256.Create(a[5]);
            c5_0 = Fma.MultiplyAdd(a5, b0, c5_0);
            c5_1 = Fma.MultiplyAdd(a5, b1, c5_1);
            a += 6;
            b += 16;
        }
        if (acc)
        {
            c0_0 += Vector256.Load(c + 0 * ldc + 0); c0_1 += Vector256.Load(c + 0 * ldc + 8);
            c1_0 += Vector256.Load(c + 1 * ldc + 0); c1_1 += Vector256.Load(c + 1 * ldc + 8);
            c2_0 += Vector256.Load(c + 2 * ldc + 0); c2_1 += Vector256.Load(c + 2 * ldc + 8);
            c3_0 += Vector256.Load(c + 3 * ldc + 0); c3_1 += Vector256.Load(c + 3 * ldc + 8);
            c4_0 += Vector256.Load(c + 4 * ldc + 0); c4_1 += Vector256.Load(c + 4 * ldc + 8);
            c5_0 += Vector256.Load(c + 5 * ldc + 0); c5_1 += Vector256.Load(c + 5 * ldc + 8);
        }
        c0_0.Store(c + 0 * ldc + 0); c0_1.Store(c + 0 * ldc + 8);
        c1_0.Store(c + 1 * ldc + 0); c1_1.Store(c + 1 * ldc + 8);
        c2_0.Store(c + 2 * ldc + 0); c2_1.Store(c + 2 * ldc + 8);
        c3_0.Store(c + 3 * ldc + 0); c3_1.Store(c + 3 * ldc + 8);
        c4_0.Store(c + 4 * ldc + 0); c4_1.Store(c + 4 * ldc + 8);
        c5_0.Store(c + 5 * ldc + 0); c5_1.Store(c + 5 * ldc + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void D256_6x8(long kc, double* a, double* b, double* c, long ldc, bool acc)
    {
        Vector256<double> c0_0 = default, c0_1 = default;
        Vector256<double> c1_0 = default, c1_1 = default;
        Vector256<double> c2_0 = default, c2_1 = default;
        Vector256<double> c3_0 = default, c3_1 = default;
        Vector256<double> c4_0 = default, c4_1 = default;
        Vector256<double> c5_0 = default, c5_1 = default;
        for (long p = kc; p > 0; p--)
        {
            Vector256<double> b0 = Vector256.Load(b + 0); Vector256<double> b1 = Vector256.Load(b + 4);
            Vector256<double> a0 = Vector256.Create(a[0]);
            c0_0 = Fma.MultiplyAdd(a0, b0, c0_0);
            c0_1 = Fma.MultiplyAdd(a0, b1, c0_1);
            Vector256<double> a1 = Vector256.Create(a[1]);
            c1_0 = Fma.MultiplyAdd(a1, b0, c1_0);
            c1_1 = Fma.MultiplyAdd(a1, b1, c1_1);
            Vector256<double> a2 = Vector256.Create(a[2]);
            c2_0 = Fma.MultiplyAdd(a2, b0, c2_0);
            c2_1 = Fma.MultiplyAdd(a2, b1, c2_1);
            Vector256<double> a3 = Vector256.Create(a[3]);
            c3_0 = Fma.MultiplyAdd(a3, b0, c3_0);
            c3_1 = Fma.MultiplyAdd(a3, b1, c3_1);
            Vector256<double> a4 = Vector256.Create(a[4]);
            c4_0 = Fma.MultiplyAdd(a4, b0, c4_0);
            c4_1 = Fma.MultiplyAdd(a4, b1, c4_1);
            Vector256<double> a5 = Vector256.Create(a[5]);
            c5_0 = Fma.MultiplyAdd(a5, b0, c5_0);
            c5_1 = Fma.MultiplyAdd(a5, b1, c5_1);
            a += 6;
            b += 8;
        }
        if (acc)
        {
            c0_0 += Vector256.Load(c + 0 * ldc + 0); c0_1 += Vector256.Load(c + 0 * ldc + 4);
            c1_0 += Vector256.Load(c + 1 * ldc + 0); c1_1 += Vector256.Load(c + 1 * ldc + 4);
            c2_0 += Vector256.Load(c + 2 * ldc + 0); c2_1 += Vector256.Load(c + 2 * ldc + 4);
            c3_0 += Vector256.Load(c + 3 * ldc + 0); c3_1 += Vector256.Load(c + 3 * ldc + 4);
            c4_0 += Vector256.Load(c + 4 * ldc + 0); c4_1 += Vector256.Load(c + 4 * ldc + 4);
            c5_0 += Vector256.Load(c + 5 * ldc + 0); c5_1 += Vector256.Load(c + 5 * ldc + 4);
        }
        c0_0.Store(c + 0 * ldc + 0); c0_1.Store(c + 0 * ldc + 4);
        c1_0.Store(c + 1 * ldc + 0); c1_1.Store(c + 1 * ldc + 4);
        c2_0.Store(c + 2 * ldc + 0); c2_1.Store(c + 2 * ldc + 4);
        c3_0.Store(c + 3 * ldc + 0); c3_1.Store(c + 3 * ldc + 4);
        c4_0.Store(c + 4 * ldc + 0); c4_1.Store(c + 4 * ldc + 4);
        c5_0.Store(c + 5 * ldc + 0); c5_1.Store(c + 5 * ldc + 4);
    }
}
