using Runtime.Models.Panoptic;
using Runtime.Models.Training;
using Runtime.Vision.Data;

namespace Runtime.Models.Tests;

/// <summary>
/// MaX-DeepLab's backbone pretraining on object crops: the crops are cut around the objects with their labels (hand-made
/// images: a red square and a blue disk on grey), beyond the image border they hold the normalised zero, and the
/// pretraining learns them while changing only the convolutional front.
/// </summary>
public class BackbonePretrainingTests
{
    private static readonly MaxDeepLabConfig Config = MaxDeepLabTests.Tiny;

    /// <summary>Images [3, 40, 40] in [0, 1]: grey sky (class 6), a red square (class 1) at x 10-19, y 20-29, a blue disk (class 0) of radius 6 at (30, 10); optionally the square at the left border.</summary>
    private sealed class HandMade(int count, bool squareAtBorder = false) : IDataset<PanopticSample>
    {
        public int Count => count;

        public PanopticSample Get(int index)
        {
            const int n = 40;
            var image = new float[3 * n * n];
            var ids = new int[n * n];
            int sx = squareAtBorder ? 0 : 10;
            for (int y = 0; y < n; y++)
                for (int x = 0; x < n; x++)
                {
                    int id = 1;
                    float r = 0.5f, g = 0.5f, b = 0.5f;
                    if (x >= sx && x < sx + 10 && y >= 20 && y < 30) { id = 2; (r, g, b) = (1, 0, 0); }
                    else if ((x - 30) * (x - 30) + (y - 10) * (y - 10) <= 36) { id = 3; (r, g, b) = (0, 0, 1); }
                    ids[y * n + x] = id;
                    image[y * n + x] = r;
                    image[n * n + y * n + x] = g;
                    image[2 * n * n + y * n + x] = b;
                }
            var segments = new List<PanopticSegment>
            {
                new(1, 7, 7, false, false, ids.Count(v => v == 1), [0, 0, n, n]),
                new(2, 2, 2, true, false, 100, [sx, 20, 10, 10]),
                new(3, 1, 1, true, false, ids.Count(v => v == 3), [24, 4, 13, 13]),
            };
            return new PanopticSample(Tensor.From<float>(image, [3, n, n]), Tensor.From<int>(ids, [n, n]), segments, index);
        }
    }

    private static float Normalised(float v, int channel) => (v - Config.ImageMean[channel]) / Config.ImageStd[channel];

    [Fact]
    public void CropsAreCutAroundTheObjectsWithTheirLabels()
    {
        var options = new BackbonePretrainOptions { CropSize = 21, MinObjectFraction = 0.5, MaxObjectFraction = 0.5 };
        var (crops, labels) = BackbonePretraining.CutCrops(new HandMade(3), Config, options, 10, new Generator(4));
        using var _ = crops;
        Assert.Equal(new[] { 10, 3, 21, 21 }, crops.Shape.ToArray());
        // Square (label 2 -> class 1 -> thing index 1) and disk (class 0) alternate, image by image.
        Assert.Equal([1, 0, 1, 0, 1, 0, 1, 0, 1, 0], labels);
        var v = crops.ToArray<float>();
        int per = 3 * 21 * 21;
        for (int k = 0; k < 10; k++)
        {
            // The window is twice the box (fraction 0.5) and its centre moves at most a tenth of it: the middle pixel
            // lies in the object, a square's bottom corners in the grey sky.
            var colour = labels[k] == 1 ? new[] { 1f, 0f, 0f } : [0f, 0f, 1f];
            for (int c = 0; c < 3; c++)
            {
                Assert.Equal(Normalised(colour[c], c), v[k * per + (c * 21 + 10) * 21 + 10], 4);
                if (labels[k] == 1) Assert.Equal(Normalised(0.5f, c), v[k * per + (c * 21 + 20) * 21], 4);
            }
        }
    }

    [Fact]
    public void BeyondTheImageBorderCropsHoldTheNormalisedZero()
    {
        var options = new BackbonePretrainOptions { CropSize = 20, MinObjectFraction = 0.5, MaxObjectFraction = 0.5 };
        var (crops, labels) = BackbonePretraining.CutCrops(new HandMade(2, squareAtBorder: true), Config, options, 8, new Generator(5));
        using var _ = crops;
        var v = crops.ToArray<float>();
        int per = 3 * 20 * 20, squares = 0;
        for (int k = 0; k < 8; k++)
        {
            if (labels[k] != 1) continue;
            squares++;
            // A 20-pixel window centred near x = 5 starts about 5 pixels left of the image: its first (or, flipped, last)
            // three columns are padding, exactly 0 after normalisation (no resampling: the window is already 20 wide).
            bool left = Enumerable.Range(0, 3).All(c => Enumerable.Range(0, 20).All(y => Enumerable.Range(0, 3).All(x => v[k * per + (c * 20 + y) * 20 + x] == 0)));
            bool right = Enumerable.Range(0, 3).All(c => Enumerable.Range(0, 20).All(y => Enumerable.Range(17, 3).All(x => v[k * per + (c * 20 + y) * 20 + x] == 0)));
            Assert.True(left ^ right, $"crop {k}: padding on the left {left}, on the right {right}");
        }
        Assert.Equal(4, squares);
    }

    [Fact]
    public void PretrainingLearnsTheCropsAndChangesOnlyTheFront()
    {
        using var model = new MaxDeepLab(Config, Device.Cpu, new Generator(1));
        var front = BackbonePretraining.FrontParameters(model).ToHashSet(ReferenceEqualityComparer.Instance);
        var before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.ToArray<float>());
        var buffersBefore = model.NamedBuffers().ToDictionary(b => b.Name, b => Values(b.Buffer));
        var reports = new List<PretrainStep>();
        var options = new BackbonePretrainOptions { Duration = TimeSpan.FromMinutes(10), MaxSteps = 200, Crops = 64, CropSize = 33, BatchSize = 8, Seed = 3 };
        var result = BackbonePretraining.Run(model, new HandMade(8), options, reports.Add);
        Assert.Equal(200, result.Steps);
        Assert.Equal(64, result.Crops);
        Assert.Equal([100, 200], reports.Select(r => r.Step));
        // Two colours, two classes: the loss falls well below chance (ln 6 with six thing classes) and the crops are learnt.
        Assert.True(reports[1].Loss < reports[0].Loss && reports[1].Loss < 0.3, $"losses {reports[0].Loss}, {reports[1].Loss}");
        Assert.True(reports[1].Accuracy > 0.95, $"accuracy {reports[1].Accuracy}");
        foreach (var (name, p) in model.NamedParameters())
        {
            bool changed = !before[name].AsSpan().SequenceEqual(p.ToArray<float>());
            Assert.True(changed == front.Contains(p), $"{name}: changed {changed}, in the front {front.Contains(p)}");
        }
        foreach (var (name, b) in model.NamedBuffers())
        {
            bool changed = !buffersBefore[name].AsSpan().SequenceEqual(Values(b));
            bool inFront = name.StartsWith("bn1.", StringComparison.Ordinal) || name.StartsWith("layer1.", StringComparison.Ordinal)
                || name.StartsWith("layer2.", StringComparison.Ordinal) || name.StartsWith("layer3.0.", StringComparison.Ordinal);
            Assert.True(changed == inFront, $"buffer {name}: changed {changed}, in the front {inFront}");
        }
    }

    private static double[] Values(Tensor t) => t.To(DType.Float64).ToArray<double>();

    [Fact]
    public void BadSettingsAreRefused()
    {
        using var model = new MaxDeepLab(Config, Device.Cpu, new Generator(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => BackbonePretraining.Run(model, new HandMade(1), new BackbonePretrainOptions { MinObjectFraction = 0.9, MaxObjectFraction = 0.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => BackbonePretraining.Run(model, new HandMade(1), new BackbonePretrainOptions { Duration = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => BackbonePretraining.Run(model, new HandMade(1), new BackbonePretrainOptions { CropSize = 8 }));
    }
}
