namespace Runtime;

/// <summary>
/// A seeded random source (xoshiro256**). Random tensors are drawn on the host and copied to their
/// device, so a seed gives the same values on every device.
/// </summary>
public sealed class Generator
{
    private ulong _s0, _s1, _s2, _s3;
    private double? _spare;

    public Generator(ulong seed) => ManualSeed(seed);

    /// <summary>The generator used when none is passed (seed it with <see cref="ManualSeed"/>).</summary>
    public static Generator Default { get; } = new(0x5EED);

    /// <summary>Restarts the sequence from <paramref name="seed"/>.</summary>
    public void ManualSeed(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
        _spare = null;
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Standard normal (Box–Muller).</summary>
    public double NextNormal()
    {
        if (_spare is { } s)
        {
            _spare = null;
            return s;
        }
        double u1;
        do u1 = NextDouble(); while (u1 <= double.Epsilon);
        double u2 = NextDouble();
        double r = Math.Sqrt(-2 * Math.Log(u1));
        _spare = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Uniform integer in [low, high).</summary>
    public long NextInt64(long low, long high)
    {
        if (high <= low) throw new ArgumentException($"empty range [{low}, {high})", nameof(high));
        ulong range = (ulong)(high - low);
        ulong limit = ulong.MaxValue - ulong.MaxValue % range;
        ulong v;
        do v = NextUInt64(); while (v >= limit);
        return low + (long)(v % range);
    }
}
