using Runtime.Nn.Losses;
using Runtime.Vision.Ops;

namespace Runtime.Cli;

internal static partial class SelfCheckCommand
{
    private static IEnumerable<Check> BoxChecks()
    {
        yield return new Check("box_iou", g => [Boxes(g, 40, 100), Boxes(g, 30, 100)], t => Vision.Ops.Boxes.BoxIou(t[0], t[1]));
        yield return new Check("generalized_box_iou", g => [Boxes(g, 40, 100), Boxes(g, 30, 100)], t => Vision.Ops.Boxes.GeneralizedBoxIou(t[0], t[1]));
        yield return new Check("giou_loss", g => [Boxes(g, 64, 60), Boxes(g, 64, 60)], t => Vision.Ops.Boxes.GeneralizedBoxIouLoss(t[0], t[1], Reduction.Mean));
        // 3000 clustered boxes: 47 blocks of 64 on the GPU, many overlaps, some score ties.
        yield return new Check("nms", g => [Boxes(g, 3000, 400), Scores(g, 3000)], t => Vision.Ops.Boxes.Nms(t[0], t[1], 0.5), Backward: false);
        yield return new Check("nms_float64", g => [Boxes(g, 1000, 300).To(DType.Float64), Scores(g, 1000).To(DType.Float64)],
            t => Vision.Ops.Boxes.Nms(t[0], t[1], 0.3), Backward: false);
        yield return new Check("batched_nms", g => [Boxes(g, 3000, 400), Scores(g, 3000), Tensor.RandInt(0, 7, [3000], g)],
            t => Vision.Ops.Boxes.BatchedNms(t[0], t[1], t[2], 0.5), Backward: false);
        yield return new Check("box_decode", g => [Tensor.Randn([50, 8], g) * 2.0, Boxes(g, 50, 100)],
            t => new BoxCoder((10, 10, 5, 5)).DecodeSingle(t[0], t[1]));
        yield return new Check("box_encode", g => [Boxes(g, 50, 100), Boxes(g, 50, 100)],
            t => new BoxCoder((10, 10, 5, 5)).EncodeSingle(t[0], t[1]));
    }

    /// <summary>Float32 boxes [n, 4] around 8 + n / 64 cluster centres in [0, extent)^2, sides 4..40.</summary>
    private static Tensor Boxes(Generator g, int n, double extent)
    {
        int clusters = 8 + n / 64;
        var centres = new double[2 * clusters];
        for (int i = 0; i < centres.Length; i++) centres[i] = g.NextDouble() * extent;
        var data = new float[4 * n];
        for (int i = 0; i < n; i++)
        {
            int c = (int)(g.NextDouble() * clusters);
            double cx = centres[2 * c] + (g.NextDouble() - 0.5) * 30, cy = centres[2 * c + 1] + (g.NextDouble() - 0.5) * 30;
            double w = 4 + g.NextDouble() * 36, h = 4 + g.NextDouble() * 36;
            data[4 * i] = (float)(cx - w / 2);
            data[4 * i + 1] = (float)(cy - h / 2);
            data[4 * i + 2] = (float)(cx + w / 2);
            data[4 * i + 3] = (float)(cy + h / 2);
        }
        return Tensor.From<float>(data, n, 4);
    }

    /// <summary>Scores in [0, 1) rounded to 1/256, so ties occur.</summary>
    private static Tensor Scores(Generator g, int n)
    {
        var s = new float[n];
        for (int i = 0; i < n; i++) s[i] = MathF.Floor((float)g.NextDouble() * 256) / 256;
        return Tensor.From<float>(s, n);
    }
}
