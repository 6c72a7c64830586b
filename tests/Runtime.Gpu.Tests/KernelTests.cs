namespace Runtime.Gpu.Tests;

/// <summary>Compiling kernels: the disk cache, and compile errors that name the kernel and carry the log.</summary>
public class KernelTests
{
    private const string Source = """
        KERNEL void scale(GLOBAL float* x, float a, i64 n)
        {
            i64 i = GROUP_ID(0) * LOCAL_SIZE(0) + LOCAL_ID(0);
            if (i < n) x[i] *= a;
        }
        """;

    [GpuFact]
    public void SecondBuild_LoadsTheBinaryFromTheDiskCache()
    {
        var dir = Path.Combine(Path.GetTempPath(), "runtime-kernel-cache-test-" + Guid.NewGuid().ToString("N"));
        var old = Environment.GetEnvironmentVariable("RUNTIME_KERNEL_CACHE");
        Environment.SetEnvironmentVariable("RUNTIME_KERNEL_CACHE", dir);
        try
        {
            var b = GpuTestDevice.Backend;
            string src = $"// {Guid.NewGuid()}\n" + Source;
            int compiled = b.ProgramsCompiled, cached = b.ProgramsFromCache;
            long stores = KernelCache.Stores, hits = KernelCache.Hits;
            b.CompileSource("scale", src, "scale");
            Assert.Equal(compiled + 1, b.ProgramsCompiled);
            Assert.Equal(stores + 1, KernelCache.Stores);
            Assert.Single(Directory.GetFiles(dir));
            b.CompileSource("scale", src, "scale");
            Assert.Equal(compiled + 1, b.ProgramsCompiled);
            Assert.Equal(cached + 1, b.ProgramsFromCache);
            Assert.Equal(hits + 1, KernelCache.Hits);
        }
        finally
        {
            Environment.SetEnvironmentVariable("RUNTIME_KERNEL_CACHE", old);
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [GpuFact]
    public void CorruptCacheEntry_IsRebuilt()
    {
        var dir = Path.Combine(Path.GetTempPath(), "runtime-kernel-cache-test-" + Guid.NewGuid().ToString("N"));
        var old = Environment.GetEnvironmentVariable("RUNTIME_KERNEL_CACHE");
        Environment.SetEnvironmentVariable("RUNTIME_KERNEL_CACHE", dir);
        try
        {
            var b = GpuTestDevice.Backend;
            string src = $"// {Guid.NewGuid()}\n" + Source;
            b.CompileSource("scale", src, "scale");
            foreach (var f in Directory.GetFiles(dir)) File.WriteAllBytes(f, [1, 2, 3]);
            int compiled = b.ProgramsCompiled;
            var k = b.CompileSource("scale", src, "scale");
            Assert.Equal(compiled + 1, b.ProgramsCompiled);
            Assert.NotEqual(0, k.Handle);
        }
        finally
        {
            Environment.SetEnvironmentVariable("RUNTIME_KERNEL_CACHE", old);
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [GpuFact]
    public void CompileError_NamesTheKernel_AndCarriesTheLog()
    {
        var b = GpuTestDevice.Backend;
        var e = Assert.Throws<KernelCompileException>(() =>
            b.CompileSource("broken_kernel", "KERNEL void broken(GLOBAL float* x) { x[0] = no_such_variable; }", "broken"));
        Assert.Equal("broken_kernel", e.Kernel);
        Assert.Contains("broken_kernel", e.Message);
        Assert.Contains("no_such_variable", e.Message);
        Assert.Contains(b.Device.ToString(), e.Message);
    }

    [GpuFact]
    public void EveryKernelFile_CompilesForEveryDtype()
    {
        // Touch each program once so a dialect slip in a rarely used path shows here, not in a user's run.
        var b = GpuTestDevice.Backend;
        foreach (var t in new[] { DType.Bool, DType.Int32, DType.Int64, DType.Float32, DType.Float64 })
        {
            if (t == DType.Float64 && !b.SupportsFloat64) continue;
            lock (b.Gate)
            {
                var d = GpuDialect.TypeDefines(t);
                b.Kernel("elementwise", d, "unary");
                b.Kernel("elementwise", d, "compare");
                b.Kernel("reduce", d, "reduce");
                b.Kernel("reduce", d, "arg_reduce");
                b.Kernel("sort", d + "#define SORT_LOCAL 2048\n", "sort_step");
                if (t != DType.Bool)
                {
                    b.Kernel("index", d, "index_add_sorted");
                    b.Kernel("reduce", d, "cumsum_rows");
                    b.Kernel("matmul", d + "#define BM 64\n#define BN 64\n#define BK 16\n#define TM 4\n#define TN 4\n", "matmul");
                }
                if (t.IsFloating()) b.Kernel("softmax", d, "softmax");
                foreach (var to in new[] { DType.Bool, DType.Int32, DType.Int64, DType.Float32, DType.Float64 })
                    if (to != DType.Float64 || b.SupportsFloat64) b.Kernel("copy", GpuDialect.CopyDefines(t, to), "copy");
            }
        }
    }
}
