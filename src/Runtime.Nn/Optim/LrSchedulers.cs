namespace Runtime.Nn.Optim;

/// <summary>
/// A learning-rate schedule (torch.optim.lr_scheduler counterpart) in closed form: <see cref="LrAt"/> gives the
/// rate after a number of steps from a base rate. Constructing a scheduler sets the optimizer's rate for epoch 0;
/// each <see cref="Step"/> (called after <see cref="Optimizer.Step"/>) advances one epoch/iteration.
/// </summary>
public abstract class LrScheduler
{
    protected LrScheduler(Optimizer? optimizer)
    {
        Optimizer = optimizer;
        BaseLr = optimizer?.InitialLr ?? 0;
    }

    /// <summary>Sets the optimizer's rate to <see cref="CurrentLr"/> (derived constructors call it last).</summary>
    protected void Apply()
    {
        if (Optimizer != null) Optimizer.Lr = CurrentLr;
    }

    /// <summary>The optimizer whose rate is driven (null for a scheduler used as part of a <see cref="SequentialLR"/>).</summary>
    public Optimizer? Optimizer { get; }

    /// <summary>The base (initial) learning rate.</summary>
    public double BaseLr { get; }

    /// <summary>Steps taken so far (torch's <c>last_epoch</c>).</summary>
    public int LastEpoch { get; private set; }

    /// <summary>The learning rate at the current epoch.</summary>
    public double CurrentLr => LrAt(LastEpoch, BaseLr);

    /// <summary>The learning rate <paramref name="epoch"/> steps in, from <paramref name="baseLr"/>.</summary>
    public abstract double LrAt(int epoch, double baseLr);

    /// <summary>Advances one step and applies the new rate to the optimizer.</summary>
    public void Step()
    {
        LastEpoch++;
        if (Optimizer != null) Optimizer.Lr = CurrentLr;
    }
}

/// <summary>
/// torch's LinearLR: the factor goes linearly from <paramref name="startFactor"/> to <paramref name="endFactor"/> over
/// <paramref name="totalIters"/> steps, then stays. Detectron-style linear warmup (<c>warmup_factor</c>,
/// <c>warmup_iters</c>) is <c>LinearLR(opt, warmupFactor, 1.0, warmupIters)</c>, see <see cref="Warmup"/>.
/// </summary>
public sealed class LinearLR : LrScheduler
{
    private readonly double _start, _end;
    private readonly int _total;

    public LinearLR(Optimizer? optimizer, double startFactor = 1.0 / 3, double endFactor = 1.0, int totalIters = 5)
        : base(Validate(optimizer, startFactor, endFactor, totalIters, out var s, out var e, out var t))
    {
        _start = s;
        _end = e;
        _total = t;
        Apply();
    }

    private static Optimizer? Validate(Optimizer? o, double s, double e, int t, out double so, out double eo, out int to)
    {
        if (s <= 0 || s > 1) throw new ArgumentOutOfRangeException("startFactor", s, "start factor must be in (0, 1]");
        if (e < 0 || e > 1) throw new ArgumentOutOfRangeException("endFactor", e, "end factor must be in [0, 1]");
        if (t < 0) throw new ArgumentOutOfRangeException("totalIters", t, "total iterations must be non-negative");
        so = s; eo = e; to = t;
        return o;
    }

    /// <summary>Detectron2's linear warmup: factor <c>warmupFactor (1 - a) + a</c> with <c>a = iter / warmupIters</c>.</summary>
    public static LinearLR Warmup(Optimizer? optimizer, double warmupFactor, int warmupIters) => new(optimizer, warmupFactor, 1.0, warmupIters);

    public override double LrAt(int epoch, double baseLr)
    {
        if (_total == 0) return baseLr * _end;
        double f = _start + (_end - _start) * Math.Min(_total, epoch) / _total;
        return baseLr * f;
    }
}

/// <summary>torch's MultiStepLR: <c>base · gamma^(number of milestones &lt;= epoch)</c>.</summary>
public sealed class MultiStepLR : LrScheduler
{
    private int[] _milestones = [];
    private double _gamma = 1;

    public MultiStepLR(Optimizer? optimizer, IEnumerable<int> milestones, double gamma = 0.1) : base(optimizer)
    {
        _milestones = milestones.OrderBy(m => m).ToArray();
        _gamma = gamma;
        Apply();
    }

    public override double LrAt(int epoch, double baseLr)
    {
        int k = 0;
        foreach (var m in _milestones) if (m <= epoch) k++;
        return baseLr * Math.Pow(_gamma, k);
    }
}

/// <summary>torch's PolynomialLR: <c>base · (1 - min(epoch, totalIters) / totalIters)^power</c>.</summary>
public sealed class PolynomialLR : LrScheduler
{
    private readonly int _total;
    private readonly double _power;

    public PolynomialLR(Optimizer? optimizer, int totalIters = 5, double power = 1.0) : base(optimizer)
    {
        if (totalIters <= 0) throw new ArgumentOutOfRangeException(nameof(totalIters), totalIters, "total iterations must be positive");
        _total = totalIters;
        _power = power;
        Apply();
    }

    public override double LrAt(int epoch, double baseLr) =>
        _total == 0 ? baseLr : baseLr * Math.Pow(1.0 - (double)Math.Min(_total, epoch) / _total, _power);
}

/// <summary>torch's CosineAnnealingLR (closed form): <c>etaMin + (base - etaMin)(1 + cos(π epoch / tMax)) / 2</c>.</summary>
public sealed class CosineAnnealingLR : LrScheduler
{
    private readonly int _tMax;
    private readonly double _etaMin;

    public CosineAnnealingLR(Optimizer? optimizer, int tMax, double etaMin = 0) : base(optimizer)
    {
        if (tMax <= 0) throw new ArgumentOutOfRangeException(nameof(tMax), tMax, "T_max must be positive");
        _tMax = tMax;
        _etaMin = etaMin;
        Apply();
    }

    public override double LrAt(int epoch, double baseLr) =>
        _tMax == 0 ? baseLr : _etaMin + (baseLr - _etaMin) * (1 + Math.Cos(Math.PI * epoch / _tMax)) / 2;
}

/// <summary>
/// torch's SequentialLR: schedule i runs from milestone i-1 (0 for the first) with its own epoch counter restarted
/// at 0, e.g. a <see cref="LinearLR"/> warmup followed by a <see cref="MultiStepLR"/> or <see cref="CosineAnnealingLR"/>
/// (build the parts with a null optimizer).
/// </summary>
public sealed class SequentialLR : LrScheduler
{
    private LrScheduler[] _schedulers = [];
    private int[] _milestones = [];

    public SequentialLR(Optimizer optimizer, IReadOnlyList<LrScheduler> schedulers, IReadOnlyList<int> milestones) : base(optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(schedulers);
        ArgumentNullException.ThrowIfNull(milestones);
        if (schedulers.Count == 0) throw new ArgumentException("SequentialLR needs at least one scheduler", nameof(schedulers));
        if (milestones.Count != schedulers.Count - 1)
            throw new ArgumentException($"SequentialLR needs {schedulers.Count - 1} milestones for {schedulers.Count} schedulers, got {milestones.Count}", nameof(milestones));
        for (int i = 1; i < milestones.Count; i++)
            if (milestones[i] < milestones[i - 1]) throw new ArgumentException("milestones must be increasing", nameof(milestones));
        _schedulers = schedulers.ToArray();
        _milestones = milestones.ToArray();
        Apply();
    }

    public override double LrAt(int epoch, double baseLr)
    {
        int idx = 0;
        while (idx < _milestones.Length && _milestones[idx] <= epoch) idx++;
        int local = epoch - (idx == 0 ? 0 : _milestones[idx - 1]);
        return _schedulers[idx].LrAt(local, baseLr);
    }
}
