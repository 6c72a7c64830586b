using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;

namespace Runtime.Vision.Tests.Data;

public class CocoDetectionTests
{
    private static (TempFolder Tmp, CocoDetection Dataset) Small(CocoDetectionOptions? options = null)
    {
        var tmp = new TempFolder();
        CocoFormatTests.WriteSmallImages(tmp["images"]);
        File.WriteAllText(tmp["instances.json"], CocoFormatTests.SmallJsonWithRle());
        return (tmp, new CocoDetection(tmp["images"], tmp["instances.json"], options));
    }

    [Fact]
    public void LoadsImageAndTorchvisionStyleTargets()
    {
        var (tmp, ds) = Small();
        using var _ = tmp;
        Assert.Equal(3, ds.Count);
        Assert.Equal([10L, 11, 12], ds.ImageIds);
        using var s = ds.Get(0);
        Assert.Equal([3, 6, 8], s.Image.Shape.ToArray());
        Assert.Equal(DType.Float32, s.Image.DType);
        var px = s.Image.ToArray<float>();
        Assert.Equal(7 / 255f, px[48], 6); // R of pixel 0 is byte 0, G byte 1 -> channel 1 starts at 48
        Assert.Equal(0f, px[0]);

        var t = s.Target;
        Assert.Equal(10, t.ImageId);
        Assert.Equal(3, t.Count); // the crowd annotation is dropped by default
        Assert.Equal([1f, 1, 4, 3, 5, 0, 7, 3, 6.5f, 4, 8, 5.5f], t.Boxes.ToArray<float>()); // xywh -> xyxy, clamped to W=8
        Assert.Equal([3L, 1, 2], t.Labels.ToArray<long>()); // ids 90, 3, 7 -> contiguous labels
        Assert.Equal([0L, 0, 0], t.IsCrowd.ToArray<long>());
        Assert.Equal([6f, 6, 2.25f], t.Area.ToArray<float>());
        Assert.Equal([3, 6, 8], t.Masks!.Shape.ToArray());
        Assert.Equal(DType.Bool, t.Masks.DType);

        var m = t.Masks.ToArray<byte>();
        // Polygon (0.5..3.5) x (0.5..2.5): pixel centres x = 1..3, y = 1..2.
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 8; x++)
                Assert.Equal(x is >= 1 and <= 3 && y is >= 1 and <= 2 ? 1 : 0, m[y * 8 + x]);
        // Uncompressed RLE: columns 5 and 6, rows 0..2.
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 8; x++)
                Assert.Equal(x is 5 or 6 && y <= 2 ? 1 : 0, m[48 + y * 8 + x]);
        // The third polygon agrees with the pycocotools rasteriser.
        Assert.Equal(Rle.FromPolygons([[6.5, 4, 7.5, 4, 7.5, 5, 6.5, 5]], 6, 8).DecodeRowMajor(), m[96..]);
    }

    [Fact]
    public void CrowdRegionsCanBeKept()
    {
        var (tmp, ds) = Small(new CocoDetectionOptions { IncludeCrowd = true });
        using var _ = tmp;
        using var s = ds.Get(0);
        Assert.Equal(4, s.Target.Count);
        Assert.Equal([0L, 0, 1, 0], s.Target.IsCrowd.ToArray<long>());
        var crowd = s.Target.Masks!.ToArray<byte>().AsSpan(2 * 48, 48);
        for (int i = 0; i < 48; i++) Assert.Equal(i / 8 >= 3 ? 1 : 0, crowd[i]); // compressed RLE: rows 3..5
    }

    [Fact]
    public void DegenerateBoxesAreDroppedAndEmptyImagesKeptUnlessAsked()
    {
        var (tmp, ds) = Small();
        using var _ = tmp;
        using (var s = ds.Get(1))
        {
            Assert.Equal(0, s.Target.Count);
            Assert.Equal([0, 4], s.Target.Boxes.Shape.ToArray());
            Assert.Equal([0, 4, 4], s.Target.Masks!.Shape.ToArray());
        }
        var train = new CocoDetection(tmp["images"], tmp["instances.json"], new CocoDetectionOptions { RemoveImagesWithoutAnnotations = true, LoadMasks = false });
        Assert.Equal([10L], train.ImageIds);
        using var t = train.Get(0);
        Assert.Null(t.Target.Masks);
    }

    [Fact]
    public void IdentityLabelsKeepCategoryIds()
    {
        var (tmp, ds) = Small(new CocoDetectionOptions { ContiguousLabels = false });
        using var _ = tmp;
        using var s = ds.Get(0);
        Assert.Equal([90L, 3, 7], s.Target.Labels.ToArray<long>());
    }

    [Fact]
    public void RleOfTheWrongSizeIsAnError()
    {
        var seg = CocoSegmentation.FromRle(4, 4, [16]);
        Assert.Throws<InvalidDataException>(() => CocoDetection.DecodeMask(seg, 5, 4));
        Assert.Equal(new byte[20], CocoDetection.DecodeMask(null, 5, 4));
    }
}
