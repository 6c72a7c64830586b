using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Models.Training;
using Runtime.Nn.Checkpoints;
using Runtime.Vision.Data;

namespace Runtime.Models.Tests;

/// <summary>The trainer on a tiny shapes set: deterministic for a seed, resumable to the same bits, checkpoints that load back.</summary>
public sealed class TrainingTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "models-tests-" + Guid.NewGuid().ToString("N"));
    private readonly CocoDetection _data;

    public TrainingTests()
    {
        var files = ShapesDataset.Generate(Path.Combine(_root, "data"), 8, 7, new ShapesOptions { MinImageSize = 64, MaxImageSize = 96, MinShapes = 1, MaxShapes = 3 });
        _data = new CocoDetection(Path.Combine(files.Root, ShapesDataset.ImagesFolderName), files.InstancesJson);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private static FasterRcnnConfig Config => new()
    {
        Backbone = new BackboneConfig { Depth = 18, Layers = [1, 1, 1, 1], Widths = [8, 8, 16, 16], FpnChannels = 8, Norm = BackboneNorm.BatchNorm, TrainableLayers = 5 },
        NumClasses = 7, MinSize = [64], MaxSize = 96,
        AnchorSizes = [[8], [16], [32], [64], [128]],
        RepresentationSize = 16,
        Rpn = new RpnConfig { PreNmsTopNTrain = 200, PostNmsTopNTrain = 100, PreNmsTopNTest = 100, PostNmsTopNTest = 50, BatchSizePerImage = 64 },
        RoiHeads = new RoiHeadsConfig { BatchSizePerImage = 32 },
    };

    private double[][] Train(string outDir, int epochs, bool resume = false, ulong seed = 3)
    {
        using var model = new FasterRcnn(Config, generator: new Generator(11));
        var options = new TrainOptions { Epochs = epochs, BatchSize = 2, Lr = 0.01, WarmupIters = 2, LrSteps = [1], Seed = seed, EvalEveryEpoch = false };
        var trainer = new DetectionTrainer("tiny", model, _data, null, options, outDir);
        var summaries = trainer.Run(resume: resume);
        Assert.All(summaries, s => Assert.All(s.MeanLosses.Values, v => Assert.True(double.IsFinite(v))));
        return model.StateDict().Values.Select(t => t.ToDoubleArray()).ToArray();
    }

    [Fact]
    public void SameSeedGivesSameWeightsAndResumeRepeatsAnUninterruptedRun()
    {
        var a = Train(Path.Combine(_root, "a"), 2);
        var b = Train(Path.Combine(_root, "b"), 2);
        Assert.Equal(a, b);
        var c = Train(Path.Combine(_root, "c"), 2, seed: 4);
        Assert.NotEqual(a, c);
        Train(Path.Combine(_root, "d"), 1);
        var d = Train(Path.Combine(_root, "d"), 2, resume: true);
        Assert.Equal(a, d);
    }

    [Fact]
    public void CheckpointLoadsBackAndBadCheckpointsAreRejected()
    {
        var dir = Path.Combine(_root, "ckpt");
        var weights = Train(dir, 1);
        var (model, info) = DetectorCheckpoint.Load(dir);
        using (model)
        {
            Assert.Equal("tiny", info.Model);
            Assert.Equal(1, info.Epoch);
            Assert.Equal(6, info.Categories!.Count);
            Assert.IsType<FasterRcnnConfig>(info.Config);
            Assert.Equal(weights, model.StateDict().Values.Select(t => t.ToDoubleArray()).ToArray());
            var result = DetectionEvaluation.Evaluate(model, _data).Box;
            Assert.Equal(12, result.Stats.Length);
            Assert.All(result.Stats, s => Assert.InRange(s, -1, 1));
        }

        // A truncated weights file, a garbled description, a folder without one.
        var broken = Path.Combine(_root, "broken");
        CopyFolder(dir, broken);
        var w = Path.Combine(broken, DetectorCheckpoint.WeightsFile);
        File.WriteAllBytes(w, File.ReadAllBytes(w)[..100]);
        Assert.ThrowsAny<IOException>(() => DetectorCheckpoint.Load(broken));
        CopyFolder(dir, broken);
        File.WriteAllText(Path.Combine(broken, DetectorCheckpoint.ConfigFile), "{ \"model\": 3");
        Assert.Throws<CheckpointFormatException>(() => DetectorCheckpoint.Load(broken));
        Assert.Throws<FileNotFoundException>(() => DetectorCheckpoint.Load(Path.Combine(_root, "data")));

        // Weights of another model: the mismatch names the keys.
        using var retina = new RetinaNet(new RetinaNetConfig { Backbone = Config.Backbone with { ReturnedLayers = [2, 3, 4], ExtraBlocks = "p6p7" }, NumClasses = 7 });
        var ex = Assert.Throws<CheckpointFormatException>(() => DetectorCheckpoint.LoadWeights(retina, Path.Combine(dir, DetectorCheckpoint.WeightsFile)));
        Assert.Contains("rpn.head", ex.Message);
    }

    [Fact]
    public void MaskRcnnTrainsOnShapesMasksAndIsScoredOnBoxesAndMasks()
    {
        var dir = Path.Combine(_root, "mask");
        var config = new MaskRcnnConfig
        {
            Backbone = Config.Backbone, NumClasses = 7, MinSize = [64], MaxSize = 96, AnchorSizes = Config.AnchorSizes,
            RepresentationSize = 16, Rpn = Config.Rpn, RoiHeads = Config.RoiHeads with { ScoreThresh = 0.0 },
            MaskLayers = [8, 8], MaskDimReduced = 8,
        };
        using (var model = new MaskRcnn(config, generator: new Generator(11)))
        {
            var options = new TrainOptions { Epochs = 1, BatchSize = 2, Lr = 0.01, WarmupIters = 2, LrSteps = [1], Seed = 3 };
            var summary = Assert.Single(new DetectionTrainer("tiny_mask", model, _data, _data, options, dir).Run());
            Assert.True(double.IsFinite(summary.MeanLosses["loss_mask"]));
            Assert.NotNull(summary.Evaluation);
            Assert.Equal(Runtime.Vision.Evaluation.CocoIouType.Segm, summary.MaskEvaluation!.IouType);
            Assert.Equal(12, summary.MaskEvaluation.Stats.Length);
            Assert.All(summary.MaskEvaluation.Stats, s => Assert.InRange(s, -1, 1));
        }
        var (loaded, info) = DetectorCheckpoint.Load(dir);
        using (loaded)
        {
            Assert.IsType<MaskRcnn>(loaded);
            Assert.IsType<MaskRcnnConfig>(info.Config);
            var scores = DetectionEvaluation.Evaluate(loaded, _data);
            Assert.NotNull(scores.Mask);
            Assert.Equal(scores.BoxDetections.Count, scores.MaskDetections.Count);
        }
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), true);
    }
}
