/*
 * The fused convolutions (conv.c, conv_avx2.c, conv_avx512.c).
 *
 * Fused im2col + GEMM for 'valid' convolutions: AVX2 (at most 32 filters) and AVX-512 (any).
 *
 * The same product as im2col(x) @ W (see nn/im2col.py), but each im2col row is read
 * straight from the image into registers as it is needed, so the matrix that is kh*kw
 * times larger than the image is never written out, and the skinny GEMM (6 to 20 filters)
 * runs in registers instead of through a BLAS call that packs the whole matrix first.
 * Filters are processed 8 (AVX2) or 16 (AVX-512) at a time in vector registers (NV vectors),
 * R output pixels (forward) or KB taps (weight gradient) at a time; with few filters, the
 * lanes hold output pixels instead.
 *
 * wp: the kernel as a (K, Fp) matrix, Fp = 16 * ceil(F / 16), zero-padded columns; bp: bias
 * (Fp) or NULL. conv_fwd_f32 and conv_dw_f32 (conv.c) pick the instruction set.
 *
 * This header holds what those files and the module's call counts share: the kernel matrix's
 * width, the tests that pick a loop, the tap offsets, and each instruction set's entry.
 */
#ifndef CONVOLAB_CONV_H
#define CONVOLAB_CONV_H

#include <stdlib.h>

#include "kernels.h"

/* The kernel matrix wp (and dwp) has FUSED_WIDTH * ceil(F / FUSED_WIDTH) columns, zeros past
   F, for both instruction sets: AVX-512 reads it 16 floats at a time. */
#define FUSED_WIDTH 16
#define AVX2_PIXELS(F, C, sw, Wo) ((F) <= 6 && (sw) == 1 && (C) <= 4 && (Wo) >= 16)

#define TAPS_IN_LANES(F, C, kw) ((F) <= 8 && (kw) * (C) <= 16 && (kw) * (C) > (F))

/* Which loop serves a forward on AVX-512 (pixels512 below) */
enum { PIX_NONE, PIX_ONE, PIX_ROW, PIX_TWO_ROWS };

/* Which loop serves a forward on AVX-512: PIX_NONE (filters in the lanes) or a pixel plan.
   Pixels where their lanes are fuller than the filters' would be: Wo / (P ceil(Wo / P)) for P
   pixels per tile, against F / (16 ceil(F / 16)); two vectors per filter where F allows (each
   loaded tap then feeds twice as many multiplies), as two rows where Wo <= 16. */
static inline int pixels512(long long F, long long C, long long sw, long long Wo)
{
    (void)C;
    if (sw != 1 || Wo < 8 || F > 24) return PIX_NONE;
    const long long P = Wo <= 16 || F > 12 ? 16 : 32;
    if (Wo * 16 * ((F + 15) / 16) <= F * P * ((Wo + P - 1) / P)) return PIX_NONE;
    return F > 12 ? PIX_ONE : Wo <= 16 ? PIX_TWO_ROWS : PIX_ROW;
}

#define PIXELS512(F, C, sw, Wo) (pixels512((F), (C), (sw), (Wo)) > 0)

/* koff[k]: tap k = (i, j, c)'s offset from a window's top-left pixel, in im2col's column order */
static inline long *tap_offsets(int W, int C, int kh, int kw)
{
    const int K = kh * kw * C;
    long *koff = malloc(sizeof(long) * (size_t)K);
    if (!koff) return NULL;
    for (int k = 0; k < K; k++) {
        const int c = k % C, j = (k / C) % kw, i = k / (C * kw);
        koff[k] = ((long)i * W + j) * C + c;
    }
    return koff;
}

int avx512_supported(void);  /* AVX-512 F/VL/BW/DQ and AVX2 + FMA on this CPU */

/* Each instruction set's loops for a 'valid' convolution (conv_fwd_f32 and conv_dw_f32 pick one) */
INTERNAL void conv_fwd_avx2(const float *restrict x, const float *restrict wp, const float *restrict bp,
                            float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                            int F, int Ho, int Wo, int relu);
INTERNAL void conv_dw_avx2(const float *restrict x, const float *restrict dy, float *restrict dwp,
                           float *restrict dbp, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                           int F, int Ho, int Wo);
INTERNAL void conv_fwd_avx512(const float *restrict x, const float *restrict wp, const float *restrict bp,
                              float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                              int F, int Ho, int Wo, int relu);
INTERNAL void conv_dw_avx512(const float *restrict x, const float *restrict dy, float *restrict dwp,
                             float *restrict dbp, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                             int F, int Ho, int Wo);

#endif
