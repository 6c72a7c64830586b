using System.Text;
using Runtime.Autograd;

namespace Runtime.Nn;

/// <summary>
/// A layer or a model: named parameters, buffers and child modules, registered explicitly in
/// construction order, with PyTorch's dotted state-dict names ("layer.0.weight").
/// </summary>
/// <remarks>
/// <para>A module owns its tensors and disposes them in <see cref="Dispose"/>. Registering a parameter or buffer
/// takes it out of any <see cref="TensorScope"/> (the core's internal <c>Tensor.Unscoped</c>, visible to this
/// assembly), so a module built inside a scope keeps its tensors when the scope ends.</para>
/// <para>Inference fusion (<see cref="InferenceFusion"/>, on by default, <see cref="SetInferenceFusion"/> turns it off
/// for a model and its children): in eval mode under <see cref="GradMode.NoGrad"/>, a convolution followed by a batch
/// norm with fixed statistics (an eval <see cref="BatchNorm2d"/> with running statistics, a <see cref="FrozenBatchNorm2d"/>)
/// runs as one convolution whose weight and bias have the norm folded in, with the bias, a residual sum and the ReLU
/// applied as the output is written (<see cref="Conv2d.ForwardNorm"/>, <see cref="BatchNormFold"/>). The folded
/// weights are cached on the convolution and refolded when a source tensor is replaced or written in place, so they
/// are never stale. Training mode and forwards with autograd on run the layers one after the other.</para>
/// </remarks>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor? Value)> _parameters = new();
    private readonly List<(string Name, Tensor? Value)> _buffers = new();
    private readonly List<(string Name, Module Value)> _children = new();
    private bool _disposed;

    /// <summary>Whether the module is in training mode (the default) rather than evaluation mode.</summary>
    public bool IsTraining { get; private set; } = true;

    // ---------------- registration ----------------

    /// <summary>Registers a parameter (made a gradient-requiring leaf) and returns it.</summary>
    protected Tensor RegisterParameter(string name, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (!value.IsLeaf) throw new ArgumentException($"parameter \"{name}\" must be a leaf tensor (Detach() a computed one)", nameof(value));
        if (!value.DType.IsFloating()) throw new ArgumentException($"parameter \"{name}\" must be floating point, got {value.DType.Name()}", nameof(value));
        CheckNewName(name);
        if (!value.RequiresGrad) value.RequiresGrad = true;
        _parameters.Add((name, value.Unscoped()));
        return value;
    }

    /// <summary>Registers an absent parameter (e.g. a disabled bias); it appears nowhere but keeps its name taken.</summary>
    protected void RegisterParameter(string name, Tensor? value, bool allowNull)
    {
        if (value == null && allowNull) { CheckNewName(name); _parameters.Add((name, null)); return; }
        RegisterParameter(name, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>Registers a buffer (state that is saved but not trained, e.g. running statistics).</summary>
    protected Tensor RegisterBuffer(string name, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(value);
        CheckNewName(name);
        _buffers.Add((name, value.Unscoped()));
        return value;
    }

    /// <summary>Registers a child module under <paramref name="name"/>; returns it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        CheckNewName(name);
        _children.Add((name, module));
        return module;
    }

    private void CheckNewName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"a module member name must be non-empty and contain no '.', got \"{name}\"", nameof(name));
        if (_parameters.Exists(p => p.Name == name) || _buffers.Exists(b => b.Name == name) || _children.Exists(c => c.Name == name))
            throw new ArgumentException($"\"{name}\" is already registered in {GetType().Name}", nameof(name));
    }

    /// <summary>The current tensor of this module's own parameter <paramref name="name"/> (null when registered absent).</summary>
    protected Tensor? GetParameter(string name) => _parameters.Find(p => p.Name == name).Value;

    /// <summary>The current tensor of this module's own buffer <paramref name="name"/>.</summary>
    protected Tensor GetBuffer(string name) =>
        _buffers.Find(b => b.Name == name).Value ?? throw new KeyNotFoundException($"no buffer \"{name}\" in {GetType().Name}");

    // ---------------- traversal ----------------

    /// <summary>Direct children in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children.Select(c => (c.Name, c.Value));

    public IEnumerable<Module> Children() => _children.Select(c => c.Value);

    /// <summary>This module ("") and every descendant, depth first, with dotted names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (name, child) in _children)
            foreach (var m in child.NamedModules(Join(prefix, name)))
                yield return m;
    }

    /// <summary>Every parameter of this module and its descendants, with dotted names (each tensor once).</summary>
    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters(string prefix = "")
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (mname, m) in NamedModules(prefix))
            foreach (var (name, p) in m._parameters)
                if (p != null && seen.Add(p)) yield return (Join(mname, name), p);
    }

    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Parameter);

    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers(string prefix = "")
    {
        foreach (var (mname, m) in NamedModules(prefix))
            foreach (var (name, b) in m._buffers)
                if (b != null) yield return (Join(mname, name), b);
    }

    public IEnumerable<Tensor> Buffers() => NamedBuffers().Select(b => b.Buffer);

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    // ---------------- modes ----------------

    /// <summary>Sets training mode on this module and all descendants; returns this.</summary>
    public Module Train(bool mode = true)
    {
        IsTraining = mode;
        foreach (var (_, c) in _children) c.Train(mode);
        return this;
    }

    /// <summary>Sets evaluation mode (Dropout is the identity, BatchNorm uses running statistics).</summary>
    public Module Eval() => Train(false);

    /// <summary>
    /// Whether this module's inference forwards fold batch norms into the convolutions before them (default true; see
    /// the class remarks). Only eval mode under <see cref="GradMode.NoGrad"/> is affected.
    /// </summary>
    public bool InferenceFusion { get; private set; } = true;

    /// <summary>
    /// Turns inference fusion on or off for this module and all descendants (off: every layer runs on its own, the
    /// reference the fused forward is compared with); turning it off drops the cached folded weights. Returns this.
    /// </summary>
    public Module SetInferenceFusion(bool enabled)
    {
        foreach (var (_, m) in NamedModules())
        {
            m.InferenceFusion = enabled;
            if (!enabled) m.ReleaseCaches();
        }
        return this;
    }

    /// <summary>Disposes tensors the layer derived from its parameters (folded weights); called on dispose, on a move and when fusion is turned off.</summary>
    protected virtual void ReleaseCaches() { }

    /// <summary>Sets <see cref="Tensor.RequiresGrad"/> on every parameter (false freezes the module).</summary>
    public Module RequiresGrad(bool requiresGrad = true)
    {
        foreach (var p in Parameters()) p.RequiresGrad = requiresGrad;
        return this;
    }

    /// <summary>Drops the accumulated gradients of all parameters.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters())
        {
            p.Grad?.Dispose();
            p.Grad = null;
        }
    }

    // ---------------- state dict ----------------

    /// <summary>Parameters then buffers of each module, depth first, keyed by dotted name; the tensors are the module's own (not copies).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var dict = new OrderedStateDict();
        foreach (var (mname, m) in NamedModules())
        {
            foreach (var (name, p) in m._parameters) if (p != null) dict.Add(Join(mname, name), p);
            foreach (var (name, b) in m._buffers) if (b != null) dict.Add(Join(mname, name), b);
        }
        return dict;
    }

    /// <summary>
    /// Copies the values of <paramref name="stateDict"/> into this module's tensors in place (any dtype is converted).
    /// With <paramref name="strict"/>, missing and unexpected keys are errors; mis-shaped keys always are.
    /// All problems are reported in one <see cref="ArgumentException"/>; nothing is copied when there is one.
    /// </summary>
    public LoadStateDictResult LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        var own = StateDict();
        var missing = own.Keys.Where(k => !stateDict.ContainsKey(k)).ToList();
        var unexpected = stateDict.Keys.Where(k => !own.ContainsKey(k) && !IsIgnoredLoadKey(k)).ToList();
        var misShaped = new List<string>();
        foreach (var (k, t) in own)
            if (stateDict.TryGetValue(k, out var src) && !src.Shape.SequenceEqual(t.Shape))
                misShaped.Add($"{k}: expected shape {FormatShape(t.Shape)}, got {FormatShape(src.Shape)}");
        if (misShaped.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
        {
            var sb = new StringBuilder($"error(s) loading the state dict of {GetType().Name}:");
            if (strict && missing.Count > 0) sb.Append("\n  missing keys: ").Append(string.Join(", ", missing));
            if (strict && unexpected.Count > 0) sb.Append("\n  unexpected keys: ").Append(string.Join(", ", unexpected));
            if (misShaped.Count > 0) sb.Append("\n  size mismatches: ").Append(string.Join("; ", misShaped));
            throw new ArgumentException(sb.ToString(), nameof(stateDict));
        }
        using (GradMode.NoGrad())
        {
            foreach (var (k, t) in own)
            {
                if (!stateDict.TryGetValue(k, out var src)) continue;
                if (src.Device == t.Device) t.CopyFrom(src);
                else
                {
                    using var moved = src.To(t.Device);
                    t.CopyFrom(moved);
                }
            }
        }
        return new LoadStateDictResult(missing, unexpected);
    }

    /// <summary>Whether a key found in a loaded state dict under this module (without its prefix) is silently dropped.</summary>
    protected virtual bool IgnoresLoadKey(string localKey) => false;

    private bool IsIgnoredLoadKey(string key)
    {
        foreach (var (mname, m) in NamedModules())
        {
            string prefix = mname.Length == 0 ? "" : mname + ".";
            if (key.StartsWith(prefix, StringComparison.Ordinal) && m.IgnoresLoadKey(key[prefix.Length..])) return true;
        }
        return false;
    }

    /// <summary>A new handle on <paramref name="x"/> that stays in the graph (a view; a copy if x is not contiguous).</summary>
    protected static Tensor Alias(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.Reshape(x.Shape.ToArray());
    }

    private static string FormatShape(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    // ---------------- devices ----------------

    /// <summary>Moves every parameter and buffer to <paramref name="device"/> (new leaf tensors, RequiresGrad kept); returns this.</summary>
    public Module To(Device device)
    {
        foreach (var (_, m) in NamedModules())
        {
            for (int i = 0; i < m._parameters.Count; i++)
            {
                var (name, p) = m._parameters[i];
                if (p == null || p.Device == device) continue;
                m._parameters[i] = (name, MoveLeaf(p, device, p.RequiresGrad));
            }
            for (int i = 0; i < m._buffers.Count; i++)
            {
                var (name, b) = m._buffers[i];
                if (b == null || b.Device == device) continue;
                m._buffers[i] = (name, MoveLeaf(b, device, false));
            }
            m.ReleaseCaches();
            m.OnMoved();
        }
        return this;
    }

    private static Tensor MoveLeaf(Tensor t, Device device, bool requiresGrad)
    {
        Tensor moved;
        using (GradMode.NoGrad()) moved = t.To(device);
        t.Grad?.Dispose();
        t.Dispose();
        if (requiresGrad) moved.RequiresGrad = true;
        return moved.Unscoped();
    }

    /// <summary>Called after <see cref="To(Device)"/> replaced tensors; layers caching tensor fields refresh them here.</summary>
    protected virtual void OnMoved() { }

    // ---------------- lifetime ----------------

    /// <summary>Disposes the parameters, their gradients, the buffers and the children.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ReleaseCaches();
        foreach (var (_, p) in _parameters) { p?.Grad?.Dispose(); p?.Dispose(); }
        foreach (var (_, b) in _buffers) b?.Dispose();
        foreach (var (_, c) in _children) c.Dispose();
        GC.SuppressFinalize(this);
    }

    public override string ToString() => GetType().Name;

    private sealed class OrderedStateDict : IReadOnlyDictionary<string, Tensor>
    {
        private readonly List<KeyValuePair<string, Tensor>> _items = new();
        private readonly Dictionary<string, Tensor> _map = new();

        public void Add(string key, Tensor value)
        {
            _map.Add(key, value);
            _items.Add(new(key, value));
        }

        public Tensor this[string key] => _map[key];
        public IEnumerable<string> Keys => _items.Select(i => i.Key);
        public IEnumerable<Tensor> Values => _items.Select(i => i.Value);
        public int Count => _items.Count;
        public bool ContainsKey(string key) => _map.ContainsKey(key);
        public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Tensor value) => _map.TryGetValue(key, out value);
        public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => _items.GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

/// <summary>Keys that <see cref="Module.LoadStateDict"/> did not find or did not use (non-strict loading).</summary>
public sealed record LoadStateDictResult(IReadOnlyList<string> MissingKeys, IReadOnlyList<string> UnexpectedKeys);

/// <summary>A module with one input and one output.</summary>
public abstract class UnaryModule : Module
{
    public abstract Tensor Forward(Tensor input);
}

/// <summary>Children named "0", "1", ... applied in order.</summary>
public sealed class Sequential : UnaryModule
{
    private readonly List<UnaryModule> _layers = new();

    public Sequential(params UnaryModule[] layers)
    {
        foreach (var l in layers) Append(l);
    }

    public Sequential Append(UnaryModule layer)
    {
        RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        _layers.Add(layer);
        return this;
    }

    public int Count => _layers.Count;

    public UnaryModule this[int index] => _layers[index];

    /// <summary>
    /// Applies the layers in order. A <see cref="Conv2d"/> followed by a batch norm (and a <see cref="ReLU"/>) runs as
    /// <see cref="Conv2d.ForwardNorm"/> when inference fusion applies to them (see <see cref="Module"/>'s remarks).
    /// </summary>
    public override Tensor Forward(Tensor input)
    {
        var x = input;
        for (int i = 0; i < _layers.Count; i++)
        {
            Tensor y;
            if (_layers[i] is Conv2d conv && i + 1 < _layers.Count && BatchNormFold.Applies(conv, _layers[i + 1]))
            {
                bool relu = i + 2 < _layers.Count && _layers[i + 2] is ReLU;
                y = conv.ForwardNorm(x, _layers[i + 1], relu: relu);
                i += relu ? 2 : 1;
            }
            else y = _layers[i].Forward(x);
            if (!ReferenceEquals(x, input)) x.Dispose();
            x = y;
        }
        return ReferenceEquals(x, input) ? Alias(x) : x;
    }
}

/// <summary>An indexed list of child modules (names "0", "1", ...), without a forward of its own.</summary>
public sealed class ModuleList : Module, IReadOnlyList<Module>
{
    private readonly List<Module> _items = new();

    public ModuleList(params Module[] modules)
    {
        foreach (var m in modules) Add(m);
    }

    public void Add(Module module)
    {
        RegisterModule(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        _items.Add(module);
    }

    public int Count => _items.Count;
    public Module this[int index] => _items[index];
    public IEnumerator<Module> GetEnumerator() => _items.GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
