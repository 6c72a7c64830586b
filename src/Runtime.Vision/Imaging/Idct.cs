using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Runtime.Vision.Imaging;

/// <summary>
/// libjpeg's accurate integer inverse DCT (jidctint.c, "islow": Loeffler-Ligtenberg-Moschytz with 13-bit
/// constants, 2 extra bits of precision between the passes), bit-exact with libjpeg-turbo's JDCT_ISLOW.
/// </summary>
internal static unsafe class Idct
{
    private const int ConstBits = 13, Pass1Bits = 2;
    private const int Fix_0_298631336 = 2446, Fix_0_390180644 = 3196, Fix_0_541196100 = 4433, Fix_0_765366865 = 6270,
        Fix_0_899976223 = 7373, Fix_1_175875602 = 9633, Fix_1_501321110 = 12299, Fix_1_847759065 = 15137,
        Fix_1_961570560 = 16069, Fix_2_053119869 = 16819, Fix_2_562915447 = 20995, Fix_3_072711026 = 25172;

    /// <summary>
    /// <paramref name="block"/>: 64 dequantized coefficients in natural (row-major) order; writes the 8x8 samples
    /// (level-shifted by 128, clamped to 0..255) at <paramref name="output"/> with row pitch <paramref name="stride"/>.
    /// </summary>
    public static void Islow(int* block, byte* output, int stride)
    {
        if (Avx2.IsSupported && !JpegPixels.DisableSimd) { IslowAvx2(block, output, stride); return; }
        IslowScalar(block, output, stride);
    }

    internal static void IslowScalar(int* block, byte* output, int stride)
    {
        int* ws = stackalloc int[64];
        // Pass 1: columns.
        for (int col = 0; col < 8; col++)
        {
            int* inp = block + col;
            int* wp = ws + col;
            if (inp[8] == 0 && inp[16] == 0 && inp[24] == 0 && inp[32] == 0 && inp[40] == 0 && inp[48] == 0 && inp[56] == 0)
            {
                int dc = inp[0] << Pass1Bits;
                wp[0] = dc; wp[8] = dc; wp[16] = dc; wp[24] = dc; wp[32] = dc; wp[40] = dc; wp[48] = dc; wp[56] = dc;
                continue;
            }
            int z2 = inp[16], z3 = inp[48];
            int z1 = (z2 + z3) * Fix_0_541196100;
            int tmp2 = z1 + z3 * -Fix_1_847759065;
            int tmp3 = z1 + z2 * Fix_0_765366865;
            z2 = inp[0]; z3 = inp[32];
            int tmp0 = (z2 + z3) << ConstBits;
            int tmp1 = (z2 - z3) << ConstBits;
            int tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

            tmp0 = inp[56]; tmp1 = inp[40]; tmp2 = inp[24]; tmp3 = inp[8];
            Odd(ref tmp0, ref tmp1, ref tmp2, ref tmp3);

            const int sh = ConstBits - Pass1Bits, rnd = 1 << (sh - 1);
            wp[0] = (tmp10 + tmp3 + rnd) >> sh;
            wp[56] = (tmp10 - tmp3 + rnd) >> sh;
            wp[8] = (tmp11 + tmp2 + rnd) >> sh;
            wp[48] = (tmp11 - tmp2 + rnd) >> sh;
            wp[16] = (tmp12 + tmp1 + rnd) >> sh;
            wp[40] = (tmp12 - tmp1 + rnd) >> sh;
            wp[24] = (tmp13 + tmp0 + rnd) >> sh;
            wp[32] = (tmp13 - tmp0 + rnd) >> sh;
        }
        // Pass 2: rows.
        for (int row = 0; row < 8; row++)
        {
            int* wp = ws + row * 8;
            byte* o = output + row * stride;
            if (wp[1] == 0 && wp[2] == 0 && wp[3] == 0 && wp[4] == 0 && wp[5] == 0 && wp[6] == 0 && wp[7] == 0)
            {
                byte v = Clamp((wp[0] + (1 << (Pass1Bits + 2))) >> (Pass1Bits + 3));
                o[0] = v; o[1] = v; o[2] = v; o[3] = v; o[4] = v; o[5] = v; o[6] = v; o[7] = v;
                continue;
            }
            int z2 = wp[2], z3 = wp[6];
            int z1 = (z2 + z3) * Fix_0_541196100;
            int tmp2 = z1 + z3 * -Fix_1_847759065;
            int tmp3 = z1 + z2 * Fix_0_765366865;
            int tmp0 = (wp[0] + wp[4]) << ConstBits;
            int tmp1 = (wp[0] - wp[4]) << ConstBits;
            int tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

            tmp0 = wp[7]; tmp1 = wp[5]; tmp2 = wp[3]; tmp3 = wp[1];
            Odd(ref tmp0, ref tmp1, ref tmp2, ref tmp3);

            const int sh = ConstBits + Pass1Bits + 3, rnd = 1 << (sh - 1);
            o[0] = Clamp((tmp10 + tmp3 + rnd) >> sh);
            o[7] = Clamp((tmp10 - tmp3 + rnd) >> sh);
            o[1] = Clamp((tmp11 + tmp2 + rnd) >> sh);
            o[6] = Clamp((tmp11 - tmp2 + rnd) >> sh);
            o[2] = Clamp((tmp12 + tmp1 + rnd) >> sh);
            o[5] = Clamp((tmp12 - tmp1 + rnd) >> sh);
            o[3] = Clamp((tmp13 + tmp0 + rnd) >> sh);
            o[4] = Clamp((tmp13 - tmp0 + rnd) >> sh);
        }
    }

    /// <summary>
    /// The same arithmetic eight lanes at a time: pass 1 treats the 8 rows as vectors (each lane one column), the
    /// block is transposed, pass 2 runs the same way, and a second transpose gives the output rows. Integer
    /// operations in the same order as the scalar code, so the output is identical (the scalar code's zero-column
    /// shortcuts compute the same values as the full formulas).
    /// </summary>
    internal static void IslowAvx2(int* block, byte* output, int stride)
    {
        var r0 = Avx.LoadVector256(block); var r1 = Avx.LoadVector256(block + 8);
        var r2 = Avx.LoadVector256(block + 16); var r3 = Avx.LoadVector256(block + 24);
        var r4 = Avx.LoadVector256(block + 32); var r5 = Avx.LoadVector256(block + 40);
        var r6 = Avx.LoadVector256(block + 48); var r7 = Avx.LoadVector256(block + 56);
        Pass(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits - Pass1Bits, 0);
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Pass(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits + Pass1Bits + 3, 128);
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        // Saturating packs clamp to 0..255; then put each row's 8 bytes together.
        var lo = Avx2.PackUnsignedSaturate(Avx2.PackSignedSaturate(r0, r1), Avx2.PackSignedSaturate(r2, r3));
        var hi = Avx2.PackUnsignedSaturate(Avx2.PackSignedSaturate(r4, r5), Avx2.PackSignedSaturate(r6, r7));
        var perm = Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7);
        lo = Avx2.PermuteVar8x32(lo.AsInt32(), perm).AsByte();
        hi = Avx2.PermuteVar8x32(hi.AsInt32(), perm).AsByte();
        var l64 = lo.AsUInt64(); var h64 = hi.AsUInt64();
        *(ulong*)output = l64.GetElement(0);
        *(ulong*)(output + stride) = l64.GetElement(1);
        *(ulong*)(output + 2 * stride) = l64.GetElement(2);
        *(ulong*)(output + 3 * stride) = l64.GetElement(3);
        *(ulong*)(output + 4 * stride) = h64.GetElement(0);
        *(ulong*)(output + 5 * stride) = h64.GetElement(1);
        *(ulong*)(output + 6 * stride) = h64.GetElement(2);
        *(ulong*)(output + 7 * stride) = h64.GetElement(3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pass(ref Vector256<int> v0, ref Vector256<int> v1, ref Vector256<int> v2, ref Vector256<int> v3,
        ref Vector256<int> v4, ref Vector256<int> v5, ref Vector256<int> v6, ref Vector256<int> v7, [System.Diagnostics.CodeAnalysis.ConstantExpected] byte shift, int add)
    {
        // Even part.
        var z2 = v2; var z3 = v6;
        var z1 = Avx2.MultiplyLow(Avx2.Add(z2, z3), Vector256.Create(Fix_0_541196100));
        var tmp2 = Avx2.Add(z1, Avx2.MultiplyLow(z3, Vector256.Create(-Fix_1_847759065)));
        var tmp3 = Avx2.Add(z1, Avx2.MultiplyLow(z2, Vector256.Create(Fix_0_765366865)));
        var tmp0 = Avx2.ShiftLeftLogical(Avx2.Add(v0, v4), ConstBits);
        var tmp1 = Avx2.ShiftLeftLogical(Avx2.Subtract(v0, v4), ConstBits);
        var tmp10 = Avx2.Add(tmp0, tmp3); var tmp13 = Avx2.Subtract(tmp0, tmp3);
        var tmp11 = Avx2.Add(tmp1, tmp2); var tmp12 = Avx2.Subtract(tmp1, tmp2);
        // Odd part.
        var o0 = v7; var o1 = v5; var o2 = v3; var o3 = v1;
        var q1 = Avx2.Add(o0, o3); var q2 = Avx2.Add(o1, o2); var q3 = Avx2.Add(o0, o2); var q4 = Avx2.Add(o1, o3);
        var z5 = Avx2.MultiplyLow(Avx2.Add(q3, q4), Vector256.Create(Fix_1_175875602));
        o0 = Avx2.MultiplyLow(o0, Vector256.Create(Fix_0_298631336));
        o1 = Avx2.MultiplyLow(o1, Vector256.Create(Fix_2_053119869));
        o2 = Avx2.MultiplyLow(o2, Vector256.Create(Fix_3_072711026));
        o3 = Avx2.MultiplyLow(o3, Vector256.Create(Fix_1_501321110));
        q1 = Avx2.MultiplyLow(q1, Vector256.Create(-Fix_0_899976223));
        q2 = Avx2.MultiplyLow(q2, Vector256.Create(-Fix_2_562915447));
        q3 = Avx2.Add(Avx2.MultiplyLow(q3, Vector256.Create(-Fix_1_961570560)), z5);
        q4 = Avx2.Add(Avx2.MultiplyLow(q4, Vector256.Create(-Fix_0_390180644)), z5);
        o0 = Avx2.Add(o0, Avx2.Add(q1, q3)); o1 = Avx2.Add(o1, Avx2.Add(q2, q4));
        o2 = Avx2.Add(o2, Avx2.Add(q2, q3)); o3 = Avx2.Add(o3, Avx2.Add(q1, q4));
        // Descale with rounding (+ the level shift in pass 2).
        var rnd = Vector256.Create(1 << (shift - 1));
        var off = Vector256.Create(add);
        v0 = Avx2.Add(Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Add(tmp10, o3), rnd), shift), off);
        v7 = Avx2.Add(Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Subtract(tmp10, o3), rnd), shift), off);
        v1 = Avx2.Add(Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Add(tmp11, o2), rnd), shift), off);
        v6 = Avx2.Add(Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Subtract(tmp11, o2), rnd), shift), off);
        v2 = Avx2.Add(Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Add(tmp12, o1), rnd), shift), off);
        v5 = Avx2.Add(Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Subtract(tmp12, o1), rnd), shift), off);
        v3 = Avx2.Add(Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Add(tmp13, o0), rnd), shift), off);
        v4 = Avx2.Add(Avx2.ShiftRightArithmetic(Avx2.Add(Avx2.Subtract(tmp13, o0), rnd), shift), off);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose(ref Vector256<int> r0, ref Vector256<int> r1, ref Vector256<int> r2, ref Vector256<int> r3,
        ref Vector256<int> r4, ref Vector256<int> r5, ref Vector256<int> r6, ref Vector256<int> r7)
    {
        var t0 = Avx2.UnpackLow(r0, r1).AsInt64(); var t1 = Avx2.UnpackHigh(r0, r1).AsInt64();
        var t2 = Avx2.UnpackLow(r2, r3).AsInt64(); var t3 = Avx2.UnpackHigh(r2, r3).AsInt64();
        var t4 = Avx2.UnpackLow(r4, r5).AsInt64(); var t5 = Avx2.UnpackHigh(r4, r5).AsInt64();
        var t6 = Avx2.UnpackLow(r6, r7).AsInt64(); var t7 = Avx2.UnpackHigh(r6, r7).AsInt64();
        var u0 = Avx2.UnpackLow(t0, t2).AsInt32(); var u1 = Avx2.UnpackHigh(t0, t2).AsInt32();
        var u2 = Avx2.UnpackLow(t1, t3).AsInt32(); var u3 = Avx2.UnpackHigh(t1, t3).AsInt32();
        var u4 = Avx2.UnpackLow(t4, t6).AsInt32(); var u5 = Avx2.UnpackHigh(t4, t6).AsInt32();
        var u6 = Avx2.UnpackLow(t5, t7).AsInt32(); var u7 = Avx2.UnpackHigh(t5, t7).AsInt32();
        r0 = Avx2.Permute2x128(u0, u4, 0x20); r4 = Avx2.Permute2x128(u0, u4, 0x31);
        r1 = Avx2.Permute2x128(u1, u5, 0x20); r5 = Avx2.Permute2x128(u1, u5, 0x31);
        r2 = Avx2.Permute2x128(u2, u6, 0x20); r6 = Avx2.Permute2x128(u2, u6, 0x31);
        r3 = Avx2.Permute2x128(u3, u7, 0x20); r7 = Avx2.Permute2x128(u3, u7, 0x31);
    }

    /// <summary>The IDCT of a block whose only non-zero coefficient is the (dequantized) DC: a constant block.</summary>
    public static void DcOnly(int dc, byte* output, int stride)
    {
        // Same arithmetic as the two shortcut passes of Islow: (dc << 2 + 16) >> 5.
        byte v = Clamp(((dc << Pass1Bits) + (1 << (Pass1Bits + 2))) >> (Pass1Bits + 3));
        ulong fill = v * 0x0101010101010101UL;
        for (int r = 0; r < 8; r++) *(ulong*)(output + r * stride) = fill;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Odd(ref int tmp0, ref int tmp1, ref int tmp2, ref int tmp3)
    {
        int z1 = tmp0 + tmp3, z2 = tmp1 + tmp2, z3 = tmp0 + tmp2, z4 = tmp1 + tmp3;
        int z5 = (z3 + z4) * Fix_1_175875602;
        tmp0 *= Fix_0_298631336; tmp1 *= Fix_2_053119869; tmp2 *= Fix_3_072711026; tmp3 *= Fix_1_501321110;
        z1 *= -Fix_0_899976223; z2 *= -Fix_2_562915447; z3 *= -Fix_1_961570560; z4 *= -Fix_0_390180644;
        z3 += z5; z4 += z5;
        tmp0 += z1 + z3; tmp1 += z2 + z4; tmp2 += z2 + z3; tmp3 += z1 + z4;
    }

    /// <summary>libjpeg's post-IDCT range limit: value + 128 clamped to 0..255 (libjpeg wraps values beyond ±512 for corrupt data; we clamp).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Clamp(int v)
    {
        v += 128;
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}
