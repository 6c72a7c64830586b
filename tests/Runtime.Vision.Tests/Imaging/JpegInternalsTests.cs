using System.Runtime.Intrinsics.X86;
using Runtime.Vision.Imaging;

namespace Runtime.Vision.Tests.Imaging;

public unsafe class JpegInternalsTests
{
    [Fact]
    public void Avx2IdctMatchesScalarIslow()
    {
        if (!Avx2.IsSupported) return;
        var rng = new Random(42);
        int* block = stackalloc int[64];
        int* copy = stackalloc int[64];
        byte* a = stackalloc byte[8 * 16];
        byte* b = stackalloc byte[8 * 16];
        for (int trial = 0; trial < 20000; trial++)
        {
            // Dequantized coefficients in the range real 8-bit JPEGs produce, often sparse (as after quantization).
            int mode = trial % 4;
            for (int i = 0; i < 64; i++)
            {
                int mag = mode switch { 0 => 2048, 1 => 256, 2 => 16, _ => 8192 };
                block[i] = mode == 1 && rng.Next(4) != 0 ? 0 : rng.Next(-mag, mag + 1);
                if (mode == 2 && i > 0 && rng.Next(8) != 0) block[i] = 0;
            }
            if (trial % 7 == 0) for (int i = 1; i < 64; i++) if (i % 8 != 0) block[i] = 0; // zero AC columns
            for (int i = 0; i < 64; i++) copy[i] = block[i];
            Idct.IslowScalar(block, a, 16);
            Idct.IslowAvx2(copy, b, 16);
            for (int r = 0; r < 8; r++)
                for (int c = 0; c < 8; c++)
                    Assert.True(a[r * 16 + c] == b[r * 16 + c], $"trial {trial}: ({r},{c}) scalar {a[r * 16 + c]} avx2 {b[r * 16 + c]}");
        }
    }

    [Fact]
    public void DcOnlyShortcutMatchesFullIdct()
    {
        int* block = stackalloc int[64];
        byte* a = stackalloc byte[64];
        byte* b = stackalloc byte[64];
        for (int dc = -9000; dc <= 9000; dc += 7)
        {
            new Span<int>(block, 64).Clear();
            block[0] = dc;
            Idct.IslowScalar(block, a, 8);
            Idct.DcOnly(dc, b, 8);
            Assert.True(new Span<byte>(a, 64).SequenceEqual(new Span<byte>(b, 64)), $"dc {dc}");
        }
    }

    /// <summary>The scalar upsampling / colour / IDCT paths reproduce the goldens exactly too.</summary>
    [Fact]
    public void ScalarPathsMatchGoldens()
    {
        JpegPixels.DisableSimd = true;
        try
        {
            foreach (var row in GoldenImageTests.JpegFiles)
            {
                string file = (string)row[0];
                var img = Image.Load(Path.Combine(GoldenImageTests.Dir, file));
                var e = GoldenImageTests.Lookup(file);
                var (max, _, _) = GoldenImageTests.Diff(img, GoldenImageTests.Expected(e), e.RowStep);
                Assert.True(max <= e.TolMax, $"{file}: scalar path differs by {max}");
            }
        }
        finally { JpegPixels.DisableSimd = false; }
    }
}
