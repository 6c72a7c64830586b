using Runtime.Cpu;

namespace Runtime.Tests;

/// <summary>
/// The CPU buffer pool's large tier (<see cref="SegmentAllocator"/>: best fit, splitting, merging of neighbours,
/// release of whole free segments) on fresh instances, and the process-wide pool's counters.
/// </summary>
[Collection(PoolCounterCollection.Name)]
public unsafe class BufferPoolTests
{
    private const long MiB = 1L << 20;

    private static void Settle()
    {
        // Leaked tensors of earlier tests go back to the pool when finalized: let that happen first.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        BufferPool.EmptyCache();
    }

    [Fact]
    public void LargeBlock_IsSplit_AndItsPiecesMergeBack()
    {
        var pool = new SegmentAllocator();
        var (big, bigCap) = pool.Rent(48 * MiB);
        Assert.Equal(48 * MiB, bigCap);
        Assert.Equal(48 * MiB, pool.SegmentBytes);
        Assert.Equal(48 * MiB, pool.Return(big));

        // Two 20 MiB requests are carved out of the freed 48 MiB block, back to back, without a new segment.
        var (a, aCap) = pool.Rent(20 * MiB);
        var (b, bCap) = pool.Rent(20 * MiB);
        Assert.Equal(big, a);
        Assert.Equal(big + (nint)(20 * MiB), b);
        Assert.Equal((20 * MiB, 20 * MiB), (aCap, bCap));
        Assert.Equal(48 * MiB, pool.SegmentBytes);
        Assert.Equal(8 * MiB, pool.FreeBytes); // the tail, split off and free

        // The pieces do not overlap: each keeps what was written to it.
        new Span<byte>((void*)a, (int)aCap).Fill(1);
        new Span<byte>((void*)b, (int)bCap).Fill(2);
        Assert.Equal(20 * MiB, Sum(a, aCap));
        Assert.Equal(40 * MiB, Sum(b, bCap));

        // Returned in either order, the pieces merge into the whole block again, which then serves 46 MiB.
        pool.Return(b);
        pool.Return(a);
        Assert.Equal(48 * MiB, pool.FreeBytes);
        var (c, cCap) = pool.Rent(46 * MiB);
        Assert.Equal(big, c);
        Assert.Equal(46 * MiB, cCap);
        Assert.Equal(2 * MiB, pool.FreeBytes); // 2 MiB left over is worth splitting off
        Assert.Equal(48 * MiB, pool.SegmentBytes);

        // A remainder of at most 1 MiB stays with the block.
        pool.Return(c);
        var (d, dCap) = pool.Rent(47 * MiB + 1);
        Assert.Equal((big, 48 * MiB), (d, dCap));
        pool.Return(d);

        pool.ReleaseFreeSegments(long.MaxValue);
        Assert.Equal((0L, 0L), (pool.SegmentBytes, pool.FreeBytes));
    }

    [Fact]
    public void MiddleBlock_MergesWithBothNeighbours()
    {
        var pool = new SegmentAllocator();
        var (a, _) = pool.Rent(4 * MiB);
        var (b, _) = pool.Rent(4 * MiB);
        var (c, _) = pool.Rent(4 * MiB);
        Assert.Equal(20 * MiB, pool.SegmentBytes); // requests under 10 MiB share a 20 MiB segment
        Assert.Equal((a + (nint)(4 * MiB), a + (nint)(8 * MiB)), (b, c));
        pool.Return(a);
        pool.Return(c); // merges with the free tail
        Assert.Equal(16 * MiB, pool.FreeBytes);
        pool.Return(b); // joins both neighbours: the segment is whole again and can be released
        pool.ReleaseFreeSegments(1);
        Assert.Equal((0L, 0L), (pool.SegmentBytes, pool.FreeBytes));
    }

    [Fact]
    public void Miss_ReleasesWholeFreeSegments_BeforeTakingMore()
    {
        var pool = new SegmentAllocator();
        var (a, aCap) = pool.Rent(12 * MiB + 1);
        Assert.Equal(12 * MiB + 512, aCap); // blocks round to 512 bytes
        Assert.Equal(14 * MiB, pool.SegmentBytes); // segments to 2 MiB
        pool.Return(a);
        Assert.Equal(14 * MiB, pool.FreeBytes);

        // 30 MiB does not fit the free 14 MiB segment: that one goes back to the OS and a 30 MiB one is made.
        var (b, _) = pool.Rent(30 * MiB);
        Assert.Equal(30 * MiB, pool.SegmentBytes);
        Assert.Equal(0, pool.FreeBytes);

        // A segment with a block in use is kept.
        pool.ReleaseFreeSegments(long.MaxValue);
        Assert.Equal(30 * MiB, pool.SegmentBytes);
        pool.Return(b);
        pool.ReleaseFreeSegments(long.MaxValue);
        Assert.Equal(0, pool.SegmentBytes);
    }

    [CpuFact("BufferPool counters")]
    public void ReturningALargeBufferTwice_Throws()
    {
        var (a, aCap) = BufferPool.Rent(2 * MiB);
        BufferPool.Return((byte*)a, aCap);
        var e = Assert.Throws<InvalidOperationException>(() => BufferPool.Return((byte*)a, aCap));
        Assert.Contains("returned twice", e.Message);
        BufferPool.EmptyCache();
    }

    [CpuFact("BufferPool counters")]
    public void Peak_TracksTheMostInUse_AndResets()
    {
        Settle();
        BufferPool.ResetPeak();
        long start = BufferPool.BytesInUse;
        Assert.Equal(start, BufferPool.PeakBytesInUse);
        using (var t = Tensor.Full([3 * (int)MiB], 0.5)) // 12 MiB of float32
        using (var s = t.Sum())
        {
            Assert.Equal(1.5 * MiB, s.Item());
            Assert.Equal(start + 12 * MiB + 64, BufferPool.BytesInUse); // the sum takes the smallest class
        }
        using (Tensor.Zeros(1024)) { }
        Assert.Equal(start, BufferPool.BytesInUse);
        // The 12 MiB and the few bytes the sum and its read-back took at the same time.
        Assert.InRange(BufferPool.PeakBytesInUse - start, 12 * MiB + 64, 12 * MiB + 4096);
        BufferPool.ResetPeak();
        Assert.Equal(start, BufferPool.PeakBytesInUse);
    }

    [CpuFact("BufferPool counters")]
    public void LeakedLargeTensor_GoesBackToThePool_WhenFinalized()
    {
        Settle();
        long start = BufferPool.BytesInUse;
        Leak();
        Assert.True(BufferPool.BytesInUse >= start + 8 * MiB);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(start, BufferPool.BytesInUse);
        BufferPool.EmptyCache();

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        static void Leak() => Tensor.Full([2 * (int)MiB], 1.0); // 8 MiB, never disposed
    }

    private static long Sum(nint p, long n)
    {
        long s = 0;
        var span = new ReadOnlySpan<byte>((void*)p, (int)n);
        foreach (var v in span) s += v;
        return s;
    }
}
