namespace Runtime.Backends;

/// <summary>
/// The sizes of one 2-D convolution, always stated for the forward convolution
/// <c>y [N, Cout, OH, OW] = conv(x [N, Cin, H, W], w [Cout, Cin/groups, kH, kW])</c>. A transposed convolution is
/// the same relation read backwards (its input is <c>y</c>, its output <c>x</c>), so one geometry serves both
/// operators. The output size is given explicitly rather than derived, because a transposed convolution's output
/// padding makes <c>H</c> larger than the forward formula would give.
/// </summary>
public readonly record struct Conv2dGeometry(
    int Batch, int InChannels, int Height, int Width,
    int OutChannels, int OutHeight, int OutWidth,
    int KernelH, int KernelW,
    int StrideH, int StrideW,
    int PadH, int PadW,
    int DilationH, int DilationW,
    int Groups)
{
    public int InPerGroup => InChannels / Groups;

    public int OutPerGroup => OutChannels / Groups;

    /// <summary>Rows of the column matrix: one per (input channel, kernel row, kernel column).</summary>
    public int ColumnRows => InChannels * KernelH * KernelW;

    /// <summary>Output pixels of one image (<c>OH * OW</c>).</summary>
    public int OutPlane => OutHeight * OutWidth;

    /// <summary>Input pixels of one image (<c>H * W</c>).</summary>
    public int InPlane => Height * Width;

    /// <summary>True when the convolution is a plain matrix product per image (1x1 kernel, stride 1, no padding).</summary>
    public bool IsPointwise => KernelH == 1 && KernelW == 1 && StrideH == 1 && StrideW == 1 && PadH == 0 && PadW == 0;

    /// <summary>Number of multiply-adds of the forward convolution (each backward product costs the same).</summary>
    public double MultiplyAdds => (double)Batch * OutChannels * OutPlane * InPerGroup * KernelH * KernelW;
}

/// <summary>
/// Convolution kernels. <see cref="Im2Col"/> and <see cref="Col2Im"/> are the primitives; the three products
/// (<see cref="Conv2d"/>, <see cref="Conv2dGradInput"/>, <see cref="Conv2dGradWeight"/>) have a default composition
/// out of them, <see cref="MatMul"/> and <see cref="Copy"/>, which a backend replaces where it has something faster.
/// The two primitives themselves have a default built from strided <see cref="Copy"/>, <see cref="Fill"/> and
/// <see cref="Binary"/>, so a backend gets correct convolutions before it writes a single conv kernel.
/// Every view passed here is contiguous; the geometry has been validated by the operator front-end.
/// </summary>
public partial interface IBackend
{
    /// <summary>
    /// Unfolds x [N, C, H, W] into columns [C*kH*kW, N*OH*OW]: row <c>(c*kH + i)*kW + j</c>, column
    /// <c>(n*OH + oh)*OW + ow</c> holds <c>x[n, c, oh*sH - pH + i*dH, ow*sW - pW + j*dW]</c>, or 0 outside the image.
    /// </summary>
    void Im2Col(TensorView x, TensorView columns, Conv2dGeometry g) => ConvComposition.Im2Col(this, x, columns, g);

    /// <summary>
    /// The adjoint of <see cref="Im2Col"/>: x [N, C, H, W] = the sum, over every column entry, of the entries that
    /// unfold from each pixel (entries that fall on padding are dropped). Must be deterministic.
    /// </summary>
    void Col2Im(TensorView columns, TensorView x, Conv2dGeometry g) => ConvComposition.Col2Im(this, columns, x, g);

    /// <summary>y [N, Cout, OH, OW] = conv(x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW]) (+ bias [Cout]).</summary>
    void Conv2d(TensorView x, TensorView weight, TensorView? bias, TensorView y, Conv2dGeometry g) =>
        ConvComposition.Conv2d(this, x, weight, bias, y, g);

    /// <summary>
    /// The inference convolution: y = conv(x, weight) (+ bias) (+ residual), then ReLU when <paramref name="relu"/>,
    /// with residual [N, Cout, OH, OW] shaped like y. A backend applies the bias, the residual sum and the ReLU as
    /// it produces each output tile (the epilogue) instead of in passes over y; the default composes the three.
    /// </summary>
    void Conv2dFused(TensorView x, TensorView weight, TensorView? bias, TensorView? residual, bool relu, TensorView y, Conv2dGeometry g) =>
        ConvComposition.Conv2dFused(this, x, weight, bias, residual, relu, y, g);

    /// <summary>gx [N, Cin, H, W] = the gradient of <see cref="Conv2d"/> with respect to x, given gy [N, Cout, OH, OW] (this is also the transposed convolution).</summary>
    void Conv2dGradInput(TensorView gy, TensorView weight, TensorView gx, Conv2dGeometry g) =>
        ConvComposition.Conv2dGradInput(this, gy, weight, gx, g);

    /// <summary>gw [Cout, Cin/groups, kH, kW] = the gradient of <see cref="Conv2d"/> with respect to the weight, given x and gy.</summary>
    void Conv2dGradWeight(TensorView x, TensorView gy, TensorView gw, Conv2dGeometry g) =>
        ConvComposition.Conv2dGradWeight(this, x, gy, gw, g);
}

/// <summary>
/// The default convolution kernels of <see cref="IBackend"/>, written with the backend's own primitives. Public so that
/// a backend which replaces a method for some geometries (a direct depthwise kernel, say) can fall back to the
/// composition for the rest; the tests check the compositions against every device's own kernels.
/// </summary>
public static class ConvComposition
{
    public static void Im2Col(IBackend backend, TensorView x, TensorView columns, Conv2dGeometry g)
    {
        var (xp, hp, wp, owned) = PaddedCopy(backend, x, g);
        try
        {
            long plane = (long)hp * wp;
            var source = new TensorView(xp, 0,
                [g.InChannels, g.KernelH, g.KernelW, g.Batch, g.OutHeight, g.OutWidth],
                [plane, (long)g.DilationH * wp, g.DilationW, g.InChannels * plane, (long)g.StrideH * wp, g.StrideW], x.DType);
            var dest = new TensorView(columns.Storage, columns.Offset, source.Shape, ContiguousStrides(source.Shape), columns.DType);
            backend.Copy(owned ? source : Shift(source, x.Offset), dest);
        }
        finally
        {
            if (owned) xp.Release();
        }
    }

    public static void Col2Im(IBackend backend, TensorView columns, TensorView x, Conv2dGeometry g)
    {
        var (hp, wp) = PaddedSize(g);
        long plane = (long)hp * wp;
        int es = x.DType.SizeOf();
        var xp = backend.Allocate((long)g.Batch * g.InChannels * plane * es);
        try
        {
            var padded = new TensorView(xp, 0, [g.Batch, g.InChannels, hp, wp], [g.InChannels * plane, plane, wp, 1], x.DType);
            backend.Fill(padded, 0);
            long cols = (long)g.Batch * g.OutPlane;
            int[] tapShape = [g.InChannels, g.Batch, g.OutHeight, g.OutWidth];
            long[] tapStrides = [plane, g.InChannels * plane, (long)g.StrideH * wp, g.StrideW];
            for (int i = 0; i < g.KernelH; i++)
            {
                for (int j = 0; j < g.KernelW; j++)
                {
                    // One tap: distinct output positions touch distinct pixels, so an in-place add is race-free.
                    var tap = new TensorView(xp, (long)i * g.DilationH * wp + (long)j * g.DilationW, tapShape, tapStrides, x.DType);
                    var part = new TensorView(columns.Storage, columns.Offset + ((long)i * g.KernelW + j) * cols, tapShape,
                        [(long)g.KernelH * g.KernelW * cols, g.OutPlane, g.OutWidth, 1], x.DType);
                    backend.Binary(BinaryOp.Add, tap, part, tap);
                }
            }
            var interior = new TensorView(xp, (long)g.PadH * wp + g.PadW, [g.Batch, g.InChannels, g.Height, g.Width],
                [g.InChannels * plane, plane, wp, 1], x.DType);
            backend.Copy(interior, new TensorView(x.Storage, x.Offset, interior.Shape, ContiguousStrides(interior.Shape), x.DType));
        }
        finally
        {
            xp.Release();
        }
    }

    public static void Conv2d(IBackend backend, TensorView x, TensorView weight, TensorView? bias, TensorView y, Conv2dGeometry g)
    {
        using var work = new ConvWorkspace(backend, g, x.DType);
        for (int n0 = 0; n0 < g.Batch; n0 += work.Images)
        {
            int cnt = Math.Min(work.Images, g.Batch - n0);
            var gc = g with { Batch = cnt };
            long cols = (long)cnt * g.OutPlane;
            backend.Im2Col(Images(x, n0, cnt, g.InChannels, g.InPlane), work.Columns(gc), gc);
            int kg = g.InPerGroup * g.KernelH * g.KernelW, cog = g.OutPerGroup;
            var a = new TensorView(weight.Storage, weight.Offset, [g.Groups, cog, kg], [(long)cog * kg, kg, 1], x.DType);
            var b = new TensorView(work.ColumnStorage, 0, [g.Groups, kg, (int)cols], [kg * cols, cols, 1], x.DType);
            var c = work.Rows(gc);
            backend.MatMul(a, b, new TensorView(c.Storage, 0, [g.Groups, cog, (int)cols], [cog * cols, cols, 1], x.DType), false);
            // [Cout, cnt, L] -> y[n0 .. n0+cnt] laid out [cnt, Cout, L].
            var src = new TensorView(c.Storage, 0, [cnt, g.OutChannels, g.OutPlane], [g.OutPlane, cols, 1], x.DType);
            backend.Copy(src, Images(y, n0, cnt, g.OutChannels, g.OutPlane));
        }
        if (bias is { } bv)
        {
            var yv = new TensorView(y.Storage, y.Offset, [g.Batch, g.OutChannels, g.OutPlane], ContiguousStrides([g.Batch, g.OutChannels, g.OutPlane]), y.DType);
            var bb = new TensorView(bv.Storage, bv.Offset, yv.Shape, [0, 1, 0], bv.DType);
            backend.Binary(BinaryOp.Add, yv, bb, yv);
        }
    }

    public static void Conv2dFused(IBackend backend, TensorView x, TensorView weight, TensorView? bias, TensorView? residual, bool relu, TensorView y, Conv2dGeometry g)
    {
        backend.Conv2d(x, weight, bias, y, g);
        if (residual is { } r) backend.Binary(BinaryOp.Add, y, r, y);
        if (relu) backend.Unary(UnaryOp.Relu, y, y, 0, 0);
    }

    public static void Conv2dGradInput(IBackend backend, TensorView gy, TensorView weight, TensorView gx, Conv2dGeometry g)
    {
        using var work = new ConvWorkspace(backend, g, gy.DType);
        int kg = g.InPerGroup * g.KernelH * g.KernelW, cog = g.OutPerGroup;
        for (int n0 = 0; n0 < g.Batch; n0 += work.Images)
        {
            int cnt = Math.Min(work.Images, g.Batch - n0);
            var gc = g with { Batch = cnt };
            long cols = (long)cnt * g.OutPlane;
            var rows = work.Rows(gc);
            GatherRows(backend, gy, n0, rows, gc);
            var a = new TensorView(weight.Storage, weight.Offset, [g.Groups, kg, cog], [(long)cog * kg, 1, kg], gy.DType);
            var b = new TensorView(rows.Storage, 0, [g.Groups, cog, (int)cols], [cog * cols, cols, 1], gy.DType);
            var columns = work.Columns(gc);
            backend.MatMul(a, b, new TensorView(columns.Storage, 0, [g.Groups, kg, (int)cols], [kg * cols, cols, 1], gy.DType), false);
            backend.Col2Im(columns, Images(gx, n0, cnt, g.InChannels, g.InPlane), gc);
        }
    }

    public static void Conv2dGradWeight(IBackend backend, TensorView x, TensorView gy, TensorView gw, Conv2dGeometry g)
    {
        using var work = new ConvWorkspace(backend, g, gy.DType);
        int kg = g.InPerGroup * g.KernelH * g.KernelW, cog = g.OutPerGroup;
        var c = new TensorView(gw.Storage, gw.Offset, [g.Groups, cog, kg], [(long)cog * kg, kg, 1], gw.DType);
        if (g.Batch == 0) backend.Fill(c, 0);
        for (int n0 = 0; n0 < g.Batch; n0 += work.Images)
        {
            int cnt = Math.Min(work.Images, g.Batch - n0);
            var gc = g with { Batch = cnt };
            long cols = (long)cnt * g.OutPlane;
            var columns = work.Columns(gc);
            backend.Im2Col(Images(x, n0, cnt, g.InChannels, g.InPlane), columns, gc);
            var rows = work.Rows(gc);
            GatherRows(backend, gy, n0, rows, gc);
            var a = new TensorView(rows.Storage, 0, [g.Groups, cog, (int)cols], [cog * cols, cols, 1], gy.DType);
            var b = new TensorView(columns.Storage, 0, [g.Groups, (int)cols, kg], [kg * cols, 1, cols], gy.DType);
            backend.MatMul(a, b, c, accumulate: n0 > 0);
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Helpers of the default compositions
    // ------------------------------------------------------------------------------------------------

    /// <summary>Images n0 .. n0+count of a contiguous [N, C, plane] tensor, as a contiguous [count, C, plane] view.</summary>
    private static TensorView Images(TensorView t, int n0, int count, int channels, int plane) =>
        new(t.Storage, t.Offset + (long)n0 * channels * plane, [count, channels, plane], [(long)channels * plane, plane, 1], t.DType);

    private static long[] ContiguousStrides(int[] shape)
    {
        var st = new long[shape.Length];
        long acc = 1;
        for (int d = shape.Length - 1; d >= 0; d--) { st[d] = acc; acc *= Math.Max(1, shape[d]); }
        return st;
    }

    private static TensorView Shift(TensorView v, long offset) => new(v.Storage, v.Offset + offset, v.Shape, v.Strides, v.DType);

    /// <summary>The zero-padded frame im2col reads from: padding on every side, plus any rows or columns the output grid reaches past it.</summary>
    private static (int Hp, int Wp) PaddedSize(Conv2dGeometry g)
    {
        int hp = Math.Max(g.Height + 2 * g.PadH, (g.OutHeight - 1) * g.StrideH + (g.KernelH - 1) * g.DilationH + 1);
        int wp = Math.Max(g.Width + 2 * g.PadW, (g.OutWidth - 1) * g.StrideW + (g.KernelW - 1) * g.DilationW + 1);
        return (hp, wp);
    }

    /// <summary>x copied into a zero-padded frame (or x itself when no padding is needed; <c>Owned</c> says which).</summary>
    private static (Storage Storage, int Hp, int Wp, bool Owned) PaddedCopy(IBackend backend, TensorView x, Conv2dGeometry g)
    {
        var (hp, wp) = PaddedSize(g);
        if (hp == g.Height && wp == g.Width && g.PadH == 0 && g.PadW == 0)
            return (x.Storage, hp, wp, false);
        long plane = (long)hp * wp;
        var xp = backend.Allocate((long)g.Batch * g.InChannels * plane * x.DType.SizeOf());
        var padded = new TensorView(xp, 0, [g.Batch, g.InChannels, hp, wp], [g.InChannels * plane, plane, wp, 1], x.DType);
        backend.Fill(padded, 0);
        var interior = new TensorView(xp, (long)g.PadH * wp + g.PadW, [g.Batch, g.InChannels, g.Height, g.Width],
            [g.InChannels * plane, plane, wp, 1], x.DType);
        backend.Copy(new TensorView(x.Storage, x.Offset, interior.Shape, ContiguousStrides(interior.Shape), x.DType), interior);
        return (xp, hp, wp, true);
    }

    /// <summary>gy images n0 .. n0+count ([count, Cout, L]) rearranged into rows [Cout, count*L].</summary>
    private static void GatherRows(IBackend backend, TensorView gy, int n0, TensorView rows, Conv2dGeometry gc)
    {
        long off = gy.Offset + (long)n0 * gc.OutChannels * gc.OutPlane;
        var src = new TensorView(gy.Storage, off, [gc.OutChannels, gc.Batch, gc.OutPlane],
            [gc.OutPlane, (long)gc.OutChannels * gc.OutPlane, 1], gy.DType);
        backend.Copy(src, new TensorView(rows.Storage, 0, src.Shape, ContiguousStrides(src.Shape), gy.DType));
    }

    /// <summary>Scratch for the default compositions: a column buffer and a row buffer sized for a chunk of images.</summary>
    private sealed class ConvWorkspace : IDisposable
    {
        /// <summary>Most elements one chunk's column buffer may hold (the batch is cut into chunks below this).</summary>
        private const long ColumnBudget = 1L << 24;

        private readonly DType _dtype;

        public ConvWorkspace(IBackend backend, Conv2dGeometry g, DType dtype)
        {
            _dtype = dtype;
            long perImage = Math.Max(1L, (long)Math.Max(g.ColumnRows, g.OutChannels) * g.OutPlane);
            Images = (int)Math.Clamp(ColumnBudget / perImage, 1, Math.Max(1, g.Batch));
            int es = dtype.SizeOf();
            ColumnStorage = backend.Allocate(Math.Max(1, (long)g.ColumnRows * g.OutPlane * Images * es));
            RowStorage = backend.Allocate(Math.Max(1, (long)g.OutChannels * g.OutPlane * Images * es));
        }

        /// <summary>Images per chunk.</summary>
        public int Images { get; }

        public Storage ColumnStorage { get; }

        public Storage RowStorage { get; }

        public TensorView Columns(Conv2dGeometry gc) =>
            new(ColumnStorage, 0, [gc.ColumnRows, gc.Batch * gc.OutPlane], [(long)gc.Batch * gc.OutPlane, 1], _dtype);

        public TensorView Rows(Conv2dGeometry gc) =>
            new(RowStorage, 0, [gc.OutChannels, gc.Batch * gc.OutPlane], [(long)gc.Batch * gc.OutPlane, 1], _dtype);

        public void Dispose()
        {
            ColumnStorage.Release();
            RowStorage.Release();
        }
    }
}
