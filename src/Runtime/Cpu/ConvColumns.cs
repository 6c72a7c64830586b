using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Runtime.Backends;

namespace Runtime.Cpu;

/// <summary>
/// The B operand of an implicit-GEMM convolution: the unfolded input columns of <see cref="IBackend.Im2Col"/>
/// (row p = (c, i, j) kernel tap, column = output pixel, images side by side), packed straight from the NCHW input
/// into the GEMM's NR-column slivers, one KC x NC block at a time, so no column buffer is ever written.
/// </summary>
/// <remarks>
/// The columns of a block are cut once into segments that lie in one output row of one image and one sliver; each
/// row p then copies every segment from its input row: a contiguous copy for stride 1, an even-lane gather for
/// stride 2, a scalar loop otherwise, and zeros where the tap falls on padding. A stride-1 unpadded 1x1 convolution
/// sees each input plane as a single row, so its segments are whole slivers.
/// </remarks>
internal readonly unsafe struct ConvColumns<T> : Gemm.IPanelB<T> where T : unmanaged, INumber<T>
{
    private readonly T* _x;
    private readonly long _imageStride, _plane, _colsPerImage;
    private readonly int _h, _w, _kh, _kw, _sh, _sw, _ph, _pw, _dh, _dw, _ow;
    private readonly bool _prefetch;

    /// <param name="x">Image 0 of the product at its group's first input channel.</param>
    /// <param name="g">The convolution (its batch is not used: the product's columns say how many images it spans).</param>
    public ConvColumns(T* x, Conv2dGeometry g)
    {
        _x = x;
        _imageStride = (long)g.InChannels * g.InPlane;
        _plane = g.InPlane;
        _colsPerImage = g.OutPlane;
        (_kh, _kw, _sh, _sw, _ph, _pw, _dh, _dw) = (g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.DilationH, g.DilationW);
        (_h, _w, _ow) = (g.Height, g.Width, g.OutWidth);
        if (g.IsPointwise)
            (_h, _w, _ow) = (1, g.InPlane, g.OutPlane); // each plane is one long row
        _prefetch = g.KernelH * g.KernelW == 1 || g.InPerGroup >= 16;
    }

    /// <summary>A run of a block's columns in one output row of one image and one sliver.</summary>
    private struct Segment
    {
        public long Dst;    // offset of the run's first column in the packed block (row p adds p*nr)
        public long Image;  // offset of the image in x
        public int Ih0;     // output row * vertical stride (the input row of tap i is Ih0 + i*dH - pH)
        public int Ow;      // first output column
        public int Len;
    }

    /// <summary>Packs the block of rows [pc, pc+kc) and columns [jc, jc+nc) into <paramref name="dst"/>.</summary>
    public T* Block(T* dst, int pc, int kc, int jc, int nc, int nr)
    {
        int slivers = (nc + nr - 1) / nr;
        int maxSegments = nc + 2 * slivers + 1;
        Segment* segs = stackalloc Segment[maxSegments];
        int count = 0;
        for (int s = 0; s < slivers; s++)
        {
            int j = jc + s * nr, end = Math.Min(jc + nc, j + nr);
            long sliver = (long)s * nr * kc;
            while (j < end)
            {
                long image = j / _colsPerImage;
                int pix = (int)(j - image * _colsPerImage), oh = pix / _ow, ow = pix - oh * _ow;
                int len = Math.Min(_ow - ow, end - j);
                segs[count++] = new Segment { Dst = sliver + (j - jc - s * nr), Image = image * _imageStride, Ih0 = oh * _sh, Ow = ow, Len = len };
                j += len;
            }
            if (end - (jc + s * nr) < nr)
            {
                // Columns past the block: zeros (a row that is never inside the image).
                int filled = end - (jc + s * nr);
                segs[count++] = new Segment { Dst = sliver + filled, Image = 0, Ih0 = int.MinValue / 2, Ow = 0, Len = nr - filled };
            }
        }

        // Output columns [lo, hi) whose input column lies inside the image, for each kernel column.
        int* lo = stackalloc int[_kw], hi = stackalloc int[_kw];
        for (int j = 0; j < _kw; j++)
        {
            int offset = j * _dw - _pw;
            lo[j] = offset >= 0 ? 0 : (-offset + _sw - 1) / _sw;
            int last = _w - 1 - offset;
            hi[j] = last < 0 ? 0 : Math.Min(_ow, last / _sw + 1);
        }

        int kk = _kh * _kw;
        int c = pc / kk, i = pc % kk / _kw, jj = pc % _kw;
        // The rows one tap reads are a few short runs per channel, too short for the hardware prefetcher: at the first
        // tap of each kernel row, fetch the same rows of a channel ahead (four for 1x1 kernels, whose channels go by
        // fastest; past the last channel these are harmless hints). Measured on one and two threads: 1x1 stride 2 on
        // 56x56 and 14x14 planes 10-15% faster, 3x3 stride 2 on 56x56 planes 14%. Inputs with fewer than 16 channels
        // per group (the 3-channel stem) stay in cache and skip it (the stem measured 3-8% slower with it).
        long ahead = (kk == 1 ? 4 : 1) * _plane;
        bool prefetch = Sse.IsSupported && _prefetch;
        for (int p = 0; p < kc; p++)
        {
            T* xc = _x + c * _plane;
            int iOff = i * _dh - _ph, jOff = jj * _dw - _pw, vlo = lo[jj], vhi = hi[jj];
            T* dp = dst + (long)p * nr;
            if (prefetch && jj == 0)
            {
                for (int q = 0; q < count; q++)
                {
                    int ih = segs[q].Ih0 + iOff;
                    if ((uint)ih >= (uint)_h) continue;
                    byte* first = (byte*)(xc + ahead + segs[q].Image + (long)ih * _w + Math.Max(0, segs[q].Ow * _sw - _pw));
                    byte* last = first + (long)segs[q].Len * _sw * sizeof(T);
                    for (byte* line = first; line < last; line += 64) Sse.Prefetch0(line);
                }
            }
            for (int q = 0; q < count; q++)
            {
                ref Segment seg = ref segs[q];
                T* d = dp + seg.Dst;
                int ih = seg.Ih0 + iOff, end = seg.Ow + seg.Len;
                int a = Math.Max(seg.Ow, vlo), b = Math.Min(end, vhi);
                if ((uint)ih >= (uint)_h || b <= a)
                {
                    Zero(d, seg.Len);
                    continue;
                }
                if (a > seg.Ow) Zero(d, a - seg.Ow);
                // Input column of output column ow: ow*sW + jOff, all inside [0, W) for ow in [a, b).
                T* s = xc + seg.Image + (long)ih * _w + (long)a * _sw + jOff;
                T* da = d + (a - seg.Ow);
                if (_sw == 1) Gemm.CopyRow(da, s, b - a);
                else if (_sw == 2) GatherEven(da, s, b - a, _w - (a * 2 + jOff));
                else
                    for (int o = 0; o < b - a; o++) da[o] = s[(long)o * _sw];
                if (b < end) Zero(d + (b - seg.Ow), end - b);
            }
            if (++jj == _kw)
            {
                jj = 0;
                if (++i == _kh)
                {
                    i = 0;
                    c++;
                }
            }
        }
        return dst;
    }



    /// <summary>d[0..len) = 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Zero(T* d, int len)
    {
        int k = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; k <= len - Vector512<T>.Count; k += Vector512<T>.Count)
                Vector512<T>.Zero.Store(d + k);
        if (Vector256.IsHardwareAccelerated)
            for (; k <= len - Vector256<T>.Count; k += Vector256<T>.Count)
                Vector256<T>.Zero.Store(d + k);
        for (; k < len; k++) d[k] = T.Zero;
    }

    /// <summary>
    /// d[o] = s[2*o] for o in [0, len), where s[0 .. readable) may be read: 512-bit registers take the even lanes of
    /// two loads (16 floats or 8 doubles out) or of one (half as many), scalar code the rest.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GatherEven(T* d, T* s, int len, long readable)
    {
        int o = 0;
        if (Avx512F.IsSupported)
        {
            if (typeof(T) == typeof(float))
            {
                var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                float* fd = (float*)d, fs = (float*)s;
                for (; o + 16 <= len && 2L * o + 32 <= readable; o += 16)
                    Avx512F.PermuteVar16x32x2(Vector512.Load(fs + 2L * o), even, Vector512.Load(fs + 2L * o + 16)).Store(fd + o);
                if (o + 8 <= len && 2L * o + 16 <= readable)
                {
                    Avx512F.PermuteVar16x32(Vector512.Load(fs + 2L * o), even).GetLower().Store(fd + o);
                    o += 8;
                }
            }
            else if (typeof(T) == typeof(double))
            {
                var even = Vector512.Create(0L, 2, 4, 6, 8, 10, 12, 14);
                double* dd = (double*)d, ds = (double*)s;
                for (; o + 8 <= len && 2L * o + 16 <= readable; o += 8)
                    Avx512F.PermuteVar8x64x2(Vector512.Load(ds + 2L * o), even, Vector512.Load(ds + 2L * o + 8)).Store(dd + o);
                if (o + 4 <= len && 2L * o + 8 <= readable)
                {
                    Avx512F.PermuteVar8x64(Vector512.Load(ds + 2L * o), even).GetLower().Store(dd + o);
                    o += 4;
                }
            }
        }
        for (; o < len; o++) d[o] = s[2L * o];
    }
}
