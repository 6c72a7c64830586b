using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Runtime.Gpu;

/// <summary>The embedded .k kernel files, assembled into a full program source for a target.</summary>
internal static class KernelSource
{
    private static readonly ConcurrentDictionary<string, string> Files = new();

    /// <summary>The text of Kernels/<paramref name="name"/>.k.</summary>
    public static string File(string name) => Files.GetOrAdd(name, static n =>
    {
        using var s = typeof(KernelSource).Assembly.GetManifestResourceStream($"Runtime.Gpu.Kernels.{n}.k")
            ?? throw new InvalidOperationException($"kernel source '{n}.k' is not embedded in Runtime.Gpu");
        using var r = new StreamReader(s, Encoding.UTF8);
        return r.ReadToEnd();
    });

    /// <summary>Prelude, defines, the shared helpers and the file: the whole program.</summary>
    public static string Assemble(GpuTarget target, bool fp64, string file, string defines) =>
        GpuDialect.Prelude(target, fp64) + defines + "\n" + File("common") + "\n" + File(file);
}

/// <summary>
/// Compiled kernel binaries on disk (OpenCL program binaries, CUDA PTX/CUBIN), keyed by a hash of the
/// source, the build options, the device and the driver, in $RUNTIME_KERNEL_CACHE, else
/// $XDG_CACHE_HOME/runtime-kernels, else ~/.cache/runtime-kernels. A cache that cannot be written is
/// skipped silently; a stale or corrupt entry is rebuilt by the caller.
/// </summary>
internal static class KernelCache
{
    private const string FormatVersion = "1";
    private static long _hits, _misses, _stores;

    public static long Hits => Interlocked.Read(ref _hits);

    public static long Misses => Interlocked.Read(ref _misses);

    public static long Stores => Interlocked.Read(ref _stores);

    /// <summary>The cache folder, or null when caching is switched off (RUNTIME_KERNEL_CACHE=off).</summary>
    public static string? Directory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("RUNTIME_KERNEL_CACHE");
            if (!string.IsNullOrWhiteSpace(env)) return env is "off" or "0" or "none" ? null : env;
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (!string.IsNullOrWhiteSpace(xdg)) return Path.Combine(xdg, "runtime-kernels");
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".cache", "runtime-kernels");
        }
    }

    public static string Key(string source, string options, string deviceIdentity) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{FormatVersion}\0{deviceIdentity}\0{options}\0{source}"))).ToLowerInvariant();

    public static byte[]? TryRead(string key, string extension)
    {
        var dir = Directory;
        if (dir == null) return null;
        try
        {
            var path = Path.Combine(dir, key + extension);
            if (System.IO.File.Exists(path))
            {
                Interlocked.Increment(ref _hits);
                return System.IO.File.ReadAllBytes(path);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        Interlocked.Increment(ref _misses);
        return null;
    }

    public static void Write(string key, string extension, ReadOnlySpan<byte> data)
    {
        var dir = Directory;
        if (dir == null || data.IsEmpty) return;
        try
        {
            System.IO.Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, key + extension);
            var tmp = path + "." + Environment.ProcessId + "." + Environment.CurrentManagedThreadId + ".tmp";
            System.IO.File.WriteAllBytes(tmp, data.ToArray());
            System.IO.File.Move(tmp, path, overwrite: true);
            Interlocked.Increment(ref _stores);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Deletes a bad entry so the next run rebuilds it.</summary>
    public static void Remove(string key, string extension)
    {
        var dir = Directory;
        if (dir == null) return;
        try
        {
            System.IO.File.Delete(Path.Combine(dir, key + extension));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
