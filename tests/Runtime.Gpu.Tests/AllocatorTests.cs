using System.Runtime.CompilerServices;
using Runtime.Autograd;

namespace Runtime.Gpu.Tests;

/// <summary>The caching allocator: reuse of freed blocks, emptying the cache, finalized tensors, no leaks across ops.</summary>
public class AllocatorTests
{
    [GpuFact]
    public void FreedBlock_IsReused_ForTheSameSizeClass()
    {
        var b = GpuTestDevice.Backend;
        using (Tensor.Zeros([1000], DType.Float32, Parity.Gpu)) { }
        long inUse = b.BytesInUse, driver = b.DriverAllocations, hits = b.CacheHits;
        using (var t = Tensor.Zeros([1000], DType.Float32, Parity.Gpu))
        {
            Assert.Equal(driver, b.DriverAllocations);
            Assert.Equal(hits + 1, b.CacheHits);
            Assert.True(b.BytesInUse >= inUse + 4000);
        }
        Assert.Equal(inUse, b.BytesInUse);
    }

    [GpuFact]
    public void EmptyCache_ReturnsCachedBlocks()
    {
        var b = GpuTestDevice.Backend;
        using (Tensor.Zeros([123457], DType.Float32, Parity.Gpu)) { }
        Assert.True(b.BytesCached > 0);
        long inUse = b.BytesInUse;
        b.EmptyCache();
        Assert.Equal(0, b.BytesCached);
        Assert.Equal(inUse, b.BytesInUse);
        using var again = Tensor.Ones([3], DType.Float32, Parity.Gpu);
        Assert.Equal([1.0, 1, 1], again.ToDoubleArray());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Leak(int n)
    {
        for (int i = 0; i < n; i++) Tensor.Zeros([256 + i], DType.Float32, Parity.Gpu);
    }

    [GpuFact]
    public void FinalizedTensors_GiveTheirBlocksBack_OnTheNextAllocation()
    {
        var b = GpuTestDevice.Backend;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using (Tensor.Zeros([1], DType.Float32, Parity.Gpu)) { } // takes back what earlier tests leaked
        long start = b.BytesInUse;
        Leak(20);
        Assert.True(b.BytesInUse > start);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        // The finalizer only queued the blocks: the next allocation (on this thread) takes them back.
        using (Tensor.Zeros([1], DType.Float32, Parity.Gpu)) { }
        Assert.Equal(start, b.BytesInUse);
    }

    [GpuFact]
    public void TrainingSteps_ReturnEveryBlock()
    {
        var b = GpuTestDevice.Backend;
        var dev = Parity.Gpu;
        var gen = new Generator(3);
        var x = Tensor.Randn([32, 8], gen, DType.Float32, dev);
        var w = Tensor.Randn([8, 4], gen, DType.Float32, dev).RequiresGrad_();
        var target = Tensor.Randn([32, 4], gen, DType.Float32, dev);
        void Step()
        {
            using var scope = new TensorScope();
            var y = x.MatMul(w).Tanh().Softmax(-1);
            var loss = ((y - target) * (y - target)).Mean();
            loss.Backward();
            using (GradMode.NoGrad()) w.AddInPlace(w.Grad!, -0.1);
            w.Grad!.Dispose();
            w.Grad = null;
        }
        Step();
        long start = b.BytesInUse, driver = b.DriverAllocations;
        for (int i = 0; i < 20; i++) Step();
        Assert.Equal(start, b.BytesInUse);
        Assert.Equal(driver, b.DriverAllocations); // every step's blocks came from the cache
        x.Dispose();
        w.Dispose();
        target.Dispose();
    }

    [GpuFact]
    public void Ops_ReturnTheirMemory()
    {
        var b = GpuTestDevice.Backend;
        using var x = Parity.Randn(1, DType.Float32, 5, 40).To(Parity.Gpu);
        long start = b.BytesInUse;
        Func<Tensor, Tensor>[] ops =
        [
            t => t.Sum(), t => t.Sum(0), t => t.Max(1).Values, t => t.Argmax(1), t => t.Softmax(0), t => t.CumSum(1),
            t => t.Sort(1).Values, t => t.MatMul(t.MT), t => t.Exp() + t, t => t.Gt(0.0),
        ];
        foreach (var op in ops)
        {
            using var scope = new TensorScope();
            op(x);
        }
        b.Synchronize();
        Assert.Equal(start, b.BytesInUse);
    }

    [GpuFact]
    public void SizeClasses_CoverTheRequest()
    {
        foreach (long n in new long[] { 0, 1, 511, 512, 513, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 123_456_789 })
        {
            long c = CachingAllocator.SizeClass(n);
            Assert.True(c >= n && c >= 512, $"{n} -> {c}");
            Assert.True(n < 1 << 20 || c <= n * 1.13, $"{n} -> {c} wastes too much");
        }
    }
}
