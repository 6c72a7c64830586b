// Trains a compact detector from scratch on the synthetic shapes set and reports held-out box AP (and mask AP).
//   dotnet run --project samples/TrainDetector -c Release -- [model] [minutes] [batch] [lr]
// model: fasterrcnn_compact (default), maskrcnn_compact or retinanet_compact; the full CLI is `runtime train`.
using System.Globalization;
using Runtime;
using Runtime.Models;
using Runtime.Models.Training;

string modelName = args.Length > 0 ? args[0] : "fasterrcnn_compact";
double minutes = args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 8;
int batch = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 4;
double lr = args.Length > 3 ? double.Parse(args[3], CultureInfo.InvariantCulture) : 0.02;
int epochs = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 6;
var outDir = Path.Combine(Path.GetTempPath(), "runtime-train-" + modelName);

var train = DetectionData.Open("shapes", train: true, Path.Combine(Path.GetTempPath(), "runtime-shapes"));
var val = DetectionData.Open("shapes", train: false, Path.Combine(Path.GetTempPath(), "runtime-shapes"));
var entry = ModelCatalog.Get(modelName);
using var model = entry.Build(entry.ConfigFor(numClasses: train.Dataset.Categories.NumClasses), generator: new Generator(1));
var options = new TrainOptions
{
    Epochs = epochs, BatchSize = batch, Lr = lr, WarmupIters = 100, LrSteps = [Math.Max(1, epochs - 1)],
    TimeLimit = TimeSpan.FromMinutes(minutes), EvalEveryEpoch = false, Seed = 1,
};
var trainer = new DetectionTrainer(modelName, model, train.Dataset, val.Dataset, options, outDir, "shapes");
trainer.Run(new Printer());

sealed class Printer : ITrainingObserver
{
    public void OnStep(TrainStep s)
    {
        if (s.Iteration % 20 == 0 || s.Iteration == 1)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"epoch {s.Epoch + 1}/{s.Epochs} it {s.Iteration}/{s.Iterations} loss {s.Loss:F3} [{string.Join(" ", s.Losses.Select(kv => $"{kv.Key} {kv.Value:F3}"))}] lr {s.Lr:G3} {s.ImagesPerSecond:F1} img/s {s.Elapsed:mm\\:ss}"));
    }

    public void OnEvaluating(int images) => Console.WriteLine($"evaluating on {images} held-out images");

    public void OnEpoch(EpochSummary e)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch {e.Epoch + 1} done at {e.Elapsed:mm\\:ss}"));
        if (e.Evaluation is { } r) Console.WriteLine(r.Summary());
        if (e.MaskEvaluation is { } m) Console.WriteLine("masks:\n" + m.Summary());
    }
}
