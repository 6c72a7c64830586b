namespace Runtime.Models.Backbones;

/// <summary>
/// Named feature maps in order, finest first ("0", "1", ..., then "pool" or "p6", "p7"), as torchvision's
/// backbones return them in an OrderedDict. Owns the tensors.
/// </summary>
public sealed class FeatureMaps : IReadOnlyList<KeyValuePair<string, Tensor>>, IDisposable
{
    private readonly List<KeyValuePair<string, Tensor>> _maps = new();

    public FeatureMaps() { }

    public FeatureMaps(IEnumerable<string> names, IEnumerable<Tensor> maps)
    {
        foreach (var (n, m) in names.Zip(maps)) Add(n, m);
    }

    public void Add(string name, Tensor map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (_maps.Exists(kv => kv.Key == name)) throw new ArgumentException($"feature map '{name}' is already present", nameof(name));
        _maps.Add(new(name, map));
    }

    public int Count => _maps.Count;

    public KeyValuePair<string, Tensor> this[int index] => _maps[index];

    public Tensor this[string name] => _maps.Find(kv => kv.Key == name).Value
        ?? throw new KeyNotFoundException($"no feature map named '{name}' (have: {string.Join(", ", Names)})");

    public IReadOnlyList<string> Names => _maps.Select(kv => kv.Key).ToArray();

    public IReadOnlyList<Tensor> Maps => _maps.Select(kv => kv.Value).ToArray();

    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => _maps.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public void Dispose()
    {
        foreach (var kv in _maps) kv.Value.Dispose();
        _maps.Clear();
    }
}
