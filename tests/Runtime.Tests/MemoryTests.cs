using Runtime.Autograd;
using Runtime.Cpu;

namespace Runtime.Tests;

/// <summary>
/// Tests that read the process-wide <see cref="BufferPool"/> counters run alone, after the parallel ones,
/// so that other tests' allocations do not move the numbers.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PoolCounterCollection
{
    public const string Name = "BufferPool counters";
}

/// <summary>Scopes, disposal, storage lifetime of views, and pool accounting across training steps.</summary>
[Collection(PoolCounterCollection.Name)]
public class MemoryTests
{
    [Fact]
    public void TensorScope_DisposesAllButMovedOut()
    {
        Tensor a, b, kept, moved;
        using (var scope = new TensorScope())
        {
            a = Tensor.Ones(2);
            Assert.Equal(1, scope.Count);
            b = a * 2.0;
            var c = b + 1.0;
            kept = scope.MoveOut(c);
            Assert.Same(c, kept);
            moved = (b * b).MoveToOuterScope();
            Assert.Throws<ArgumentException>(() => scope.MoveOut(kept)); // no longer the scope's
        }
        Assert.True(a.IsDisposed);
        Assert.True(b.IsDisposed);
        Assert.False(kept.IsDisposed);
        Assert.False(moved.IsDisposed);
        TestUtil.AssertClose([3, 3], kept);
        TestUtil.AssertClose([4, 4], moved);
        kept.Dispose();
        moved.Dispose();

        // Tensors created outside any scope are not tracked.
        var outside = Tensor.Zeros(1);
        Assert.Same(outside, outside.MoveToOuterScope());
        using (new TensorScope()) { }
        Assert.False(outside.IsDisposed);
        outside.Dispose();
    }

    [Fact]
    public void TensorScopes_Nest()
    {
        Tensor o1, i1, i2, after, fromInner;
        using (var outer = new TensorScope())
        {
            o1 = Tensor.Ones(1);
            using (var inner = new TensorScope())
            {
                i1 = Tensor.Ones(1);
                i2 = Tensor.Ones(1);
                fromInner = inner.MoveOut(i2); // joins the outer scope
                Assert.Equal(1, inner.Count);
            }
            Assert.True(i1.IsDisposed);
            Assert.False(fromInner.IsDisposed);
            after = Tensor.Ones(1); // the outer scope is current again
            Assert.Equal(3, outer.Count);
            outer.Dispose();
            outer.Dispose(); // idempotent
            Assert.True(o1.IsDisposed);
            Assert.True(fromInner.IsDisposed);
            Assert.True(after.IsDisposed);
        }
        var free = Tensor.Ones(1);
        Assert.False(free.IsDisposed);
        free.Dispose();
    }

    [Fact]
    public void DisposedTensor_ThrowsObjectDisposed()
    {
        var t = Tensor.From(new float[] { 1, 2, 3, 4 }, 2, 2);
        using var other = Tensor.Ones(2, 2);
        t.Dispose();
        t.Dispose(); // twice is fine
        Assert.True(t.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => t.ToArray<float>());
        var one = Tensor.Scalar(1);
        one.Dispose();
        Assert.Throws<ObjectDisposedException>(() => one.Item());
        Assert.Throws<ObjectDisposedException>(() => t + other);
        Assert.Throws<ObjectDisposedException>(() => other * t);
        Assert.Throws<ObjectDisposedException>(() => t.View(4));
        Assert.Throws<ObjectDisposedException>(() => t.Transpose(0, 1));
        Assert.Throws<ObjectDisposedException>(() => t.Sum());
        Assert.Throws<ObjectDisposedException>(() => t.Fill_(0));
        Assert.Throws<ObjectDisposedException>(() => other.CopyFrom(t));
        Assert.Throws<ObjectDisposedException>(() => Tensor.Cat([other, t]));
        Assert.Throws<ObjectDisposedException>(() => t.Device);
        Assert.Equal("tensor(<disposed>)", t.ToString());
    }

    [CpuFact("BufferPool counters")]
    public void View_KeepsBaseStorageAlive()
    {
        long start = BufferPool.BytesInUse;
        var baseT = Tensor.From(new float[] { 0, 1, 2, 3, 4, 5 }, 2, 3);
        long allocated = BufferPool.BytesInUse - start;
        Assert.True(allocated >= 24, $"allocated {allocated}");
        var view = baseT.Slice(1, 1, 3);
        var row = baseT[1];
        baseT.Dispose();
        Assert.Equal(start + allocated, BufferPool.BytesInUse); // still held by the views
        TestUtil.AssertClose([1, 2, 4, 5], view);
        row.Fill_(9);
        TestUtil.AssertClose([1, 2, 9, 9], view);
        view.Dispose();
        Assert.Equal(start + allocated, BufferPool.BytesInUse);
        TestUtil.AssertClose([9, 9, 9], row);
        row.Dispose();
        Assert.Equal(start, BufferPool.BytesInUse);
    }

    [CpuFact("BufferPool counters")]
    public void SavedValues_OutliveDisposedInputs_AndAreFreedByBackward()
    {
        long start = BufferPool.BytesInUse;
        var x = Tensor.From(new double[] { 1, 2 }).RequiresGrad_();
        var h = x.Exp();
        var hh = h * h;
        var y = hh.Sum();
        hh.Dispose();
        h.Dispose();
        x.Dispose();
        y.Backward(); // x's value is still needed (and held) by the graph
        TestUtil.AssertClose([2 * Math.Exp(2), 2 * Math.Exp(4)], x.Grad!, 1e-12, 1e-12);
        x.Grad!.Dispose();
        y.Dispose();
        Assert.Equal(start, BufferPool.BytesInUse);
    }

    /// <summary>Every op, run and disposed outside a scope (forward and backward), returns all its memory.</summary>
    [CpuFact("BufferPool counters")]
    public void Ops_DoNotLeakBuffers()
    {
        var ops = new (string Name, Func<Tensor, Tensor> F)[]
        {
            ("View", x => x.View(4, 3)),
            ("Reshape", x => { using var t = x.MT; return t.Reshape(-1); }),
            ("Slice", x => x.Slice(1, 0, 4, 2)),
            ("Select", x => x[1]),
            ("Expand", x => { using var u = x.Unsqueeze(0); return u.Expand(2, 3, 4); }),
            ("Squeeze", x => { using var u = x.Unsqueeze(1); return u.Squeeze(); }),
            ("Unfold", x => x.Unfold(1, 2, 1)),
            ("Flip", x => x.Flip(0, 1)),
            ("Repeat", x => x.Repeat(2, 1)),
            ("Pad", x => x.Pad([1, -1, 2, 0])),
            ("Cat", x => Tensor.Cat([x, x], 1)),
            ("Stack", x => Tensor.Stack([x, x], 0)),
            ("Split", x => { var p = x.Split(3, 1); try { return p[0] * p[1]; } finally { foreach (var t in p) t.Dispose(); } }),
            ("IndexSelect", x => { using var i = Tensor.From(new long[] { 2, -1, 0 }); return x.IndexSelect(1, i); }),
            ("Gather", x => { using var i = Tensor.From(new long[] { 0, 2, 1, 1, 3, 0 }, 3, 2); return x.Gather(1, i); }),
            ("Scatter", x => { using var i = Tensor.From(new long[] { 2, 0 }, 1, 2); using var s = x.Narrow(0, 0, 1); return x.Scatter(0, i, s); }),
            ("ScatterAdd", x => { using var i = Tensor.From(new long[] { 1, 1, 0, 1 }, 1, 4); using var s = x.Narrow(0, 2, 1); return x.ScatterAdd(0, i, s); }),
            ("MaskedFill", x => { using var m = x.Gt(0); return x.MaskedFill(m, 0); }),
            ("MaskedSelect", x => { using var m = x.Gt(0); return x.MaskedSelect(m); }),
            ("Sort", x => { var (v, i) = x.Sort(0); i.Dispose(); return v; }),
            ("TopK", x => { var (v, i) = x.TopK(2); i.Dispose(); return v; }),
            ("TopK1d", x => { using var r = x.Reshape(-1); var (v, i) = r.TopK(5); i.Dispose(); return v; }),
            ("Contiguous", x => { using var t = x.MT; return t.Contiguous(); }),
            ("ToFloat32", x => { using var f = x.To(DType.Float32); return f.To(DType.Float64); }),
        };
        using var x0 = TestUtil.RandnF64([3, 4], 11);
        // Warm up so that lazily created caches (thread pools, statics) are not counted.
        foreach (var (_, f) in ops)
            using (var y = f(x0)) { }

        var leaks = new List<string>();
        foreach (var (name, f) in ops)
        {
            long start = BufferPool.BytesInUse;
            using (var y = f(x0)) { }
            var x = x0.Clone().RequiresGrad_();
            using (var y = f(x))
            using (var s = y.Sum())
                s.Backward();
            x.Grad!.Dispose();
            x.Dispose();
            long end = BufferPool.BytesInUse;
            if (end != start) leaks.Add($"{name}: {end - start} bytes");
        }
        using (var i = Tensor.RandInt(0, 5, [10], new Generator(1))) { }
        long before = BufferPool.BytesInUse;
        using (var i = Tensor.RandInt(0, 5, [10], new Generator(1))) { }
        if (BufferPool.BytesInUse != before) leaks.Add($"RandInt: {BufferPool.BytesInUse - before} bytes");
        using (var a = Tensor.Arange(10)) { }
        before = BufferPool.BytesInUse;
        using (var a = Tensor.Arange(10)) { }
        using (var a = Tensor.Linspace(0, 1, 10)) { }
        using (var a = Tensor.Randn([10], new Generator(1))) { }
        using (var a = Tensor.Eye(3)) { }
        using (var c = Tensor.From(new long[] { 0, 2 })) using (var o = c.OneHot()) { }
        using (var c = Tensor.Ones(3)) using (var n = c.Nonzero()) { }
        if (BufferPool.BytesInUse != before) leaks.Add($"factories: {BufferPool.BytesInUse - before} bytes");
        Assert.True(leaks.Count == 0, "leaked: " + string.Join(", ", leaks));
    }

    [CpuFact("BufferPool counters")]
    public void MlpTrainingLoop_DoesNotGrowMemory()
    {
        var gen = new Generator(123);
        Tensor w1, w2;
        using (var r1 = Tensor.Randn([2, 16], gen)) w1 = (r1 * 0.5).RequiresGrad_();
        var b1 = Tensor.Zeros(16).RequiresGrad_();
        using (var r2 = Tensor.Randn([16, 1], gen)) w2 = (r2 * 0.25).RequiresGrad_();
        var b2 = Tensor.Zeros(1).RequiresGrad_();
        Tensor[] ps = [w1, b1, w2, b2];
        using var x = Tensor.Randn([32, 2], gen);
        using var target = Tensor.Randn([32, 1], gen);

        void Step()
        {
            using var scope = new TensorScope();
            var h = (x.MatMul(w1) + b1).Tanh();
            var pred = h.MatMul(w2) + b2;
            var diff = pred - target;
            var loss = (diff * diff).Mean();
            loss.Backward();
            using (GradMode.NoGrad())
                foreach (var p in ps)
                {
                    p.AddInPlace(p.Grad!, -0.05);
                    p.Grad!.Dispose();
                    p.Grad = null;
                }
        }

        Step(); // warm-up
        long start = BufferPool.BytesInUse;
        long cachedEarly = 0;
        for (int i = 0; i < 200; i++)
        {
            Step();
            Assert.Equal(start, BufferPool.BytesInUse);
            if (i == 10) cachedEarly = BufferPool.BytesCached;
        }
        Assert.Equal(start, BufferPool.BytesInUse);
        Assert.True(BufferPool.BytesCached <= cachedEarly, $"pool cache grew from {cachedEarly} to {BufferPool.BytesCached}");
        foreach (var p in ps) p.Dispose();
        Assert.True(BufferPool.BytesInUse < start);
    }
}

[Collection(PoolCounterCollection.Name)]
public class MemoryPoolConcurrencyTests
{
    [CpuFact("BufferPool counters")]
    public void BytesInUse_StaysExact_UnderConcurrentAllocation()
    {
        // Tensors other tests leaked leave the count when finalized: let that happen before measuring.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long start = BufferPool.BytesInUse;
        bool stop = false;
        // Emptying the cache forces fresh allocations, which race with returns on other threads.
        var emptier = new Thread(() => { while (!Volatile.Read(ref stop)) BufferPool.EmptyCache(); });
        emptier.Start();
        try
        {
            Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 16 }, _ =>
            {
                var list = new List<Tensor>();
                for (int r = 0; r < 1500; r++)
                {
                    for (int i = 0; i < 20; i++) list.Add(Tensor.Zeros(16 * (i + 1)));
                    foreach (var x in list) x.Dispose();
                    list.Clear();
                }
            });
        }
        finally
        {
            Volatile.Write(ref stop, true);
            emptier.Join();
        }
        Assert.Equal(start, BufferPool.BytesInUse);
    }
}
