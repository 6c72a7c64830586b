namespace Runtime.Vision.Ops;

/// <summary>
/// torchvision's AnchorGenerator: per feature-map level a set of base ("cell") anchors, one per
/// (aspect ratio, size) pair with ratios outer and sizes inner, <c>round([-w, -h, w, h] / 2)</c> with
/// <c>h = size * sqrt(ratio)</c>, <c>w = size / sqrt(ratio)</c> (computed in float32 as torchvision does),
/// shifted over the level's grid by its stride (image size // feature size, per axis). The anchors of
/// one location are contiguous; locations go row by row; levels are concatenated.
/// </summary>
public sealed class AnchorGenerator
{
    private readonly float[][] _cells;

    /// <summary>torchvision's defaults: one level, sizes (128, 256, 512), ratios (0.5, 1, 2).</summary>
    public AnchorGenerator() : this([[128, 256, 512]], [[0.5, 1.0, 2.0]]) { }

    /// <summary>Sizes and aspect ratios (height / width) per level; both lists have one entry per feature map.</summary>
    public AnchorGenerator(IReadOnlyList<IReadOnlyList<int>> sizes, IReadOnlyList<IReadOnlyList<double>> aspectRatios)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        ArgumentNullException.ThrowIfNull(aspectRatios);
        if (sizes.Count == 0) throw new ArgumentException("AnchorGenerator: needs at least one level of sizes", nameof(sizes));
        if (sizes.Count != aspectRatios.Count)
            throw new ArgumentException($"AnchorGenerator: {sizes.Count} levels of sizes but {aspectRatios.Count} levels of aspect ratios", nameof(aspectRatios));
        for (int l = 0; l < sizes.Count; l++)
        {
            if (sizes[l].Count == 0 || aspectRatios[l].Count == 0)
                throw new ArgumentException($"AnchorGenerator: level {l} has no sizes or no aspect ratios", nameof(sizes));
            foreach (var r in aspectRatios[l])
                if (!(r > 0) || double.IsInfinity(r))
                    throw new ArgumentOutOfRangeException(nameof(aspectRatios), r, $"AnchorGenerator: aspect ratios must be positive and finite (level {l})");
        }
        Sizes = sizes.Select(s => (IReadOnlyList<int>)s.ToArray()).ToArray();
        AspectRatios = aspectRatios.Select(a => (IReadOnlyList<double>)a.ToArray()).ToArray();
        _cells = new float[sizes.Count][];
        for (int l = 0; l < sizes.Count; l++) _cells[l] = BaseAnchors(Sizes[l], AspectRatios[l]);
    }

    public IReadOnlyList<IReadOnlyList<int>> Sizes { get; }

    public IReadOnlyList<IReadOnlyList<double>> AspectRatios { get; }

    /// <summary>Anchors per location of each level: sizes x ratios.</summary>
    public int[] NumAnchorsPerLocation() => Sizes.Select((s, l) => s.Count * AspectRatios[l].Count).ToArray();

    /// <summary>The base anchors [A, 4] of one level, centred on (0, 0).</summary>
    public Tensor CellAnchors(int level, DType dtype = DType.Float32, Device? device = null)
    {
        if (level < 0 || level >= _cells.Length)
            throw new ArgumentOutOfRangeException(nameof(level), level, $"AnchorGenerator: level must be in [0, {_cells.Length})");
        using var cpu = Tensor.From<float>(_cells[level], _cells[level].Length / 4, 4);
        using var typed = cpu.To(dtype);
        return typed.To(device ?? Device.Default);
    }

    /// <summary>
    /// Anchors of every level for one batch whose padded image tensor is <paramref name="imageSize"/>
    /// (height, width) and whose feature maps have <paramref name="featureSizes"/>: one [sum HW*A, 4]
    /// tensor per image (all equal, as in torchvision, since strides come from the padded batch size).
    /// </summary>
    public Tensor[] Forward((int Height, int Width) imageSize, int imageCount, IReadOnlyList<(int Height, int Width)> featureSizes, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(featureSizes);
        if (featureSizes.Count != _cells.Length)
            throw new ArgumentException($"AnchorGenerator: {featureSizes.Count} feature maps but {_cells.Length} levels of sizes and aspect ratios", nameof(featureSizes));
        if (imageCount < 0) throw new ArgumentOutOfRangeException(nameof(imageCount), imageCount, "AnchorGenerator: the image count must be non-negative");
        if (!dtype.IsFloating()) throw new ArgumentException($"AnchorGenerator: anchors are floating point, got {dtype.Name()}", nameof(dtype));
        long total = 0;
        for (int l = 0; l < featureSizes.Count; l++)
        {
            var (gh, gw) = featureSizes[l];
            if (gh <= 0 || gw <= 0)
                throw new ArgumentOutOfRangeException(nameof(featureSizes), featureSizes[l], $"AnchorGenerator: feature map {l} must have a positive size");
            total += (long)gh * gw * (_cells[l].Length / 4);
        }
        var data = new double[total * 4];
        long at = 0;
        for (int l = 0; l < featureSizes.Count; l++)
        {
            var (gh, gw) = featureSizes[l];
            long sh = imageSize.Height / gh, sw = imageSize.Width / gw;
            var cell = _cells[l];
            for (int y = 0; y < gh; y++)
                for (int x = 0; x < gw; x++)
                {
                    double ox = x * sw, oy = y * sh;
                    for (int a = 0; a < cell.Length; a += 4)
                    {
                        data[at++] = ox + cell[a];
                        data[at++] = oy + cell[a + 1];
                        data[at++] = ox + cell[a + 2];
                        data[at++] = oy + cell[a + 3];
                    }
                }
        }
        var dev = device ?? Device.Default;
        using var host = Tensor.From<double>(data, (int)total, 4);
        using var typed = host.To(dtype);
        var result = new Tensor[imageCount];
        for (int i = 0; i < imageCount; i++) result[i] = typed.To(dev).Contiguous();
        return result;
    }

    /// <summary>
    /// torchvision's forward on an ImageList: <paramref name="images"/> is the padded batch [B, C, H, W],
    /// <paramref name="imageSizes"/> the images' own sizes (one anchor tensor each), and the feature maps
    /// [B, C, h, w] give the grid sizes, dtype and device.
    /// </summary>
    public Tensor[] Forward(Tensor images, IReadOnlyList<(int Height, int Width)> imageSizes, IReadOnlyList<Tensor> featureMaps)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(imageSizes);
        ArgumentNullException.ThrowIfNull(featureMaps);
        if (images.Rank < 2) throw new ArgumentException($"AnchorGenerator: images must be [..., H, W], got {Boxes.ShapeText(images)}", nameof(images));
        if (featureMaps.Count == 0) throw new ArgumentException("AnchorGenerator: needs at least one feature map", nameof(featureMaps));
        foreach (var f in featureMaps)
            if (f.Rank < 2) throw new ArgumentException($"AnchorGenerator: feature maps must be [..., h, w], got {Boxes.ShapeText(f)}", nameof(featureMaps));
        var grids = featureMaps.Select(f => (f.Size(-2), f.Size(-1))).ToArray();
        return Forward((images.Size(-2), images.Size(-1)), imageSizes.Count, grids, featureMaps[0].DType, featureMaps[0].Device);
    }

    // Base anchors in float32, in torchvision's order: ratios outer, sizes inner.
    private static float[] BaseAnchors(IReadOnlyList<int> sizes, IReadOnlyList<double> ratios)
    {
        var cell = new float[sizes.Count * ratios.Count * 4];
        int k = 0;
        foreach (var ratio in ratios)
        {
            float hr = MathF.Sqrt((float)ratio);
            float wr = 1f / hr;
            foreach (var size in sizes)
            {
                float ws = wr * size, hs = hr * size;
                cell[k++] = MathF.Round(-ws / 2f);
                cell[k++] = MathF.Round(-hs / 2f);
                cell[k++] = MathF.Round(ws / 2f);
                cell[k++] = MathF.Round(hs / 2f);
            }
        }
        return cell;
    }
}
