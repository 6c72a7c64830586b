using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime;

public sealed partial class Tensor
{
    /// <summary>
    /// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d) of this input [N, Cin, H, W] (or unbatched
    /// [Cin, H, W]) with <paramref name="weight"/> [Cout, Cin/groups, kH, kW], plus <paramref name="bias"/> [Cout].
    /// Output [N, Cout, OH, OW] with <c>OH = (H + 2*padding - dilation*(kH-1) - 1) / stride + 1</c>.
    /// </summary>
    public Tensor Conv2d(Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1) =>
        Conv2d(weight, bias, (stride, stride), (padding, padding), (dilation, dilation), groups);

    /// <inheritdoc cref="Conv2d(Tensor, Tensor?, int, int, int, int)"/>
    public Tensor Conv2d(Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups = 1)
    {
        const string op = "Conv2d";
        CheckConvArguments(op, weight, bias, stride, padding, dilation, groups);
        var x4 = BatchedInput(op);
        Conv2dGeometry g;
        try { g = Conv2dGeometryOf(op, x4, weight, bias, stride, padding, dilation, groups); }
        catch { if (!ReferenceEquals(x4, this)) x4.Dispose(); throw; }
        int n = g.Batch, cout = g.OutChannels, oh = g.OutHeight, ow = g.OutWidth;
        try
        {
            using var xc = x4.ContiguousUntracked();
            using var wc = weight.ContiguousUntracked();
            using var bc = bias?.ContiguousUntracked();
            var y = Empty([n, cout, oh, ow], DType, Device);
            if (y.NumEl > 0) Backend.Conv2d(xc.KernelView, wc.KernelView, bc?.KernelView, y.KernelView, g);
            bool needX = x4.RequiresGrad, needW = weight.RequiresGrad;
            var wShape = weight.ShapeArray;
            Tensor[] inputs = bias is null ? [x4, weight] : [x4, weight, bias];
            var recorded = Record(y, op, inputs, [xc, wc], (gy, s) =>
            {
                using var gyc = gy.ContiguousUntracked();
                var gx = needX ? ConvGradInput(gyc, s[1], g) : null;
                var gw = needW ? ConvGradWeight(s[0], gyc, wShape, g) : null;
                return bias is null ? [gx, gw] : [gx, gw, gyc.Sum([0, 2, 3])];
            });
            return Rank == 3 ? SqueezeBatch(recorded) : recorded;
        }
        finally
        {
            if (!ReferenceEquals(x4, this)) x4.Dispose();
        }
    }

    /// <summary>
    /// The inference convolution <c>relu?(Conv2d(weight, bias, ...) + residual)</c>, with <paramref name="residual"/>
    /// (optional) shaped like the output and the ReLU applied when <paramref name="relu"/>. With no gradient wanted
    /// (autograd off, or nothing requiring grad) it is one <see cref="IBackend.Conv2dFused"/> call, whose backend may
    /// apply the bias, residual sum and ReLU as it writes each output tile; otherwise it is <see cref="Conv2d(Tensor, Tensor?, int, int, int, int)"/>,
    /// the sum and <see cref="Relu"/> themselves, so gradients flow as through the composed ops.
    /// </summary>
    public Tensor Conv2dFused(Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups,
        Tensor? residual, bool relu)
    {
        const string op = "Conv2dFused";
        CheckConvArguments(op, weight, bias, stride, padding, dilation, groups);
        if (residual is not null)
        {
            CheckSameDevice(residual, nameof(residual));
            if (residual.DType != DType)
                throw new ArgumentException($"{op}: residual must have the input's dtype {DType.Name()}, got {residual.DType.Name()}", nameof(residual));
        }
        bool grad = GradMode.IsEnabled && (RequiresGrad || weight.RequiresGrad || (bias?.RequiresGrad ?? false) || (residual?.RequiresGrad ?? false));
        var x4 = BatchedInput(op);
        try
        {
            var g = Conv2dGeometryOf(op, x4, weight, bias, stride, padding, dilation, groups);
            int[] outShape = Rank == 3 ? [g.OutChannels, g.OutHeight, g.OutWidth] : [g.Batch, g.OutChannels, g.OutHeight, g.OutWidth];
            if (residual is not null && !residual.ShapeArray.AsSpan().SequenceEqual(outShape))
                throw new ArgumentException($"{op}: residual must have the output's shape {Shapes.Format(outShape)} (input {Shapes.Format(Shape)}, weight {Shapes.Format(weight.Shape)}), got {Shapes.Format(residual.Shape)}", nameof(residual));
            if (grad)
            {
                var conv = Conv2d(weight, bias, stride, padding, dilation, groups);
                if (residual is null) return relu ? Relu(conv) : conv;
                using (conv) return relu ? conv.AddRelu(residual) : conv + residual;
            }
            using var xc = x4.ContiguousUntracked();
            using var wc = weight.ContiguousUntracked();
            using var bc = bias?.ContiguousUntracked();
            using var rc = residual?.ContiguousUntracked();
            var y = Empty([g.Batch, g.OutChannels, g.OutHeight, g.OutWidth], DType, Device);
            // The backend sees batched views; an unbatched residual [Cout, OH, OW] is the same memory as [1, Cout, OH, OW].
            TensorView? rv = rc is null ? null : new TensorView(rc.KernelView.Storage, rc.KernelView.Offset, y.ShapeArray, y.KernelView.Strides, DType);
            if (y.NumEl > 0) Backend.Conv2dFused(xc.KernelView, wc.KernelView, bc?.KernelView, rv, relu, y.KernelView, g);
            return Rank == 3 ? SqueezeBatch(y) : y;
        }
        finally
        {
            if (!ReferenceEquals(x4, this)) x4.Dispose();
        }

        static Tensor Relu(Tensor t)
        {
            using (t) return t.Relu();
        }
    }

    /// <summary>
    /// 2-D transposed convolution (torch.nn.functional.conv_transpose2d): the gradient of <see cref="Conv2d(Tensor, Tensor?, int, int, int, int)"/>
    /// with respect to its input. This input is [N, Cin, H, W] (or [Cin, H, W]), <paramref name="weight"/> [Cin, Cout/groups, kH, kW],
    /// <paramref name="bias"/> [Cout]; output size <c>(H-1)*stride - 2*padding + dilation*(kH-1) + outputPadding + 1</c>.
    /// </summary>
    public Tensor ConvTranspose2d(Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int outputPadding = 0, int groups = 1, int dilation = 1) =>
        ConvTranspose2d(weight, bias, (stride, stride), (padding, padding), (outputPadding, outputPadding), groups, (dilation, dilation));

    /// <inheritdoc cref="ConvTranspose2d(Tensor, Tensor?, int, int, int, int, int)"/>
    public Tensor ConvTranspose2d(Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding, (int H, int W) outputPadding, int groups, (int H, int W) dilation)
    {
        const string op = "ConvTranspose2d";
        CheckConvArguments(op, weight, bias, stride, padding, dilation, groups);
        if (outputPadding.H < 0 || outputPadding.W < 0)
            throw new ArgumentOutOfRangeException(nameof(outputPadding), outputPadding, $"{op}: output padding must be non-negative");
        if ((outputPadding.H >= stride.H && outputPadding.H >= dilation.H) || (outputPadding.W >= stride.W && outputPadding.W >= dilation.W))
            throw new ArgumentOutOfRangeException(nameof(outputPadding), outputPadding,
                $"{op}: output padding ({outputPadding.H}, {outputPadding.W}) must be smaller than either stride ({stride.H}, {stride.W}) or dilation ({dilation.H}, {dilation.W})");
        var x4 = BatchedInput(op);
        int n = x4._shape[0], cin = x4._shape[1], h = x4._shape[2], w = x4._shape[3];
        int kh = weight._shape[2], kw = weight._shape[3];
        if (weight._shape[0] != cin)
            throw new ArgumentException($"{op}: input {Shapes.Format(Shape)} has {cin} channels but weight {Shapes.Format(weight.Shape)} expects {weight._shape[0]} (weight.shape[0])", nameof(weight));
        if (cin % groups != 0)
            throw new ArgumentException($"{op}: input {Shapes.Format(Shape)} has {cin} channels, not divisible by groups={groups}", nameof(groups));
        int cout = weight._shape[1] * groups;
        if (bias is not null && (bias.Rank != 1 || bias._shape[0] != cout))
            throw new ArgumentException($"{op}: bias must have shape [{cout}] (weight {Shapes.Format(weight.Shape)} with groups={groups}), got {Shapes.Format(bias.Shape)}", nameof(bias));
        int oh = (h - 1) * stride.H - 2 * padding.H + dilation.H * (kh - 1) + outputPadding.H + 1;
        int ow = (w - 1) * stride.W - 2 * padding.W + dilation.W * (kw - 1) + outputPadding.W + 1;
        if (oh <= 0 || ow <= 0)
            throw new ArgumentException($"{op}: output size {oh}x{ow} is not positive (input {Shapes.Format(Shape)}, weight {Shapes.Format(weight.Shape)}, stride ({stride.H}, {stride.W}), padding ({padding.H}, {padding.W}), dilation ({dilation.H}, {dilation.W}), output padding ({outputPadding.H}, {outputPadding.W}))", nameof(padding));
        // The forward convolution this one transposes: its input is our output, its output our input.
        var g = new Conv2dGeometry(n, cout, oh, ow, cin, h, w, kh, kw, stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
        try
        {
            using var xc = x4.ContiguousUntracked();
            using var wc = weight.ContiguousUntracked();
            var y = ConvGradInput(xc, wc, g);
            if (bias is not null && y.NumEl > 0)
            {
                using var bc = bias.ContiguousUntracked();
                var yv = new TensorView(y.StorageOrThrow, 0, [n, cout, oh * ow], [(long)cout * oh * ow, (long)oh * ow, 1], DType);
                var bb = new TensorView(bc.StorageOrThrow, bc._offset, yv.Shape, [0, 1, 0], DType);
                Backend.Binary(BinaryOp.Add, yv, bb, yv);
            }
            bool needX = x4.RequiresGrad, needW = weight.RequiresGrad;
            var wShape = weight.ShapeArray;
            Tensor[] inputs = bias is null ? [x4, weight] : [x4, weight, bias];
            var recorded = Record(y, op, inputs, [xc, wc], (gy, s) =>
            {
                using var gyc = gy.ContiguousUntracked();
                Tensor? gx = null;
                if (needX)
                {
                    // gy's dtype, device and backend: the input itself may be disposed by now (its saved copy is s[0]).
                    gx = Empty([n, cin, h, w], gyc.DType, gyc.Device);
                    if (gx.NumEl > 0) gyc.Backend.Conv2d(gyc.KernelView, s[1].KernelView, null, gx.KernelView, g);
                }
                var gw = needW ? ConvGradWeight(gyc, s[0], wShape, g) : null;
                return bias is null ? [gx, gw] : [gx, gw, gyc.Sum([0, 2, 3])];
            });
            return Rank == 3 ? SqueezeBatch(recorded) : recorded;
        }
        finally
        {
            if (!ReferenceEquals(x4, this)) x4.Dispose();
        }
    }

    /// <summary>The input gradient of the convolution <paramref name="g"/>: [N, Cin, H, W] from contiguous gy and weight.</summary>
    private static Tensor ConvGradInput(Tensor gy, Tensor weight, Conv2dGeometry g)
    {
        var gx = Empty([g.Batch, g.InChannels, g.Height, g.Width], gy.DType, gy.Device);
        if (gx.NumEl == 0) return gx;
        if (gy.NumEl == 0) gy.Backend.Fill(gx.KernelView, 0);
        else gy.Backend.Conv2dGradInput(gy.KernelView, weight.KernelView, gx.KernelView, g);
        return gx;
    }

    /// <summary>The weight gradient of the convolution <paramref name="g"/> from contiguous x and gy.</summary>
    private static Tensor ConvGradWeight(Tensor x, Tensor gy, int[] weightShape, Conv2dGeometry g)
    {
        var gw = Empty(weightShape, gy.DType, gy.Device);
        if (gw.NumEl == 0) return gw;
        if (gy.NumEl == 0 || x.NumEl == 0) gy.Backend.Fill(gw.KernelView, 0);
        else gy.Backend.Conv2dGradWeight(x.KernelView, gy.KernelView, gw.KernelView, g);
        return gw;
    }

    private void CheckConvArguments(string op, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups)
    {
        ArgumentNullException.ThrowIfNull(weight);
        CheckSameDevice(weight, nameof(weight));
        if (bias is not null) CheckSameDevice(bias, nameof(bias));
        if (!DType.IsFloating())
            throw new ArgumentException($"{op}: input must be Float32 or Float64, got {DType.Name()}", "input");
        if (weight.DType != DType || (bias is not null && bias.DType != DType))
            throw new ArgumentException($"{op}: input, weight and bias must share one dtype, got {DType.Name()}, {weight.DType.Name()}{(bias is null ? "" : ", " + bias.DType.Name())}", nameof(weight));
        if (Rank is not (3 or 4))
            throw new ArgumentException($"{op}: input must be [N, C, H, W] or [C, H, W], got shape {Shapes.Format(Shape)}", "input");
        if (weight.Rank != 4)
            throw new ArgumentException($"{op}: weight must be 4-D [out, in/groups, kH, kW], got shape {Shapes.Format(weight.Shape)} (input {Shapes.Format(Shape)})", nameof(weight));
        if (stride.H <= 0 || stride.W <= 0)
            throw new ArgumentOutOfRangeException(nameof(stride), stride, $"{op}: stride must be positive (input {Shapes.Format(Shape)}, weight {Shapes.Format(weight.Shape)})");
        if (padding.H < 0 || padding.W < 0)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, $"{op}: padding must be non-negative (input {Shapes.Format(Shape)}, weight {Shapes.Format(weight.Shape)})");
        if (dilation.H <= 0 || dilation.W <= 0)
            throw new ArgumentOutOfRangeException(nameof(dilation), dilation, $"{op}: dilation must be positive (input {Shapes.Format(Shape)}, weight {Shapes.Format(weight.Shape)})");
        if (groups <= 0)
            throw new ArgumentOutOfRangeException(nameof(groups), groups, $"{op}: groups must be positive");
        if (weight._shape[0] % groups != 0 && op == "ConvTranspose2d")
            throw new ArgumentException($"{op}: weight {Shapes.Format(weight.Shape)} has {weight._shape[0]} input channels, not divisible by groups={groups}", nameof(groups));
        if (Rank == 4 ? _shape[1] % groups != 0 : _shape[0] % groups != 0)
            throw new ArgumentException($"{op}: input {Shapes.Format(Shape)} has {(Rank == 4 ? _shape[1] : _shape[0])} channels, not divisible by groups={groups}", nameof(groups));
        if (weight._shape[2] <= 0 || weight._shape[3] <= 0)
            throw new ArgumentException($"{op}: weight {Shapes.Format(weight.Shape)} has an empty kernel", nameof(weight));
    }

    /// <summary>The checked geometry of <c>x4.Conv2d(weight, bias, ...)</c> for a batched input [N, Cin, H, W].</summary>
    private Conv2dGeometry Conv2dGeometryOf(string op, Tensor x4, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups)
    {
        int n = x4._shape[0], cin = x4._shape[1], h = x4._shape[2], w = x4._shape[3];
        int cout = weight._shape[0], kh = weight._shape[2], kw = weight._shape[3];
        if (weight._shape[1] * groups != cin)
            throw new ArgumentException($"{op}: input {Shapes.Format(Shape)} has {cin} channels but weight {Shapes.Format(weight.Shape)} with groups={groups} expects {weight._shape[1] * groups} (weight.shape[1] * groups)", nameof(weight));
        if (cout % groups != 0)
            throw new ArgumentException($"{op}: weight {Shapes.Format(weight.Shape)} has {cout} output channels, not divisible by groups={groups}", nameof(groups));
        if (bias is not null && (bias.Rank != 1 || bias._shape[0] != cout))
            throw new ArgumentException($"{op}: bias must have shape [{cout}] (one value per output channel of weight {Shapes.Format(weight.Shape)}), got {Shapes.Format(bias.Shape)}", nameof(bias));
        int ekh = dilation.H * (kh - 1) + 1, ekw = dilation.W * (kw - 1) + 1;
        if (ekh > h + 2 * padding.H || ekw > w + 2 * padding.W)
            throw new ArgumentException($"{op}: kernel {kh}x{kw} (dilated to {ekh}x{ekw}) is larger than the padded input {h + 2 * padding.H}x{w + 2 * padding.W} (input {Shapes.Format(Shape)}, weight {Shapes.Format(weight.Shape)}, padding ({padding.H}, {padding.W}), dilation ({dilation.H}, {dilation.W}))", nameof(weight));
        int oh = (h + 2 * padding.H - ekh) / stride.H + 1, ow = (w + 2 * padding.W - ekw) / stride.W + 1;
        return new Conv2dGeometry(n, cin, h, w, cout, oh, ow, kh, kw, stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
    }

    /// <summary>The input as [N, C, H, W] (an unbatched [C, H, W] input gains a leading dimension, tracked).</summary>
    private Tensor BatchedInput(string op)
    {
        var x = Rank == 3 ? Unsqueeze(0) : this;
        if (x._shape[2] <= 0 || x._shape[3] <= 0)
        {
            if (!ReferenceEquals(x, this)) x.Dispose();
            throw new ArgumentException($"{op}: input {Shapes.Format(Shape)} has an empty spatial size", "input");
        }
        return x;
    }

    private static Tensor SqueezeBatch(Tensor y)
    {
        using (y) return y.Squeeze(0);
    }
}
