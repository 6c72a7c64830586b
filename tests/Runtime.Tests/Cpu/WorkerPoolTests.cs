using Runtime.Cpu;

namespace Runtime.Tests.Cpu;

/// <summary>
/// The CPU kernels' worker pool: every part runs exactly once, no more threads than asked take part, the first
/// exception reaches the caller, and nested or concurrent fork-joins run to completion (inline) instead of deadlocking.
/// </summary>
public class WorkerPoolTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(7, 2)]
    [InlineData(64, 2)]
    [InlineData(5, 8)]
    public void EveryPartRunsOnce(int parts, int threads)
    {
        for (int round = 0; round < 50; round++)
        {
            var counts = new int[parts];
            WorkerPool.Run(parts, threads, p => Interlocked.Increment(ref counts[p]));
            Assert.All(counts, c => Assert.Equal(1, c));
        }
    }

    [Fact]
    public void ZeroPartsDoesNothing()
    {
        bool called = false;
        WorkerPool.Run(0, 2, _ => called = true);
        Assert.False(called);
    }

    [Fact]
    public void AtMostTheAskedThreadsTakePart()
    {
        for (int round = 0; round < 20; round++)
        {
            var ids = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
            WorkerPool.Run(32, 2, _ =>
            {
                ids[Environment.CurrentManagedThreadId] = true;
                Thread.SpinWait(2000);
            });
            Assert.InRange(ids.Count, 1, 2); // the caller and at most one worker
        }

        var oneThread = new HashSet<int>();
        WorkerPool.Run(16, 1, _ => oneThread.Add(Environment.CurrentManagedThreadId));
        Assert.Equal([Environment.CurrentManagedThreadId], oneThread);
    }

    [Fact]
    public void TheFirstExceptionIsRethrownAfterThePartsFinish()
    {
        int ran = 0;
        var e = Assert.Throws<ArgumentException>(() => WorkerPool.Run(10, 2, p =>
        {
            Interlocked.Increment(ref ran);
            if (p == 3) throw new ArgumentException("part 3 failed", "p");
        }));
        Assert.Contains("part 3 failed", e.Message);
        Assert.Equal(10, ran);
        // The pool is usable afterwards.
        int sum = 0;
        WorkerPool.Run(4, 2, p => Interlocked.Add(ref sum, p));
        Assert.Equal(6, sum);
    }

    [Fact]
    public void NestedRunsInlineAndCompletes()
    {
        var counts = new int[6 * 5];
        WorkerPool.Run(6, 2, outer => WorkerPool.Run(5, 2, inner => Interlocked.Increment(ref counts[outer * 5 + inner])));
        Assert.All(counts, c => Assert.Equal(1, c));
    }

    [Fact]
    public void AnInlineRunAlsoFinishesItsPartsBeforeRethrowing()
    {
        int ran = 0;
        // One thread: the parts run inline on the caller.
        var e = Assert.Throws<InvalidOperationException>(() => WorkerPool.Run(6, 1, p =>
        {
            Interlocked.Increment(ref ran);
            if (p == 1) throw new InvalidOperationException("inline part 1");
        }));
        Assert.Equal("inline part 1", e.Message);
        Assert.Equal(6, ran);
    }

    [Fact]
    public void ConcurrentCallersAllComplete()
    {
        const int callers = 4, rounds = 200, parts = 9;
        var totals = new long[callers];
        var threads = Enumerable.Range(0, callers).Select(t => new Thread(() =>
        {
            for (int r = 0; r < rounds; r++)
                WorkerPool.Run(parts, 2, p => Interlocked.Add(ref totals[t], p + 1));
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(60)));
        Assert.All(totals, s => Assert.Equal(rounds * parts * (parts + 1) / 2, s));
    }

    [Fact]
    public void WorkersThatSleptWakeForTheNextJob()
    {
        int saved = WorkerPool.SpinMicroseconds;
        try
        {
            WorkerPool.SpinMicroseconds = 0; // idle workers go straight to sleep
            for (int round = 0; round < 20; round++)
            {
                Thread.Sleep(2);
                var counts = new int[4];
                WorkerPool.Run(4, 2, p => Interlocked.Increment(ref counts[p]));
                Assert.All(counts, c => Assert.Equal(1, c));
            }
        }
        finally
        {
            WorkerPool.SpinMicroseconds = saved;
        }
    }
}
