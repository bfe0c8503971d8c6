/*
 * The window kernels: im2col and col2im (the window matrix of a convolution and its adjoint),
 * max pooling forward and backward. NHWC float32, windows read in (kh, kw, C) order, as
 * nn/im2col.py does; padding (pt, pl) is TensorFlow's 'same' split or zero for 'valid'.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* Short copies (a kernel row is often 5 or 15 floats): two overlapping fixed-size moves,
   which the compiler turns into a pair of vector loads and stores, instead of a loop or a
   library call per row. */
static inline void copy_f32(float *restrict dst, const float *restrict src, int n)
{
    if (n >= 8 && n <= 16) {
        memcpy(dst, src, 32);
        memcpy(dst + n - 8, src + n - 8, 32);
    } else if (n >= 4 && n < 8) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 4, src + n - 4, 16);
    } else {
        for (int t = 0; t < n; t++) dst[t] = src[t];
    }
}

static inline void zero_f32(float *restrict dst, int n)
{
    for (int t = 0; t < n; t++) dst[t] = 0.0f;
}

/* cols[(n*Ho + ho)*Wo + wo, (i*kw + j)*C + c] = x[n, ho*sh + i - pt, wo*sw + j - pl, c] or 0.
   Rows are ld floats apart: ld = kh*kw*C, or one more for a trailing column of ones (the bias
   trick), which is filled here too. */
HOT void im2col_f32(const float *restrict x, float *restrict cols, int N, int H, int W, int C, int kh, int kw,
                int sh, int sw, int pt, int pl, int Ho, int Wo, int ld)
{
    const long K = ld;
    const int rowlen = kw * C;
    if (ld > kh * kw * C) {  /* the bias trick's column of ones */
        const long M = (long)N * Ho * Wo;
        for (long m = 0; m < M; m++) cols[m * K + (long)kh * kw * C] = 1.0f;
    }
    if (pt == 0 && pl == 0 && (Ho - 1) * sh + kh <= H && (Wo - 1) * sw + kw <= W) {
        /* Every window inside the image ('valid'): no bounds checks, one short copy per kernel row. */
        for (int n = 0; n < N; n++)
            for (int ho = 0; ho < Ho; ho++)
                for (int wo = 0; wo < Wo; wo++) {
                    float *row = cols + (((long)n * Ho + ho) * Wo + wo) * K;
                    const float *src = x + (((long)n * H + (long)ho * sh) * W + (long)wo * sw) * C;
                    for (int i = 0; i < kh; i++) copy_f32(row + i * rowlen, src + (long)i * W * C, rowlen);
                }
        return;
    }
    for (int n = 0; n < N; n++) {
        const float *xn = x + (long)n * H * W * C;
        for (int ho = 0; ho < Ho; ho++) {
            for (int wo = 0; wo < Wo; wo++) {
                float *row = cols + (((long)n * Ho + ho) * Wo + wo) * K;
                const int h0 = ho * sh - pt, w0 = wo * sw - pl;
                for (int i = 0; i < kh; i++) {
                    const int h = h0 + i;
                    float *dst = row + (long)i * kw * C;
                    if (h < 0 || h >= H) { zero_f32(dst, kw * C); continue; }
                    if (w0 >= 0 && w0 + kw <= W) {  /* whole kernel row inside: one copy */
                        copy_f32(dst, xn + ((long)h * W + w0) * C, kw * C);
                        continue;
                    }
                    for (int j = 0; j < kw; j++) {
                        const int w = w0 + j;
                        if (w < 0 || w >= W) zero_f32(dst + j * C, C);
                        else copy_f32(dst + j * C, xn + ((long)h * W + w) * C, C);
                    }
                }
            }
        }
    }
}

/* dx = 0; dx[n, ho*sh + i - pt, wo*sw + j - pl, c] += cols[...] (the adjoint of im2col_f32) */
HOT void col2im_f32(const float *restrict cols, float *restrict dx, int N, int H, int W, int C, int kh, int kw,
                int sh, int sw, int pt, int pl, int Ho, int Wo, int ld)
{
    const long K = ld;
    const int valid = pt == 0 && pl == 0 && (Ho - 1) * sh + kh <= H && (Wo - 1) * sw + kw <= W;
    for (int n = 0; n < N; n++) {
        float *dxn = dx + (long)n * H * W * C;
        memset(dxn, 0, sizeof(float) * (long)H * W * C);
        if (valid) {  /* no bounds checks: each kernel row adds kw*C contiguous values */
            const int rowlen = kw * C;
            for (int ho = 0; ho < Ho; ho++)
                for (int wo = 0; wo < Wo; wo++) {
                    const float *row = cols + (((long)n * Ho + ho) * Wo + wo) * K;
                    float *d0 = dxn + ((long)ho * sh * W + (long)wo * sw) * C;
                    for (int i = 0; i < kh; i++) {
                        float *restrict d = d0 + (long)i * W * C;
                        const float *restrict s = row + i * rowlen;
                        for (int t = 0; t < rowlen; t++) d[t] += s[t];
                    }
                }
            continue;
        }
        for (int ho = 0; ho < Ho; ho++) {
            for (int wo = 0; wo < Wo; wo++) {
                const float *row = cols + (((long)n * Ho + ho) * Wo + wo) * K;
                const int h0 = ho * sh - pt, w0 = wo * sw - pl;
                for (int i = 0; i < kh; i++) {
                    const int h = h0 + i;
                    if (h < 0 || h >= H) continue;
                    for (int j = 0; j < kw; j++) {
                        const int w = w0 + j;
                        if (w < 0 || w >= W) continue;
                        float *d = dxn + ((long)h * W + w) * C;
                        const float *s = row + ((long)i * kw + j) * C;
                        for (int c = 0; c < C; c++) d[c] += s[c];
                    }
                }
            }
        }
    }
}

/* y[n,ho,wo,c] = max over the window (padding never wins); arg = flat window index i*pw + j
   of the first maximum, as NumPy's argmax picks it. */
/* The lesson's case, 2x2 windows at stride 2 with no padding: four rows of C values per
   output pixel, compared lane by lane in registers. */
/* Portable 8-float vectors (GCC/Clang vector extensions): SSE pairs in the default build, one
   AVX register in the x86-64-v3 clone. Compare gives a lane mask; select blends by it. */
#define PV8 static inline __attribute__((always_inline))
typedef float pv8f __attribute__((vector_size(32)));
typedef int pv8i __attribute__((vector_size(32)));
PV8 pv8f pv8_splat(float v) { return (pv8f){v, v, v, v, v, v, v, v}; }
PV8 pv8f pv8_load(const float *p) { pv8f v; memcpy(&v, p, sizeof v); return v; }
PV8 void pv8_store(float *p, pv8f v) { memcpy(p, &v, sizeof v); }
PV8 pv8i pv8i_load(const int *p) { pv8i v; memcpy(&v, p, sizeof v); return v; }
PV8 pv8f pv8_select(pv8i mask, pv8f yes, pv8f no) { return (pv8f)(((pv8i)yes & mask) | ((pv8i)no & ~mask)); }
/* Max pooling's "v beats the running maximum m": greater, or the first NaN (NumPy's argmax, the
   reference, takes the first NaN of a window as its maximum) */
PV8 pv8i pv8_beats(pv8f v, pv8f m) { return ~(v <= m) & (m == m); }
#define BEATS(v, m) (!((v) <= (m)) && (m) == (m))

/* The 2x2 forward for whole blocks of 8 channels, 8 at a time in vector registers, cloned
   per instruction set (128 16x16x64 images: 0.26 -> 0.15 ms, `python benchmarks/pool_kernels.py`);
   the same comparisons in the same order as maxpool2x2_fwd, so the first maximum (or the first
   NaN) wins. Other channel counts (LeNet's 6) keep maxpool2x2_fwd, which GCC compiles better
   for them than this with a scalar tail (0.12 against 0.26 ms for 128 28x28x6 images). */
HOT static void maxpool2x2_fwd8(const float *restrict x, float *restrict y, int *restrict arg,
                           int N, int H, int W, int C, int Ho, int Wo)
{
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++)
            for (int wo = 0; wo < Wo; wo++) {
                const long o = (((long)n * Ho + ho) * Wo + wo) * C;
                const float *a = x + (((long)n * H + 2 * ho) * W + 2 * wo) * C;
                const float *b = a + C, *c2 = a + (long)W * C, *d = c2 + C;
                float *yo = y + o;
                int *ao = arg + o;
                for (int c0 = 0; c0 < C; c0 += 8) {
                    pv8f m = pv8_load(a + c0), k = pv8_splat(0.0f);
                    const pv8f vb = pv8_load(b + c0), vc = pv8_load(c2 + c0), vd = pv8_load(d + c0);
                    pv8i gt = pv8_beats(vb, m);
                    k = pv8_select(gt, pv8_splat(1.0f), k); m = pv8_select(gt, vb, m);
                    gt = pv8_beats(vc, m);
                    k = pv8_select(gt, pv8_splat(2.0f), k); m = pv8_select(gt, vc, m);
                    gt = pv8_beats(vd, m);
                    k = pv8_select(gt, pv8_splat(3.0f), k); m = pv8_select(gt, vd, m);
                    pv8_store(yo + c0, m);
                    const pv8i ki = __builtin_convertvector(k, pv8i);
                    memcpy(ao + c0, &ki, sizeof ki);
                }
            }
}

static void maxpool2x2_fwd(const float *restrict x, float *restrict y, int *restrict arg,
                           int N, int H, int W, int C, int Ho, int Wo)
{
    for (int n = 0; n < N; n++)
        for (int ho = 0; ho < Ho; ho++)
            for (int wo = 0; wo < Wo; wo++) {
                const long o = (((long)n * Ho + ho) * Wo + wo) * C;
                const float *a = x + (((long)n * H + 2 * ho) * W + 2 * wo) * C;
                const float *b = a + C, *c2 = a + (long)W * C, *d = c2 + C;
                float *yo = y + o;
                int *ao = arg + o;
                for (int c = 0; c < C; c++) {  /* the index rides as a float so the loop vectorises */
                    const float vb = b[c], vc = c2[c], vd = d[c];
                    float m = a[c], k = 0.0f;
                    int t = BEATS(vb, m);
                    k = t ? 1.0f : k; m = t ? vb : m;
                    t = BEATS(vc, m);
                    k = t ? 2.0f : k; m = t ? vc : m;
                    t = BEATS(vd, m);
                    k = t ? 3.0f : k; m = t ? vd : m;
                    yo[c] = m;
                    ao[c] = (int)k;
                }
            }
}

/* Returns -1 (nothing written) when it cannot allocate its tap lists, else 0. */
HOT int maxpool_fwd_f32(const float *restrict x, float *restrict y, int *restrict arg, int N, int H, int W, int C, int ph, int pw,
                     int sh, int sw, int pt, int pl, int Ho, int Wo)
{
    if (ph == 2 && pw == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0 && 2 * Ho <= H && 2 * Wo <= W) {
        if (C % 8 == 0) maxpool2x2_fwd8(x, y, arg, N, H, W, C, Ho, Wo);
        else maxpool2x2_fwd(x, y, arg, N, H, W, C, Ho, Wo);
        return 0;
    }
    /* Per output pixel: the window's taps inside the image listed once (offset and index),
       then 8 channels at a time, the running maximum and its index (as a float, as in the 2x2
       loop) in vector registers, compared and selected with masks: no branch per value. The
       scalar form of this loop ran at about one value a cycle (22 ms for a 3x3 'same' pool of
       128 32x32x32 images). */
    const int taps = ph * pw;
    long *toff = malloc(sizeof(long) * (size_t)taps);
    float *tk = malloc(sizeof(float) * (size_t)taps);
    if (!toff || !tk) { free(toff); free(tk); return -1; }
    const int C8 = C - C % 8;
    for (int n = 0; n < N; n++) {
        const float *xn = x + (long)n * H * W * C;
        for (int ho = 0; ho < Ho; ho++) {
            for (int wo = 0; wo < Wo; wo++) {
                const long o = (((long)n * Ho + ho) * Wo + wo) * C;
                const int h0 = ho * sh - pt, w0 = wo * sw - pl;
                int nt = 0;
                for (int i = 0; i < ph; i++) {
                    const int h = h0 + i;
                    if (h < 0 || h >= H) continue;
                    for (int j = 0; j < pw; j++) {
                        const int w = w0 + j;
                        if (w < 0 || w >= W) continue;
                        toff[nt] = ((long)h * W + w) * C;
                        tk[nt++] = (float)(i * pw + j);
                    }
                }
                for (int c = 0; c < C8; c += 8) {
                    pv8f m = pv8_splat(-INFINITY), a = pv8_splat(0.0f);
                    for (int t = 0; t < nt; t++) {
                        const pv8f v = pv8_load(xn + toff[t] + c);
                        const pv8i gt = pv8_beats(v, m);
                        a = pv8_select(gt, pv8_splat(tk[t]), a);
                        m = pv8_select(gt, v, m);
                    }
                    pv8_store(y + o + c, m);
                    for (int l = 0; l < 8; l++) arg[o + c + l] = (int)a[l];
                }
                for (int c = C8; c < C; c++) {
                    float m = -INFINITY, a = 0.0f;
                    for (int t = 0; t < nt; t++) {
                        const float v = xn[toff[t] + c];
                        const int take = BEATS(v, m);
                        a = take ? tk[t] : a;
                        m = take ? v : m;
                    }
                    y[o + c] = m;
                    arg[o + c] = (int)a;
                }
            }
        }
    }
    free(toff);
    free(tk);
    return 0;
}

/* maxpool_bwd_f32 at stride 1, where every pixel lies in up to ph * pw windows: a gather, each
   input pixel adding the gradients of the windows whose maximum it is, 8 channels at a time,
   so each input gradient is written once with no zeroing pass and no scattered adds (15.5 ms
   down to 8.5 for a 3x3 'same' pool of 128 32x32x32 images; at stride 2, where most taps miss,
   the scatter below is faster). Taps (i, j) run from the last to the first, so the windows
   come in ascending (ho, wo), the order in which the scatter adds them: the same sums, bit for
   bit. A window whose values are all -inf (or NaN) keeps arg 0, which under 'same' padding
   names a padded pixel outside the image: no pixel gathers it, as the NumPy path's crop drops
   it; an arg out of range matches no tap. */
PV8 void maxpool_bwd_gather(const float *restrict dy, const int *restrict arg, float *restrict dx, int N,
                                      int H, int W, int C, int ph, int pw, int pt, int pl, int Ho, int Wo)
{
    const int C8 = C - C % 8;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++) {
                float *dxo = dx + (((long)n * H + h) * W + w) * C;
                long wins[64];
                int ks[64], nt = 0;
                for (int i = ph - 1; i >= 0; i--) {
                    const int ho = h + pt - i;  /* the window whose tap row i lands on row h */
                    if (ho < 0 || ho >= Ho) continue;
                    for (int j = pw - 1; j >= 0; j--) {
                        const int wo = w + pl - j;
                        if (wo < 0 || wo >= Wo) continue;
                        wins[nt] = (((long)n * Ho + ho) * Wo + wo) * C;
                        ks[nt++] = i * pw + j;
                    }
                }
                for (int c = 0; c < C8; c += 8) {
                    pv8f acc = pv8_splat(0.0f);
                    for (int t = 0; t < nt; t++) {
                        const pv8i a = pv8i_load(arg + wins[t] + c);
                        const pv8i k = {ks[t], ks[t], ks[t], ks[t], ks[t], ks[t], ks[t], ks[t]};
                        acc += pv8_select(a == k, pv8_load(dy + wins[t] + c), pv8_splat(0.0f));
                    }
                    pv8_store(dxo + c, acc);
                }
                for (int c = C8; c < C; c++) {
                    float acc = 0.0f;
                    for (int t = 0; t < nt; t++) acc += arg[wins[t] + c] == ks[t] ? dy[wins[t] + c] : 0.0f;
                    dxo[c] = acc;
                }
            }
}

/* One output pixel of maxpool_bwd_f32's 2x2 path: its C gradients to the four input pixels */
static inline void maxpool2x2_bwd_pixel(const float *restrict dy, const int *restrict arg, float *restrict a,
                                        float *restrict b, float *restrict c2, float *restrict d, int C)
{
    for (int c = 0; c < C; c++) {  /* integer compares and ANDs: they vectorise, and never branch */
        const int k = arg[c];
        unsigned g, v0, v1, v2, v3;
        memcpy(&g, dy + c, sizeof g);
        v0 = g & -(unsigned)(k == 0);
        v1 = g & -(unsigned)(k == 1);
        v2 = g & -(unsigned)(k == 2);
        v3 = g & -(unsigned)(k == 3);
        memcpy(a + c, &v0, sizeof v0);
        memcpy(b + c, &v1, sizeof v1);
        memcpy(c2 + c, &v2, sizeof v2);
        memcpy(d + c, &v3, sizeof v3);
    }
}

/* dx = 0; dx[window position arg] += dy */
HOT void maxpool_bwd_f32(const float *restrict dy, const int *restrict arg, float *restrict dx, int N, int H, int W, int C,
                     int ph, int pw, int sh, int sw, int pt, int pl, int Ho, int Wo)
{
    if (ph == 2 && pw == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0 && 2 * Ho == H && 2 * Wo == W) {
        /* Non-overlapping 2x2 windows tile the image: write each input gradient once, no zeroing
           pass. The gradient goes to the arg position as its bits ANDed with an all-ones or
           all-zeros mask: no branch (the argmax positions are random, so branches on them
           mispredicted: 285 us for LeNet's first pool at batch 32, 45 us now) and no NaN or
           infinity leaking into the other three positions, as multiplying by 0 or 1 would. */
        for (int n = 0; n < N; n++)
            for (int ho = 0; ho < Ho; ho++)
                for (int wo = 0; wo < Wo; wo++) {
                    const long o = (((long)n * Ho + ho) * Wo + wo) * C;
                    float *restrict a = dx + (((long)n * H + 2 * ho) * W + 2 * wo) * C;
                    float *restrict b = a + C, *restrict c2 = a + (long)W * C, *restrict d = c2 + C;
                    maxpool2x2_bwd_pixel(dy + o, arg + o, a, b, c2, d, C);
                }
        return;
    }
    if (sh == 1 && sw == 1 && ph * pw <= 64) {  /* the gather lists at most 64 windows a pixel */
        maxpool_bwd_gather(dy, arg, dx, N, H, W, C, ph, pw, pt, pl, Ho, Wo);
        return;
    }
    for (int n = 0; n < N; n++) {
        float *dxn = dx + (long)n * H * W * C;
        memset(dxn, 0, sizeof(float) * (long)H * W * C);
        for (int ho = 0; ho < Ho; ho++) {
            for (int wo = 0; wo < Wo; wo++) {
                const long o = (((long)n * Ho + ho) * Wo + wo) * C;
                for (int c = 0; c < C; c++) {
                    /* A window whose values are all -inf (or NaN) keeps arg 0, which under 'same'
                       padding names a padded pixel outside the image: its gradient is dropped, as
                       the NumPy path's crop drops it. Never index with an unchecked position. */
                    const int k = arg[o + c];
                    if (k < 0 || k >= ph * pw) continue;
                    const int h = ho * sh - pt + k / pw, w = wo * sw - pl + k % pw;
                    if (h < 0 || h >= H || w < 0 || w >= W) continue;
                    dxn[((long)h * W + w) * C + c] += dy[o + c];
                }
            }
        }
    }
}
