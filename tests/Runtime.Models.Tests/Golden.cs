using System.Text.Json;
using Runtime.Models.Backbones;
using Runtime.Models.Detection;
using Runtime.Nn.Models;
using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;
using Runtime.Vision.Imaging;

namespace Runtime.Models.Tests;

/// <summary>
/// The torchvision goldens of golden/make_detection.py (its docstring describes the layout): the configuration as
/// our config records, the checkpoint, the two input images and tensors from the JSON.
/// </summary>
public sealed class Golden
{
    private Golden(string name, JsonElement root)
    {
        Name = name;
        Root = root;
    }

    public string Name { get; }
    public JsonElement Root { get; }
    public JsonElement Config => Root.GetProperty("config");
    public JsonElement Eval => Root.GetProperty("eval");
    public JsonElement Train => Root.GetProperty("train");
    public bool IsRetinaNet => Root.GetProperty("model").GetString() == "RetinaNet";
    public bool IsMaskRcnn => Root.GetProperty("model").GetString() == "MaskRCNN";

    public static string Folder => Path.Combine(AppContext.BaseDirectory, "golden");

    public static Golden Load(string name) =>
        new(name, JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, name + ".json"))).RootElement.Clone());

    public string CheckpointPath => Path.Combine(Folder, Root.GetProperty("checkpoint").GetString()!);

    public static int[] Ints(JsonElement a) => a.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    public static double[] Doubles(JsonElement a) => a.EnumerateArray().Select(x => x.GetDouble()).ToArray();
    public static int[] Shape(JsonElement t) => Ints(t.GetProperty("shape"));
    public static double[] Data(JsonElement t) => Doubles(t.GetProperty("data"));
    public static long[] Longs(JsonElement t) => t.GetProperty("data").EnumerateArray().Select(x => x.GetInt64()).ToArray();

    /// <summary>The input images: PNG / 255 in float32 (divided, as torchvision's to_tensor), CHW.</summary>
    public Tensor[] Images(Device device) => Root.GetProperty("images").EnumerateArray().Select(im =>
    {
        var image = Image.Load(Path.Combine(Folder, im.GetProperty("file").GetString()!));
        int h = image.Height, w = image.Width, c = image.Channels;
        var data = new float[c * h * w];
        var px = image.Pixels;
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < h * w; i++)
                data[ch * h * w + i] = px[i * c + ch] / 255f;
        using var cpu = Tensor.From<float>(data, [c, h, w]);
        return cpu.To(device);
    }).ToArray();

    /// <summary>The model of this case as our configuration records describe it.</summary>
    public DetectorConfig ModelConfig()
    {
        var c = Config;
        var b = c.GetProperty("backbone");
        var fpn = c.GetProperty("fpn");
        var extra = fpn.GetProperty("extra_blocks");
        string extraName = extra.GetProperty("type").GetString() == "LastLevelMaxPool" ? "pool"
            : extra.GetProperty("use_P5").GetBoolean() ? "p6p7" : "p6p7_c5";
        bool basic = b.GetProperty("block").GetString() == "BasicBlock";
        var layers = Ints(b.GetProperty("layers"));
        var backbone = new BackboneConfig
        {
            Depth = basic ? 18 : 50,
            Layers = layers,
            Widths = Ints(b.GetProperty("widths")),
            ReturnedLayers = Ints(b.GetProperty("returned_layers")),
            TrainableLayers = b.GetProperty("trainable_layers").GetInt32(),
            FpnChannels = fpn.GetProperty("out_channels").GetInt32(),
            ExtraBlocks = extraName,
        };
        if (b.TryGetProperty("dcn", out var dcn))
            backbone = backbone with
            {
                Dcn = dcn.GetProperty("kind").GetString()!,
                DcnStages = Ints(dcn.GetProperty("stages")),
                DcnOffsetGroups = dcn.GetProperty("offset_groups").GetInt32(),
            };
        var anchors = c.GetProperty("anchors");
        var t = c.GetProperty("transform");
        int[][] sizes = anchors.GetProperty("sizes").EnumerateArray().Select(Ints).ToArray();
        double[][] ratios = anchors.GetProperty("aspect_ratios").EnumerateArray().Select(Doubles).ToArray();
        if (IsRetinaNet)
        {
            var head = c.GetProperty("head");
            var norm = head.GetProperty("norm");
            return new RetinaNetConfig
            {
                Backbone = backbone, NumClasses = c.GetProperty("num_classes").GetInt32(),
                MinSize = [t.GetProperty("min_size").GetInt32()], MaxSize = t.GetProperty("max_size").GetInt32(),
                AnchorSizes = sizes, AspectRatios = ratios,
                HeadNormGroups = norm.ValueKind == JsonValueKind.Null ? 0 : norm.GetProperty("num_groups").GetInt32(),
                BoxLoss = head.GetProperty("regression_loss").GetString()!,
                ScoreThresh = c.GetProperty("score_thresh").GetDouble(), NmsThresh = c.GetProperty("nms_thresh").GetDouble(),
                DetectionsPerImage = c.GetProperty("detections_per_img").GetInt32(), TopkCandidates = c.GetProperty("topk_candidates").GetInt32(),
                FgIouThresh = c.GetProperty("fg_iou_thresh").GetDouble(), BgIouThresh = c.GetProperty("bg_iou_thresh").GetDouble(),
            };
        }
        var rpn = c.GetProperty("rpn");
        var roi = c.GetProperty("roi_heads");
        FasterRcnnConfig family = new FasterRcnnConfig();
        if (IsMaskRcnn)
        {
            var pool = c.GetProperty("mask_roi_pool");
            var head = c.GetProperty("mask_head");
            family = new MaskRcnnConfig
            {
                MaskPoolSize = Ints(pool.GetProperty("output_size"))[0], MaskPoolSampling = pool.GetProperty("sampling_ratio").GetInt32(),
                MaskLayers = Ints(head.GetProperty("layers")), MaskDilation = head.GetProperty("dilation").GetInt32(),
                MaskDimReduced = c.GetProperty("mask_predictor").GetProperty("dim_reduced").GetInt32(),
            };
        }
        return family with
        {
            Backbone = backbone, NumClasses = c.GetProperty("num_classes").GetInt32(),
            MinSize = [t.GetProperty("min_size").GetInt32()], MaxSize = t.GetProperty("max_size").GetInt32(),
            AnchorSizes = sizes, AspectRatios = ratios,
            RepresentationSize = c.GetProperty("box_head").GetProperty("representation_size").GetInt32(),
            BoxPoolSize = Ints(c.GetProperty("box_roi_pool").GetProperty("output_size"))[0],
            BoxPoolSampling = c.GetProperty("box_roi_pool").GetProperty("sampling_ratio").GetInt32(),
            Rpn = new RpnConfig
            {
                PreNmsTopNTrain = rpn.GetProperty("pre_nms_top_n_train").GetInt32(), PreNmsTopNTest = rpn.GetProperty("pre_nms_top_n_test").GetInt32(),
                PostNmsTopNTrain = rpn.GetProperty("post_nms_top_n_train").GetInt32(), PostNmsTopNTest = rpn.GetProperty("post_nms_top_n_test").GetInt32(),
                NmsThresh = rpn.GetProperty("nms_thresh").GetDouble(), FgIouThresh = rpn.GetProperty("fg_iou_thresh").GetDouble(),
                BgIouThresh = rpn.GetProperty("bg_iou_thresh").GetDouble(), BatchSizePerImage = rpn.GetProperty("batch_size_per_image").GetInt32(),
                PositiveFraction = rpn.GetProperty("positive_fraction").GetDouble(), ScoreThresh = rpn.GetProperty("score_thresh").GetDouble(),
            },
            RoiHeads = new RoiHeadsConfig
            {
                ScoreThresh = roi.GetProperty("score_thresh").GetDouble(), NmsThresh = roi.GetProperty("nms_thresh").GetDouble(),
                DetectionsPerImage = roi.GetProperty("detections_per_img").GetInt32(), FgIouThresh = roi.GetProperty("fg_iou_thresh").GetDouble(),
                BgIouThresh = roi.GetProperty("bg_iou_thresh").GetDouble(), BatchSizePerImage = roi.GetProperty("batch_size_per_image").GetInt32(),
                PositiveFraction = roi.GetProperty("positive_fraction").GetDouble(), BboxRegWeights = Doubles(roi.GetProperty("bbox_reg_weights")),
            },
        };
    }

    /// <summary>The model with the golden checkpoint loaded, on <paramref name="device"/>.</summary>
    public DetectionModel BuildModel(Device device, string? checkpoint = null)
    {
        var model = DetectionModel.Create(ModelConfig(), device);
        DetectorCheckpoint.LoadWeights(model, checkpoint ?? CheckpointPath);
        return model;
    }

    /// <summary>COCO RLEs {size [H, W], counts [[...] per mask]} (column-major runs, zeros first) as row-major 0/1 planes.</summary>
    public static (byte[] Planes, int Height, int Width) Masks(JsonElement rles)
    {
        var size = Ints(rles.GetProperty("size"));
        var planes = rles.GetProperty("counts").EnumerateArray()
            .SelectMany(c => new Rle(size[0], size[1], c.EnumerateArray().Select(x => x.GetUInt32()).ToArray()).DecodeRowMajor()).ToArray();
        return (planes, size[0], size[1]);
    }

    /// <summary>The training samples: both images with their targets (original pixels, masks for Mask R-CNN).</summary>
    public DetectionSample[] TrainSamples(Device device)
    {
        var images = Images(device);
        var targets = Train.GetProperty("targets").EnumerateArray().ToArray();
        return images.Select((im, i) =>
        {
            var boxes = Data(targets[i].GetProperty("boxes")).Select(v => (float)v).ToArray();
            var labels = Longs(targets[i].GetProperty("labels"));
            byte[]? masks = null;
            int mh = 0, mw = 0;
            if (targets[i].TryGetProperty("masks", out var m))
                (masks, mh, mw) = Masks(m);
            var target = DetectionTarget.FromArrays(boxes, labels, masks, mh, mw, new long[labels.Length], new float[labels.Length], i);
            return new DetectionSample(im, target);
        }).ToArray();
    }
}

/// <summary>A sampler that replays the picks torchvision's sampler made (recorded by the golden script).</summary>
public sealed class RecordedSampler(IReadOnlyList<long[]> positives, IReadOnlyList<long[]> negatives) : Runtime.Vision.Ops.IPositiveNegativeSampler
{
    public (Tensor[] Positive, Tensor[] Negative) Sample(IReadOnlyList<Tensor> matchedIdxs)
    {
        Assert.Equal(positives.Count, matchedIdxs.Count);
        var pos = new Tensor[matchedIdxs.Count];
        var neg = new Tensor[matchedIdxs.Count];
        for (int i = 0; i < matchedIdxs.Count; i++)
        {
            int n = matchedIdxs[i].Size(0);
            var labels = matchedIdxs[i].ToArray<long>();
            // The recorded picks must be picks our matching allows: positives >= 1, negatives == 0.
            Assert.All(positives[i], p => Assert.True(labels[p] >= 1, $"recorded positive {p} has label {labels[p]}"));
            Assert.All(negatives[i], p => Assert.True(labels[p] == 0, $"recorded negative {p} has label {labels[p]}"));
            pos[i] = Mask(n, positives[i], matchedIdxs[i].Device);
            neg[i] = Mask(n, negatives[i], matchedIdxs[i].Device);
        }
        return (pos, neg);
    }

    private static Tensor Mask(int n, long[] picked, Device device)
    {
        var m = new bool[n];
        foreach (var p in picked) m[p] = true;
        using var cpu = Tensor.From<bool>(m, [n]);
        return cpu.To(device);
    }

    public static RecordedSampler From(JsonElement perImage) => new(
        perImage.EnumerateArray().Select(e => e.GetProperty("pos").EnumerateArray().Select(x => x.GetInt64()).ToArray()).ToArray(),
        perImage.EnumerateArray().Select(e => e.GetProperty("neg").EnumerateArray().Select(x => x.GetInt64()).ToArray()).ToArray());
}
