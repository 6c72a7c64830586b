namespace Runtime.Vision.Data;

/// <summary>
/// Host-side resampling of planar (CHW / HW) arrays with torch.nn.functional.interpolate's index
/// rules: bilinear with align_corners=False and nearest (the legacy "nearest" mode), output size
/// given, so the source scale is (float)in / out per axis.
/// </summary>
public static class Resize
{
    /// <summary>Bilinear resize of <paramref name="channels"/> planes of h x w floats to outH x outW (align_corners false).</summary>
    public static float[] Bilinear(ReadOnlySpan<float> src, int channels, int height, int width, int outHeight, int outWidth)
    {
        CheckSizes(src.Length, channels, height, width, outHeight, outWidth);
        var dst = new float[(long)channels * outHeight * outWidth];
        var (y0, y1, wy0, wy1) = LinearTaps(height, outHeight);
        var (x0, x1, wx0, wx1) = LinearTaps(width, outWidth);
        int planeIn = height * width, planeOut = outHeight * outWidth;
        for (int c = 0; c < channels; c++)
        {
            var s = src.Slice(c * planeIn, planeIn);
            var d = dst.AsSpan(c * planeOut, planeOut);
            for (int oy = 0; oy < outHeight; oy++)
            {
                var r0 = s.Slice(y0[oy] * width, width);
                var r1 = s.Slice(y1[oy] * width, width);
                float a = wy0[oy], b = wy1[oy];
                var row = d.Slice(oy * outWidth, outWidth);
                for (int ox = 0; ox < outWidth; ox++)
                {
                    int i0 = x0[ox], i1 = x1[ox];
                    float l = wx0[ox], r = wx1[ox];
                    // Same grouping as ATen's separable CPU kernel: rows first (W), then H.
                    float top = r0[i0] * l + r0[i1] * r;
                    float bottom = r1[i0] * l + r1[i1] * r;
                    row[ox] = top * a + bottom * b;
                }
            }
        }
        return dst;
    }

    /// <summary>Nearest resize (torch mode "nearest": src = min(floor(dst * in/out), in-1)) of planes of any element type.</summary>
    public static T[] Nearest<T>(ReadOnlySpan<T> src, int planes, int height, int width, int outHeight, int outWidth) where T : unmanaged
    {
        CheckSizes(src.Length, planes, height, width, outHeight, outWidth);
        var dst = new T[(long)planes * outHeight * outWidth];
        var ys = NearestTaps(height, outHeight);
        var xs = NearestTaps(width, outWidth);
        int planeIn = height * width, planeOut = outHeight * outWidth;
        for (int c = 0; c < planes; c++)
        {
            var s = src.Slice(c * planeIn, planeIn);
            var d = dst.AsSpan(c * planeOut, planeOut);
            for (int oy = 0; oy < outHeight; oy++)
            {
                var r = s.Slice(ys[oy] * width, width);
                var row = d.Slice(oy * outWidth, outWidth);
                for (int ox = 0; ox < outWidth; ox++) row[ox] = r[xs[ox]];
            }
        }
        return dst;
    }

    /// <summary>Source rows and weights of bilinear interpolation along one axis (ATen's compute_source_index_and_lambda).</summary>
    internal static (int[] I0, int[] I1, float[] W0, float[] W1) LinearTaps(int inSize, int outSize)
    {
        var i0 = new int[outSize];
        var i1 = new int[outSize];
        var w0 = new float[outSize];
        var w1 = new float[outSize];
        float scale = (float)inSize / outSize;
        for (int o = 0; o < outSize; o++)
        {
            if (inSize == outSize)
            {
                i0[o] = i1[o] = o;
                w0[o] = 1;
                continue;
            }
            float real = scale * (o + 0.5f) - 0.5f;
            if (real < 0) real = 0;
            int idx = (int)real;
            i0[o] = idx;
            i1[o] = idx + (idx < inSize - 1 ? 1 : 0);
            float l1 = Math.Min(Math.Max(real - idx, 0f), 1f);
            w1[o] = l1;
            w0[o] = 1f - l1;
        }
        return (i0, i1, w0, w1);
    }

    /// <summary>Source indices of nearest interpolation along one axis (ATen's nearest_idx).</summary>
    internal static int[] NearestTaps(int inSize, int outSize)
    {
        var idx = new int[outSize];
        float scale = (float)inSize / outSize;
        for (int o = 0; o < outSize; o++)
            idx[o] = inSize == outSize ? o
                : outSize == 2 * inSize ? o >> 1
                : Math.Min((int)MathF.Floor(o * scale), inSize - 1);
        return idx;
    }

    private static void CheckSizes(int length, int planes, int height, int width, int outHeight, int outWidth)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(planes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        if ((long)planes * height * width != length)
            throw new ArgumentException($"{length} values are not {planes} planes of {height}x{width}", nameof(length));
    }
}
