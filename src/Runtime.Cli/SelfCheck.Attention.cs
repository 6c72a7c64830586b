using Runtime.Vision.Ops;

namespace Runtime.Cli;

internal static partial class SelfCheckCommand
{
    // Fused attention and axial attention against the CPU; lengths past one tile and not multiples of it.
    private static IEnumerable<Check> AttentionChecks()
    {
        yield return new Check("sdpa", g => [N(g, 2, 3, 70, 16), N(g, 2, 3, 150, 16), N(g, 2, 3, 150, 8)],
            t => Attention.ScaledDotProductAttention(t[0], t[1], t[2]));
        yield return new Check("sdpa_f64", g => [N64(g, 1, 2, 45, 12), N64(g, 1, 2, 77, 12), N64(g, 1, 2, 77, 20)],
            t => Attention.ScaledDotProductAttention(t[0], t[1], t[2], scale: 0.2));
        yield return new Check("sdpa_bool_mask", g => [N(g, 2, 2, 70, 16), N(g, 2, 2, 150, 16), N(g, 2, 2, 150, 16), Mask(g, 2, 1, 70, 150)],
            t => Attention.ScaledDotProductAttention(t[0], t[1], t[2], t[3]));
        yield return new Check("sdpa_additive_mask", g => [N(g, 1, 2, 70, 16), N(g, 1, 2, 150, 16), N(g, 1, 2, 150, 16), N(g, 70, 150)],
            t => Attention.ScaledDotProductAttention(t[0], t[1], t[2], t[3].Detach()));
        yield return new Check("sdpa_causal", g => [N(g, 1, 4, 130, 32), N(g, 1, 4, 130, 32), N(g, 1, 4, 130, 32)],
            t => Attention.ScaledDotProductAttention(t[0], t[1], t[2], isCausal: true));
        yield return new Check("sdpa_multi_tile", g => [N(g, 1, 2, 300, 64), N(g, 1, 2, 257, 64), N(g, 1, 2, 257, 64)],
            t => Attention.ScaledDotProductAttention(t[0], t[1], t[2]));
        yield return new Check("axial_height", g => [N(g, 2, 16, 9, 11), N(g, 32, 16) * 0.25, N(g, 21, 2), N(g, 21, 2), N(g, 21, 4)],
            t => AxialAttention.Apply(t[0], t[1], t[2], t[3], t[4], 4, 11, AxialAxis.Height));
        yield return new Check("axial_width", g => [N(g, 2, 16, 9, 11), N(g, 32, 16) * 0.25, N(g, 21, 2), N(g, 21, 2), N(g, 21, 4)],
            t => AxialAttention.Apply(t[0], t[1], t[2], t[3], t[4], 4, 11, AxialAxis.Width));
    }
}
