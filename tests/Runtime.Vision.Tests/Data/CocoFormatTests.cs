using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;
using Runtime.Vision.Imaging;

namespace Runtime.Vision.Tests.Data;

public class CocoFormatTests
{
    // Three categories with sparse ids; image 10 has a polygon, an uncompressed RLE, a crowd RLE
    // (compressed) and a box hanging over the right edge; image 11 has a degenerate box only; image 12 nothing.
    internal const string SmallJson = """
    {
      "info": {"description": "hand-written"},
      "images": [
        {"id": 10, "file_name": "a.png", "width": 8, "height": 6},
        {"id": 11, "file_name": "b.png", "width": 4, "height": 4},
        {"id": 12, "file_name": "c.png", "width": 5, "height": 3}
      ],
      "annotations": [
        {"id": 1, "image_id": 10, "category_id": 90, "bbox": [1, 1, 3, 2], "area": 6.0, "iscrowd": 0,
         "segmentation": [[0.5, 0.5, 3.5, 0.5, 3.5, 2.5, 0.5, 2.5]]},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [5, 0, 2, 3], "area": 6, "iscrowd": 0,
         "segmentation": {"size": [6, 8], "counts": [30, 3, 3, 3, 9]}},
        {"id": 3, "image_id": 10, "category_id": 7, "bbox": [0, 3, 8, 3], "area": 24, "iscrowd": 1,
         "segmentation": {"size": [6, 8], "counts": "CRLE_PLACEHOLDER"}},
        {"id": 4, "image_id": 10, "category_id": 7, "bbox": [6.5, 4, 10, 1.5], "area": 2.25, "iscrowd": 0,
         "segmentation": [[6.5, 4, 7.5, 4, 7.5, 5, 6.5, 5]]},
        {"id": 5, "image_id": 11, "category_id": 3, "bbox": [1, 1, 0, 2], "area": 0, "iscrowd": 0,
         "segmentation": [[1, 1, 1, 1, 1, 3]]}
      ],
      "categories": [
        {"id": 7, "name": "seven", "supercategory": "n"},
        {"id": 3, "name": "three"},
        {"id": 90, "name": "ninety", "supercategory": "n"}
      ]
    }
    """;

    /// <summary>The small file with a real compressed RLE for the crowd region (rows 3..5 of a 6x8 image).</summary>
    internal static string SmallJsonWithRle()
    {
        var mask = new byte[6 * 8];
        for (int y = 3; y < 6; y++)
            for (int x = 0; x < 8; x++) mask[y * 8 + x] = 1;
        return SmallJson.Replace("CRLE_PLACEHOLDER", Rle.EncodeRowMajor(mask, 6, 8).ToCompressedString());
    }

    [Fact]
    public void ParsesImagesAnnotationsAndCategories()
    {
        var f = CocoInstancesFile.Parse(SmallJsonWithRle());
        Assert.Equal(3, f.Images.Count);
        Assert.Equal(new CocoImageInfo(10, "a.png", 8, 6), f.Images[0]);
        Assert.Equal(5, f.Annotations.Count);
        Assert.Equal(3, f.Categories.Count);
        Assert.Equal("n", f.Categories[0].Supercategory);
        Assert.Null(f.Categories[1].Supercategory);
        Assert.Null(f.Categories[0].IsThing);

        var a = f.AnnotationsOf(10);
        Assert.Equal(4, a.Count);
        Assert.True(a[0].Segmentation!.IsPolygons);
        Assert.Equal([0.5, 0.5, 3.5, 0.5, 3.5, 2.5, 0.5, 2.5], a[0].Segmentation!.Polygons![0]);
        Assert.Equal([1.0, 1, 3, 2], a[0].Bbox);
        Assert.False(a[0].IsCrowd);
        Assert.True(a[1].Segmentation!.IsRle);
        Assert.Equal([30u, 3, 3, 3, 9], a[1].Segmentation!.Counts);
        Assert.Equal((6, 8), (a[1].Segmentation!.RleHeight, a[1].Segmentation!.RleWidth));
        Assert.True(a[2].IsCrowd);
        Assert.NotNull(a[2].Segmentation!.CompressedCounts);
        Assert.Empty(f.AnnotationsOf(12));
        Assert.Empty(f.AnnotationsOf(999));
    }

    [Fact]
    public void CategoryMapIsContiguousBySortedId()
    {
        var f = CocoInstancesFile.Parse(SmallJson);
        var map = new CategoryMap(f.Categories);
        Assert.Equal(4, map.NumClasses);
        Assert.Equal(1, map.LabelOf(3));
        Assert.Equal(2, map.LabelOf(7));
        Assert.Equal(3, map.LabelOf(90));
        Assert.Equal(90, map.CategoryIdOf(3));
        Assert.Equal(["__background__", "three", "seven", "ninety"], map.Names);
        Assert.Throws<KeyNotFoundException>(() => map.LabelOf(4));

        var identity = new CategoryMap(f.Categories, contiguous: false);
        Assert.Equal(91, identity.NumClasses);
        Assert.Equal(90, identity.LabelOf(90));
        Assert.Equal("seven", identity.Names[7]);
        Assert.Equal("N/A", identity.Names[8]);
    }

    [Fact]
    public void WriteThenReadKeepsEverything()
    {
        using var tmp = new TempFolder();
        var f = CocoInstancesFile.Parse(SmallJsonWithRle());
        var path = tmp["sub/instances.json"];
        f.Save(path);
        Assert.Empty(Directory.GetFiles(tmp["sub"], "*.tmp*"));
        var g = CocoInstancesFile.Load(path);
        Assert.Equal(f.Images, g.Images);
        Assert.Equal(f.Categories, g.Categories);
        Assert.Equal(f.Annotations.Count, g.Annotations.Count);
        for (int i = 0; i < f.Annotations.Count; i++)
        {
            var (a, b) = (f.Annotations[i], g.Annotations[i]);
            Assert.Equal((a.Id, a.ImageId, a.CategoryId, a.Area, a.IsCrowd), (b.Id, b.ImageId, b.CategoryId, b.Area, b.IsCrowd));
            Assert.Equal(a.Bbox, b.Bbox);
            Assert.Equal(a.Segmentation!.Counts, b.Segmentation!.Counts);
            Assert.Equal(a.Segmentation.CompressedCounts, b.Segmentation.CompressedCounts);
            Assert.Equal(a.Segmentation.Polygons?.SelectMany(p => p), b.Segmentation.Polygons?.SelectMany(p => p));
        }
    }

    [Fact]
    public void BadFilesGiveClearErrors()
    {
        var e = Assert.Throws<InvalidDataException>(() => CocoInstancesFile.Parse("""{"images": [], "annotations": [{"id": 1, "bbox": [0,0,1,1], "category_id": 1}]}"""));
        Assert.Contains("image_id", e.Message);
        e = Assert.Throws<InvalidDataException>(() => CocoInstancesFile.Parse("""{"annotations": [{"image_id": 1, "category_id": 1, "bbox": [0,0,1]}]}"""));
        Assert.Contains("bbox", e.Message);
        e = Assert.Throws<InvalidDataException>(() => CocoInstancesFile.Parse("""{"annotations": [{"image_id": 1, "category_id": 1, "bbox": [0,0,1,1], "segmentation": [[1,2,3]]}]}"""));
        Assert.Contains("odd", e.Message);
    }

    [Fact]
    public void ParsesPanopticFiles()
    {
        const string json = """
        {"images": [{"id": 1, "file_name": "1.jpg", "width": 3, "height": 2}],
         "annotations": [{"image_id": 1, "file_name": "1.png", "segments_info": [
            {"id": 5, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 1, 2], "area": 2},
            {"id": 65793, "category_id": 200, "iscrowd": 1, "bbox": [1, 0, 2, 2], "area": 4}]}],
         "categories": [{"id": 1, "name": "person", "isthing": 1}, {"id": 200, "name": "sky", "isthing": 0}]}
        """;
        var f = CocoPanopticFile.Parse(json);
        var a = f.AnnotationOf(1)!;
        Assert.Equal("1.png", a.FileName);
        Assert.Equal(2, a.SegmentsInfo.Count);
        Assert.Equal(65793, a.SegmentsInfo[1].Id);
        Assert.True(a.SegmentsInfo[1].IsCrowd);
        Assert.Equal(true, f.Categories[0].IsThing);
        Assert.Equal(false, f.Categories[1].IsThing);
        var map = new CategoryMap(f.Categories);
        Assert.Equal([false, true, false], map.IsThing); // label 0 is the background
    }

    /// <summary>Writes the hand-written data set's images (any pixels) so that CocoDetection can open them.</summary>
    internal static void WriteSmallImages(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var (name, w, h) in new[] { ("a.png", 8, 6), ("b.png", 4, 4), ("c.png", 5, 3) })
        {
            var img = new Image(w, h, 3);
            for (int i = 0; i < img.Pixels.Length; i++) img.Pixels[i] = (byte)(i * 7);
            img.Save(Path.Combine(folder, name));
        }
    }
}
