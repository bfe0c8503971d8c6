/*
 * The fused convolutions' AVX-512 loops. See conv.h.
 */
#include "kernels.h"
#include "conv.h"

#if HAVE_FUSED
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* ---- The same three loops for AVX-512 (16 filters or pixels per vector, 32 registers) ----
 * Chosen at run time where the CPU and the OS support AVX-512 F/VL/BW/DQ (fused_isa). The
 * AVX2 loops above stay for other CPUs, for F <= 32. Here any number of filters works: they
 * go in blocks of up to 64 (4 vectors), each block with its own accumulators, so the weights
 * of one block (kh * kw * C x 64 floats) stay in the L2 cache while R output pixels at a time
 * stream past them. Partial vectors are read and written with masks, so no lane ever touches
 * memory past an array's end. */
#define F512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define F512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512bw,avx512dq,fma")))

typedef float v16f __attribute__((vector_size(64)));

/* Whole vectors move through memcpy, which AddressSanitizer checks (it does not see inside
   the masked-move intrinsics, which only partial vectors use). */
F512_INLINE v16f load16(const float *p) { v16f v; memcpy(&v, p, sizeof v); return v; }
F512_INLINE v16f load16m(const float *p, __mmask16 m)
{
    return m == 0xFFFF ? load16(p) : (v16f)_mm512_maskz_loadu_ps(m, p);
}
F512_INLINE void store16m(float *p, v16f v, __mmask16 m)
{
    if (m == 0xFFFF) memcpy(p, &v, sizeof v);
    else _mm512_mask_storeu_ps(p, m, (__m512)v);
}
F512_INLINE v16f bcast16(const float *p) { return (v16f)_mm512_set1_ps(*p); }
static inline __mmask16 lanes(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* R output pixels (windows rstride floats apart, the first at x0) times one block of nf <=
   16 * NV filters: y[r, f] = bias[f] + sum_k x0[r * rstride + koff[k]] * wp[k * ldw + f].
   wp, bp and y point at the block's first filter; y's rows are ldy floats apart. */
F512_INLINE void
fwd16_rows(const float *restrict x0, long rstride, const long *restrict koff, int K, const float *restrict wp,
           long ldw, const float *restrict bp, float *restrict y, long ldy, int nf, int relu, const int NV,
           const int R)
{
    v16f acc[24][4];
    _Pragma("GCC unroll 24")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++) acc[r][v] = bp ? load16(bp + 16 * v) : (v16f){0};
    for (int k = 0; k < K; k++) {
        const float *xk = x0 + koff[k];
        const float *wk = wp + (long)k * ldw;
        v16f wv[4];
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++) wv[v] = load16(wk + 16 * v);
        _Pragma("GCC unroll 24")
        for (int r = 0; r < R; r++) {
            const v16f a = bcast16(xk + r * rstride);
            _Pragma("GCC unroll 4")
            for (int v = 0; v < NV; v++) acc[r][v] += a * wv[v];
        }
    }
    _Pragma("GCC unroll 24")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++)
            store16m(y + r * ldy + 16 * v, relu ? (v16f)_mm512_max_ps(_mm512_setzero_ps(), (__m512)acc[r][v]) : acc[r][v],
                     lanes(nf - 16 * v));
}

/* One output row's Wo pixels for one filter block: tiles of R, the rest in tiles of 8, 4, 2, 1
   (a tile of one pixel would leave the FMA units waiting on one accumulator's latency). */
#define FWD16_TILE(RR) \
    for (; wo + (RR) <= Wo; wo += (RR)) \
        fwd16_rows(xrow + wo * rstride, rstride, koff, K, wp, ldw, bp, yrow + (long)wo * F, F, nf, relu, NV, (RR));

F512_INLINE void
fwd16_block(const float *restrict x, const float *restrict wp, long ldw, const float *restrict bp,
            float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo,
            const long *restrict koff, int nf, int relu, const int NV, const int R)
{
    const long rstride = (long)sw * C;
    const int K = kh * kw * C;
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++) {
            const float *xrow = x + (((long)n * H + (long)ho * sh) * W) * C;
            float *yrow = y + (((long)n * Ho + ho) * Wo) * F;
            int wo = 0;
            FWD16_TILE(R)
            if (R > 8) { FWD16_TILE(8) }
            if (R > 4) { FWD16_TILE(4) }
            FWD16_TILE(2)
            FWD16_TILE(1)
        }
}

/* Few filters at stride 1: as conv_fwd_pixels, the lanes hold output pixels, two vectors of 16
   per filter (F <= 12): 32 pixels of one row, or with TWO_ROWS 16 pixels of two neighbouring
   rows (for narrow outputs); one vector per filter (F <= 24) where ONE. The input gradient of
   a convolution with few input channels is such a convolution (its filters are the input's
   channels). */
F512_INLINE void
pixels16_tile(const float *restrict xrow, long xstep, const long *restrict poff, int K, const float *restrict wp,
              long ldw, const float *restrict bp, float *restrict yo, long ystep, int np0, int np1, int relu,
              const int F, const int PV)
{
    v16f acc[24][2];
    _Pragma("GCC unroll 24")
    for (int f = 0; f < F; f++)
        _Pragma("GCC unroll 2")
        for (int u = 0; u < PV; u++) acc[f][u] = (v16f)_mm512_set1_ps(bp ? bp[f] : 0.0f);
    for (int k = 0; k < K; k++) {
        const float *src = xrow + poff[k];
        v16f a[2];
        _Pragma("GCC unroll 2")
        for (int u = 0; u < PV; u++) a[u] = load16(src + u * xstep);
        const float *wk = wp + (long)k * ldw;
        _Pragma("GCC unroll 24")
        for (int f = 0; f < F; f++) {
            const v16f wf = bcast16(wk + f);
            _Pragma("GCC unroll 2")
            for (int u = 0; u < PV; u++) acc[f][u] += a[u] * wf;
        }
    }
    float tmp[24][16];
    _Pragma("GCC unroll 2")
    for (int u = 0; u < PV; u++) {
        _Pragma("GCC unroll 24")
        for (int f = 0; f < F; f++)
            _mm512_storeu_ps(tmp[f], relu ? _mm512_max_ps(_mm512_setzero_ps(), (__m512)acc[f][u]) : (__m512)acc[f][u]);
        float *yu = yo + u * ystep;
        const int np = u ? np1 : np0;
        for (int p = 0; p < np; p++)
            _Pragma("GCC unroll 24")
            for (int f = 0; f < F; f++) yu[(long)p * F + f] = tmp[f][p];
    }
}

F512_INLINE void
conv_fwd16_pixels(const float *restrict xpl, const long *restrict poff, const float *restrict wp, long ldw,
                  const float *restrict bp, float *restrict y, int N, int H, int W, int C, int K,
                  int sh, int Ho, int Wo, int relu, const int F, const int plan)
{
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho += plan == PIX_TWO_ROWS ? 2 : 1) {
            const float *xrow = xpl + ((long)n * C * H + (long)ho * sh) * W;
            float *yrow = y + (((long)n * Ho + ho) * Wo) * F;
            if (plan == PIX_TWO_ROWS) {  /* Wo <= 16 */
                if (ho + 1 < Ho)
                    pixels16_tile(xrow, (long)sh * W, poff, K, wp, ldw, bp, yrow, (long)Wo * F, Wo, Wo, relu, F, 2);
                else
                    pixels16_tile(xrow, 0, poff, K, wp, ldw, bp, yrow, 0, Wo, 0, relu, F, 1);
                continue;
            }
            const int P = plan == PIX_ROW ? 32 : 16;
            for (int wo0 = 0; wo0 < Wo; wo0 += P) {
                const int np = Wo - wo0 < P ? Wo - wo0 : P;
                if (np > 16)
                    pixels16_tile(xrow + wo0, 16, poff, K, wp, ldw, bp, yrow + (long)wo0 * F, 16L * F, 16, np - 16, relu, F,
                                  2);
                else
                    pixels16_tile(xrow + wo0, 0, poff, K, wp, ldw, bp, yrow + (long)wo0 * F, 0, np, 0, relu, F, 1);
            }
        }
}

F512 static int conv_fwd16_by_pixels(const float *restrict x, const float *restrict wp, long ldw,
                                     const float *restrict bp, float *restrict y, int N, int H, int W, int C,
                                     int kh, int kw, int sh, int F, int Ho, int Wo, int plan, int relu)
{
    const long plane = (long)H * W, total = (long)N * C * plane, pad = kw + 32;
    float *xpl = malloc(sizeof(float) * (size_t)(total + pad));  /* the last block reads past the row */
    long *poff = malloc(sizeof(long) * (size_t)(kh * kw * C));
    if (!xpl || !poff) { free(xpl); free(poff); return 0; }
    for (long t = total; t < total + pad; t++) xpl[t] = 0.0f;
    for (int n = 0; n < N; n++)
        for (long q = 0; q < plane; q++)
            for (int c = 0; c < C; c++) xpl[((long)n * C + c) * plane + q] = x[((long)n * plane + q) * C + c];
    for (int k = 0; k < kh * kw * C; k++) {
        const int c = k % C, j = (k / C) % kw, i = k / (C * kw);
        poff[k] = c * plane + (long)i * W + j;
    }
    const int K = kh * kw * C;
#define PIX_CASE(FF) case FF: \
    if (plan == PIX_ONE) conv_fwd16_pixels(xpl, poff, wp, ldw, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, FF, PIX_ONE); \
    else if (plan == PIX_ROW) conv_fwd16_pixels(xpl, poff, wp, ldw, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, FF, PIX_ROW); \
    else conv_fwd16_pixels(xpl, poff, wp, ldw, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, FF, PIX_TWO_ROWS); \
    break;
#define PIX1_CASE(FF) case FF: conv_fwd16_pixels(xpl, poff, wp, ldw, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, FF, PIX_ONE); break;
    switch (F) {
    PIX_CASE(1) PIX_CASE(2) PIX_CASE(3) PIX_CASE(4) PIX_CASE(5) PIX_CASE(6)
    PIX_CASE(7) PIX_CASE(8) PIX_CASE(9) PIX_CASE(10) PIX_CASE(11) PIX_CASE(12)
    PIX1_CASE(13) PIX1_CASE(14) PIX1_CASE(15) PIX1_CASE(16) PIX1_CASE(17) PIX1_CASE(18)
    PIX1_CASE(19) PIX1_CASE(20) PIX1_CASE(21) PIX1_CASE(22) PIX1_CASE(23)
    default: conv_fwd16_pixels(xpl, poff, wp, ldw, bp, y, N, H, W, C, K, sh, Ho, Wo, relu, 24, PIX_ONE); break;
    }
#undef PIX_CASE
#undef PIX1_CASE
    free(xpl);
    free(poff);
    return 1;
}

F512 INTERNAL void conv_fwd_avx512(const float *restrict x, const float *restrict wp, const float *restrict bp,
                                   float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                                   int F, int Ho, int Wo, int relu)
{
    const long ldw = FUSED_WIDTH * ((F + FUSED_WIDTH - 1) / FUSED_WIDTH);
    const int pv = pixels512(F, C, sw, Wo);
    if (pv && conv_fwd16_by_pixels(x, wp, ldw, bp, y, N, H, W, C, kh, kw, sh, F, Ho, Wo, pv, relu))
        return;
    long *koff = tap_offsets(W, C, kh, kw);
    if (!koff) return;
    for (int f0 = 0; f0 < F; f0 += 64) {
        const int nf = F - f0 < 64 ? F - f0 : 64;
        const float *wb = wp + f0, *bb = bp ? bp + f0 : NULL;
        float *yb = y + f0;
        switch ((nf + 15) / 16) {
        case 1: fwd16_block(x, wb, ldw, bb, yb, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, koff, nf, relu, 1, 16); break;
        case 2: fwd16_block(x, wb, ldw, bb, yb, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, koff, nf, relu, 2, 12); break;
        case 3: fwd16_block(x, wb, ldw, bb, yb, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, koff, nf, relu, 3, 8); break;
        default: fwd16_block(x, wb, ldw, bb, yb, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, koff, nf, relu, 4, 6); break;
        }
    }
    free(koff);
}

/* dwp[k0 + t, :] += sum over the pixels of rows [r0, r1) (an output row is (n, ho)) of
   x[window + koff[t]] * dy[pixel, :], for KB taps t and one block of nf <= 16 * NV filters:
   dy, dwp point at the block's first filter; dy's rows are F floats apart, dwp's ldw. */
F512_INLINE void
dw16_taps(const float *restrict x, const float *restrict dy, const long *restrict koff, float *restrict dwp, long ldw,
          int r0, int r1, int H, int W, int C, int sh, int sw, int F, int Ho, int Wo, int nf, const int NV,
          const int KB)
{
    v16f acc[24][4];
    __mmask16 mk[4];
    _Pragma("GCC unroll 4")
    for (int v = 0; v < NV; v++) mk[v] = lanes(nf - 16 * v);
    _Pragma("GCC unroll 24")
    for (int t = 0; t < KB; t++)
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++) acc[t][v] = (v16f){0};
    for (int row = r0; row < r1; row++) {
        const int n = row / Ho, ho = row % Ho;
        const float *xrow = x + (((long)n * H + (long)ho * sh) * W) * C;
        const float *drow = dy + (long)row * Wo * F;
        for (int wo = 0; wo < Wo; wo++) {
            const float *xw = xrow + (long)wo * sw * C;
            v16f d[4];
            _Pragma("GCC unroll 4")
            for (int v = 0; v < NV; v++) d[v] = load16m(drow + (long)wo * F + 16 * v, mk[v]);
            _Pragma("GCC unroll 24")
            for (int t = 0; t < KB; t++) {
                const v16f a = bcast16(xw + koff[t]);
                _Pragma("GCC unroll 4")
                for (int v = 0; v < NV; v++) acc[t][v] += a * d[v];
            }
        }
    }
    _Pragma("GCC unroll 24")
    for (int t = 0; t < KB; t++)
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; v++) {
            float *p = dwp + (long)t * ldw + 16 * v;
            store16m(p, load16m(p, mk[v]) + acc[t][v], mk[v]);
        }
}

#define DW16_TAPS(KK) \
    for (; k0 + (KK) <= K; k0 += (KK)) { \
        for (int t = 0; t < (KK); t++) { \
            const int k = k0 + t, c = k % C, j = (k / C) % kw, i = k / (C * kw); \
            koff[t] = ((long)i * W + j) * C + c; \
        } \
        dw16_taps(x, dyb, koff, dwb + (long)k0 * ldw, ldw, r0, r1, H, W, C, sh, sw, F, Ho, Wo, nf, NV, (KK)); \
    }

/* All taps of one filter block over the output rows [r0, r1) */
F512_INLINE void
dw16_block(const float *restrict x, const float *restrict dyb, float *restrict dwb, long ldw, int r0, int r1,
           int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo, int nf, const int NV,
           const int KB)
{
    const int K = kh * kw * C;
    long koff[24];
    int k0 = 0;
    DW16_TAPS(KB)
    if (KB > 8) { DW16_TAPS(8) }
    if (KB > 4) { DW16_TAPS(4) }
    DW16_TAPS(2)
    DW16_TAPS(1)
}

/* The kernel gradient with few filters (F <= 8) and short kernel rows (kw * C <= 16 values,
   more than F): the lanes hold the taps (j, c) of one kernel row i instead of the filters
   (LeNet's first layer: 15 of 16 lanes, not 6), RI kernel rows at a time. Each output pixel
   adds dy[pixel, f] times its window's row i into acc[i][f]; the sums go into dwp's (i, j, c)
   rows at the end. */
F512_INLINE void
dw16_taps_in_lanes(const float *restrict x, const float *restrict dy, float *restrict dwp, long ldw, int N, int H,
                   int W, int C, int kw, int sh, int sw, int Ho, int Wo, int i0, const int FF, const int RI)
{
    const int L = kw * C;
    const __mmask16 m = lanes(L);
    const long rowstep = (long)W * C;
    v16f acc[4][8];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < RI; r++)
        _Pragma("GCC unroll 8")
        for (int f = 0; f < FF; f++) acc[r][f] = (v16f){0};
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++) {
            const float *xrow = x + (((long)n * H + (long)ho * sh + i0) * W) * C;
            const float *drow = dy + (((long)n * Ho + ho) * Wo) * FF;
            for (int wo = 0; wo < Wo; wo++) {
                const float *xw = xrow + (long)wo * sw * C;
                v16f dv[8];
                _Pragma("GCC unroll 8")
                for (int f = 0; f < FF; f++) dv[f] = bcast16(drow + (long)wo * FF + f);
                _Pragma("GCC unroll 4")
                for (int r = 0; r < RI; r++) {
                    const v16f a = load16m(xw + r * rowstep, m);
                    _Pragma("GCC unroll 8")
                    for (int f = 0; f < FF; f++) acc[r][f] += a * dv[f];
                }
            }
        }
    _Pragma("GCC unroll 4")
    for (int r = 0; r < RI; r++)
        _Pragma("GCC unroll 8")
        for (int f = 0; f < FF; f++) {
            float t[16];
            memcpy(t, &acc[r][f], sizeof t);
            float *d = dwp + (long)(i0 + r) * L * ldw + f;
            for (int l = 0; l < L; l++) d[(long)l * ldw] += t[l];
        }
}

F512_INLINE void
dw16_taps_rows(const float *restrict x, const float *restrict dy, float *restrict dwp, long ldw, int N, int H, int W,
               int C, int kh, int kw, int sh, int sw, int Ho, int Wo, const int FF)
{
    int i0 = 0;
    if (FF <= 6)  /* 4 rows: 24 accumulators, 6 broadcasts and the row in 31 registers */
        for (; i0 + 4 <= kh; i0 += 4) dw16_taps_in_lanes(x, dy, dwp, ldw, N, H, W, C, kw, sh, sw, Ho, Wo, i0, FF, 4);
    for (; i0 + 2 <= kh; i0 += 2) dw16_taps_in_lanes(x, dy, dwp, ldw, N, H, W, C, kw, sh, sw, Ho, Wo, i0, FF, 2);
    for (; i0 < kh; i0++) dw16_taps_in_lanes(x, dy, dwp, ldw, N, H, W, C, kw, sh, sw, Ho, Wo, i0, FF, 1);
}

F512 static void conv_dw16_by_taps(const float *restrict x, const float *restrict dy, float *restrict dwp, int N,
                                   int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo)
{
    const long ldw = FUSED_WIDTH * ((F + FUSED_WIDTH - 1) / FUSED_WIDTH);
    switch (F) {
#define TAPS_CASE(FF) case FF: dw16_taps_rows(x, dy, dwp, ldw, N, H, W, C, kh, kw, sh, sw, Ho, Wo, FF); break;
    TAPS_CASE(1) TAPS_CASE(2) TAPS_CASE(3) TAPS_CASE(4) TAPS_CASE(5) TAPS_CASE(6) TAPS_CASE(7)
    default: dw16_taps_rows(x, dy, dwp, ldw, N, H, W, C, kh, kw, sh, sw, Ho, Wo, 8); break;
#undef TAPS_CASE
    }
}

/* The kernel gradient in chunks of output rows whose dy (and windows) stay in the L2 cache
   while every tap block passes over them; the bias gradient as plain sums of dy's rows. */
F512 INTERNAL void conv_dw_avx512(const float *restrict x, const float *restrict dy, float *restrict dwp,
                                  float *restrict dbp, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                                  int F, int Ho, int Wo)
{
    const long ldw = FUSED_WIDTH * ((F + FUSED_WIDTH - 1) / FUSED_WIDTH);
    const int rows = N * Ho;
    if (TAPS_IN_LANES(F, C, kw)) {
        conv_dw16_by_taps(x, dy, dwp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo);
    } else {
        int chunk = (int)((65536 / ldw) / Wo);  /* output rows holding 256 KB of dy */
        if (chunk < 1) chunk = 1;
        for (int r0 = 0; r0 < rows; r0 += chunk) {
            const int r1 = rows - r0 < chunk ? rows : r0 + chunk;
            for (int f0 = 0; f0 < F; f0 += 64) {
                const int nf = F - f0 < 64 ? F - f0 : 64;
                switch ((nf + 15) / 16) {
                case 1: dw16_block(x, dy + f0, dwp + f0, ldw, r0, r1, H, W, C, kh, kw, sh, sw, F, Ho, Wo, nf, 1, 16); break;
                case 2: dw16_block(x, dy + f0, dwp + f0, ldw, r0, r1, H, W, C, kh, kw, sh, sw, F, Ho, Wo, nf, 2, 12); break;
                case 3: dw16_block(x, dy + f0, dwp + f0, ldw, r0, r1, H, W, C, kh, kw, sh, sw, F, Ho, Wo, nf, 3, 8); break;
                default: dw16_block(x, dy + f0, dwp + f0, ldw, r0, r1, H, W, C, kh, kw, sh, sw, F, Ho, Wo, nf, 4, 6); break;
                }
            }
        }
    }
    if (dbp) {
        const long M = (long)rows * Wo;
        for (int f0 = 0; f0 < F; f0 += 16) {
            const __mmask16 m = lanes(F - f0);
            v16f s = {0};
            for (long i = 0; i < M; i++) s += load16m(dy + i * F + f0, m);
            store16m(dbp + f0, load16m(dbp + f0, m) + s, m);
        }
    }
}

int avx512_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && conv_fused_supported();
}

#endif
