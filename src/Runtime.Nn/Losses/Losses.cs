using Runtime.Autograd;

namespace Runtime.Nn.Losses;

/// <summary>How a loss reduces its per-element values (torch's <c>reduction</c> argument).</summary>
public enum Reduction
{
    /// <summary>The per-element (per-sample) losses, unreduced.</summary>
    None,
    /// <summary>The mean (for weighted cross-entropy: the sum divided by the sum of the target weights).</summary>
    Mean,
    /// <summary>The sum.</summary>
    Sum,
}

/// <summary>
/// Loss functions (torch.nn.functional / torchvision counterparts), built from differentiable tensor
/// operators so that gradients come from autograd.
/// </summary>
public static class Losses
{
    private static Tensor Reduce(Tensor loss, Reduction reduction) => reduction switch
    {
        Reduction.None => loss.Clone(),
        Reduction.Mean => loss.Mean(),
        Reduction.Sum => loss.Sum(),
        _ => throw new ArgumentOutOfRangeException(nameof(reduction), reduction, "unknown reduction"),
    };

    private static string Fmt(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    private static void CheckSameShape(Tensor input, Tensor target, string op)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(target);
        if (!input.Shape.SequenceEqual(target.Shape))
            throw new ArgumentException($"{op}: target shape {Fmt(target.Shape)} does not match input shape {Fmt(input.Shape)}", nameof(target));
    }

    private static void CheckFloating(Tensor t, string op, string name)
    {
        if (!t.DType.IsFloating()) throw new ArgumentException($"{op}: {name} must be floating-point, got {t.DType.Name()}", name);
    }

    /// <summary>
    /// Cross-entropy of class <paramref name="logits"/> <c>[N, C]</c> or <c>[N, C, d1, ...]</c> against Int64/Int32
    /// class indices <paramref name="target"/> <c>[N]</c> or <c>[N, d1, ...]</c> (torch.nn.functional.cross_entropy).
    /// Targets equal to <paramref name="ignoreIndex"/> contribute nothing; with <paramref name="weight"/> <c>[C]</c>
    /// each term is scaled by the weight of its target class and <see cref="Reduction.Mean"/> divides by the sum
    /// of the weights of the non-ignored targets (NaN when every target is ignored, as in PyTorch).
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor target, Tensor? weight = null, long ignoreIndex = -100, Reduction reduction = Reduction.Mean)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(target);
        const string op = "CrossEntropy";
        CheckFloating(logits, op, nameof(logits));
        if (!target.DType.IsIntegral())
            throw new ArgumentException($"{op}: target must hold Int64 or Int32 class indices, got {target.DType.Name()}", nameof(target));
        if (logits.Rank < 2)
            throw new ArgumentException($"{op}: logits must be [N, C] or [N, C, d1, ...], got shape {Fmt(logits.Shape)}", nameof(logits));
        var expected = new List<int> { logits.Size(0) };
        for (int d = 2; d < logits.Rank; d++) expected.Add(logits.Size(d));
        if (!target.Shape.SequenceEqual(expected.ToArray()))
            throw new ArgumentException($"{op}: target shape {Fmt(target.Shape)} does not match logits shape {Fmt(logits.Shape)} (expected target shape {Fmt(expected.ToArray())})", nameof(target));
        int c = logits.Size(1);
        if (weight != null)
        {
            if (weight.Rank != 1 || weight.Size(0) != c)
                throw new ArgumentException($"{op}: weight must have shape [{c}] (one per class), got {Fmt(weight.Shape)}", nameof(weight));
        }

        long[] tv;
        using (var t64 = target.To(DType.Int64)) tv = t64.ToArray<long>();
        var safe = new long[tv.Length];
        var valid = new double[tv.Length];
        for (int i = 0; i < tv.Length; i++)
        {
            long v = tv[i];
            if (v == ignoreIndex) continue;
            if (v < 0 || v >= c)
                throw new ArgumentOutOfRangeException(nameof(target), v, $"{op}: target value {v} is out of range for {c} classes (valid: 0..{c - 1} or ignoreIndex {ignoreIndex})");
            safe[i] = v;
            valid[i] = 1;
        }
        int m = tv.Length;

        // [N, C, d...] -> [N*d..., C]
        using var logp = logits.LogSoftmax(1);
        using var moved = logits.Rank > 2 ? logp.Movedim(1, -1) : logp.Clone();
        using var rows = moved.Reshape(m, c);
        using var idx = Tensor.From<long>(safe, [m, 1], logits.Device);
        using var picked2 = rows.Gather(1, idx);
        using var picked = picked2.Reshape(m);
        using var validT0 = Tensor.From<double>(valid, [m], logits.Device);
        using var validT = validT0.To(logits.DType);
        Tensor w;
        if (weight != null)
        {
            using var idx1 = Tensor.From<long>(safe, [m], logits.Device);
            using var wc = weight.To(logits.DType);
            using var wsel = wc.IndexSelect(0, idx1);
            w = wsel * validT;
        }
        else w = validT.Clone();
        using (w)
        {
            using var prod = picked * w;
            using var nll = -prod;
            switch (reduction)
            {
                case Reduction.None: return nll.Reshape(target.Shape.ToArray());
                case Reduction.Sum: return nll.Sum();
                case Reduction.Mean:
                    using (var s = nll.Sum())
                    using (var ws = w.Sum())
                        return s / ws;
                default: throw new ArgumentOutOfRangeException(nameof(reduction), reduction, "unknown reduction");
            }
        }
    }

    /// <summary>
    /// Binary cross-entropy on logits in the stable form of torch.nn.functional.binary_cross_entropy_with_logits:
    /// <c>(1 - t) x + lw (log(1 + exp(-|x|)) + max(-x, 0))</c> with <c>lw = 1 + (posWeight - 1) t</c>,
    /// times <paramref name="weight"/> (broadcast). Targets may be soft (any value in [0, 1]).
    /// </summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor input, Tensor target, Tensor? weight = null, Tensor? posWeight = null, Reduction reduction = Reduction.Mean)
    {
        const string op = "BinaryCrossEntropyWithLogits";
        CheckSameShape(input, target, op);
        CheckFloating(input, op, nameof(input));
        CheckFloating(target, op, nameof(target));
        using var loss = BceElementwise(input, target, weight, posWeight);
        return Reduce(loss, reduction);
    }

    private static Tensor BceElementwise(Tensor x, Tensor t, Tensor? weight, Tensor? posWeight)
    {
        using var oneMinusT = 1.0 - t;
        using var a = oneMinusT * x;
        using var sp = SoftplusNeg(x);
        Tensor loss;
        if (posWeight != null)
        {
            using var pm1 = posWeight - 1.0;
            using var pt = pm1 * t;
            using var lw = pt + 1.0;
            using var b = lw * sp;
            loss = a + b;
        }
        else loss = a + sp;
        if (weight == null) return loss;
        using (loss) return loss * weight;
    }

    /// <summary>
    /// <c>log(1 + exp(-x))</c> evaluated without overflow or cancellation, as <c>log1p(exp(-x))</c> for x &gt;= 0 and
    /// <c>-x + log1p(exp(x))</c> below; each branch only sees arguments of its own sign (so both stay finite
    /// and the unused one gets no gradient), which keeps the derivative exact at x = 0 (-1/2), where the
    /// <c>|x|</c> / <c>max(-x, 0)</c> form would give subgradients.
    /// </summary>
    private static Tensor SoftplusNeg(Tensor x)
    {
        using var pos = x.Ge(0.0);
        using var zero = Tensor.ZerosLike(x);
        using var a = Tensor.Where(pos, x, zero);
        using var b = Tensor.Where(pos, zero, x);
        using var na = -a;
        using var ea = na.Exp();
        using var spPos = ea.Log1p();
        using var eb = b.Exp();
        using var lb = eb.Log1p();
        using var spNeg = lb - b;
        return Tensor.Where(pos, spPos, spNeg);
    }

    /// <summary>
    /// Smooth L1 (Huber-like) loss as torch.nn.functional.smooth_l1_loss: <c>0.5 d²/beta</c> where <c>|d| &lt; beta</c>,
    /// else <c>|d| - 0.5 beta</c>; <paramref name="beta"/> = 0 gives the L1 loss.
    /// </summary>
    public static Tensor SmoothL1(Tensor input, Tensor target, double beta = 1.0, Reduction reduction = Reduction.Mean)
    {
        const string op = "SmoothL1";
        CheckSameShape(input, target, op);
        if (beta < 0) throw new ArgumentOutOfRangeException(nameof(beta), beta, $"{op}: beta must be non-negative");
        if (beta == 0) return L1(input, target, reduction);
        using var d = input - target;
        using var ad = d.Abs();
        using var small = ad.Lt(beta);
        using var sq = d.Square();
        using var quad = sq * (0.5 / beta);
        using var lin = ad - 0.5 * beta;
        using var loss = Tensor.Where(small, quad, lin);
        return Reduce(loss, reduction);
    }

    /// <summary>Mean absolute error <c>|input - target|</c> (torch.nn.functional.l1_loss).</summary>
    public static Tensor L1(Tensor input, Tensor target, Reduction reduction = Reduction.Mean)
    {
        CheckSameShape(input, target, "L1");
        using var d = input - target;
        using var ad = d.Abs();
        return Reduce(ad, reduction);
    }

    /// <summary>
    /// torchvision.ops.sigmoid_focal_loss: <c>p = sigmoid(x)</c>, <c>ce = BCEWithLogits(x, t)</c>,
    /// <c>p_t = p t + (1 - p)(1 - t)</c>, <c>loss = ce (1 - p_t)^gamma</c>, times <c>alpha t + (1 - alpha)(1 - t)</c>
    /// when <paramref name="alpha"/> &gt;= 0. Default reduction is <see cref="Reduction.None"/> as in torchvision;
    /// RetinaNet sums it and divides by the number of foreground anchors.
    /// </summary>
    public static Tensor SigmoidFocalLoss(Tensor inputs, Tensor targets, double alpha = 0.25, double gamma = 2.0, Reduction reduction = Reduction.None)
    {
        const string op = "SigmoidFocalLoss";
        CheckSameShape(inputs, targets, op);
        CheckFloating(inputs, op, nameof(inputs));
        CheckFloating(targets, op, nameof(targets));
        if (gamma < 0) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, $"{op}: gamma must be non-negative");
        if (targets.RequiresGrad || !GradMode.IsEnabled || !inputs.RequiresGrad) return FocalComposite(inputs, targets, alpha, gamma, reduction);
        // One recorded step that keeps only x and t for the backward: the composite's eight intermediates are each as
        // large as the logits (RetinaNet: anchors x classes), and autograd would keep all of them alive.
        Tensor elementwise;
        using (GradMode.NoGrad()) elementwise = FocalComposite(inputs, targets, alpha, gamma, Reduction.None);
        var recorded = Tensor.Record(elementwise, op, [inputs], [inputs, targets], (g, saved) => [FocalGrad(g, saved[0], saved[1], alpha, gamma)]);
        if (reduction == Reduction.None) return recorded;
        using (recorded) return Reduce(recorded, reduction);
    }

    /// <summary>
    /// The summed <see cref="SigmoidFocalLoss"/> of <c>[N, C]</c> logits against one-hot targets given as one label
    /// per row: <c>labels[n] &gt;= 0</c> is row n's class, <c>-1</c> an all-zero (background) row, and any lower
    /// value leaves the row out. This is RetinaNet's classification loss,
    /// <c>sigmoid_focal_loss(x[valid], one_hot[valid], reduction="sum")</c>, without building the one-hot targets
    /// or copying the valid rows: rows are worked in bands and only the logits and the labels are kept for the
    /// backward, so the loss adds no more than a band's worth to the peak memory of a training step.
    /// </summary>
    public static Tensor SigmoidFocalLossFromLabels(Tensor inputs, Tensor labels, double alpha = 0.25, double gamma = 2.0)
    {
        const string op = "SigmoidFocalLossFromLabels";
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(labels);
        CheckFloating(inputs, op, nameof(inputs));
        if (inputs.Rank != 2) throw new ArgumentException($"{op}: inputs must be [N, C], got shape {Fmt(inputs.Shape)}", nameof(inputs));
        if (labels.Rank != 1 || labels.Size(0) != inputs.Size(0))
            throw new ArgumentException($"{op}: labels must be [{inputs.Size(0)}] for inputs {Fmt(inputs.Shape)}, got shape {Fmt(labels.Shape)}", nameof(labels));
        if (!labels.DType.IsIntegral()) throw new ArgumentException($"{op}: labels must be integral, got {labels.DType.Name()}", nameof(labels));
        if (gamma < 0) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, $"{op}: gamma must be non-negative");
        Tensor total;
        using (GradMode.NoGrad()) total = FocalBands(inputs, labels, alpha, gamma, null);
        if (!GradMode.IsEnabled || !inputs.RequiresGrad) return total;
        return Tensor.Record(total, op, [inputs], [inputs, labels], (g, saved) => [FocalBands(saved[0], saved[1], alpha, gamma, g)!]);
    }

    private const int FocalBandRows = 4096;

    // Without g: the summed loss over rows in bands. With g (the scalar output's gradient): d(sum)/dx times g.
    private static Tensor FocalBands(Tensor x, Tensor labels, double alpha, double gamma, Tensor? g)
    {
        int n = x.Size(0), c = x.Size(1);
        using var classes = Tensor.Arange(c, DType.Int64, x.Device);
        using var lab = labels.To(DType.Int64);
        var parts = new List<Tensor>();
        try
        {
            for (int start = 0; start < n; start += FocalBandRows)
            {
                int len = Math.Min(FocalBandRows, n - start);
                using var xb = x.Narrow(0, start, len);
                using var lb = lab.Narrow(0, start, len);
                using var lcol = lb.Unsqueeze(-1);
                using var hit = lcol.Eq(classes);
                using var t = hit.To(x.DType);
                using var keep = lcol.Ge(-1);
                using var rowMask = keep.To(x.DType);
                if (g == null)
                {
                    using var e = FocalComposite(xb, t, alpha, gamma, Reduction.None);
                    using var masked = e * rowMask;
                    parts.Add(masked.Sum());
                }
                else
                {
                    using var d = FocalGrad(g, xb, t, alpha, gamma);
                    parts.Add(d * rowMask);
                }
            }
            if (g != null) return n == 0 ? Tensor.ZerosLike(x) : Tensor.Cat(parts, 0);
            if (parts.Count == 0) return Tensor.Zeros([], x.DType, x.Device);
            using var sums = Tensor.Stack(parts, 0);
            return sums.Sum();
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    // d/dx of alpha_t ce (1 - p_t)^gamma with p = sigmoid(x): alpha_t [(p - t) m + ce dm], m = (1 - p_t)^gamma,
    // dm = -gamma (1 - p_t)^(gamma - 1) (2t - 1) p (1 - p).
    private static Tensor FocalGrad(Tensor g, Tensor x, Tensor t, double alpha, double gamma)
    {
        using var scope = new TensorScope();
        var p = x.Sigmoid();
        var ce = BceElementwise(x, t, null, null);
        var omp = 1.0 - p;
        var omt = 1.0 - t;
        var ompt = 1.0 - (p * t + omp * omt);
        var d = (p - t) * ompt.Pow(gamma);
        if (gamma != 0)
        {
            var dm = ompt.Pow(gamma - 1) * (-gamma) * (2.0 * t - 1.0) * (p * omp);
            d = d + ce * dm;
        }
        if (alpha >= 0) d = d * (t * alpha + omt * (1 - alpha));
        return scope.MoveOut(g * d);
    }

    private static Tensor FocalComposite(Tensor inputs, Tensor targets, double alpha, double gamma, Reduction reduction)
    {
        using var p = inputs.Sigmoid();
        using var ce = BceElementwise(inputs, targets, null, null);
        using var pt1 = p * targets;
        using var omp = 1.0 - p;
        using var omt = 1.0 - targets;
        using var pt2 = omp * omt;
        using var pt = pt1 + pt2;
        using var ompt = 1.0 - pt;
        using var mod = ompt.Pow(gamma);
        using var loss0 = ce * mod;
        if (alpha < 0) return Reduce(loss0, reduction);
        using var at1 = targets * alpha;
        using var at2 = omt * (1 - alpha);
        using var at = at1 + at2;
        using var loss = at * loss0;
        return Reduce(loss, reduction);
    }

    /// <summary>
    /// Dice loss on sigmoid probabilities, per sample (DETR / MaX-DeepLab usage): with <c>p = sigmoid(inputs)</c>
    /// flattened from dimension 1 and <c>t</c> likewise, <c>loss_n = 1 - (2 Σ p t + 1) / (Σ p + Σ t + 1)</c>.
    /// <see cref="Reduction.None"/> gives the <c>[N]</c> per-sample losses (DETR then sums and divides by the number of boxes).
    /// </summary>
    public static Tensor DiceLoss(Tensor inputs, Tensor targets, Reduction reduction = Reduction.Sum)
    {
        const string op = "DiceLoss";
        CheckSameShape(inputs, targets, op);
        CheckFloating(inputs, op, nameof(inputs));
        if (inputs.Rank < 1) throw new ArgumentException($"{op}: inputs need a sample dimension, got shape {Fmt(inputs.Shape)}", nameof(inputs));
        int n = inputs.Size(0);
        using var p0 = inputs.Sigmoid();
        using var p = p0.Reshape(n, -1);
        using var t0 = targets.To(inputs.DType);
        using var t = t0.Reshape(n, -1);
        using var pt = p * t;
        using var inter = pt.Sum(1);
        using var num0 = inter * 2.0;
        using var num = num0 + 1.0;
        using var ps = p.Sum(1);
        using var ts = t.Sum(1);
        using var den0 = ps + ts;
        using var den = den0 + 1.0;
        using var q = num / den;
        using var loss = 1.0 - q;
        return Reduce(loss, reduction);
    }
}
