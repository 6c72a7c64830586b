namespace Runtime.Models.Detection;

/// <summary>
/// Mask^X R-CNN's weight transfer function T (Hu et al. 2018): a class-agnostic map from a class's detection weights
/// <c>w_det[c]</c> to its mask weights <c>w_seg[c]</c>: <c>fc1</c> (to the hidden width) + LeakyReLU(0.1), then
/// <c>fc2</c> (to the mask feature width). <c>fc1</c>'s weights kaiming-normal (fan out, as Caffe2's MSRAFill in the
/// paper's code); <c>fc2</c>'s N(0, 0.001), so T starts class-agnostic (every class's kernel is <c>fc2</c>'s bias)
/// and only training on A's masks makes the kernels differ; biases 0. (The paper's code starts <c>fc2</c> at
/// MSRAFill too; with a handful of A classes that leaves each B class a random kernel part A never trains away.)
/// </summary>
public sealed class WeightTransfer : UnaryModule
{
    /// <summary>The slope of the LeakyReLU between the two layers.</summary>
    public const double NegativeSlope = 0.1;

    public WeightTransfer(int inFeatures, int hidden, int outFeatures, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hidden);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        Fc1 = RegisterModule("fc1", new Linear(inFeatures, hidden, dtype: dtype, device: device, generator: generator));
        Fc2 = RegisterModule("fc2", new Linear(hidden, outFeatures, dtype: dtype, device: device, generator: generator));
        foreach (var fc in new[] { Fc1, Fc2 })
        {
            Init.KaimingNormal_(fc.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
            Init.Zeros_(fc.Bias!);
        }
        Init.Normal_(Fc2.Weight, 0, 0.001, generator);
    }

    public Linear Fc1 { get; }
    public Linear Fc2 { get; }

    /// <summary><c>w_seg [classes, out]</c> of <c>w_det [classes, in]</c>.</summary>
    public override Tensor Forward(Tensor input)
    {
        using var h = Fc1.Forward(input);
        using var a = h.LeakyRelu(NegativeSlope);
        return Fc2.Forward(a);
    }

    /// <summary>Width of <see cref="DetectionWeights"/> for a box predictor on <paramref name="representationSize"/> features.</summary>
    public static int InputWidth(string input, int representationSize) => input switch
    {
        "cls" => representationSize,
        "box" => 4 * representationSize,
        "cls_box" => 5 * representationSize,
        _ => throw new ArgumentException($"the weight transfer's input must be cls, box or cls_box, got '{input}'", nameof(input)),
    };

    /// <summary>
    /// The detection weights <c>w_det [classes, width]</c>, row c: <c>cls_score.weight[c]</c> ("cls"),
    /// <c>bbox_pred.weight[4c:4c+4]</c> flattened ("box"), or both concatenated in that order ("cls_box").
    /// Connected to the predictor's parameters (the caller detaches them for the stop-gradient).
    /// </summary>
    public static Tensor DetectionWeights(FastRcnnPredictor boxPredictor, string input)
    {
        ArgumentNullException.ThrowIfNull(boxPredictor);
        int classes = boxPredictor.NumClasses, width = boxPredictor.ClsScore.InFeatures;
        _ = InputWidth(input, width);
        if (input == "cls") return boxPredictor.ClsScore.Weight.Reshape(classes, width);
        if (input == "box") return boxPredictor.BboxPred.Weight.Reshape(classes, 4 * width);
        using var box = boxPredictor.BboxPred.Weight.Reshape(classes, 4 * width);
        return Tensor.Cat([boxPredictor.ClsScore.Weight, box], 1);
    }
}

/// <summary>
/// Mask^X R-CNN's mask predictor. Like torchvision's <c>MaskRCNNPredictor</c> it starts with <c>conv5_mask</c> (2x2
/// transposed convolution, stride 2, + ReLU: M x M mask features become 2M x 2M), then gives logits in one of the
/// paper's forms:
/// <list type="bullet">
/// <item>"agnostic": <c>mask_fcn_logits</c>, a 1x1 convolution to one mask for every class ([K, 1, 2M, 2M]; weights
/// N(0, 0.001), bias 0, as the paper's code initialises a class-agnostic output);</item>
/// <item>"transfer": per-class 1x1 kernels <c>w_seg[c] = T(w_det[c])</c> (<see cref="WeightTransfer"/>, key
/// <c>weight_transfer</c>; no bias, as the paper's code) applied to the features ([K, classes, 2M, 2M]); with the
/// stop-gradient the detection weights enter as constants, so the mask loss trains T and not the box predictor;</item>
/// <item>"..._mlp": plus <c>mask_mlp</c>, a class-agnostic MLP from the flattened M x M mask features (the predictor's
/// input) through fully connected layers (+ ReLU) to (2M)^2 logits, added to every class's FCN logits (last layer
/// N(0, 0.001), bias 0; hidden layers kaiming-normal, fan out).</item>
/// </list>
/// The box predictor is the model's own (registered under <c>roi_heads.box_predictor</c>); this module only reads it.
/// </summary>
public sealed class MaskXPredictor : UnaryModule
{
    private readonly FastRcnnPredictor? _boxPredictor;

    public MaskXPredictor(int inChannels, int dimReduced, int inputSize, string maskHead, FastRcnnPredictor boxPredictor, string transferInput = "cls_box",
        bool stopGradient = true, IReadOnlyList<int>? mlpLayers = null, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(boxPredictor);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputSize);
        if (!MaskXRcnnConfig.MaskHeads.Contains(maskHead))
            throw new ArgumentException($"the Mask^X mask head must be {string.Join(", ", MaskXRcnnConfig.MaskHeads)}, got '{maskHead}'", nameof(maskHead));
        MaskHead = maskHead;
        Conv5Mask = RegisterModule("conv5_mask", new ConvTranspose2d(inChannels, dimReduced, 2, 2, 0, dtype: dtype, device: device, generator: generator));
        Init.KaimingNormal_(Conv5Mask.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
        if (maskHead.StartsWith("transfer", StringComparison.Ordinal))
        {
            int width = WeightTransfer.InputWidth(transferInput, boxPredictor.ClsScore.InFeatures);
            WeightTransfer = RegisterModule("weight_transfer", new WeightTransfer(width, dimReduced, dimReduced, dtype, device, generator));
            _boxPredictor = boxPredictor;
            TransferInput = transferInput;
            StopGradient = stopGradient;
            NumClasses = boxPredictor.NumClasses;
        }
        else
        {
            MaskFcnLogits = RegisterModule("mask_fcn_logits", new Conv2d(dimReduced, 1, 1, dtype: dtype, device: device, generator: generator));
            Init.Normal_(MaskFcnLogits.Weight, 0, 0.001, generator);
            Init.Zeros_(MaskFcnLogits.Bias!);
            NumClasses = 1;
        }
        if (maskHead.EndsWith("_mlp", StringComparison.Ordinal))
        {
            var mlp = new Sequential();
            int next = inChannels * inputSize * inputSize;
            foreach (int w in mlpLayers ?? [])
            {
                var fc = new Linear(next, w, dtype: dtype, device: device, generator: generator);
                Init.KaimingNormal_(fc.Weight, mode: "fan_out", nonlinearity: "relu", generator: generator);
                Init.Zeros_(fc.Bias!);
                mlp.Append(fc).Append(new ReLU());
                next = w;
            }
            var last = new Linear(next, 4 * inputSize * inputSize, dtype: dtype, device: device, generator: generator);
            Init.Normal_(last.Weight, 0, 0.001, generator);
            Init.Zeros_(last.Bias!);
            MaskMlp = RegisterModule("mask_mlp", mlp.Append(last));
        }
        MaskSize = 2 * inputSize;
    }

    /// <summary>"agnostic", "agnostic_mlp", "transfer" or "transfer_mlp".</summary>
    public string MaskHead { get; }
    public ConvTranspose2d Conv5Mask { get; }

    /// <summary>The class-agnostic 1x1 output (the "agnostic" kinds); null with the weight transfer.</summary>
    public Conv2d? MaskFcnLogits { get; }

    /// <summary>T (the "transfer" kinds); null for the class-agnostic ones.</summary>
    public WeightTransfer? WeightTransfer { get; }

    /// <summary>The class-agnostic MLP branch (the "_mlp" kinds), else null.</summary>
    public Sequential? MaskMlp { get; }

    public string? TransferInput { get; }
    public bool StopGradient { get; }

    /// <summary>Channels of the logits: the box predictor's classes with the weight transfer, 1 for the class-agnostic kinds.</summary>
    public int NumClasses { get; }

    /// <summary>Side of the logit maps (2 x the input's).</summary>
    public int MaskSize { get; }

    /// <summary><c>w_seg [classes, dimReduced]</c>, the per-class 1x1 kernels the weight transfer gives now (null without one).</summary>
    public Tensor? MaskWeights()
    {
        if (WeightTransfer == null) return null;
        using var wDet = WeightTransfer.DetectionWeights(_boxPredictor!, TransferInput!);
        if (!StopGradient) return WeightTransfer.Forward(wDet);
        using var constant = wDet.Detach();
        return WeightTransfer.Forward(constant);
    }

    /// <summary>Mask logits [K, classes (or 1), 2M, 2M] of mask features [K, C, M, M].</summary>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = new TensorScope();
        var up = Conv5Mask.Forward(input).Relu();
        Tensor logits;
        if (MaskWeights() is { } wSeg) logits = up.Conv2d(wSeg.Reshape(wSeg.Size(0), wSeg.Size(1), 1, 1));
        else logits = MaskFcnLogits!.Forward(up);
        if (MaskMlp != null)
        {
            int k = input.Size(0);
            var mlp = MaskMlp.Forward(input.Flatten(1)).Reshape(k, 1, MaskSize, MaskSize);
            logits = logits + mlp;
        }
        return scope.MoveOut(logits);
    }
}

/// <summary>
/// Mask^X R-CNN (Hu et al. 2018, "Learning to Segment Every Thing"): <see cref="MaskRcnn"/> with a
/// <see cref="MaskXPredictor"/>, trained with partial supervision (<see cref="MaskRcnnConfig.MaskClasses"/>: masks for
/// set A, boxes for every class). State-dict keys are Mask R-CNN's but for the predictor's:
/// <c>roi_heads.mask_predictor.{conv5_mask, mask_fcn_logits | weight_transfer.fc1 / fc2, mask_mlp.i}</c>.
/// </summary>
public sealed class MaskXRcnn : MaskRcnn
{
    public MaskXRcnn(MaskXRcnnConfig config, DType dtype = DType.Float32, Device? device = null, Generator? generator = null)
        : base(config, dtype, device, generator)
    {
        Config = config;
    }

    public new MaskXRcnnConfig Config { get; }

    /// <summary>The mask predictor.</summary>
    public MaskXPredictor MaskPredictor => (MaskXPredictor)MaskRoiHeads.MaskPredictor;

    protected override UnaryModule CreateMaskPredictor(MaskRcnnConfig config, int inChannels, FastRcnnPredictor boxPredictor, DType dtype, Device? device, Generator? generator)
    {
        if (config is not MaskXRcnnConfig c) throw new ArgumentException($"Mask^X R-CNN needs a {nameof(MaskXRcnnConfig)}, got a {config.GetType().Name}", nameof(config));
        return new MaskXPredictor(inChannels, c.MaskDimReduced, c.MaskPoolSize, c.MaskHead, boxPredictor, c.TransferInput, c.TransferStopGradient,
            c.MaskMlpLayers, dtype, device, generator);
    }
}
