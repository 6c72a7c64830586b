using System.Collections;
using System.Runtime.ExceptionServices;

namespace Runtime.Vision.Data;

/// <summary>Settings of a <see cref="DataLoader{T,TBatch}"/> (the arguments of torch.utils.data.DataLoader).</summary>
public sealed record DataLoaderOptions
{
    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>Visit the samples in a random order, a different one each epoch.</summary>
    public bool Shuffle { get; init; }

    /// <summary>Seed of the shuffle: epoch e's order depends only on (Seed, e).</summary>
    public ulong Seed { get; init; }

    /// <summary>Background threads loading batches; 0 loads on the consumer's thread.</summary>
    public int NumWorkers { get; init; }

    /// <summary>Batches each worker may load ahead of the consumer (the queue holds NumWorkers * PrefetchFactor).</summary>
    public int PrefetchFactor { get; init; } = 2;

    /// <summary>Leave out a last batch smaller than <see cref="BatchSize"/>.</summary>
    public bool DropLast { get; init; }

    /// <summary>Dispose the data set (when it is <see cref="IDisposable"/>) with the loader.</summary>
    public bool OwnsDataset { get; init; }
}

/// <summary>
/// Iterates a data set in batches: orders the indices (shuffled per epoch when asked), groups them,
/// loads each batch's samples and hands them to a collate function. With workers, whole batches are
/// loaded on background threads into a bounded queue and come out in order.
/// <para>
/// Ownership: collate receives the loaded samples and owns them; the consumer owns each batch it
/// receives. Batches loaded ahead but never consumed (a loop left early, an error, cancellation) are
/// disposed when they are <see cref="IDisposable"/>, as are samples of a batch whose loading failed.
/// An exception thrown while loading reaches the consumer, with its type, at the batch it belongs to.
/// </para>
/// </summary>
public class DataLoader<T, TBatch> : IEnumerable<TBatch>, IDisposable
{
    private readonly IDataset<T> _dataset;
    private readonly Func<IReadOnlyList<T>, TBatch> _collate;
    private readonly List<WorkerPool> _active = new();
    private readonly object _gate = new();
    private int _nextEpoch;
    private bool _disposed;

    public DataLoader(IDataset<T> dataset, Func<IReadOnlyList<T>, TBatch> collate, DataLoaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(collate);
        options ??= new DataLoaderOptions();
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be positive");
        if (options.NumWorkers < 0) throw new ArgumentOutOfRangeException(nameof(options), options.NumWorkers, "NumWorkers must not be negative");
        if (options.PrefetchFactor <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.PrefetchFactor, "PrefetchFactor must be positive");
        _dataset = dataset;
        _collate = collate;
        Options = options;
    }

    public DataLoaderOptions Options { get; }

    public IDataset<T> Dataset => _dataset;

    /// <summary>Batches per epoch.</summary>
    public int BatchCount => Options.DropLast ? _dataset.Count / Options.BatchSize : (_dataset.Count + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>The epoch that the next plain enumeration (foreach) will load; each one advances it.</summary>
    public int NextEpoch
    {
        get => _nextEpoch;
        set => _nextEpoch = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "epoch must not be negative");
    }

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the samples.</summary>
    public int[] SampleOrder(int epoch)
    {
        var order = new int[_dataset.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (!Options.Shuffle) return order;
        var g = new Generator(Data.Dataset.MixSeed(Options.Seed, epoch, 0x5417F1E));
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = (int)g.NextInt64(0, i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>The sample indices of each batch of epoch <paramref name="epoch"/>.</summary>
    public int[][] BatchIndices(int epoch)
    {
        var order = SampleOrder(epoch);
        int bs = Options.BatchSize;
        var res = new int[BatchCount][];
        for (int b = 0; b < res.Length; b++)
            res[b] = order.AsSpan(b * bs, Math.Min(bs, order.Length - b * bs)).ToArray();
        return res;
    }

    /// <summary>Loads the next epoch (see <see cref="NextEpoch"/>).</summary>
    public IEnumerator<TBatch> GetEnumerator() => Epoch(_nextEpoch++).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The batches of epoch <paramref name="epoch"/>; loading starts when enumeration does.</summary>
    public IEnumerable<TBatch> Epoch(int epoch, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        return Options.NumWorkers == 0 ? Serial(epoch, cancellationToken) : Parallel(epoch, cancellationToken);
    }

    private IEnumerable<TBatch> Serial(int epoch, CancellationToken ct)
    {
        (_dataset as IEpochAware)?.SetEpoch(epoch);
        foreach (var indices in BatchIndices(epoch))
        {
            ct.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(_disposed, this);
            yield return LoadBatch(indices);
        }
    }

    private IEnumerable<TBatch> Parallel(int epoch, CancellationToken ct)
    {
        (_dataset as IEpochAware)?.SetEpoch(epoch);
        var pool = new WorkerPool(this, BatchIndices(epoch), ct);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _active.Add(pool);
        }
        try
        {
            pool.Start();
            for (int k = 0; k < pool.Count; k++) yield return pool.Take(k);
        }
        finally
        {
            pool.Stop();
            lock (_gate) _active.Remove(pool);
        }
    }

    private TBatch LoadBatch(int[] indices)
    {
        var samples = new List<T>(indices.Length);
        try
        {
            foreach (var i in indices) samples.Add(_dataset.Get(i));
        }
        catch
        {
            DisposeBatch(samples);
            throw;
        }
        return _collate(samples);
    }

    /// <summary>Disposes a batch, or the disposable items of a batch that is a collection.</summary>
    private static void DisposeBatch(object? batch)
    {
        if (batch is IDisposable d) d.Dispose();
        else if (batch is IEnumerable items)
            foreach (var item in items) (item as IDisposable)?.Dispose();
    }

    /// <summary>Stops loading in progress and disposes the data set when the loader owns it.</summary>
    public void Dispose()
    {
        WorkerPool[] active;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            active = _active.ToArray();
        }
        foreach (var p in active) p.Stop();
        if (Options.OwnsDataset) (_dataset as IDisposable)?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Threads loading one epoch's batches into a bounded, ordered window.</summary>
    private sealed class WorkerPool
    {
        private readonly DataLoader<T, TBatch> _loader;
        private readonly int[][] _batches;
        private readonly CancellationToken _ct;
        private readonly object _gate = new();
        private readonly Dictionary<int, (TBatch? Batch, ExceptionDispatchInfo? Error)> _ready = new();
        private readonly Thread[] _threads;
        private readonly int _capacity;
        private CancellationTokenRegistration _registration;
        private int _next;     // next batch to claim
        private int _consumed; // batches handed to the consumer
        private bool _stop;

        public WorkerPool(DataLoader<T, TBatch> loader, int[][] batches, CancellationToken ct)
        {
            _loader = loader;
            _batches = batches;
            _ct = ct;
            int workers = Math.Min(loader.Options.NumWorkers, Math.Max(1, batches.Length));
            _capacity = loader.Options.NumWorkers * loader.Options.PrefetchFactor;
            _threads = new Thread[workers];
            for (int w = 0; w < workers; w++)
                _threads[w] = new Thread(Work) { IsBackground = true, Name = $"DataLoader worker {w}" };
        }

        public int Count => _batches.Length;

        public void Start()
        {
            _registration = _ct.Register(() =>
            {
                lock (_gate)
                {
                    _stop = true;
                    Monitor.PulseAll(_gate);
                }
            });
            foreach (var t in _threads) t.Start();
        }

        private void Work()
        {
            while (true)
            {
                int k;
                lock (_gate)
                {
                    while (!_stop && _next < _batches.Length && _next - _consumed >= _capacity) Monitor.Wait(_gate);
                    if (_stop || _next >= _batches.Length) return;
                    k = _next++;
                }
                (TBatch? Batch, ExceptionDispatchInfo? Error) result;
                try
                {
                    result = (_loader.LoadBatch(_batches[k]), null);
                }
                catch (Exception e)
                {
                    result = (default, ExceptionDispatchInfo.Capture(e));
                }
                lock (_gate)
                {
                    if (_stop)
                    {
                        DisposeBatch(result.Batch);
                        return;
                    }
                    _ready[k] = result;
                    Monitor.PulseAll(_gate);
                    if (result.Error != null) return;
                }
            }
        }

        public TBatch Take(int k)
        {
            (TBatch? Batch, ExceptionDispatchInfo? Error) r;
            lock (_gate)
            {
                while (!_ready.ContainsKey(k) && !_stop) Monitor.Wait(_gate);
                _ct.ThrowIfCancellationRequested();
                ObjectDisposedException.ThrowIf(_loader._disposed, _loader);
                if (!_ready.Remove(k, out r)) throw new InvalidOperationException("the data loader stopped");
                _consumed++;
                Monitor.PulseAll(_gate);
            }
            r.Error?.Throw();
            return r.Batch!;
        }

        /// <summary>Stops the workers, waits for them, and disposes batches nobody will consume.</summary>
        public void Stop()
        {
            lock (_gate)
            {
                _stop = true;
                Monitor.PulseAll(_gate);
            }
            _registration.Dispose();
            foreach (var t in _threads)
                if (t.IsAlive && t != Thread.CurrentThread) t.Join();
            lock (_gate)
            {
                foreach (var (_, r) in _ready) DisposeBatch(r.Batch);
                _ready.Clear();
            }
        }
    }
}

/// <summary>A <see cref="DataLoader{T,TBatch}"/> whose batches are arrays of samples.</summary>
public sealed class DataLoader<T>(IDataset<T> dataset, DataLoaderOptions? options = null)
    : DataLoader<T, T[]>(dataset, samples => samples.ToArray(), options);
