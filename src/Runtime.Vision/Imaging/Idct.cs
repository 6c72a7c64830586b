using System.Runtime.CompilerServices;

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
