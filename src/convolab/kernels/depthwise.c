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
#include <stdlib.h>

#include "kernels.h"

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
