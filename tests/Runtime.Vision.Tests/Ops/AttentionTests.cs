using System.Text.Json;
using Runtime.Autograd;
using Runtime.Cpu;
using Runtime.Nn;
using Runtime.Tests;
using Runtime.Vision.Ops;

namespace Runtime.Vision.Tests.Ops;

public class AttentionTests
{
    private static JsonElement Golden => OpsGolden.Load("attention.json");

    private static IEnumerable<JsonElement> Cases(string group) => Golden.GetProperty(group).EnumerateArray();

    private static Tensor Load(JsonElement c, string name, DType dtype, Device dev) => OpsGolden.Tensor(c.GetProperty(name), dtype, dev);

    private static double[] Data(JsonElement c, string name) => OpsGolden.Data(c.GetProperty(name));

    private static Tensor? LoadMask(JsonElement c, DType dtype, Device dev, string name = "mask")
    {
        if (!c.TryGetProperty(name, out var m)) return null;
        bool isBool = c.GetProperty(name + "_bool").GetBoolean();
        using var f = OpsGolden.Tensor(m, isBool ? DType.Float64 : dtype, dev);
        return isBool ? f.To(DType.Bool) : f.Alias(register: true);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void SdpaMatchesTorchGoldens(string device)
    {
        var dev = Device.Parse(device);
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            double tol = dtype == DType.Float64 ? 1e-9 : 2e-5;
            foreach (var c in Cases("sdpa"))
            {
                using var scope = new TensorScope();
                string name = c.GetProperty("name").GetString()!;
                var q = Load(c, "q", dtype, dev).RequiresGrad_();
                var k = Load(c, "k", dtype, dev).RequiresGrad_();
                var v = Load(c, "v", dtype, dev).RequiresGrad_();
                var mask = LoadMask(c, dtype, dev);
                double? scale = c.TryGetProperty("scale", out var s) ? s.GetDouble() : null;
                var y = Attention.ScaledDotProductAttention(q, k, v, mask, c.GetProperty("causal").GetBoolean(), scale);
                Assert.Equal(OpsGolden.Shape(c.GetProperty("out")), y.ShapeArray);
                TestUtil.AssertClose(Data(c, "out"), y.To(Device.Cpu), tol, tol);
                var dout = Load(c, "dout", dtype, dev);
                (y * dout).Sum().Backward();
                TestUtil.AssertClose(Data(c, "dq"), q.Grad!.To(Device.Cpu), tol, tol);
                TestUtil.AssertClose(Data(c, "dk"), k.Grad!.To(Device.Cpu), tol, tol);
                TestUtil.AssertClose(Data(c, "dv"), v.Grad!.To(Device.Cpu), tol, tol);
                _ = name;
            }
        }
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void SdpaGradCheck(string device)
    {
        var dev = Device.Parse(device);
        var gen = new Generator(11);
        using var q = Tensor.Randn([1, 2, 5, 3], gen, DType.Float64);
        using var k = Tensor.Randn([1, 2, 6, 3], gen, DType.Float64);
        using var v = Tensor.Randn([1, 2, 6, 4], gen, DType.Float64);
        using var bmaskCpu = Tensor.Rand([5, 6], gen, DType.Float64).Gt(0.3);
        using var amaskCpu = Tensor.Randn([1, 2, 1, 6], gen, DType.Float64);
        using var bmask = bmaskCpu.To(dev);
        using var amask = amaskCpu.To(dev);
        Tensor On(Tensor t) => t.To(dev);
        TestUtil.GradCheck(a => Attention.ScaledDotProductAttention(On(a[0]), On(a[1]), On(a[2])).To(Device.Cpu), [q, k, v]);
        TestUtil.GradCheck(a => Attention.ScaledDotProductAttention(On(a[0]), On(a[1]), On(a[2]), bmask).To(Device.Cpu), [q, k, v]);
        TestUtil.GradCheck(a => Attention.ScaledDotProductAttention(On(a[0]), On(a[1]), On(a[2]), amask, isCausal: true, scale: 0.7).To(Device.Cpu), [q, k, v]);
        // Non-contiguous inputs: q and v as transposed views.
        using var qt = Tensor.Randn([1, 2, 3, 5], gen, DType.Float64);
        using var vt = Tensor.Randn([1, 2, 4, 6], gen, DType.Float64);
        TestUtil.GradCheck(a => Attention.ScaledDotProductAttention(On(a[0]).Transpose(-2, -1), On(a[1]), On(a[2]).Transpose(-2, -1), bmask).To(Device.Cpu), [qt, k, vt]);
    }

    [Fact]
    public void GpuBackwardIsDeterministic()
    {
        foreach (var dev in OpsDevices.Gpus)
        {
            var gen = new Generator(3);
            using var scope = new TensorScope();
            var qc = Tensor.Randn([2, 2, 90, 16], gen);
            var kc = Tensor.Randn([2, 2, 140, 16], gen);
            var vc = Tensor.Randn([2, 2, 140, 8], gen);
            var dout = Tensor.Randn([2, 2, 90, 8], gen).To(dev);
            var mask = (Tensor.Rand([90, 140], gen).Gt(0.2)).To(dev);
            float[][] Run()
            {
                var q = qc.To(dev).RequiresGrad_();
                var k = kc.To(dev).RequiresGrad_();
                var v = vc.To(dev).RequiresGrad_();
                (Attention.ScaledDotProductAttention(q, k, v, mask, isCausal: true) * dout).Sum().Backward();
                return [q.Grad!.ToArray<float>(), k.Grad!.ToArray<float>(), v.Grad!.ToArray<float>()];
            }
            var a = Run();
            var b = Run();
            for (int i = 0; i < 3; i++) Assert.Equal(a[i], b[i]);
            // And the same values as the CPU.
            var qx = qc.RequiresGrad_();
            var kx = kc.RequiresGrad_();
            var vx = vc.RequiresGrad_();
            (Attention.ScaledDotProductAttention(qx, kx, vx, mask.To(Device.Cpu), isCausal: true) * dout.To(Device.Cpu)).Sum().Backward();
            TestUtil.AssertClose(qx.Grad!.ToDoubleArray(), Tensor.From<float>(a[0], [2, 2, 90, 16]), 1e-4, 1e-4);
            TestUtil.AssertClose(kx.Grad!.ToDoubleArray(), Tensor.From<float>(a[1], [2, 2, 140, 16]), 1e-4, 1e-4);
            TestUtil.AssertClose(vx.Grad!.ToDoubleArray(), Tensor.From<float>(a[2], [2, 2, 140, 8]), 1e-4, 1e-4);
        }
    }

    [Fact]
    public void CpuResultsDoNotDependOnTheThreadCount()
    {
        var gen = new Generator(12);
        using var scope = new TensorScope();
        var q = Tensor.Randn([1, 2, 200, 24], gen).RequiresGrad_();
        var k = Tensor.Randn([1, 2, 300, 24], gen).RequiresGrad_();
        var v = Tensor.Randn([1, 2, 300, 16], gen).RequiresGrad_();
        var dout = Tensor.Randn([1, 2, 200, 16], gen);
        float[][] Run()
        {
            foreach (var t in new[] { q, k, v }) t.Grad = null;
            var y = Attention.ScaledDotProductAttention(q, k, v, isCausal: true);
            (y * dout).Sum().Backward();
            return [y.ToArray<float>(), q.Grad!.ToArray<float>(), k.Grad!.ToArray<float>(), v.Grad!.ToArray<float>()];
        }
        int threads = CpuParallel.Threads;
        float[][] one;
        try
        {
            CpuParallel.Threads = 1;
            one = Run();
        }
        finally
        {
            CpuParallel.Threads = threads;
        }
        var many = Run();
        for (int i = 0; i < 4; i++) Assert.Equal(one[i], many[i]);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void SdpaEdgeCases(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        // No keys: every row is fully masked, so zeros and zero gradients.
        var q = Tensor.Randn([1, 1, 3, 4], new Generator(1), DType.Float64).To(dev).RequiresGrad_();
        var k = Tensor.Zeros([1, 1, 0, 4], DType.Float64, dev).RequiresGrad_();
        var v = Tensor.Zeros([1, 1, 0, 2], DType.Float64, dev).RequiresGrad_();
        var y = Attention.ScaledDotProductAttention(q, k, v);
        Assert.Equal([1, 1, 3, 2], y.ShapeArray);
        Assert.All(y.ToDoubleArray(), x => Assert.Equal(0.0, x));
        y.Sum().Backward();
        Assert.All(q.Grad!.ToDoubleArray(), x => Assert.Equal(0.0, x));
        // A hand-derived case: two keys with equal scores average their values.
        var q1 = Tensor.From<double>([1, 0], [1, 2]).To(dev);
        var k1 = Tensor.From<double>([0, 1, 0, -1], [2, 2]).To(dev);
        var v1 = Tensor.From<double>([2, 4], [2, 1]).To(dev);
        TestUtil.AssertClose([3.0], Attention.ScaledDotProductAttention(q1, k1, v1).To(Device.Cpu), 1e-12, 1e-12);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void SdpaRejectsBadInput(string device)
    {
        var dev = Device.Parse(device);
        using var scope = new TensorScope();
        var q = Tensor.Zeros([2, 3, 4], DType.Float32, dev);
        var k = Tensor.Zeros([2, 5, 4], DType.Float32, dev);
        var v = Tensor.Zeros([2, 5, 6], DType.Float32, dev);
        void Bad(string param, string text, Action a)
        {
            var e = Assert.ThrowsAny<ArgumentException>(a);
            Assert.Equal(param, e.ParamName);
            Assert.Contains(text, e.Message, StringComparison.OrdinalIgnoreCase);
        }
        Bad("query", "[1, 1, 1, 2, 3, 4]", () => Attention.ScaledDotProductAttention(Tensor.Zeros([1, 1, 1, 2, 3, 4], DType.Float32, dev), k, v));
        Bad("query", "Int64", () => Attention.ScaledDotProductAttention(Tensor.Zeros([2, 3, 4], DType.Int64, dev), k, v));
        Bad("key", "Float64", () => Attention.ScaledDotProductAttention(q, Tensor.Zeros([2, 5, 4], DType.Float64, dev), v));
        Bad("key", "[2, 5, 3]", () => Attention.ScaledDotProductAttention(q, Tensor.Zeros([2, 5, 3], DType.Float32, dev), v));
        Bad("key", "[3, 5, 4]", () => Attention.ScaledDotProductAttention(q, Tensor.Zeros([3, 5, 4], DType.Float32, dev), v));
        Bad("value", "[2, 4, 6]", () => Attention.ScaledDotProductAttention(q, k, Tensor.Zeros([2, 4, 6], DType.Float32, dev)));
        Bad("mask", "[3, 4]", () => Attention.ScaledDotProductAttention(q, k, v, Tensor.Zeros([3, 4], DType.Bool, dev)));
        Bad("mask", "Int32", () => Attention.ScaledDotProductAttention(q, k, v, Tensor.Zeros([3, 5], DType.Int32, dev)));
        Bad("mask", "gradient", () => Attention.ScaledDotProductAttention(q, k, v, Tensor.Zeros([3, 5], DType.Float32, dev).RequiresGrad_()));
        Bad("scale", "finite", () => Attention.ScaledDotProductAttention(q, k, v, scale: double.NaN));
        if (dev != Device.Cpu)
            Bad("key", "one device", () => Attention.ScaledDotProductAttention(q, Tensor.Zeros([2, 5, 4], DType.Float32), v));
    }

    private static Dictionary<string, Tensor> State(JsonElement c, DType dtype, Device dev)
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var p in c.GetProperty("state").EnumerateObject())
            d[p.Name] = p.Name.EndsWith("num_batches_tracked", StringComparison.Ordinal)
                ? Tensor.Zeros([], DType.Int64, dev)
                : OpsGolden.Tensor(p.Value, dtype, dev);
        return d;
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void MultiheadAttentionMatchesTorch(string device)
    {
        var dev = Device.Parse(device);
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            double tol = dtype == DType.Float64 ? 1e-9 : 1e-4;
            foreach (var c in Cases("mha"))
            {
                using var scope = new TensorScope();
                using var m = new MultiheadAttention(c.GetProperty("embed_dim").GetInt32(), c.GetProperty("num_heads").GetInt32(),
                    bias: c.GetProperty("bias").GetBoolean(), batchFirst: c.GetProperty("batch_first").GetBoolean(), dtype: dtype, device: dev);
                var state = State(c, dtype, dev);
                Assert.Equal(state.Keys.OrderBy(x => x), m.StateDict().Keys.OrderBy(x => x));
                m.LoadStateDict(state);
                m.Eval();
                var q = Load(c, "query", dtype, dev).RequiresGrad_();
                var k = Load(c, "key", dtype, dev).RequiresGrad_();
                var v = Load(c, "value", dtype, dev).RequiresGrad_();
                var kpm = LoadMask(c, dtype, dev, "key_padding_mask");
                var am = LoadMask(c, dtype, dev, "attn_mask");
                var (y, w) = m.Forward(q, k, v, kpm, needWeights: true, attnMask: am, averageAttnWeights: c.GetProperty("average").GetBoolean());
                TestUtil.AssertClose(Data(c, "out"), y.To(Device.Cpu), tol, tol);
                Assert.Equal(OpsGolden.Shape(c.GetProperty("weights")), w!.ShapeArray);
                TestUtil.AssertClose(Data(c, "weights"), w.To(Device.Cpu), tol, tol);
                (y * Load(c, "dout", dtype, dev)).Sum().Backward();
                TestUtil.AssertClose(Data(c, "dquery"), q.Grad!.To(Device.Cpu), tol, tol);
                TestUtil.AssertClose(Data(c, "dkey"), k.Grad!.To(Device.Cpu), tol, tol);
                TestUtil.AssertClose(Data(c, "dvalue"), v.Grad!.To(Device.Cpu), tol, tol);
                var pars = m.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
                foreach (var g in c.GetProperty("grads").EnumerateObject())
                    TestUtil.AssertClose(OpsGolden.Data(g.Value), pars[g.Name].Grad!.To(Device.Cpu), tol, tol);
                // Without weights: the same output through the fused path alone.
                using (GradMode.NoGrad())
                {
                    var (y2, w2) = m.Forward(q, k, v, kpm, needWeights: false, attnMask: am);
                    Assert.Null(w2);
                    TestUtil.AssertClose(Data(c, "out"), y2.To(Device.Cpu), tol, tol);
                }
            }
        }
    }

    [Fact]
    public void MultiheadAttentionDropoutInTraining()
    {
        using var scope = new TensorScope();
        // Dropout 1 drops every weight: the output is the output projection's bias, the weights zero.
        using var m = new MultiheadAttention(4, 2, dropout: 1.0, batchFirst: true, generator: new Generator(3));
        using (GradMode.NoGrad()) m.OutProj.Bias!.CopyFrom(Tensor.From<float>([1, 2, 3, 4], [4]));
        var x = Tensor.Randn([2, 3, 4], new Generator(4));
        var (y, w) = m.Forward(x, x, x);
        TestUtil.AssertClose(Enumerable.Range(0, 6).SelectMany(_ => new double[] { 1, 2, 3, 4 }).ToArray(), y);
        Assert.All(w!.ToDoubleArray(), v => Assert.Equal(0.0, v));
        // In eval mode dropout is off: rows of weights sum to one.
        m.Eval();
        var (_, we) = m.Forward(x, x, x);
        TestUtil.AssertClose(Enumerable.Repeat(1.0, 6).ToArray(), we!.Sum(-1), 1e-6, 1e-6);
    }

    [Fact]
    public void MultiheadAttentionRejectsBadInput()
    {
        using var scope = new TensorScope();
        var e = Assert.Throws<ArgumentException>(() => new MultiheadAttention(6, 4));
        Assert.Equal("numHeads", e.ParamName);
        using var m = new MultiheadAttention(8, 2);
        var x = Tensor.Zeros([3, 2, 8]);
        e = Assert.Throws<ArgumentException>(() => m.Forward(x, x, Tensor.Zeros([3, 2, 6])));
        Assert.Contains("[3, 2, 6]", e.Message);
        e = Assert.Throws<ArgumentException>(() => m.Forward(x, x, x, keyPaddingMask: Tensor.Zeros([2, 4], DType.Bool)));
        Assert.Equal("keyPaddingMask", e.ParamName);
        Assert.Contains("[2, 3]", e.Message);
        e = Assert.Throws<ArgumentException>(() => m.Forward(x, x, x, attnMask: Tensor.Zeros([3, 4])));
        Assert.Equal("attnMask", e.ParamName);
    }

    [Theory, MemberData(nameof(OpsDevices.All), MemberType = typeof(OpsDevices))]
    public void AxialAttentionMatchesReference(string device)
    {
        var dev = Device.Parse(device);
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            double tol = dtype == DType.Float64 ? 1e-9 : 1e-4;
            foreach (var c in Cases("axial"))
            {
                using var scope = new TensorScope();
                var axis = c.GetProperty("axis").GetString() == "H" ? AxialAxis.Height : AxialAxis.Width;
                bool bn = c.TryGetProperty("bn", out var bnFlag) && bnFlag.GetBoolean();
                using var m = new AxialAttention(c.GetProperty("channels").GetInt32(), c.GetProperty("heads").GetInt32(), c.GetProperty("span").GetInt32(), axis, dtype, dev,
                    batchNorm: bn);
                m.LoadStateDict(State(c, dtype, dev));
                m.Train(c.TryGetProperty("train", out var tr) && tr.GetBoolean());
                var x = Load(c, "x", dtype, dev).RequiresGrad_();
                var y = m.Forward(x);
                TestUtil.AssertClose(Data(c, "out"), y.To(Device.Cpu), tol, tol);
                (y * Load(c, "dout", dtype, dev)).Sum().Backward();
                TestUtil.AssertClose(Data(c, "dx"), x.Grad!.To(Device.Cpu), tol, tol);
                var pars = m.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
                foreach (var g in c.GetProperty("grads").EnumerateObject())
                    TestUtil.AssertClose(OpsGolden.Data(g.Value), pars[g.Name].Grad!.To(Device.Cpu), tol, tol);
            }
            {
                using var scope = new TensorScope();
                var c = Golden.GetProperty("axial_block");
                using var block = new AxialBlock(c.GetProperty("channels").GetInt32(), c.GetProperty("inner").GetInt32(), c.GetProperty("heads").GetInt32(),
                    c.GetProperty("span").GetInt32(), dtype, dev);
                block.LoadStateDict(State(c, dtype, dev));
                block.Eval();
                var x = Load(c, "x", dtype, dev).RequiresGrad_();
                var y = block.Forward(x);
                TestUtil.AssertClose(Data(c, "out"), y.To(Device.Cpu), tol, tol);
                (y * Load(c, "dout", dtype, dev)).Sum().Backward();
                TestUtil.AssertClose(Data(c, "dx"), x.Grad!.To(Device.Cpu), tol, tol);
            }
        }
    }

    [Fact]
    public void AxialAttentionGradCheck()
    {
        foreach (var axis in new[] { AxialAxis.Height, AxialAxis.Width })
        {
            using var m = new AxialAttention(4, 2, 4, axis, DType.Float64, generator: new Generator(9));
            using var x = Tensor.Randn([1, 4, 3, 4], new Generator(2), DType.Float64);
            TestUtil.GradCheck(a => m.Forward(a[0]), [x]);
            // A non-contiguous input.
            using var xt = Tensor.Randn([1, 4, 4, 3], new Generator(4), DType.Float64);
            TestUtil.GradCheck(a => m.Forward(a[0].Transpose(2, 3)), [xt]);
        }
        // Every weight through the functional form.
        var gen = new Generator(6);
        using var x0 = Tensor.Randn([1, 4, 2, 3], gen, DType.Float64);
        using var w = Tensor.Randn([8, 4], gen, DType.Float64);
        using var rq = Tensor.Randn([5, 1], gen, DType.Float64);
        using var rk = Tensor.Randn([5, 1], gen, DType.Float64);
        using var rv = Tensor.Randn([5, 2], gen, DType.Float64);
        TestUtil.GradCheck(a => AxialAttention.Apply(a[0], a[1], a[2], a[3], a[4], 2, 3, AxialAxis.Width), [x0, w, rq, rk, rv]);
    }

    [Fact]
    public void AxialAttentionQkvBatchNorm()
    {
        // bn_qkv normalises the 2C projected channels: with identity statistics in eval mode it changes nothing; in
        // training mode the result is the plain layer's on the batch-normalised projection, checked by finite differences.
        foreach (var axis in new[] { AxialAxis.Height, AxialAxis.Width })
        {
            using var plain = new AxialAttention(4, 2, 4, axis, DType.Float64, generator: new Generator(9), batchNorm: true);
            using var withQkv = new AxialAttention(4, 2, 4, axis, DType.Float64, generator: new Generator(9), batchNorm: true, qkvBatchNorm: true);
            Assert.Contains("bn_qkv.running_var", withQkv.StateDict().Keys);
            Assert.Equal(8, withQkv.BnQkv!.NumFeatures);
            using var x = Tensor.Randn([2, 4, 3, 4], new Generator(2), DType.Float64);
            plain.Eval();
            withQkv.Eval();
            using (var scope = new TensorScope())
            {
                var a = plain.Forward(x).ToArray<double>();
                var b = withQkv.Forward(x).ToArray<double>();
                for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-4 * (1 + Math.Abs(a[i])), $"{a[i]} vs {b[i]}");
            }
            withQkv.Train();
            TestUtil.GradCheck(t => withQkv.Forward(t[0]), [x]);
        }
    }

    [Fact]
    public void AxialAttentionRejectsBadInput()
    {
        using var m = new AxialAttention(8, 2, 4, AxialAxis.Height);
        var e = Assert.Throws<ArgumentException>(() => m.Forward(Tensor.Zeros([1, 6, 4, 4])));
        Assert.Contains("[1, 6, 4, 4]", e.Message);
        e = Assert.Throws<ArgumentException>(() => m.Forward(Tensor.Zeros([1, 8, 5, 4])));
        Assert.Contains("span 4", e.Message);
        Assert.Throws<ArgumentException>(() => new AxialAttention(6, 2, 4, AxialAxis.Width));
    }
}

/// <summary>
/// The memory test reads process-wide counters (pool bytes in use, managed bytes allocated), so no
/// other test of this assembly may run beside it.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AttentionMemoryCollection
{
    public const string Name = "attention memory (runs alone)";
}

[Collection(AttentionMemoryCollection.Name)]
public class AttentionMemoryTests
{
    [Fact]
    public void LongSequenceOnCpuUsesLinearMemory()
    {
        const int n = 4096, d = 32;
        var gen = new Generator(5);
        using var q = Tensor.Randn([1, 1, n, d], gen);
        using var k = Tensor.Randn([1, 1, n, d], gen);
        using var v = Tensor.Randn([1, 1, n, d], gen);
        q.RequiresGrad = true;
        k.RequiresGrad = true;
        v.RequiresGrad = true;
        using var dout = Tensor.Randn([1, 1, n, d], gen);
        long scoresBytes = (long)n * n * 4;
        using (var warm = Attention.ScaledDotProductAttention(q, k, v)) { }
        long pool0 = BufferPool.BytesInUse, gc0 = GC.GetTotalAllocatedBytes(precise: true);
        var y = Attention.ScaledDotProductAttention(q, k, v);
        long poolFwd = BufferPool.BytesInUse - pool0, gcFwd = GC.GetTotalAllocatedBytes(precise: true) - gc0;
        // The output [n, d] and logsumexp [n] (saved for the backward) are all that stays: far below n*n*4.
        Assert.True(poolFwd <= 2L * n * d * 4, $"forward kept {poolFwd} pool bytes");
        Assert.True(gcFwd < scoresBytes / 64, $"forward allocated {gcFwd} managed bytes (scores would be {scoresBytes})");

        // Rows checked against a blockwise float64 reference.
        var qa = q.ToArray<float>();
        var ka = k.ToArray<float>();
        var va = v.ToArray<float>();
        var ya = y.ToArray<float>();
        double scale = 1 / Math.Sqrt(d);
        foreach (int row in new[] { 0, 1, 2047, 4095 })
        {
            double m = double.NegativeInfinity, l = 0;
            var acc = new double[d];
            for (int j0 = 0; j0 < n; j0 += 500)
            {
                for (int j = j0; j < Math.Min(n, j0 + 500); j++)
                {
                    double s = 0;
                    for (int c = 0; c < d; c++) s += (double)qa[row * d + c] * ka[j * d + c];
                    s *= scale;
                    double mn = Math.Max(m, s), alpha = Math.Exp(m - mn), p = Math.Exp(s - mn);
                    l = l * alpha + p;
                    for (int c = 0; c < d; c++) acc[c] = acc[c] * alpha + p * va[j * d + c];
                    m = mn;
                }
            }
            for (int c = 0; c < d; c++) Assert.Equal(acc[c] / l, ya[row * d + c], 1e-5);
        }

        long pool1 = BufferPool.BytesInUse, gc1 = GC.GetTotalAllocatedBytes(precise: true);
        using (var prod = y * dout)
        using (var loss = prod.Sum())
            loss.Backward();
        long gcBwd = GC.GetTotalAllocatedBytes(precise: true) - gc1;
        long poolBwd = BufferPool.BytesInUse - pool1;
        Assert.True(gcBwd < scoresBytes / 64, $"backward allocated {gcBwd} managed bytes");
        // Gradients of q, k, v plus the product's temporaries: linear in n.
        Assert.True(poolBwd < scoresBytes / 8, $"backward kept {poolBwd} pool bytes");
        y.Dispose();
        Assert.All(q.Grad!.ToArray<float>(), x => Assert.True(float.IsFinite(x)));
    }
}
