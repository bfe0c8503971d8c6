/*
 * The fused convolutions' entry: which instruction set's loops run (conv_avx2.c,
 * conv_avx512.c), and zero padding one image at a time. See conv.h.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "conv.h"

#if HAVE_FUSED
/* Which loops conv_fwd_f32 and conv_dw_f32 take: 2 = AVX-512, 1 = AVX2, 0 = none (set by
   set_fused_isa from Python, with the GIL held; the best the CPU has at load). */
static int fused_isa = -1;

static int best_isa(void) { return avx512_supported() ? 2 : conv_fused_supported() ? 1 : 0; }

static int current_isa(void)
{
    if (fused_isa < 0) fused_isa = best_isa();
    return fused_isa;
}

void conv_fwd_f32(const float *restrict x, const float *restrict wp, const float *restrict bp,
                  float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                  int F, int Ho, int Wo, int relu)
{
    if (current_isa() == 2) conv_fwd_avx512(x, wp, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, relu);
    else conv_fwd_avx2(x, wp, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, relu);
}

void conv_dw_f32(const float *restrict x, const float *restrict dy, float *restrict dwp, float *restrict dbp,
                 int N, int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo)
{
    if (current_isa() == 2) conv_dw_avx512(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo);
    else conv_dw_avx2(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo);
}

/* Zero padding without a padded copy of the batch: each image is padded on its own into a
   buffer of (Ho - 1) * sh + kh rows by (Wo - 1) * sw + kw columns (pt rows and pl columns of
   zeros before it, as many after as the windows reach), which stays in the cache while the
   'valid' loops above run on it. Only rows and columns of the image are read. Returns 0 when
   the buffer cannot be allocated (nothing is written then). */
static void pad_image(const float *restrict x, float *restrict buf, int H, int W, int C, int pt, int pl, int Hp,
                      int Wp)
{
    const long rowp = (long)Wp * C;
    const int c0 = pl, c1 = pl + W < Wp ? pl + W : Wp;  /* padded columns that hold image columns */
    for (int r = 0; r < Hp; r++) {
        float *dst = buf + r * rowp;
        const int src = r - pt;
        if (src < 0 || src >= H) { memset(dst, 0, sizeof(float) * rowp); continue; }
        memset(dst, 0, sizeof(float) * (size_t)c0 * C);
        memcpy(dst + (long)c0 * C, x + (long)src * W * C, sizeof(float) * (size_t)(c1 - c0) * C);
        memset(dst + (long)c1 * C, 0, sizeof(float) * (size_t)(Wp - c1) * C);
    }
}

INTERNAL int conv_fwd_padded_f32(const float *restrict x, const float *restrict wp, const float *restrict bp,
                               float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                               int F, int Ho, int Wo, int pt, int pl, int relu)
{
    const int Hp = (Ho - 1) * sh + kh, Wp = (Wo - 1) * sw + kw;
    float *buf = malloc(sizeof(float) * (size_t)Hp * Wp * C);
    if (!buf) return 0;
    for (int n = 0; n < N; n++) {
        pad_image(x + (long)n * H * W * C, buf, H, W, C, pt, pl, Hp, Wp);
        conv_fwd_f32(buf, wp, bp, y + (long)n * Ho * Wo * F, 1, Hp, Wp, C, kh, kw, sh, sw, F, Ho, Wo, relu);
    }
    free(buf);
    return 1;
}

INTERNAL int conv_dw_padded_f32(const float *restrict x, const float *restrict dy, float *restrict dwp,
                              float *restrict dbp, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                              int F, int Ho, int Wo, int pt, int pl)
{
    const int Hp = (Ho - 1) * sh + kh, Wp = (Wo - 1) * sw + kw;
    float *buf = malloc(sizeof(float) * (size_t)Hp * Wp * C);
    if (!buf) return 0;
    for (int n = 0; n < N; n++) {
        pad_image(x + (long)n * H * W * C, buf, H, W, C, pt, pl, Hp, Wp);
        conv_dw_f32(buf, dy + (long)n * Ho * Wo * F, dwp, dbp, 1, Hp, Wp, C, kh, kw, sh, sw, F, Ho, Wo);
    }
    free(buf);
    return 1;
}

INTERNAL int conv_current_isa(void) { return current_isa(); }

INTERNAL int conv_best_isa(void) { return best_isa(); }

INTERNAL void conv_set_isa(int isa) { fused_isa = isa; }

#else
int conv_fused_supported(void) { return 0; }
INTERNAL int conv_current_isa(void) { return 0; }
INTERNAL int conv_best_isa(void) { return 0; }
INTERNAL void conv_set_isa(int isa) { (void)isa; }
#endif
