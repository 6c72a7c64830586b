namespace Runtime.Autograd;

/// <summary>
/// One recorded operation: its inputs (graph nodes or leaf tensors), the values it saved, and its
/// gradient rule, which maps the output gradient to one gradient per input (null where none flows).
/// </summary>
public sealed class Node
{
    internal delegate Tensor?[] BackwardFn(Tensor grad, Tensor[] saved);

    private BackwardFn? _backward;
    private Tensor[] _saved;

    internal Node(string name, Tensor[] inputs, Tensor[] saved, BackwardFn backward)
    {
        Name = name;
        InputNodes = new Node?[inputs.Length];
        InputLeaves = new Tensor?[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            var t = inputs[i];
            if (!t.RequiresGrad) continue;
            if (t.GradFn != null) InputNodes[i] = t.GradFn;
            else InputLeaves[i] = t;
        }
        _saved = new Tensor[saved.Length];
        for (int i = 0; i < saved.Length; i++) _saved[i] = saved[i].Alias(register: false);
        _backward = backward;
    }

    /// <summary>The operator's name, e.g. <c>Mul</c>.</summary>
    public string Name { get; }

    internal Node?[] InputNodes { get; }

    internal Tensor?[] InputLeaves { get; }

    internal Tensor[] Saved => _saved;

    internal Tensor?[] Apply(Tensor grad)
    {
        var f = _backward ?? throw new InvalidOperationException(
            $"trying to backward through the graph a second time (node {Name}); pass retainGraph: true to the first Backward call");
        return f(grad, _saved);
    }

    /// <summary>Drops the saved values and the rule (after a backward pass without retainGraph).</summary>
    internal void Release()
    {
        _backward = null;
        foreach (var s in _saved) s.Dispose();
        _saved = [];
    }

    public override string ToString() => Name + "Backward";
}
