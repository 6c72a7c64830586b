using BenchmarkDotNet.Attributes;
using Runtime.Autograd;

namespace Runtime.Benchmarks;

/// <summary>The core's hot operators on the CPU. PyTorch's figures for the same shapes come from benchmarks/torch_bench.py.</summary>
[MemoryDiagnoser]
public class CoreBenchmarks
{
    private Tensor _a = null!, _b = null!, _x = null!, _y = null!, _s = null!;

    [Params(1024, 2048)]
    public int N { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var g = new Generator(1);
        _a = Tensor.Randn([N, N], g);
        _b = Tensor.Randn([N, N], g);
        _x = Tensor.Randn([16 * 1024 * 1024], g);
        _y = Tensor.Randn([16 * 1024 * 1024], g);
        _s = Tensor.Randn([4096, 1024], g);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _a, _b, _x, _y, _s }) t.Dispose();
    }

    [Benchmark]
    public void MatMul()
    {
        using var _ = GradMode.NoGrad();
        using var c = _a.MatMul(_b);
    }

    [Benchmark]
    public void Add16M()
    {
        using var _ = GradMode.NoGrad();
        using var c = _x + _y;
    }

    [Benchmark]
    public void Softmax4096x1024()
    {
        using var _ = GradMode.NoGrad();
        using var c = _s.Softmax(-1);
    }
}
