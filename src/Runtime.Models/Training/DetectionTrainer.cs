using System.Diagnostics;
using System.Text.Json;
using Runtime.Models.Detection;
using Runtime.Nn.Checkpoints;
using Runtime.Nn.Optim;
using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;

namespace Runtime.Models.Training;

/// <summary>
/// The training recipe (torchvision's references/detection defaults unless set): SGD with momentum 0.9 and weight
/// decay 1e-4, a linear warm-up over the first iterations, then the learning rate times <see cref="LrGamma"/> at each
/// epoch of <see cref="LrSteps"/>; horizontal flips; optional gradient-norm clipping.
/// </summary>
public sealed record TrainOptions
{
    public int Epochs { get; init; } = 26;
    public int BatchSize { get; init; } = 2;
    public double Lr { get; init; } = 0.02;
    public double Momentum { get; init; } = 0.9;
    public double WeightDecay { get; init; } = 1e-4;
    public int WarmupIters { get; init; } = 1000;
    public double WarmupFactor { get; init; } = 1e-3;
    public int[] LrSteps { get; init; } = [16, 22];
    public double LrGamma { get; init; } = 0.1;
    public double? ClipGradNorm { get; init; }
    public double FlipProbability { get; init; } = 0.5;
    public ulong Seed { get; init; } = 1;
    /// <summary>Images decoded ahead by background workers (0: on the training thread).</summary>
    public int Workers { get; init; } = 1;
    /// <summary>Evaluate on the held-out split after every epoch (else only after the last).</summary>
    public bool EvalEveryEpoch { get; init; } = true;
    /// <summary>Stop after this much training time (the epoch in progress ends early); null: no limit.</summary>
    public TimeSpan? TimeLimit { get; init; }
    /// <summary>
    /// Images per epoch: the first this many of each epoch's shuffled order, in whole batches (a fixed schedule shorter
    /// than a pass over a large set; each epoch sees another random subset); null: the whole training split.
    /// </summary>
    public int? EpochImages { get; init; }
    /// <summary>
    /// Parameter-name prefixes that stay as they are (stage-wise training, e.g. the mask branch alone on a trained
    /// detector): their parameters are not trained and the BatchNorm layers under them keep their statistics.
    /// </summary>
    public IReadOnlyList<string> Frozen { get; init; } = [];

    /// <summary>The prefixes of everything but the mask branch: backbone, RPN and box branch.</summary>
    public static IReadOnlyList<string> Detector { get; } = ["backbone", "rpn", "roi_heads.box_"];

    internal bool IsFrozen(string name) => Frozen.Any(f => name.StartsWith(f, StringComparison.Ordinal));

    /// <summary>
    /// Learning-rate multiplier of the offset-predicting layers (<see cref="DetectionModel.IsOffsetParameter"/>: the
    /// deformable convolutions' <c>conv_offset</c>, the deformable RoI pooling's offset and modulation branches); 1 by default.
    /// </summary>
    public double OffsetLrMultiplier { get; init; } = 1.0;

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Epochs, nameof(Epochs));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BatchSize, nameof(BatchSize));
        if (!(Lr > 0) || double.IsInfinity(Lr)) throw new ArgumentOutOfRangeException(nameof(Lr), Lr, "the learning rate must be positive");
        ArgumentOutOfRangeException.ThrowIfNegative(Workers, nameof(Workers));
        ArgumentOutOfRangeException.ThrowIfNegative(WarmupIters, nameof(WarmupIters));
        if (EpochImages is int n && n < BatchSize) throw new ArgumentOutOfRangeException(nameof(EpochImages), n, "an epoch needs at least one batch of images");
        if (!(OffsetLrMultiplier >= 0) || double.IsInfinity(OffsetLrMultiplier))
            throw new ArgumentOutOfRangeException(nameof(OffsetLrMultiplier), OffsetLrMultiplier, "the offset layers' learning-rate multiplier must be non-negative and finite");
    }

    /// <summary>The learning rate at <paramref name="iteration"/> of <paramref name="epoch"/> (warm-up only in the first epoch, as torchvision).</summary>
    public double LrAt(int epoch, int iteration, int itersPerEpoch)
    {
        double lr = Lr * Math.Pow(LrGamma, LrSteps.Count(s => epoch >= s));
        int warm = Math.Min(WarmupIters, itersPerEpoch - 1);
        if (epoch == 0 && iteration < warm)
            lr *= WarmupFactor + (1 - WarmupFactor) * iteration / warm;
        return lr;
    }
}

/// <summary>One training step as the progress display sees it.</summary>
public sealed record TrainStep(int Epoch, int Epochs, int Iteration, int Iterations, IReadOnlyDictionary<string, double> Losses, double Loss, double Lr, double ImagesPerSecond, TimeSpan Elapsed);

/// <summary>
/// One finished epoch: its mean losses, the held-out evaluation (if run: boxes, and masks for the mask models; PQ for
/// the panoptic models) and where the checkpoint went.
/// </summary>
public sealed record EpochSummary(int Epoch, IReadOnlyDictionary<string, double> MeanLosses, CocoEvalResult? Evaluation, string Checkpoint, TimeSpan Elapsed,
    CocoEvalResult? MaskEvaluation = null, MaskSplitScores? MaskSplit = null, PanopticResult? Panoptic = null);

/// <summary>Receives the trainer's progress (the CLI draws a progress bar or prints lines).</summary>
public interface ITrainingObserver
{
    void OnStart(int epochs, int iterationsPerEpoch, int startEpoch) { }
    void OnStep(TrainStep step) { }
    void OnEvaluating(int images) { }
    void OnEpoch(EpochSummary summary) { }

    /// <summary>Progress of a panoptic model's backbone pretraining (every 100 steps).</summary>
    void OnPretrainStep(PretrainStep step) { }

    /// <summary>The backbone pretraining is over.</summary>
    void OnPretrained(PretrainResult result) { }
}

/// <summary>
/// The generic detection training loop (torchvision's train_one_epoch + evaluate): data loading with flips, losses
/// summed and logged per term, SGD, the learning-rate schedule, a checkpoint each epoch (model, config, optimizer
/// state) and COCO evaluation on the held-out split. Deterministic for a seed on the CPU; resumes from its checkpoint.
/// </summary>
public sealed class DetectionTrainer
{
    public const string OptimizerFile = "optimizer.safetensors";
    public const string StateFile = "trainer.json";

    private readonly DetectionModel _model;
    private readonly string _modelName;
    private readonly CocoDetection _train;
    private readonly CocoDetection? _val;
    private readonly TrainOptions _options;
    private readonly string _outDir;
    private readonly string? _dataName;

    public DetectionTrainer(string modelName, DetectionModel model, CocoDetection train, CocoDetection? val, TrainOptions options, string outDir, string? dataName = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (train.Categories.NumClasses != model.NumClasses)
            throw new ArgumentException($"the model has {model.NumClasses} classes (background included) but the data set has {train.Categories.NumClasses}", nameof(model));
        _modelName = modelName;
        _model = model;
        _train = train;
        _val = val;
        _options = options;
        _outDir = outDir;
        _dataName = dataName;
    }

    private sealed record TrainerState(int EpochsDone, ulong Seed, double Lr);

    /// <summary>Trains from <paramref name="resume"/>'s state when asked (the checkpoint in the output folder), else from scratch.</summary>
    public IReadOnlyList<EpochSummary> Run(ITrainingObserver? observer = null, bool resume = false, CancellationToken cancel = default)
    {
        observer ??= new NullObserver();
        // Frozen parameters stop requiring gradients for the run (so backward skips them), then get them back.
        var frozen = _model.NamedParameters().Where(p => p.Parameter.RequiresGrad && _options.IsFrozen(p.Name)).Select(p => p.Parameter).ToArray();
        foreach (var p in frozen) p.RequiresGrad = false;
        try
        {
            return RunEpochs(observer, resume, cancel);
        }
        finally
        {
            foreach (var p in frozen) p.RequiresGrad = true;
        }
    }

    private List<EpochSummary> RunEpochs(ITrainingObserver observer, bool resume, CancellationToken cancel)
    {
        var groups = ParameterGroups(_model, _options.OffsetLrMultiplier);
        if (groups.Count == 0) throw new ArgumentException("nothing to train: every parameter is frozen");
        using var optimizer = new Sgd(groups, _options.Lr, _options.Momentum, weightDecay: _options.WeightDecay);
        int startEpoch = resume ? Restore(optimizer) : 0;
        var flipped = new TransformedDataset<DetectionSample>(_train, new RandomHorizontalFlip(_options.FlipProbability), _options.Seed);
        using var loader = new DataLoader<DetectionSample, DetectionSample[]>(flipped, b => [.. b], new DataLoaderOptions
        {
            BatchSize = _options.BatchSize, Shuffle = true, Seed = _options.Seed, NumWorkers = _options.Workers, DropLast = true,
        });
        int iters = _options.EpochImages is int cap ? Math.Min(loader.BatchCount, cap / _options.BatchSize) : loader.BatchCount;
        if (iters == 0) throw new ArgumentException($"the training set has {_train.Count} images, fewer than one batch of {_options.BatchSize}");
        observer.OnStart(_options.Epochs, iters, startEpoch);
        var summaries = new List<EpochSummary>();
        var clock = Stopwatch.StartNew();
        for (int epoch = startEpoch; epoch < _options.Epochs; epoch++)
        {
            _model.Train();
            foreach (var (name, m) in _model.NamedModules())
                if (m is BatchNorm2d && _options.IsFrozen(name)) m.Eval();
            flipped.SetEpoch(epoch);
            // Every random stream restarts from (seed, epoch): a run resumed at an epoch repeats the uninterrupted one.
            var random = new Generator(Dataset.MixSeed(_options.Seed, epoch, 1));
            _model.SeedSampling(Dataset.MixSeed(_options.Seed, epoch, 2));
            var sums = new Dictionary<string, double>();
            int it = 0, images = 0;
            var epochClock = Stopwatch.StartNew();
            bool outOfTime = false;
            foreach (var batch in loader.Epoch(epoch, cancel))
            {
                try
                {
                    optimizer.Lr = _options.LrAt(epoch, it, iters);
                    var (terms, total) = Step(batch, optimizer, random);
                    foreach (var (k, v) in terms) sums[k] = sums.GetValueOrDefault(k) + v;
                    it++;
                    images += batch.Length;
                    observer.OnStep(new TrainStep(epoch, _options.Epochs, it, iters, terms, total, optimizer.Lr, images / epochClock.Elapsed.TotalSeconds, clock.Elapsed));
                }
                finally
                {
                    foreach (var s in batch) s.Dispose();
                }
                if (_options.TimeLimit is { } limit && clock.Elapsed >= limit) { outOfTime = true; break; }
                if (it == iters) break;
            }
            bool last = epoch == _options.Epochs - 1 || outOfTime;
            var checkpoint = SaveCheckpoint(optimizer, epoch + 1);
            DetectionScores? eval = null;
            if (_val != null && (_options.EvalEveryEpoch || last))
            {
                observer.OnEvaluating(_val.Count);
                eval = DetectionEvaluation.Evaluate(_model, _val);
            }
            var summary = new EpochSummary(epoch, sums.ToDictionary(kv => kv.Key, kv => kv.Value / Math.Max(1, it)), eval?.Box, checkpoint, clock.Elapsed, eval?.Mask, eval?.MaskSplit);
            summaries.Add(summary);
            observer.OnEpoch(summary);
            if (outOfTime) break;
        }
        return summaries;
    }

    /// <summary>
    /// The trainable parameters in model order, cut into runs of equal learning-rate multiplier (the offset layers'
    /// <paramref name="offsetLrMultiplier"/>, 1 elsewhere); the parameter indices, and so the saved momentum buffers,
    /// do not depend on the multiplier.
    /// </summary>
    public static IReadOnlyList<ParamGroup> ParameterGroups(DetectionModel model, double offsetLrMultiplier)
    {
        ArgumentNullException.ThrowIfNull(model);
        var groups = new List<ParamGroup>();
        var run = new List<Tensor>();
        double current = 1;
        foreach (var (name, p) in model.NamedParameters())
        {
            if (!p.RequiresGrad) continue;
            double m = DetectionModel.IsOffsetParameter(name) ? offsetLrMultiplier : 1;
            if (m != current && run.Count > 0)
            {
                groups.Add(new ParamGroup(run.ToArray(), current));
                run.Clear();
            }
            current = m;
            run.Add(p);
        }
        if (run.Count > 0) groups.Add(new ParamGroup(run.ToArray(), current));
        return groups;
    }

    private (Dictionary<string, double> Terms, double Total) Step(DetectionSample[] batch, Sgd optimizer, Generator random)
    {
        using var scope = new TensorScope();
        var losses = _model.ComputeLosses(batch, random);
        var terms = losses.ToDictionary(kv => kv.Key, kv => kv.Value.Item());
        double total = terms.Values.Sum();
        if (!double.IsFinite(total))
            throw new InvalidOperationException($"the loss is {total} ({string.Join(", ", terms.Select(kv => $"{kv.Key} {kv.Value}"))}); training stopped");
        var sum = losses.Values.Aggregate((a, b) => a + b);
        optimizer.ZeroGrad();
        sum.Backward();
        if (_options.ClipGradNorm is double clip) GradClip.ClipGradNorm(optimizer.Parameters, clip);
        optimizer.Step();
        optimizer.ZeroGrad();
        return (terms, total);
    }

    private string SaveCheckpoint(Sgd optimizer, int epochsDone)
    {
        var info = new CheckpointInfo { Model = _modelName, Config = _model.Config, Categories = _train.Categories.Categories, Epoch = epochsDone, Data = _dataName };
        DetectorCheckpoint.Save(_outDir, _model, info);
        var state = optimizer.StateDict();
        var cpu = state.ToDictionary(kv => kv.Key, kv => kv.Value.To(Device.Cpu));
        try
        {
            Safetensors.Save(Path.Combine(_outDir, OptimizerFile), cpu);
        }
        finally
        {
            foreach (var t in cpu.Values) t.Dispose();
        }
        var path = Path.Combine(_outDir, StateFile);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(new TrainerState(epochsDone, _options.Seed, _options.Lr), DetectorCheckpoint.Json));
        File.Move(tmp, path, overwrite: true);
        return _outDir;
    }

    private int Restore(Sgd optimizer)
    {
        var statePath = Path.Combine(_outDir, StateFile);
        if (!File.Exists(statePath))
            throw new FileNotFoundException($"--resume: '{_outDir}' holds no training state ({StateFile}); train without --resume first", statePath);
        var info = DetectorCheckpoint.ReadInfo(_outDir);
        if (info.Model != _modelName)
            throw new CheckpointFormatException($"--resume: '{_outDir}' holds a {info.Model} checkpoint, not {_modelName}");
        DetectorCheckpoint.LoadWeights(_model, Path.Combine(_outDir, DetectorCheckpoint.WeightsFile));
        var opt = Safetensors.Load(Path.Combine(_outDir, OptimizerFile));
        try
        {
            optimizer.LoadStateDict(opt);
        }
        finally
        {
            foreach (var t in opt.Values) t.Dispose();
        }
        var state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(statePath), DetectorCheckpoint.Json)
            ?? throw new CheckpointFormatException($"{statePath}: empty training state");
        return state.EpochsDone;
    }

    private sealed class NullObserver : ITrainingObserver;
}
