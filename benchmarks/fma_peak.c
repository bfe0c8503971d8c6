/* The machine's floating-point ceiling: float32 FMAs per second on one core, with 256-bit
 * (AVX2) and 512-bit (AVX-512) vectors, 12 independent accumulators each (enough to hide the
 * FMA latency), no memory traffic. benchmarks/flops.py compiles and runs it:
 *
 *     gcc -O3 benchmarks/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 *
 * prints "avx2 <GFLOP/s>" and, where the CPU has AVX-512, "avx512 <GFLOP/s>". (On this
 * project's AMD EPYC, Zen 5: 130 to 143 and 267 to 286 per core over three runs; OpenBLAS's
 * sgemm, which the environment pins to its Haswell (AVX2) kernels with OPENBLAS_CORETYPE,
 * reaches 126 to 130.)
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define ACC 12
#define ITERS 40000000L

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx2,fma"))) static float run256(long n)
{
    __m256 a[ACC], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < ACC; i++) a[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < n; k++)
        for (int i = 0; i < ACC; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    float s = 0.0f, t[8];
    for (int i = 0; i < ACC; i++) { _mm256_storeu_ps(t, a[i]); s += t[0]; }
    return s;
}

__attribute__((target("avx512f"))) static float run512(long n)
{
    __m512 a[ACC], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < ACC; i++) a[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < n; k++)
        for (int i = 0; i < ACC; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    float s = 0.0f, t[16];
    for (int i = 0; i < ACC; i++) { _mm512_storeu_ps(t, a[i]); s += t[0]; }
    return s;
}

int main(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 1;
    double t = now();
    float s = run256(ITERS);
    printf("avx2 %.1f\n", ITERS * ACC * 16.0 / (now() - t) / 1e9);
    if (__builtin_cpu_supports("avx512f")) {
        t = now();
        s += run512(ITERS);
        printf("avx512 %.1f\n", ITERS * ACC * 32.0 / (now() - t) / 1e9);
    }
    return s == 12345.0f;  /* keeps the sums alive */
}
