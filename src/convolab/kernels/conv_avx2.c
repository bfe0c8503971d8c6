/*
 * The fused convolutions' AVX2 + FMA loops (8 floats a vector, 16 registers): the forward with
 * the filters in the lanes (at most 32 filters) or, for few filters at stride 1, the output
 * pixels in the lanes; the kernel gradient with the filters in the lanes. See conv.h.
 */
#include "kernels.h"
#include "conv.h"

#if HAVE_FUSED
#include <stdlib.h>
#include <string.h>

/* The first loops are written for 8-wide vectors with FMA: built for AVX2 only, and used only
   where the CPU has it (conv_fused_supported); elsewhere convolab takes im2col + BLAS. */
#include <immintrin.h>
#define FUSED __attribute__((target("avx2,fma")))
#define FUSED_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

int conv_fused_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

typedef float v8f __attribute__((vector_size(32)));

FUSED_INLINE v8f load8(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
FUSED_INLINE void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }
FUSED_INLINE v8f splat8(float a) { const v8f zero = {0}; return zero + a; }
FUSED_INLINE v8f bcast8(const float *p) { return (v8f)_mm256_broadcast_ss(p); }  /* one load micro-op */

/* y rows [m, m + R) of the output: x0 points at the first window's top-left pixel, rstride
   is the step between neighbouring windows (sw * C floats), koff[k] tap k's offset. */
FUSED_INLINE void
fwd_rows(const float *restrict x0, long rstride, const long *restrict koff, int K, const float *restrict wp,
         long ldw, const float *restrict bp, float *restrict y, int F, int relu, const int NV, const int R)
{
    const int Fp = 8 * NV;
    v8f acc[6][4];
    _Pragma("GCC unroll 6")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++) acc[r][v] = bp ? load8(bp + 8 * v) : splat8(0.0f);
    for (int k = 0; k < K; k++) {
        const float *xk = x0 + koff[k];
        const float *wk = wp + (long)k * ldw;
        v8f wv[4];
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++) wv[v] = load8(wk + 8 * v);
        _Pragma("GCC unroll 6")
        for (int r = 0; r < R; r++) {
            const v8f a = bcast8(xk + r * rstride);
            _Pragma("GCC unroll 4")
            for (int v = 0; v < NV; v++) acc[r][v] += a * wv[v];
        }
    }
    if (relu)  /* max(0, y) with y second: maxps returns its second operand for NaN, so NaN stays NaN */
        _Pragma("GCC unroll 6")
        for (int r = 0; r < R; r++)
            _Pragma("GCC unroll 4")
            for (int v = 0; v < NV; v++) acc[r][v] = (v8f)_mm256_max_ps(_mm256_setzero_ps(), (__m256)acc[r][v]);
    _Pragma("GCC unroll 6")
    for (int r = 0; r < R; r++) {
        if (F == Fp) {
            _Pragma("GCC unroll 4")
            for (int v = 0; v < NV; v++) store8(y + (long)r * F + 8 * v, acc[r][v]);
        } else {
            float tmp[32];
            _Pragma("GCC unroll 4")
            for (int v = 0; v < NV; v++) store8(tmp + 8 * v, acc[r][v]);
            memcpy(y + (long)r * F, tmp, sizeof(float) * F);
        }
    }
}

FUSED_INLINE void
conv_fwd_impl(const float *restrict x, const float *restrict wp, long ldw, const float *restrict bp, float *restrict y,
              int N, int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo,
              const long *restrict koff, int relu, const int NV, const int R)
{
    const long rstride = (long)sw * C;
    const int K = kh * kw * C;
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++) {
            const float *xrow = x + (((long)n * H + (long)ho * sh) * W) * C;
            float *yrow = y + (((long)n * Ho + ho) * Wo) * F;
            int wo = 0;
            for (; wo + R <= Wo; wo += R)
                fwd_rows(xrow + wo * rstride, rstride, koff, K, wp, ldw, bp, yrow + (long)wo * F, F, relu, NV, R);
            for (; wo < Wo; wo++)
                fwd_rows(xrow + wo * rstride, rstride, koff, K, wp, ldw, bp, yrow + (long)wo * F, F, relu, NV, 1);
        }
}

/* Few filters (F <= 6) at stride 1: one filter per lane wastes lanes and needs a broadcast
   per multiply, so here the lanes hold 16 neighbouring output pixels instead, two vectors
   per filter. x is first copied channel-planar (xpl[n][c][h][w], padded at the end) so the
   16 pixels of a tap are one contiguous run. */
FUSED_INLINE void
conv_fwd_pixels(const float *restrict xpl, const long *restrict poff, const float *restrict wp,
                const float *restrict bp, float *restrict y, int N, int H, int W, int C, int K,
                int sh, int Ho, int Wo, int relu, const int F)
{
    const int Fp = FUSED_WIDTH;  /* wp's row stride: F <= 6 filters, padded to one block */
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++) {
            const float *xrow = xpl + ((long)n * C * H + (long)ho * sh) * W;
            for (int wo0 = 0; wo0 < Wo; wo0 += 16) {
                v8f acc[6][2];
                _Pragma("GCC unroll 6")
                for (int f = 0; f < F; f++) acc[f][0] = acc[f][1] = splat8(bp ? bp[f] : 0.0f);
                for (int k = 0; k < K; k++) {
                    const float *src = xrow + poff[k] + wo0;
                    const v8f a0 = load8(src), a1 = load8(src + 8);
                    const float *wk = wp + (long)k * Fp;
                    _Pragma("GCC unroll 6")
                    for (int f = 0; f < F; f++) {
                        const v8f wf = bcast8(wk + f);
                        acc[f][0] += a0 * wf;
                        acc[f][1] += a1 * wf;
                    }
                }
                float tmp[6][16];
                _Pragma("GCC unroll 6")
                for (int f = 0; f < F; f++) {
                    if (relu) {
                        acc[f][0] = (v8f)_mm256_max_ps(_mm256_setzero_ps(), (__m256)acc[f][0]);
                        acc[f][1] = (v8f)_mm256_max_ps(_mm256_setzero_ps(), (__m256)acc[f][1]);
                    }
                    store8(tmp[f], acc[f][0]);
                    store8(tmp[f] + 8, acc[f][1]);
                }
                const int np = Wo - wo0 < 16 ? Wo - wo0 : 16;
                float *yo = y + (((long)n * Ho + ho) * Wo + wo0) * F;
                for (int p = 0; p < np; p++)
                    _Pragma("GCC unroll 6")
                    for (int f = 0; f < F; f++) yo[(long)p * F + f] = tmp[f][p];
            }
        }
}

FUSED static int conv_fwd_by_pixels(const float *restrict x, const float *restrict wp, const float *restrict bp,
                              float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh,
                              int F, int Ho, int Wo, int relu)
{
    const long plane = (long)H * W, total = (long)N * C * plane;
    float *xpl = malloc(sizeof(float) * (size_t)(total + kw + 16));  /* padded: the last block reads past the row */
    long *poff = malloc(sizeof(long) * (size_t)(kh * kw * C));
    if (!xpl || !poff) { free(xpl); free(poff); return 0; }
    for (long t = total; t < total + kw + 16; t++) xpl[t] = 0.0f;
    for (int n = 0; n < N; n++)
        for (long q = 0; q < plane; q++)
            for (int c = 0; c < C; c++) xpl[((long)n * C + c) * plane + q] = x[((long)n * plane + q) * C + c];
    for (int k = 0; k < kh * kw * C; k++) {  /* k in im2col's (i, j, c) order */
        const int c = k % C, j = (k / C) % kw, i = k / (C * kw);
        poff[k] = c * plane + (long)i * W + j;
    }
    const int K = kh * kw * C;
    switch (F) {
    case 1: conv_fwd_pixels(xpl, poff, wp, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, 1); break;
    case 2: conv_fwd_pixels(xpl, poff, wp, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, 2); break;
    case 3: conv_fwd_pixels(xpl, poff, wp, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, 3); break;
    case 4: conv_fwd_pixels(xpl, poff, wp, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, 4); break;
    case 5: conv_fwd_pixels(xpl, poff, wp, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, 5); break;
    default: conv_fwd_pixels(xpl, poff, wp, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, 6); break;
    }
    free(xpl);
    free(poff);
    return 1;
}

FUSED INTERNAL void conv_fwd_avx2(const float *restrict x, const float *restrict wp, const float *restrict bp,
                      float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                      int F, int Ho, int Wo, int relu)
{
    const long ldw = FUSED_WIDTH * ((F + FUSED_WIDTH - 1) / FUSED_WIDTH);
    if (AVX2_PIXELS(F, C, sw, Wo) &&
        conv_fwd_by_pixels(x, wp, bp, y, N, H, W, C, kh, kw, sh, F, Ho, Wo, relu))
        return;
    long *koff = tap_offsets(W, C, kh, kw);
    if (!koff) return;
    switch ((F + 7) / 8) {
    case 1: conv_fwd_impl(x, wp, ldw, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, koff, relu, 1, 6); break;
    case 2: conv_fwd_impl(x, wp, ldw, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, koff, relu, 2, 4); break;
    case 3: conv_fwd_impl(x, wp, ldw, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, koff, relu, 3, 3); break;
    default: conv_fwd_impl(x, wp, ldw, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, koff, relu, 4, 2); break;
    }
    free(koff);
}

/* dwp[k, :] += sum over output pixels m of im2col(x)[m, k] * dy[m, :], for KB taps k0.. at a
   time held in registers; dbp += sum of dy rows when dbp is given. koff[k] is tap k's offset
   from a window's top-left pixel. dy rows are F floats apart: vector loads may run past a
   row into the next ones, whose lanes land in the padding columns of dwp; the last rows,
   where that would leave the array, are copied into a padded buffer first. */
FUSED_INLINE void
dw_taps(const float *restrict x, const float *restrict dy, const long *restrict koff, float *restrict dwp,
        float *restrict dbp, long Fp, int N, int H, int W, int C, int sh, int sw, int F, int Ho, int Wo,
        const int NV, const int KB)
{
    const long M = (long)N * Ho * Wo;
    const long safe = M - (8L * NV - F + F - 1) / F;  /* rows whose vector loads stay inside dy */
    v8f acc[4][4], db[4];
    _Pragma("GCC unroll 4")
    for (int t = 0; t < KB; t++)
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++) acc[t][v] = splat8(0.0f);
    _Pragma("GCC unroll 4")
    for (int v = 0; v < NV; v++) db[v] = splat8(0.0f);
    long m = 0;
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++) {
            const float *xrow = x + (((long)n * H + (long)ho * sh) * W) * C;
            for (int wo = 0; wo < Wo; wo++, m++) {
                const float *xw = xrow + (long)wo * sw * C;
                v8f d[4];
                if (m < safe) {
                    _Pragma("GCC unroll 4")
                    for (int v = 0; v < NV; v++) d[v] = load8(dy + m * F + 8 * v);
                } else {
                    float tmp[32] = {0};
                    memcpy(tmp, dy + m * F, sizeof(float) * F);
                    _Pragma("GCC unroll 4")
                    for (int v = 0; v < NV; v++) d[v] = load8(tmp + 8 * v);
                }
                if (dbp)
                    _Pragma("GCC unroll 4")
                    for (int v = 0; v < NV; v++) db[v] += d[v];
                _Pragma("GCC unroll 4")
                for (int t = 0; t < KB; t++) {
                    const v8f a = bcast8(xw + koff[t]);
                    _Pragma("GCC unroll 4")
                    for (int v = 0; v < NV; v++) acc[t][v] += a * d[v];
                }
            }
        }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < KB; t++)
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++) store8(dwp + (long)t * Fp + 8 * v, load8(dwp + (long)t * Fp + 8 * v) + acc[t][v]);
    if (dbp)
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++) store8(dbp + 8 * v, load8(dbp + 8 * v) + db[v]);
}

FUSED_INLINE void
conv_dw_impl(const float *restrict x, const float *restrict dy, float *restrict dwp, float *restrict dbp,
             int N, int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo,
             const int NV, const int KB)
{
    const int K = kh * kw * C;
    const long Fp = FUSED_WIDTH * ((F + FUSED_WIDTH - 1) / FUSED_WIDTH);
    long koff[4] = {0};
    for (int k0 = 0; k0 < K; k0 += KB) {
        const int nb = K - k0 < KB ? K - k0 : KB;
        _Pragma("GCC unroll 4")
        for (int t = 0; t < nb; t++) {
            const int k = k0 + t, c = k % C, j = (k / C) % kw, i = k / (C * kw);
            koff[t] = ((long)i * W + j) * C + c;
        }
        float *dst = dwp + (long)k0 * Fp;
        float *db = k0 == 0 ? dbp : NULL;  /* the bias gradient once, with the first taps */
        if (nb == KB) dw_taps(x, dy, koff, dst, db, Fp, N, H, W, C, sh, sw, F, Ho, Wo, NV, KB);
        else
            _Pragma("GCC unroll 4")
            for (int t = 0; t < nb; t++)
                dw_taps(x, dy, koff + t, dst + (long)t * Fp, t == 0 ? db : NULL, Fp, N, H, W, C, sh, sw, F, Ho, Wo, NV, 1);
    }
}

FUSED INTERNAL void conv_dw_avx2(const float *restrict x, const float *restrict dy, float *restrict dwp, float *restrict dbp,
                     int N, int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo)
{
    switch ((F + 7) / 8) {
    case 1: conv_dw_impl(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, 1, 4); break;
    case 2: conv_dw_impl(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, 2, 4); break;
    case 3: conv_dw_impl(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, 3, 3); break;
    default: conv_dw_impl(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, 4, 2); break;
    }
}

#endif
