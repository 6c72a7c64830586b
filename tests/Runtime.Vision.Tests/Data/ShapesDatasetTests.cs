using Runtime.Vision.Data;
using Runtime.Vision.Evaluation;

namespace Runtime.Vision.Tests.Data;

public class ShapesDatasetTests
{
    private static readonly ShapesOptions Small = new() { MinImageSize = 64, MaxImageSize = 96, MinShapes = 3, MaxShapes = 6 };

    [Fact]
    public void GeneratedDataLoadsBackAsTheGeneratorIntended()
    {
        using var tmp = new TempFolder();
        var files = ShapesDataset.Generate(tmp.Path, 6, seed: 42, Small);
        Assert.True(File.Exists(files.InstancesJson));
        Assert.Equal(6, Directory.GetFiles(files.ImageFolder, "*.png").Length);
        Assert.Empty(Directory.GetFiles(tmp.Path, "*.tmp*", SearchOption.AllDirectories));

        var ds = new CocoDetection(files.ImageFolder, files.InstancesJson);
        Assert.Equal(6, ds.Count);
        Assert.Equal(7, ds.Categories.NumClasses);
        Assert.Equal("circle", ds.Categories.Names[1]);
        int total = 0;
        for (int i = 0; i < ds.Count; i++)
        {
            var scene = ShapesDataset.Render(i, 42, Small);
            using var s = ds.Get(i);
            Assert.Equal([3, scene.Height, scene.Width], s.Image.Shape.ToArray());
            // The PNG holds exactly the rendered pixels.
            var px = s.Image.ToArray<float>();
            int plane = scene.Width * scene.Height;
            for (int k = 0; k < plane; k += 97)
                for (int c = 0; c < 3; c++) Assert.InRange(px[c * plane + k] - scene.Pixels[3 * k + c] / 255f, -1e-6f, 1e-6f);

            var t = s.Target;
            Assert.Equal(scene.Instances.Count, t.Count);
            Assert.InRange(t.Count, 1, 6);
            var boxes = t.Boxes.ToArray<float>();
            var labels = t.Labels.ToArray<long>();
            var masks = t.Masks!.ToArray<byte>();
            var area = t.Area.ToArray<float>();
            for (int k = 0; k < t.Count; k++)
            {
                var inst = scene.Instances[k];
                Assert.Equal(inst.CategoryId, labels[k]); // ids 1..6 are already contiguous
                var mask = masks.AsSpan(k * plane, plane);
                // The polygons rasterise (pycocotools rules) to exactly the visible pixels ...
                Assert.True(mask.SequenceEqual(inst.VisibleMask), $"image {i} instance {k}: mask differs from the generator's");
                // ... the box is the tight bound of the mask and the area its pixel count.
                Assert.Equal(TightBox(mask, scene.Width, scene.Height), boxes.AsSpan(4 * k, 4).ToArray());
                Assert.Equal(mask.ToArray().Count(b => b != 0), (int)area[k]);
                Assert.True(area[k] >= Small.MinVisibleArea);
            }
            // Later shapes occlude earlier ones: visible masks never overlap.
            var cover = new int[plane];
            for (int k = 0; k < t.Count; k++)
                for (int p = 0; p < plane; p++) cover[p] += masks[k * plane + p];
            Assert.All(cover, c => Assert.InRange(c, 0, 1));
            total += t.Count;
        }
        Assert.Equal(files.AnnotationCount, total);
    }

    private static float[] TightBox(ReadOnlySpan<byte> mask, int w, int h)
    {
        int x0 = w, y0 = h, x1 = -1, y1 = -1;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (mask[y * w + x] != 0)
                {
                    x0 = Math.Min(x0, x);
                    y0 = Math.Min(y0, y);
                    x1 = Math.Max(x1, x);
                    y1 = Math.Max(y1, y);
                }
        return [x0, y0, x1 + 1, y1 + 1];
    }

    [Fact]
    public void SameSeedSameFilesOtherSeedOtherImages()
    {
        using var a = new TempFolder();
        using var b = new TempFolder();
        using var c = new TempFolder();
        var fa = ShapesDataset.Generate(a.Path, 3, 7, Small);
        var fb = ShapesDataset.Generate(b.Path, 3, 7, Small with { Parallel = false });
        var fc = ShapesDataset.Generate(c.Path, 3, 8, Small);
        Assert.Equal(File.ReadAllBytes(fa.InstancesJson), File.ReadAllBytes(fb.InstancesJson));
        for (int i = 0; i < 3; i++)
        {
            var name = ShapesDataset.FileName(i);
            Assert.Equal(File.ReadAllBytes(Path.Combine(fa.ImageFolder, name)), File.ReadAllBytes(Path.Combine(fb.ImageFolder, name)));
            Assert.NotEqual(File.ReadAllBytes(Path.Combine(fa.ImageFolder, name)), File.ReadAllBytes(Path.Combine(fc.ImageFolder, name)));
        }
        // Image i depends on (seed, i) only: a longer data set starts with the same images.
        Assert.Equal(ShapesDataset.Render(2, 7, Small).Pixels, ShapesDataset.Render(2, 7, Small).Pixels);
    }

    [Fact]
    public void ShapesCoverAllClassesAndOccludeEachOther()
    {
        var kinds = new HashSet<ShapeKind>();
        int occluded = 0;
        for (int i = 0; i < 30; i++)
        {
            var scene = ShapesDataset.Render(i, 3, Small);
            Assert.InRange(scene.Width, 64, 96);
            Assert.InRange(scene.Height, 64, 96);
            foreach (var s in scene.Instances)
            {
                kinds.Add(s.Geometry.Kind);
                if (s.Area < s.Geometry.Rasterize(scene.Height, scene.Width).Count(b => b != 0)) occluded++;
            }
        }
        Assert.Equal(Enum.GetValues<ShapeKind>().Length, kinds.Count);
        Assert.True(occluded > 5, $"only {occluded} occluded shapes");
    }

    [Fact]
    public void MasksWithHolesAreWrittenAsRle()
    {
        // A ring: the polygon form cannot express the hole.
        var mask = new byte[20 * 20];
        for (int y = 4; y < 16; y++)
            for (int x = 4; x < 16; x++)
                mask[y * 20 + x] = (byte)(x is >= 8 and < 12 && y is >= 8 and < 12 ? 0 : 1);
        var inst = new ShapeInstance(new ShapeGeometry(ShapeKind.Square, 10, 10, 8, 0), [1, 2, 3], mask, 128, 4, 4, 16, 16);
        var ann = ShapesDataset.ToAnnotation(inst, 1, 20, 20);
        Assert.True(ann.Segmentation!.IsRle);
        Assert.Equal(mask, CocoDetection.DecodeMask(ann.Segmentation, 20, 20));
        Assert.Equal([4.0, 4, 12, 12], ann.Bbox);
    }

    [Fact]
    public void PanopticDataHasThingsStuffAndConsistentIds()
    {
        using var tmp = new TempFolder();
        var files = ShapesDataset.GeneratePanoptic(tmp.Path, 4, 5, Small);
        var pan = new CocoPanoptic(files.ImageFolder, files.PanopticFolder!, files.PanopticJson!);
        Assert.Equal(4, pan.Count);
        Assert.Equal(10, pan.Categories.NumClasses);
        Assert.Equal([false, true, true, true, true, true, true, false, false, false], pan.Categories.IsThing);
        bool sawStuff = false;
        for (int i = 0; i < pan.Count; i++)
        {
            var scene = ShapesDataset.RenderPanoptic(i, 5, Small);
            using var s = pan.Get(i);
            var ids = s.SegmentIds.ToArray<int>();
            Assert.Equal(scene.SegmentIds, ids);
            // Every pixel belongs to a listed segment (no void), areas and boxes match the id map.
            var listed = s.Segments.ToDictionary(g => (int)g.Id);
            Assert.All(ids, id => Assert.True(listed.ContainsKey(id)));
            foreach (var g in s.Segments)
            {
                Assert.Equal(ids.Count(v => v == g.Id), (int)g.Area);
                Assert.Equal(g.CategoryId <= 6, g.IsThing);
                sawStuff |= !g.IsThing;
            }
            var recount = PanopticSegments.Recount(s.Segments, ids, s.Height, s.Width);
            Assert.Equal(s.Segments.Select(g => g.Bbox), recount.Select(g => g.Bbox));
            // Things are the instance set's annotations.
            Assert.Equal(scene.Scene.Instances.Count, s.Segments.Count(g => g.IsThing));
            using var sem = s.SemanticLabels();
            var lab = sem.ToArray<long>();
            Assert.Equal(listed[ids[0]].Label, lab[0]);
        }
        Assert.True(sawStuff);
        // The same folder is also an instances data set.
        var det = new CocoDetection(files.ImageFolder, files.InstancesJson);
        using var d = det.Get(0);
        Assert.Equal(ShapesDataset.RenderPanoptic(0, 5, Small).Scene.Instances.Count, d.Target.Count);
    }

    [Fact]
    public void ContoursRoundTripThroughThePycocotoolsRasteriser()
    {
        var g = new Generator(11);
        for (int trial = 0; trial < 40; trial++)
        {
            int h = (int)g.NextInt64(1, 14), w = (int)g.NextInt64(1, 14);
            var mask = new byte[h * w];
            double p = g.NextDouble();
            for (int i = 0; i < mask.Length; i++) mask[i] = (byte)(g.NextDouble() < p ? 1 : 0);
            var polys = MaskContours.ToCocoPolygons(mask, h, w);
            var loops = MaskContours.Trace(mask, h, w);
            Assert.Equal(mask.Count(b => b != 0) * 2L, loops.Sum(l => MaskContours.SignedArea2(l)));
            if (polys == null) continue; // holes
            var back = polys.Count == 0 ? new byte[h * w] : Rle.FromPolygons(polys, h, w).DecodeRowMajor();
            Assert.Equal(mask, back);
        }
        // Diagonal neighbours are separate pieces.
        var diag = new byte[] { 1, 0, 0, 1 };
        Assert.Equal(2, MaskContours.Trace(diag, 2, 2).Count);
        Assert.Equal(diag, Rle.FromPolygons(MaskContours.ToCocoPolygons(diag, 2, 2)!, 2, 2).DecodeRowMajor());
        var anti = new byte[] { 0, 1, 1, 0 };
        Assert.Equal(anti, Rle.FromPolygons(MaskContours.ToCocoPolygons(anti, 2, 2)!, 2, 2).DecodeRowMajor());
        Assert.Equal([0, 0, 2, 0, 2, 1, 0, 1], MaskContours.Trace(new byte[] { 1, 1 }, 1, 2)[0]);
    }
}
