/*
 * The batch-normalization kernels over (M, C) rows: the sums behind the moments and the
 * gradients, the affine pass and the input gradient's pass.
 */
#include <stdlib.h>

#include "kernels.h"

/* ---- Batch normalization over the last axis of an (M, C) array (NHWC images: M = N*H*W) ----
   Sums are taken in float over blocks of BN_BLOCK rows, at full vector width, and each block's
   sums are added in double: the error of a sum is that of BN_BLOCK float additions (at most
   about 5e-7 of the sum of magnitudes), not of M, so the statistics hardly depend on M or on
   how the rows are split. Adding every value in double instead (a conversion each) had made
   the moments the slowest of the BN passes. */
#define BN_BLOCK 8

/* s1[c] += sum_m x[m, c]; s2[c] += sum_m (x[m, c] - shift[c])^2  (shift NULL: s2 untouched) */
HOT void bn_sums_f32(const float *restrict x, const float *restrict shift, double *restrict s1,
                     double *restrict s2, long M, int C)
{
    float *restrict part = malloc(sizeof(float) * (size_t)C);
    if (!part) {  /* no block buffer: every value in double */
        for (long m = 0; m < M; m++)
            for (int c = 0; c < C; c++) {
                const double d = shift ? (double)(x[m * C + c] - shift[c]) : 0.0;
                if (shift) s2[c] += d * d;
                else s1[c] += (double)x[m * C + c];
            }
        return;
    }
    for (long m0 = 0; m0 < M; m0 += BN_BLOCK) {
        const long m1 = m0 + BN_BLOCK < M ? m0 + BN_BLOCK : M;
        for (int c = 0; c < C; c++) part[c] = 0.0f;
        if (shift) {
            for (long m = m0; m < m1; m++) {
                const float *row = x + m * C;
                for (int c = 0; c < C; c++) {
                    const float d = row[c] - shift[c];
                    part[c] += d * d;
                }
            }
            for (int c = 0; c < C; c++) s2[c] += (double)part[c];
        } else {
            for (long m = m0; m < m1; m++) {
                const float *row = x + m * C;
                for (int c = 0; c < C; c++) part[c] += row[c];
            }
            for (int c = 0; c < C; c++) s1[c] += (double)part[c];
        }
    }
    free(part);
}

/* y[m, c] = (x[m, c] - center[c]) * scale[c] + shift[c]  (centring first: no cancellation
   between two large terms when the variance is tiny and the scale large) */
HOT void bn_affine_f32(const float *restrict x, const float *restrict center, const float *restrict scale,
                       const float *restrict shift, float *restrict y, long M, int C)
{
    for (long m = 0; m < M; m++) {
        const float *xr = x + m * C;
        float *yr = y + m * C;
        for (int c = 0; c < C; c++) yr[c] = (xr[c] - center[c]) * scale[c] + shift[c];
    }
}

/* With xhat = (x - mean) * inv_std: sdy[c] += sum dy, sdyx[c] += sum dy * xhat (in blocks, as
   bn_sums_f32) */
HOT void bn_grad_sums_f32(const float *restrict dy, const float *restrict x, const float *restrict mean,
                          const float *restrict inv_std, double *restrict sdy, double *restrict sdyx, long M, int C)
{
    float *restrict part = malloc(sizeof(float) * 2 * (size_t)C);
    if (!part) {  /* no block buffer: every value in double */
        for (long m = 0; m < M; m++)
            for (int c = 0; c < C; c++) {
                const float g = dy[m * C + c], xhat = (x[m * C + c] - mean[c]) * inv_std[c];
                sdy[c] += (double)g;
                sdyx[c] += (double)(g * xhat);
            }
        return;
    }
    float *restrict p1 = part, *restrict p2 = part + C;
    for (long m0 = 0; m0 < M; m0 += BN_BLOCK) {
        const long m1 = m0 + BN_BLOCK < M ? m0 + BN_BLOCK : M;
        for (int c = 0; c < C; c++) p1[c] = p2[c] = 0.0f;
        for (long m = m0; m < m1; m++) {
            const float *g = dy + m * C, *xr = x + m * C;
            for (int c = 0; c < C; c++) {
                const float xhat = (xr[c] - mean[c]) * inv_std[c];
                p1[c] += g[c];
                p2[c] += g[c] * xhat;
            }
        }
        for (int c = 0; c < C; c++) {
            sdy[c] += (double)p1[c];
            sdyx[c] += (double)p2[c];
        }
    }
    free(part);
}

/* dx = a * dy + b + q * (x - mean), the closed-form BN input gradient with per-channel a, b, q */
HOT void bn_dx_f32(const float *restrict dy, const float *restrict x, const float *restrict mean,
                   const float *restrict a, const float *restrict b, const float *restrict q,
                   float *restrict dx, long M, int C)
{
    for (long m = 0; m < M; m++) {
        const float *g = dy + m * C, *xr = x + m * C;
        float *d = dx + m * C;
        for (int c = 0; c < C; c++) d[c] = a[c] * g[c] + b[c] + q[c] * (xr[c] - mean[c]);
    }
}
