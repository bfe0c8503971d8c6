/*
 * Optional compiled kernels for convolab's hot steps: im2col/col2im, pooling, ReLU, the optimizer
 * updates, small convolutions fused with their im2col, depthwise convolution, batch normalization.
 *
 * The NumPy code in convolab/ops is the reference and the fallback; these functions do the
 * same arithmetic in one pass. Each kernel is single-threaded; an entry point given
 * `threads` > 1 runs it on contiguous parts of the batch on the kernels' own threads (pool.h),
 * which ops/threads.py asks for inside fit/evaluate/predict. Python reaches the kernels only
 * through the checked entry points at the end of this file (buffer protocol, no NumPy C API),
 * which release the GIL once the checks pass.
 *
 * Layout everywhere: NHWC float32, C-contiguous. Padding (pt, pl) is TensorFlow's 'same'
 * split or zero for 'valid'. Windows are read in (kh, kw, C) order, as im2col.py does.
 */
#include <Python.h>
#include <string.h>
#include <math.h>
#include <stdlib.h>

#include "pool.h"

/* Build each hot loop for AVX2 too (with FMA) and pick at load time, where the compiler can.
   The clone is named by ISA level, x86-64-v3 (AVX2, FMA, BMI2...): GCC picks it by the CPU's
   features. "arch=haswell", used before, is picked by CPU model, so AMD processors (Zen 4
   with AVX-512 included) ran every kernel's SSE2 default clone. GCC before 12 has no ISA
   levels in target_clones: there the clone is AVX2 without FMA. */
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__)) && __GNUC__ >= 12
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

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

/* y = min(max(x, 0), cap) (cap = infinity: the plain ReLU); a NaN stays NaN, as NumPy's
   maximum and minimum keep it */
HOT void relu_fwd_f32(const float *restrict x, float *restrict y, long n, float cap)
{
    for (long t = 0; t < n; t++) {
        const float v = x[t], r = v > 0.0f ? v : 0.0f;
        y[t] = v != v ? v : r < cap ? r : cap;
    }
}

/* dz = dy where 0 < y < cap, else 0 (the backward of ReLU, cap = infinity, or of a capped
   ReLU such as ReLU6, from its output) */
HOT void relu_bwd_f32(const float *restrict dy, const float *restrict y, float *restrict dz, long n, float cap)
{
    /* Load dy unconditionally: "y > 0 ? dy : 0" would be a masked load or a branch, both slow. */
    for (long t = 0; t < n; t++) {
        const float g = dy[t], v = y[t];
        dz[t] = v > 0.0f && v < cap ? g : 0.0f;
    }
}

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

/* Late in training the squared-gradient averages sink into float32's denormal range, where
   every operation takes microcode assists (100x slower): LeNet's Adam step went from 110 us
   to several hundred. Flush denormals to zero inside these updates only (the caller's
   floating-point mode is restored on the way out), as TensorFlow does for all its CPU math. */
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define FTZ_BEGIN const unsigned int csr_saved = _mm_getcsr(); _mm_setcsr(csr_saved | 0x8040);
#define FTZ_END _mm_setcsr(csr_saved);
#else
#define FTZ_BEGIN
#define FTZ_END
#endif

/* Keras's Adam step, in place, one pass: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t) */
HOT void adam_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, long n,
              float alpha, float b1, float b2, float eps)
{
    FTZ_BEGIN
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (long t = 0; t < n; t++) {
        const float gt = g[t];
        const float mt = m[t] + (gt - m[t]) * c1;
        const float vt = v[t] + (gt * gt - v[t]) * c2;
        m[t] = mt;
        v[t] = vt;
        p[t] -= alpha * mt / (sqrtf(vt) + eps);
    }
    FTZ_END
}

/* Keras's RMSprop step (no momentum, not centred), in place: epsilon inside the root */
HOT void rmsprop_f32(float *restrict p, const float *restrict g, float *restrict v, long n,
                 float lr, float rho, float eps)
{
    FTZ_BEGIN
    const float c = 1.0f - rho;
    for (long t = 0; t < n; t++) {
        const float gt = g[t];
        const float vt = rho * v[t] + c * gt * gt;
        v[t] = vt;
        p[t] -= lr * gt / sqrtf(vt + eps);
    }
    FTZ_END
}

/* ---------------------------------------------------------------------------------------
 * Fused im2col + GEMM for 'valid' convolutions: AVX2 (at most 32 filters) and AVX-512 (any).
 *
 * The same product as im2col(x) @ W (see ops/im2col.py), but each im2col row is read
 * straight from the image into registers as it is needed, so the matrix that is kh*kw
 * times larger than the image is never written out, and the skinny GEMM (6 to 20 filters)
 * runs in registers instead of through a BLAS call that packs the whole matrix first.
 * Filters are processed 8 (AVX2) or 16 (AVX-512) at a time in vector registers (NV vectors),
 * R output pixels (forward) or KB taps (weight gradient) at a time; with few filters, the
 * lanes hold output pixels instead.
 *
 * wp: the kernel as a (K, Fp) matrix, Fp = 16 * ceil(F / 16), zero-padded columns; bp: bias
 * (Fp) or NULL. conv_fwd_f32 and conv_dw_f32 at the end of this part pick the instruction set.
 * ------------------------------------------------------------------------------------- */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
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

/* The kernel matrix wp (and dwp) has FUSED_WIDTH * ceil(F / FUSED_WIDTH) columns, zeros past
   F, for both instruction sets: AVX-512 reads it 16 floats at a time. */
#define FUSED_WIDTH 16
#define AVX2_PIXELS(F, C, sw, Wo) ((F) <= 6 && (sw) == 1 && (C) <= 4 && (Wo) >= 16)

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

/* koff[k]: tap k = (i, j, c)'s offset from a window's top-left pixel, in im2col's column order */
static long *tap_offsets(int W, int C, int kh, int kw)
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

FUSED static void conv_fwd_avx2(const float *restrict x, const float *restrict wp, const float *restrict bp,
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

FUSED static void conv_dw_avx2(const float *restrict x, const float *restrict dy, float *restrict dwp, float *restrict dbp,
                     int N, int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo)
{
    switch ((F + 7) / 8) {
    case 1: conv_dw_impl(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, 1, 4); break;
    case 2: conv_dw_impl(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, 2, 4); break;
    case 3: conv_dw_impl(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, 3, 3); break;
    default: conv_dw_impl(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, 4, 2); break;
    }
}


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

enum { PIX_NONE, PIX_ONE, PIX_ROW, PIX_TWO_ROWS };

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

/* Which loop serves a forward on AVX-512: PIX_NONE (filters in the lanes) or a pixel plan.
   Pixels where their lanes are fuller than the filters' would be: Wo / (P ceil(Wo / P)) for P
   pixels per tile, against F / (16 ceil(F / 16)); two vectors per filter where F allows (each
   loaded tap then feeds twice as many multiplies), as two rows where Wo <= 16. */
static int pixels512(long long F, long long C, long long sw, long long Wo)
{
    (void)C;
    if (sw != 1 || Wo < 8 || F > 24) return PIX_NONE;
    const long long P = Wo <= 16 || F > 12 ? 16 : 32;
    if (Wo * 16 * ((F + 15) / 16) <= F * P * ((Wo + P - 1) / P)) return PIX_NONE;
    return F > 12 ? PIX_ONE : Wo <= 16 ? PIX_TWO_ROWS : PIX_ROW;
}

#define PIXELS512(F, C, sw, Wo) (pixels512((F), (C), (sw), (Wo)) > 0)

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

F512 static void conv_fwd_avx512(const float *restrict x, const float *restrict wp, const float *restrict bp,
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

#define TAPS_IN_LANES(F, C, kw) ((F) <= 8 && (kw) * (C) <= 16 && (kw) * (C) > (F))

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
F512 static void conv_dw_avx512(const float *restrict x, const float *restrict dy, float *restrict dwp,
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

static int conv_fwd_padded_f32(const float *restrict x, const float *restrict wp, const float *restrict bp,
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

static int conv_dw_padded_f32(const float *restrict x, const float *restrict dy, float *restrict dwp,
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

#else
int conv_fused_supported(void) { return 0; }
static int current_isa(void) { return 0; }
static int best_isa(void) { return 0; }
static int fused_isa = 0;
void conv_fwd_f32(void) {}
void conv_dw_f32(void) {}
static int conv_fwd_padded_f32() { return 0; }
static int conv_dw_padded_f32() { return 0; }
#endif

/* ---------------------------------------------------------------------------------------
 * Depthwise convolution (Keras's DepthwiseConv2D) without a window matrix.
 *
 * NHWC float32; any window (kh, kw), strides (sh, sw), padding (pt, pl: TensorFlow's 'same'
 * split, or 0), dilation (rh, rw) and depth multiplier dm. Output channel o = c * dm + m
 * comes from input channel c and filter m, and Keras's kernel (kh, kw, C, dm) is a
 * (kh * kw, C * dm) matrix whose row t holds tap t's weight for every output channel. In
 * NHWC a pixel's channels are contiguous too, so each kernel is, per pixel, a sum over taps
 * of element-wise products of two rows of channels: plain loops over the channels, which
 * the compiler vectorises.
 *
 * Which taps reach which pixels is worked out once per call along each axis (tap_list):
 *   forward: output row ho reads input row ho*sh - pt + i*rh for the taps i that land inside;
 *   adjoint: input row h is read by output row (h + pt - i*rh) / sh where that divides.
 * Taps outside the image are left out, which is what zero padding contributes.
 *
 * The forward and the input gradient are the same gather (gather_dm1): for each pixel it
 * writes, a list of (source pixel, tap) pairs, and out = sum over the list of source row *
 * weight row. Pixels along a row whose lists differ only by a constant shift of the source
 * (the interior, and under a stride each residue class of the input gradient) go four at
 * a time, 16 channels per block: 8 vector sums in registers and each weight row loaded
 * once for the four. The input gradient being a gather, each dx pixel is written once, by
 * one loop: no zeroing pass and no two writers. A depth multiplier above 1 takes plainer
 * per-pixel loops (MobileNet uses 1).
 *
 * The kernel gradient sums a row of output pixels in float registers and the rows in
 * double, so 32k products per weight at batch 32 lose no more than a few float32 roundings.
 * ------------------------------------------------------------------------------------- */

/* Along one axis: for each position a (an output index, or with `adjoint` an input index),
   cnt[a] taps, tap[a*k + t] the tap index and pos[a*k + t] the index at the other end.
   step is 1 (forward) or s (adjoint): positions a and a + step whose taps are the same and
   whose other ends are all 1 apart (adjoint) or s apart (forward) have same[a] = 1. */
typedef struct { int *cnt, *tap; long *pos; char *same; int step; long shift; } TapList;

static void tap_list_free(TapList *L)
{
    free(L->cnt); free(L->tap); free(L->pos); free(L->same);
    L->cnt = L->tap = NULL;
    L->pos = NULL;
    L->same = NULL;
}

static int tap_list(TapList *L, int in, int out, int k, int s, int p, int r, int adjoint)
{
    const long n = adjoint ? in : out, shift = adjoint ? 1 : s;
    L->cnt = malloc(sizeof(int) * (size_t)(n + 1));
    L->tap = malloc(sizeof(int) * (size_t)(n * k + 1));
    L->pos = malloc(sizeof(long) * (size_t)(n * k + 1));
    L->same = malloc((size_t)(n + 1));
    L->step = adjoint ? s : 1;
    L->shift = shift;
    if (!L->cnt || !L->tap || !L->pos || !L->same) { tap_list_free(L); return -1; }
    for (long a = 0; a < n; a++) {
        int c = 0;
        for (int i = 0; i < k; i++) {
            long q;
            if (!adjoint) {
                q = a * s - p + (long)i * r;  /* the input index tap i reads */
                if (q < 0 || q >= in) continue;
            } else {
                const long num = a + p - (long)i * r;  /* output index * s */
                if (num < 0) break;  /* later taps only lower it */
                if (num % s) continue;
                q = num / s;
                if (q >= out) continue;
            }
            L->tap[a * k + c] = i;
            L->pos[a * k + c] = q;
            c++;
        }
        L->cnt[a] = c;
    }
    for (long a = 0; a < n; a++) {
        const long b = a + L->step;
        int same = b < n && L->cnt[b] == L->cnt[a];
        for (int t = 0; same && t < L->cnt[a]; t++)
            same = L->tap[b * k + t] == L->tap[a * k + t] && L->pos[b * k + t] == L->pos[a * k + t] + shift;
        L->same[a] = (char)same;
    }
    return 0;
}

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* For R pixels r and the CB channels c from c0: out[r*os + c] = bias[c] (or 0) + sum over the
   nt taps of src[so[t] + r*ss + c] * w[wo[t] + c]. Written so the compiler keeps the R x CB
   sums in vector registers across the taps and loads each weight once for the R pixels. */
ALWAYS_INLINE void
gather_block(float *restrict out, long os, const float *restrict src, long ss, const long *restrict so,
             const float *restrict w, const long *restrict wo, int nt, long c0, const float *restrict bias,
             const int R, const int CB)
{
    float acc[4][16];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < CB; t++) acc[r][t] = bias ? bias[c0 + t] : 0.0f;
    for (int k = 0; k < nt; k++) {
        const float *restrict ps = src + so[k] + c0, *restrict pw = w + wo[k] + c0;
        _Pragma("GCC unroll 4")
        for (int r = 0; r < R; r++)
            _Pragma("GCC unroll 16")
            for (int t = 0; t < CB; t++) acc[r][t] += ps[r * ss + t] * pw[t];
    }
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < CB; t++) out[r * os + c0 + t] = acc[r][t];
}

ALWAYS_INLINE void
gather_pixels(float *restrict out, long os, const float *restrict src, long ss, const long *restrict so,
              const float *restrict w, const long *restrict wo, int nt, long C, const float *restrict bias,
              const int R)
{
    long c0 = 0;
    for (; c0 + 16 <= C; c0 += 16) gather_block(out, os, src, ss, so, w, wo, nt, c0, bias, R, 16);
    for (; c0 + 8 <= C; c0 += 8) gather_block(out, os, src, ss, so, w, wo, nt, c0, bias, R, 8);
    for (; c0 < C; c0++) gather_block(out, os, src, ss, so, w, wo, nt, c0, bias, R, 1);
}

/* Depth multiplier 1. out (N, Ho_, Wo_, C) from src (N, Hs, Ws, C) and w (kh, kw, C): out pixel
   (a, b) = bias + sum over rows[a] x cols[b] of src pixel (row pos, col pos) * w[row tap, col tap].
   The forward: out = y, src = x, lists forward; the input gradient: out = dx, src = dy, lists
   adjoint. ao, wofs: scratch for kh*kw offsets. */
ALWAYS_INLINE void
gather_dm1(float *restrict out, const float *restrict src, const float *restrict w, const float *restrict bias,
           long N, long Ho_, long Wo_, long Hs, long Ws, long C, int kh, int kw, const TapList *rows,
           const TapList *cols, long *restrict ao, long *restrict wofs)
{
    const int step = cols->step;
    for (long n = 0; n < N; n++)
        for (long a = 0; a < Ho_; a++) {
            const int nr = rows->cnt[a];
            float *orow = out + (n * Ho_ + a) * Wo_ * C;
            for (int res = 0; res < step; res++)
                for (long b = res; b < Wo_;) {
                    int nt = 0;
                    for (int u = 0; u < nr; u++) {
                        const long i = rows->tap[a * kh + u], h = rows->pos[a * kh + u];
                        for (int v = 0; v < cols->cnt[b]; v++, nt++) {
                            ao[nt] = ((n * Hs + h) * Ws + cols->pos[b * kw + v]) * C;
                            wofs[nt] = (i * kw + cols->tap[b * kw + v]) * C;
                        }
                    }
                    int g = 1;  /* pixels b, b + step, ... with the same list shifted by one source pixel each */
                    while (g < 4 && cols->same[b + (g - 1) * step]) g++;
                    const long os = step * C, sstep = cols->shift * C;
                    float *o = orow + b * C;
                    switch (g) {
                    case 4: gather_pixels(o, os, src, sstep, ao, w, wofs, nt, C, bias, 4); break;
                    case 3: gather_pixels(o, os, src, sstep, ao, w, wofs, nt, C, bias, 3); break;
                    case 2: gather_pixels(o, os, src, sstep, ao, w, wofs, nt, C, bias, 2); break;
                    default: gather_pixels(o, os, src, sstep, ao, w, wofs, nt, C, bias, 1); break;
                    }
                    b += g * step;
                }
        }
}

/* y[n, ho, wo, c*dm + m] = b[c*dm + m] + sum over taps (i, j) inside the image of
   x[n, ho*sh - pt + i*rh, wo*sw - pl + j*rw, c] * w[i, j, c, m]; b may be NULL.
   Returns -1 (nothing written) when it cannot allocate its tap lists. */
HOT int depthwise_fwd_f32(const float *restrict x, const float *restrict w, const float *restrict b,
                          float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                          int pt, int pl, int rh, int rw, int Ho, int Wo, int dm)
{
    TapList R = {0}, S = {0};
    const long Co = (long)C * dm, K = (long)kh * kw;
    long *ao = malloc(sizeof(long) * (size_t)(K + 1)), *bo = malloc(sizeof(long) * (size_t)(K + 1));
    int rc = -1;
    if (!ao || !bo || tap_list(&R, H, Ho, kh, sh, pt, rh, 0) < 0 || tap_list(&S, W, Wo, kw, sw, pl, rw, 0) < 0)
        goto out;
    if (dm == 1) {
        gather_dm1(y, x, w, b, N, Ho, Wo, H, W, C, kh, kw, &R, &S, ao, bo);
        rc = 0;
        goto out;
    }
    for (long n = 0; n < N; n++)
        for (long ho = 0; ho < Ho; ho++)
            for (long wo = 0; wo < Wo; wo++) {
                int nt = 0;
                for (int u = 0; u < R.cnt[ho]; u++) {
                    const long i = R.tap[ho * kh + u], h = R.pos[ho * kh + u];
                    for (int v = 0; v < S.cnt[wo]; v++, nt++) {
                        ao[nt] = ((n * H + h) * W + S.pos[wo * kw + v]) * C;
                        bo[nt] = (i * kw + S.tap[wo * kw + v]) * Co;
                    }
                }
                float *restrict yo = y + ((n * Ho + ho) * Wo + wo) * Co;
                for (long o = 0; o < Co; o++) yo[o] = b ? b[o] : 0.0f;
                for (int t = 0; t < nt; t++) {
                    const float *restrict xs = x + ao[t], *restrict ws = w + bo[t];
                    for (long c = 0; c < C; c++)
                        for (long m = 0; m < dm; m++) yo[c * dm + m] += xs[c] * ws[c * dm + m];
                }
            }
    rc = 0;
out:
    free(ao); free(bo);
    tap_list_free(&R); tap_list_free(&S);
    return rc;
}

/* dx[n, h, w, c] = sum over the output pixels (ho, wo) and taps (i, j) with
   ho*sh - pt + i*rh = h and wo*sw - pl + j*rw = w of sum_m dy[n, ho, wo, c*dm + m] * w[i, j, c, m]
   (the adjoint of depthwise_fwd_f32 without bias): every dx pixel written once. */
HOT int depthwise_dx_f32(const float *restrict dy, const float *restrict w, float *restrict dx, int N, int H, int W,
                         int C, int kh, int kw, int sh, int sw, int pt, int pl, int rh, int rw, int Ho, int Wo, int dm)
{
    TapList R = {0}, S = {0};
    const long Co = (long)C * dm, K = (long)kh * kw;
    long *ao = malloc(sizeof(long) * (size_t)(K + 1)), *bo = malloc(sizeof(long) * (size_t)(K + 1));
    int rc = -1;
    if (!ao || !bo || tap_list(&R, H, Ho, kh, sh, pt, rh, 1) < 0 || tap_list(&S, W, Wo, kw, sw, pl, rw, 1) < 0)
        goto out;
    if (dm == 1) {
        gather_dm1(dx, dy, w, NULL, N, H, W, Ho, Wo, C, kh, kw, &R, &S, ao, bo);
        rc = 0;
        goto out;
    }
    for (long n = 0; n < N; n++)
        for (long h = 0; h < H; h++)
            for (long wx = 0; wx < W; wx++) {
                int nt = 0;
                for (int u = 0; u < R.cnt[h]; u++) {
                    const long i = R.tap[h * kh + u], ho = R.pos[h * kh + u];
                    for (int v = 0; v < S.cnt[wx]; v++, nt++) {
                        ao[nt] = ((n * Ho + ho) * Wo + S.pos[wx * kw + v]) * Co;
                        bo[nt] = (i * kw + S.tap[wx * kw + v]) * Co;
                    }
                }
                float *restrict d = dx + ((n * H + h) * W + wx) * C;
                for (long c = 0; c < C; c++) {
                    float acc = 0.0f;
                    for (int t = 0; t < nt; t++)
                        for (long m = 0; m < dm; m++) acc += dy[ao[t] + c * dm + m] * w[bo[t] + c * dm + m];
                    d[c] = acc;
                }
            }
    rc = 0;
out:
    free(ao); free(bo);
    tap_list_free(&R); tap_list_free(&S);
    return rc;
}

/* t[c0 .. c0+CB) += sum over cnt pixels q of xs[q*xstep + c] * ds[q*Co + c]: one tap's gradient
   over a run of output pixels, the CB sums in vector registers. (Three neighbouring taps at a
   time, sharing each dy load, measured no faster: these loops are not bound by the loads.) */
ALWAYS_INLINE void
kgrad_block(double *restrict t, const float *restrict xs, long xstep, const float *restrict ds, long Co, long cnt,
            long c0, const int CB)
{
    float acc[32];
    for (int u = 0; u < CB; u++) acc[u] = 0.0f;
    for (long q = 0; q < cnt; q++) {
        const float *restrict px = xs + q * xstep + c0, *restrict pd = ds + q * Co + c0;
        for (int u = 0; u < CB; u++) acc[u] += px[u] * pd[u];
    }
    for (int u = 0; u < CB; u++) t[c0 + u] += acc[u];
}

/* dw[i, j, c, m] = sum over n, ho, wo of x[n, ho*sh - pt + i*rh, wo*sw - pl + j*rw, c] * dy[n, ho, wo, c*dm + m]
   (taps outside the image contribute nothing); db[o] = sum of dy[..., o] when db is not NULL. */
HOT int depthwise_dw_f32(const float *restrict x, const float *restrict dy, float *restrict dw, float *restrict db,
                         int N, int H, int W, int C, int kh, int kw, int sh, int sw, int pt, int pl, int rh, int rw,
                         int Ho, int Wo, int dm)
{
    TapList R = {0};
    const long Co = (long)C * dm, K = (long)kh * kw;
    double *tot = calloc((size_t)((K + 1) * Co + 1), sizeof(double));  /* K rows of dw, then db */
    float *part = malloc(sizeof(float) * (size_t)(Co + 1));
    long *lo = malloc(sizeof(long) * (size_t)(kw + 1)), *hi = malloc(sizeof(long) * (size_t)(kw + 1));
    int rc = -1;
    if (!tot || !part || !lo || !hi || tap_list(&R, H, Ho, kh, sh, pt, rh, 0) < 0) goto out;
    for (long j = 0; j < kw; j++) {  /* output columns wo in [lo, hi) read inside the image at tap column j */
        const long off = j * rw - pl;  /* input column = wo*sw + off */
        lo[j] = off < 0 ? (-off + sw - 1) / sw : 0;
        hi[j] = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
        if (hi[j] > Wo) hi[j] = Wo;
    }
    double *tdb = tot + K * Co;
    for (long n = 0; n < N; n++)
        for (long ho = 0; ho < Ho; ho++) {
            const float *drow = dy + (n * Ho + ho) * Wo * Co;
            if (db) {
                for (long o = 0; o < Co; o++) part[o] = 0.0f;
                for (long wo = 0; wo < Wo; wo++)
                    for (long o = 0; o < Co; o++) part[o] += drow[wo * Co + o];
                for (long o = 0; o < Co; o++) tdb[o] += part[o];
            }
            for (int u = 0; u < R.cnt[ho]; u++) {
                const long i = R.tap[ho * kh + u], h = R.pos[ho * kh + u];
                const float *xrow = x + (n * H + h) * W * C;
                for (long j = 0; j < kw; j++) {
                    if (lo[j] >= hi[j]) continue;
                    const long cnt = hi[j] - lo[j], xstep = (long)sw * C;
                    const float *xs = xrow + (lo[j] * sw + j * rw - pl) * C, *ds = drow + lo[j] * Co;
                    double *t = tot + (i * kw + j) * Co;
                    if (dm == 1) {
                        long c0 = 0;
                        for (; c0 + 32 <= C; c0 += 32) kgrad_block(t, xs, xstep, ds, Co, cnt, c0, 32);
                        for (; c0 + 8 <= C; c0 += 8) kgrad_block(t, xs, xstep, ds, Co, cnt, c0, 8);
                        for (; c0 < C; c0++) kgrad_block(t, xs, xstep, ds, Co, cnt, c0, 1);
                        continue;
                    }
                    for (long o = 0; o < Co; o++) part[o] = 0.0f;
                    for (long q = 0; q < cnt; q++)
                        for (long c = 0; c < C; c++) {
                            const float xv = xs[q * xstep + c];
                            for (long m = 0; m < dm; m++) part[c * dm + m] += xv * ds[q * Co + c * dm + m];
                        }
                    for (long o = 0; o < Co; o++) t[o] += part[o];
                }
            }
        }
    for (long k = 0; k < K * Co; k++) dw[k] = (float)tot[k];
    if (db)
        for (long o = 0; o < Co; o++) db[o] = (float)tdb[o];
    rc = 0;
out:
    free(tot); free(part); free(lo); free(hi);
    tap_list_free(&R);
    return rc;
}

/* =======================================================================================
 * The checked boundary: the only way Python reaches the kernels above.
 *
 * A kernel trusts its pointers and integers; handed a buffer smaller than its integers say,
 * it reads or writes memory it does not own. Each entry point below takes the arrays
 * themselves (any object with the buffer protocol: NumPy arrays), and before a kernel runs
 * checks every one against what the kernel will touch: C-contiguous, aligned, float32 (or
 * int32), writable where written, exactly the element count the integer arguments imply
 * (computed without overflow), no output overlapping another array (the kernels declare
 * their pointers restrict), every integer in [0, 2^31) and windows that start inside the
 * image. A mismatch raises KernelArgumentError (a ValueError) and nothing is called.
 * The checks run in C, in well under a microsecond: in Python they held the GIL long enough
 * to slow two shard threads by 15%. The GIL is released while a kernel runs.
 *
 * Every entry point and every variant a kernel takes is counted (counts()), so the tests
 * can prove that a differential test against the NumPy reference reached each one.
 * ===================================================================================== */
#include <stdarg.h>
#include <stdint.h>

static PyObject *KernelArgumentError = NULL;

enum {
    N_IM2COL, N_IM2COL_VALID, N_IM2COL_PADDED, N_COL2IM, N_COL2IM_VALID, N_COL2IM_PADDED,
    N_MAXPOOL_FWD, N_MAXPOOL_FWD_2X2, N_MAXPOOL_FWD_GENERAL, N_MAXPOOL_BWD, N_MAXPOOL_BWD_2X2,
    N_MAXPOOL_BWD_GENERAL, N_RELU_FWD, N_RELU_BWD, N_ADAM, N_RMSPROP, N_CONV_FWD, N_CONV_FWD_PIXELS,
    N_CONV_FWD_FILTERS, N_CONV_FWD_PIXELS512, N_CONV_FWD_FILTERS512, N_CONV_DW, N_CONV_DW_AVX2, N_CONV_DW_AVX512, N_CONV_DW_TAPS512, N_DEPTHWISE_FWD, N_DEPTHWISE_FWD_DM1, N_DEPTHWISE_FWD_DM,
    N_DEPTHWISE_DX, N_DEPTHWISE_DX_DM1, N_DEPTHWISE_DX_DM, N_DEPTHWISE_DW, N_DEPTHWISE_DW_DM1, N_DEPTHWISE_DW_DM,
    N_BN_MOMENTS, N_BN_AFFINE, N_BN_BWD, N_COUNTERS
};
static const char *counter_names[N_COUNTERS] = {
    "im2col_f32", "im2col_f32[valid]", "im2col_f32[padded]", "col2im_f32", "col2im_f32[valid]",
    "col2im_f32[padded]", "maxpool_fwd_f32", "maxpool_fwd_f32[2x2]", "maxpool_fwd_f32[general]",
    "maxpool_bwd_f32", "maxpool_bwd_f32[2x2]", "maxpool_bwd_f32[general]", "relu_fwd_f32", "relu_bwd_f32", "adam_f32",
    "rmsprop_f32", "conv_fwd_f32", "conv_fwd_f32[pixels]", "conv_fwd_f32[filters]", "conv_fwd_f32[pixels/avx512]",
    "conv_fwd_f32[filters/avx512]", "conv_dw_f32", "conv_dw_f32[avx2]", "conv_dw_f32[avx512]", "conv_dw_f32[taps/avx512]",
    "depthwise_fwd_f32", "depthwise_fwd_f32[dm=1]", "depthwise_fwd_f32[dm>1]", "depthwise_dx_f32",
    "depthwise_dx_f32[dm=1]", "depthwise_dx_f32[dm>1]", "depthwise_dw_f32", "depthwise_dw_f32[dm=1]",
    "depthwise_dw_f32[dm>1]",
    "bn_moments_f32", "bn_affine_f32", "bn_bwd_f32"
};
static unsigned long long counters[N_COUNTERS];  /* updated with the GIL held */

static int fail(const char *kernel, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    PyErr_Format(KernelArgumentError ? KernelArgumentError : PyExc_ValueError,
                 "compiled kernel %s: %s; nothing was called", kernel, msg);
    return -1;
}

/* Integer arguments arrive as long long and must fit a C int, >= 0. */
static int check_ints(const char *kernel, const char *names, const long long *v, int n)
{
    /* names: space-separated, one per value */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", names);
    char *save = NULL, *name = strtok_r(buf, " ", &save);
    for (int i = 0; i < n; i++, name = strtok_r(NULL, " ", &save))
        if (v[i] < 0 || v[i] > INT32_MAX)
            return fail(kernel, "`%s` must be an int in [0, 2**31); got %lld", name ? name : "?", v[i]);
    return 0;
}

/* r = a * b * c * d, failing on overflow */
static int product(const char *kernel, Py_ssize_t *r, long long a, long long b, long long c, long long d)
{
    long long t;
    if (__builtin_mul_overflow(a, b, &t) || __builtin_mul_overflow(t, c, &t) || __builtin_mul_overflow(t, d, &t)
        || t > PY_SSIZE_T_MAX / 4)
        return fail(kernel, "the arguments describe an array larger than memory");
    *r = (Py_ssize_t)t;
    return 0;
}

typedef struct { Py_buffer v; int held; const char *role; } Arr;

/* Take obj's buffer as `role`: C-contiguous, aligned, float32 (or int32), writable if out,
   `n` elements (n < 0: any count). */
static int arr_get(Arr *a, PyObject *obj, const char *kernel, const char *role, int is_int, Py_ssize_t n, int out)
{
    const char *want = is_int ? "int32" : "float32";
    a->held = 0;
    a->role = role;
    if (PyObject_GetBuffer(obj, &a->v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (out ? PyBUF_WRITABLE : 0)) < 0) {
        PyErr_Clear();
        if (!PyObject_CheckBuffer(obj))
            return fail(kernel, "%s must be a %s NumPy array; got %s", role, want, Py_TYPE(obj)->tp_name);
        Py_buffer probe;  /* say which requirement failed */
        if (out && PyObject_GetBuffer(obj, &probe, PyBUF_C_CONTIGUOUS) == 0) {
            PyBuffer_Release(&probe);
            return fail(kernel, "%s is written to but is read-only", role);
        }
        PyErr_Clear();
        return fail(kernel, "%s must be C-contiguous (a %s array)", role, want);
    }
    a->held = 1;
    const char *f = a->v.format ? a->v.format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int ok = a->v.itemsize == 4 && f[0] && !f[1] &&
             (is_int ? (f[0] == 'i' || (f[0] == 'l' && sizeof(long) == 4)) : f[0] == 'f');
    if (!ok) return fail(kernel, "%s must be %s; got format '%s'", role, want, a->v.format ? a->v.format : "B");
    if (((uintptr_t)a->v.buf & 3u) != 0) return fail(kernel, "%s must be aligned", role);
    if (n >= 0 && a->v.len != n * 4)
        return fail(kernel, "%s has %zd elements; the arguments need %zd", role, a->v.len / 4, n);
    return 0;
}

static void arr_release(Arr *a) { if (a->held) PyBuffer_Release(&a->v); a->held = 0; }

/* No output overlaps any other array (outputs first in `arrs`, nout of them; NULL entries skipped). */
static int disjoint(const char *kernel, Arr **arrs, int n, int nout)
{
    for (int i = 0; i < nout; i++) {
        if (!arrs[i]) continue;
        const char *a0 = arrs[i]->v.buf, *a1 = a0 + arrs[i]->v.len;
        for (int j = 0; j < n; j++) {
            if (j == i || !arrs[j]) continue;
            const char *b0 = arrs[j]->v.buf, *b1 = b0 + arrs[j]->v.len;
            if (a0 < b1 && b0 < a1) return fail(kernel, "%s overlaps %s in memory", arrs[i]->role, arrs[j]->role);
        }
    }
    return 0;
}

/* Window geometry shared by im2col, col2im and pooling. */
static int check_windows(const char *kernel, const long long *g)
{
    /* g: N H W C kh kw sh sw pt pl Ho Wo */
    if (check_ints(kernel, "N H W C kh kw sh sw pt pl Ho Wo", g, 12) < 0) return -1;
    const long long H = g[1], W = g[2], kh = g[4], kw = g[5], sh = g[6], sw = g[7], pt = g[8], pl = g[9],
                    Ho = g[10], Wo = g[11];
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1)
        return fail(kernel, "window (%lld, %lld) and strides (%lld, %lld) must be >= 1", kh, kw, sh, sw);
    if ((Ho && (Ho - 1) * sh - pt >= H) || (Wo && (Wo - 1) * sw - pl >= W))
        return fail(kernel, "an output of %lldx%lld windows at strides (%lld, %lld) starts past a %lldx%lld image",
                    Ho, Wo, sh, sw, H, W);
    if (pt >= kh || pl >= kw)
        return fail(kernel, "padding (%lld, %lld) is as large as the window (%lld, %lld)", pt, pl, kh, kw);
    if (H + 2 * kh > INT32_MAX || W + 2 * kw > INT32_MAX || (Ho - 1) * sh + kh > INT32_MAX
        || (Wo - 1) * sw + kw > INT32_MAX)
        return fail(kernel, "image and window sizes overflow a C int");
    return 0;
}

static int fits(const long long *g)  /* every window inside the unpadded image */
{
    return g[8] == 0 && g[9] == 0 && (g[10] - 1) * g[6] + g[4] <= g[1] && (g[11] - 1) * g[7] + g[5] <= g[2];
}

#define RELEASE_ALL(arr) for (size_t _i = 0; _i < sizeof(arr) / sizeof(arr[0]); _i++) if (arr[_i]) arr_release(arr[_i])

/* ---- One call split over the kernels' threads (pool.h) ----
   Every entry point below that works image by image (or row by row) takes an optional last
   argument `threads` (default 1). With more, the batch is cut into that many contiguous parts
   (at most one an image) and the same single-threaded kernel runs on each part, on its own
   thread: outputs are disjoint rows of the same arrays. Sums over the batch (kernel gradients,
   batch-normalization statistics) are computed part by part and added in part order, so a
   given `threads` gives the same bits on every run. The arrays were checked whole; each part
   reads and writes only its rows of them. */

static int check_threads(const char *kernel, int threads)
{
    if (threads < 1 || threads > POOL_MAX_THREADS)
        return fail(kernel, "threads must be in [1, %d]; got %d", POOL_MAX_THREADS, threads);
    return 0;
}

/* parts for a batch of n: no more than n, at least 1 */
static int parts_of(int threads, long long n) { return n < threads ? (n < 1 ? 1 : (int)n) : threads; }

/* im2col, col2im and max pooling, image by image. g: N H W C kh kw sh sw pt pl Ho Wo [ld] */
enum { JOB_IM2COL, JOB_COL2IM, JOB_POOL_FWD, JOB_POOL_BWD };
typedef struct { int kind; const void *in0, *in1; void *out0, *out1; long long g[13]; int rc[POOL_MAX_THREADS]; } WindowJob;

static void window_part(void *v, int p, int np)
{
    WindowJob *j = v;
    const long long *g = j->g;
    long lo, hi;
    pool_span(g[0], p, np, &lo, &hi);
    const int n = (int)(hi - lo);
    if (n <= 0) return;
    const long img = (long)(g[1] * g[2] * g[3]), pooled = (long)(g[10] * g[11] * g[3]),
               rows = (long)(g[10] * g[11] * (j->kind <= JOB_COL2IM ? g[12] : 0));
    switch (j->kind) {
    case JOB_IM2COL:
        im2col_f32((const float *)j->in0 + lo * img, (float *)j->out0 + lo * rows, n, g[1], g[2], g[3], g[4], g[5],
                   g[6], g[7], g[8], g[9], g[10], g[11], g[12]);
        break;
    case JOB_COL2IM:
        col2im_f32((const float *)j->in0 + lo * rows, (float *)j->out0 + lo * img, n, g[1], g[2], g[3], g[4], g[5],
                   g[6], g[7], g[8], g[9], g[10], g[11], g[12]);
        break;
    case JOB_POOL_FWD:
        j->rc[p] = maxpool_fwd_f32((const float *)j->in0 + lo * img, (float *)j->out0 + lo * pooled, (int *)j->out1 + lo * pooled,
                        n, g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11]);
        break;
    default:
        maxpool_bwd_f32((const float *)j->in0 + lo * pooled, (const int *)j->in1 + lo * pooled,
                        (float *)j->out0 + lo * img, n, g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10],
                        g[11]);
    }
}

/* Elementwise ReLU forward and backward, in parts of whole 64-byte lines. */
typedef struct { const float *a, *b; float *out; long n; float cap; int backward; } ReluJob;

static void relu_part(void *v, int p, int np)
{
    const ReluJob *j = v;
    long lo, hi;
    pool_span((j->n + 15) / 16, p, np, &lo, &hi);
    lo *= 16;
    hi = hi * 16 < j->n ? hi * 16 : j->n;
    if (hi <= lo) return;
    if (j->backward) relu_bwd_f32(j->a + lo, j->b + lo, j->out + lo, hi - lo, j->cap);
    else relu_fwd_f32(j->a + lo, j->out + lo, hi - lo, j->cap);
}

/* Batch normalization over (M, C) rows. The sums: part p adds into its own acc + p * width. */
enum { JOB_BN_SUM, JOB_BN_SQ, JOB_BN_AFFINE, JOB_BN_GRAD_SUMS, JOB_BN_DX };
typedef struct {
    int kind;
    const float *x, *dy, *mean, *inv_std, *scale, *shift, *a, *b, *q;
    float *out;
    double *acc;
    long M;
    int C;
} BnJob;

static void bn_part(void *v, int p, int np)
{
    const BnJob *j = v;
    long lo, hi;
    pool_span(j->M, p, np, &lo, &hi);
    const long m = hi - lo, off = lo * j->C;
    const int C = j->C;
    if (m <= 0) return;
    switch (j->kind) {
    case JOB_BN_SUM: bn_sums_f32(j->x + off, NULL, j->acc + (long)p * C, NULL, m, C); break;
    case JOB_BN_SQ: bn_sums_f32(j->x + off, j->mean, NULL, j->acc + (long)p * C, m, C); break;
    case JOB_BN_AFFINE: bn_affine_f32(j->x + off, j->mean, j->scale, j->shift, j->out + off, m, C); break;
    case JOB_BN_GRAD_SUMS:
        bn_grad_sums_f32(j->dy + off, j->x + off, j->mean, j->inv_std, j->acc + 2L * p * C, j->acc + 2L * p * C + C, m, C);
        break;
    default: bn_dx_f32(j->dy + off, j->x + off, j->mean, j->a, j->b, j->q, j->out + off, m, C);
    }
}

/* acc[0..width) += acc[p * width ..] for p = 1 .. np-1, in order */
static void add_parts(double *acc, long width, int np)
{
    for (int p = 1; p < np; p++)
        for (long i = 0; i < width; i++) acc[i] += acc[p * width + i];
}

/* out[i] += part[i] over a float array, for the kernel-gradient partials */
static void add_f32(float *restrict out, const float *restrict part, long n)
{
    for (long i = 0; i < n; i++) out[i] += part[i];
}

/* im2col and col2im share their arguments: an image of N*H*W*C floats and a window matrix of
   N*Ho*Wo rows of ld floats; im2col reads the image and writes the matrix, col2im (its adjoint)
   the other way round. */
static PyObject *window_matrix_entry(PyObject *args, int adjoint)
{
    const char *k = adjoint ? "col2im_f32" : "im2col_f32";
    PyObject *o_in, *o_out;
    long long g[13];
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOLLLLLLLLLLLLL|i", &o_in, &o_out, g, g + 1, g + 2, g + 3, g + 4, g + 5, g + 6,
                          g + 7, g + 8, g + 9, g + 10, g + 11, g + 12, &threads))
        return NULL;
    if (check_windows(k, g) < 0 || check_ints(k, "ld", g + 12, 1) < 0 || check_threads(k, threads) < 0) return NULL;
    const long long taps = g[4] * g[5] * g[3], ld = g[12];
    if (!adjoint && ld != taps && ld != taps + 1)
        return fail(k, "row length ld=%lld must be kh*kw*C=%lld (or one more for the bias column)", ld, taps), NULL;
    if (adjoint && ld < taps) return fail(k, "row length ld=%lld is shorter than kh*kw*C=%lld", ld, taps), NULL;
    Py_ssize_t n_image = 0, n_cols = 0;  /* set by product(), which fails first otherwise */
    if (product(k, &n_image, g[0], g[1], g[2], g[3]) < 0 || product(k, &n_cols, g[0], g[10], g[11], ld) < 0)
        return NULL;
    Arr in, out;
    Arr *all[] = {&out, &in};
    in.held = out.held = 0;
    PyObject *res = NULL;
    if (arr_get(&in, o_in, k, adjoint ? "cols" : "x", 0, adjoint ? n_cols : n_image, 0) < 0 ||
        arr_get(&out, o_out, k, adjoint ? "dx" : "cols", 0, adjoint ? n_image : n_cols, 1) < 0 ||
        disjoint(k, all, 2, 1) < 0)
        goto done;
    counters[adjoint ? N_COL2IM : N_IM2COL]++;
    counters[adjoint ? (fits(g) ? N_COL2IM_VALID : N_COL2IM_PADDED) : (fits(g) ? N_IM2COL_VALID : N_IM2COL_PADDED)]++;
    WindowJob job = {adjoint ? JOB_COL2IM : JOB_IM2COL, in.v.buf, NULL, out.v.buf, NULL, {0}};
    memcpy(job.g, g, sizeof job.g);
    Py_BEGIN_ALLOW_THREADS
    pool_run(window_part, &job, parts_of(threads, g[0]));
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

static PyObject *py_im2col(PyObject *self, PyObject *args) { return window_matrix_entry(args, 0); }

static PyObject *py_col2im(PyObject *self, PyObject *args) { return window_matrix_entry(args, 1); }

static int is_2x2(const long long *g)
{
    return g[4] == 2 && g[5] == 2 && g[6] == 2 && g[7] == 2 && g[8] == 0 && g[9] == 0;
}

static PyObject *py_maxpool_fwd(PyObject *self, PyObject *args)
{
    const char *k = "maxpool_fwd_f32";
    PyObject *ox, *oy, *oa;
    long long g[12];
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOLLLLLLLLLLLL|i", &ox, &oy, &oa, g, g + 1, g + 2, g + 3, g + 4, g + 5, g + 6,
                          g + 7, g + 8, g + 9, g + 10, g + 11, &threads))
        return NULL;
    if (check_windows(k, g) < 0 || check_threads(k, threads) < 0) return NULL;
    Py_ssize_t nx = 0, ny = 0;  /* set by product(), which fails first otherwise */
    if (product(k, &nx, g[0], g[1], g[2], g[3]) < 0 || product(k, &ny, g[0], g[10], g[11], g[3]) < 0) return NULL;
    Arr x, y, a;
    Arr *all[] = {&y, &a, &x};
    x.held = y.held = a.held = 0;
    PyObject *res = NULL;
    if (arr_get(&x, ox, k, "x", 0, nx, 0) < 0 || arr_get(&y, oy, k, "y", 0, ny, 1) < 0 ||
        arr_get(&a, oa, k, "arg", 1, ny, 1) < 0 || disjoint(k, all, 3, 2) < 0)
        goto done;
    counters[N_MAXPOOL_FWD]++;
    counters[is_2x2(g) && 2 * g[10] <= g[1] && 2 * g[11] <= g[2] ? N_MAXPOOL_FWD_2X2 : N_MAXPOOL_FWD_GENERAL]++;
    WindowJob job = {JOB_POOL_FWD, x.v.buf, NULL, y.v.buf, a.v.buf, {0}, {0}};
    memcpy(job.g, g, sizeof(long long) * 12);
    const int np = parts_of(threads, g[0]);
    Py_BEGIN_ALLOW_THREADS
    pool_run(window_part, &job, np);
    Py_END_ALLOW_THREADS
    for (int p = 0; p < np; p++)
        if (job.rc[p] < 0) { PyErr_NoMemory(); goto done; }
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

static PyObject *py_maxpool_bwd(PyObject *self, PyObject *args)
{
    const char *k = "maxpool_bwd_f32";
    PyObject *ody, *oa, *odx;
    long long g[12];
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOLLLLLLLLLLLL|i", &ody, &oa, &odx, g, g + 1, g + 2, g + 3, g + 4, g + 5, g + 6,
                          g + 7, g + 8, g + 9, g + 10, g + 11, &threads))
        return NULL;
    if (check_windows(k, g) < 0 || check_threads(k, threads) < 0) return NULL;
    if (g[4] * g[5] > INT32_MAX) return fail(k, "a %lldx%lld window overflows a C int", g[4], g[5]), NULL;
    Py_ssize_t nx = 0, ny = 0;  /* set by product(), which fails first otherwise */
    if (product(k, &nx, g[0], g[1], g[2], g[3]) < 0 || product(k, &ny, g[0], g[10], g[11], g[3]) < 0) return NULL;
    Arr dy, a, dx;
    Arr *all[] = {&dx, &dy, &a};
    dy.held = a.held = dx.held = 0;
    PyObject *res = NULL;
    if (arr_get(&dy, ody, k, "dy", 0, ny, 0) < 0 || arr_get(&a, oa, k, "arg", 1, ny, 0) < 0 ||
        arr_get(&dx, odx, k, "dx", 0, nx, 1) < 0 || disjoint(k, all, 3, 1) < 0)
        goto done;
    counters[N_MAXPOOL_BWD]++;
    counters[is_2x2(g) && 2 * g[10] == g[1] && 2 * g[11] == g[2] ? N_MAXPOOL_BWD_2X2 : N_MAXPOOL_BWD_GENERAL]++;
    WindowJob job = {JOB_POOL_BWD, dy.v.buf, a.v.buf, dx.v.buf, NULL, {0}};
    memcpy(job.g, g, sizeof(long long) * 12);
    Py_BEGIN_ALLOW_THREADS
    pool_run(window_part, &job, parts_of(threads, g[0]));
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

/* relu_fwd_f32(x, y, cap, threads=1): y = min(max(x, 0), cap), NaN kept; cap = inf for none.
   relu_bwd_f32(dy, y, dz, cap=inf, threads=1): dz = dy where 0 < y < cap, else 0.
   One checked entry for both: the first array sets the size, the others must match it. */
static PyObject *relu_entry(PyObject *args, int backward)
{
    const char *k = backward ? "relu_bwd_f32" : "relu_fwd_f32";
    PyObject *o0, *o1, *o2 = NULL;
    float cap = INFINITY;
    int threads = 1;
    if (!(backward ? PyArg_ParseTuple(args, "OOO|fi", &o0, &o1, &o2, &cap, &threads)
                   : PyArg_ParseTuple(args, "OOf|i", &o0, &o1, &cap, &threads)) || check_threads(k, threads) < 0)
        return NULL;
    if (backward ? !(cap > 0.0f) : !(cap >= 0.0f))
        return fail(k, "cap must be %s 0 (inf for none); got %g", backward ? ">" : ">=", (double)cap), NULL;
    /* backward: dy (o0), y (o1), dz (o2, written); forward: x (o0), y (o1, written) */
    Arr a0, a1, a2;
    Arr *all[] = {backward ? &a2 : &a1, &a0, backward ? &a1 : NULL};
    a0.held = a1.held = a2.held = 0;
    PyObject *res = NULL;
    if (backward ? arr_get(&a1, o1, k, "y", 0, -1, 0) < 0 : arr_get(&a0, o0, k, "x", 0, -1, 0) < 0) goto done;
    const Py_ssize_t n = (backward ? a1.v.len : a0.v.len) / 4;
    if (backward ? (arr_get(&a0, o0, k, "dy", 0, n, 0) < 0 || arr_get(&a2, o2, k, "dz", 0, n, 1) < 0)
                 : arr_get(&a1, o1, k, "y", 0, n, 1) < 0)
        goto done;
    if (disjoint(k, all, backward ? 3 : 2, 1) < 0) goto done;
    counters[backward ? N_RELU_BWD : N_RELU_FWD]++;
    ReluJob job = {a0.v.buf, backward ? a1.v.buf : NULL, backward ? a2.v.buf : a1.v.buf, n, cap, backward};
    Py_BEGIN_ALLOW_THREADS
    pool_run(relu_part, &job, parts_of(threads, (n + 15) / 16));
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

static PyObject *py_relu_fwd(PyObject *self, PyObject *args) { return relu_entry(args, 0); }

static PyObject *py_relu_bwd(PyObject *self, PyObject *args) { return relu_entry(args, 1); }

/* (M, C) from the arguments, checked: both in [0, 2^31) and M*C within memory */
static int bn_shape(const char *k, long long M, long long C, Py_ssize_t *n)
{
    const long long v[2] = {M, C};
    if (check_ints(k, "M C", v, 2) < 0 || product(k, n, M, C, 1, 1) < 0) return -1;
    if (C < 1) return fail(k, "C must be >= 1; got %lld", C);
    return 0;
}

/* bn_moments_f32(x, mean, var, M, C): per-channel mean and biased variance of an (M, C) array */
static PyObject *py_bn_moments(PyObject *self, PyObject *args)
{
    const char *k = "bn_moments_f32";
    PyObject *ox, *omean, *ovar;
    long long M, C;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOLL|i", &ox, &omean, &ovar, &M, &C, &threads) || check_threads(k, threads) < 0)
        return NULL;
    Arr x, mean, var;
    Arr *all[] = {&mean, &var, &x};
    x.held = mean.held = var.held = 0;
    PyObject *res = NULL;
    Py_ssize_t n = 0;
    if (bn_shape(k, M, C, &n) < 0) goto done;
    if (M < 1) { fail(k, "M must be >= 1 (a mean over no values)"); goto done; }
    if (arr_get(&x, ox, k, "x", 0, n, 0) < 0 || arr_get(&mean, omean, k, "mean", 0, C, 1) < 0 ||
        arr_get(&var, ovar, k, "var", 0, C, 1) < 0 || disjoint(k, all, 3, 2) < 0)
        goto done;
    const int np = parts_of(threads, M);
    double *acc = calloc(2 * (size_t)np * C, sizeof(double));  /* np rows of sums, then np of squares */
    if (!acc) { PyErr_NoMemory(); goto done; }
    counters[N_BN_MOMENTS]++;
    float *mu = mean.v.buf, *va = var.v.buf;
    BnJob job = {JOB_BN_SUM, x.v.buf, NULL, mu, NULL, NULL, NULL, NULL, NULL, NULL, NULL, acc, M, (int)C};
    Py_BEGIN_ALLOW_THREADS
    pool_run(bn_part, &job, np);
    add_parts(acc, C, np);
    for (long long c = 0; c < C; c++) mu[c] = (float)(acc[c] / (double)M);
    job.kind = JOB_BN_SQ;
    job.acc = acc + (size_t)np * C;
    pool_run(bn_part, &job, np);
    add_parts(job.acc, C, np);
    for (long long c = 0; c < C; c++) va[c] = (float)(job.acc[c] / (double)M);
    Py_END_ALLOW_THREADS
    free(acc);
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

/* bn_affine_f32(x, center, scale, shift, y, M, C): y = (x - center) * scale + shift per channel */
static PyObject *py_bn_affine(PyObject *self, PyObject *args)
{
    const char *k = "bn_affine_f32";
    PyObject *ox, *ocenter, *oscale, *oshift, *oy;
    long long M, C;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOOLL|i", &ox, &ocenter, &oscale, &oshift, &oy, &M, &C, &threads) ||
        check_threads(k, threads) < 0)
        return NULL;
    Arr x, center, scale, shift, y;
    Arr *all[] = {&y, &x, &center, &scale, &shift};
    x.held = center.held = scale.held = shift.held = y.held = 0;
    PyObject *res = NULL;
    Py_ssize_t n = 0;
    if (bn_shape(k, M, C, &n) < 0) goto done;
    if (arr_get(&x, ox, k, "x", 0, n, 0) < 0 || arr_get(&center, ocenter, k, "center", 0, C, 0) < 0 ||
        arr_get(&scale, oscale, k, "scale", 0, C, 0) < 0 || arr_get(&shift, oshift, k, "shift", 0, C, 0) < 0 ||
        arr_get(&y, oy, k, "y", 0, n, 1) < 0 || disjoint(k, all, 5, 1) < 0)
        goto done;
    counters[N_BN_AFFINE]++;
    BnJob job = {JOB_BN_AFFINE, x.v.buf, NULL, center.v.buf, NULL, scale.v.buf, shift.v.buf, NULL, NULL, NULL, y.v.buf,
                 NULL, M, (int)C};
    Py_BEGIN_ALLOW_THREADS
    pool_run(bn_part, &job, parts_of(threads, M));
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

/* bn_bwd_f32(dy, x, mean, inv_std, k, dx, dgamma, dbeta, M, C): the training-mode BN backward.
   dbeta = sum dy, dgamma = sum dy * xhat, dx = k * (dy - dbeta / M - xhat * dgamma / M),
   with xhat = (x - mean) * inv_std and k = gamma * inv_std (inv_std without a gamma). */
static PyObject *py_bn_bwd(PyObject *self, PyObject *args)
{
    const char *kn = "bn_bwd_f32";
    PyObject *ody, *ox, *omean, *oinv, *ok, *odx, *odg, *odb;
    long long M, C;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOOOOOLL|i", &ody, &ox, &omean, &oinv, &ok, &odx, &odg, &odb, &M, &C, &threads) ||
        check_threads(kn, threads) < 0)
        return NULL;
    Arr dy, x, mean, inv, kk, dx, dg, db;
    Arr *all[] = {&dx, &dg, &db, &dy, &x, &mean, &inv, &kk};
    dy.held = x.held = mean.held = inv.held = kk.held = dx.held = dg.held = db.held = 0;
    PyObject *res = NULL;
    Py_ssize_t n = 0;
    if (bn_shape(kn, M, C, &n) < 0) goto done;
    if (M < 1) { fail(kn, "M must be >= 1"); goto done; }
    if (arr_get(&dy, ody, kn, "dy", 0, n, 0) < 0 || arr_get(&x, ox, kn, "x", 0, n, 0) < 0 ||
        arr_get(&mean, omean, kn, "mean", 0, C, 0) < 0 || arr_get(&inv, oinv, kn, "inv_std", 0, C, 0) < 0 ||
        arr_get(&kk, ok, kn, "k", 0, C, 0) < 0 || arr_get(&dx, odx, kn, "dx", 0, n, 1) < 0 ||
        arr_get(&dg, odg, kn, "dgamma", 0, C, 1) < 0 || arr_get(&db, odb, kn, "dbeta", 0, C, 1) < 0 ||
        disjoint(kn, all, 8, 3) < 0)
        goto done;
    const int np = parts_of(threads, M);
    double *acc = calloc(2 * (size_t)np * C, sizeof(double));  /* per part: C sums of dy, C of dy * xhat */
    float *coef = malloc(3 * (size_t)C * sizeof(float));
    if (!acc || !coef) { free(acc); free(coef); PyErr_NoMemory(); goto done; }
    counters[N_BN_BWD]++;
    const float *mu = mean.v.buf, *is = inv.v.buf, *kv = kk.v.buf;
    float *dgv = dg.v.buf, *dbv = db.v.buf;
    BnJob job = {JOB_BN_GRAD_SUMS, x.v.buf, dy.v.buf, mu, is, NULL, NULL, coef, coef + C, coef + 2 * C, dx.v.buf, acc,
                 M, (int)C};
    Py_BEGIN_ALLOW_THREADS
    pool_run(bn_part, &job, np);
    add_parts(acc, 2 * C, np);
    for (long long c = 0; c < C; c++) {
        dbv[c] = (float)acc[c];
        dgv[c] = (float)acc[C + c];
        coef[c] = kv[c];                                                        /* a */
        coef[C + c] = (float)(-(double)kv[c] * acc[c] / (double)M);             /* b */
        coef[2 * C + c] = (float)(-(double)kv[c] * acc[C + c] / (double)M * is[c]); /* q */
    }
    job.kind = JOB_BN_DX;
    pool_run(bn_part, &job, np);
    Py_END_ALLOW_THREADS
    free(acc);
    free(coef);
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

static PyObject *py_adam(PyObject *self, PyObject *args)
{
    const char *k = "adam_f32";
    PyObject *op, *og, *om, *ov;
    float alpha, b1, b2, eps;
    if (!PyArg_ParseTuple(args, "OOOOffff", &op, &og, &om, &ov, &alpha, &b1, &b2, &eps)) return NULL;
    Arr p, g, m, v;
    Arr *all[] = {&p, &m, &v, &g};
    p.held = g.held = m.held = v.held = 0;
    PyObject *res = NULL;
    if (arr_get(&p, op, k, "param", 0, -1, 1) < 0) goto done;
    const Py_ssize_t n = p.v.len / 4;
    if (arr_get(&g, og, k, "grad", 0, n, 0) < 0 || arr_get(&m, om, k, "m", 0, n, 1) < 0 ||
        arr_get(&v, ov, k, "v", 0, n, 1) < 0 || disjoint(k, all, 4, 3) < 0)
        goto done;
    counters[N_ADAM]++;
    Py_BEGIN_ALLOW_THREADS
    adam_f32(p.v.buf, g.v.buf, m.v.buf, v.v.buf, n, alpha, b1, b2, eps);
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

static PyObject *py_rmsprop(PyObject *self, PyObject *args)
{
    const char *k = "rmsprop_f32";
    PyObject *op, *og, *ov;
    float lr, rho, eps;
    if (!PyArg_ParseTuple(args, "OOOfff", &op, &og, &ov, &lr, &rho, &eps)) return NULL;
    Arr p, g, v;
    Arr *all[] = {&p, &v, &g};
    p.held = g.held = v.held = 0;
    PyObject *res = NULL;
    if (arr_get(&p, op, k, "param", 0, -1, 1) < 0) goto done;
    const Py_ssize_t n = p.v.len / 4;
    if (arr_get(&g, og, k, "grad", 0, n, 0) < 0 || arr_get(&v, ov, k, "v", 0, n, 1) < 0 || disjoint(k, all, 3, 2) < 0)
        goto done;
    counters[N_RMSPROP]++;
    Py_BEGIN_ALLOW_THREADS
    rmsprop_f32(p.v.buf, g.v.buf, v.v.buf, n, lr, rho, eps);
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

#define MAX_FUSED_FILTERS_AVX2 32
#define MAX_FUSED_FILTERS_AVX512 4096

static int max_fused_filters(void)
{
    return current_isa() == 2 ? MAX_FUSED_FILTERS_AVX512 : MAX_FUSED_FILTERS_AVX2;
}

/* g: N H W C kh kw sh sw F Ho Wo pt pl; 1..max_fused_filters() filters. The windows are those
   of the image with pt rows and pl columns of zeros before it (and as many after as they
   reach), checked as im2col's are. Sets *padded when there is padding, or windows past the
   image's end. */
static int check_fused(const char *kernel, const long long *g, long long *fp, int *padded)
{
    const long long w[12] = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[11], g[12], g[9], g[10]};
    if (check_windows(kernel, w) < 0 || check_ints(kernel, "F", g + 8, 1) < 0) return -1;
    if (g[0] < 1 || g[3] < 1 || g[8] < 1 || g[9] < 1 || g[10] < 1)
        return fail(kernel, "N=%lld, C=%lld, F=%lld, Ho=%lld, Wo=%lld must all be >= 1", g[0], g[3], g[8], g[9], g[10]);
    if (g[8] > max_fused_filters())
        return fail(kernel, "F=%lld filters; the fused kernels take at most %d", g[8], max_fused_filters());
    *padded = !fits(w);
    *fp = 16 * ((g[8] + 15) / 16);
    return 0;
}

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_FUSED 1
#else
#define HAVE_FUSED 0
#endif

/* The fused convolutions image by image (see "One call split over the kernels' threads").
   g: N H W C kh kw sh sw F Ho Wo pt pl. The kernel gradient of part p > 0 goes to its own
   zeroed buffer (kernel, then bias) in `partial`, added to dwp and dbp in part order after. */
typedef struct {
    const float *x, *w, *b;  /* forward: x, wp, bp; kernel gradient: x, dy */
    float *y, *dw, *db, *partial;
    long long g[13];
    long nw, fp;
    int padded, relu, ok[POOL_MAX_THREADS];
} ConvJob;

#if HAVE_FUSED
static void conv_fwd_part(void *v, int p, int np)
{
    ConvJob *j = v;
    const long long *g = j->g;
    long lo, hi;
    pool_span(g[0], p, np, &lo, &hi);
    j->ok[p] = 1;
    if (hi <= lo) return;
    const float *x = j->x + lo * (long)(g[1] * g[2] * g[3]);
    float *y = j->y + lo * (long)(g[9] * g[10] * g[8]);
    if (j->padded)
        j->ok[p] = conv_fwd_padded_f32(x, j->w, j->b, y, hi - lo, g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9],
                                       g[10], g[11], g[12], j->relu);
    else
        conv_fwd_f32(x, j->w, j->b, y, hi - lo, g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], j->relu);
}

static void conv_dw_part(void *v, int p, int np)
{
    ConvJob *j = v;
    const long long *g = j->g;
    long lo, hi;
    pool_span(g[0], p, np, &lo, &hi);
    j->ok[p] = 1;
    if (hi <= lo) return;
    const float *x = j->x + lo * (long)(g[1] * g[2] * g[3]), *dy = j->w + lo * (long)(g[9] * g[10] * g[8]);
    float *dw = p == 0 ? j->dw : j->partial + (p - 1) * (j->nw + j->fp);
    float *db = !j->db ? NULL : p == 0 ? j->db : dw + j->nw;
    if (j->padded)
        j->ok[p] = conv_dw_padded_f32(x, dy, dw, db, hi - lo, g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9],
                                      g[10], g[11], g[12]);
    else
        conv_dw_f32(x, dy, dw, db, hi - lo, g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10]);
}
#endif

static int conv_job_ok(const ConvJob *j, int np)
{
    for (int p = 0; p < np; p++)
        if (!j->ok[p]) return 0;
    return 1;
}

static PyObject *py_conv_fwd(PyObject *self, PyObject *args)
{
    const char *k = "conv_fwd_f32";
    PyObject *ox, *ow, *ob, *oy;
    long long g[13], fp;
    int padded = 0, ok = 1, relu = 0, threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOLLLLLLLLLLLLL|pi", &ox, &ow, &ob, &oy, g, g + 1, g + 2, g + 3, g + 4, g + 5, g + 6,
                          g + 7, g + 8, g + 9, g + 10, g + 11, g + 12, &relu, &threads) || check_threads(k, threads) < 0)
        return NULL;
    if (!HAVE_FUSED || !conv_fused_supported()) return fail(k, "this CPU has no AVX2+FMA"), NULL;
    if (check_fused(k, g, &fp, &padded) < 0) return NULL;
    Py_ssize_t nx = 0, nw = 0, ny = 0;  /* set by product(), which fails first otherwise */
    if (product(k, &nx, g[0], g[1], g[2], g[3]) < 0 || product(k, &nw, g[4], g[5], g[3], fp) < 0 ||
        product(k, &ny, g[0], g[9], g[10], g[8]) < 0)
        return NULL;
    Arr x, w, b, y;
    Arr *all[] = {&y, &x, &w, ob == Py_None ? NULL : &b};
    x.held = w.held = b.held = y.held = 0;
    PyObject *res = NULL;
    if (arr_get(&x, ox, k, "x", 0, nx, 0) < 0 || arr_get(&w, ow, k, "wp", 0, nw, 0) < 0 ||
        (ob != Py_None && arr_get(&b, ob, k, "bp", 0, fp, 0) < 0) || arr_get(&y, oy, k, "y", 0, ny, 1) < 0 ||
        disjoint(k, all, 4, 1) < 0)
        goto done;
    counters[N_CONV_FWD]++;
#if HAVE_FUSED
    if (current_isa() == 2)
        counters[PIXELS512(g[8], g[3], g[7], g[10]) ? N_CONV_FWD_PIXELS512 : N_CONV_FWD_FILTERS512]++;
    else
        counters[AVX2_PIXELS(g[8], g[3], g[7], g[10]) ? N_CONV_FWD_PIXELS : N_CONV_FWD_FILTERS]++;
#endif
#if HAVE_FUSED
    ConvJob job = {x.v.buf, w.v.buf, ob == Py_None ? NULL : b.v.buf, y.v.buf, NULL, NULL, NULL, {0}, 0, fp, padded, relu,
                   {0}};
    memcpy(job.g, g, sizeof job.g);
    const int np = parts_of(threads, g[0]);
    Py_BEGIN_ALLOW_THREADS
    pool_run(conv_fwd_part, &job, np);
    Py_END_ALLOW_THREADS
    ok = conv_job_ok(&job, np);
#endif
    if (!ok) { PyErr_NoMemory(); goto done; }
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

static PyObject *py_conv_dw(PyObject *self, PyObject *args)
{
    const char *k = "conv_dw_f32";
    PyObject *ox, *ody, *odw, *odb;
    long long g[13], fp;
    int padded = 0, ok = 1, threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOLLLLLLLLLLLLL|i", &ox, &ody, &odw, &odb, g, g + 1, g + 2, g + 3, g + 4, g + 5,
                          g + 6, g + 7, g + 8, g + 9, g + 10, g + 11, g + 12, &threads) || check_threads(k, threads) < 0)
        return NULL;
    if (!HAVE_FUSED || !conv_fused_supported()) return fail(k, "this CPU has no AVX2+FMA"), NULL;
    if (check_fused(k, g, &fp, &padded) < 0) return NULL;
    Py_ssize_t nx = 0, ndy = 0, ndw = 0;  /* set by product(), which fails first otherwise */
    if (product(k, &nx, g[0], g[1], g[2], g[3]) < 0 || product(k, &ndy, g[0], g[9], g[10], g[8]) < 0 ||
        product(k, &ndw, g[4], g[5], g[3], fp) < 0)
        return NULL;
    Arr x, dy, dw, db;
    Arr *all[] = {&dw, odb == Py_None ? NULL : &db, &x, &dy};
    x.held = dy.held = dw.held = db.held = 0;
    PyObject *res = NULL;
    if (arr_get(&x, ox, k, "x", 0, nx, 0) < 0 || arr_get(&dy, ody, k, "dy", 0, ndy, 0) < 0 ||
        arr_get(&dw, odw, k, "dwp", 0, ndw, 1) < 0 || (odb != Py_None && arr_get(&db, odb, k, "dbp", 0, fp, 1) < 0) ||
        disjoint(k, all, 4, 2) < 0)
        goto done;
    counters[N_CONV_DW]++;
#if HAVE_FUSED
    counters[current_isa() != 2 ? N_CONV_DW_AVX2 : TAPS_IN_LANES(g[8], g[3], g[5]) ? N_CONV_DW_TAPS512 : N_CONV_DW_AVX512]++;
    const int np = parts_of(threads, g[0]);
    float *partial = np > 1 ? calloc((size_t)(np - 1) * (size_t)(ndw + fp), sizeof(float)) : NULL;
    if (np > 1 && !partial) { PyErr_NoMemory(); goto done; }
    ConvJob job = {x.v.buf, dy.v.buf, NULL, NULL, dw.v.buf, odb == Py_None ? NULL : db.v.buf, partial, {0}, ndw, fp,
                   padded, 0, {0}};
    memcpy(job.g, g, sizeof job.g);
    Py_BEGIN_ALLOW_THREADS
    pool_run(conv_dw_part, &job, np);
    for (int p = 1; p < np; p++) {  /* in part order: the same bits for the same `threads` */
        add_f32(job.dw, partial + (p - 1) * (ndw + fp), ndw);
        if (job.db) add_f32(job.db, partial + (p - 1) * (ndw + fp) + ndw, fp);
    }
    Py_END_ALLOW_THREADS
    free(partial);
    ok = conv_job_ok(&job, np);
#endif
    if (!ok) { PyErr_NoMemory(); goto done; }
    res = Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

/* Depthwise geometry. g: N H W C kh kw sh sw pt pl rh rw Ho Wo dm (rh, rw: dilation; dm: depth
   multiplier). The windows are checked as check_windows checks them, with the dilated window's
   span in place of (kh, kw). Sets the element counts of the image, the kernel, the output and
   the bias (nb = C * dm). */
static int check_depthwise(const char *kernel, const long long *g, Py_ssize_t *nx, Py_ssize_t *nw, Py_ssize_t *ny,
                           Py_ssize_t *nb)
{
    if (check_ints(kernel, "N H W C kh kw sh sw pt pl rh rw Ho Wo dm", g, 15) < 0) return -1;
    if (g[4] < 1 || g[5] < 1 || g[10] < 1 || g[11] < 1 || g[14] < 1)
        return fail(kernel, "window (%lld, %lld), dilation (%lld, %lld) and depth multiplier %lld must be >= 1",
                    g[4], g[5], g[10], g[11], g[14]);
    const long long span_h = (g[4] - 1) * g[10] + 1, span_w = (g[5] - 1) * g[11] + 1;  /* < 2^62: no overflow */
    if (span_h > INT32_MAX || span_w > INT32_MAX)
        return fail(kernel, "a %lldx%lld window dilated by (%lld, %lld) overflows a C int", g[4], g[5], g[10], g[11]);
    const long long win[12] = {g[0], g[1], g[2], g[3], span_h, span_w, g[6], g[7], g[8], g[9], g[12], g[13]};
    if (check_windows(kernel, win) < 0) return -1;
    const long long co = g[3] * g[14];
    if (co > INT32_MAX) return fail(kernel, "C * dm = %lld channels overflow a C int", co);
    if (product(kernel, nx, g[0], g[1], g[2], g[3]) < 0 || product(kernel, nw, g[4], g[5], co, 1) < 0 ||
        product(kernel, ny, g[0], g[12], g[13], co) < 0)
        return -1;
    *nb = (Py_ssize_t)co;
    return 0;
}

#define DEPTHWISE_INTS "LLLLLLLLLLLLLLL"
#define DEPTHWISE_PTRS(g) g, g + 1, g + 2, g + 3, g + 4, g + 5, g + 6, g + 7, g + 8, g + 9, g + 10, g + 11, g + 12, \
                          g + 13, g + 14

/* The depthwise kernels image by image. g: N H W C kh kw sh sw pt pl rh rw Ho Wo dm. The
   kernel gradient of part p > 0 goes to its own buffer in `partial` (kernel, then bias),
   added to dw and db in part order after (the kernel overwrites, it does not add). */
enum { JOB_DW_FWD, JOB_DW_DX, JOB_DW_DW };
typedef struct {
    int kind;
    const float *in0, *in1, *b;
    float *out, *db, *partial;
    long long g[15];
    long nw, nb;
    int rc[POOL_MAX_THREADS];
} DepthwiseJob;

static void depthwise_part(void *v, int p, int np)
{
    DepthwiseJob *j = v;
    const long long *g = j->g;
    long lo, hi;
    pool_span(g[0], p, np, &lo, &hi);
    j->rc[p] = 0;
    if (hi <= lo) return;
    const long img = (long)(g[1] * g[2] * g[3]), out = (long)(g[12] * g[13] * g[3] * g[14]);
    const int n = (int)(hi - lo);
#define PART_ARGS n, (int)g[1], (int)g[2], (int)g[3], (int)g[4], (int)g[5], (int)g[6], (int)g[7], (int)g[8], \
                  (int)g[9], (int)g[10], (int)g[11], (int)g[12], (int)g[13], (int)g[14]
    if (j->kind == JOB_DW_FWD)
        j->rc[p] = depthwise_fwd_f32(j->in0 + lo * img, j->in1, j->b, j->out + lo * out, PART_ARGS);
    else if (j->kind == JOB_DW_DX)
        j->rc[p] = depthwise_dx_f32(j->in0 + lo * out, j->in1, j->out + lo * img, PART_ARGS);
    else {
        float *dw = p == 0 ? j->out : j->partial + (p - 1) * (j->nw + j->nb);
        float *db = !j->db ? NULL : p == 0 ? j->db : dw + j->nw;
        j->rc[p] = depthwise_dw_f32(j->in0 + lo * img, j->in1 + lo * out, dw, db, PART_ARGS);
    }
#undef PART_ARGS
}

static int depthwise_job_rc(const DepthwiseJob *j, int np)
{
    for (int p = 0; p < np; p++)
        if (j->rc[p] < 0) return -1;
    return 0;
}

static PyObject *py_depthwise_fwd(PyObject *self, PyObject *args)
{
    const char *k = "depthwise_fwd_f32";
    PyObject *ox, *ow, *ob, *oy;
    long long g[15];
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOO" DEPTHWISE_INTS "|i", &ox, &ow, &ob, &oy, DEPTHWISE_PTRS(g), &threads)) return NULL;
    Py_ssize_t nx, nw, ny, nb;
    if (check_depthwise(k, g, &nx, &nw, &ny, &nb) < 0 || check_threads(k, threads) < 0) return NULL;
    Arr x, w, b, y;
    Arr *all[] = {&y, &x, &w, ob == Py_None ? NULL : &b};
    x.held = w.held = b.held = y.held = 0;
    PyObject *res = NULL;
    if (arr_get(&x, ox, k, "x", 0, nx, 0) < 0 || arr_get(&w, ow, k, "w", 0, nw, 0) < 0 ||
        (ob != Py_None && arr_get(&b, ob, k, "b", 0, nb, 0) < 0) || arr_get(&y, oy, k, "y", 0, ny, 1) < 0 ||
        disjoint(k, all, 4, 1) < 0)
        goto done;
    counters[N_DEPTHWISE_FWD]++;
    counters[g[14] == 1 ? N_DEPTHWISE_FWD_DM1 : N_DEPTHWISE_FWD_DM]++;
    DepthwiseJob job = {JOB_DW_FWD, x.v.buf, w.v.buf, ob == Py_None ? NULL : b.v.buf, y.v.buf, NULL, NULL, {0}, 0, 0,
                        {0}};
    memcpy(job.g, g, sizeof job.g);
    const int np = parts_of(threads, g[0]);
    Py_BEGIN_ALLOW_THREADS
    pool_run(depthwise_part, &job, np);
    Py_END_ALLOW_THREADS
    const int rc = depthwise_job_rc(&job, np);
    res = rc < 0 ? PyErr_NoMemory() : Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

static PyObject *py_depthwise_dx(PyObject *self, PyObject *args)
{
    const char *k = "depthwise_dx_f32";
    PyObject *ody, *ow, *odx;
    long long g[15];
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOO" DEPTHWISE_INTS "|i", &ody, &ow, &odx, DEPTHWISE_PTRS(g), &threads)) return NULL;
    Py_ssize_t nx, nw, ny, nb;
    if (check_depthwise(k, g, &nx, &nw, &ny, &nb) < 0 || check_threads(k, threads) < 0) return NULL;
    Arr dy, w, dx;
    Arr *all[] = {&dx, &dy, &w};
    dy.held = w.held = dx.held = 0;
    PyObject *res = NULL;
    if (arr_get(&dy, ody, k, "dy", 0, ny, 0) < 0 || arr_get(&w, ow, k, "w", 0, nw, 0) < 0 ||
        arr_get(&dx, odx, k, "dx", 0, nx, 1) < 0 || disjoint(k, all, 3, 1) < 0)
        goto done;
    counters[N_DEPTHWISE_DX]++;
    counters[g[14] == 1 ? N_DEPTHWISE_DX_DM1 : N_DEPTHWISE_DX_DM]++;
    DepthwiseJob job = {JOB_DW_DX, dy.v.buf, w.v.buf, NULL, dx.v.buf, NULL, NULL, {0}, 0, 0, {0}};
    memcpy(job.g, g, sizeof job.g);
    const int np = parts_of(threads, g[0]);
    Py_BEGIN_ALLOW_THREADS
    pool_run(depthwise_part, &job, np);
    Py_END_ALLOW_THREADS
    const int rc = depthwise_job_rc(&job, np);
    res = rc < 0 ? PyErr_NoMemory() : Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

static PyObject *py_depthwise_dw(PyObject *self, PyObject *args)
{
    const char *k = "depthwise_dw_f32";
    PyObject *ox, *ody, *odw, *odb;
    long long g[15];
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOO" DEPTHWISE_INTS "|i", &ox, &ody, &odw, &odb, DEPTHWISE_PTRS(g), &threads)) return NULL;
    Py_ssize_t nx, nw, ny, nb;
    if (check_depthwise(k, g, &nx, &nw, &ny, &nb) < 0 || check_threads(k, threads) < 0) return NULL;
    Arr x, dy, dw, db;
    Arr *all[] = {&dw, odb == Py_None ? NULL : &db, &x, &dy};
    x.held = dy.held = dw.held = db.held = 0;
    PyObject *res = NULL;
    if (arr_get(&x, ox, k, "x", 0, nx, 0) < 0 || arr_get(&dy, ody, k, "dy", 0, ny, 0) < 0 ||
        arr_get(&dw, odw, k, "dw", 0, nw, 1) < 0 || (odb != Py_None && arr_get(&db, odb, k, "db", 0, nb, 1) < 0) ||
        disjoint(k, all, 4, 2) < 0)
        goto done;
    counters[N_DEPTHWISE_DW]++;
    counters[g[14] == 1 ? N_DEPTHWISE_DW_DM1 : N_DEPTHWISE_DW_DM]++;
    const int np = parts_of(threads, g[0]);
    float *partial = np > 1 ? malloc(sizeof(float) * (size_t)(np - 1) * (size_t)(nw + nb)) : NULL;
    if (np > 1 && !partial) { PyErr_NoMemory(); goto done; }
    DepthwiseJob job = {JOB_DW_DW, x.v.buf, dy.v.buf, NULL, dw.v.buf, odb == Py_None ? NULL : db.v.buf, partial, {0},
                        nw, nb, {0}};
    memcpy(job.g, g, sizeof job.g);
    Py_BEGIN_ALLOW_THREADS
    pool_run(depthwise_part, &job, np);
    for (int p = 1; p < np; p++) {  /* in part order: the same bits for the same `threads` */
        add_f32(job.out, partial + (p - 1) * (nw + nb), nw);
        if (job.db) add_f32(job.db, partial + (p - 1) * (nw + nb) + nw, nb);
    }
    Py_END_ALLOW_THREADS
    free(partial);
    const int rc = depthwise_job_rc(&job, np);
    res = rc < 0 ? PyErr_NoMemory() : Py_NewRef(Py_None);
done:
    RELEASE_ALL(all);
    return res;
}

static PyObject *py_counts(PyObject *self, PyObject *unused)
{
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int i = 0; i < N_COUNTERS; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(counters[i]);
        if (!v || PyDict_SetItemString(d, counter_names[i], v) < 0) { Py_XDECREF(v); Py_DECREF(d); return NULL; }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *py_pool_counts(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("{sKsKsi}", "jobs", (unsigned long long)atomic_load(&pool_split_jobs), "parts",
                         (unsigned long long)atomic_load(&pool_split_parts), "workers", pool.workers);
}

static PyObject *py_fused_supported(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(HAVE_FUSED && conv_fused_supported());
}

static const char *isa_names[3] = {"", "avx2", "avx512"};

/* fused_isa() -> (name, max_filters): the instruction set the fused convolutions use now
   ('avx512', 'avx2' or '' for none) and the most filters they take */
static PyObject *py_fused_isa(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("(si)", isa_names[current_isa()], current_isa() ? max_fused_filters() : 0);
}

/* set_fused_isa(name): 'avx512', 'avx2' or 'best'; refuses one the CPU lacks */
static PyObject *py_set_fused_isa(PyObject *self, PyObject *arg)
{
    const char *name = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (!name) { PyErr_SetString(PyExc_TypeError, "set_fused_isa expects a str"); return NULL; }
    const int best = best_isa();
    int want = -1;
    if (!strcmp(name, "best")) want = best;
    else if (!strcmp(name, "avx2")) want = 1;
    else if (!strcmp(name, "avx512")) want = 2;
    if (want < 0 || want > best || want == 0) {
        PyErr_Format(PyExc_ValueError, "set_fused_isa: %R is not available here (expected 'best'%s%s)", arg,
                     best >= 1 ? ", 'avx2'" : "", best >= 2 ? ", 'avx512'" : "");
        return NULL;
    }
    fused_isa = want;
    return py_fused_isa(self, NULL);
}

static PyObject *py_set_error_class(PyObject *self, PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)PyExc_ValueError)) {
        PyErr_SetString(PyExc_TypeError, "set_error_class expects a ValueError subclass");
        return NULL;
    }
    Py_XSETREF(KernelArgumentError, Py_NewRef(cls));
    Py_RETURN_NONE;
}

static PyMethodDef ckernels_methods[] = {
    {"im2col_f32", py_im2col, METH_VARARGS, "im2col_f32(x, cols, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld, threads=1)"},
    {"col2im_f32", py_col2im, METH_VARARGS, "col2im_f32(cols, dx, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld, threads=1)"},
    {"maxpool_fwd_f32", py_maxpool_fwd, METH_VARARGS, "maxpool_fwd_f32(x, y, arg, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo, threads=1)"},
    {"maxpool_bwd_f32", py_maxpool_bwd, METH_VARARGS, "maxpool_bwd_f32(dy, arg, dx, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo, threads=1)"},
    {"relu_fwd_f32", py_relu_fwd, METH_VARARGS, "relu_fwd_f32(x, y, cap, threads=1)"},
    {"relu_bwd_f32", py_relu_bwd, METH_VARARGS, "relu_bwd_f32(dy, y, dz, cap=inf, threads=1)"},
    {"adam_f32", py_adam, METH_VARARGS, "adam_f32(param, grad, m, v, alpha, beta_1, beta_2, epsilon)"},
    {"rmsprop_f32", py_rmsprop, METH_VARARGS, "rmsprop_f32(param, grad, v, learning_rate, rho, epsilon)"},
    {"conv_fwd_f32", py_conv_fwd, METH_VARARGS, "conv_fwd_f32(x, wp, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, pt, pl, relu=False, threads=1)"},
    {"conv_dw_f32", py_conv_dw, METH_VARARGS, "conv_dw_f32(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, pt, pl, threads=1)"},
    {"bn_moments_f32", py_bn_moments, METH_VARARGS, "bn_moments_f32(x, mean, var, M, C, threads=1)"},
    {"bn_affine_f32", py_bn_affine, METH_VARARGS, "bn_affine_f32(x, center, scale, shift, y, M, C, threads=1)"},
    {"bn_bwd_f32", py_bn_bwd, METH_VARARGS, "bn_bwd_f32(dy, x, mean, inv_std, k, dx, dgamma, dbeta, M, C, threads=1)"},
    {"depthwise_fwd_f32", py_depthwise_fwd, METH_VARARGS,
     "depthwise_fwd_f32(x, w, b, y, N, H, W, C, kh, kw, sh, sw, pt, pl, rh, rw, Ho, Wo, dm, threads=1)"},
    {"depthwise_dx_f32", py_depthwise_dx, METH_VARARGS,
     "depthwise_dx_f32(dy, w, dx, N, H, W, C, kh, kw, sh, sw, pt, pl, rh, rw, Ho, Wo, dm, threads=1)"},
    {"depthwise_dw_f32", py_depthwise_dw, METH_VARARGS,
     "depthwise_dw_f32(x, dy, dw, db, N, H, W, C, kh, kw, sh, sw, pt, pl, rh, rw, Ho, Wo, dm, threads=1)"},
    {"counts", py_counts, METH_NOARGS, "How often each entry point and variant was called in this process."},
    {"pool_counts", py_pool_counts, METH_NOARGS, "Calls split over the kernels' threads (jobs), their parts, the workers started."},
    {"fused_supported", py_fused_supported, METH_NOARGS, "True when the fused convolution kernels can run here."},
    {"fused_isa", py_fused_isa, METH_NOARGS, "(name, max_filters) of the fused convolutions' instruction set."},
    {"set_fused_isa", py_set_fused_isa, METH_O, "Use 'avx512', 'avx2' or the 'best' the CPU has for the fused convolutions."},
    {"set_error_class", py_set_error_class, METH_O, "The ValueError subclass the checks raise."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef ckernels_module = {PyModuleDef_HEAD_INIT, "_ckernels",
    "convolab's optional compiled kernels behind a checked boundary (see convolab/kernels/__init__.py).", -1,
    ckernels_methods};

PyMODINIT_FUNC PyInit__ckernels(void) { return PyModule_Create(&ckernels_module); }
