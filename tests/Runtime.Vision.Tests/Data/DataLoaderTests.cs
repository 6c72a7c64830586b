using Runtime.Vision.Data;

namespace Runtime.Vision.Tests.Data;

public class DataLoaderTests
{
    private static IDataset<int> Numbers(int n, int delayMs = 0) =>
        Dataset.FromFunc(n, i =>
        {
            if (delayMs > 0) Thread.Sleep(delayMs);
            return i;
        });

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void BatchesInOrderWithALastPartialBatch(int workers)
    {
        using var loader = new DataLoader<int>(Numbers(10), new DataLoaderOptions { BatchSize = 4, NumWorkers = workers });
        Assert.Equal(3, loader.BatchCount);
        var batches = loader.ToList();
        Assert.Equal([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]], batches);
    }

    [Fact]
    public void DropLastLeavesOutThePartialBatch()
    {
        using var loader = new DataLoader<int>(Numbers(10), new DataLoaderOptions { BatchSize = 4, DropLast = true, NumWorkers = 2 });
        Assert.Equal(2, loader.BatchCount);
        Assert.Equal([[0, 1, 2, 3], [4, 5, 6, 7]], loader.ToList());
    }

    [Fact]
    public void ShuffleIsDeterministicGivenSeedAndEpochAndDiffersBetweenEpochs()
    {
        var options = new DataLoaderOptions { BatchSize = 3, Shuffle = true, Seed = 99, NumWorkers = 2 };
        using var a = new DataLoader<int>(Numbers(50), options);
        using var b = new DataLoader<int>(Numbers(50), options with { NumWorkers = 0 });
        var a0 = a.Epoch(0).SelectMany(x => x).ToArray();
        var a1 = a.Epoch(1).SelectMany(x => x).ToArray();
        Assert.Equal(a0, b.Epoch(0).SelectMany(x => x).ToArray());
        Assert.Equal(a1, b.Epoch(1).SelectMany(x => x).ToArray());
        Assert.NotEqual(a0, a1);
        Assert.NotEqual(Enumerable.Range(0, 50), a0);
        Assert.Equal(Enumerable.Range(0, 50), a0.Order());
        Assert.Equal(a.SampleOrder(1), a1);
        // foreach walks the epochs one after another.
        Assert.Equal(a0, a.SelectMany(x => x).ToArray());
        Assert.Equal(a1, a.SelectMany(x => x).ToArray());
        using var c = new DataLoader<int>(Numbers(50), options with { Seed = 100 });
        Assert.NotEqual(a0, c.Epoch(0).SelectMany(x => x).ToArray());
    }

    [Fact]
    public void WorkersLoadInParallelAndStillDeliverInOrder()
    {
        // Samples take longer the smaller their index, so workers finish out of order.
        var ds = Dataset.FromFunc(12, i =>
        {
            Thread.Sleep((12 - i) * 3);
            return i;
        });
        var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        var tracked = Dataset.Select(ds, i =>
        {
            threads[Environment.CurrentManagedThreadId] = true;
            return i;
        });
        using var loader = new DataLoader<int>(tracked, new DataLoaderOptions { BatchSize = 1, NumWorkers = 4 });
        Assert.Equal(Enumerable.Range(0, 12).Select(i => new[] { i }), loader.ToList());
        Assert.True(threads.Count >= 2, "samples should load on several threads");
        Assert.DoesNotContain(Environment.CurrentManagedThreadId, threads.Keys);
    }

    [Fact]
    public void CollateBuildsTheBatch()
    {
        using var loader = new DataLoader<int, int>(Numbers(7), s => s.Sum(), new DataLoaderOptions { BatchSize = 3, NumWorkers = 2 });
        Assert.Equal([3, 12, 6], loader.ToList());
    }

    private sealed class Boom(string message) : Exception(message);

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void AnExceptionInAWorkerReachesTheConsumerAtItsBatch(int workers)
    {
        var ds = Dataset.FromFunc(20, i => i == 9 ? throw new Boom("sample 9 is broken") : i);
        using var loader = new DataLoader<int>(ds, new DataLoaderOptions { BatchSize = 2, NumWorkers = workers });
        var seen = new List<int[]>();
        var e = Assert.Throws<Boom>(() =>
        {
            foreach (var b in loader) seen.Add(b);
        });
        Assert.Equal("sample 9 is broken", e.Message);
        Assert.Equal([[0, 1], [2, 3], [4, 5], [6, 7]], seen);
    }

    private sealed class Tracked : IDisposable
    {
        public static int Live;

        public Tracked() => Interlocked.Increment(ref Live);

        public bool Disposed { get; private set; }

        public void Dispose()
        {
            if (Disposed) return;
            Disposed = true;
            Interlocked.Decrement(ref Live);
        }
    }

    [Fact]
    public void LeavingEarlyStopsWorkersAndDisposesWhatWasLoadedAhead()
    {
        int loaded = 0;
        var ds = Dataset.FromFunc(100, _ =>
        {
            Interlocked.Increment(ref loaded);
            return new Tracked();
        });
        Tracked.Live = 0;
        using (var loader = new DataLoader<Tracked>(ds, new DataLoaderOptions { BatchSize = 2, NumWorkers = 2, PrefetchFactor = 2 }))
        {
            foreach (var batch in loader)
            {
                foreach (var t in batch) t.Dispose();
                Thread.Sleep(50); // let the workers fill the queue
                break;
            }
        }
        // At most NumWorkers * PrefetchFactor batches are loaded ahead of the consumer.
        Assert.InRange(loaded, 2, 2 * (1 + 2 * 2) + 2 * 2);
        Assert.Equal(0, Tracked.Live);
    }

    [Fact]
    public void FailedBatchesDisposeTheirLoadedSamples()
    {
        Tracked.Live = 0;
        var ds = Dataset.FromFunc(4, i => i == 1 ? throw new Boom("x") : new Tracked());
        using var loader = new DataLoader<Tracked>(ds, new DataLoaderOptions { BatchSize = 4, NumWorkers = 1 });
        Assert.Throws<Boom>(() => loader.ToList());
        Assert.Equal(0, Tracked.Live);
    }

    [Fact]
    public void CancellationStopsLoading()
    {
        using var cts = new CancellationTokenSource();
        using var loader = new DataLoader<int>(Numbers(1000, delayMs: 2), new DataLoaderOptions { BatchSize = 1, NumWorkers = 2 });
        int n = 0;
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var _ in loader.Epoch(0, cts.Token))
                if (++n == 3) cts.Cancel();
        });
        Assert.Equal(3, n);
        using var serial = new DataLoader<int>(Numbers(10), new DataLoaderOptions { NumWorkers = 0 });
        Assert.ThrowsAny<OperationCanceledException>(() => serial.Epoch(0, cts.Token).ToList());
    }

    private sealed class OwnedDataset : IDataset<int>, IDisposable
    {
        public bool Disposed;

        public int Count => 3;

        public int Get(int index) => index;

        public void Dispose() => Disposed = true;
    }

    [Fact]
    public void DisposesTheDatasetItOwns()
    {
        var owned = new OwnedDataset();
        var notOwned = new OwnedDataset();
        new DataLoader<int>(owned, new DataLoaderOptions { OwnsDataset = true }).Dispose();
        new DataLoader<int>(notOwned).Dispose();
        Assert.True(owned.Disposed);
        Assert.False(notOwned.Disposed);
        var loader = new DataLoader<int>(notOwned);
        loader.Dispose();
        Assert.Throws<ObjectDisposedException>(() => loader.Epoch(0));
    }

    [Fact]
    public void RandomTransformsDependOnSeedEpochAndIndexNotOnWorkers()
    {
        var noisy = new NoiseTransform();
        var ds = Dataset.WithTransform(Numbers(16), noisy, seed: 5);
        double[] Run(int workers, int epoch)
        {
            using var l = new DataLoader<double, double[]>(Dataset.Select(ds, i => (double)i), s => s.ToArray(), new DataLoaderOptions { BatchSize = 4, NumWorkers = workers });
            return l.Epoch(epoch).SelectMany(x => x).ToArray();
        }
        var a = Run(0, 0);
        Assert.Equal(a, Run(3, 0));
        Assert.NotEqual(a, Run(3, 1));
    }

    private sealed class NoiseTransform : ITransform<int>
    {
        public int Apply(int sample, Generator random) => sample * 1000 + (int)random.NextInt64(0, 1000);
    }

    [Fact]
    public void BadOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader<int>(Numbers(3), new DataLoaderOptions { BatchSize = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader<int>(Numbers(3), new DataLoaderOptions { NumWorkers = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dataset.Subset(Numbers(3), [0, 3]));
        Assert.Equal([2, 0], Dataset.Subset(Numbers(3), [2, 0]) is var s ? new[] { s.Get(0), s.Get(1) } : null);
    }
}
