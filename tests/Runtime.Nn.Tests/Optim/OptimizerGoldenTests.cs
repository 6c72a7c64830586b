using System.Text.Json;
using Runtime.Nn.Optim;
using static Runtime.Nn.Tests.Losses.LossTestUtil;

namespace Runtime.Nn.Tests.Optim;

/// <summary>SGD / Adam / AdamW, clip_grad_norm_ and the LR schedules against torch 1.13 (float64).</summary>
public class OptimizerGoldenTests
{
    private static readonly Lazy<JsonElement> Optim = new(() => LoadGolden("optim.json"));
    private static readonly Lazy<JsonElement[]> Schedules = new(() => LoadGolden("schedules.json").EnumerateArray().ToArray());

    public static IEnumerable<object[]> OptimizerIds() =>
        Optim.Value.GetProperty("optimizers").EnumerateArray().Select((c, i) => new object[] { i, c.GetProperty("kind").GetString()! });

    public static IEnumerable<object[]> ClipIds() => Enumerable.Range(0, Optim.Value.GetProperty("clip").GetArrayLength()).Select(i => new object[] { i });

    public static IEnumerable<object[]> ScheduleIds() =>
        Enumerable.Range(0, Schedules.Value.Length).Select(i => new object[] { i, Schedules.Value[i].GetProperty("name").GetString()! });

    private static double Get(JsonElement cfg, string key, double dflt) => cfg.TryGetProperty(key, out var v) ? v.GetDouble() : dflt;

    [Theory]
    [MemberData(nameof(OptimizerIds))]
    public void OptimizerMatchesTorch(int index, string kind)
    {
        var c = Optim.Value.GetProperty("optimizers")[index];
        var cfg = c.GetProperty("config");
        var shapes = c.GetProperty("shapes").EnumerateArray().Select(Ints).ToArray();
        var init = c.GetProperty("init").EnumerateArray().Select(Doubles).ToArray();
        var ps = shapes.Select((s, i) => Tensor.From<double>(init[i], s).RequiresGrad_()).ToArray();
        double lr = cfg.GetProperty("lr").GetDouble();
        double b1 = 0.9, b2 = 0.999;
        if (cfg.TryGetProperty("betas", out var betas)) { b1 = betas[0].GetDouble(); b2 = betas[1].GetDouble(); }
        bool ams = cfg.TryGetProperty("amsgrad", out var a) && a.GetBoolean();
        using Optimizer opt = kind switch
        {
            "sgd" => new Sgd(ps, lr, Get(cfg, "momentum", 0), Get(cfg, "dampening", 0), Get(cfg, "weight_decay", 0),
                cfg.TryGetProperty("nesterov", out var n) && n.GetBoolean()),
            "adam" => new Adam(ps, lr, b1, b2, Get(cfg, "eps", 1e-8), Get(cfg, "weight_decay", 0), ams),
            "adamw" => new AdamW(ps, lr, b1, b2, Get(cfg, "eps", 1e-8), Get(cfg, "weight_decay", 1e-2), ams),
            _ => throw new InvalidOperationException(kind),
        };
        var grads = c.GetProperty("grads").EnumerateArray().ToArray();
        var after = c.GetProperty("after").EnumerateArray().ToArray();
        Assert.Equal(10, grads.Length);
        for (int step = 0; step < grads.Length; step++)
        {
            opt.ZeroGrad();
            for (int i = 0; i < ps.Length; i++) ps[i].Grad = Tensor.From<double>(Doubles(grads[step][i]), shapes[i]);
            opt.Step();
            for (int i = 0; i < ps.Length; i++)
                AssertClose(Doubles(after[step][i]), ps[i].ToDoubleArray(), 1e-10, 0, $"{kind} step {step + 1} param {i}");
        }
        opt.ZeroGrad();
        Assert.All(ps, p => Assert.Null(p.Grad));
        foreach (var p in ps) p.Dispose();
    }

    [Theory]
    [MemberData(nameof(ClipIds))]
    public void ClipGradNormMatchesTorch(int index)
    {
        var c = Optim.Value.GetProperty("clip")[index];
        var shapes = c.GetProperty("shapes").EnumerateArray().Select(Ints).ToArray();
        var grads = c.GetProperty("grads").EnumerateArray().Select(Doubles).ToArray();
        var ps = shapes.Select(s => Tensor.Zeros(s, DType.Float64).RequiresGrad_()).ToArray();
        for (int i = 0; i < ps.Length; i++) ps[i].Grad = Tensor.From<double>(grads[i], shapes[i]);
        double normType = ReadDouble(c.GetProperty("norm_type"));
        double total = GradClip.ClipGradNorm(ps, c.GetProperty("max_norm").GetDouble(), normType);
        Assert.Equal(c.GetProperty("total").GetDouble(), total, 1e-12);
        var clipped = c.GetProperty("clipped").EnumerateArray().Select(Doubles).ToArray();
        for (int i = 0; i < ps.Length; i++) AssertClose(clipped[i], ps[i].Grad!.ToDoubleArray(), 1e-12, 1e-12, $"grad {i}");
        foreach (var p in ps) { p.Grad!.Dispose(); p.Dispose(); }
    }

    [Theory]
    [MemberData(nameof(ScheduleIds))]
    public void ScheduleMatchesTorch(int index, string name)
    {
        var c = Schedules.Value[index];
        var args = c.GetProperty("args");
        using var p = Tensor.Zeros([1], DType.Float64).RequiresGrad_();
        using var opt = new Sgd([p], c.GetProperty("base_lr").GetDouble());
        double A(string k) => args.GetProperty(k).GetDouble();
        int I(string k) => args.GetProperty(k).GetInt32();
        LrScheduler sched = name switch
        {
            "linear" => new LinearLR(opt, A("start_factor"), A("end_factor"), I("total_iters")),
            "multistep" => new MultiStepLR(opt, Ints(args.GetProperty("milestones")), A("gamma")),
            "poly" => new PolynomialLR(opt, I("total_iters"), A("power")),
            "cosine" => new CosineAnnealingLR(opt, I("T_max"), A("eta_min")),
            "warmup_multistep" => new SequentialLR(opt,
                [LinearLR.Warmup(null, A("start_factor"), I("warmup")), new MultiStepLR(null, Ints(args.GetProperty("milestones")), A("gamma"))],
                [I("warmup")]),
            "warmup_cosine" => new SequentialLR(opt,
                [new LinearLR(null, A("start_factor"), 1.0, I("warmup")), new CosineAnnealingLR(null, I("T_max"), A("eta_min"))],
                [I("warmup")]),
            _ => throw new InvalidOperationException(name),
        };
        var expected = Doubles(c.GetProperty("lrs"));
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - opt.Lr) <= 1e-12 + 1e-9 * Math.Abs(expected[i]), $"{name} step {i}: expected lr {expected[i]}, got {opt.Lr}");
            Assert.Equal(opt.Lr, sched.CurrentLr);
            opt.Step();
            sched.Step();
        }
    }
}
