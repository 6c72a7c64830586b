using Runtime.Vision.Ops;

namespace Runtime.Models.Panoptic;

/// <summary>
/// One image's ground truth at the network's output resolutions: the mask index of each stride-4 pixel
/// (<c>-1</c> = void: void, crowd and unlabelled pixels), the class of each mask (an index into the model's thing +
/// stuff classes), and the class of each pixel of the semantic head's stride-16 map (<c>-1</c> = void).
/// </summary>
public sealed record PanopticTarget(int Height, int Width, int[] MaskIds, int[] MaskClasses, int SemanticHeight, int SemanticWidth, int[] SemanticLabels)
{
    public int NumMasks => MaskClasses.Length;

    /// <summary>
    /// The target of an image's segment-id map [H, W] (row-major) and segments: each non-crowd segment that still
    /// covers a pixel after sampling becomes one mask (in segment order); pixels are sampled at the output grids with
    /// aligned corners (output pixel i reads input row round(i (H - 1) / (h - 1)), DeepLab2's strided downsampling
    /// for H = s (h - 1) + 1).
    /// </summary>
    /// <param name="classOf">The class index of a segment (its label - 1 for contiguous labels); null leaves it out (void).</param>
    public static PanopticTarget FromSegments(ReadOnlySpan<int> segmentIds, int height, int width, IReadOnlyList<(long Id, int Class, bool IsCrowd)> segments,
        int outHeight, int outWidth, int semanticHeight, int semanticWidth)
    {
        ArgumentNullException.ThrowIfNull(segments);
        if (segmentIds.Length != height * width) throw new ArgumentException($"expected {height}x{width} segment ids, got {segmentIds.Length}", nameof(segmentIds));
        var classOf = new Dictionary<int, int>();
        foreach (var s in segments)
            if (!s.IsCrowd && s.Class >= 0) classOf[(int)s.Id] = s.Class;
        int[] Sample(ReadOnlySpan<int> ids, int h, int w, int oh, int ow)
        {
            var res = new int[oh * ow];
            for (int y = 0; y < oh; y++)
            {
                int sy = oh == 1 ? 0 : (int)Math.Round((double)y * (h - 1) / (oh - 1), MidpointRounding.AwayFromZero);
                for (int x = 0; x < ow; x++)
                {
                    int sx = ow == 1 ? 0 : (int)Math.Round((double)x * (w - 1) / (ow - 1), MidpointRounding.AwayFromZero);
                    res[y * ow + x] = ids[sy * w + sx];
                }
            }
            return res;
        }
        var pix = Sample(segmentIds, height, width, outHeight, outWidth);
        var sem = Sample(segmentIds, height, width, semanticHeight, semanticWidth);
        var present = new HashSet<int>(pix);
        var maskOf = new Dictionary<int, int>();
        var classes = new List<int>();
        foreach (var s in segments)
        {
            int id = (int)s.Id;
            if (!classOf.TryGetValue(id, out int c) || !present.Contains(id) || maskOf.ContainsKey(id)) continue;
            maskOf[id] = classes.Count;
            classes.Add(c);
        }
        var maskIds = pix.Select(id => maskOf.TryGetValue(id, out int k) ? k : -1).ToArray();
        var semantic = sem.Select(id => classOf.TryGetValue(id, out int c) ? c : -1).ToArray();
        return new PanopticTarget(outHeight, outWidth, maskIds, [.. classes], semanticHeight, semanticWidth, semantic);
    }
}

/// <summary>The Hungarian matching of one image: ground-truth mask <c>GtIndices[j]</c> goes to slot <c>SlotIndices[j]</c> (masks ascending).</summary>
public sealed record MaxDeepLabMatch(int[] GtIndices, int[] SlotIndices, double[] MatchedDice, double[] MatchedClassProbability);

/// <summary>
/// The MaX-DeepLab training losses (Wang et al. 2021; shared/SPEC.md). Per image, with mask probabilities m = the
/// softmax over the N slots at each stride-4 pixel, class probabilities p = the softmax over classes + void, and the K
/// ground-truth masks y (one-hot over the non-void pixels):
/// <list type="bullet">
/// <item><b>Matching</b>: dice(k, i) = Σ y_k m_i v / ((Σ y_k + Σ m_i v) / 2 + 1e-5) over the non-void pixels v, cost
/// -(dice(k, i) p_i(c_k)), rectangular Hungarian matching (K masks to N slots, scipy's assignment); both factors are
/// constants (stop-gradient) wherever they weight a loss.</item>
/// <item><b>PQ-style class term</b> (x <see cref="MaxDeepLabLossOptions.PqWeight"/>): cross-entropy of every slot's class
/// logits against its matched mask's class (weight alpha x matched dice) or void (weight 1 - alpha), summed over
/// slots and divided by N.</item>
/// <item><b>PQ-style mask term</b> (x PqWeight): for each matched pair 1 - (2 Σ m_i v y_k + 1) / (Σ m_i v + Σ y_k + 1)
/// weighted by alpha x the matched class probability, summed and divided by N (DeepLab2's normalisation).</item>
/// <item><b>Mask-ID cross-entropy</b> (x 0.3): -log m of each pixel's matched slot, averaged over the pixels of matched
/// masks.</item>
/// <item><b>Instance discrimination</b> (x 1.0): each non-void pixel's feature against the K normalised mean features
/// of the masks, logits / temperature (0.3), cross-entropy with its own mask, averaged over the non-void pixels.</item>
/// <item><b>Semantic</b> (x 1.0): cross-entropy of the stride-16 semantic logits, averaged over the non-void pixels.</item>
/// </list>
/// Each term is averaged over the batch and returned already weighted, so the trainer sums the dictionary.
/// </summary>
public static class MaxDeepLabLoss
{
    public const string PqClass = "loss_pq_class";
    public const string PqMask = "loss_pq_mask";
    public const string MaskId = "loss_mask_id";
    public const string InstanceDiscrimination = "loss_instance_discrimination";
    public const string Semantic = "loss_semantic";

    /// <summary>The weighted loss terms (scalars, batch means) for the network outputs and the batch's targets.</summary>
    public static Dictionary<string, Tensor> Compute(MaxDeepLabOutput output, IReadOnlyList<PanopticTarget> targets, MaxDeepLabLossOptions options,
        List<MaxDeepLabMatch>? matches = null, IReadOnlyList<MaxDeepLabMatch>? fixedMatches = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(options);
        if (output.SemanticLogits is null)
            throw new ArgumentException("the output has no semantic logits (a forward pass with semantic: false); the loss needs them", nameof(output));
        return Compute(output.MaskLogits, output.ClassLogits, output.PixelFeatures, output.SemanticLogits, targets, options, matches, fixedMatches);
    }

    /// <summary>
    /// The loss terms of raw tensors: mask logits [B, N, h, w], class logits [B, N, C + 1], normalised pixel features
    /// [B, D, h, w], semantic logits [B, C, hs, ws]. <paramref name="matches"/>, when given, receives each image's matching.
    /// <paramref name="fixedMatches"/> replaces the matching and its stop-gradient weights by given ones (what the
    /// analytic gradient treats as constants, for finite-difference checks).
    /// </summary>
    public static Dictionary<string, Tensor> Compute(Tensor maskLogits, Tensor classLogits, Tensor pixelFeatures, Tensor semanticLogits,
        IReadOnlyList<PanopticTarget> targets, MaxDeepLabLossOptions options, List<MaxDeepLabMatch>? matches = null, IReadOnlyList<MaxDeepLabMatch>? fixedMatches = null)
    {
        ArgumentNullException.ThrowIfNull(maskLogits);
        ArgumentNullException.ThrowIfNull(classLogits);
        ArgumentNullException.ThrowIfNull(pixelFeatures);
        ArgumentNullException.ThrowIfNull(semanticLogits);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(options);
        int batch = maskLogits.Size(0), n = maskLogits.Size(1), h = maskLogits.Size(2), w = maskLogits.Size(3), classes = classLogits.Size(2) - 1;
        if (targets.Count != batch) throw new ArgumentException($"{targets.Count} targets for a batch of {batch}", nameof(targets));
        if (fixedMatches != null && fixedMatches.Count != batch) throw new ArgumentException($"{fixedMatches.Count} fixed matchings for a batch of {batch}", nameof(fixedMatches));
        if (classLogits.Size(0) != batch || classLogits.Size(1) != n || pixelFeatures.Size(0) != batch || pixelFeatures.Size(2) != h || pixelFeatures.Size(3) != w
            || semanticLogits.Size(0) != batch || semanticLogits.Size(1) != classes)
            throw new ArgumentException($"inconsistent outputs: mask logits {Shapes.Format(maskLogits.Shape)}, class logits {Shapes.Format(classLogits.Shape)}, features {Shapes.Format(pixelFeatures.Shape)}, semantic {Shapes.Format(semanticLogits.Shape)}", nameof(maskLogits));
        var sums = new Dictionary<string, Tensor>();
        using (var scope = new TensorScope())
        {
            for (int b = 0; b < batch; b++)
            {
                var t = targets[b];
                if (t.Height != h || t.Width != w || t.SemanticHeight != semanticLogits.Size(2) || t.SemanticWidth != semanticLogits.Size(3))
                    throw new ArgumentException($"target {b} is {t.Height}x{t.Width} (semantic {t.SemanticHeight}x{t.SemanticWidth}) but the outputs are {h}x{w} (semantic {semanticLogits.Size(2)}x{semanticLogits.Size(3)})", nameof(targets));
                if (t.MaskClasses.Any(c => c < 0 || c >= classes))
                    throw new ArgumentException($"target {b} has a mask class outside [0, {classes})", nameof(targets));
                var terms = ImageTerms(maskLogits.Select(0, b), classLogits.Select(0, b), pixelFeatures.Select(0, b), semanticLogits.Select(0, b), t, options, fixedMatches?[b], out var match);
                matches?.Add(match);
                foreach (var (k, v) in terms) sums[k] = sums.TryGetValue(k, out var s) ? s + v : v;
            }
            var result = new Dictionary<string, Tensor>();
            foreach (var (k, v) in sums) result[k] = scope.MoveOut(v / batch);
            return result;
        }
    }

    private static Dictionary<string, Tensor> ImageTerms(Tensor maskLogits, Tensor classLogits, Tensor features, Tensor semanticLogits, PanopticTarget t,
        MaxDeepLabLossOptions o, MaxDeepLabMatch? fixedMatch, out MaxDeepLabMatch match)
    {
        int n = maskLogits.Size(0), p = t.Height * t.Width, k = t.NumMasks, classes = classLogits.Size(1) - 1, d = features.Size(0);
        var dtype = maskLogits.DType;
        var device = maskLogits.Device;
        var logits = maskLogits.Reshape(n, p);
        var probs = logits.Softmax(0);                                   // [N, P]
        var logProbs = logits.LogSoftmax(0);
        var classLogProbs = classLogits.LogSoftmax(-1);                  // [N, C + 1]
        var classProbs = classLogits.Softmax(-1);
        var zero = logits.Sum() * 0;

        // One-hot ground truth [K, P] and the non-void pixels [P].
        var oneHot = new double[Math.Max(k, 1) * p];
        var valid = new double[p];
        for (int i = 0; i < p; i++)
            if (t.MaskIds[i] >= 0)
            {
                oneHot[t.MaskIds[i] * p + i] = 1;
                valid[i] = 1;
            }
        var terms = new Dictionary<string, Tensor>();
        if (k == 0)
        {
            // Nothing to match: every slot is void.
            var voidIdx = Tensor.Full([n, 1], classes, DType.Int64, device);
            var ce = -classLogProbs.Gather(1, voidIdx).Sum() * ((1 - o.Alpha) / n);
            terms[PqClass] = ce * o.PqWeight;
            terms[PqMask] = zero;
            terms[MaskId] = zero;
            terms[InstanceDiscrimination] = features.Sum() * 0;
            terms[Semantic] = SemanticTerm(semanticLogits, t, o) ?? semanticLogits.Sum() * 0;
            match = new MaxDeepLabMatch([], [], [], []);
            return terms;
        }
        var y = Tensor.From<double>(oneHot, [k, p]).To(dtype).To(device);
        var v = Tensor.From<double>(valid, [p]).To(dtype).To(device);
        var mv = probs * v;                                              // [N, P]
        var gtArea = y.Sum(1);                                           // [K]
        var predArea = mv.Sum(1);                                        // [N]
        var intersection = y.MatMul(mv.MT);                              // [K, N]
        var classIdx = Tensor.From<long>(t.MaskClasses.Select(c => (long)c).ToArray(), [k]).To(device);
        var classSim = classProbs.IndexSelect(1, classIdx).MT;           // [K, N]: p_i(c_k)

        if (fixedMatch != null) match = fixedMatch;
        else
        {
            double[] diceHost, classHost;
            using (GradMode.NoGrad())
            {
                var dice = intersection.Detach() / ((gtArea.Unsqueeze(1) + predArea.Detach().Unsqueeze(0)) * 0.5 + 1e-5);
                diceHost = dice.To(DType.Float64).To(Device.Cpu).ToArray<double>();
                classHost = classSim.Detach().To(DType.Float64).To(Device.Cpu).ToArray<double>();
            }
            var cost = new double[k * n];
            for (int i = 0; i < cost.Length; i++) cost[i] = -(diceHost[i] * classHost[i]);
            var (r, c) = LinearSumAssignment.Solve(cost, k, n);
            match = new MaxDeepLabMatch(r, c, r.Select((row, j) => diceHost[row * n + c[j]]).ToArray(), r.Select((row, j) => classHost[row * n + c[j]]).ToArray());
        }
        var (rows, cols, matchedDice, matchedClass) = (match.GtIndices, match.SlotIndices, match.MatchedDice, match.MatchedClassProbability);

        // Class term: matched slots against their mask's class (alpha x dice), the rest against void (1 - alpha).
        var target = Enumerable.Repeat((long)classes, n).ToArray();
        var weight = Enumerable.Repeat(1 - o.Alpha, n).ToArray();
        var slotOfMask = Enumerable.Repeat(-1, k).ToArray();
        for (int j = 0; j < rows.Length; j++)
        {
            target[cols[j]] = t.MaskClasses[rows[j]];
            weight[cols[j]] = o.Alpha * matchedDice[j];
            slotOfMask[rows[j]] = cols[j];
        }
        var targetT = Tensor.From<long>(target, [n, 1]).To(device);
        var weightT = Tensor.From<double>(weight, [n]).To(dtype).To(device);
        var picked = classLogProbs.Gather(1, targetT).Reshape(n);
        terms[PqClass] = -(picked * weightT).Sum() * (o.PqWeight / n);

        // Mask term: dice loss of each matched pair, weighted by alpha x the matched class probability.
        var rowIdx = Tensor.From<long>(rows.Select(r => (long)r).ToArray(), [rows.Length]).To(device);
        var colIdx = Tensor.From<long>(cols.Select(c => (long)c).ToArray(), [cols.Length]).To(device);
        var predSel = mv.IndexSelect(0, colIdx);                         // [M, P]
        var gtSel = y.IndexSelect(0, rowIdx);
        var num = (predSel * gtSel).Sum(1) * 2 + 1;
        var den = predSel.Sum(1) + gtSel.Sum(1) + 1;
        var diceLoss = 1 - num / den;                                    // [M]
        var classWeight = Tensor.From<double>(matchedClass, [matchedClass.Length]).To(dtype).To(device);
        terms[PqMask] = (diceLoss * classWeight).Sum() * (o.PqWeight * o.Alpha / n);

        // Mask-ID cross-entropy over the pixels of matched masks.
        var slotIdx = new long[p];
        var idWeight = new double[p];
        int idCount = 0;
        for (int i = 0; i < p; i++)
        {
            int m = t.MaskIds[i];
            if (m < 0 || slotOfMask[m] < 0) continue;
            slotIdx[i] = slotOfMask[m];
            idWeight[i] = 1;
            idCount++;
        }
        if (idCount > 0)
        {
            var pickedId = logProbs.Gather(0, Tensor.From<long>(slotIdx, [1, p]).To(device)).Reshape(p);
            terms[MaskId] = -(pickedId * Tensor.From<double>(idWeight, [p]).To(dtype).To(device)).Sum() * (o.MaskIdWeight / idCount);
        }
        else terms[MaskId] = zero;

        // Instance discrimination: pixel features against the normalised mean feature of each mask.
        var g = features.Reshape(d, p);                                  // [D, P]
        var meanFeature = g.MatMul(y.MT) / gtArea.Clamp(min: 1).Unsqueeze(0); // [D, K]
        var centres = MaxDeepLab.L2Normalize(meanFeature, 0);
        var sim = centres.MT.MatMul(g) * (1 / o.Temperature);            // [K, P]
        var simLog = sim.LogSoftmax(0);
        var maskIdx = Tensor.From<long>(t.MaskIds.Select(m => (long)Math.Max(m, 0)).ToArray(), [1, p]).To(device);
        int validCount = t.MaskIds.Count(m => m >= 0);
        var pickedInst = simLog.Gather(0, maskIdx).Reshape(p);
        terms[InstanceDiscrimination] = -(pickedInst * v).Sum() * (o.InstanceDiscriminationWeight / validCount);

        terms[Semantic] = SemanticTerm(semanticLogits, t, o) ?? semanticLogits.Sum() * 0;
        return terms;
    }

    private static Tensor? SemanticTerm(Tensor semanticLogits, PanopticTarget t, MaxDeepLabLossOptions o)
    {
        int c = semanticLogits.Size(0), ps = t.SemanticHeight * t.SemanticWidth;
        int count = t.SemanticLabels.Count(l => l >= 0);
        if (count == 0) return null;
        var device = semanticLogits.Device;
        var logp = semanticLogits.Reshape(c, ps).LogSoftmax(0);
        var idx = Tensor.From<long>(t.SemanticLabels.Select(l => (long)Math.Max(l, 0)).ToArray(), [1, ps]).To(device);
        var wt = Tensor.From<double>(t.SemanticLabels.Select(l => l >= 0 ? 1.0 : 0.0).ToArray(), [ps]).To(semanticLogits.DType).To(device);
        return -(logp.Gather(0, idx).Reshape(ps) * wt).Sum() * (o.SemanticWeight / count);
    }
}
