using System.Diagnostics;
using Runtime.Autograd;
using Runtime.Models.Panoptic;
using Runtime.Nn;
using Runtime.Nn.Losses;
using Runtime.Nn.Optim;
using Runtime.Vision.Data;

namespace Runtime.Models.Training;

/// <summary>
/// Settings of <see cref="BackbonePretraining"/>: how long, how many object crops are cut from the training split,
/// their size and how much of a crop the object fills, and the optimiser.
/// </summary>
public sealed record BackbonePretrainOptions
{
    /// <summary>Wall time of the whole pretraining, cutting the crops included (that stops after a quarter of it).</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(7);

    /// <summary>Stop after this many steps even when time is left (null: time alone decides).</summary>
    public int? MaxSteps { get; init; }

    /// <summary>Object crops cut from the training split (each image's thing segments, images drawn at random), held in
    /// memory as float32: 25,600 crops of 65 x 65 take 1.3 GB.</summary>
    public int Crops { get; init; } = 25600;

    /// <summary>Side of the square crops fed to the network.</summary>
    public int CropSize { get; init; } = 65;

    /// <summary>The object's longer bounding-box side over the crop's side is drawn from [Min, Max].</summary>
    public double MinObjectFraction { get; init; } = 0.35;

    public double MaxObjectFraction { get; init; } = 0.8;

    public int BatchSize { get; init; } = 32;
    public double Lr { get; init; } = 2e-3;
    public ulong Seed { get; init; } = 1;

    internal void Validate()
    {
        if (Duration <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Duration), Duration, "the pretraining needs a positive duration");
        if (MaxSteps is <= 0) throw new ArgumentOutOfRangeException(nameof(MaxSteps), MaxSteps, "must be positive");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Crops, nameof(Crops));
        ArgumentOutOfRangeException.ThrowIfLessThan(CropSize, 17, nameof(CropSize));
        if ((long)Crops * 3 * CropSize * CropSize > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(Crops), Crops, $"{Crops} crops of {CropSize} x {CropSize} do not fit one array; use fewer or smaller crops");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BatchSize, nameof(BatchSize));
        if (!(Lr > 0) || double.IsInfinity(Lr)) throw new ArgumentOutOfRangeException(nameof(Lr), Lr, "the learning rate must be positive");
        if (!(MinObjectFraction > 0 && MinObjectFraction <= MaxObjectFraction && MaxObjectFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(MinObjectFraction), $"object fractions must satisfy 0 < min <= max <= 1, got [{MinObjectFraction}, {MaxObjectFraction}]");
    }
}

/// <summary>One report of the pretraining loop: mean loss and accuracy over the steps since the last report.</summary>
public sealed record PretrainStep(int Step, int Crops, double Loss, double Accuracy, TimeSpan Elapsed);

/// <summary>What <see cref="BackbonePretraining.Run"/> did: steps, crops in the bank, the last report's loss and accuracy.</summary>
public sealed record PretrainResult(int Steps, int Crops, double Loss, double Accuracy, TimeSpan Elapsed);

/// <summary>
/// Supervised pretraining of MaX-DeepLab's convolutional front (<c>conv1</c>, <c>bn1</c>, <c>layer1</c>, <c>layer2</c>
/// and <c>layer3</c>'s first block: the part torchvision's ImageNet ResNet weights load into) as an image classifier of
/// object crops from the training split: each crop is a square around one thing segment's box (the object filling
/// a random share of it, the centre jittered, the image's zero-mean padding beyond its border), resized to
/// <see cref="BackbonePretrainOptions.CropSize"/>, flipped at random, and classified over the thing classes by global
/// average pooling and a linear layer that is thrown away afterwards. It stands in for the ImageNet pretraining the
/// paper starts from: trained from scratch, the mask transformer's slots cannot learn to tell the shapes apart in a
/// CPU budget (docs/max-deeplab.md), and a classifier sees hundreds of labelled objects per second.
/// Only the front's parameters and batch-norm statistics change; the held-out split is never read.
/// </summary>
public static class BackbonePretraining
{
    /// <summary>
    /// Cuts <paramref name="count"/> crops [count, 3, size, size] (normalised with the model's mean and std) and their
    /// labels (indices into <see cref="MaxDeepLabConfig.ThingClasses"/>) from random images of <paramref name="data"/>;
    /// fewer (at least one batch) when <paramref name="budget"/> runs out first.
    /// </summary>
    public static (Tensor Crops, int[] Labels) CutCrops(IDataset<PanopticSample> data, MaxDeepLabConfig config, BackbonePretrainOptions options, int count, Generator random,
        TimeSpan? budget = null)
    {
        var (pixels, labels) = CutCropValues(data, config, options, count, random, budget);
        return (Tensor.From<float>(pixels, [labels.Length, 3, options.CropSize, options.CropSize]), labels);
    }

    /// <summary><see cref="CutCrops"/>'s values as one flat array (the bank pretraining draws its batches from).</summary>
    private static (float[] Pixels, int[] Labels) CutCropValues(IDataset<PanopticSample> data, MaxDeepLabConfig config, BackbonePretrainOptions options, int count,
        Generator random, TimeSpan? budget)
    {
        var clock = Stopwatch.StartNew();
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count, nameof(count));
        if (data.Count == 0) throw new ArgumentException("the data set is empty", nameof(data));
        var things = config.ThingClasses.ToList();
        int size = options.CropSize, per = 3 * size * size;
        var pixels = new float[(long)count * per];
        var labels = new int[count];
        int made = 0, emptyDraws = 0;
        using var mean = Tensor.From<float>(config.ImageMean, [3, 1, 1]);
        using var std = Tensor.From<float>(config.ImageStd, [3, 1, 1]);
        while (made < count && !(budget is { } b && made >= options.BatchSize && clock.Elapsed > b))
        {
            using var sample = data.Get((int)random.NextInt64(0, data.Count));
            bool any = false;
            foreach (var seg in sample.Segments)
            {
                int label = things.IndexOf(seg.Label - 1);
                if (label < 0 || seg.IsCrowd || seg.Bbox[2] <= 0 || seg.Bbox[3] <= 0 || made >= count) continue;
                any = true;
                double fraction = options.MinObjectFraction + (options.MaxObjectFraction - options.MinObjectFraction) * random.NextDouble();
                int side = Math.Max(4, (int)Math.Round(Math.Max(seg.Bbox[2], seg.Bbox[3]) / fraction));
                double cx = seg.Bbox[0] + seg.Bbox[2] / 2 + (random.NextDouble() - 0.5) * 0.2 * side;
                double cy = seg.Bbox[1] + seg.Bbox[3] / 2 + (random.NextDouble() - 0.5) * 0.2 * side;
                bool flip = random.NextDouble() < 0.5;
                using var crop = Cut(sample.Image, mean, std, (int)Math.Round(cx - side / 2.0), (int)Math.Round(cy - side / 2.0), side, size, flip);
                crop.ToArray<float>().CopyTo(pixels.AsSpan((int)((long)made * per), per));
                labels[made++] = label;
            }
            if (!any && ++emptyDraws > 1000 && made == 0)
                throw new ArgumentException($"no thing segment found in {emptyDraws} drawn images: there is nothing to pretrain on", nameof(data));
        }
        if (made < count)
        {
            Array.Resize(ref pixels, made * per);
            Array.Resize(ref labels, made);
        }
        return (pixels, labels);
    }

    /// <summary>The side x side window at (x0, y0) of a [3, H, W] image in [0, 1], normalised, zero beyond the border, resized to size x size.</summary>
    internal static Tensor Cut(Tensor image, Tensor mean, Tensor std, int x0, int y0, int side, int size, bool flip)
    {
        using var scope = new TensorScope();
        int h = image.Size(1), w = image.Size(2);
        var x = (image - mean) / std;
        int left = Math.Max(0, -x0), top = Math.Max(0, -y0), right = Math.Max(0, x0 + side - w), bottom = Math.Max(0, y0 + side - h);
        if (left + top + right + bottom > 0) x = x.Pad([left, right, top, bottom]);
        var window = x.Narrow(1, y0 + top, side).Narrow(2, x0 + left, side).Unsqueeze(0);
        if (side != size) window = window.Interpolate((size, size), InterpolationMode.Bilinear, alignCorners: false);
        if (flip) window = window.Flip(-1);
        return scope.MoveOut(window.Squeeze(0).Contiguous());
    }

    /// <summary>Globally averaged features of the pretrained front: [B, 4 x Widths[2]].</summary>
    internal static Tensor FrontFeatures(MaxDeepLab model, Tensor images)
    {
        using var scope = new TensorScope();
        var x = model.MaxPool.Forward(model.Conv1.ForwardNorm(images, model.Bn1, relu: true));
        x = model.Layer3[0].Forward(model.Layer2.Forward(model.Layer1.Forward(x)));
        return scope.MoveOut(x.Mean([2, 3]));
    }

    /// <summary>The parameters pretraining changes: conv1, bn1, layer1, layer2 and layer3's first block.</summary>
    public static IEnumerable<Tensor> FrontParameters(MaxDeepLab model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Conv1.Parameters().Concat(model.Bn1.Parameters()).Concat(model.Layer1.Parameters())
            .Concat(model.Layer2.Parameters()).Concat(model.Layer3[0].Parameters());
    }

    /// <summary>
    /// Pretrains <paramref name="model"/>'s front in place on crops of <paramref name="train"/> until the duration or
    /// the step limit is reached; <paramref name="progress"/> hears every 100 steps and the end. The model is left in
    /// training mode.
    /// </summary>
    public static PretrainResult Run(MaxDeepLab model, IDataset<PanopticSample> train, BackbonePretrainOptions options,
        Action<PretrainStep>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (model.Config.ThingClasses.Length < 2)
            throw new ArgumentException($"pretraining classifies the thing classes; the model has {model.Config.ThingClasses.Length}", nameof(model));
        var clock = Stopwatch.StartNew();
        var random = new Generator(options.Seed);
        var (flat, labels) = CutCropValues(train, model.Config, options, options.Crops, random, options.Duration / 4);
        var device = model.Memory.Device;
        var dtype = model.Memory.DType;
        int size = options.CropSize, per = 3 * size * size, n = labels.Length, b = options.BatchSize;
        using var head = new Linear(model.Config.Widths[2] * 4, model.Config.ThingClasses.Length, dtype: dtype, device: device, generator: new Generator(options.Seed + 1));
        using var optimizer = new Adam(FrontParameters(model).Concat(head.Parameters()).ToArray(), options.Lr);
        model.Train();
        int step = 0, seen = 0, right = 0, reported = 0;
        double lossSum = 0;
        PretrainStep? last = null;
        var batch = new float[b * per];
        var target = new long[b];
        while (clock.Elapsed < options.Duration && (options.MaxSteps is not int max || step < max))
        {
            cancel.ThrowIfCancellationRequested();
            for (int i = 0; i < b; i++)
            {
                int k = (int)random.NextInt64(0, n);
                target[i] = labels[k];
                bool flip = random.NextDouble() < 0.5;
                var src = flat.AsSpan(k * per, per);
                var dst = batch.AsSpan(i * per, per);
                if (!flip) src.CopyTo(dst);
                else
                    for (int row = 0; row < 3 * size; row++)
                        for (int col = 0; col < size; col++)
                            dst[row * size + col] = src[row * size + size - 1 - col];
            }
            using var scope = new TensorScope();
            var images = Tensor.From<float>(batch, [b, 3, size, size]).To(dtype).To(device);
            var logits = head.Forward(FrontFeatures(model, images));
            var loss = Losses.CrossEntropy(logits, Tensor.From<long>(target, [b]).To(device));
            optimizer.ZeroGrad();
            loss.Backward();
            optimizer.Step();
            var predicted = logits.Argmax(1).To(Device.Cpu).ToArray<long>();
            for (int i = 0; i < b; i++) if (predicted[i] == target[i]) right++;
            seen += b;
            lossSum += loss.Item();
            step++;
            if (step % 100 == 0)
            {
                last = new PretrainStep(step, n, lossSum / (step - reported), (double)right / seen, clock.Elapsed);
                progress?.Invoke(last);
                reported = step;
                lossSum = 0;
                seen = right = 0;
            }
        }
        optimizer.ZeroGrad();
        if (step > reported) last = new PretrainStep(step, n, lossSum / (step - reported), (double)right / Math.Max(1, seen), clock.Elapsed);
        if (last != null && last.Step != reported) progress?.Invoke(last);
        return new PretrainResult(step, n, last?.Loss ?? double.NaN, last?.Accuracy ?? double.NaN, clock.Elapsed);
    }
}
