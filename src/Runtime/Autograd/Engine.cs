namespace Runtime.Autograd;

/// <summary>Runs a backward pass: visits graph nodes in reverse topological order, summing gradients.</summary>
internal static class Engine
{
    public static void Backward(Tensor root, Tensor? gradient, bool retainGraph)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward called on a tensor that does not require grad (no input had RequiresGrad set, or it was computed under NoGrad)");
        if (gradient == null && root.NumEl != 1)
            throw new ArgumentException($"Backward without a gradient needs a one-element tensor, got shape {Shapes.Format(root.Shape)}", nameof(gradient));
        if (gradient != null && !gradient.Shape.SequenceEqual(root.Shape))
            throw new ArgumentException($"gradient shape {Shapes.Format(gradient.Shape)} does not match the tensor's {Shapes.Format(root.Shape)}", nameof(gradient));

        using var noGrad = GradMode.NoGrad();
        using var scope = new TensorScope();
        var seed = gradient != null ? gradient.To(root.DType) : Tensor.OnesLike(root);

        if (root.GradFn == null)
        {
            Accumulate(root, seed);
            return;
        }

        // Count, for each reachable node, how many reachable nodes feed gradient into it.
        var pending = new Dictionary<Node, int>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<Node>();
        stack.Push(root.GradFn);
        pending[root.GradFn] = 0;
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            foreach (var next in n.InputNodes)
            {
                if (next == null) continue;
                if (pending.TryGetValue(next, out var c)) pending[next] = c + 1;
                else
                {
                    pending[next] = 1;
                    stack.Push(next);
                }
            }
        }

        var grads = new Dictionary<Node, Tensor>(ReferenceEqualityComparer.Instance) { [root.GradFn] = seed };
        var ready = new Stack<Node>();
        ready.Push(root.GradFn);
        while (ready.Count > 0)
        {
            var node = ready.Pop();
            if (!grads.Remove(node, out var g))
            {
                // Every path into this node returned null: nothing flows on, but its inputs must not wait for it.
                foreach (var next in node.InputNodes)
                    if (next != null && --pending[next] == 0) ready.Push(next);
                if (!retainGraph) node.Release();
                continue;
            }
            Tensor?[] results;
            using (var nodeScope = new TensorScope())
            {
                results = node.Apply(g);
                if (results.Length != node.InputNodes.Length)
                    throw new InvalidOperationException($"{node} returned {results.Length} gradients for {node.InputNodes.Length} inputs");
                foreach (var r in results)
                    if (r != null && r.Scope == nodeScope) nodeScope.MoveOut(r);
            }
            for (int i = 0; i < results.Length; i++)
            {
                var r = results[i];
                if (r == null)
                {
                    // No gradient flows this way, but the input node must not wait for it.
                    if (node.InputNodes[i] is { } skipped && --pending[skipped] == 0) ready.Push(skipped);
                    continue;
                }
                if (node.InputLeaves[i] is { } leaf)
                {
                    Accumulate(leaf, r);
                }
                else if (node.InputNodes[i] is { } next)
                {
                    if (grads.TryGetValue(next, out var old))
                    {
                        grads[next] = old + r;
                        old.Dispose();
                    }
                    else grads[next] = r.Alias(register: true);
                    if (--pending[next] == 0) ready.Push(next);
                }
            }
            // Free this node's gradient and results now rather than at the end of the pass.
            foreach (var r in results)
                if (r != null && !ReferenceEquals(r, gradient) && !Array.Exists(node.Saved, s => ReferenceEquals(s, r))) r.Dispose();
            if (!ReferenceEquals(g, gradient)) g.Dispose();
            if (!retainGraph) node.Release();
        }
    }

    private static void Accumulate(Tensor leaf, Tensor g)
    {
        if (!g.Shape.SequenceEqual(leaf.Shape))
            throw new InvalidOperationException($"gradient of shape {Shapes.Format(g.Shape)} for a leaf of shape {Shapes.Format(leaf.Shape)}");
        var old = leaf.Grad;
        var updated = old == null ? g.Clone() : old + g;
        leaf.Grad = updated.Unscoped();
        old?.Dispose();
    }
}
