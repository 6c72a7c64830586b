using System.Numerics;
using Runtime.Cpu;

namespace Runtime.Tests.Cpu;

/// <summary>
/// Sgemm/Dgemm against a float64 triple loop: odd and block-crossing shapes, empty shapes, transposed, strided and
/// broadcast operands, accumulate on/off, 1 and 2 threads, every micro-kernel this CPU supports (AVX-512, AVX2,
/// scalar), and no writes outside C. Errors are held to the worst-case dot-product bound 2 (k + 2) u sum|a||b|.
/// </summary>
public unsafe class GemmTests
{
    public enum Layout { RowMajor, ColMajor, Strided, RowBroadcast }

    private const double Sentinel = 1234.5;

    /// <summary>A logical rows x cols matrix held in storage with the given layout.</summary>
    private sealed class Operand
    {
        public required double[] Values; // logical, row-major
        public required double[] Storage;
        public required long Rs, Cs;
        public required int Rows, Cols;

    }

    private static Operand MakeOperand(int rows, int cols, Layout layout, Random rng)
    {
        long rs, cs;
        switch (layout)
        {
            case Layout.RowMajor: rs = cols + 3; cs = 1; break;
            case Layout.ColMajor: rs = 1; cs = rows + 2; break;
            case Layout.Strided: rs = 2L * cols + 5; cs = 2; break;
            case Layout.RowBroadcast: rs = 0; cs = 1; break;
            default: throw new ArgumentOutOfRangeException(nameof(layout));
        }
        long size = rows == 0 || cols == 0 ? 1 : (rows - 1) * rs + (cols - 1) * cs + 1;
        var storage = new double[size];
        for (long s = 0; s < size; s++)
            storage[s] = Sentinel; // anything the layout does not cover must never be read as a value
        var values = new double[rows * cols];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                long pos = i * rs + j * cs;
                if (layout == Layout.RowBroadcast && i > 0)
                {
                    values[i * cols + j] = values[j];
                    continue;
                }
                double v = (float)(rng.NextDouble() * 2 - 1); // float-exact: the same values for both precisions
                storage[pos] = v;
                values[i * cols + j] = v;
            }
        }
        return new Operand { Values = values, Storage = storage, Rs = rs, Cs = cs, Rows = rows, Cols = cols };
    }

    private delegate void GemmCall<T>(int m, int n, int k, T* a, long rsA, long csA, T* b, long rsB, long csB, T* c, long ldc, bool accumulate, int maxThreads)
        where T : unmanaged;

    private static GemmCall<T> Public<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            return (GemmCall<T>)(object)new GemmCall<float>(Gemm.Sgemm);
        return (GemmCall<T>)(object)new GemmCall<double>(Gemm.Dgemm);
    }

    private static GemmCall<T> WithConfig<T>(Gemm.Config<T> cfg) where T : unmanaged, INumber<T>
        => (m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, acc, threads) => Gemm.Run(cfg, m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, acc, threads);

    /// <summary>
    /// Runs the product with and without accumulate for each thread count, and checks every element of C and that
    /// the padding around C is untouched.
    /// </summary>
    private static void Check<T>(GemmCall<T> gemm, int m, int n, int k, Operand a, Operand b, int[] threadCounts, Random rng)
        where T : unmanaged, INumber<T>
    {
        var product = new double[m * n];
        var productScale = new double[m * n];
        var bt = new double[n * k]; // B transposed, so the reference walks both operands contiguously
        for (int p = 0; p < k; p++)
            for (int j = 0; j < n; j++)
                bt[j * k + p] = b.Values[p * n + j];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double e = 0, sc = 0;
                for (int p = 0; p < k; p++)
                {
                    double t = a.Values[i * k + p] * bt[j * k + p];
                    e += t;
                    sc += Math.Abs(t);
                }
                product[i * n + j] = e;
                productScale[i * n + j] = sc;
            }
        }
        T[] aStore = Convert<T>(a.Storage);
        T[] bStore = Convert<T>(b.Storage);
        double u = typeof(T) == typeof(float) ? Math.Pow(2, -24) : Math.Pow(2, -53);
        double tol = 2 * (k + 2) * u;
        T sentinel = T.CreateChecked(Sentinel);

        foreach (bool accumulate in new[] { false, true })
        foreach (int threads in threadCounts)
        {
            var c0 = new double[m * n];
            var expect = new double[m * n];
            var scale = new double[m * n];
            for (int i = 0; i < c0.Length; i++)
            {
                // Without accumulate C's old contents must not be read: make them NaN so that any read shows.
                c0[i] = accumulate ? (float)(rng.NextDouble() * 2 - 1) : double.NaN;
                expect[i] = accumulate ? c0[i] + product[i] : product[i];
                scale[i] = accumulate ? Math.Abs(c0[i]) + productScale[i] : productScale[i];
            }

            long ldc = n + 3;
            const int guard = 16;
            long cSize = m == 0 ? 0 : (m - 1) * ldc + n;
            var cStore = new T[guard + cSize + guard];
            Array.Fill(cStore, sentinel);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    cStore[guard + i * ldc + j] = T.CreateChecked(c0[i * n + j]);

            fixed (T* pa = aStore, pb = bStore, pc = cStore)
                gemm(m, n, k, pa, a.Rs, a.Cs, pb, b.Rs, b.Cs, pc + guard, ldc, accumulate, threads);

            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    double got = double.CreateChecked(cStore[guard + i * ldc + j]);
                    double e = expect[i * n + j];
                    if (!(Math.Abs(got - e) <= tol * scale[i * n + j] + 1e-300))
                    {
                        Assert.Fail($"{typeof(T).Name} m={m} n={n} k={k} acc={accumulate} threads={threads} " +
                            $"A(rs={a.Rs},cs={a.Cs}) B(rs={b.Rs},cs={b.Cs}): C[{i},{j}] = {got}, expected {e} (scale {scale[i * n + j]})");
                    }
                }
            }
            for (long s = 0; s < cStore.Length; s++)
            {
                long off = s - guard;
                bool inside = off >= 0 && off < cSize && off % ldc < n;
                if (!inside && cStore[s] != sentinel)
                    Assert.Fail($"{typeof(T).Name} m={m} n={n} k={k} threads={threads}: wrote outside C at offset {off}");
            }
        }
    }

    private static T[] Convert<T>(double[] values) where T : unmanaged, INumber<T>
    {
        var res = new T[values.Length];
        for (int i = 0; i < values.Length; i++)
            res[i] = T.CreateChecked(values[i]);
        return res;
    }

    private static readonly int[] OneAndTwo = [1, 2];
    private static readonly int[] Two = [2];

    private static readonly Layout[] Dense = [Layout.RowMajor, Layout.ColMajor, Layout.Strided];

    private static void CheckShape<T>(GemmCall<T> gemm, int m, int n, int k, bool allLayouts, int seed)
        where T : unmanaged, INumber<T>
    {
        var rng = new Random(seed);
        var pairs = allLayouts
            ? (from la in Dense from lb in Dense select (la, lb)).ToArray()
            : m == 1 || n == 1 || (long)m * n * k > 10_000_000 // keep the float64 reference loop cheap
                ? [(Layout.RowMajor, Layout.RowMajor)]
                : [(Layout.RowMajor, Layout.RowMajor), (Layout.ColMajor, Layout.ColMajor)];
        foreach (var (la, lb) in pairs)
        {
            var a = MakeOperand(m, k, la, rng);
            var b = MakeOperand(k, n, lb, rng);
            Check(gemm, m, n, k, a, b, allLayouts ? OneAndTwo : Two, rng);
        }
    }

    public static TheoryData<int, int, int> SmallShapes => new()
    {
        { 1, 1, 1 }, { 7, 13, 5 }, { 33, 65, 17 }, { 100, 1, 50 }, { 1, 300, 7 }, { 1, 1, 40 },
        { 0, 5, 3 }, { 5, 0, 3 }, { 0, 0, 0 }, { 4, 6, 0 }, { 9, 40, 1 }, { 8, 32, 16 }, { 17, 33, 400 },
        { 64, 64, 64 }, { 130, 70, 90 }, { 2, 700, 30 }, { 700, 2, 30 },
    };

    public static TheoryData<int, int, int> LargeShapes => new()
    {
        // All of these are big enough (m*n*k >= 128^3) to be split over threads when allowed.
        { 300, 520, 270 }, // crosses NC and several tiles with ragged edges in both M and N
        { 150, 330, 130 }, // the same, transposed operands
        { 5, 4000, 128 },  // short and wide: threads split N
        { 1600, 40, 40 },  // crosses MC
        { 40, 60, 1000 },  // one deep K block (float AVX-512), several of the other kernels
        { 40, 300, 2100 }, // K blocks deeper than the depth MC and NC were sized for: fewer B columns per block
        { 900, 50, 1500 }, // deep K blocks with rows past the reduced MC
        { 1, 2100, 1000 }, // row vector times matrix, split over N
        { 2100, 1, 1000 }, // matrix times column vector, split over M
    };

    [CpuTheory("GEMM internals")]
    [MemberData(nameof(SmallShapes))]
    public void Sgemm_SmallShapes(int m, int n, int k) => CheckShape(Public<float>(), m, n, k, allLayouts: true, seed: m * 1000003 + n * 1009 + k);

    [CpuTheory("GEMM internals")]
    [MemberData(nameof(SmallShapes))]
    public void Dgemm_SmallShapes(int m, int n, int k) => CheckShape(Public<double>(), m, n, k, allLayouts: true, seed: m * 1000003 + n * 1009 + k + 1);

    [CpuTheory("GEMM internals")]
    [MemberData(nameof(LargeShapes))]
    public void Sgemm_LargeShapes(int m, int n, int k) => CheckShape(Public<float>(), m, n, k, allLayouts: false, seed: m + n + k);

    [CpuTheory("GEMM internals")]
    [MemberData(nameof(LargeShapes))]
    public void Dgemm_LargeShapes(int m, int n, int k) => CheckShape(Public<double>(), m, n, k, allLayouts: false, seed: m + n + k + 1);

    /// <summary>Every float32 configuration: the ones the products pick from and the deep-K one of pointwise convolutions.</summary>
    private static IEnumerable<Gemm.Config<float>> SingleConfigsWithDeep =>
        Gemm.DeepSingleConfig == null ? Gemm.SingleConfigs : Gemm.SingleConfigs.Append(Gemm.DeepSingleConfig);

    /// <summary>Every kernel this CPU can run (not only the default one), including the portable scalar kernel.</summary>
    [CpuFact("GEMM internals")]
    public void EveryKernel_MatchesReference()
    {
        int[][] shapes = [[1, 1, 1], [7, 13, 5], [37, 45, 29], [1, 50, 9], [50, 1, 9], [40, 300, 200], [13, 17, 600], [20, 150, 2300]];
        foreach (var cfg in SingleConfigsWithDeep)
        {
            foreach (var s in shapes)
                CheckShape(WithConfig(cfg), s[0], s[1], s[2], allLayouts: s[0] * s[1] * s[2] < 500_000, seed: s[0] + 7 * s[1] + 13 * s[2]);
        }
        foreach (var cfg in Gemm.DoubleConfigs)
        {
            foreach (var s in shapes)
                CheckShape(WithConfig(cfg), s[0], s[1], s[2], allLayouts: s[0] * s[1] * s[2] < 500_000, seed: s[0] + 7 * s[1] + 13 * s[2] + 1);
        }
        Assert.Equal("scalar", Gemm.SingleConfigs[^1].Name);
        Assert.Equal("scalar", Gemm.DoubleConfigs[^1].Name);
    }

    [CpuTheory("GEMM internals")]
    [InlineData(1, 37, 11)]
    [InlineData(23, 41, 19)]
    [InlineData(90, 100, 80)]
    public void BroadcastOperands(int m, int n, int k)
    {
        var rng = new Random(m + n + k);
        foreach (var (la, lb) in new[] { (Layout.RowBroadcast, Layout.RowMajor), (Layout.RowMajor, Layout.RowBroadcast), (Layout.RowBroadcast, Layout.RowBroadcast), (Layout.RowBroadcast, Layout.ColMajor) })
        {
            var a = MakeOperand(m, k, la, rng);
            var b = MakeOperand(k, n, lb, rng);
            Check(Public<float>(), m, n, k, a, b, OneAndTwo, rng);
            Check(Public<double>(), m, n, k, a, b, OneAndTwo, rng);
        }
    }

    [CpuFact("GEMM internals")]
    public void ZeroK_ZeroFillsOrKeeps()
    {
        var c = new float[] { 1, 2, 3, 4, 5, 6, 99 };
        fixed (float* pc = c)
        {
            Gemm.Sgemm(2, 3, 0, null, 0, 1, null, 3, 1, pc, 3, accumulate: true, maxThreads: 2);
            Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6, 99 }, c);
            Gemm.Sgemm(2, 3, 0, null, 0, 1, null, 3, 1, pc, 3, accumulate: false, maxThreads: 2);
            Assert.Equal(new float[] { 0, 0, 0, 0, 0, 0, 99 }, c);
        }
        var d = new double[] { 1, 2, 3, 99, 4, 5, 6 };
        fixed (double* pd = d)
        {
            Gemm.Dgemm(2, 3, 0, null, 0, 1, null, 3, 1, pd, 4, accumulate: false, maxThreads: 1);
            Assert.Equal(new double[] { 0, 0, 0, 99, 0, 0, 0 }, d);
        }
    }

    [CpuFact("GEMM internals")]
    public void NegativeSize_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(-1, 1, 1, null, 1, 1, null, 1, 1, null, 1, false, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Dgemm(1, 1, -1, null, 1, 1, null, 1, 1, null, 1, false, 1));
    }

    /// <summary>Many threads calling at once (each with its own per-thread packing buffer), with mixed sizes and types.</summary>
    [CpuFact("GEMM internals")]
    public void ConcurrentCalls_AreIndependent()
    {
        Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            var rng = new Random(100 + t);
            int m = 20 + 13 * t, n = 50 - t, k = 30 + 40 * (t % 3);
            var a = MakeOperand(m, k, t % 2 == 0 ? Layout.RowMajor : Layout.ColMajor, rng);
            var b = MakeOperand(k, n, Layout.RowMajor, rng);
            if (t % 2 == 0)
                Check(Public<float>(), m, n, k, a, b, [1 + t % 2], rng);
            else
                Check(Public<double>(), m, n, k, a, b, [1 + t % 2], rng);
        });
    }

    /// <summary>The thread count changes only who computes a tile, not how: results are bit-identical.</summary>
    [CpuFact("GEMM internals")]
    public void ThreadCount_DoesNotChangeResults()
    {
        const int m = 200, n = 150, k = 500;
        var rng = new Random(7);
        var a = new float[m * k];
        var b = new float[k * n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
        for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble() - 0.5f;
        var c1 = new float[m * n];
        var c2 = new float[m * n];
        fixed (float* pa = a, pb = b, p1 = c1, p2 = c2)
        {
            Gemm.Sgemm(m, n, k, pa, k, 1, pb, n, 1, p1, n, false, 1);
            Gemm.Sgemm(m, n, k, pa, k, 1, pb, n, 1, p2, n, false, 2);
        }
        Assert.Equal(c1, c2);
    }

    /// <summary>
    /// The driver's convolution features on every kernel: A packed once (<see cref="Gemm.PackWhole{T}"/>) or strided,
    /// B packed beforehand (<see cref="Gemm.PackWholeB{T, TB}"/>) or block by block,
    /// C laid out image by image (runs of colsPerImage columns, gaps between rows and images that must stay untouched,
    /// tiles that straddle two images) and the epilogue (bias per row, residual laid out like C, ReLU).
    /// </summary>
    [CpuTheory("GEMM internals")]
    [InlineData(16, 392, 300, 49)]
    [InlineData(37, 150, 45, 7)]
    [InlineData(70, 100, 800, 100)]
    [InlineData(9, 64, 5, 32)]
    [InlineData(1, 40, 3, 13)]
    [InlineData(20, 300, 1300, 49)]
    public void PackedA_ImageOutput_Epilogue_EveryKernel(int m, int n, int k, int colsPerImage)
    {
        foreach (var cfg in SingleConfigsWithDeep)
            CheckConvProduct(cfg, m, n, k, colsPerImage);
        foreach (var cfg in Gemm.DoubleConfigs)
            CheckConvProduct(cfg, m, n, k, colsPerImage);
    }

    private static void CheckConvProduct<T>(Gemm.Config<T> cfg, int m, int n, int k, int colsPerImage) where T : unmanaged, INumber<T>
    {
        var rng = new Random(m * 31 + n * 7 + k);
        double[] Values(int count) => Enumerable.Range(0, count).Select(_ => (double)(float)(rng.NextDouble() * 2 - 1)).ToArray();
        var a = Values(m * k);
        var b = Values(k * n);
        var bias = Values(m);
        int images = (n + colsPerImage - 1) / colsPerImage;
        long ldc = colsPerImage + 2, imageStride = m * ldc + 5, size = images * imageStride;
        var residual = Values((int)size);
        double u = typeof(T) == typeof(float) ? Math.Pow(2, -24) : Math.Pow(2, -53);
        T sentinel = T.CreateChecked(Sentinel);

        foreach (bool packed in new[] { false, true })
        foreach (bool packedB in new[] { false, true })
        foreach (int combo in new[] { 0, 1, 2, 4, 7 })
        foreach (int threads in OneAndTwo)
        {
            bool withBias = (combo & 1) != 0, withResidual = (combo & 2) != 0, relu = (combo & 4) != 0;
            var aT = Convert<T>(a);
            var bT = Convert<T>(b);
            var biasT = Convert<T>(bias);
            var resT = Convert<T>(residual);
            var cT = new T[size];
            Array.Fill(cT, sentinel);
            var packedA = new T[Gemm.PackedLength(cfg, m, k) + 64];
            var packedBStore = new T[Gemm.PackedLengthB(cfg, k, n)];
            fixed (T* pa = aT, pb = bT, pbias = biasT, pres = resT, pc = cT, pp = packedA, ppb = packedBStore)
            {
                T* aligned = (T*)(((nuint)pp + 63) & ~(nuint)63);
                var output = new Gemm.Output<T>(pc, ldc, colsPerImage, imageStride);
                var epilogue = new Gemm.Epilogue<T>(withBias ? pbias : null, withResidual ? pres : null, relu);
                var bSource = new Gemm.StridedB<T>(pb, n, 1);
                int slivers = (n + cfg.NR - 1) / cfg.NR, kBlocks = (k + Gemm.KBlock(cfg, k) - 1) / Gemm.KBlock(cfg, k);
                if (packedB)
                {
                    // In uneven pieces, as threads would claim them.
                    for (int kb = 0; kb < kBlocks; kb++)
                        for (int s0 = 0; s0 < slivers; s0 += 3)
                            Gemm.PackWholeB(cfg, bSource, ppb, k, n, kb, s0, Math.Min(slivers, s0 + 3));
                }
                var bPacked = new Gemm.PackedB<T>(ppb, slivers * cfg.NR);
                int mPadded = (m + cfg.MR - 1) / cfg.MR * cfg.MR;
                if (packed) Gemm.PackWhole(cfg, aligned, pa, m, k, k, 1);
                var aPacked = new Gemm.PackedA<T>(aligned, mPadded);
                var aStrided = new Gemm.StridedA<T>(pa, k, 1);
                if (packed && packedB) Gemm.Run(cfg, m, n, k, aPacked, bPacked, output, epilogue, false, threads);
                else if (packed) Gemm.Run(cfg, m, n, k, aPacked, bSource, output, epilogue, false, threads);
                else if (packedB) Gemm.Run(cfg, m, n, k, aStrided, bPacked, output, epilogue, false, threads);
                else Gemm.Run(cfg, m, n, k, aStrided, bSource, output, epilogue, false, threads);
            }
            var covered = new bool[size];
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    double e = 0, scale = 0;
                    for (int p = 0; p < k; p++)
                    {
                        e += a[i * k + p] * b[p * n + j];
                        scale += Math.Abs(a[i * k + p] * b[p * n + j]);
                    }
                    long at = j / colsPerImage * imageStride + i * ldc + j % colsPerImage;
                    if (withBias) e += bias[i];
                    if (withResidual) e += residual[at];
                    if (relu) e = Math.Max(e, 0);
                    double got = double.CreateChecked(cT[at]);
                    double tol = 2 * (k + 4) * u * (scale + 2) + 1e-300;
                    Assert.True(Math.Abs(got - e) <= tol,
                        $"{cfg} packedA={packed} packedB={packedB} combo={combo} threads={threads}: C({i},{j}) = {got}, expected {e}");
                    covered[at] = true;
                }
            }
            for (long q = 0; q < size; q++)
                if (!covered[q])
                    Assert.True(cT[q] == sentinel, $"{cfg}: write outside C at {q}");
        }
    }
}
