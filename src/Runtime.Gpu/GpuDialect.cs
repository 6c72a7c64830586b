using System.Text;

namespace Runtime.Gpu;

/// <summary>The two languages a kernel source is compiled as.</summary>
internal enum GpuTarget
{
    OpenCL,
    Cuda,
}

/// <summary>
/// The thin dialect the .k kernel sources are written in: one macro prelude per target swaps the few
/// words that differ between OpenCL C and CUDA C++ (qualifiers, barriers, thread indices, integer
/// types, conversions), as tinygrad does for its rendered kernels. docs/gpu.md lists the words.
/// </summary>
internal static class GpuDialect
{
    public static string Prelude(GpuTarget target, bool fp64) => target == GpuTarget.OpenCL ? OpenCLPrelude(fp64) : CudaPrelude;

    private static string OpenCLPrelude(bool fp64) => (fp64 ? "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n#define HAS_FP64 1\n" : "#define HAS_FP64 0\n") + """
        #define TARGET_OPENCL 1
        typedef uchar u8;
        typedef int i32;
        typedef uint u32;
        typedef long i64;
        typedef ulong u64;
        #define KERNEL __kernel
        #define GLOBAL __global
        #define LOCAL __local
        #define LOCAL_MEM __local
        #define DEVICE static inline
        #define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
        #define GROUP_ID(d) ((i64)get_group_id(d))
        #define LOCAL_ID(d) ((int)get_local_id(d))
        #define LOCAL_SIZE(d) ((int)get_local_size(d))
        #define NUM_GROUPS(d) ((i64)get_num_groups(d))
        #define F32_INF INFINITY
        #define F32_NAN NAN
        #define F2I32(x) convert_int_sat_rtz(x)
        #define F2I64(x) convert_long_sat_rtz(x)
        #define IS_NAN(x) isnan(x)
        #define IS_INF(x) isinf(x)
        #define exp_t exp
        #define log_t log
        #define UNROLL _Pragma("unroll")

        """ + (fp64 ? "typedef double ACC;\ntypedef double PARAM;\n" : "typedef float ACC;\ntypedef float PARAM;\n");

    private const string CudaPrelude = """
        #define HAS_FP64 1
        #define TARGET_CUDA 1
        typedef unsigned char u8;
        typedef int i32;
        typedef unsigned int u32;
        typedef long long i64;
        typedef unsigned long long u64;
        #define KERNEL extern "C" __global__
        #define GLOBAL
        #define LOCAL
        #define LOCAL_MEM __shared__
        #define DEVICE static __device__ __forceinline__
        #define BARRIER() __syncthreads()
        #define GROUP_ID(d) ((i64)((d) == 0 ? blockIdx.x : (d) == 1 ? blockIdx.y : blockIdx.z))
        #define LOCAL_ID(d) ((int)((d) == 0 ? threadIdx.x : (d) == 1 ? threadIdx.y : threadIdx.z))
        #define LOCAL_SIZE(d) ((int)((d) == 0 ? blockDim.x : (d) == 1 ? blockDim.y : blockDim.z))
        #define NUM_GROUPS(d) ((i64)((d) == 0 ? gridDim.x : (d) == 1 ? gridDim.y : gridDim.z))
        #define F32_INF __int_as_float(0x7f800000)
        #define F32_NAN __int_as_float(0x7fffffff)
        #define F2I32(x) ((i32)(x))
        #define F2I64(x) ((i64)(x))
        #define IS_NAN(x) ((x) != (x))
        #define IS_INF(x) ((x) == (x) && (x) - (x) != (x) - (x))
        static __device__ __forceinline__ float exp_t(float x) { return expf(x); }
        static __device__ __forceinline__ double exp_t(double x) { return exp(x); }
        static __device__ __forceinline__ float log_t(float x) { return logf(x); }
        static __device__ __forceinline__ double log_t(double x) { return log(x); }
        #define UNROLL _Pragma("unroll")
        typedef double ACC;
        typedef double PARAM;

        """;

    /// <summary>The element type's name in kernel sources.</summary>
    public static string TypeName(DType t) => t switch
    {
        DType.Bool => "u8",
        DType.Int32 => "i32",
        DType.Int64 => "i64",
        DType.Float32 => "float",
        _ => "double",
    };

    private static readonly string[] TypeDefinesCache = Enum.GetValues<DType>().Select(BuildTypeDefines).ToArray();
    private static readonly string[,] CopyDefinesCache = BuildCopyDefines();

    /// <summary>Defines describing one dtype T for the typed kernel files.</summary>
    public static string TypeDefines(DType t) => TypeDefinesCache[(int)t];

    private static string BuildTypeDefines(DType t)
    {
        var sb = new StringBuilder();
        sb.Append("#define T ").Append(TypeName(t)).Append('\n');
        sb.Append("#define T_FLOAT ").Append(t.IsFloating() ? 1 : 0).Append('\n');
        sb.Append("#define T_DOUBLE ").Append(t == DType.Float64 ? 1 : 0).Append('\n');
        sb.Append("#define T_BOOL ").Append(t == DType.Bool ? 1 : 0).Append('\n');
        sb.Append("#define T_I64 ").Append(t == DType.Int64 ? 1 : 0).Append('\n');
        var (lo, hi) = t switch
        {
            DType.Bool => ("((u8)0)", "((u8)255)"),
            DType.Int32 => ("((i32)(-2147483647 - 1))", "((i32)2147483647)"),
            DType.Int64 => ("((i64)(-0x7fffffffffffffff - 1))", "((i64)0x7fffffffffffffff)"),
            _ => ("(-(T)F32_INF)", "((T)F32_INF)"),
        };
        sb.Append("#define T_LOWEST ").Append(lo).Append('\n');
        sb.Append("#define T_HIGHEST ").Append(hi).Append('\n');
        return sb.ToString();
    }

    /// <summary>Defines for the kernels that only move bits: U is the unsigned type of that size.</summary>
    public static string BitsDefines(int size) => size switch
    {
        1 => "#define U u8\n",
        4 => "#define U u32\n",
        _ => "#define U u64\n",
    };

    public static string CopyDefines(DType from, DType to) => CopyDefinesCache[(int)from, (int)to];

    private static string[,] BuildCopyDefines()
    {
        var types = Enum.GetValues<DType>();
        var r = new string[types.Length, types.Length];
        foreach (var a in types)
            foreach (var b in types) r[(int)a, (int)b] = BuildCopyDefines(a, b);
        return r;
    }

    private static string BuildCopyDefines(DType from, DType to) =>
        $"#define TS {TypeName(from)}\n#define TD {TypeName(to)}\n#define SRC_FLOAT {(from.IsFloating() ? 1 : 0)}\n" +
        $"#define DST_BOOL {(to == DType.Bool ? 1 : 0)}\n#define DST_I32 {(to == DType.Int32 ? 1 : 0)}\n#define DST_I64 {(to == DType.Int64 ? 1 : 0)}\n";
}
