namespace Runtime;

/// <summary>
/// Disposes, at the end of a block, every tensor created on this thread inside it, except those
/// moved out with <see cref="MoveOut"/> (or <see cref="Tensor.MoveToOuterScope"/>). Scopes nest.
/// <code>
/// using (var scope = new TensorScope())
/// {
///     var loss = model.Forward(x).Sum();
///     loss.Backward();
///     result = scope.MoveOut(loss);
/// }
/// </code>
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? _current;

    private readonly List<Tensor> _tensors = new();
    private readonly TensorScope? _parent;
    private bool _disposed;

    public TensorScope()
    {
        _parent = _current;
        _current = this;
    }

    internal static TensorScope? Current => _current;

    /// <summary>Number of tensors this scope still owns.</summary>
    public int Count
    {
        get
        {
            int n = 0;
            foreach (var t in _tensors) if (t.Scope == this) n++;
            return n;
        }
    }

    internal void Add(Tensor t)
    {
        t.Scope = this;
        _tensors.Add(t);
    }

    /// <summary>Keeps <paramref name="tensor"/> alive past this scope: it joins the enclosing scope, or none.</summary>
    public Tensor MoveOut(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Scope != this)
            throw new ArgumentException("the tensor does not belong to this scope", nameof(tensor));
        tensor.Scope = null;
        _parent?.Add(tensor);
        return tensor;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_current == this) _current = _parent;
        foreach (var t in _tensors)
            if (t.Scope == this) t.Dispose();
        _tensors.Clear();
    }
}
