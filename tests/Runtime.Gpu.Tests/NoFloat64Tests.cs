using System.Runtime.InteropServices;
using Runtime.Backends;
using Runtime.Gpu.OpenCL;

namespace Runtime.Gpu.Tests;

/// <summary>An OpenCL device without cl_khr_fp64 (simulated on a second instance): Float32 works, Float64 says why not.</summary>
public class NoFloat64Tests
{
    private static bool HasOpenCL => OpenCLBackend.Enumerate().Reason == null;

    [GpuFact]
    public void Float32Works_Float64IsRefused_ConversionsGoThroughTheHost()
    {
        if (!HasOpenCL) return;
        using var b = OpenCLBackend.Create(0, allowFp64: false);
        Assert.False(b.SupportsFloat64);
        var f = b.Allocate(4 * 4);
        var d = b.Allocate(4 * 8);
        var xs = new float[] { 1, -2, 3.5f, 0 };
        b.Upload(MemoryMarshal.AsBytes(xs.AsSpan()), f, 0);
        var fv = new TensorView(f, 0, [4], [1], DType.Float32);
        var dv = new TensorView(d, 0, [4], [1], DType.Float64);
        b.Unary(UnaryOp.Exp, fv, fv, 0, 0);
        b.Copy(fv, dv); // through the host
        var back = new double[4];
        b.Download(d, 0, MemoryMarshal.AsBytes(back.AsSpan()));
        for (int i = 0; i < 4; i++) Assert.Equal(Math.Exp(xs[i]), back[i], 1e-6 * Math.Exp(xs[i]));
        var e = Assert.Throws<NotSupportedException>(() => b.Unary(UnaryOp.Exp, dv, dv, 0, 0));
        Assert.Contains("double", e.Message);
    }
}
