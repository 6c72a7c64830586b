using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime.Vision.Ops;

/// <summary>
/// Modulated deformable convolution (DCNv2), as torchvision 0.14's <c>torchvision.ops.deform_conv2d</c>: every kernel
/// tap reads the input at its regular position moved by a learned offset (bilinear, zero outside the image) and scaled
/// by a mask; without a mask it is the deformable convolution of DCNv1.
/// </summary>
public static class DeformConvOps
{
    /// <inheritdoc cref="DeformConv2d(Tensor, Tensor, Tensor, Tensor?, ValueTuple{int, int}, ValueTuple{int, int}, ValueTuple{int, int}, Tensor?)"/>
    public static Tensor DeformConv2d(Tensor input, Tensor offset, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, Tensor? mask = null) =>
        DeformConv2d(input, offset, weight, bias, (stride, stride), (padding, padding), (dilation, dilation), mask);

    /// <summary>
    /// y [B, Cout, OH, OW] from input [B, Cin, H, W], offset [B, 2*G*kH*kW, OH, OW], weight [Cout, Cin/groups, kH, kW],
    /// optional bias [Cout] and mask [B, G*kH*kW, OH, OW] (taken as it is, no sigmoid). The offset groups G come from the
    /// offset's channels and the weight groups from <c>Cin / weight.shape[1]</c>. Offset channel <c>g*2K + 2k</c> moves
    /// tap k of group g along rows, <c>g*2K + 2k + 1</c> along columns; <c>OH = (H + 2*padding - dilation*(kH-1) - 1) / stride + 1</c>.
    /// Differentiable with respect to input, offset, weight, mask and bias.
    /// </summary>
    public static Tensor DeformConv2d(Tensor input, Tensor offset, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding,
        (int H, int W) dilation, Tensor? mask = null)
    {
        const string op = "DeformConv2d";
        var dg = CheckArguments(op, input, offset, weight, bias, stride, padding, dilation, mask);
        var g = dg.Conv;
        var be = input.Backend;
        using var xc = input.ContiguousCopy();
        using var oc = offset.ContiguousCopy();
        using var wc = weight.ContiguousCopy();
        using var mc = mask?.ContiguousCopy();
        using var bc = bias?.ContiguousCopy();
        var y = Tensor.Empty([g.Batch, g.OutChannels, g.OutHeight, g.OutWidth], input.DType, input.Device);
        if (y.NumEl > 0)
        {
            if (g.ColumnRows == 0 || g.Batch == 0)
            {
                be.Fill(y.KernelView, 0);
                if (bc is not null) AddBias(be, y, bc, g);
            }
            else be.DeformConv2d(xc.KernelView, oc.KernelView, mc?.KernelView, wc.KernelView, bc?.KernelView, y.KernelView, dg);
        }
        bool needX = input.RequiresGrad, needOffset = offset.RequiresGrad, needW = weight.RequiresGrad;
        bool needMask = mask is not null && mask.RequiresGrad;
        var inputs = new List<Tensor> { input, offset, weight };
        if (mask is not null) inputs.Add(mask);
        if (bias is not null) inputs.Add(bias);
        Tensor[] saved = mc is null ? [xc, oc, wc] : [xc, oc, wc, mc];
        int[] xShape = input.ShapeArray, oShape = offset.ShapeArray, wShape = weight.ShapeArray;
        int[]? mShape = mask?.ShapeArray;
        bool hasMask = mask is not null, hasBias = bias is not null;
        return Tensor.Record(y, op, inputs.ToArray(), saved, (gy, s) =>
        {
            using var gyc = gy.ContiguousCopy();
            var b = gyc.Backend;
            var gx = needX ? Tensor.Empty(xShape, gy.DType, gy.Device) : null;
            // The mask gradient comes with the offset gradient (one pass over the samples).
            var gOff = needOffset || needMask ? Tensor.Empty(oShape, gy.DType, gy.Device) : null;
            var gMask = needMask ? Tensor.Empty(mShape!, gy.DType, gy.Device) : null;
            var gw = needW ? Tensor.Empty(wShape, gy.DType, gy.Device) : null;
            if (g.Batch == 0 || g.ColumnRows == 0 || g.OutPlane == 0 || g.OutChannels == 0)
            {
                foreach (var t in new[] { gx, gOff, gMask, gw })
                    if (t is not null && t.NumEl > 0) b.Fill(t.KernelView, 0);
            }
            else if (gx is not null || gOff is not null || gw is not null)
            {
                b.DeformConv2dBackward(gyc.KernelView, s[0].KernelView, s[1].KernelView, hasMask ? s[3].KernelView : null, s[2].KernelView,
                    gx?.KernelView, gOff?.KernelView, gMask?.KernelView, gw?.KernelView, dg);
            }
            if (!needOffset && gOff is not null)
            {
                gOff.Dispose();
                gOff = null;
            }
            var grads = new List<Tensor?> { gx, gOff, gw };
            if (hasMask) grads.Add(gMask);
            if (hasBias) grads.Add(gyc.Sum([0, 2, 3]));
            return grads.ToArray();
        });
    }

    /// <summary>A contiguous tensor with the same values, outside autograd and outside any TensorScope (the caller disposes it).</summary>
    private static Tensor ContiguousCopy(this Tensor t)
    {
        using var _ = GradMode.NoGrad();
        return t.Contiguous().Unscoped();
    }

    private static void AddBias(IBackend be, Tensor y, Tensor bias, Conv2dGeometry g)
    {
        var yv = y.KernelView;
        var flat = new TensorView(yv.Storage, yv.Offset, [g.Batch, g.OutChannels, g.OutPlane], [(long)g.OutChannels * g.OutPlane, g.OutPlane, 1], y.DType);
        var bv = bias.KernelView;
        be.Binary(BinaryOp.Add, flat, new TensorView(bv.Storage, bv.Offset, flat.Shape, [0, 1, 0], y.DType), flat);
    }

    /// <summary>torchvision's checks, with the shapes at fault in the message; returns the validated geometry.</summary>
    private static DeformGeometry CheckArguments(string op, Tensor input, Tensor offset, Tensor weight, Tensor? bias,
        (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, Tensor? mask)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(offset);
        ArgumentNullException.ThrowIfNull(weight);
        string shapes = $"input {Shapes.Format(input.Shape)}, offset {Shapes.Format(offset.Shape)}, weight {Shapes.Format(weight.Shape)}"
            + (mask is null ? "" : $", mask {Shapes.Format(mask.Shape)}") + (bias is null ? "" : $", bias {Shapes.Format(bias.Shape)}");
        if (!input.DType.IsFloating())
            throw new ArgumentException($"{op}: input must be Float32 or Float64, got {input.DType.Name()}", nameof(input));
        void SameKind(Tensor? t, string name)
        {
            if (t is null) return;
            if (t.DType != input.DType)
                throw new ArgumentException($"{op}: {name} has dtype {t.DType.Name()} but input has {input.DType.Name()}", name);
            if (t.Device != input.Device)
                throw new ArgumentException($"{op}: {name} is on {t.Device} but input is on {input.Device}", name);
        }
        SameKind(offset, nameof(offset));
        SameKind(weight, nameof(weight));
        SameKind(mask, nameof(mask));
        SameKind(bias, nameof(bias));
        if (input.Rank != 4) throw new ArgumentException($"{op}: input must be 4-D [batch, in_channels, height, width] ({shapes})", nameof(input));
        if (offset.Rank != 4) throw new ArgumentException($"{op}: offset must be 4-D [batch, 2*offset_groups*kH*kW, out_height, out_width] ({shapes})", nameof(offset));
        if (weight.Rank != 4) throw new ArgumentException($"{op}: weight must be 4-D [out_channels, in_channels/groups, kH, kW] ({shapes})", nameof(weight));
        if (mask is not null && mask.Rank != 4) throw new ArgumentException($"{op}: mask must be 4-D [batch, offset_groups*kH*kW, out_height, out_width] ({shapes})", nameof(mask));
        if (stride.H <= 0 || stride.W <= 0) throw new ArgumentOutOfRangeException(nameof(stride), stride, $"{op}: stride must be positive ({shapes})");
        if (padding.H < 0 || padding.W < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, $"{op}: padding must be non-negative ({shapes})");
        if (dilation.H <= 0 || dilation.W <= 0) throw new ArgumentOutOfRangeException(nameof(dilation), dilation, $"{op}: dilation must be positive ({shapes})");
        var xs = input.Shape;
        var ws = weight.Shape;
        var os = offset.Shape;
        int batch = xs[0], cin = xs[1], h = xs[2], w = xs[3], cout = ws[0], kh = ws[2], kw = ws[3];
        if (kh <= 0 || kw <= 0) throw new ArgumentException($"{op}: weight has an empty kernel ({shapes})", nameof(weight));
        if (ws[1] <= 0 || cin % ws[1] != 0)
            throw new ArgumentException($"{op}: input channels {cin} must be a multiple of weight.shape[1] = {ws[1]} (the weight groups are in_channels / weight.shape[1]) ({shapes})", nameof(weight));
        int groups = cin / ws[1];
        if (cout % groups != 0)
            throw new ArgumentException($"{op}: weight has {cout} output channels, not divisible by the {groups} weight groups ({shapes})", nameof(weight));
        int taps = kh * kw;
        if (os[1] == 0 || os[1] % (2 * taps) != 0)
            throw new ArgumentException($"{op}: offset has {os[1]} channels; it must be 2 * offset_groups * kH * kW, a positive multiple of {2 * taps} ({shapes})", nameof(offset));
        int og = os[1] / (2 * taps);
        if (cin % og != 0)
            throw new ArgumentException($"{op}: input channels {cin} are not divisible by the {og} offset groups given by the offset's {os[1]} channels ({shapes})", nameof(offset));
        if (os[0] != batch)
            throw new ArgumentException($"{op}: offset batch {os[0]} differs from input batch {batch} ({shapes})", nameof(offset));
        if (bias is not null && (bias.Rank != 1 || bias.Shape[0] != cout))
            throw new ArgumentException($"{op}: bias must have shape [{cout}] (one value per output channel) ({shapes})", nameof(bias));
        int ekh = dilation.H * (kh - 1) + 1, ekw = dilation.W * (kw - 1) + 1;
        int oh = (h + 2 * padding.H - ekh) / stride.H + 1, ow = (w + 2 * padding.W - ekw) / stride.W + 1;
        if (h + 2 * padding.H < ekh || w + 2 * padding.W < ekw || oh <= 0 || ow <= 0)
            throw new ArgumentException($"{op}: the output would be empty: kernel {kh}x{kw} dilated to {ekh}x{ekw} is larger than the padded input {h + 2 * padding.H}x{w + 2 * padding.W} ({shapes})", nameof(weight));
        if (os[2] != oh || os[3] != ow)
            throw new ArgumentException($"{op}: offset spatial size {os[2]}x{os[3]} must equal the output size {oh}x{ow} ({shapes}, stride ({stride.H}, {stride.W}), padding ({padding.H}, {padding.W}), dilation ({dilation.H}, {dilation.W}))", nameof(offset));
        if (mask is not null)
        {
            var ms = mask.Shape;
            if (ms[0] != batch)
                throw new ArgumentException($"{op}: mask batch {ms[0]} differs from input batch {batch} ({shapes})", nameof(mask));
            if (ms[1] != og * taps)
                throw new ArgumentException($"{op}: mask has {ms[1]} channels but must have offset_groups * kH * kW = {og} * {taps} = {og * taps} ({shapes})", nameof(mask));
            if (ms[2] != oh || ms[3] != ow)
                throw new ArgumentException($"{op}: mask spatial size {ms[2]}x{ms[3]} must equal the output size {oh}x{ow} ({shapes})", nameof(mask));
        }
        var conv = new Conv2dGeometry(batch, cin, h, w, cout, oh, ow, kh, kw, stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
        return new DeformGeometry(conv, og);
    }
}
