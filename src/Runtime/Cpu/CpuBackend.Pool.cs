using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Runtime.Backends;

namespace Runtime.Cpu;

// Pooling and resampling: parallel over planes, each plane done by one thread, so every backward pass
// adds into an input-gradient plane in a fixed order and is deterministic.
internal sealed unsafe partial class CpuBackend
{
    /// <summary>Planes per parallel piece: about 32K window reads each.</summary>
    private static long PlaneGrain(long workPerPlane) => Math.Max(1, (1L << 15) / Math.Max(1, workPerPlane));

    /// <summary>First and one-past-last kernel tap of an axis that land inside [0, size) for a window starting at <paramref name="start"/>.</summary>
    private static (int First, int End) Taps(int start, int kernel, int dilation, int size)
    {
        int first = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
        int end = start >= size ? 0 : Math.Min(kernel, (size - start + dilation - 1) / dilation);
        return (first, Math.Max(first, end));
    }

    public void MaxPool2d(TensorView x, TensorView y, TensorView indices, PoolWindow window)
    {
        if (x.DType == DType.Float32) MaxPoolFor<float>(x, y, indices, window);
        else MaxPoolFor<double>(x, y, indices, window);
    }

    private static void MaxPoolFor<T>(TensorView x, TensorView y, TensorView indices, PoolWindow win) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int planes = x.Shape[0], h = x.Shape[1], w = x.Shape[2], oh = y.Shape[1], ow = y.Shape[2];
        long plane = (long)h * w;
        nint px = Ptr(x), py = Ptr(y), pi = Ptr(indices);
        // Per kernel column: the output columns whose tap lands inside the input; per output column the
        // first such tap (the index torch reports for a window of -inf).
        var jFirst = new int[win.KernelW];
        var jEnd = new int[win.KernelW];
        for (int kw = 0; kw < win.KernelW; kw++)
        {
            int off = kw * win.DilationW - win.PadW;
            // j*s + off in [0, w)  <=>  j in [ceil(-off / s), ceil((w - off) / s)).
            jFirst[kw] = Math.Clamp(CeilDiv(-off, win.StrideW), 0, ow);
            jEnd[kw] = Math.Clamp(CeilDiv(w - off, win.StrideW), jFirst[kw], ow);
        }
        var firstCol = new int[ow];
        for (int j = 0; j < ow; j++)
        {
            int ws = j * win.StrideW - win.PadW;
            firstCol[j] = ws + Taps(ws, win.KernelW, win.DilationW, w).First * win.DilationW;
        }
        // Float32 planes that int32 can index take the SIMD row kernel.
        bool simd = typeof(T) == typeof(float) && plane < int.MaxValue / 2;
        CpuParallel.For(planes, PlaneGrain((long)oh * ow * win.KernelH * win.KernelW), (s, e) =>
        {
            var bestBuf = new T[ow];
            var atBuf = new long[ow];
            var at32Buf = new int[ow];
            fixed (T* best = bestBuf)
            fixed (long* at = atBuf)
            fixed (int* at32 = at32Buf)
            {
                for (long p = s; p < e; p++)
                {
                    T* xp = (T*)px + p * plane;
                    T* yp = (T*)py + p * oh * ow;
                    long* ip = (long*)pi + p * oh * ow;
                    for (int i = 0; i < oh; i++)
                    {
                        int hs = i * win.StrideH - win.PadH;
                        var (kh0, kh1) = Taps(hs, win.KernelH, win.DilationH, h);
                        long firstRow = (long)(hs + kh0 * win.DilationH) * w;
                        for (int j = 0; j < ow; j++)
                        {
                            best[j] = T.NegativeInfinity;
                            at[j] = firstRow + firstCol[j];
                            at32[j] = (int)at[j];
                        }
                        // Taps in window scan order (rows, then columns), each for all output columns at once.
                        for (int kh = kh0; kh < kh1; kh++)
                        {
                            long rowStart = (long)(hs + kh * win.DilationH) * w;
                            for (int kw = 0; kw < win.KernelW; kw++)
                            {
                                long off = rowStart + kw * win.DilationW - win.PadW;
                                if (simd) MaxTapRowF32((float*)xp, plane, (int)off, win.StrideW, jFirst[kw], jEnd[kw], (float*)best, at32);
                                else MaxTapRow(xp, off, win.StrideW, jFirst[kw], jEnd[kw], best, at);
                            }
                        }
                        T* yr = yp + (long)i * ow;
                        long* ir = ip + (long)i * ow;
                        for (int j = 0; j < ow; j++)
                        {
                            yr[j] = best[j];
                            ir[j] = simd ? at32[j] : at[j];
                        }
                    }
                }
            }
        });
    }

    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -(-a / b);

    /// <summary>Folds tap x[off + j*stride] into the running maximum of output columns [j0, j1): the first maximum wins, a NaN always takes over.</summary>
    private static void MaxTapRow<T>(T* xp, long off, int stride, int j0, int j1, T* best, long* at) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int j = j0; j < j1; j++)
        {
            long q = off + (long)j * stride;
            T v = xp[q];
            if (v > best[j] || T.IsNaN(v))
            {
                best[j] = v;
                at[j] = q;
            }
        }
    }

    /// <summary>
    /// <see cref="MaxTapRow{T}"/> for Float32 with int32 positions: 16 or 8 output columns per step for
    /// strides 1 and 2 (stride 2 de-interleaves two loads), then 8, then scalar for the rest and other strides. Loads stay
    /// inside the plane of <paramref name="plane"/> elements.
    /// </summary>
    private static void MaxTapRowF32(float* xp, long plane, int off, int stride, int j0, int j1, float* best, int* at)
    {
        int j = j0;
        if (stride <= 2 && Avx512F.IsSupported)
        {
            var step = Vector512.Create(16 * stride);
            var q = Vector512.Create(off + j * stride) + Vector512<int>.Indices * Vector512.Create(stride);
            var evens = Vector512<int>.Indices * Vector512.Create(2);
            for (; j + 16 <= j1 && off + (long)j * stride + 16 * stride <= plane; j += 16, q += step)
            {
                float* src = xp + off + (long)j * stride;
                var v = stride == 1 ? Vector512.Load(src) : Avx512F.PermuteVar16x32x2(Vector512.Load(src), evens, Vector512.Load(src + 16));
                var b = Vector512.Load(best + j);
                var take = Vector512.GreaterThan(v, b) | ~Vector512.Equals(v, v);
                Vector512.ConditionalSelect(take, v, b).Store(best + j);
                Vector512.ConditionalSelect(take.AsInt32(), q, Vector512.Load(at + j)).Store(at + j);
            }
        }
        if (stride <= 2 && Avx2.IsSupported)
        {
            var step = Vector256.Create(8 * stride);
            var q = Vector256.Create(off + j * stride) + Vector256<int>.Indices * Vector256.Create(stride);
            for (; j + 8 <= j1 && off + (long)j * stride + 8 * stride <= plane; j += 8, q += step)
            {
                float* src = xp + off + (long)j * stride;
                Vector256<float> v;
                if (stride == 1) v = Vector256.Load(src);
                else
                {
                    // [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit pairs reordered to [a0 a2 a4 a6 b0 b2 b4 b6].
                    var pairs = Avx.Shuffle(Vector256.Load(src), Vector256.Load(src + 8), 0b10_00_10_00);
                    v = Avx2.Permute4x64(pairs.AsDouble(), 0b11_01_10_00).AsSingle();
                }
                var b = Vector256.Load(best + j);
                var take = Vector256.GreaterThan(v, b) | ~Vector256.Equals(v, v);
                Vector256.ConditionalSelect(take, v, b).Store(best + j);
                Vector256.ConditionalSelect(take.AsInt32(), q, Vector256.Load(at + j)).Store(at + j);
            }
        }
        for (; j < j1; j++)
        {
            int q = off + j * stride;
            float v = xp[q];
            if (v > best[j] || float.IsNaN(v))
            {
                best[j] = v;
                at[j] = q;
            }
        }
    }

    public void MaxPool2dBackward(TensorView gradOutput, TensorView indices, TensorView gradInput, PoolWindow window)
    {
        if (gradOutput.DType == DType.Float32) MaxPoolBackwardFor<float>(gradOutput, indices, gradInput);
        else MaxPoolBackwardFor<double>(gradOutput, indices, gradInput);
    }

    private static void MaxPoolBackwardFor<T>(TensorView gradOutput, TensorView indices, TensorView gradInput) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int planes = gradInput.Shape[0];
        long inPlane = (long)gradInput.Shape[1] * gradInput.Shape[2], outPlane = (long)gradOutput.Shape[1] * gradOutput.Shape[2];
        nint pg = Ptr(gradOutput), pi = Ptr(indices), px = Ptr(gradInput);
        CpuParallel.For(planes, PlaneGrain(inPlane + outPlane), (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                T* gx = (T*)px + p * inPlane;
                T* gy = (T*)pg + p * outPlane;
                long* ip = (long*)pi + p * outPlane;
                new Span<T>(gx, checked((int)inPlane)).Clear();
                for (long o = 0; o < outPlane; o++)
                {
                    // A window that misses the input entirely (possible with large dilations) has no source.
                    long q = ip[o];
                    if ((ulong)q < (ulong)inPlane) gx[q] += gy[o];
                }
            }
        });
    }

    /// <summary>The avg-pool window of output <paramref name="o"/> on one axis: clipped range and its padded length.</summary>
    private static (int Start, int End, int Padded) AvgRange(int o, int kernel, int stride, int pad, int size)
    {
        int start = o * stride - pad;
        int end = Math.Min(start + kernel, size + pad);
        int padded = end - start;
        return (Math.Max(start, 0), Math.Min(end, size), padded);
    }

    public void AvgPool2d(TensorView x, TensorView y, PoolWindow window, bool countIncludePad, int divisorOverride)
    {
        if (x.DType == DType.Float32) AvgPoolFor<float>(x, y, window, countIncludePad, divisorOverride, backward: false);
        else AvgPoolFor<double>(x, y, window, countIncludePad, divisorOverride, backward: false);
    }

    public void AvgPool2dBackward(TensorView gradOutput, TensorView gradInput, PoolWindow window, bool countIncludePad, int divisorOverride)
    {
        if (gradOutput.DType == DType.Float32) AvgPoolFor<float>(gradInput, gradOutput, window, countIncludePad, divisorOverride, backward: true);
        else AvgPoolFor<double>(gradInput, gradOutput, window, countIncludePad, divisorOverride, backward: true);
    }

    /// <summary>
    /// Forward: y = window sum / divisor, as a column pass (the window's rows added with vector
    /// arithmetic over the whole width) then a row pass (each output sums its columns of that row).
    /// Backward, the transpose: each output row's gradients / divisor are spread over a column buffer,
    /// which is then added to the window's input rows.
    /// </summary>
    private static void AvgPoolFor<T>(TensorView x, TensorView y, PoolWindow win, bool countIncludePad, int divisorOverride, bool backward)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int planes = x.Shape[0], h = x.Shape[1], w = x.Shape[2], oh = y.Shape[1], ow = y.Shape[2];
        var cols = new (int Start, int End, int Padded)[ow];
        for (int j = 0; j < ow; j++) cols[j] = AvgRange(j, win.KernelW, win.StrideW, win.PadW, w);
        nint px = Ptr(x), py = Ptr(y);
        CpuParallel.For(planes, PlaneGrain((long)oh * (win.KernelH * w + ow * win.KernelW) + (long)h * w), (s, e) =>
        {
            var colBuf = new T[w];
            fixed (T* col = colBuf)
            {
                for (long p = s; p < e; p++)
                {
                    T* xp = (T*)px + p * h * w;
                    T* yp = (T*)py + p * oh * ow;
                    if (backward) new Span<T>(xp, checked(h * w)).Clear();
                    for (int i = 0; i < oh; i++)
                    {
                        var (h0, h1, hp) = AvgRange(i, win.KernelH, win.StrideH, win.PadH, h);
                        T* yr = yp + (long)i * ow;
                        new Span<T>(col, w).Clear();
                        if (!backward)
                            for (int r = h0; r < h1; r++) FoldInto<T, BinaryFns.Add>(col, xp + (long)r * w, w);
                        for (int j = 0; j < ow; j++)
                        {
                            var (w0, w1, wp) = cols[j];
                            int divisor = divisorOverride != 0 ? divisorOverride : countIncludePad ? hp * wp : (h1 - h0) * (w1 - w0);
                            if (backward)
                            {
                                T g = yr[j] / T.CreateTruncating(divisor);
                                for (int c = w0; c < w1; c++) col[c] += g;
                            }
                            else
                            {
                                T sum = T.Zero;
                                for (int c = w0; c < w1; c++) sum += col[c];
                                yr[j] = sum / T.CreateTruncating(divisor);
                            }
                        }
                        if (backward)
                            for (int r = h0; r < h1; r++) FoldInto<T, BinaryFns.Add>(xp + (long)r * w, col, w);
                    }
                }
            }
        });
    }

    public void AdaptiveAvgPool2d(TensorView x, TensorView y)
    {
        if (x.DType == DType.Float32) AdaptiveFor<float>(x, y, backward: false);
        else AdaptiveFor<double>(x, y, backward: false);
    }

    public void AdaptiveAvgPool2dBackward(TensorView gradOutput, TensorView gradInput)
    {
        if (gradOutput.DType == DType.Float32) AdaptiveFor<float>(gradInput, gradOutput, backward: true);
        else AdaptiveFor<double>(gradInput, gradOutput, backward: true);
    }

    /// <summary>Adaptive bin of output <paramref name="o"/>: [floor(o*in/out), ceil((o+1)*in/out)).</summary>
    internal static (int Start, int End) AdaptiveBin(int o, int input, int output) =>
        ((int)((long)o * input / output), (int)(((long)(o + 1) * input + output - 1) / output));

    private static void AdaptiveFor<T>(TensorView x, TensorView y, bool backward) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int planes = x.Shape[0], h = x.Shape[1], w = x.Shape[2], oh = y.Shape[1], ow = y.Shape[2];
        nint px = Ptr(x), py = Ptr(y);
        long work = (long)h * w + (long)oh * ow * (h / Math.Max(oh, 1) + 2) * (w / Math.Max(ow, 1) + 2);
        CpuParallel.For(planes, PlaneGrain(work), (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                T* xp = (T*)px + p * h * w;
                T* yp = (T*)py + p * oh * ow;
                if (backward) new Span<T>(xp, checked(h * w)).Clear();
                for (int i = 0; i < oh; i++)
                {
                    var (h0, h1) = AdaptiveBin(i, h, oh);
                    for (int j = 0; j < ow; j++)
                    {
                        var (w0, w1) = AdaptiveBin(j, w, ow);
                        T count = T.CreateTruncating((h1 - h0) * (w1 - w0));
                        if (backward)
                        {
                            T g = yp[(long)i * ow + j] / count;
                            if (w0 == 0 && w1 == w) AddToRun(xp + (long)h0 * w, (long)(h1 - h0) * w, g);
                            else
                                for (int r = h0; r < h1; r++)
                                    for (int c = w0; c < w1; c++) xp[(long)r * w + c] += g;
                        }
                        else if (w0 == 0 && w1 == w)
                        {
                            // The bin spans whole rows (always for one output column, e.g. a global pool): one contiguous run.
                            yp[(long)i * ow + j] = SumRun(xp + (long)h0 * w, (long)(h1 - h0) * w) / count;
                        }
                        else
                        {
                            T sum = T.Zero;
                            for (int r = h0; r < h1; r++)
                                for (int c = w0; c < w1; c++) sum += xp[(long)r * w + c];
                            yp[(long)i * ow + j] = sum / count;
                        }
                    }
                }
            }
        });
    }

    /// <summary>Sum of n contiguous values, a vector of partial sums at a time.</summary>
    private static T SumRun<T>(T* x, long n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        long i = 0;
        T sum = T.Zero;
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            var acc = Vector512<T>.Zero;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count) acc += Vector512.Load(x + i);
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            var acc = Vector256<T>.Zero;
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count) acc += Vector256.Load(x + i);
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += x[i];
        return sum;
    }

    /// <summary>x[i] += value for n contiguous values.</summary>
    private static void AddToRun<T>(T* x, long n, T value) where T : unmanaged, IFloatingPointIeee754<T>
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var v = Vector512.Create(value);
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count) (Vector512.Load(x + i) + v).Store(x + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var v = Vector256.Create(value);
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count) (Vector256.Load(x + i) + v).Store(x + i);
        }
        for (; i < n; i++) x[i] += value;
    }

    // ---------------- interpolation ----------------

    /// <summary>torch's legacy nearest source index (computed in float, as torch does).</summary>
    internal static int NearestSource(int dst, int input, int output, double? scale)
    {
        if (output == input) return dst;
        if (output == 2 * input) return dst >> 1;
        float s = scale is double sc && sc > 0 ? (float)(1.0 / sc) : (float)input / output;
        return (int)Math.Min((long)MathF.Floor(dst * s), input - 1);
    }

    /// <summary>torch's bilinear source taps for one axis: two indices and their weights for every output position.</summary>
    private static (int[] I0, int[] I1, T[] L0, T[] L1) LinearTaps<T>(int input, int output, bool alignCorners, double? scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var i0 = new int[output];
        var i1 = new int[output];
        var l0 = new T[output];
        var l1 = new T[output];
        // The ratio is computed in the element type, the source position in double (torch's CPU accumulate type).
        T ratio = alignCorners
            ? output > 1 ? T.CreateTruncating(input - 1) / T.CreateTruncating(output - 1) : T.Zero
            : scale is double sc && sc > 0 ? T.CreateTruncating(1.0 / sc) : T.CreateTruncating(input) / T.CreateTruncating(output);
        double r = double.CreateTruncating(ratio);
        for (int o = 0; o < output; o++)
        {
            if (output == input)
            {
                i0[o] = i1[o] = o;
                l0[o] = T.One;
                l1[o] = T.Zero;
                continue;
            }
            double real = alignCorners ? r * o : Math.Max(r * (o + 0.5) - 0.5, 0.0);
            int a = (int)real;
            i0[o] = a;
            i1[o] = a + (a < input - 1 ? 1 : 0);
            l1[o] = T.CreateTruncating(real - a);
            l0[o] = T.One - l1[o];
        }
        return (i0, i1, l0, l1);
    }

    public void Interpolate(TensorView x, TensorView y, InterpolationMode mode, bool alignCorners, double? scaleH, double? scaleW)
    {
        bool f32 = x.DType == DType.Float32;
        if (mode == InterpolationMode.Nearest)
        {
            if (f32) NearestFor<float>(x, y, scaleH, scaleW, backward: false);
            else NearestFor<double>(x, y, scaleH, scaleW, backward: false);
        }
        else if (f32) BilinearFor<float>(x, y, alignCorners, scaleH, scaleW, backward: false);
        else BilinearFor<double>(x, y, alignCorners, scaleH, scaleW, backward: false);
    }

    public void InterpolateBackward(TensorView gradOutput, TensorView gradInput, InterpolationMode mode, bool alignCorners, double? scaleH, double? scaleW)
    {
        bool f32 = gradOutput.DType == DType.Float32;
        if (mode == InterpolationMode.Nearest)
        {
            if (f32) NearestFor<float>(gradInput, gradOutput, scaleH, scaleW, backward: true);
            else NearestFor<double>(gradInput, gradOutput, scaleH, scaleW, backward: true);
        }
        else if (f32) BilinearFor<float>(gradInput, gradOutput, alignCorners, scaleH, scaleW, backward: true);
        else BilinearFor<double>(gradInput, gradOutput, alignCorners, scaleH, scaleW, backward: true);
    }

    /// <summary>Forward: y[i, j] = x[src(i), src(j)]. Backward: x (input gradient) sums the y that read each position.</summary>
    private static void NearestFor<T>(TensorView x, TensorView y, double? scaleH, double? scaleW, bool backward) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int planes = x.Shape[0], h = x.Shape[1], w = x.Shape[2], oh = y.Shape[1], ow = y.Shape[2];
        var sh = new int[oh];
        var sw = new int[ow];
        for (int i = 0; i < oh; i++) sh[i] = NearestSource(i, h, oh, scaleH);
        for (int j = 0; j < ow; j++) sw[j] = NearestSource(j, w, ow, scaleW);
        bool doubled = ow == 2 * w; // torch's rule: source column j / 2 whatever the scale
        nint px = Ptr(x), py = Ptr(y);
        if (backward)
        {
            NearestBackward<T>(x, y, sh, sw, doubled);
            return;
        }
        CpuParallel.For(planes, PlaneGrain((long)oh * ow + (long)h * w), (s, e) =>
        {
            for (long p = s; p < e; p++)
            {
                T* xp = (T*)px + p * h * w;
                T* yp = (T*)py + p * oh * ow;
                for (int i = 0; i < oh; i++)
                {
                    T* xr = xp + (long)sh[i] * w;
                    T* yr = yp + (long)i * ow;
                    if (i > 0 && sh[i] == sh[i - 1])
                        Buffer.MemoryCopy(yr - ow, yr, (long)ow * sizeof(T), (long)ow * sizeof(T)); // same source row as the last one
                    else if (doubled)
                        DuplicateColumns(xr, yr, w);
                    else
                        for (int j = 0; j < ow; j++) yr[j] = xr[sw[j]];
                }
            }
        });
    }

    /// <summary>
    /// The gradient of nearest resampling as a gather: the source map is non-decreasing, so each input
    /// row (column) is read by a run of output rows (columns). Each input row sums its output rows
    /// (vector adds, in row order), then each input element sums its run of columns in that row sum.
    /// </summary>
    private static void NearestBackward<T>(TensorView gradInput, TensorView gradOutput, int[] sh, int[] sw, bool doubled)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int planes = gradInput.Shape[0], h = gradInput.Shape[1], w = gradInput.Shape[2], oh = gradOutput.Shape[1], ow = gradOutput.Shape[2];
        var rowFirst = new int[h + 1];
        var colFirst = new int[w + 1];
        Runs(sh, h, rowFirst);
        Runs(sw, w, colFirst);
        nint px = Ptr(gradInput), py = Ptr(gradOutput);
        CpuParallel.For(planes, PlaneGrain((long)oh * ow + (long)h * w), (s, e) =>
        {
            var rowSum = new T[ow];
            fixed (T* rs = rowSum)
            {
                for (long p = s; p < e; p++)
                {
                    T* gx = (T*)px + p * h * w;
                    T* gy = (T*)py + p * oh * ow;
                    for (int r = 0; r < h; r++)
                    {
                        T* xr = gx + (long)r * w;
                        int i0 = rowFirst[r], i1 = rowFirst[r + 1];
                        if (i0 == i1)
                        {
                            new Span<T>(xr, w).Clear();
                            continue;
                        }
                        Buffer.MemoryCopy(gy + (long)i0 * ow, rs, (long)ow * sizeof(T), (long)ow * sizeof(T));
                        for (int i = i0 + 1; i < i1; i++) FoldInto<T, BinaryFns.Add>(rs, gy + (long)i * ow, ow);
                        if (doubled)
                        {
                            PairSums(rs, xr, w);
                            continue;
                        }
                        for (int c = 0; c < w; c++)
                        {
                            T acc = T.Zero;
                            for (int j = colFirst[c]; j < colFirst[c + 1]; j++) acc += rs[j];
                            xr[c] = acc;
                        }
                    }
                }
            }
        });
    }

    /// <summary>first[k] = the first output position whose source is k or more, for a non-decreasing source map (first[size] = outputs).</summary>
    private static void Runs(int[] source, int size, int[] first)
    {
        int o = 0;
        for (int k = 0; k <= size; k++)
        {
            while (o < source.Length && source[o] < k) o++;
            first[k] = o;
        }
    }

    /// <summary>dst[c] = src[2c] + src[2c + 1] for c in [0, w).</summary>
    private static void PairSums<T>(T* src, T* dst, int w) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int c = 0;
        if (typeof(T) == typeof(float))
        {
            float* s = (float*)src, d = (float*)dst;
            if (Avx512F.IsSupported)
            {
                var evens = Vector512<int>.Indices * Vector512.Create(2);
                var odds = evens + Vector512<int>.One;
                for (; c + 16 <= w; c += 16)
                {
                    Vector512<float> a = Vector512.Load(s + 2 * c), b = Vector512.Load(s + 2 * c + 16);
                    (Avx512F.PermuteVar16x32x2(a, evens, b) + Avx512F.PermuteVar16x32x2(a, odds, b)).Store(d + c);
                }
            }
            if (Avx2.IsSupported)
            {
                // [a0+a1 a2+a3 b0+b1 b2+b3 | a4+a5 a6+a7 b4+b5 b6+b7], 64-bit pairs reordered.
                for (; c + 8 <= w; c += 8)
                {
                    var sums = Avx.HorizontalAdd(Vector256.Load(s + 2 * c), Vector256.Load(s + 2 * c + 8));
                    Avx2.Permute4x64(sums.AsDouble(), 0b11_01_10_00).AsSingle().Store(d + c);
                }
            }
        }
        else if (typeof(T) == typeof(double))
        {
            double* s = (double*)src, d = (double*)dst;
            if (Avx512F.IsSupported)
            {
                var evens = Vector512<long>.Indices * Vector512.Create(2L);
                var odds = evens + Vector512<long>.One;
                for (; c + 8 <= w; c += 8)
                {
                    Vector512<double> a = Vector512.Load(s + 2 * c), b = Vector512.Load(s + 2 * c + 8);
                    (Avx512F.PermuteVar8x64x2(a, evens, b) + Avx512F.PermuteVar8x64x2(a, odds, b)).Store(d + c);
                }
            }
            if (Avx2.IsSupported)
            {
                // [a0+a1 b0+b1 a2+a3 b2+b3], reordered.
                for (; c + 4 <= w; c += 4)
                {
                    var sums = Avx.HorizontalAdd(Vector256.Load(s + 2 * c), Vector256.Load(s + 2 * c + 4));
                    Avx2.Permute4x64(sums, 0b11_01_10_00).Store(d + c);
                }
            }
        }
        for (; c < w; c++) dst[c] = src[2 * c] + src[2 * c + 1];
    }

    /// <summary>dst[2j] = dst[2j + 1] = src[j] for j in [0, w): nearest 2x along a row, 16/8/4 lanes at a time.</summary>
    private static void DuplicateColumns<T>(T* src, T* dst, int w) where T : unmanaged
    {
        int j = 0;
        if (sizeof(T) == 4)
        {
            uint* s = (uint*)src, d = (uint*)dst;
            if (Avx512F.IsSupported)
            {
                var lo = Vector512.Create(0u, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
                var hi = lo + Vector512.Create(8u);
                for (; j + 16 <= w; j += 16)
                {
                    var v = Vector512.Load(s + j);
                    Avx512F.PermuteVar16x32(v, lo).Store(d + 2 * j);
                    Avx512F.PermuteVar16x32(v, hi).Store(d + 2 * j + 16);
                }
            }
            if (Avx2.IsSupported)
            {
                var lo = Vector256.Create(0u, 0, 1, 1, 2, 2, 3, 3);
                var hi = lo + Vector256.Create(4u);
                for (; j + 8 <= w; j += 8)
                {
                    var v = Vector256.Load(s + j);
                    Avx2.PermuteVar8x32(v, lo).Store(d + 2 * j);
                    Avx2.PermuteVar8x32(v, hi).Store(d + 2 * j + 8);
                }
            }
        }
        else if (sizeof(T) == 8)
        {
            ulong* s = (ulong*)src, d = (ulong*)dst;
            if (Avx512F.IsSupported)
            {
                var lo = Vector512.Create(0ul, 0, 1, 1, 2, 2, 3, 3);
                var hi = lo + Vector512.Create(4ul);
                for (; j + 8 <= w; j += 8)
                {
                    var v = Vector512.Load(s + j);
                    Avx512F.PermuteVar8x64(v, lo).Store(d + 2 * j);
                    Avx512F.PermuteVar8x64(v, hi).Store(d + 2 * j + 8);
                }
            }
            if (Avx2.IsSupported)
            {
                for (; j + 4 <= w; j += 4)
                {
                    var v = Vector256.Load(s + j);
                    Avx2.Permute4x64(v, 0b01_01_00_00).Store(d + 2 * j);
                    Avx2.Permute4x64(v, 0b11_11_10_10).Store(d + 2 * j + 4);
                }
            }
        }
        for (; j < w; j++) dst[2 * j] = dst[2 * j + 1] = src[j];
    }

    /// <summary>
    /// Bilinear resampling, separably. Forward: each input row that some output row reads is first
    /// resampled along the width (two taps per output column, as torch's inner sum), then every output
    /// row mixes its two source rows with vector arithmetic. Backward is the transpose: output-gradient
    /// rows are folded into per-input-row sums (vector axpy), then each sum is spread over the columns.
    /// </summary>
    private static void BilinearFor<T>(TensorView x, TensorView y, bool alignCorners, double? scaleH, double? scaleW, bool backward)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int planes = x.Shape[0], h = x.Shape[1], w = x.Shape[2], oh = y.Shape[1], ow = y.Shape[2];
        var (h0, h1, lh0, lh1) = LinearTaps<T>(h, oh, alignCorners, scaleH);
        var (w0, w1, lw0, lw1) = LinearTaps<T>(w, ow, alignCorners, scaleW);
        var used = new bool[h];
        for (int i = 0; i < oh; i++) used[h0[i]] = used[h1[i]] = true;
        nint px = Ptr(x), py = Ptr(y);
        CpuParallel.For(planes, PlaneGrain(2L * oh * ow + 2L * h * ow + (long)h * w), (s, e) =>
        {
            // One width-resampled row (length ow) per input row.
            var rowsBuf = new T[(long)h * ow];
            fixed (T* rows = rowsBuf)
            {
                for (long p = s; p < e; p++)
                {
                    T* xp = (T*)px + p * h * w;
                    T* yp = (T*)py + p * oh * ow;
                    if (!backward)
                    {
                        for (int r = 0; r < h; r++)
                        {
                            if (!used[r]) continue;
                            T* xr = xp + (long)r * w;
                            T* hr = rows + (long)r * ow;
                            for (int j = 0; j < ow; j++) hr[j] = lw0[j] * xr[w0[j]] + lw1[j] * xr[w1[j]];
                        }
                        for (int i = 0; i < oh; i++)
                            Mix2(yp + (long)i * ow, lh0[i], rows + (long)h0[i] * ow, lh1[i], rows + (long)h1[i] * ow, ow);
                        continue;
                    }
                    for (int r = 0; r < h; r++)
                        if (used[r]) new Span<T>(rows + (long)r * ow, ow).Clear();
                    for (int i = 0; i < oh; i++)
                    {
                        T* gr = yp + (long)i * ow;
                        Axpy(rows + (long)h0[i] * ow, lh0[i], gr, ow);
                        Axpy(rows + (long)h1[i] * ow, lh1[i], gr, ow);
                    }
                    for (int r = 0; r < h; r++)
                    {
                        T* xr = xp + (long)r * w;
                        new Span<T>(xr, w).Clear();
                        if (!used[r]) continue;
                        T* hr = rows + (long)r * ow;
                        for (int j = 0; j < ow; j++)
                        {
                            xr[w0[j]] += lw0[j] * hr[j];
                            xr[w1[j]] += lw1[j] * hr[j];
                        }
                    }
                }
            }
        });
    }

    /// <summary>dst = a*u + b*v over n elements.</summary>
    private static void Mix2<T>(T* dst, T a, T* u, T b, T* v, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int k = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<T> va = Vector512.Create(a), vb = Vector512.Create(b);
            for (; k <= n - Vector512<T>.Count; k += Vector512<T>.Count)
                (va * Vector512.Load(u + k) + vb * Vector512.Load(v + k)).Store(dst + k);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<T> va = Vector256.Create(a), vb = Vector256.Create(b);
            for (; k <= n - Vector256<T>.Count; k += Vector256<T>.Count)
                (va * Vector256.Load(u + k) + vb * Vector256.Load(v + k)).Store(dst + k);
        }
        for (; k < n; k++) dst[k] = a * u[k] + b * v[k];
    }

    /// <summary>y += a*x over n elements.</summary>
    private static void Axpy<T>(T* y, T a, T* x, int n) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int k = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; k <= n - Vector512<T>.Count; k += Vector512<T>.Count)
                (Vector512.Load(y + k) + va * Vector512.Load(x + k)).Store(y + k);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            for (; k <= n - Vector256<T>.Count; k += Vector256<T>.Count)
                (Vector256.Load(y + k) + va * Vector256.Load(x + k)).Store(y + k);
        }
        for (; k < n; k++) y[k] += a * x[k];
    }
}
