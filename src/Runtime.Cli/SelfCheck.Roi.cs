using Runtime.Vision.Ops;

namespace Runtime.Cli;

// RoIAlign / RoIPool / MultiScaleRoIAlign on the device against the CPU, forward and backward (the
// gradient w.r.t. the features; rois are not differentiable).
internal static partial class SelfCheckCommand
{
    /// <summary>Features [n, c, h, w] and k random rois (boxes from 1 pixel to about half the image of (h, w) / scale, some partly outside).</summary>
    private static Tensor[] RoiInputs(Generator g, DType dtype, int n, int c, int h, int w, int k, double scale)
    {
        var x = Tensor.Randn([n, c, h, w], g, dtype, Device.Cpu);
        using var u = Tensor.Rand([k, 4], g, DType.Float64, Device.Cpu);
        var v = u.ToArray<double>();
        double iw = w / scale, ih = h / scale;
        var r = new double[k * 5];
        for (int i = 0; i < k; i++)
        {
            double x1 = v[i * 4] * iw * 0.9 - 0.05 * iw, y1 = v[i * 4 + 1] * ih * 0.9 - 0.05 * ih;
            r[i * 5] = i % n;
            r[i * 5 + 1] = x1;
            r[i * 5 + 2] = y1;
            r[i * 5 + 3] = x1 + 1 + v[i * 4 + 2] * iw * 0.5;
            r[i * 5 + 4] = y1 + 1 + v[i * 4 + 3] * ih * 0.5;
        }
        using var rois = Tensor.From<double>(r, [k, 5]);
        return [x, rois.To(dtype)];
    }

    /// <summary><see cref="RoiInputs"/> plus offsets N(0, 0.5^2) [k, 2, size, size] and a mask U(0, 1) [k, 1, size, size] for DeformRoiPool.</summary>
    private static Tensor[] DeformRoiInputs(Generator g, DType dtype, int n, int c, int h, int w, int k, double scale, int size)
    {
        var t = RoiInputs(g, dtype, n, c, h, w, k, scale);
        using var off = Tensor.Randn([k, 2, size, size], g, dtype, Device.Cpu);
        return [t[0], t[1], off * 0.5, Tensor.Rand([k, 1, size, size], g, dtype, Device.Cpu)];
    }

    /// <summary>Bit differences between two backward passes of DeformRoiPool (features, offset and mask gradients), as <see cref="BackwardBitDifferences"/>.</summary>
    private static Tensor DeformRoiBitDifferences(Tensor[] t)
    {
        float[] Grads()
        {
            using var x = t[0].Detach();
            using var o = t[2].Detach();
            using var m = t[3].Detach();
            foreach (var v in new[] { x, o, m }) v.RequiresGrad = true;
            using var y = RoiOps.DeformRoiPool(x, t[1], o, m, (7, 7), 0.25, 2, 0.1, aligned: true);
            using var gy = Tensor.Randn(y.Shape.ToArray(), new Generator(99), DType.Float32, y.Device);
            y.Backward(gy);
            var all = x.Grad!.ToArray<float>().Concat(o.Grad!.ToArray<float>()).Concat(m.Grad!.ToArray<float>()).ToArray();
            foreach (var v in new[] { x, o, m }) v.Grad!.Dispose();
            return all;
        }
        var a = Grads();
        var b = Grads();
        int differ = 0;
        for (int i = 0; i < a.Length; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i])) differ++;
        return Tensor.From<int>([differ], [1], t[0].Device);
    }

    /// <summary>Per-image boxes for MultiScaleRoIAlign on 256x256 images: sides from 8 to 250 so every FPN level is used.</summary>
    private static Tensor[] FpnInputs(Generator g)
    {
        var maps = new[] { 64, 32, 16, 8 }.Select(s => Tensor.Randn([2, 8, s, s], g, DType.Float32, Device.Cpu)).ToList();
        foreach (int img in new[] { 0, 1 })
        {
            using var u = Tensor.Rand([12, 3], g, DType.Float64, Device.Cpu);
            var v = u.ToArray<double>();
            var b = new float[12 * 4];
            for (int i = 0; i < 12; i++)
            {
                double side = 8 + v[i * 3] * 242, cx = v[i * 3 + 1] * 256, cy = v[i * 3 + 2] * 256;
                b[i * 4] = (float)(cx - side / 2);
                b[i * 4 + 1] = (float)(cy - side / 2);
                b[i * 4 + 2] = (float)(cx + side / 2);
                b[i * 4 + 3] = (float)(cy + side / 2);
            }
            maps.Add(Tensor.From<float>(b, [12, 4]));
        }
        return maps.ToArray();
    }

    /// <summary>
    /// How many elements of the features' gradient differ in their bits between two identical backward
    /// passes on the inputs' device (0 when the backward pass is deterministic). Compared exactly; the
    /// check runs with grad mode on (its result, an Int32, has no gradient of its own).
    /// </summary>
    private static Tensor BackwardBitDifferences(Tensor[] t, bool pool)
    {
        float[] Grad()
        {
            using var x = t[0].Detach();
            x.RequiresGrad = true;
            using var y = pool ? RoiOps.RoiPool(x, t[1], (7, 7), 0.25) : RoiOps.RoiAlign(x, t[1], (7, 7), 0.25, 2);
            using var gy = Tensor.Randn(y.Shape.ToArray(), new Generator(99), DType.Float32, y.Device);
            y.Backward(gy);
            var g = x.Grad!.ToArray<float>();
            x.Grad.Dispose();
            return g;
        }
        var a = Grad();
        var b = Grad();
        int differ = 0;
        for (int i = 0; i < a.Length; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i])) differ++;
        return Tensor.From<int>([differ], [1], t[0].Device);
    }

    private static IEnumerable<Check> RoiChecks()
    {
        yield return new Check("roi_align", g => RoiInputs(g, DType.Float32, 2, 16, 40, 48, 64, 0.25),
            t => RoiOps.RoiAlign(t[0], t[1], (7, 7), 0.25, 2, aligned: false));
        yield return new Check("roi_align_aligned", g => RoiInputs(g, DType.Float32, 2, 16, 40, 48, 64, 0.25),
            t => RoiOps.RoiAlign(t[0], t[1], (7, 7), 0.25, 2, aligned: true));
        yield return new Check("roi_align_adaptive", g => RoiInputs(g, DType.Float32, 2, 8, 30, 26, 40, 0.5),
            t => RoiOps.RoiAlign(t[0], t[1], (5, 4), 0.5, 0, aligned: false));
        yield return new Check("roi_align_adaptive_aligned", g => RoiInputs(g, DType.Float32, 3, 8, 30, 26, 40, 1.0),
            t => RoiOps.RoiAlign(t[0], t[1], (14, 14), 1.0, 0, aligned: true));
        yield return new Check("roi_align_f64", g => RoiInputs(g, DType.Float64, 2, 8, 20, 24, 30, 0.5),
            t => RoiOps.RoiAlign(t[0], t[1], (7, 7), 0.5, 2, aligned: false));
        yield return new Check("roi_pool", g => RoiInputs(g, DType.Float32, 2, 16, 40, 48, 64, 0.25),
            t => RoiOps.RoiPool(t[0], t[1], (7, 7), 0.25));
        yield return new Check("roi_pool_f64", g => RoiInputs(g, DType.Float64, 2, 8, 20, 24, 30, 1.0),
            t => RoiOps.RoiPool(t[0], t[1], (3, 3), 1.0));
        yield return new Check("roi_align_bwd_bits", g => RoiInputs(g, DType.Float32, 2, 32, 64, 64, 200, 0.25),
            t => BackwardBitDifferences(t, pool: false));
        yield return new Check("roi_pool_bwd_bits", g => RoiInputs(g, DType.Float32, 2, 32, 64, 64, 200, 0.25),
            t => BackwardBitDifferences(t, pool: true));
        yield return new Check("deform_roi_pool", g => DeformRoiInputs(g, DType.Float32, 2, 16, 40, 48, 64, 0.25, 7),
            t => RoiOps.DeformRoiPool(t[0], t[1], t[2], t[3], (7, 7), 0.25, 2, 0.1, aligned: true));
        yield return new Check("deform_roi_pool_adaptive", g => DeformRoiInputs(g, DType.Float32, 2, 8, 30, 26, 40, 0.5, 5),
            t => RoiOps.DeformRoiPool(t[0], t[1], t[2], t[3], (5, 5), 0.5, 0, 0.1, aligned: false));
        yield return new Check("deform_roi_pool_f64", g => DeformRoiInputs(g, DType.Float64, 2, 8, 20, 24, 30, 0.5, 3),
            t => RoiOps.DeformRoiPool(t[0], t[1], t[2], t[3], (3, 3), 0.5, 2, 0.2, aligned: true));
        yield return new Check("deform_roi_pool_bwd_bits", g => DeformRoiInputs(g, DType.Float32, 2, 32, 64, 64, 200, 0.25, 7), DeformRoiBitDifferences);
        yield return new Check("multiscale_roi_align", FpnInputs, t =>
        {
            using var m = new MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2, canonicalScale: 112);
            var maps = Enumerable.Range(0, 4).Select(i => new KeyValuePair<string, Tensor>(i.ToString(System.Globalization.CultureInfo.InvariantCulture), t[i]));
            return m.Forward(maps, [t[4], t[5]], [(256, 256), (256, 256)]);
        });
    }
}
