using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Runtime.Vision.Imaging;

/// <summary>
/// JPEG upsampling and colour conversion rows: libjpeg-turbo's h2v1/h1v2/h2v2 "fancy" upsampling and jdcolor.c's
/// YCbCr->RGB, with AVX2 main loops that compute exactly what the scalar code does (integer arithmetic only).
/// </summary>
internal static unsafe class JpegPixels
{
    // jdcolor.c constants: FIX(x) = (int)(x * 65536 + 0.5).
    private const int FixCrR = 91881, FixCbB = 116130, FixCrG = 46802, FixCbG = 22554, Half = 1 << 15;

    /// <summary>Tests set this to run the scalar code paths (the output is the same either way).</summary>
    internal static bool DisableSimd;

    private static bool Simd => Avx2.IsSupported && !DisableSimd;

    private static readonly Vector128<byte> MaskR0, MaskG0, MaskB0, MaskR1, MaskG1, MaskB1, MaskR2, MaskG2, MaskB2;

    static JpegPixels()
    {
        // pshufb masks interleaving 16 R, G and B bytes into 48 bytes RGBRGB...
        static Vector128<byte> Mask(int part, int channel)
        {
            var m = new byte[16];
            for (int i = 0; i < 16; i++)
            {
                int o = part * 16 + i;
                m[i] = o % 3 == channel ? (byte)(o / 3) : (byte)0x80;
            }
            return Vector128.Create(m);
        }
        MaskR0 = Mask(0, 0); MaskG0 = Mask(0, 1); MaskB0 = Mask(0, 2);
        MaskR1 = Mask(1, 0); MaskG1 = Mask(1, 1); MaskB1 = Mask(1, 2);
        MaskR2 = Mask(2, 0); MaskG2 = Mask(2, 1); MaskB2 = Mask(2, 2);
    }

    /// <summary>One row of YCbCr to interleaved RGB.</summary>
    public static void YccToRgb(byte* py, byte* pcb, byte* pcr, byte* o, int w)
    {
        int x = 0;
        if (Simd)
        {
            var cCrR = Vector256.Create(FixCrR); var cCbB = Vector256.Create(FixCbB);
            var cCrG = Vector256.Create(-FixCrG); var cCbG = Vector256.Create(-FixCbG);
            var half = Vector256.Create(Half); var c128 = Vector256.Create(128);
            for (; x + 16 <= w; x += 16)
            {
                var r = Vector128<byte>.Zero; var g = Vector128<byte>.Zero; var b = Vector128<byte>.Zero;
                Vector256<int> r0, r1, g0, g1, b0, b1;
                {
                    var yy = Avx2.ConvertToVector256Int32(py + x);
                    var cb = Avx2.Subtract(Avx2.ConvertToVector256Int32(pcb + x), c128);
                    var cr = Avx2.Subtract(Avx2.ConvertToVector256Int32(pcr + x), c128);
                    r0 = Avx2.Add(yy, Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.MultiplyLow(cr, cCrR), half), 16));
                    b0 = Avx2.Add(yy, Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.MultiplyLow(cb, cCbB), half), 16));
                    g0 = Avx2.Add(yy, Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Add(Avx2.MultiplyLow(cb, cCbG), half), Avx2.MultiplyLow(cr, cCrG)), 16));
                }
                {
                    var yy = Avx2.ConvertToVector256Int32(py + x + 8);
                    var cb = Avx2.Subtract(Avx2.ConvertToVector256Int32(pcb + x + 8), c128);
                    var cr = Avx2.Subtract(Avx2.ConvertToVector256Int32(pcr + x + 8), c128);
                    r1 = Avx2.Add(yy, Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.MultiplyLow(cr, cCrR), half), 16));
                    b1 = Avx2.Add(yy, Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.MultiplyLow(cb, cCbB), half), 16));
                    g1 = Avx2.Add(yy, Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Add(Avx2.MultiplyLow(cb, cCbG), half), Avx2.MultiplyLow(cr, cCrG)), 16));
                }
                r = ToBytes(r0, r1); g = ToBytes(g0, g1); b = ToBytes(b0, b1);
                Sse2.Store(o + 3 * x, Sse2.Or(Sse2.Or(Ssse3.Shuffle(r, MaskR0), Ssse3.Shuffle(g, MaskG0)), Ssse3.Shuffle(b, MaskB0)));
                Sse2.Store(o + 3 * x + 16, Sse2.Or(Sse2.Or(Ssse3.Shuffle(r, MaskR1), Ssse3.Shuffle(g, MaskG1)), Ssse3.Shuffle(b, MaskB1)));
                Sse2.Store(o + 3 * x + 32, Sse2.Or(Sse2.Or(Ssse3.Shuffle(r, MaskR2), Ssse3.Shuffle(g, MaskG2)), Ssse3.Shuffle(b, MaskB2)));
            }
        }
        var t = ColorTables.Instance;
        fixed (int* crr = t.CrR, cbb = t.CbB, crg = t.CrG, cbg = t.CbG)
        fixed (byte* clampBase = t.Clamp)
        {
            byte* clamp = clampBase + ColorTables.ClampOffset;
            for (; x < w; x++)
            {
                int yy = py[x], cb = pcb[x], cr = pcr[x];
                o[3 * x] = clamp[yy + crr[cr]];
                o[3 * x + 1] = clamp[yy + ((cbg[cb] + crg[cr]) >> 16)];
                o[3 * x + 2] = clamp[yy + cbb[cb]];
            }
        }
    }

    /// <summary>16 ints (two vectors, in order) to 16 bytes with saturation (= clamping to 0..255).</summary>
    private static Vector128<byte> ToBytes(Vector256<int> a, Vector256<int> b)
    {
        var s = Avx2.Permute4x64(Avx2.PackSignedSaturate(a, b).AsInt64(), 0b11_01_10_00).AsInt16();
        return Sse2.PackUnsignedSaturate(s.GetLower(), s.GetUpper());
    }

    /// <summary>libjpeg-turbo h2v1_fancy_upsample for one row (dsw &gt; 2 input samples, 2*dsw outputs).</summary>
    public static void H2V1Fancy(byte* inp, byte* outp, int dsw)
    {
        int v = inp[0];
        outp[0] = (byte)v;
        outp[1] = (byte)((v * 3 + inp[1] + 2) >> 2);
        int i = 1;
        if (Simd)
        {
            var one = Vector256.Create((short)1); var two = Vector256.Create((short)2);
            for (; i + 17 <= dsw; i += 16)
            {
                var c = Avx2.ConvertToVector256Int16(inp + i);
                var c3 = Avx2.Add(Avx2.Add(c, c), c);
                var prev = Avx2.ConvertToVector256Int16(inp + i - 1);
                var next = Avx2.ConvertToVector256Int16(inp + i + 1);
                var even = Avx2.ShiftRightLogical(Avx2.Add(Avx2.Add(c3, prev), one), 2);
                var odd = Avx2.ShiftRightLogical(Avx2.Add(Avx2.Add(c3, next), two), 2);
                StoreInterleaved(outp + 2 * i, even, odd);
            }
        }
        for (; i < dsw - 1; i++)
        {
            v = inp[i] * 3;
            outp[2 * i] = (byte)((v + inp[i - 1] + 1) >> 2);
            outp[2 * i + 1] = (byte)((v + inp[i + 1] + 2) >> 2);
        }
        v = inp[dsw - 1];
        outp[2 * (dsw - 1)] = (byte)((v * 3 + inp[dsw - 2] + 1) >> 2);
        outp[2 * (dsw - 1) + 1] = (byte)v;
    }

    /// <summary>libjpeg-turbo h1v2_fancy_upsample for one output row: (3*near + far + bias) &gt;&gt; 2, bias 1 above, 2 below.</summary>
    public static void H1V2Fancy(byte* near, byte* far, byte* outp, int dsw, int bias)
    {
        int x = 0;
        if (Simd)
        {
            var b = Vector256.Create((short)bias);
            for (; x + 16 <= dsw; x += 16)
            {
                var n = Avx2.ConvertToVector256Int16(near + x);
                var f = Avx2.ConvertToVector256Int16(far + x);
                var s = Avx2.ShiftRightLogical(Avx2.Add(Avx2.Add(Avx2.Add(Avx2.Add(n, n), n), f), b), 2);
                Sse2.Store(outp + x, Sse2.PackUnsignedSaturate(s.GetLower(), s.GetUpper()));
            }
        }
        for (; x < dsw; x++) outp[x] = (byte)((near[x] * 3 + far[x] + bias) >> 2);
    }

    /// <summary>
    /// libjpeg-turbo h2v2_fancy_upsample for one output row from the nearer input row and the farther one (above for
    /// even output rows, below for odd); <paramref name="colsum"/> is scratch for dsw shorts.
    /// </summary>
    public static void H2V2Fancy(byte* near, byte* far, byte* outp, int dsw, short* colsum)
    {
        int i = 0;
        if (Simd)
            for (; i + 16 <= dsw; i += 16)
            {
                var n = Avx2.ConvertToVector256Int16(near + i);
                var f = Avx2.ConvertToVector256Int16(far + i);
                Avx.Store(colsum + i, Avx2.Add(Avx2.Add(Avx2.Add(n, n), n), f));
            }
        for (; i < dsw; i++) colsum[i] = (short)(near[i] * 3 + far[i]);

        int c0 = colsum[0];
        outp[0] = (byte)((c0 * 4 + 8) >> 4);
        outp[1] = (byte)((c0 * 3 + colsum[1] + 7) >> 4);
        i = 1;
        if (Simd)
        {
            var eight = Vector256.Create((short)8); var seven = Vector256.Create((short)7);
            for (; i + 17 <= dsw; i += 16)
            {
                var c = Avx.LoadVector256(colsum + i);
                var c3 = Avx2.Add(Avx2.Add(c, c), c);
                var even = Avx2.ShiftRightLogical(Avx2.Add(Avx2.Add(c3, Avx.LoadVector256(colsum + i - 1)), eight), 4);
                var odd = Avx2.ShiftRightLogical(Avx2.Add(Avx2.Add(c3, Avx.LoadVector256(colsum + i + 1)), seven), 4);
                StoreInterleaved(outp + 2 * i, even, odd);
            }
        }
        for (; i < dsw - 1; i++)
        {
            int c3 = colsum[i] * 3;
            outp[2 * i] = (byte)((c3 + colsum[i - 1] + 8) >> 4);
            outp[2 * i + 1] = (byte)((c3 + colsum[i + 1] + 7) >> 4);
        }
        int cl = colsum[dsw - 1];
        outp[2 * (dsw - 1)] = (byte)((cl * 3 + colsum[dsw - 2] + 8) >> 4);
        outp[2 * (dsw - 1) + 1] = (byte)((cl * 4 + 7) >> 4);
    }

    /// <summary>Stores even[0], odd[0], even[1], odd[1], ... (16 + 16 shorts holding bytes) as 32 bytes.</summary>
    private static void StoreInterleaved(byte* dst, Vector256<short> even, Vector256<short> odd)
    {
        var lo = Avx2.UnpackLow(even, odd);   // e0 o0 .. e3 o3 | e8 o8 .. e11 o11
        var hi = Avx2.UnpackHigh(even, odd);  // e4 o4 .. e7 o7 | e12 o12 .. e15 o15
        Avx.Store(dst, Avx2.PackUnsignedSaturate(lo, hi)); // e0 o0 .. e7 o7 | e8 o8 .. e15 o15
    }
}
