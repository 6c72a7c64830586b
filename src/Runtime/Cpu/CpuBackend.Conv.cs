using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime.Cpu;

/// <summary>
/// Convolutions on the CPU, all through the packed GEMM of <see cref="Gemm"/>. The forward (<see cref="Conv2dFused"/>,
/// of which <see cref="Conv2d"/> is the case without residual and ReLU):
/// <list type="bullet">
/// <item>pointwise (1x1, stride 1, no padding) convolutions on planes of at least 1024 pixels, or of a single image,
/// multiply the weight with each image as it is (the direct path: measured about 15% faster than the implicit GEMM
/// on 8x64x56x56 and 1x256x56x56, whose plain row copies pack B faster);</item>
/// <item>every other grouped or dense convolution is an implicit GEMM: one product per group over the output pixels of
/// all images, whose B panels <see cref="ConvColumns{T}"/> packs straight from the input, so nothing is unfolded into a
/// column buffer. When the product's threads split its rows (late stages: many output channels, few pixels), each
/// would pack all of B, so B is packed once by all threads together and shared (up to 32 MB). The unfolding forward
/// that this replaced (im2col into tiles, then GEMM) was not measurably faster on any ResNet-50 shape (7x7/2 stem,
/// 3x3/2, 1x1/2, 3x3/1 on 14x14 to 64x64 planes, batch 1 and 8), so it is gone;</item>
/// <item>depthwise convolutions (one input channel per group) take a direct vectorised loop instead, since their GEMMs
/// would have a single row.</item>
/// </list>
/// The GEMM paths add the bias, the residual and the ReLU to each output tile as it is finished (<see cref="Gemm.Epilogue{T}"/>);
/// depthwise makes one pass over y for them (<see cref="EpiloguePass{T}"/>). Calls without gradient recording reuse the
/// weight packed by an earlier call (<see cref="PackedWeights"/>, invalidated by <see cref="Storage.Version"/>).
/// <para>Grad-input runs the transposed GEMM into columns and folds them back per plane (col2im); grad-weight multiplies the
/// output gradient with the unfolded input, both tiled as <see cref="ConvPlan"/> says. Batches of large planes go image
/// by image to separate threads, each with a one-thread GEMM (<see cref="ImagesInParallel"/>); otherwise each GEMM and
/// each unfolding loop uses every thread. Sums are split the same way whatever the number of threads (the weight
/// gradient over a fixed split of the images), so the thread count does not change how a gradient is summed. Scratch
/// comes from <see cref="BufferPool"/> and goes back after each call.</para>
/// </summary>
internal sealed unsafe partial class CpuBackend
{
    public void Im2Col(TensorView x, TensorView columns, Conv2dGeometry g)
    {
        if (x.DType == DType.Float32) Im2ColFor((float*)Ptr(x), (float*)Ptr(columns), g, 0, g.Batch, 0, g.OutHeight, true);
        else Im2ColFor((double*)Ptr(x), (double*)Ptr(columns), g, 0, g.Batch, 0, g.OutHeight, true);
    }

    public void Col2Im(TensorView columns, TensorView x, Conv2dGeometry g)
    {
        if (x.DType == DType.Float32) Col2ImFor((float*)Ptr(columns), (float*)Ptr(x), g, 0, g.Batch, 0, g.OutHeight, true);
        else Col2ImFor((double*)Ptr(columns), (double*)Ptr(x), g, 0, g.Batch, 0, g.OutHeight, true);
    }

    public void Conv2d(TensorView x, TensorView weight, TensorView? bias, TensorView y, Conv2dGeometry g) =>
        Conv2dFused(x, weight, bias, null, false, y, g);

    public void Conv2dFused(TensorView x, TensorView weight, TensorView? bias, TensorView? residual, bool relu, TensorView y, Conv2dGeometry g)
    {
        // The epilogue reads these raw, tile by tile: a wrong size would read past them, an alias of y would read sums
        // the GEMM has already written there.
        if (bias is { } bv && (bv.NumEl != g.OutChannels || bv.DType != y.DType))
            throw new ArgumentException($"bias must hold {g.OutChannels} {y.DType} values (one per output channel), got {bv.NumEl} {bv.DType}", nameof(bias));
        if (residual is { } rv)
        {
            if (!rv.Shape.AsSpan().SequenceEqual(y.Shape) || rv.DType != y.DType || !rv.IsContiguous)
                throw new ArgumentException($"residual must be a contiguous {y.DType} tensor shaped like y [{string.Join(", ", y.Shape)}], got [{string.Join(", ", rv.Shape)}] {rv.DType}", nameof(residual));
            if (ReferenceEquals(rv.Storage, y.Storage) && rv.Offset < y.Offset + y.NumEl && y.Offset < rv.Offset + rv.NumEl)
                throw new ArgumentException("residual must not overlap y", nameof(residual));
        }
        // Inference calls reuse the weight packed by an earlier call (see PackedWeights); training calls pack it as they go.
        var storage = GradMode.IsEnabled ? null : weight.Storage;
        if (WinogradApplies(g, x.DType))
            WinogradForward((float*)Ptr(x), weight, P<float>(bias), P<float>(residual), relu, (float*)Ptr(y), g);
        else if (x.DType == DType.Float32)
            ConvForward((float*)Ptr(x), (float*)Ptr(weight), P<float>(bias), P<float>(residual), relu, (float*)Ptr(y), g, storage);
        else
            ConvForward((double*)Ptr(x), (double*)Ptr(weight), P<double>(bias), P<double>(residual), relu, (double*)Ptr(y), g, storage);
    }

    public void Conv2dGradInput(TensorView gy, TensorView weight, TensorView gx, Conv2dGeometry g)
    {
        if (gy.DType == DType.Float32) ConvGradInput((float*)Ptr(gy), (float*)Ptr(weight), (float*)Ptr(gx), g);
        else ConvGradInput((double*)Ptr(gy), (double*)Ptr(weight), (double*)Ptr(gx), g);
    }

    public void Conv2dGradWeight(TensorView x, TensorView gy, TensorView gw, Conv2dGeometry g)
    {
        if (gy.DType == DType.Float32) ConvGradWeight((float*)Ptr(x), (float*)Ptr(gy), (float*)Ptr(gw), g);
        else ConvGradWeight((double*)Ptr(x), (double*)Ptr(gy), (double*)Ptr(gw), g);
    }

    // ------------------------------------------------------------------------------------------------
    // Planning and scratch
    // ------------------------------------------------------------------------------------------------

    /// <summary>
    /// How one convolution is cut: pointwise on large planes goes image by image as it is (<see cref="Direct"/>); the
    /// backward of everything else unfolds tiles into a column buffer and multiplies them in one GEMM per group: a tile
    /// is a run of whole images (small planes, so that the GEMM still sees a wide N) or a band of output rows of one
    /// image (large planes, so that the column buffer stays in cache between im2col and the GEMM). The forward of
    /// everything else is an implicit GEMM and needs no tiles.
    /// </summary>
    private readonly struct ConvPlan
    {
        /// <summary>A tile's GEMM should see at least this many columns (output pixels) to run near its peak.</summary>
        private const int TargetColumns = 1024;

        /// <summary>Column-buffer elements that stay in cache between unfolding and multiplying (2 MB of float32).</summary>
        private const long CacheColumns = 1L << 19;

        /// <summary>Largest column buffer, in elements, a run of images may use.</summary>
        private const long ColumnBudget = 1L << 23;

        public ConvPlan(Conv2dGeometry g)
        {
            Depthwise = g.InPerGroup == 1 && g.Groups > 1;
            int k = Math.Max(1, g.ColumnRows), plane = Math.Max(1, g.OutPlane);
            long want = Math.Max(TargetColumns, CacheColumns / k);
            if (g.IsPointwise && (plane >= TargetColumns || g.Batch <= 1))
            {
                // Pointwise on whole single images reads them as they are: no unfolding at all (a single small image
                // too: its column buffer would be a copy of it, the GEMM the same).
                Images = 1;
                Rows = g.OutHeight;
                Direct = true;
            }
            else if (plane >= want || g.Batch <= 1)
            {
                Images = 1;
                int bands = (int)Math.Clamp((plane + want - 1) / want, 1, Math.Max(1, g.OutHeight));
                Rows = (g.OutHeight + bands - 1) / bands;
            }
            else
            {
                long images = Math.Clamp((want + plane - 1) / plane, 1, Math.Max(1, ColumnBudget / ((long)k * plane)));
                int runs = (int)((g.Batch + Math.Min(images, g.Batch) - 1) / Math.Min(images, g.Batch));
                Images = (g.Batch + runs - 1) / runs;
                Rows = g.OutHeight;
            }
        }

        public bool Depthwise { get; }

        public bool Direct { get; }

        /// <summary>Images per tile (more than one only when tiles are whole images).</summary>
        public int Images { get; }

        /// <summary>Output rows per tile (all of them when a tile holds several images).</summary>
        public int Rows { get; }

        /// <summary>Largest column count of a tile.</summary>
        public long MaxColumns(Conv2dGeometry g) => (long)Images * Rows * g.OutWidth;
    }

    /// <summary>A block of pooled native memory for the duration of one call.</summary>
    private readonly struct Scratch<T> : IDisposable where T : unmanaged
    {
        private readonly nint _ptr;
        private readonly long _capacity;

        public Scratch(long elements)
        {
            if (elements > 0) (_ptr, _capacity) = BufferPool.Rent(elements * sizeof(T));
        }

        public T* Pointer => (T*)_ptr;

        public void Dispose()
        {
            if (_ptr != 0) BufferPool.Return((byte*)_ptr, _capacity);
        }
    }

    private static void GemmT<T>(int m, int n, int k, T* a, long rsA, long csA, T* b, long rsB, long csB, T* c, long ldc, bool accumulate, int threads)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            Gemm.Sgemm(m, n, k, (float*)a, rsA, csA, (float*)b, rsB, csB, (float*)c, ldc, accumulate, threads);
        else
            Gemm.Dgemm(m, n, k, (double*)a, rsA, csA, (double*)b, rsB, csB, (double*)c, ldc, accumulate, threads);
    }

    /// <summary>
    /// Runs body(group, gemmThreads) for every group within a budget of <paramref name="threads"/>: groups in parallel
    /// when there are enough of them, else one after another, each GEMM with the whole budget.
    /// </summary>
    private static void ForEachGroup(Conv2dGeometry g, double macsPerGroup, int threads, Action<int, int> body)
    {
        if (g.Groups >= threads && threads > 1 && macsPerGroup < 64.0 * 64 * 64 * 64)
            Chunked(g.Groups, 1, (s, e) => { for (long i = s; i < e; i++) body((int)i, 1); });
        else
            for (int i = 0; i < g.Groups; i++) body(i, threads);
    }

    /// <summary>
    /// True when whole images go to separate threads, each unfolding and multiplying its own images with a one-thread
    /// GEMM: large planes (tiles of one image) and images that share out evenly over the threads (a multiple of them, or
    /// enough that the remainder hardly matters). No synchronisation between tiles, which matters most when the cores
    /// are shared with other work.
    /// </summary>
    private static bool ImagesInParallel(Conv2dGeometry g, ConvPlan plan)
    {
        int threads = CpuParallel.Threads;
        return plan.Images == 1 && threads > 1 && g.Batch >= threads && (g.Batch % threads == 0 || g.Batch >= 4 * threads);
    }

    /// <summary>body(start, end) over [0, total): in pieces on all threads when <paramref name="parallel"/>, else inline.</summary>
    private static void Run(bool parallel, long total, long grain, Action<long, long> body)
    {
        if (parallel) Chunked(total, grain, body);
        else if (total > 0) body(0, total);
    }

    /// <summary>
    /// Calls body(start, end) over pieces of [0, total) of at least <paramref name="grain"/> items, several pieces per
    /// thread claimed as threads come free, so a thread the OS parks for a while holds up only a small piece.
    /// </summary>
    private static void Chunked(long total, long grain, Action<long, long> body)
    {
        if (total <= 0) return;
        int threads = CpuParallel.Threads;
        long pieces = Math.Min(total / Math.Max(1, grain), 4L * threads);
        if (pieces <= 1 || threads <= 1)
        {
            body(0, total);
            return;
        }
        WorkerPool.Run((int)pieces, threads, i =>
        {
            long start = total * i / pieces, end = total * (i + 1) / pieces;
            if (end > start) body(start, end);
        });
    }

    /// <summary>
    /// The range of output columns <c>[lo, hi)</c> whose input column <c>ow*stride + offset</c> lies inside <c>[0, size)</c>.
    /// </summary>
    private static (int Lo, int Hi) ValidRange(int outSize, int stride, int offset, int size)
    {
        // ow*stride + offset >= 0  <=>  ow >= ceil(-offset / stride)
        int lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
        // ow*stride + offset <= size - 1  <=>  ow <= floor((size - 1 - offset) / stride)
        int last = size - 1 - offset;
        int hi = last < 0 ? 0 : Math.Min(outSize, last / stride + 1);
        return (Math.Min(lo, hi), hi);
    }

    // ------------------------------------------------------------------------------------------------
    // Forward
    // ------------------------------------------------------------------------------------------------

    /// <summary>
    /// y = conv(x, w) (+ bias) (+ residual), then ReLU when <paramref name="relu"/>. With <paramref name="packedFrom"/>
    /// (the weight's storage, inference only) the weight is packed once and reused (<see cref="PackedWeights"/>).
    /// </summary>
    private static void ConvForward<T>(T* x, T* w, T* bias, T* residual, bool relu, T* y, Conv2dGeometry g, Storage? packedFrom = null)
        where T : unmanaged, INumber<T>
    {
        var plan = new ConvPlan(g);
        if (plan.Depthwise)
        {
            DepthwiseForward(x, w, bias, y, g);
            EpiloguePass(y, null, residual, relu, g);
            return;
        }
        if (typeof(T) == typeof(float) && packedFrom != null && PixelMajorApplies(g, DType.Float32, inference: true))
        {
            PixelMajorForward((float*)x, (float*)w, (float*)bias, (float*)residual, relu, (float*)y, g, packedFrom);
            return;
        }
        var weights = new ConvWeights<T>(w, g, packedFrom);
        if (!plan.Direct)
            ImplicitForward(x, weights, bias, residual, relu, y, g);
        else if (ImagesInParallel(g, plan))
            Chunked(g.Batch, 1, (s, e) =>
            {
                for (long n = s; n < e; n++) ForwardImage(x, weights, bias, residual, relu, y, g, plan, (int)n, 1);
            });
        else
            for (int n = 0; n < g.Batch; n++) ForwardImage(x, weights, bias, residual, relu, y, g, plan, n, CpuParallel.Threads);
        weights.KeepAlive();
    }

    /// <summary>
    /// The implicit-GEMM forward: per group, W_grp (cog x kg) times the unfolded input (kg x output pixels of all images,
    /// packed from x by <see cref="ConvColumns{T}"/>), written image by image into y with the epilogue.
    /// </summary>
    private static void ImplicitForward<T>(T* x, ConvWeights<T> weights, T* bias, T* residual, bool relu, T* y, Conv2dGeometry g)
        where T : unmanaged, INumber<T>
    {
        int L = g.OutPlane, cog = g.OutPerGroup, kg = g.InPerGroup * g.KernelH * g.KernelW;
        var cfg = weights.Config;
        // Runs of images whose columns an int counts (all of them in practice).
        int perRun = (int)Math.Clamp((1L << 30) / Math.Max(1, L), 1, Math.Max(1, g.Batch));
        for (int n0 = 0; n0 < g.Batch; n0 += perRun)
        {
            int cols = Math.Min(perRun, g.Batch - n0) * L;
            T* xr = x + (long)n0 * g.InChannels * g.InPlane;
            long at = (long)n0 * g.OutChannels * L;
            ForEachGroup(g, (double)cog * kg * cols, CpuParallel.Threads, (grp, threads) =>
            {
                var b = new ConvColumns<T>(xr + (long)grp * g.InPerGroup * g.InPlane, g);
                var c = new Gemm.Output<T>(y + at + (long)grp * cog * L, L, L, (long)g.OutChannels * L);
                var fusion = Fusion(bias, residual, relu, grp, g, at);
                if (!Gemm.SplitsRows(cfg, cog, cols, kg, threads) || (long)kg * cols > SharedColumnsBudget)
                {
                    weights.Multiply(grp, cols, b, c, fusion, threads);
                    return;
                }
                // Threads that split the rows would each pack all of B: pack it once, together, and share it.
                using var packed = new Scratch<T>(Gemm.PackedLengthB(cfg, kg, cols));
                T* pb = packed.Pointer;
                int kBlocks = (kg + Gemm.KBlock(cfg, kg) - 1) / Gemm.KBlock(cfg, kg), slivers = (cols + cfg.NR - 1) / cfg.NR;
                Chunked((long)kBlocks * slivers, Math.Max(1, cfg.NC / cfg.NR), (s, e) =>
                {
                    for (long item = s; item < e;)
                    {
                        int kb = (int)(item / slivers), s0 = (int)(item % slivers), s1 = (int)Math.Min(slivers, s0 + (e - item));
                        Gemm.PackWholeB(cfg, b, pb, kg, cols, kb, s0, s1);
                        item += s1 - s0;
                    }
                });
                weights.Multiply(grp, cols, new Gemm.PackedB<T>(pb, slivers * cfg.NR), c, fusion, threads);
            });
        }
    }

    /// <summary>Largest B, in elements, that the implicit GEMM packs once for all threads (32 MB of float32).</summary>
    private const long SharedColumnsBudget = 1L << 23;

    /// <summary>The epilogue of group <paramref name="grp"/>'s product whose output starts at y + <paramref name="at"/> + grp*cog*L.</summary>
    private static Gemm.Epilogue<T> Fusion<T>(T* bias, T* residual, bool relu, int grp, Conv2dGeometry g, long at) where T : unmanaged, INumber<T>
    {
        int cog = g.OutPerGroup;
        return new Gemm.Epilogue<T>(bias == null ? null : bias + (long)grp * cog, residual == null ? null : residual + at + (long)grp * cog * g.OutPlane, relu);
    }

    /// <summary>
    /// y = y (+ bias) (+ residual), then ReLU, in one pass over y [N, Cout, OH, OW]: the epilogue of the paths that do not
    /// end in a GEMM (depthwise; shared with other direct kernels).
    /// </summary>
    internal static void EpiloguePass<T>(T* y, T* bias, T* residual, bool relu, Conv2dGeometry g) where T : unmanaged, INumber<T>
    {
        int L = g.OutPlane, cout = g.OutChannels;
        if (bias == null && residual == null && !relu) return;
        Chunked((long)g.Batch * cout, Math.Max(1, 16384 / Math.Max(1, L)), (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                var fusion = new Gemm.Epilogue<T>(bias == null ? null : bias + p % cout, residual == null ? null : residual + p * L, relu);
                fusion.Apply(y + p * L, L, y + p * L, 0, 1, L);
            }
        });
    }

    /// <summary>
    /// The weight as the GEMM's A, group by group (cog x kg each): packed once and shared between calls when a storage
    /// is given (inference), else read in place and packed block by block inside each product.
    /// </summary>
    private readonly struct ConvWeights<T> where T : unmanaged, INumber<T>
    {
        private readonly T* _w;
        private readonly int _cog, _kg;
        private readonly PackedWeights.Entry? _packed;

        public ConvWeights(T* w, Conv2dGeometry g, Storage? packedFrom)
        {
            _w = w;
            (_cog, _kg) = (g.OutPerGroup, g.InPerGroup * g.KernelH * g.KernelW);
            Config = For(g);
            if (packedFrom != null && _cog > 1)
                _packed = PackedWeights.Get(Config, packedFrom, w, g.Groups, _cog, _kg);
        }

        /// <summary>The GEMM configuration of a convolution: pointwise float32 ones take the deep K blocks (<see cref="Gemm.DeepSingleConfig"/>).</summary>
        public static Gemm.Config<T> For(Conv2dGeometry g) => typeof(T) != typeof(float)
            ? (Gemm.Config<T>)(object)Gemm.DoubleConfigs[0]
            : (Gemm.Config<T>)(object)(g.KernelH * g.KernelW == 1 && Gemm.DeepSingleConfig != null ? Gemm.DeepSingleConfig : Gemm.SingleConfigs[0]);

        public Gemm.Config<T> Config { get; }

        /// <summary>C (cog x n) = W_grp (cog x kg) x B (kg x n), then the epilogue.</summary>
        public void Multiply<TB>(int grp, int n, in TB b, in Gemm.Output<T> c, in Gemm.Epilogue<T> fusion, int threads) where TB : struct, Gemm.IPanelB<T>
        {
            if (_packed != null)
            {
                var a = new Gemm.PackedA<T>((T*)_packed.Packed + grp * _packed.GroupStride, (_cog + Config.MR - 1) / Config.MR * Config.MR);
                Gemm.Run(Config, _cog, n, _kg, a, b, c, fusion, false, threads);
            }
            else
            {
                Gemm.Run(Config, _cog, n, _kg, new Gemm.StridedA<T>(_w + (long)grp * _cog * _kg, _kg, 1), b, c, fusion, false, threads);
            }
        }

        /// <summary>Keeps the packed weight alive until the products that read it are done.</summary>
        public void KeepAlive() => GC.KeepAlive(_packed);
    }

    /// <summary>
    /// The pointwise forward of image n with <paramref name="threads"/> threads (1: everything on the calling thread):
    /// W x the image as it is, written straight into y.
    /// </summary>
    private static void ForwardImage<T>(T* x, ConvWeights<T> weights, T* bias, T* residual, bool relu, T* y, Conv2dGeometry g, ConvPlan plan, int n, int threads)
        where T : unmanaged, INumber<T>
    {
        int L = g.OutPlane, cog = g.OutPerGroup, kg = g.InPerGroup;
        double macsPerGroup = (double)cog * kg * plan.MaxColumns(g);
        T* xn = x + (long)n * g.InChannels * g.InPlane;
        long at = (long)n * g.OutChannels * L;
        ForEachGroup(g, macsPerGroup, threads, (grp, t) =>
            weights.Multiply(grp, L, new Gemm.StridedB<T>(xn + (long)grp * kg * L, L, 1), new Gemm.Output<T>(y + at + (long)grp * cog * L, L),
                Fusion(bias, residual, relu, grp, g, at), t));
    }

    /// <summary>Rows [Cout, cnt*L] from gy[n0 .. n0+cnt] laid out [cnt, Cout, L].</summary>
    private static void ImagesToRows<T>(T* gy, T* rows, Conv2dGeometry g, int n0, int cnt) where T : unmanaged
    {
        int L = g.OutPlane, cout = g.OutChannels;
        long cols = (long)cnt * L;
        Chunked((long)cnt * cout, Math.Max(1, 16384 / Math.Max(1, L)), (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                long n = p / cout, c = p % cout;
                new ReadOnlySpan<T>(gy + ((n0 + n) * cout + c) * L, L).CopyTo(new Span<T>(rows + c * cols + n * L, L));
            }
        });
    }

    /// <summary>
    /// Unfolds output rows [r0, r1) of images n0 .. n0+cnt of x into columns [C*kH*kW, cnt*(r1-r0)*OW] (the layout of
    /// <see cref="IBackend.Im2Col"/> restricted to those rows), one (row, image) pair per work item.
    /// </summary>
    private static void Im2ColFor<T>(T* x, T* col, Conv2dGeometry g, int n0, int cnt, int r0, int r1, bool parallel) where T : unmanaged, INumber<T>
    {
        int kk = g.KernelH * g.KernelW, H = g.Height, W = g.Width, OW = g.OutWidth;
        long span = (long)(r1 - r0) * OW, cols = cnt * span;
        Run(parallel, (long)g.ColumnRows * cnt, Math.Max(1, 16384 / Math.Max(1, span)), (s, e) =>
        {
            for (long item = s; item < e; item++)
            {
                int r = (int)(item / cnt), n = (int)(item % cnt);
                int c = r / kk, i = r / g.KernelW % g.KernelH, j = r % g.KernelW;
                T* dst = col + r * cols + n * span;
                T* src = x + ((long)(n0 + n) * g.InChannels + c) * H * W;
                if (g.IsPointwise)
                {
                    // 1x1, stride 1, no padding: the rows are the plane's own, contiguous.
                    new ReadOnlySpan<T>(src + (long)r0 * W, (int)span).CopyTo(new Span<T>(dst, (int)span));
                    continue;
                }
                int offW = j * g.DilationW - g.PadW;
                var (lo, hi) = ValidRange(OW, g.StrideW, offW, W);
                for (int oh = r0; oh < r1; oh++)
                {
                    T* d = dst + (long)(oh - r0) * OW;
                    int ih = oh * g.StrideH - g.PadH + i * g.DilationH;
                    if ((uint)ih >= (uint)H)
                    {
                        new Span<T>(d, OW).Clear();
                        continue;
                    }
                    T* srow = src + (long)ih * W + offW;
                    if (OW <= 32)
                    {
                        // Short rows (late stages): plain loops beat the span calls' set-up.
                        int ow = 0;
                        for (; ow < lo; ow++) d[ow] = T.Zero;
                        if (g.StrideW == 1)
                        {
                            if (Vector256.IsHardwareAccelerated)
                                for (; ow <= hi - Vector256<T>.Count; ow += Vector256<T>.Count)
                                    Vector256.Store(Vector256.Load(srow + ow), d + ow);
                            for (; ow < hi; ow++) d[ow] = srow[ow];
                        }
                        else
                            for (; ow < hi; ow++) d[ow] = srow[(long)ow * g.StrideW];
                        for (; ow < OW; ow++) d[ow] = T.Zero;
                        continue;
                    }
                    if (lo > 0) new Span<T>(d, lo).Clear();
                    if (g.StrideW == 1)
                        new ReadOnlySpan<T>(srow + lo, hi - lo).CopyTo(new Span<T>(d + lo, hi - lo));
                    else if (g.StrideW == 2)
                        GatherEven(d, srow, lo, hi, W - 1 - offW);
                    else
                        for (int ow = lo; ow < hi; ow++) d[ow] = srow[(long)ow * g.StrideW];
                    if (hi < OW) new Span<T>(d + hi, OW - hi).Clear();
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------------
    // Backward
    // ------------------------------------------------------------------------------------------------

    private static void ConvGradInput<T>(T* gy, T* w, T* gx, Conv2dGeometry g) where T : unmanaged, INumber<T>
    {
        var plan = new ConvPlan(g);
        if (plan.Depthwise)
        {
            DepthwiseGradInput(gy, w, gx, g);
            return;
        }
        if (ImagesInParallel(g, plan))
        {
            Chunked(g.Batch, 1, (s, e) =>
            {
                using var col = new Scratch<T>(plan.Direct ? 0 : (long)g.ColumnRows * plan.MaxColumns(g));
                for (long n = s; n < e; n++) GradInputImage(gy, w, gx, g, plan, (int)n, col.Pointer, 1);
            });
            return;
        }
        if (plan.Images == 1)
        {
            using var col = new Scratch<T>(plan.Direct ? 0 : (long)g.ColumnRows * plan.MaxColumns(g));
            for (int n = 0; n < g.Batch; n++) GradInputImage(gy, w, gx, g, plan, n, col.Pointer, CpuParallel.Threads);
            return;
        }

        int L = g.OutPlane, cog = g.OutPerGroup, kg = g.InPerGroup * g.KernelH * g.KernelW;
        long maxCols = plan.MaxColumns(g);
        double macsPerGroup = (double)cog * kg * maxCols;
        using var col0 = new Scratch<T>((long)g.ColumnRows * maxCols);
        using var rows = new Scratch<T>(g.OutChannels * maxCols);
        T* cp = col0.Pointer, rp = rows.Pointer;
        for (int n0 = 0; n0 < g.Batch; n0 += plan.Images)
        {
            int cnt = Math.Min(plan.Images, g.Batch - n0);
            long cols = (long)cnt * L;
            ImagesToRows(gy, rp, g, n0, cnt);
            ForEachGroup(g, macsPerGroup, CpuParallel.Threads, (grp, threads) =>
                GemmT(kg, (int)cols, cog, w + (long)grp * cog * kg, 1, kg, rp + (long)grp * cog * cols, cols, 1, cp + (long)grp * kg * cols, cols, false, threads));
            Col2ImFor(cp, gx, g, n0, cnt, 0, g.OutHeight, true);
        }
    }

    /// <summary>The input gradient of image n, band by band: columns = W^T x gy band, folded back (col2im).</summary>
    private static void GradInputImage<T>(T* gy, T* w, T* gx, Conv2dGeometry g, ConvPlan plan, int n, T* cp, int threads)
        where T : unmanaged, INumber<T>
    {
        int L = g.OutPlane, cog = g.OutPerGroup, kg = g.InPerGroup * g.KernelH * g.KernelW;
        double macsPerGroup = (double)cog * kg * plan.MaxColumns(g);
        T* gyn = gy + (long)n * g.OutChannels * L;
        if (plan.Direct)
        {
            // gx_g [Cin/G, L] = W_g^T [Cin/G, Cout/G] x gy_g [Cout/G, L].
            T* gxn = gx + (long)n * g.InChannels * g.InPlane;
            ForEachGroup(g, macsPerGroup, threads, (grp, t) =>
                GemmT(kg, L, cog, w + (long)grp * cog * kg, 1, kg, gyn + (long)grp * cog * L, L, 1, gxn + (long)grp * kg * L, L, false, t));
            return;
        }
        for (int r0 = 0; r0 < g.OutHeight; r0 += plan.Rows)
        {
            int r1 = Math.Min(g.OutHeight, r0 + plan.Rows);
            long cols = (long)(r1 - r0) * g.OutWidth;
            T* source = gyn + (long)r0 * g.OutWidth;
            ForEachGroup(g, macsPerGroup, threads, (grp, t) =>
                GemmT(kg, (int)cols, cog, w + (long)grp * cog * kg, 1, kg, source + (long)grp * cog * L, L, 1, cp + (long)grp * kg * cols, cols, false, t));
            Col2ImFor(cp, gx, g, n, 1, r0, r1, threads > 1);
        }
    }

    private static void ConvGradWeight<T>(T* x, T* gy, T* gw, Conv2dGeometry g) where T : unmanaged, INumber<T>
    {
        var plan = new ConvPlan(g);
        if (plan.Depthwise)
        {
            DepthwiseGradWeight(x, gy, gw, g);
            return;
        }
        if (plan.Images == 1)
        {
            // A fixed split of the images into parts, each summing into its own buffer (part 0 into gw), then the parts
            // added in order: the same sums whether the parts run on separate threads or one after another.
            long wsize = (long)g.OutChannels * g.InPerGroup * g.KernelH * g.KernelW;
            int parts = Math.Max(1, Math.Min(g.Batch, 4));
            using var partial = new Scratch<T>((parts - 1) * wsize);
            T* pp = partial.Pointer;
            void Part(int part, int threads)
            {
                int n0 = (int)((long)g.Batch * part / parts), n1 = (int)((long)g.Batch * (part + 1) / parts);
                T* target = part == 0 ? gw : pp + (part - 1) * wsize;
                using var col = new Scratch<T>(plan.Direct ? 0 : (long)g.ColumnRows * plan.MaxColumns(g));
                for (int n = n0; n < n1; n++) GradWeightImage(x, gy, target, g, plan, n, col.Pointer, threads, accumulate: n > n0);
            }
            if (ImagesInParallel(g, plan))
                WorkerPool.Run(parts, CpuParallel.Threads, part => Part(part, 1));
            else
                for (int part = 0; part < parts; part++) Part(part, CpuParallel.Threads);
            for (int part = 1; part < parts; part++) AddTo(gw, pp + (part - 1) * wsize, (int)wsize);
            return;
        }

        int L = g.OutPlane, cog = g.OutPerGroup, kg = g.InPerGroup * g.KernelH * g.KernelW;
        long maxCols = plan.MaxColumns(g);
        double macsPerGroup = (double)cog * kg * maxCols;
        using var col0 = new Scratch<T>((long)g.ColumnRows * maxCols);
        using var rows = new Scratch<T>(g.OutChannels * maxCols);
        T* cp = col0.Pointer, rp = rows.Pointer;
        for (int n0 = 0; n0 < g.Batch; n0 += plan.Images)
        {
            int cnt = Math.Min(plan.Images, g.Batch - n0);
            long cols = (long)cnt * L;
            Im2ColFor(x, cp, g, n0, cnt, 0, g.OutHeight, true);
            ImagesToRows(gy, rp, g, n0, cnt);
            bool acc = n0 > 0;
            ForEachGroup(g, macsPerGroup, CpuParallel.Threads, (grp, threads) =>
                GemmT(cog, kg, (int)cols, rp + (long)grp * cog * cols, cols, 1, cp + (long)grp * kg * cols, 1, cols, gw + (long)grp * cog * kg, kg, acc, threads));
        }
    }

    /// <summary>gw (+)= the weight gradient of image n, band by band: gy band x columns^T.</summary>
    private static void GradWeightImage<T>(T* x, T* gy, T* gw, Conv2dGeometry g, ConvPlan plan, int n, T* cp, int threads, bool accumulate)
        where T : unmanaged, INumber<T>
    {
        int L = g.OutPlane, cog = g.OutPerGroup, kg = g.InPerGroup * g.KernelH * g.KernelW;
        double macsPerGroup = (double)cog * kg * plan.MaxColumns(g);
        T* gyn = gy + (long)n * g.OutChannels * L;
        if (plan.Direct)
        {
            // gw_g [Cout/G, Cin/G] (+)= gy_g [Cout/G, L] x x_g^T [L, Cin/G].
            T* xn = x + (long)n * g.InChannels * g.InPlane;
            ForEachGroup(g, macsPerGroup, threads, (grp, t) =>
                GemmT(cog, kg, L, gyn + (long)grp * cog * L, L, 1, xn + (long)grp * kg * L, 1, L, gw + (long)grp * cog * kg, kg, accumulate, t));
            return;
        }
        for (int r0 = 0; r0 < g.OutHeight; r0 += plan.Rows)
        {
            int r1 = Math.Min(g.OutHeight, r0 + plan.Rows);
            long cols = (long)(r1 - r0) * g.OutWidth;
            Im2ColFor(x, cp, g, n, 1, r0, r1, threads > 1);
            T* source = gyn + (long)r0 * g.OutWidth;
            bool acc = accumulate || r0 > 0;
            ForEachGroup(g, macsPerGroup, threads, (grp, t) =>
                GemmT(cog, kg, (int)cols, source + (long)grp * cog * L, L, 1, cp + (long)grp * kg * cols, 1, cols, gw + (long)grp * cog * kg, kg, acc, t));
        }
    }

    /// <summary>
    /// Folds the columns of output rows [r0, r1) of images n0 .. n0+cnt back into those images of x: overwriting them
    /// when r0 is 0, adding to them otherwise (bands are folded in order). Each (image, channel) plane is owned by one
    /// work item and sums its taps in a fixed order, so the result does not depend on threading.
    /// </summary>
    private static void Col2ImFor<T>(T* col, T* x, Conv2dGeometry g, int n0, int cnt, int r0, int r1, bool parallel) where T : unmanaged, INumber<T>
    {
        int H = g.Height, W = g.Width, OW = g.OutWidth;
        long span = (long)(r1 - r0) * OW, cols = cnt * span;
        Run(parallel, (long)cnt * g.InChannels, Math.Max(1, 16384 / Math.Max(1, g.InPlane)), (s, e) =>
        {
            for (long item = s; item < e; item++)
            {
                int n = (int)(item / g.InChannels), c = (int)(item % g.InChannels);
                T* dst = x + ((long)(n0 + n) * g.InChannels + c) * H * W;
                if (r0 == 0) new Span<T>(dst, H * W).Clear();
                for (int i = 0; i < g.KernelH; i++)
                {
                    for (int j = 0; j < g.KernelW; j++)
                    {
                        T* src = col + ((long)(c * g.KernelH + i) * g.KernelW + j) * cols + n * span;
                        int offW = j * g.DilationW - g.PadW;
                        var (lo, hi) = ValidRange(OW, g.StrideW, offW, W);
                        if (hi <= lo) continue;
                        for (int oh = r0; oh < r1; oh++)
                        {
                            int ih = oh * g.StrideH - g.PadH + i * g.DilationH;
                            if ((uint)ih >= (uint)H) continue;
                            T* drow = dst + (long)ih * W + offW;
                            T* srow = src + (long)(oh - r0) * OW;
                            if (g.StrideW == 1) AddTo(drow + lo, srow + lo, hi - lo);
                            else
                                for (int ow = lo; ow < hi; ow++) drow[(long)ow * g.StrideW] += srow[ow];
                        }
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------------
    // Depthwise (one input channel per group): direct loops, vectorised along rows when the stride is 1
    // ------------------------------------------------------------------------------------------------

    private static void DepthwiseForward<T>(T* x, T* w, T* bias, T* y, Conv2dGeometry g) where T : unmanaged, INumber<T>
    {
        int H = g.Height, W = g.Width, OH = g.OutHeight, OW = g.OutWidth, cog = g.OutPerGroup, kk = g.KernelH * g.KernelW;
        Chunked((long)g.Batch * g.OutChannels, Math.Max(1, 8192 / Math.Max(1, g.OutPlane * kk)), (s, e) =>
        {
            for (long item = s; item < e; item++)
            {
                int n = (int)(item / g.OutChannels), co = (int)(item % g.OutChannels), ci = co / cog;
                T* src = x + ((long)n * g.InChannels + ci) * H * W;
                T* dst = y + item * g.OutPlane;
                T* wk = w + (long)co * kk;
                new Span<T>(dst, g.OutPlane).Fill(bias != null ? bias[co] : T.Zero);
                for (int oh = 0; oh < OH; oh++)
                {
                    T* drow = dst + (long)oh * OW;
                    for (int i = 0; i < g.KernelH; i++)
                    {
                        int ih = oh * g.StrideH - g.PadH + i * g.DilationH;
                        if ((uint)ih >= (uint)H) continue;
                        for (int j = 0; j < g.KernelW; j++)
                        {
                            int offW = j * g.DilationW - g.PadW;
                            var (lo, hi) = ValidRange(OW, g.StrideW, offW, W);
                            T* srow = src + (long)ih * W + offW;
                            T wv = wk[i * g.KernelW + j];
                            if (g.StrideW == 1) Axpy(drow + lo, srow + lo, wv, hi - lo);
                            else
                                for (int ow = lo; ow < hi; ow++) drow[ow] += wv * srow[(long)ow * g.StrideW];
                        }
                    }
                }
            }
        });
    }

    private static void DepthwiseGradInput<T>(T* gy, T* w, T* gx, Conv2dGeometry g) where T : unmanaged, INumber<T>
    {
        int H = g.Height, W = g.Width, OH = g.OutHeight, OW = g.OutWidth, cog = g.OutPerGroup, kk = g.KernelH * g.KernelW;
        Chunked((long)g.Batch * g.InChannels, Math.Max(1, 8192 / Math.Max(1, g.OutPlane * kk * cog)), (s, e) =>
        {
            for (long item = s; item < e; item++)
            {
                int n = (int)(item / g.InChannels), ci = (int)(item % g.InChannels);
                T* dst = gx + item * H * W;
                new Span<T>(dst, H * W).Clear();
                for (int co = ci * cog; co < (ci + 1) * cog; co++)
                {
                    T* src = gy + ((long)n * g.OutChannels + co) * g.OutPlane;
                    T* wk = w + (long)co * kk;
                    for (int oh = 0; oh < OH; oh++)
                    {
                        T* srow = src + (long)oh * OW;
                        for (int i = 0; i < g.KernelH; i++)
                        {
                            int ih = oh * g.StrideH - g.PadH + i * g.DilationH;
                            if ((uint)ih >= (uint)H) continue;
                            for (int j = 0; j < g.KernelW; j++)
                            {
                                int offW = j * g.DilationW - g.PadW;
                                var (lo, hi) = ValidRange(OW, g.StrideW, offW, W);
                                T* drow = dst + (long)ih * W + offW;
                                T wv = wk[i * g.KernelW + j];
                                if (g.StrideW == 1) Axpy(drow + lo, srow + lo, wv, hi - lo);
                                else
                                    for (int ow = lo; ow < hi; ow++) drow[(long)ow * g.StrideW] += wv * srow[ow];
                            }
                        }
                    }
                }
            }
        });
    }

    private static void DepthwiseGradWeight<T>(T* x, T* gy, T* gw, Conv2dGeometry g) where T : unmanaged, INumber<T>
    {
        int H = g.Height, W = g.Width, OH = g.OutHeight, OW = g.OutWidth, cog = g.OutPerGroup, kk = g.KernelH * g.KernelW;
        Chunked(g.OutChannels, Math.Max(1, 8192 / Math.Max(1, g.Batch * g.OutPlane * kk)), (s, e) =>
        {
            for (long co = s; co < e; co++)
            {
                long ci = co / cog;
                for (int i = 0; i < g.KernelH; i++)
                {
                    for (int j = 0; j < g.KernelW; j++)
                    {
                        int offW = j * g.DilationW - g.PadW;
                        var (lo, hi) = ValidRange(OW, g.StrideW, offW, W);
                        T sum = T.Zero;
                        for (int n = 0; n < g.Batch; n++)
                        {
                            T* src = x + ((long)n * g.InChannels + ci) * H * W;
                            T* grow0 = gy + ((long)n * g.OutChannels + co) * g.OutPlane;
                            for (int oh = 0; oh < OH; oh++)
                            {
                                int ih = oh * g.StrideH - g.PadH + i * g.DilationH;
                                if ((uint)ih >= (uint)H) continue;
                                T* srow = src + (long)ih * W + offW;
                                T* grow = grow0 + (long)oh * OW;
                                if (g.StrideW == 1) sum += Dot(grow + lo, srow + lo, hi - lo);
                                else
                                    for (int ow = lo; ow < hi; ow++) sum += grow[ow] * srow[(long)ow * g.StrideW];
                            }
                        }
                        gw[co * kk + i * g.KernelW + j] = sum;
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------------
    // Vector helpers (System.Numerics.Vector<T>: the widest the JIT accelerates, scalar otherwise)
    // ------------------------------------------------------------------------------------------------

    /// <summary>
    /// d[ow] = s[2*ow] for ow in [lo, hi), where s may be read up to index <paramref name="last"/>: 512-bit registers take
    /// the even lanes of two loads at a time (the strided reads of stride-2 unfolding), scalar code the rest.
    /// </summary>
    private static void GatherEven<T>(T* d, T* s, int lo, int hi, long last) where T : unmanaged
    {
        int ow = lo;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            if (typeof(T) == typeof(float))
            {
                var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                float* fd = (float*)d, fs = (float*)s;
                for (; ow + 16 <= hi && 2L * ow + 31 <= last; ow += 16)
                    Avx512F.PermuteVar16x32x2(Vector512.Load(fs + 2L * ow), even, Vector512.Load(fs + 2L * ow + 16)).Store(fd + ow);
            }
            else
            {
                var even = Vector512.Create(0L, 2, 4, 6, 8, 10, 12, 14);
                double* dd = (double*)d, ds = (double*)s;
                for (; ow + 8 <= hi && 2L * ow + 15 <= last; ow += 8)
                    Avx512F.PermuteVar8x64x2(Vector512.Load(ds + 2L * ow), even, Vector512.Load(ds + 2L * ow + 8)).Store(dd + ow);
            }
        }
        for (; ow < hi; ow++) d[ow] = s[2L * ow];
    }

    /// <summary>d[k] += a * s[k].</summary>
    private static void Axpy<T>(T* d, T* s, T a, int n) where T : unmanaged, INumber<T>
    {
        int k = 0;
        if (Vector.IsHardwareAccelerated && n >= Vector<T>.Count)
        {
            var va = new Vector<T>(a);
            for (; k <= n - Vector<T>.Count; k += Vector<T>.Count)
                Vector.Store(Vector.Load(d + k) + va * Vector.Load(s + k), d + k);
        }
        for (; k < n; k++) d[k] += a * s[k];
    }

    /// <summary>d[k] += s[k].</summary>
    private static void AddTo<T>(T* d, T* s, int n) where T : unmanaged, INumber<T>
    {
        int k = 0;
        if (Vector.IsHardwareAccelerated)
            for (; k <= n - Vector<T>.Count; k += Vector<T>.Count)
                Vector.Store(Vector.Load(d + k) + Vector.Load(s + k), d + k);
        for (; k < n; k++) d[k] += s[k];
    }

    /// <summary>d[k] += a.</summary>
    private static void AddScalar<T>(T* d, T a, int n) where T : unmanaged, INumber<T>
    {
        int k = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var va = new Vector<T>(a);
            for (; k <= n - Vector<T>.Count; k += Vector<T>.Count)
                Vector.Store(Vector.Load(d + k) + va, d + k);
        }
        for (; k < n; k++) d[k] += a;
    }

    /// <summary>sum_k a[k] * b[k].</summary>
    private static T Dot<T>(T* a, T* b, int n) where T : unmanaged, INumber<T>
    {
        int k = 0;
        T sum = T.Zero;
        if (Vector.IsHardwareAccelerated && n >= Vector<T>.Count)
        {
            var acc = Vector<T>.Zero;
            for (; k <= n - Vector<T>.Count; k += Vector<T>.Count)
                acc += Vector.Load(a + k) * Vector.Load(b + k);
            sum = Vector.Sum(acc);
        }
        for (; k < n; k++) sum += a[k] * b[k];
        return sum;
    }
}
