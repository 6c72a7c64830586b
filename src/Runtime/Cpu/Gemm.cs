// Naive placeholder so the tree builds until the packed, register-tiled GEMM lands in this file (it replaces all of this).
namespace Runtime.Cpu;
internal static unsafe class Gemm
{
    public static void Sgemm(int m, int n, int k, float* a, long rsA, long csA, float* b, long rsB, long csB, float* c, long ldc, bool accumulate, int maxThreads)
    { for (long i = 0; i < m; i++) for (long j = 0; j < n; j++) { float acc = accumulate ? c[i*ldc+j] : 0; for (long p = 0; p < k; p++) acc += a[i*rsA+p*csA]*b[p*rsB+j*csB]; c[i*ldc+j]=acc; } }
    public static void Dgemm(int m, int n, int k, double* a, long rsA, long csA, double* b, long rsB, long csB, double* c, long ldc, bool accumulate, int maxThreads)
    { for (long i = 0; i < m; i++) for (long j = 0; j < n; j++) { double acc = accumulate ? c[i*ldc+j] : 0; for (long p = 0; p < k; p++) acc += a[i*rsA+p*csA]*b[p*rsB+j*csB]; c[i*ldc+j]=acc; } }
}
