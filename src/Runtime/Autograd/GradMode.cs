namespace Runtime.Autograd;

/// <summary>Whether operators record the graph on this thread.</summary>
public static class GradMode
{
    [ThreadStatic] private static int _disabled;

    public static bool IsEnabled => _disabled == 0;

    /// <summary>Turns recording off until the returned handle is disposed: <c>using (GradMode.NoGrad()) { ... }</c>.</summary>
    public static NoGradScope NoGrad()
    {
        _disabled++;
        return new NoGradScope();
    }

    public readonly struct NoGradScope : IDisposable
    {
        public void Dispose() => _disabled--;
    }
}
