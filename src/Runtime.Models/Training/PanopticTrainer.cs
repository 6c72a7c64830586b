using System.Diagnostics;
using System.Text.Json;
using Runtime.Models.Detection;
using Runtime.Models.Panoptic;
using Runtime.Nn.Checkpoints;
using Runtime.Nn.Optim;
using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;

namespace Runtime.Models.Training;

/// <summary>
/// MaX-DeepLab's training recipe (DeepLab2's, scaled to a CPU): Adam (lr 1e-3, no weight decay), a linear warm-up
/// then poly decay (power 0.9) to zero at the last iteration, random scale [0.75, 1.25] around the fit-to-input size,
/// a square crop of the input size and horizontal flips; optional gradient-norm clipping.
/// </summary>
public sealed record PanopticTrainOptions
{
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 4;
    public double Lr { get; init; } = 1e-3;
    public double WeightDecay { get; init; }
    public int WarmupIters { get; init; } = 100;
    public double WarmupFactor { get; init; } = 1e-2;
    public double PolyPower { get; init; } = 0.9;
    public double MinScale { get; init; } = 0.75;
    public double MaxScale { get; init; } = 1.25;
    public double FlipProbability { get; init; } = 0.5;
    public double? ClipGradNorm { get; init; }
    public ulong Seed { get; init; } = 1;
    public int Workers { get; init; } = 1;
    public bool EvalEveryEpoch { get; init; } = true;
    /// <summary>Held-out images scored after each epoch but the last (null: all); the last epoch scores all.</summary>
    public int? EvalImages { get; init; }
    /// <summary>Stop after this much training time (the epoch in progress ends early); null: no limit.</summary>
    public TimeSpan? TimeLimit { get; init; }

    /// <summary>
    /// Pretrain the convolutional front on object crops first (<see cref="BackbonePretraining"/>; its time counts
    /// against <see cref="TimeLimit"/>); not on resume. Null: no pretraining.
    /// </summary>
    public BackbonePretrainOptions? Pretrain { get; init; }

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Epochs, nameof(Epochs));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BatchSize, nameof(BatchSize));
        if (!(Lr > 0) || double.IsInfinity(Lr)) throw new ArgumentOutOfRangeException(nameof(Lr), Lr, "the learning rate must be positive");
        ArgumentOutOfRangeException.ThrowIfNegative(Workers, nameof(Workers));
        ArgumentOutOfRangeException.ThrowIfNegative(WarmupIters, nameof(WarmupIters));
    }

    /// <summary>The learning rate at global iteration <paramref name="iteration"/> of <paramref name="total"/>.</summary>
    public double LrAt(long iteration, long total)
    {
        double lr = Lr * Math.Pow(Math.Max(0, 1 - (double)iteration / Math.Max(1, total)), PolyPower);
        if (iteration < WarmupIters) lr *= WarmupFactor + (1 - WarmupFactor) * iteration / WarmupIters;
        return lr;
    }
}

/// <summary>
/// The MaX-DeepLab training loop, in <see cref="DetectionTrainer"/>'s shape: seeded data order, crops and flips (every
/// random stream restarts from (seed, epoch), so a resumed run repeats the uninterrupted one on the CPU), the loss
/// terms summed and logged, Adam, a checkpoint each epoch (model, config, Adam state) and PQ on the held-out split.
/// </summary>
public sealed class PanopticTrainer
{
    private readonly MaxDeepLab _model;
    private readonly string _modelName;
    private readonly CocoPanoptic _train;
    private readonly CocoPanoptic? _val;
    private readonly PanopticTrainOptions _options;
    private readonly string _outDir;
    private readonly string? _dataName;

    public PanopticTrainer(string modelName, MaxDeepLab model, CocoPanoptic train, CocoPanoptic? val, PanopticTrainOptions options, string outDir, string? dataName = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var (n, _) = PanopticData.Classes(train.Categories);
        if (n != model.NumClasses)
            throw new ArgumentException($"the model has {model.NumClasses} classes but the data set has {n}", nameof(model));
        _modelName = modelName;
        _model = model;
        _train = train;
        _val = val;
        _options = options;
        _outDir = outDir;
        _dataName = dataName;
    }

    private sealed record TrainerState(int EpochsDone, ulong Seed, double Lr);

    public IReadOnlyList<EpochSummary> Run(ITrainingObserver? observer = null, bool resume = false, CancellationToken cancel = default)
    {
        observer ??= new NullObserver();
        var config = _model.Config;
        using var optimizer = new Adam(_model.Parameters().ToArray(), _options.Lr, weightDecay: _options.WeightDecay);
        int startEpoch = resume ? Restore(optimizer) : 0;
        var clock = Stopwatch.StartNew();
        if (startEpoch == 0 && _options.Pretrain is { } pretrain)
        {
            if (_options.TimeLimit is { } budget && budget < pretrain.Duration) pretrain = pretrain with { Duration = budget };
            var result = BackbonePretraining.Run(_model, _train, pretrain with { Seed = pretrain.Seed ^ _options.Seed }, observer.OnPretrainStep, cancel);
            observer.OnPretrained(result);
        }
        var transform = new Compose<PanopticSample>(new Normalize(config.ImageMean, config.ImageStd), new FitScaleCrop(config.InputSize, _options.MinScale, _options.MaxScale),
            new RandomHorizontalFlip(_options.FlipProbability));
        var augmented = new TransformedDataset<PanopticSample>(_train, transform, _options.Seed);
        using var loader = new DataLoader<PanopticSample, PanopticSample[]>(augmented, b => [.. b], new DataLoaderOptions
        {
            BatchSize = _options.BatchSize, Shuffle = true, Seed = _options.Seed, NumWorkers = _options.Workers, DropLast = true,
        });
        int iters = loader.BatchCount;
        if (iters == 0) throw new ArgumentException($"the training set has {_train.Count} images, fewer than one batch of {_options.BatchSize}");
        long total = (long)iters * _options.Epochs;
        observer.OnStart(_options.Epochs, iters, startEpoch);
        var summaries = new List<EpochSummary>();
        var device = _model.Memory.Device;
        for (int epoch = startEpoch; epoch < _options.Epochs; epoch++)
        {
            _model.Train();
            augmented.SetEpoch(epoch);
            var sums = new Dictionary<string, double>();
            int it = 0, images = 0;
            var epochClock = Stopwatch.StartNew();
            bool outOfTime = false;
            foreach (var batch in loader.Epoch(epoch, cancel))
            {
                try
                {
                    optimizer.Lr = _options.LrAt((long)epoch * iters + it, total);
                    _model.DropoutGenerator.ManualSeed(_options.Seed * 0x9E3779B97F4A7C15UL + (ulong)((long)epoch * iters + it));
                    var (terms, sum) = Step(batch, optimizer, device);
                    foreach (var (k, v) in terms) sums[k] = sums.GetValueOrDefault(k) + v;
                    it++;
                    images += batch.Length;
                    observer.OnStep(new TrainStep(epoch, _options.Epochs, it, iters, terms, sum, optimizer.Lr, images / epochClock.Elapsed.TotalSeconds, clock.Elapsed));
                }
                finally
                {
                    foreach (var s in batch) s.Dispose();
                }
                if (_options.TimeLimit is { } limit && clock.Elapsed >= limit) { outOfTime = true; break; }
            }
            bool last = epoch == _options.Epochs - 1 || outOfTime;
            var checkpoint = SaveCheckpoint(optimizer, epoch + 1);
            PanopticResult? pq = null;
            if (_val != null && (_options.EvalEveryEpoch || last))
            {
                int count = last ? _val.Count : Math.Min(_options.EvalImages ?? _val.Count, _val.Count);
                observer.OnEvaluating(count);
                pq = PanopticEvaluation.Evaluate(_model, _val, count);
            }
            var summary = new EpochSummary(epoch, sums.ToDictionary(kv => kv.Key, kv => kv.Value / Math.Max(1, it)), null, checkpoint, clock.Elapsed, Panoptic: pq);
            summaries.Add(summary);
            observer.OnEpoch(summary);
            if (outOfTime) break;
        }
        return summaries;
    }

    private (Dictionary<string, double> Terms, double Total) Step(PanopticSample[] batch, Adam optimizer, Device device)
    {
        using var scope = new TensorScope();
        var targets = batch.Select(s => PanopticData.Target(s, _model.Config)).ToArray();
        var images = Tensor.Stack(batch.Select(s => s.Image).ToArray()).To(device);
        using var output = _model.Forward(images);
        var losses = MaxDeepLabLoss.Compute(output, targets, _model.Config.Loss);
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

    private string SaveCheckpoint(Adam optimizer, int epochsDone)
    {
        var info = new PanopticCheckpointInfo { Model = _modelName, Config = _model.Config, Categories = _train.Categories.Categories, Epoch = epochsDone, Data = _dataName };
        MaxDeepLabCheckpoint.Save(_outDir, _model, info);
        var state = optimizer.StateDict();
        var cpu = state.ToDictionary(kv => kv.Key, kv => kv.Value.To(Device.Cpu));
        try
        {
            Safetensors.Save(Path.Combine(_outDir, DetectionTrainer.OptimizerFile), cpu);
        }
        finally
        {
            foreach (var t in cpu.Values) t.Dispose();
            foreach (var (k, t) in state) if (k.StartsWith("step.", StringComparison.Ordinal)) t.Dispose();
        }
        var path = Path.Combine(_outDir, DetectionTrainer.StateFile);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(new TrainerState(epochsDone, _options.Seed, _options.Lr), DetectorCheckpoint.Json));
        File.Move(tmp, path, overwrite: true);
        return _outDir;
    }

    private int Restore(Adam optimizer)
    {
        var statePath = Path.Combine(_outDir, DetectionTrainer.StateFile);
        if (!File.Exists(statePath))
            throw new FileNotFoundException($"--resume: '{_outDir}' holds no training state ({DetectionTrainer.StateFile}); train without --resume first", statePath);
        var info = MaxDeepLabCheckpoint.ReadInfo(_outDir);
        if (info.Model != _modelName)
            throw new CheckpointFormatException($"--resume: '{_outDir}' holds a {info.Model} checkpoint, not {_modelName}");
        MaxDeepLabCheckpoint.LoadWeights(_model, Path.Combine(_outDir, DetectorCheckpoint.WeightsFile));
        var opt = Safetensors.Load(Path.Combine(_outDir, DetectionTrainer.OptimizerFile));
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
