using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Runtime.Backends;

namespace Runtime.Cpu;

/// <summary>
/// The pixel-major forward for float32 inference on small maps: the product is computed as
/// <c>Y^T (pixels x Cout) = X_cols^T (pixels x K) W^T (K x Cout)</c>, so the output pixels are the micro-kernel's rows
/// (7 to a sliver) and the output channels its 32-wide columns.
/// <list type="bullet">
/// <item>Why: the channel-major implicit GEMM puts the pixels in 32-wide column slivers; a 7x7 map at batch 1 (49
/// pixels) then pays for 64 columns and a 14x14 map (196) for 224. Every ResNet plane (7, 14, 28, 56, 112) is a multiple
/// of 7, so here nothing is padded.</item>
/// <item>Pixels: each thread packs the pixel panels it multiplies, block by block, straight from the NCHW input: a
/// sliver's row is one masked load of an input row (stride 1, or 2 with the even lanes kept), zeros where the tap
/// falls on padding (<see cref="PackPixelSliver"/>); maps whose width is not a multiple of 7 go through
/// <see cref="ConvColumns{T}"/>.</item>
/// <item>Weights: <c>W^T</c> in the kernel's 32-column slivers, packed on first use and kept with the weight tensor
/// (<see cref="PackedWeights"/>, keyed by its version); so this path is taken by inference calls only.</item>
/// <item>Output: the product lands in a pixels x Cout scratch, and the thread that computed a share transposes it into
/// NCHW (8 x 8 blocks in registers) with the epilogue (bias, residual, ReLU) on the way.</item>
/// <item>Threads: one part per thread, each with its share of the pixels (or of the channels, when the pixel slivers
/// do not share out evenly), so nothing waits between packing, product and transposition.</item>
/// </list>
/// The sums run in the same order as the channel-major path's for non-pointwise convolutions (K blocks of the same
/// depth, one FMA chain per output), so the two give the same float32 results; pointwise ones differ by that path's
/// deeper K blocks (<see cref="Gemm.DeepSingleConfig"/>). <see cref="PixelMajorApplies"/> states when it is taken.
/// </summary>
internal sealed unsafe partial class CpuBackend
{
    /// <summary>The path choice for the pixel-major forward; benchmarks and tests switch it to compare paths.</summary>
    internal static PathPolicy PixelMajor { get; set; } = Environment.GetEnvironmentVariable("RUNTIME_PIXEL_MAJOR") == "0" ? PathPolicy.Off : PathPolicy.Auto;

    private static readonly object PixelMajorKind = "pixel-major W^T";

    /// <summary>Transposing one output element costs about this many multiply-adds of its dot product (measured, 2 cores).</summary>
    private const int TransposeCost = 48;

    /// <summary>
    /// The rule: float32 inference (a weight storage to cache <c>W^T</c> with), one group, AVX-512, a product scratch
    /// within <see cref="SharedColumnsBudget"/>, and a lower estimated cost than the channel-major path's: pixels
    /// rounded up to 7 times channels rounded up to 32 times (K + <see cref="TransposeCost"/>), against pixels rounded up
    /// to 32 times channels rounded up to 8 times K. ResNet-50's batch-1 convolutions on 7x7 and 14x14 maps qualify
    /// (49 pixels: 49 x 512 x (K + 48) against 64 x 512 x K), and its 3x3 stride-2 ones on 28x28 and 14x14 inputs;
    /// shallow pointwise products (K = 256 into 1024 channels on a 14x14 map) and large maps do not (measured in
    /// docs/conv.md).
    /// </summary>
    internal static bool PixelMajorApplies(Conv2dGeometry g, DType dtype, bool inference)
    {
        var cfg = Gemm.PixelMajorConfig;
        if (cfg == null || PixelMajor == PathPolicy.Off || dtype != DType.Float32 || !inference || g.Groups != 1) return false;
        long cols = (long)g.Batch * g.OutPlane;
        if (cols < 1 || g.OutChannels < 1 || g.ColumnRows < 1 || cols * g.OutChannels > SharedColumnsBudget) return false;
        if (PixelMajor == PathPolicy.Always) return true;
        var main = Gemm.SingleConfigs[0];
        int pixels = (int)cols; // within the budget above
        double channelMajor = (double)Gemm.RoundUp(pixels, main.NR) * Gemm.RoundUp(g.OutChannels, main.MR) * g.ColumnRows;
        double pixelMajor = (double)Gemm.RoundUp(pixels, cfg.MR) * Gemm.RoundUp(g.OutChannels, cfg.NR) * (g.ColumnRows + TransposeCost);
        return pixelMajor < channelMajor;
    }

    /// <summary>
    /// The A sliver of the <paramref name="mr"/> output pixels from <paramref name="pixel"/> on (all in one output row)
    /// for the kernel rows [pc, pc + kc): row p holds input row ih, columns iw0 + t*stride of the tap's channel, each
    /// lane zero where that falls on padding. Masked loads read nothing outside the row's valid columns; each row is
    /// stored 8 wide (its extra lane lands on the next row, written after it) except the last.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackPixelSliver(float* dst, float* x, Conv2dGeometry g, int pixel, int pc, int kc, int mr)
    {
        int n = pixel / g.OutPlane, rem = pixel - n * g.OutPlane, oh = rem / g.OutWidth, ow0 = rem - oh * g.OutWidth;
        int kh = g.KernelH, kw = g.KernelW, kk = kh * kw, sw = g.StrideW;
        var lanes = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        // Per kernel tap: where its run starts in the channel's plane, and which lanes of the load are wanted (lane l
        // is column iw0 + l, wanted for l = t*stride, t < mr, inside the image; none when the row is outside).
        int* tapOff = stackalloc int[kk];
        Vector512<float>* tapMask = stackalloc Vector512<float>[kk];
        var wanted = Vector512.LessThan(lanes, Vector512.Create(mr * sw)) & Vector512.Equals(lanes & Vector512.Create(sw - 1), Vector512<int>.Zero);
        for (int i = 0, t = 0; i < kh; i++)
        {
            int ih = oh * g.StrideH - g.PadH + i * g.DilationH;
            bool rowInside = (uint)ih < (uint)g.Height;
            for (int j = 0; j < kw; j++, t++)
            {
                int iw0 = ow0 * sw - g.PadW + j * g.DilationW;
                var col = lanes + Vector512.Create(iw0);
                var inside = Vector512.GreaterThanOrEqual(col, Vector512<int>.Zero) & Vector512.LessThan(col, Vector512.Create(g.Width));
                tapOff[t] = rowInside ? ih * g.Width + iw0 : 0;
                tapMask[t] = rowInside ? (wanted & inside).AsSingle() : Vector512<float>.Zero;
            }
        }
        float* plane = x + ((long)n * g.InChannels + pc / kk) * g.InPlane;
        int tap = pc % kk;
        long inPlane = g.InPlane;
        var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
        // Each row is stored 8 wide (its extra lane lands on the next row, written after it), the last one masked.
        Vector512<float> v;
        int p = 0;
        for (; p < kc - 1; p++)
        {
            v = Avx512F.MaskLoad(plane + tapOff[tap], tapMask[tap], Vector512<float>.Zero);
            if (sw == 2) v = Avx512F.PermuteVar16x32(v, even);
            v.GetLower().Store(dst + (long)p * mr);
            if (++tap == kk)
            {
                tap = 0;
                plane += inPlane;
            }
        }
        v = Avx512F.MaskLoad(plane + tapOff[tap], tapMask[tap], Vector512<float>.Zero);
        if (sw == 2) v = Avx512F.PermuteVar16x32(v, even);
        Avx512F.MaskStore(dst + (long)p * mr, Vector512.LessThan(lanes, Vector512.Create(mr)).AsSingle(), v);
    }

    /// <summary>y = conv(x, w) (+ bias) (+ residual), then ReLU when asked. Caller checked <see cref="PixelMajorApplies"/>.</summary>
    private static void PixelMajorForward(float* x, float* w, float* bias, float* residual, bool relu, float* y, Conv2dGeometry g, Storage weightStorage)
    {
        var cfg = Gemm.PixelMajorConfig!;
        int mr = cfg.MR, nr = cfg.NR;
        int cout = g.OutChannels, k = g.ColumnRows, L = g.OutPlane, cols = g.Batch * L;
        int nPadded = Gemm.RoundUp(cout, nr);

        // W^T (k x cout) in B slivers, cached with the weight.
        var packedWeight = PackedWeights.Derived<float>(weightStorage, w, cout, k, (PixelMajorKind, cfg), Gemm.PackedLengthB(cfg, k, cout), p =>
        {
            var wt = new Gemm.StridedB<float>(w, 1, k);
            int kBlocks = (k + Gemm.KBlock(cfg, k) - 1) / Gemm.KBlock(cfg, k);
            for (int kb = 0; kb < kBlocks; kb++)
                Gemm.PackWholeB(cfg, wt, (float*)p, k, cout, kb, 0, nPadded / nr);
        });
        var weights = new Gemm.PackedB<float>((float*)packedWeight.Packed, nPadded);

        // One part per thread, each running the whole product on its share of the pixels (or, when the pixels are too
        // few slivers to share evenly, of the channels) and then transposing that share into y: no step waits for
        // another thread, and each part packs its pixel panels block by block into its own cache.
        using var product = new Scratch<float>((long)cols * cout);
        float* yt = product.Pointer;
        int threads = CpuParallel.Threads, mSlivers = (cols + mr - 1) / mr, nSlivers = nPadded / nr;
        bool byPixels = mSlivers % threads == 0 || mSlivers >= 4 * threads || nSlivers < threads;
        int parts = Math.Max(1, Math.Min(threads, byPixels ? mSlivers : nSlivers));
        bool direct = g.OutWidth % mr == 0 && mr <= 8 && (g.StrideW == 1 || g.StrideW == 2) && g.KernelH * g.KernelW <= 64;
        var epilogue = new Gemm.Epilogue<float>(bias, residual, relu);
        Chunked(parts, 1, (s, e) =>
        {
            for (long part = s; part < e; part++)
            {
                int total = byPixels ? mSlivers : nSlivers, unit = byPixels ? mr : nr, extent = byPixels ? cols : cout;
                int lo = (int)(total * part / parts) * unit, hi = Math.Min(extent, (int)(total * (part + 1) / parts) * unit);
                if (hi <= lo) continue;
                (int m0, int m1, int j0, int j1) = byPixels ? (lo, hi, 0, cout) : (0, cols, lo, hi);
                var output = new Gemm.Output<float>(yt + (long)m0 * cout + j0, cout);
                var b = new ColumnsFrom(weights, j0);
                if (direct)
                    Gemm.Run(cfg, m1 - m0, j1 - j0, k, new PixelPanel(x, g, m0), b, output, default, false, 1);
                else
                    Gemm.Run(cfg, m1 - m0, j1 - j0, k, new ColumnsPanel(new ConvColumns<float>(x, g), m0), b, output, default, false, 1);
                TransposeOut(yt, y, g, epilogue, m0, m1, j0, j1);
            }
        });
        GC.KeepAlive(packedWeight);
    }

    /// <summary>
    /// y[n, c, q] = yt[n*L + q, c] for the pixels [m0, m1) and channels [j0, j1), then the epilogue (the residual laid
    /// out like y).
    /// </summary>
    private static void TransposeOut(float* yt, float* y, Conv2dGeometry g, in Gemm.Epilogue<float> epilogue, int m0, int m1, int j0, int j1)
    {
        int L = g.OutPlane, cout = g.OutChannels;
        float* res = epilogue.Residual, bias = epilogue.Bias;
        bool relu = epilogue.Relu;
        float* b8 = stackalloc float[8];
        for (int pixel = m0; pixel < m1;)
        {
            int n = pixel / L, q0 = pixel - n * L, q1 = Math.Min(L, q0 + (m1 - pixel));
            long at = (long)n * cout * L;
            float* src = yt + (long)(pixel - q0) * cout; // yt at (image n, pixel 0)
            int c = j0;
            if (Avx.IsSupported)
            {
                for (; c + 8 <= j1; c += 8)
                {
                    for (int t = 0; t < 8; t++) b8[t] = bias == null ? 0f : bias[c + t];
                    int q = q0;
                    for (; q + 8 <= q1; q += 8)
                        Transpose8x8(src + (long)q * cout + c, cout, y + at + (long)c * L + q, res == null ? null : res + at + (long)c * L + q, L, b8, relu);
                    for (int t = 0; t < 8 && q < q1; t++)
                        TransposeRow(src + (long)q * cout + c + t, cout, y + at + (long)(c + t) * L + q, res == null ? null : res + at + (long)(c + t) * L + q, b8[t], relu, q1 - q);
                }
            }
            for (; c < j1; c++)
                TransposeRow(src + (long)q0 * cout + c, cout, y + at + (long)c * L + q0, res == null ? null : res + at + (long)c * L + q0,
                    bias == null ? 0f : bias[c], relu, q1 - q0);
            pixel += q1 - q0;
        }
    }

    /// <summary>
    /// d[t*ld + i] = s[i*lds + t] + bias[t] (+ r[t*ld + i]), then ReLU, for an 8 x 8 block: eight rows loaded, transposed
    /// in registers, eight rows stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* s, int lds, float* d, float* r, int ld, float* bias, bool relu)
    {
        var r0 = Vector256.Load(s); var r1 = Vector256.Load(s + lds);
        var r2 = Vector256.Load(s + 2L * lds); var r3 = Vector256.Load(s + 3L * lds);
        var r4 = Vector256.Load(s + 4L * lds); var r5 = Vector256.Load(s + 5L * lds);
        var r6 = Vector256.Load(s + 6L * lds); var r7 = Vector256.Load(s + 7L * lds);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Finish(Avx.Permute2x128(u0, u4, 0x20), 0);
        Finish(Avx.Permute2x128(u1, u5, 0x20), 1);
        Finish(Avx.Permute2x128(u2, u6, 0x20), 2);
        Finish(Avx.Permute2x128(u3, u7, 0x20), 3);
        Finish(Avx.Permute2x128(u0, u4, 0x31), 4);
        Finish(Avx.Permute2x128(u1, u5, 0x31), 5);
        Finish(Avx.Permute2x128(u2, u6, 0x31), 6);
        Finish(Avx.Permute2x128(u3, u7, 0x31), 7);

        void Finish(Vector256<float> v, int t)
        {
            v += Vector256.Create(bias[t]);
            if (r != null) v += Vector256.Load(r + (long)t * ld);
            if (relu) v = Vector256.Max(v, Vector256<float>.Zero);
            v.Store(d + (long)t * ld);
        }
    }

    /// <summary>d[p] = src[p*ld] + bias (+ r[p]), then ReLU (NaN stays NaN), for p &lt; count.</summary>
    private static void TransposeRow(float* src, int ld, float* d, float* r, float bias, bool relu, int count)
    {
        for (int p = 0; p < count; p++)
        {
            float v = src[(long)p * ld] + bias;
            if (r != null) v += r[p];
            if (relu && !(v > 0f || float.IsNaN(v))) v = 0f;
            d[p] = v;
        }
    }

    /// <summary>The pixel panel when every sliver lies in one output row (<see cref="PackPixelSliver"/>), from pixel m0 on.</summary>
    private readonly struct PixelPanel(float* x, Conv2dGeometry g, int m0) : Gemm.IPanelA<float>
    {
        public float* Panel(float* buffer, int ic, int mc, int pc, int kc, int mr)
        {
            for (int r = 0; r < mc; r += mr)
                PackPixelSliver(buffer + (long)r * kc, x, g, m0 + ic + r, pc, kc, mr);
            return buffer;
        }
    }

    /// <summary>The pixel panel of any convolution, packed by <see cref="ConvColumns{T}"/> into slivers of mr columns, from pixel m0 on.</summary>
    private readonly struct ColumnsPanel(ConvColumns<float> columns, int m0) : Gemm.IPanelA<float>
    {
        public float* Panel(float* buffer, int ic, int mc, int pc, int kc, int mr) => columns.Block(buffer, pc, kc, m0 + ic, mc, mr);
    }

    /// <summary>The packed W^T from column j0 on.</summary>
    private readonly struct ColumnsFrom(Gemm.PackedB<float> weights, int j0) : Gemm.IPanelB<float>
    {
        public float* Block(float* buffer, int pc, int kc, int jc, int nc, int nr) => weights.Block(buffer, pc, kc, j0 + jc, nc, nr);
    }
}
