namespace Runtime.Backends;

/// <summary>
/// The sizes of one modulated deformable convolution (DCNv2, torchvision's <c>deform_conv2d</c>): the convolution
/// geometry of <see cref="Conv"/> (its <c>Groups</c> are the weight groups) plus the number of offset groups. Input
/// channel <c>c</c> is moved by offset group <c>c / (Cin / OffsetGroups)</c>; tap <c>k = i*kW + j</c> of group
/// <c>g</c> reads its displacement from offset channels <c>g*2K + 2k</c> (rows, Δy) and <c>g*2K + 2k + 1</c>
/// (columns, Δx) and its modulation from mask channel <c>g*K + k</c>, where <c>K = kH*kW</c>.
/// </summary>
public readonly record struct DeformGeometry(Conv2dGeometry Conv, int OffsetGroups)
{
    /// <summary>Kernel taps <c>kH * kW</c>.</summary>
    public int Taps => Conv.KernelH * Conv.KernelW;

    /// <summary>Input channels per offset group.</summary>
    public int ChannelsPerOffsetGroup => Conv.InChannels / OffsetGroups;

    /// <summary>Channels of the offset tensor (<c>2 * OffsetGroups * kH * kW</c>).</summary>
    public int OffsetChannels => 2 * OffsetGroups * Taps;

    /// <summary>Channels of the mask tensor (<c>OffsetGroups * kH * kW</c>).</summary>
    public int MaskChannels => OffsetGroups * Taps;

    /// <summary>The same geometry for <paramref name="images"/> images (a chunk of the batch).</summary>
    public DeformGeometry WithBatch(int images) => this with { Conv = Conv with { Batch = images } };
}

/// <summary>
/// Modulated deformable convolution kernels. A sample of input channel <c>c</c> for tap <c>(i, j)</c> at output
/// position <c>(oy, ox)</c> is read at <c>y = oy*sH - pH + i*dH + Δy</c>, <c>x = ox*sW - pW + j*dW + Δx</c> by bilinear
/// interpolation over the four surrounding pixels, each pixel outside the image counting as zero (so a sample with
/// <c>y &lt;= -1</c>, <c>y &gt;= H</c>, <c>x &lt;= -1</c> or <c>x &gt;= W</c> is zero), and multiplied by the mask (1 without one).
/// The three primitives are the deformable unfolding, its adjoint (the input gradient) and the offset/mask gradient;
/// <see cref="DeformConv2d"/> and <see cref="DeformConv2dBackward"/> compose them with <see cref="MatMul"/> by default
/// (<see cref="DeformComposition"/>), which a backend replaces where it has something faster.
/// Column buffers are laid out as for <see cref="Im2Col"/>: <c>[Cin*kH*kW, N*OH*OW]</c>, row <c>(c*kH + i)*kW + j</c>,
/// column <c>(n*OH + oy)*OW + ox</c>, for the <c>N = Conv.Batch</c> images of the views passed. Every view is
/// contiguous (x [N, Cin, H, W], offset [N, 2*G*K, OH, OW], mask [N, G*K, OH, OW]); the geometry has been validated
/// by the operator front-end; outputs are written completely.
/// </summary>
public partial interface IBackend
{
    /// <summary>columns = the modulated samples of x at the offset positions (see the interface remarks).</summary>
    void DeformIm2Col(TensorView x, TensorView offset, TensorView? mask, TensorView columns, DeformGeometry g);

    /// <summary>
    /// The adjoint of <see cref="DeformIm2Col"/> with respect to x: gx [N, Cin, H, W] = the sum, over every column entry,
    /// of the entry times its mask and bilinear weight, added to each of the (in-image) pixels it was sampled from.
    /// Must be deterministic (the same bits every run).
    /// </summary>
    void DeformCol2Im(TensorView columns, TensorView offset, TensorView? mask, TensorView gx, DeformGeometry g);

    /// <summary>
    /// The offset and mask gradients given the columns gradient: for each offset (mask) element, the sum over the
    /// channels of its offset group of the columns gradient times the derivative of the modulated sample with respect
    /// to Δy or Δx (times the unmodulated sample for the mask). The derivative is torchvision's: the bilinear slope
    /// between the floor and floor + 1 pixels in the moving direction, with out-of-image pixels zero (so at an integer
    /// position it is the slope towards the next pixel). gMask is written only when both mask views are given.
    /// </summary>
    void DeformCol2ImCoord(TensorView columns, TensorView x, TensorView offset, TensorView? mask, TensorView gOffset, TensorView? gMask, DeformGeometry g);

    /// <summary>y [N, Cout, OH, OW] = Σ weight · (modulated samples of x) (+ bias), weight [Cout, Cin/groups, kH, kW].</summary>
    void DeformConv2d(TensorView x, TensorView offset, TensorView? mask, TensorView weight, TensorView? bias, TensorView y, DeformGeometry g) =>
        DeformComposition.Forward(this, x, offset, mask, weight, bias, y, g);

    /// <summary>
    /// The gradients of <see cref="DeformConv2d"/> except the bias's, given gy [N, Cout, OH, OW]: each output view that is
    /// not null is written (gx like x, gOffset like offset, gMask like mask, gWeight like weight).
    /// </summary>
    void DeformConv2dBackward(TensorView gy, TensorView x, TensorView offset, TensorView? mask, TensorView weight,
        TensorView? gx, TensorView? gOffset, TensorView? gMask, TensorView? gWeight, DeformGeometry g) =>
        DeformComposition.Backward(this, gy, x, offset, mask, weight, gx, gOffset, gMask, gWeight, g);
}

/// <summary>
/// The default deformable-convolution products of <see cref="IBackend"/>: the batch is cut into chunks of images whose
/// column buffer stays under a budget; each chunk is unfolded by <see cref="IBackend.DeformIm2Col"/> and multiplied by the
/// weight with one <see cref="IBackend.MatMul"/> batch entry per weight group. The backward pass runs the transposed
/// product into a columns gradient and hands it to the two gradient primitives; the weight gradient accumulates the
/// chunks in order, so the result does not depend on timing.
/// </summary>
public static class DeformComposition
{
    /// <summary>Most elements one chunk's column buffer may hold.</summary>
    private const long ColumnBudget = 1L << 24;

    public static void Forward(IBackend backend, TensorView x, TensorView offset, TensorView? mask, TensorView weight, TensorView? bias, TensorView y, DeformGeometry dg)
    {
        var g = dg.Conv;
        var dt = x.DType;
        int images = ChunkImages(g);
        int kg = g.InPerGroup * dg.Taps, cog = g.OutPerGroup, L = g.OutPlane;
        var cols = backend.Allocate(Math.Max(1, (long)g.ColumnRows * images * L * dt.SizeOf()));
        var rows = backend.Allocate(Math.Max(1, (long)g.OutChannels * images * L * dt.SizeOf()));
        try
        {
            for (int n0 = 0; n0 < g.Batch; n0 += images)
            {
                int cnt = Math.Min(images, g.Batch - n0);
                var gc = dg.WithBatch(cnt);
                int width = cnt * L;
                var columns = new TensorView(cols, 0, [g.ColumnRows, width], [width, 1], dt);
                backend.DeformIm2Col(Images(x, n0, cnt), Images(offset, n0, cnt), mask is { } m ? Images(m, n0, cnt) : null, columns, gc);
                var a = new TensorView(weight.Storage, weight.Offset, [g.Groups, cog, kg], [(long)cog * kg, kg, 1], dt);
                var b = new TensorView(cols, 0, [g.Groups, kg, width], [(long)kg * width, width, 1], dt);
                backend.MatMul(a, b, new TensorView(rows, 0, [g.Groups, cog, width], [(long)cog * width, width, 1], dt), false);
                // rows [Cout, cnt, L] -> y images [cnt, Cout, L].
                var src = new TensorView(rows, 0, [cnt, g.OutChannels, L], [L, width, 1], dt);
                backend.Copy(src, new TensorView(y.Storage, y.Offset + (long)n0 * g.OutChannels * L, src.Shape, [(long)g.OutChannels * L, L, 1], dt));
            }
        }
        finally
        {
            cols.Release();
            rows.Release();
        }
        if (bias is { } bv)
        {
            var yv = new TensorView(y.Storage, y.Offset, [g.Batch, g.OutChannels, L], [(long)g.OutChannels * L, L, 1], dt);
            backend.Binary(BinaryOp.Add, yv, new TensorView(bv.Storage, bv.Offset, yv.Shape, [0, 1, 0], dt), yv);
        }
    }

    public static void Backward(IBackend backend, TensorView gy, TensorView x, TensorView offset, TensorView? mask, TensorView weight,
        TensorView? gx, TensorView? gOffset, TensorView? gMask, TensorView? gWeight, DeformGeometry dg)
    {
        var g = dg.Conv;
        var dt = x.DType;
        int images = ChunkImages(g);
        int kg = g.InPerGroup * dg.Taps, cog = g.OutPerGroup, L = g.OutPlane;
        bool needColumnsGrad = gx is not null || gOffset is not null || gMask is not null;
        var cols = backend.Allocate(Math.Max(1, (long)g.ColumnRows * images * L * dt.SizeOf()));
        var rows = backend.Allocate(Math.Max(1, (long)g.OutChannels * images * L * dt.SizeOf()));
        try
        {
            if (gWeight is { } gw0 && g.Batch == 0) backend.Fill(gw0, 0);
            for (int n0 = 0; n0 < g.Batch; n0 += images)
            {
                int cnt = Math.Min(images, g.Batch - n0);
                var gc = dg.WithBatch(cnt);
                int width = cnt * L;
                var xs = Images(x, n0, cnt);
                var os = Images(offset, n0, cnt);
                TensorView? ms = mask is { } m ? Images(m, n0, cnt) : null;
                // gy images [cnt, Cout, L] -> rows [Cout, cnt*L].
                var gsrc = Images(gy, n0, cnt);
                var rowsView = new TensorView(rows, 0, [g.OutChannels, cnt, L], [width, L, 1], dt);
                backend.Copy(new TensorView(gsrc.Storage, gsrc.Offset, [g.OutChannels, cnt, L], [L, (long)g.OutChannels * L, 1], dt), rowsView);
                var columns = new TensorView(cols, 0, [g.ColumnRows, width], [width, 1], dt);
                if (gWeight is { } gw)
                {
                    backend.DeformIm2Col(xs, os, ms, columns, gc);
                    var a = new TensorView(rows, 0, [g.Groups, cog, width], [(long)cog * width, width, 1], dt);
                    var b = new TensorView(cols, 0, [g.Groups, width, kg], [(long)kg * width, 1, width], dt);
                    var c = new TensorView(gw.Storage, gw.Offset, [g.Groups, cog, kg], [(long)cog * kg, kg, 1], dt);
                    backend.MatMul(a, b, c, accumulate: n0 > 0);
                }
                if (!needColumnsGrad) continue;
                {
                    var a = new TensorView(weight.Storage, weight.Offset, [g.Groups, kg, cog], [(long)cog * kg, 1, kg], dt);
                    var b = new TensorView(rows, 0, [g.Groups, cog, width], [(long)cog * width, width, 1], dt);
                    backend.MatMul(a, b, new TensorView(cols, 0, [g.Groups, kg, width], [(long)kg * width, width, 1], dt), false);
                }
                if (gx is { } gxv) backend.DeformCol2Im(columns, os, ms, Images(gxv, n0, cnt), gc);
                if (gOffset is { } gov)
                    backend.DeformCol2ImCoord(columns, xs, os, ms, Images(gov, n0, cnt), gMask is { } gmv ? Images(gmv, n0, cnt) : null, gc);
                else if (gMask is not null)
                    throw new ArgumentException("DeformConv2dBackward: a mask gradient is computed together with the offset gradient; pass gOffset too", nameof(gMask));
            }
        }
        finally
        {
            cols.Release();
            rows.Release();
        }
    }

    /// <summary>Images per chunk: as many as keep the column (and row) buffer under the budget, at least one.</summary>
    public static int ChunkImages(Conv2dGeometry g)
    {
        long perImage = Math.Max(1L, (long)Math.Max(g.ColumnRows, g.OutChannels) * g.OutPlane);
        return (int)Math.Clamp(ColumnBudget / perImage, 1, Math.Max(1, g.Batch));
    }

    /// <summary>Images n0 .. n0+count of a contiguous [N, ...] tensor view, as a contiguous view of the same rank.</summary>
    private static TensorView Images(TensorView t, int n0, int count)
    {
        long per = 1;
        for (int d = 1; d < t.Shape.Length; d++) per *= t.Shape[d];
        var shape = (int[])t.Shape.Clone();
        shape[0] = count;
        return new TensorView(t.Storage, t.Offset + n0 * per, shape, (long[])t.Strides.Clone(), t.DType);
    }
}
