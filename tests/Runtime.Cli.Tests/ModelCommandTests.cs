using System.Text.Json;
using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Vision.Data;

namespace Runtime.Cli.Tests;

/// <summary>
/// <c>runtime train | eval | predict</c> end to end on a tiny generated COCO folder and a tiny checkpoint, and
/// their bad inputs: one line on stderr, a non-zero exit, never a stack trace.
/// </summary>
public sealed class ModelCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("runtime-model-cli-").FullName;
    private readonly string _data;

    public ModelCommandTests()
    {
        _data = Path.Combine(_dir, "coco");
        var options = new ShapesOptions { MinImageSize = 64, MaxImageSize = 80, MinShapes = 1, MaxShapes = 2 };
        ShapesDataset.Generate(Path.Combine(_data, "train"), 4, 5, options);
        ShapesDataset.Generate(Path.Combine(_data, "val"), 2, 6, options);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CommandLine.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static void AssertOneLineError((int Code, string Out, string Err) r, params string[] mentions)
    {
        Assert.NotEqual(0, r.Code);
        Assert.DoesNotContain("   at ", r.Err);
        var line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith("runtime: ", line);
        foreach (var m in mentions) Assert.Contains(m, line);
    }

    /// <summary>A checkpoint folder of a tiny Faster R-CNN over the shapes classes (6 + background).</summary>
    private string TinyCheckpoint()
    {
        var folder = Path.Combine(_dir, "ckpt");
        var config = new FasterRcnnConfig
        {
            Backbone = new BackboneConfig { Depth = 18, Layers = [1, 1, 1, 1], Widths = [8, 8, 16, 16], FpnChannels = 8 },
            NumClasses = 7, MinSize = [64], MaxSize = 96, AnchorSizes = [[8], [16], [32], [64], [128]], RepresentationSize = 16,
            RoiHeads = new RoiHeadsConfig { ScoreThresh = 0.0 },
        };
        using var model = new FasterRcnn(config, generator: new Generator(3));
        DetectorCheckpoint.Save(folder, model, new CheckpointInfo { Model = "tiny", Config = config, Categories = ShapesDataset.Categories, Epoch = 1 });
        return folder;
    }

    [Fact]
    public void TrainEvalAndPredictRunEndToEnd()
    {
        var outDir = Path.Combine(_dir, "run");
        var train = Run("train", "fasterrcnn_compact", "--data", _data, "--out", outDir, "--epochs", "1", "--batch", "2", "--size", "64", "--workers", "0");
        Assert.True(train.Code == 0, train.Err);
        Assert.Contains("AP50", train.Out);
        foreach (var f in new[] { "model.safetensors", "config.json", "optimizer.safetensors", "trainer.json", "history.json" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Assert.Equal(2, Directory.GetFiles(Path.Combine(outDir, "predictions"), "*.png").Length);
        var history = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "history.json"))).RootElement;
        Assert.Equal(1, history.GetArrayLength());
        Assert.InRange(history[0].GetProperty("ap50").GetDouble(), 0, 1);

        var json = Path.Combine(_dir, "eval.json");
        var eval = Run("eval", outDir, "--data", _data, "--json", json);
        Assert.True(eval.Code == 0, eval.Err);
        Assert.Contains("Average Precision", eval.Out);
        var stats = JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("stats");
        Assert.Equal(12, stats.EnumerateObject().Count());
        Assert.Equal(history[0].GetProperty("ap50").GetDouble(), stats.GetProperty("AP50").GetDouble(), 12);
    }

    [Fact]
    public void MaskRcnnTrainsEvaluatesMasksAndPredictsSegmentations()
    {
        var outDir = Path.Combine(_dir, "mask");
        var train = Run("train", "maskrcnn_compact", "--data", _data, "--out", outDir, "--epochs", "1", "--batch", "2", "--size", "64", "--workers", "0");
        Assert.True(train.Code == 0, train.Err);
        Assert.Contains("held-out mask evaluation", train.Out);
        Assert.Contains("mask AP", train.Out);
        var history = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "history.json"))).RootElement;
        Assert.InRange(history[0].GetProperty("mask_ap50").GetDouble(), 0, 1);
        Assert.True(history[0].GetProperty("losses").TryGetProperty("loss_mask", out _));

        var json = Path.Combine(_dir, "mask-eval.json");
        var eval = Run("eval", outDir, "--data", _data, "--json", json);
        Assert.True(eval.Code == 0, eval.Err);
        Assert.Contains("masks:", eval.Out);
        var doc = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.Equal(12, doc.GetProperty("stats").EnumerateObject().Count());
        Assert.Equal(12, doc.GetProperty("mask_stats").EnumerateObject().Count());
        Assert.Equal(history[0].GetProperty("mask_ap50").GetDouble(), doc.GetProperty("mask_stats").GetProperty("AP50").GetDouble(), 12);

        var image = Path.Combine(_data, "val", "images", ShapesDataset.FileName(0));
        var predDir = Path.Combine(_dir, "mask-pred");
        var pred = Run("predict", "--weights", outDir, "--score", "0", image, "--out", predDir);
        Assert.True(pred.Code == 0, pred.Err);
        Assert.True(File.Exists(Path.Combine(predDir, Path.GetFileNameWithoutExtension(image) + ".png")));
        var img = Runtime.Vision.Imaging.Image.Load(image);
        var dets = JsonDocument.Parse(File.ReadAllText(Path.Combine(predDir, "detections.json"))).RootElement;
        Assert.True(dets.GetArrayLength() > 0);
        foreach (var d in dets.EnumerateArray())
        {
            var seg = d.GetProperty("segmentation");
            Assert.Equal(new[] { img.Height, img.Width }, seg.GetProperty("size").EnumerateArray().Select(x => x.GetInt32()).ToArray());
            var rle = Runtime.Vision.Evaluation.Rle.FromCompressedString(seg.GetProperty("counts").GetString()!, img.Height, img.Width);
            Assert.Equal(img.Height * img.Width, rle.DecodeRowMajor().Length);
        }
    }

    [Fact]
    public void MaskXTrainsOnPartialMasksAndScoresBothSplits()
    {
        var outDir = Path.Combine(_dir, "maskx");
        var train = Run("train", "maskx_rcnn_compact", "--data", _data, "--out", outDir, "--epochs", "1", "--batch", "2", "--size", "64", "--workers", "0",
            "--epoch-images", "2", "--final-eval-only", "--mask-classes", "Circle,2", "--mask-head", "transfer", "--transfer-input", "cls", "--no-stop-grad");
        Assert.True(train.Code == 0, train.Err);
        Assert.Contains("mask predictor: transfer, weight transfer from cls, gradient into the box predictor", train.Out);
        Assert.Contains("mask supervision on circle, square (A); boxes only for triangle, ellipse, star, hexagon (B)", train.Out);
        Assert.Contains("training 1 epoch of 1 steps", train.Out);
        Assert.Contains("mask AP on A (circle, square)", train.Out);
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json"))).RootElement.GetProperty("config");
        Assert.Equal("maskx_rcnn", config.GetProperty("family").GetString());
        Assert.Equal("transfer", config.GetProperty("mask_head").GetString());
        Assert.Equal("cls", config.GetProperty("transfer_input").GetString());
        Assert.False(config.GetProperty("transfer_stop_gradient").GetBoolean());
        Assert.Equal(new[] { 1, 2 }, config.GetProperty("mask_classes").EnumerateArray().Select(x => x.GetInt32()).ToArray());
        var history = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "history.json"))).RootElement;
        Assert.InRange(history[0].GetProperty("mask_ap_b").GetDouble(), -1, 1);

        // eval scores A and B: the checkpoint's mask classes, or others given.
        var json = Path.Combine(_dir, "maskx-eval.json");
        var eval = Run("eval", outDir, "--data", _data, "--json", json);
        Assert.True(eval.Code == 0, eval.Err);
        Assert.Contains("mask AP on A (circle, square)", eval.Out);
        var doc = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.Equal(history[0].GetProperty("mask_ap_a").GetDouble(), doc.GetProperty("mask_stats_a").GetProperty("AP").GetDouble(), 12);
        Assert.Equal(12, doc.GetProperty("mask_stats_b").EnumerateObject().Count());
        eval = Run("eval", outDir, "--data", _data, "--mask-classes", "star", "--json", json);
        Assert.True(eval.Code == 0, eval.Err);
        Assert.Contains("mask AP on A (star)", eval.Out);
        Assert.Equal(new[] { "star" }, JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("mask_classes_a").EnumerateArray().Select(x => x.GetString()).ToArray());

        var image = Path.Combine(_data, "val", "images", ShapesDataset.FileName(0));
        var pred = Run("predict", "--weights", outDir, "--score", "0", image, "--out", Path.Combine(_dir, "maskx-pred"));
        Assert.True(pred.Code == 0, pred.Err);
        Assert.True(JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "maskx-pred", "detections.json"))).RootElement.EnumerateArray()
            .All(d => d.TryGetProperty("segmentation", out _)));
        // The weights file alone needs the architecture's options.
        pred = Run("predict", "--model", "maskx_rcnn_compact", "--num-classes", "7", "--mask-head", "transfer", "--transfer-input", "cls",
            "--weights", Path.Combine(outDir, "model.safetensors"), image, "--out", Path.Combine(_dir, "maskx-pred2"));
        Assert.True(pred.Code == 0, pred.Err);
        AssertOneLineError(Run("predict", "--model", "maskx_rcnn_compact", "--num-classes", "7", "--weights", Path.Combine(outDir, "model.safetensors"), image,
            "--out", _dir), "does not fit");
    }

    [Fact]
    public void StageWiseTrainingKeepsTheDetectorAsLoaded()
    {
        // Stage 1: a detector. Stage 2: the mask branch alone on it (--init, --freeze-detector): every detector
        // tensor, BatchNorm statistics included, comes out as it went in; the mask branch trains.
        var detector = Path.Combine(_dir, "detector");
        var stage1 = Run("train", "fasterrcnn_compact", "--data", _data, "--out", detector, "--epochs", "1", "--batch", "2", "--size", "64", "--workers", "0");
        Assert.True(stage1.Code == 0, stage1.Err);
        var masks = Path.Combine(_dir, "stage2");
        var stage2 = Run("train", "maskx_rcnn_compact", "--data", _data, "--out", masks, "--epochs", "1", "--batch", "2", "--size", "64", "--workers", "0",
            "--init", detector, "--freeze-detector", "--mask-classes", "circle,square,triangle", "--final-eval-only");
        Assert.True(stage2.Code == 0, stage2.Err);
        Assert.Contains("fresh: roi_heads.mask_head.0.0", stage2.Out);
        Assert.Contains("frozen: backbone*, rpn*, roi_heads.box_*", stage2.Out);
        var before = Runtime.Nn.Checkpoints.Safetensors.Load(Path.Combine(detector, "model.safetensors"));
        var after = Runtime.Nn.Checkpoints.Safetensors.Load(Path.Combine(masks, "model.safetensors"));
        try
        {
            Assert.Contains(before.Keys, k => k.Contains("running_mean", StringComparison.Ordinal));
            foreach (var (k, t) in before) Assert.True(t.ToDoubleArray().SequenceEqual(after[k].ToDoubleArray()), $"{k} changed");
            var init = JsonDocument.Parse(File.ReadAllText(Path.Combine(masks, "config.json"))).RootElement.GetProperty("config").GetProperty("family").GetString();
            Assert.Equal("maskx_rcnn", init);
            Assert.Contains(after.Keys, k => k.StartsWith("roi_heads.mask_predictor.weight_transfer", StringComparison.Ordinal));
        }
        finally
        {
            foreach (var t in before.Values.Concat(after.Values)) t.Dispose();
        }
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", _data, "--out", detector, "--freeze-detector"), "--freeze-detector");
        AssertOneLineError(Run("train", "maskrcnn_compact", "--data", _data, "--out", masks, "--init", detector, "--resume"), "--init", "--resume");
    }

    [Fact]
    public void MaskOptionsThatDoNotFitAreOneLine()
    {
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", _data, "--out", _dir, "--mask-classes", "circle"), "--mask-classes", "mask models");
        AssertOneLineError(Run("train", "maskrcnn_compact", "--data", _data, "--out", _dir, "--mask-head", "agnostic"), "--mask-head", "maskx_rcnn");
        AssertOneLineError(Run("train", "maskrcnn_compact", "--data", _data, "--out", _dir, "--no-stop-grad"), "--no-stop-grad", "maskx_rcnn");
        AssertOneLineError(Run("train", "maskx_rcnn_compact", "--data", _data, "--out", _dir, "--mask-head", "fcn"), "--mask-head", "transfer_mlp", "'fcn'");
        AssertOneLineError(Run("train", "maskx_rcnn_compact", "--data", _data, "--out", _dir, "--transfer-input", "det"), "--transfer-input", "cls_box");
        AssertOneLineError(Run("train", "maskx_rcnn_compact", "--data", _data, "--out", _dir, "--mask-classes", "circle,pentagon"), "'pentagon'", "hexagon (6)");
        AssertOneLineError(Run("train", "maskx_rcnn_compact", "--data", _data, "--out", _dir, "--mask-classes", "9"), "category id 9");
        AssertOneLineError(Run("train", "maskx_rcnn_compact", "--data", _data, "--out", _dir, "--mask-classes", "circle,1"), "twice");
        AssertOneLineError(Run("eval", TinyCheckpoint(), "--data", _data, "--mask-classes", "circle"), "--mask-classes", "tiny");
    }

    [Fact]
    public void Dcnv2ModelTrainsEvaluatesAndPredictsWithItsOptions()
    {
        // The compact DCNv2 Mask R-CNN with its deformable stages changed from the command line and the offset layers'
        // learning rate scaled; the checkpoint's config.json keeps the options, so eval and predict rebuild the model.
        var outDir = Path.Combine(_dir, "dcn");
        var train = Run("train", "maskrcnn_dcnv2_compact", "--data", _data, "--out", outDir, "--epochs", "1", "--batch", "2", "--size", "64",
            "--workers", "0", "--dcn-stages", "3,4", "--offset-lr-mult", "0.1");
        Assert.True(train.Code == 0, train.Err);
        var history = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "history.json"))).RootElement;
        var losses = history[0].GetProperty("losses");
        foreach (var term in new[] { "loss_mimic", "loss_rcnn_cls", "loss_mask", "loss_classifier" })
            Assert.True(losses.TryGetProperty(term, out _), term);
        var info = DetectorCheckpoint.ReadInfo(outDir);
        var config = Assert.IsType<MaskRcnnConfig>(info.Config);
        Assert.Equal("dcnv2", config.Backbone.Dcn);
        Assert.Equal(new[] { 3, 4 }, config.Backbone.DcnStages);
        Assert.Equal("mdpool", config.BoxPool);
        Assert.NotNull(config.Mimicking);
        var eval = Run("eval", outDir, "--data", _data);
        Assert.True(eval.Code == 0, eval.Err);
        Assert.Contains("masks:", eval.Out);
        var image = Path.Combine(_data, "val", "images", ShapesDataset.FileName(0));
        var pred = Run("predict", "--weights", outDir, "--score", "0", image, "--out", Path.Combine(_dir, "dcn-pred"));
        Assert.True(pred.Code == 0, pred.Err);

        // The same model built as the plain compact one with the options switched on from the command line.
        var plainDcn = Run("train", "fasterrcnn_compact", "--data", _data, "--out", Path.Combine(_dir, "dcn2"), "--epochs", "1", "--batch", "2",
            "--size", "64", "--workers", "0", "--dcn", "dcnv1", "--box-pool", "dpool", "--mimic", "off");
        Assert.True(plainDcn.Code == 0, plainDcn.Err);
        var config2 = Assert.IsType<FasterRcnnConfig>(DetectorCheckpoint.ReadInfo(Path.Combine(_dir, "dcn2")).Config);
        Assert.Equal(("dcnv1", "dpool"), (config2.Backbone.Dcn, config2.BoxPool));
        Assert.Null(config2.Mimicking);
        AssertOneLineError(Run("train", "retinanet_compact", "--data", _data, "--out", Path.Combine(_dir, "r"), "--box-pool", "mdpool"), "R-CNN");
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", _data, "--out", Path.Combine(_dir, "r"), "--mimic", "maybe"), "--mimic");
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", _data, "--out", Path.Combine(_dir, "r"), "--dcn", "dcnv3"), "dcnv3");
    }

    [Fact]
    public void PanopticTrainEvalAndPredictRunEndToEnd()
    {
        var data = Path.Combine(_dir, "panoptic");
        var options = new ShapesOptions { MinImageSize = 64, MaxImageSize = 80, MinShapes = 1, MaxShapes = 2 };
        ShapesDataset.GeneratePanoptic(Path.Combine(data, "train"), 4, 5, options);
        ShapesDataset.GeneratePanoptic(Path.Combine(data, "val"), 2, 6, options);
        var outDir = Path.Combine(_dir, "maxdl");
        var train = Run("train", "max_deeplab_compact", "--data", data, "--out", outDir, "--epochs", "1", "--batch", "2", "--size", "65", "--workers", "0",
            "--pretrain-minutes", "0.03");
        Assert.True(train.Code == 0, train.Err);
        Assert.Contains("backbone pretrained on", train.Out);
        Assert.Contains("held-out panoptic quality", train.Out);
        Assert.Contains("Things", train.Out);
        foreach (var f in new[] { "model.safetensors", "config.json", "optimizer.safetensors", "trainer.json", "history.json" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Assert.Equal(2, Directory.GetFiles(Path.Combine(outDir, "predictions"), "*.png").Length);
        var history = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "history.json"))).RootElement;
        double pq = history[0].GetProperty("pq").GetDouble();
        Assert.InRange(pq, 0, 1);
        Assert.Equal(5, history[0].GetProperty("losses").EnumerateObject().Count());

        var json = Path.Combine(_dir, "pq.json");
        var eval = Run("eval", outDir, "--data", data, "--json", json);
        Assert.True(eval.Code == 0, eval.Err);
        Assert.Contains("Stuff", eval.Out);
        var doc = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.Equal(pq, doc.GetProperty("all").GetProperty("pq").GetDouble(), 12);
        Assert.Equal(9, doc.GetProperty("per_category").EnumerateObject().Count());

        var image = Path.Combine(data, "val", "images", ShapesDataset.FileName(0));
        var predDir = Path.Combine(_dir, "maxdl-pred");
        var pred = Run("predict", "--weights", outDir, image, "--out", predDir);
        Assert.True(pred.Code == 0, pred.Err);
        string stem = Path.GetFileNameWithoutExtension(image);
        var img = Runtime.Vision.Imaging.Image.Load(image);
        var drawn = Runtime.Vision.Imaging.Image.Load(Path.Combine(predDir, stem + ".png"));
        Assert.Equal((img.Width, img.Height), (drawn.Width, drawn.Height));
        var ids = Runtime.Vision.Data.CocoPanoptic.LoadSegmentIds(Path.Combine(predDir, stem + "_panoptic.png"), out int h, out int w);
        Assert.Equal((img.Height, img.Width), (h, w));
        var result = JsonDocument.Parse(File.ReadAllText(Path.Combine(predDir, "panoptic.json"))).RootElement;
        var ann = Assert.Single(result.GetProperty("annotations").EnumerateArray());
        Assert.Equal(stem + "_panoptic.png", ann.GetProperty("file_name").GetString());
        var listed = Assert.Single(result.GetProperty("images").EnumerateArray());
        Assert.Equal(ann.GetProperty("image_id").GetInt32(), listed.GetProperty("id").GetInt32());
        Assert.Equal(Path.GetFileName(image), listed.GetProperty("file_name").GetString());
        Assert.Equal((img.Width, img.Height), (listed.GetProperty("width").GetInt32(), listed.GetProperty("height").GetInt32()));
        var segIds = ann.GetProperty("segments_info").EnumerateArray().Select(s => s.GetProperty("id").GetInt32()).ToHashSet();
        Assert.Equal(segIds, ids.Where(i => i != 0).ToHashSet());
        foreach (var s in ann.GetProperty("segments_info").EnumerateArray())
        {
            Assert.InRange(s.GetProperty("category_id").GetInt64(), 1, 9);
            Assert.Equal(ids.Count(i => i == s.GetProperty("id").GetInt32()), s.GetProperty("area").GetInt64());
        }
        Assert.Equal(9, result.GetProperty("categories").GetArrayLength());
        AssertOneLineError(Run("predict", "--model", "fasterrcnn_compact", "--weights", outDir, image, "--out", predDir), "max_deeplab_compact");
        AssertOneLineError(Run("predict", "--weights", outDir, "--mask-head", "agnostic", image, "--out", predDir), "panoptic");
        AssertOneLineError(Run("eval", outDir, "--data", data, "--mask-classes", "circle"), "--mask-classes", "panoptic");
        AssertOneLineError(Run("train", "max_deeplab_compact", "--data", data, "--out", outDir, "--dcn", "dcnv2"), "panoptic", "--dcn");
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", data, "--out", outDir, "--pretrain-minutes", "1"), "--pretrain-minutes");
        AssertOneLineError(Run("train", "max_deeplab_compact", "--data", data, "--out", Path.Combine(_dir, "neg"), "--pretrain-minutes", "-1"), "--pretrain-minutes");
    }

    [Fact]
    public void PredictWritesDrawnImagesAndCocoResults()
    {
        var ckpt = TinyCheckpoint();
        var image = Path.Combine(_data, "val", "images", ShapesDataset.FileName(0));
        var outDir = Path.Combine(_dir, "pred");
        var r = Run("predict", "--weights", ckpt, "--score", "0", image, "--out", outDir);
        Assert.True(r.Code == 0, r.Err);
        Assert.True(File.Exists(Path.Combine(outDir, Path.GetFileNameWithoutExtension(image) + ".png")));
        var dets = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "detections.json"))).RootElement;
        Assert.True(dets.GetArrayLength() > 0);
        foreach (var d in dets.EnumerateArray())
        {
            Assert.Equal(Path.GetFileName(image), d.GetProperty("image_id").GetString());
            Assert.InRange(d.GetProperty("category_id").GetInt64(), 1, 6);   // the data set's category ids
            Assert.Equal(4, d.GetProperty("bbox").GetArrayLength());
            Assert.InRange(d.GetProperty("score").GetDouble(), 0, 1);
            Assert.False(d.TryGetProperty("segmentation", out _));   // boxes only
        }
    }

    [Fact]
    public void BadInputsAreOneLine()
    {
        var image = Path.Combine(_data, "val", "images", ShapesDataset.FileName(0));
        AssertOneLineError(Run("train", "resnet7", "--data", "shapes", "--out", _dir), "unknown model 'resnet7'", "fasterrcnn_resnet50_fpn");
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", Path.Combine(_dir, "nowhere"), "--out", _dir), "--data", "nowhere");
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", "shapes", "--out", _dir, "--lr", "abc"), "--lr", "abc");
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", "shapes", "--out", _dir, "--epochs", "x"), "--epochs");
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", "shapes", "--out", _dir, "--device", "cuda:7"), "cuda:7");
        AssertOneLineError(Run("train", "fasterrcnn_compact", "--data", _data, "--out", Path.Combine(_dir, "fresh"), "--resume"), "--resume");
        AssertOneLineError(Run("eval", Path.Combine(_dir, "none"), "--data", _data), "none");
        AssertOneLineError(Run("predict", "--weights", Path.Combine(_dir, "w.pth"), image, "--out", _dir), "--model");
        AssertOneLineError(Run("predict", "--model", "fasterrcnn_compact", "--weights", Path.Combine(_dir, "w.pth"), image, "--out", _dir), "w.pth");
        // A checkpoint of another model: the weights do not fit, and the message names the keys.
        var ckpt = TinyCheckpoint();
        AssertOneLineError(Run("predict", "--model", "retinanet_compact", "--weights", Path.Combine(ckpt, "model.safetensors"), image, "--out", _dir), "does not fit");
        AssertOneLineError(Run("predict", "--model", "retinanet_compact", "--weights", ckpt, image, "--out", _dir), "tiny");
        // A corrupt checkpoint description and a missing image.
        File.WriteAllText(Path.Combine(ckpt, "config.json"), "{ not json");
        AssertOneLineError(Run("eval", ckpt, "--data", _data), "config.json");
        AssertOneLineError(Run("predict", "--weights", ckpt, Path.Combine(_dir, "missing.png"), "--out", _dir), "missing.png");
    }
}
