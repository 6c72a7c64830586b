// Generates the synthetic shapes data set (COCO format), reads it back through CocoDetection and a
// DataLoader with background workers, and draws the ground truth of a few images to PNG.
//
//   dotnet run --project samples/ShapesDataset -c Release -- [--out folder] [--count N] [--seed S] [--workers W] [--epochs E] [--draw K]
// (default: 200 images into artifacts/shapes, 2 workers, 2 epochs, 6 drawings)
using System.Diagnostics;
using System.Globalization;
using Runtime.Vision.Data;
using Runtime.Vision.Drawing;

string outDir = Path.Combine("artifacts", "shapes"); // ignored by git
int count = 200, workers = 2, draw = 6, epochs = 2;
ulong seed = 1;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--out": outDir = Next(); break;
        case "--count": count = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--seed": seed = ulong.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--workers": workers = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--draw": draw = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--epochs": epochs = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine("usage: ShapesDataset [--out folder] [--count N] [--seed S] [--workers W] [--epochs E] [--draw K]");
            return 2;
    }
}

// 1. Generate: images/*.png + annotations/instances.json, and a small panoptic set beside it.
var sw = Stopwatch.StartNew();
var files = ShapesDataset.Generate(Path.Combine(outDir, "instances"), count, seed);
var panoptic = ShapesDataset.GeneratePanoptic(Path.Combine(outDir, "panoptic"), Math.Max(1, count / 10), seed);
Console.WriteLine($"generated {files.ImageCount} images with {files.AnnotationCount} instances in {files.Root} " +
                  $"and {panoptic.ImageCount} panoptic images in {panoptic.Root} ({sw.Elapsed.TotalSeconds:0.0} s)");

// 2. Load back through CocoDetection + DataLoader (PNG decoding and mask rasterisation on the workers),
//    a new shuffle each epoch; CPU time / wall time shows how busy the workers keep the cores.
var dataset = new CocoDetection(files.ImageFolder, files.InstancesJson);
var names = dataset.Categories.Names;
var perClass = new int[dataset.Categories.NumClasses];
using (var loader = new DataLoader<DetectionSample>(dataset, new DataLoaderOptions { BatchSize = 4, Shuffle = true, Seed = seed, NumWorkers = workers }))
{
    for (int epoch = 0; epoch < epochs; epoch++)
    {
        int images = 0, instances = 0, batches = 0;
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        sw.Restart();
        foreach (var batch in loader)
        {
            batches++;
            foreach (var sample in batch)
            {
                using (sample)
                {
                    images++;
                    instances += sample.Target.Count;
                    if (epoch == 0)
                        foreach (var l in sample.Target.Labels.ToArray<long>()) perClass[l]++;
                }
            }
        }
        double wall = sw.Elapsed.TotalSeconds, cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        Console.WriteLine($"epoch {epoch}: loaded {images} images, {instances} instances in {batches} batches with {workers} workers: " +
                          $"{wall:0.00} s wall, {cpu:0.00} s CPU, CPU/wall = {cpu / wall:0.00} ({Environment.ProcessorCount} cores), {images / wall:0} images/s");
    }
}
Console.WriteLine("instances per class: " + string.Join(", ", Enumerable.Range(1, perClass.Length - 1).Select(l => $"{names[l]} {perClass[l]}")));

// 3. Draw the ground truth of the first few images, and one panoptic image.
var drawDir = Path.Combine(outDir, "drawn");
Directory.CreateDirectory(drawDir);
for (int i = 0; i < Math.Min(draw, dataset.Count); i++)
{
    using var sample = dataset.Get(i);
    var path = Path.Combine(drawDir, $"gt_{dataset.ImageInfo(i).Id:D6}.png");
    Visualize.Sample(sample, names).Save(path);
}
var pan = new CocoPanoptic(panoptic.ImageFolder, panoptic.PanopticFolder!, panoptic.PanopticJson!);
using (var p = pan.Get(0))
{
    Visualize.Panoptic(p, pan.Categories.Names).Save(Path.Combine(drawDir, $"panoptic_{p.ImageId:D6}.png"));
    Console.WriteLine($"panoptic image {p.ImageId}: {p.Segments.Count(s => s.IsThing)} things, {p.Segments.Count(s => !s.IsThing)} stuff segments");
}
Console.WriteLine($"drew {Math.Min(draw, dataset.Count)} ground-truth images and 1 panoptic image to {Path.GetFullPath(drawDir)}");
return 0;
