using System.Globalization;
using Runtime.Models.Training;
using Spectre.Console;

namespace Runtime.Cli;

/// <summary>
/// The trainer's progress: on a terminal a Spectre.Console progress bar (losses, images/s, ETA); when the output is
/// redirected (a log, CI) plain lines every few steps and one per epoch.
/// </summary>
internal sealed class TrainingProgress : ITrainingObserver
{
    private readonly TextWriter _output;
    private DateTime _lastLine = DateTime.MinValue;

    public TrainingProgress(TextWriter output) => _output = output;

    /// <summary>Whether a live progress bar can be drawn (the console itself, not redirected).</summary>
    public static bool Interactive(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="train"/> with this observer, inside a live progress bar when the console allows one.</summary>
    public T Run<T>(Func<ITrainingObserver, T> train)
    {
        if (!Interactive(_output)) return train(this);
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx => result = train(new Live(ctx, this)));
        return result;
    }

    public void OnStart(int epochs, int iterationsPerEpoch, int startEpoch)
    {
        _output.WriteLine($"training {epochs - startEpoch} epoch{(epochs - startEpoch == 1 ? "" : "s")} of {iterationsPerEpoch} steps" + (startEpoch > 0 ? $", resuming after epoch {startEpoch}" : ""));
    }

    public void OnStep(TrainStep step)
    {
        if (step.Iteration == 1 || step.Iteration == step.Iterations || DateTime.UtcNow - _lastLine > TimeSpan.FromSeconds(15))
        {
            _lastLine = DateTime.UtcNow;
            _output.WriteLine(StepText(step));
        }
    }

    public void OnEvaluating(int images) => _output.WriteLine($"evaluating on {images} held-out images");

    public void OnEpoch(EpochSummary summary) => _output.WriteLine(EpochText(summary));

    public void OnPretrainStep(PretrainStep step)
    {
        if (DateTime.UtcNow - _lastLine > TimeSpan.FromSeconds(15))
        {
            _lastLine = DateTime.UtcNow;
            _output.WriteLine(PretrainText(step));
        }
    }

    public void OnPretrained(PretrainResult r) => _output.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"backbone pretrained on {r.Crops} object crops: {r.Steps} steps in {r.Elapsed:hh\\:mm\\:ss}, last loss {r.Loss:F3}, accuracy {100 * r.Accuracy:F1}%"));

    internal static string PretrainText(PretrainStep s) => string.Create(CultureInfo.InvariantCulture,
        $"pretraining the backbone on {s.Crops} object crops: step {s.Step}  loss {s.Loss:F3}  accuracy {100 * s.Accuracy:F1}%  {s.Elapsed:hh\\:mm\\:ss}");

    internal static string StepText(TrainStep s) => string.Create(CultureInfo.InvariantCulture,
        $"epoch {s.Epoch + 1}/{s.Epochs} step {s.Iteration}/{s.Iterations}  loss {s.Loss:F3} ({string.Join(", ", s.Losses.Select(kv => $"{Short(kv.Key)} {kv.Value:F3}"))})  lr {s.Lr:G3}  {s.ImagesPerSecond:F1} img/s  {s.Elapsed:hh\\:mm\\:ss}");

    internal static string EpochText(EpochSummary e) =>
        FormattableString.Invariant($"epoch {e.Epoch + 1} done at {e.Elapsed:hh\\:mm\\:ss}: mean loss {e.MeanLosses.Values.Sum():F3}") +
        (e.Evaluation is { } r ? FormattableString.Invariant($", held-out AP {r.AP:F3}, AP50 {r.AP50:F3}") : "") +
        (e.MaskEvaluation is { } m ? FormattableString.Invariant($", mask AP {m.AP:F3}, AP50 {m.AP50:F3}") : "") +
        (e.MaskSplit is { } split ? FormattableString.Invariant($" (A {split.A.AP:F3}, B {split.B.AP:F3})") : "") +
        (e.Panoptic is { } p ? FormattableString.Invariant($", held-out PQ {p.All.Pq:F3} (things {p.Things.Pq:F3}, stuff {p.Stuff.Pq:F3}), SQ {p.All.Sq:F3}, RQ {p.All.Rq:F3}") : "") + $"; checkpoint {e.Checkpoint}";

    private static string Short(string term) => term.Replace("loss_", "", StringComparison.Ordinal);

    /// <summary>The progress-bar observer: one task over all steps of all epochs.</summary>
    private sealed class Live(ProgressContext ctx, TrainingProgress plain) : ITrainingObserver
    {
        private ProgressTask? _task;

        public void OnStart(int epochs, int iterationsPerEpoch, int startEpoch)
        {
            plain.OnStart(epochs, iterationsPerEpoch, startEpoch);
            _task = ctx.AddTask("training", maxValue: (double)(epochs - startEpoch) * iterationsPerEpoch);
        }

        public void OnStep(TrainStep s)
        {
            if (_task == null) return;
            _task.Increment(1);
            _task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"epoch {s.Epoch + 1}/{s.Epochs}  loss {s.Loss:F3} ({string.Join(" ", s.Losses.Select(kv => $"{Short(kv.Key)} {kv.Value:F2}"))})  {s.ImagesPerSecond:F1} img/s"));
        }

        public void OnEvaluating(int images)
        {
            if (_task != null) _task.Description = $"evaluating on {images} held-out images";
        }

        public void OnEpoch(EpochSummary summary) => AnsiConsole.WriteLine(EpochText(summary));

        public void OnPretrainStep(PretrainStep step) => AnsiConsole.WriteLine(PretrainText(step));

        public void OnPretrained(PretrainResult result) => plain.OnPretrained(result);
    }
}
