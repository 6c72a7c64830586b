using System.Diagnostics;

namespace Runtime.Gpu.Tests;

/// <summary>
/// The CUDA form of every kernel program cannot be compiled by NVRTC without an NVIDIA machine, but
/// clang parses CUDA C++: this compiles each assembled CUDA source for sm_90 device code with a small
/// stand-in for the CUDA headers (builtin variables, math overloads), so C-vs-C++ slips in the shared
/// .k sources show up here. Skips when no clang is installed.
/// </summary>
public class CudaDialectTests
{
    private const string Mock = """
        #define __device__ __attribute__((device))
        #define __global__ __attribute__((global))
        #define __shared__ __attribute__((shared))
        #define __forceinline__ __inline__ __attribute__((always_inline))
        #include "__clang_cuda_builtin_vars.h"
        __device__ void __syncthreads();
        __device__ float __int_as_float(int);
        #define MATH1(f) __device__ float f(float); __device__ double f(double);
        MATH1(exp) MATH1(log) MATH1(log1p) MATH1(sqrt) MATH1(sin) MATH1(cos) MATH1(tanh) MATH1(erf) MATH1(erfc)
        MATH1(floor) MATH1(ceil) MATH1(rint) MATH1(round) MATH1(trunc) MATH1(fabs)
        #define MATH2(f) __device__ float f(float, float); __device__ double f(double, double);
        MATH2(fmin) MATH2(fmax) MATH2(pow)
        __device__ float expf(float); __device__ float logf(float);
        #define ROUNDED(f, t) __device__ t f(t, t);
        ROUNDED(__fadd_rn, float) ROUNDED(__fsub_rn, float) ROUNDED(__fmul_rn, float) ROUNDED(__fdiv_rn, float)
        ROUNDED(__dadd_rn, double) ROUNDED(__dsub_rn, double) ROUNDED(__dmul_rn, double) ROUNDED(__ddiv_rn, double)

        """;

    private static string? FindClang()
    {
        foreach (var c in new[] { "clang++", "/usr/lib/llvm-18/bin/clang++", "/usr/lib/llvm-17/bin/clang++", "/usr/lib/llvm-16/bin/clang++",
                     "/usr/lib/llvm-15/bin/clang++", "/usr/lib/llvm-14/bin/clang++" })
        {
            try
            {
                using var p = Process.Start(new ProcessStartInfo(c, "--version") { RedirectStandardOutput = true, RedirectStandardError = true });
                p!.WaitForExit();
                if (p.ExitCode == 0) return c;
            }
            catch (System.ComponentModel.Win32Exception)
            {
            }
        }
        return null;
    }

    public static IEnumerable<object[]> Programs()
    {
        var types = new[] { DType.Bool, DType.Int32, DType.Int64, DType.Float32, DType.Float64 };
        foreach (var t in types)
        {
            var d = GpuDialect.TypeDefines(t);
            yield return ["elementwise", d];
            yield return ["reduce", d];
            yield return ["sort", d + "#define SORT_LOCAL 2048\n"];
            if (t != DType.Bool)
            {
                yield return ["index", d];
                yield return ["matmul", d + "#define BM 128\n#define BN 128\n#define BK 8\n#define TM 8\n#define TN 8\n"];
            }
            // Every other kernel file is a floating-point program built with the type defines alone.
            if (t.IsFloating())
                foreach (var name in FloatingPrograms()) yield return [name, d];
            foreach (var to in types) yield return ["copy", GpuDialect.CopyDefines(t, to)];
        }
        foreach (var size in new[] { 1, 4, 8 }) yield return ["bits", GpuDialect.BitsDefines(size)];
    }

    /// <summary>The embedded kernel files not listed in <see cref="Programs"/> by name: softmax, pool, conv, and each later one.</summary>
    private static IEnumerable<string> FloatingPrograms()
    {
        const string prefix = "Runtime.Gpu.Kernels.";
        string[] special = ["common", "elementwise", "reduce", "sort", "index", "matmul", "copy", "bits"];
        return typeof(KernelSource).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && n.EndsWith(".k", StringComparison.Ordinal))
            .Select(n => n[prefix.Length..^2])
            .Where(n => !special.Contains(n))
            .Order(StringComparer.Ordinal);
    }

    [Fact]
    public void EveryKernelFile_IsChecked() =>
        Assert.Superset(new HashSet<string>(["softmax", "pool", "conv", "deform", "roi", "nms", "attention"]), FloatingPrograms().ToHashSet());

    [Fact]
    public void EveryProgram_ParsesAsCudaCpp()
    {
        var clang = FindClang();
        if (clang == null) return; // no clang here: nothing to check (NVRTC itself runs in gpu-run.sh)
        var dir = Path.Combine(Path.GetTempPath(), "runtime-cuda-dialect-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var failures = new List<string>();
            int i = 0;
            foreach (var p in Programs())
            {
                string file = (string)p[0], defines = (string)p[1];
                var path = Path.Combine(dir, $"{file}_{i++}.cu");
                File.WriteAllText(path, Mock + KernelSource.Assemble(GpuTarget.Cuda, true, file, defines));
                var psi = new ProcessStartInfo(clang, $"-x cuda --cuda-device-only --cuda-gpu-arch=sm_70 -nocudainc -nocudalib -std=c++17 -fsyntax-only -Werror=implicit-function-declaration {path}")
                {
                    RedirectStandardError = true,
                    RedirectStandardOutput = true,
                };
                using var proc = Process.Start(psi)!;
                string err = proc.StandardError.ReadToEnd();
                proc.WaitForExit();
                if (proc.ExitCode != 0) failures.Add($"{file} [{defines.Replace('\n', ' ')}]:\n{err}");
            }
            Assert.True(failures.Count == 0, string.Join("\n", failures.Take(3)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
