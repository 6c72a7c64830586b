namespace Runtime.Vision.Data;

/// <summary>
/// A map-style data set (torch.utils.data.Dataset): <see cref="Count"/> samples addressed by index.
/// <see cref="Get"/> must be safe to call from several threads at once; the caller owns what it returns.
/// </summary>
public interface IDataset<out T>
{
    int Count { get; }

    T Get(int index);
}

/// <summary>
/// A data set whose samples depend on the epoch (random augmentation). <see cref="DataLoader{T,TBatch}"/>
/// calls <see cref="SetEpoch"/> before it starts loading an epoch.
/// </summary>
public interface IEpochAware
{
    void SetEpoch(int epoch);
}

/// <summary>Small combinators over <see cref="IDataset{T}"/>.</summary>
public static class Dataset
{
    /// <summary>The samples at <paramref name="indices"/> of <paramref name="source"/>, in that order.</summary>
    public static IDataset<T> Subset<T>(IDataset<T> source, IReadOnlyList<int> indices) => new SubsetDataset<T>(source, indices);

    /// <summary>The first <paramref name="count"/> samples.</summary>
    public static IDataset<T> Take<T>(IDataset<T> source, int count)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return Subset(source, Enumerable.Range(0, Math.Min(count, source.Count)).ToArray());
    }

    /// <summary>Applies <paramref name="map"/> to each sample as it is read.</summary>
    public static IDataset<TOut> Select<TIn, TOut>(IDataset<TIn> source, Func<TIn, TOut> map) => new MappedDataset<TIn, TOut>(source, map);

    /// <summary>
    /// Applies a random transform to each sample. Sample <c>i</c> of epoch <c>e</c> gets a generator
    /// seeded from (seed, e, i), so augmentations do not depend on which worker thread loads it.
    /// </summary>
    public static TransformedDataset<T> WithTransform<T>(IDataset<T> source, ITransform<T> transform, ulong seed = 0) =>
        new(source, transform, seed);

    /// <summary>A data set over an in-memory list (tests, small experiments).</summary>
    public static IDataset<T> FromList<T>(IReadOnlyList<T> items) => new ListDataset<T>(items);

    /// <summary>A data set computing sample i with <paramref name="get"/>.</summary>
    public static IDataset<T> FromFunc<T>(int count, Func<int, T> get) => new FuncDataset<T>(count, get);

    /// <summary>Mixes a seed with further numbers (SplitMix64 finaliser), for per-sample generators.</summary>
    public static ulong MixSeed(ulong seed, long a, long b = 0)
    {
        ulong z = seed ^ 0x9E3779B97F4A7C15UL;
        z = Mix(z + (ulong)a * 0xBF58476D1CE4E5B9UL);
        z = Mix(z + (ulong)b * 0x94D049BB133111EBUL);
        return z;

        static ulong Mix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    private static void CheckIndex(int index, int count)
    {
        if ((uint)index >= (uint)count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"index outside a data set of {count} samples");
    }

    private sealed class SubsetDataset<T>(IDataset<T> source, IReadOnlyList<int> indices) : IDataset<T>, IEpochAware
    {
        private readonly int[] _indices = Validate(source, indices);

        public int Count => _indices.Length;

        public T Get(int index)
        {
            CheckIndex(index, _indices.Length);
            return source.Get(_indices[index]);
        }

        public void SetEpoch(int epoch) => (source as IEpochAware)?.SetEpoch(epoch);

        private static int[] Validate(IDataset<T> source, IReadOnlyList<int> indices)
        {
            ArgumentNullException.ThrowIfNull(source);
            ArgumentNullException.ThrowIfNull(indices);
            var copy = indices.ToArray();
            foreach (var i in copy)
                if ((uint)i >= (uint)source.Count)
                    throw new ArgumentOutOfRangeException(nameof(indices), i, $"subset index outside a data set of {source.Count} samples");
            return copy;
        }
    }

    private sealed class MappedDataset<TIn, TOut>(IDataset<TIn> source, Func<TIn, TOut> map) : IDataset<TOut>, IEpochAware
    {
        public int Count => source.Count;

        public TOut Get(int index) => map(source.Get(index));

        public void SetEpoch(int epoch) => (source as IEpochAware)?.SetEpoch(epoch);
    }

    private sealed class ListDataset<T>(IReadOnlyList<T> items) : IDataset<T>
    {
        public int Count => items.Count;

        public T Get(int index)
        {
            CheckIndex(index, items.Count);
            return items[index];
        }
    }

    private sealed class FuncDataset<T>(int count, Func<int, T> get) : IDataset<T>
    {
        public int Count => count;

        public T Get(int index)
        {
            CheckIndex(index, count);
            return get(index);
        }
    }
}

/// <summary>A (possibly random) change to a sample: consumes its input, returns the result.</summary>
public interface ITransform<T>
{
    /// <summary>
    /// Transforms <paramref name="sample"/>. Implementations that build a new sample dispose the input;
    /// random ones draw only from <paramref name="random"/>.
    /// </summary>
    T Apply(T sample, Generator random);
}

/// <summary>Runs transforms one after another (torchvision's <c>Compose</c>).</summary>
public sealed class Compose<T>(params ITransform<T>[] transforms) : ITransform<T>
{
    public IReadOnlyList<ITransform<T>> Transforms { get; } = transforms;

    public T Apply(T sample, Generator random)
    {
        foreach (var t in transforms) sample = t.Apply(sample, random);
        return sample;
    }
}

/// <summary>A data set with a random transform; see <see cref="Dataset.WithTransform{T}"/>.</summary>
public sealed class TransformedDataset<T> : IDataset<T>, IEpochAware
{
    private readonly IDataset<T> _source;
    private readonly ITransform<T> _transform;
    private readonly ulong _seed;
    private volatile int _epoch;

    public TransformedDataset(IDataset<T> source, ITransform<T> transform, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(transform);
        _source = source;
        _transform = transform;
        _seed = seed;
    }

    public int Count => _source.Count;

    public int Epoch => _epoch;

    public T Get(int index) => _transform.Apply(_source.Get(index), new Generator(Dataset.MixSeed(_seed, _epoch, index)));

    public void SetEpoch(int epoch)
    {
        _epoch = epoch;
        (_source as IEpochAware)?.SetEpoch(epoch);
    }
}
