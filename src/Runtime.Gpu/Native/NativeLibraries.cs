using System.Reflection;
using System.Runtime.InteropServices;

namespace Runtime.Gpu.Native;

/// <summary>
/// Finds the native GPU libraries at run time. The bindings name logical libraries ("OpenCL", "cuda",
/// "nvrtc"); a resolver maps each to a file found here, so that a machine without one only makes the
/// matching device unavailable (with the reason) instead of failing to start.
/// </summary>
internal static class NativeLibraries
{
    public const string OpenCL = "OpenCL";
    public const string Cuda = "cuda";
    public const string Nvrtc = "nvrtc";

    private static readonly object Gate = new();
    private static readonly Dictionary<string, (nint Handle, string Reason)> Loaded = new();
    private static int _installed;

    /// <summary>Installs the resolver for this assembly's bindings (once).</summary>
    public static void Install()
    {
        if (Interlocked.Exchange(ref _installed, 1) != 0) return;
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path) =>
        name is OpenCL or Cuda or Nvrtc ? TryLoad(name, out _) : 0;

    /// <summary>Loads a logical library (cached); returns 0 and why not when it cannot be found.</summary>
    public static nint TryLoad(string name, out string reason)
    {
        lock (Gate)
        {
            if (!Loaded.TryGetValue(name, out var entry))
            {
                entry = name switch
                {
                    OpenCL => LoadFirst(OpenCLCandidates(), "the OpenCL ICD loader (libOpenCL.so.1)"),
                    Cuda => LoadFirst(CudaCandidates(), "the NVIDIA driver library (libcuda.so.1)"),
                    Nvrtc => LoadNvrtc(),
                    _ => (0, $"unknown library '{name}'"),
                };
                Loaded[name] = entry;
            }
            reason = entry.Reason;
            return entry.Handle;
        }
    }

    /// <summary>The path or name NVRTC was loaded from (for messages), or null.</summary>
    public static string? NvrtcSource { get; private set; }

    private static IEnumerable<string> OpenCLCandidates() =>
        OperatingSystem.IsWindows() ? ["OpenCL.dll"] :
        OperatingSystem.IsMacOS() ? ["/System/Library/Frameworks/OpenCL.framework/OpenCL"] :
        ["libOpenCL.so.1", "libOpenCL.so"];

    private static IEnumerable<string> CudaCandidates() =>
        OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"];

    private static (nint, string) LoadFirst(IEnumerable<string> candidates, string what)
    {
        var tried = new List<string>();
        foreach (var c in candidates)
        {
            if (NativeLibrary.TryLoad(c, out var h)) return (h, "");
            tried.Add(c);
        }
        return (0, $"{what} was not found (tried {string.Join(", ", tried)})");
    }

    /// <summary>
    /// NVRTC's soname carries its major version. Order: RUNTIME_NVRTC_PATH (a file), the default library
    /// path, $CUDA_HOME/lib64, /usr/local/cuda/lib64, then the nvidia wheels of Python environments
    /// (nvidia/cu13/lib for CUDA 13, nvidia/cuda_nvrtc/lib before).
    /// </summary>
    private static (nint, string) LoadNvrtc()
    {
        var tried = new List<string>();
        var env = Environment.GetEnvironmentVariable("RUNTIME_NVRTC_PATH");
        if (!string.IsNullOrWhiteSpace(env))
        {
            if (TryLoadNvrtcFile(env, out var h)) return (h, "");
            return (0, $"RUNTIME_NVRTC_PATH={env} could not be loaded");
        }
        foreach (var soname in NvrtcSonames())
        {
            tried.Add(soname);
            if (NativeLibrary.TryLoad(soname, out var h))
            {
                NvrtcSource = soname;
                return (h, "");
            }
        }
        foreach (var dir in NvrtcDirectories())
        {
            if (!Directory.Exists(dir)) continue;
            foreach (var soname in NvrtcSonames())
            {
                var file = Path.Combine(dir, soname);
                if (!File.Exists(file)) continue;
                tried.Add(file);
                if (TryLoadNvrtcFile(file, out var h)) return (h, "");
            }
        }
        return (0, "NVRTC (libnvrtc.so.13/.12) was not found in the library path, $CUDA_HOME/lib64, /usr/local/cuda/lib64 " +
                   "or a Python environment's nvidia/*/lib; set RUNTIME_NVRTC_PATH to the file");
    }

    private static bool TryLoadNvrtcFile(string file, out nint handle)
    {
        // NVRTC opens libnvrtc-builtins by soname; loading it first from the same folder makes that succeed
        // when the folder is not on the library path (pip wheels, a toolkit outside ldconfig).
        var dir = Path.GetDirectoryName(Path.GetFullPath(file));
        if (dir != null && Directory.Exists(dir))
            foreach (var b in Directory.EnumerateFiles(dir, OperatingSystem.IsWindows() ? "nvrtc-builtins*.dll" : "libnvrtc-builtins.so*").Order())
                NativeLibrary.TryLoad(b, out _);
        if (!NativeLibrary.TryLoad(file, out handle)) return false;
        NvrtcSource = file;
        return true;
    }

    private static IEnumerable<string> NvrtcSonames()
    {
        if (OperatingSystem.IsWindows())
        {
            foreach (var v in new[] { "130", "131", "132", "120", "121", "122", "123", "124", "125", "126", "127", "128", "129" })
                yield return $"nvrtc64_{v}_0.dll";
            yield break;
        }
        yield return "libnvrtc.so.13";
        yield return "libnvrtc.so.12";
        yield return "libnvrtc.so.11.2";
        yield return "libnvrtc.so";
    }

    private static IEnumerable<string> NvrtcDirectories()
    {
        foreach (var v in new[] { "CUDA_HOME", "CUDA_PATH", "CUDA_ROOT" })
        {
            var root = Environment.GetEnvironmentVariable(v);
            if (string.IsNullOrWhiteSpace(root)) continue;
            yield return Path.Combine(root, "lib64");
            yield return Path.Combine(root, "lib");
        }
        yield return "/usr/local/cuda/lib64";
        foreach (var d in SafeDirectories("/usr/local", "cuda-*").OrderDescending()) yield return Path.Combine(d, "lib64");
        foreach (var site in PythonSitePackages())
        {
            yield return Path.Combine(site, "nvidia", "cu13", "lib");
            yield return Path.Combine(site, "nvidia", "cuda_nvrtc", "lib");
            yield return Path.Combine(site, "nvidia", "cu12", "lib");
        }
    }

    private static IEnumerable<string> PythonSitePackages()
    {
        var roots = new List<string>();
        foreach (var v in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
        {
            var p = Environment.GetEnvironmentVariable(v);
            if (!string.IsNullOrWhiteSpace(p)) roots.Add(Path.Combine(p, "lib"));
        }
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(home)) roots.Add(Path.Combine(home, ".local", "lib"));
        roots.AddRange(["/usr/local/lib", "/usr/lib", "/opt/conda/lib", "/usr/local/lib64", "/usr/lib64"]);
        foreach (var r in roots)
            foreach (var py in SafeDirectories(r, "python3*").OrderDescending())
            {
                yield return Path.Combine(py, "site-packages");
                yield return Path.Combine(py, "dist-packages");
            }
        var pp = Environment.GetEnvironmentVariable("PYTHONPATH");
        if (!string.IsNullOrWhiteSpace(pp))
            foreach (var p in pp.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)) yield return p;
    }

    private static IEnumerable<string> SafeDirectories(string root, string pattern)
    {
        try
        {
            return Directory.Exists(root) ? Directory.GetDirectories(root, pattern) : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
