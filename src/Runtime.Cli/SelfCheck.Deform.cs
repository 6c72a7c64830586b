using Runtime.Vision.Ops;

namespace Runtime.Cli;

internal static partial class SelfCheckCommand
{
    /// <summary>
    /// Modulated deformable convolution, forward and the gradients of all its inputs (input, offset, weight, mask, bias):
    /// with and without a mask, two offset groups, two weight groups with stride 2 and dilation 2. Offsets are
    /// N(0, 1) x 2, so many samples fall between pixels, on the border and outside the image.
    /// </summary>
    private static IEnumerable<Check> DeformChecks()
    {
        static Tensor Offsets(Generator g, params int[] shape)
        {
            using var o = N(g, shape);
            return o * 2.0;
        }
        yield return new Check("deform_conv2d",
            g => [N(g, 2, 6, 9, 10), Offsets(g, 2, 18, 9, 10), N(g, 5, 6, 3, 3), Pos(g, 2, 9, 9, 10), N(g, 5)],
            t => DeformConvOps.DeformConv2d(t[0], t[1], t[2], t[4], 1, 1, 1, t[3]));
        yield return new Check("deform_conv2d_nomask",
            g => [N(g, 2, 6, 9, 10), Offsets(g, 2, 18, 9, 10), N(g, 5, 6, 3, 3), N(g, 5)],
            t => DeformConvOps.DeformConv2d(t[0], t[1], t[2], t[3], 1, 1, 1));
        yield return new Check("deform_conv2d_og2",
            g => [N(g, 2, 8, 9, 10), Offsets(g, 2, 36, 9, 10), N(g, 6, 8, 3, 3), Pos(g, 2, 18, 9, 10), N(g, 6)],
            t => DeformConvOps.DeformConv2d(t[0], t[1], t[2], t[4], 1, 1, 1, t[3]));
        yield return new Check("deform_conv2d_g2_s2d2",
            g => [N(g, 1, 8, 11, 12), Offsets(g, 1, 36, 5, 5), N(g, 4, 4, 3, 3), Pos(g, 1, 18, 5, 5)],
            t => DeformConvOps.DeformConv2d(t[0], t[1], t[2], null, (2, 2), (1, 1), (2, 2), t[3]));
    }
}
