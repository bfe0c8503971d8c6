/*
 * Optional compiled kernels for convolab's memory-bound steps (im2col, col2im, max pooling).
 *
 * The NumPy code in convolab/ops is the reference and the fallback; these functions do the
 * same arithmetic in one pass. They are single-threaded on purpose: convolab gets its
 * parallelism by running shards of each batch on threads (models/parallel.py), and a
 * second thread pool inside the kernels would only fight it for the cores. They are called through
 * ctypes (convolab/kernels/__init__.py), so the module needs no NumPy C API; the tiny
 * Python module definition at the bottom only lets setuptools build it as an extension.
 *
 * Layout everywhere: NHWC float32, C-contiguous. Padding (pt, pl) is TensorFlow's 'same'
 * split or zero for 'valid'. Windows are read in (kh, kw, C) order, as im2col.py does.
 */
#include <Python.h>
#include <string.h>
#include <math.h>

/* Build each hot loop for AVX2 too (with FMA) and pick at load time, where the compiler can. */
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define HOT __attribute__((target_clones("arch=haswell", "default")))
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
                    k = vb > m ? 1.0f : k; m = vb > m ? vb : m;
                    k = vc > m ? 2.0f : k; m = vc > m ? vc : m;
                    k = vd > m ? 3.0f : k; m = vd > m ? vd : m;
                    yo[c] = m;
                    ao[c] = (int)k;
                }
            }
}

HOT void maxpool_fwd_f32(const float *restrict x, float *restrict y, int *restrict arg, int N, int H, int W, int C, int ph, int pw,
                     int sh, int sw, int pt, int pl, int Ho, int Wo)
{
    if (ph == 2 && pw == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0 && 2 * Ho <= H && 2 * Wo <= W) {
        maxpool2x2_fwd(x, y, arg, N, H, W, C, Ho, Wo);
        return;
    }
    for (int n = 0; n < N; n++) {
        const float *xn = x + (long)n * H * W * C;
        for (int ho = 0; ho < Ho; ho++) {
            for (int wo = 0; wo < Wo; wo++) {
                const long o = (((long)n * Ho + ho) * Wo + wo) * C;
                float *yo = y + o;
                int *ao = arg + o;
                for (int c = 0; c < C; c++) { yo[c] = -INFINITY; ao[c] = 0; }
                const int h0 = ho * sh - pt, w0 = wo * sw - pl;
                for (int i = 0; i < ph; i++) {
                    const int h = h0 + i;
                    if (h < 0 || h >= H) continue;
                    for (int j = 0; j < pw; j++) {
                        const int w = w0 + j;
                        if (w < 0 || w >= W) continue;
                        const float *s = xn + ((long)h * W + w) * C;
                        const int k = i * pw + j;
                        for (int c = 0; c < C; c++) {  /* branch-free, so it vectorises */
                            const int gt = s[c] > yo[c];
                            yo[c] = gt ? s[c] : yo[c];
                            ao[c] = gt ? k : ao[c];
                        }
                    }
                }
            }
        }
    }
}

/* dx = 0; dx[window position arg] += dy */
HOT void maxpool_bwd_f32(const float *restrict dy, const int *restrict arg, float *restrict dx, int N, int H, int W, int C,
                     int ph, int pw, int sh, int sw, int pt, int pl, int Ho, int Wo)
{
    if (ph == 2 && pw == 2 && sh == 2 && sw == 2 && pt == 0 && pl == 0 && 2 * Ho == H && 2 * Wo == W) {
        /* Non-overlapping 2x2 windows tile the image: write each input gradient once, no zeroing pass. */
        for (int n = 0; n < N; n++)
            for (int ho = 0; ho < Ho; ho++)
                for (int wo = 0; wo < Wo; wo++) {
                    const long o = (((long)n * Ho + ho) * Wo + wo) * C;
                    float *a = dx + (((long)n * H + 2 * ho) * W + 2 * wo) * C;
                    float *b = a + C, *c2 = a + (long)W * C, *d = c2 + C;
                    for (int c = 0; c < C; c++) {
                        const int k = arg[o + c];
                        const float g = dy[o + c];
                        a[c] = k == 0 ? g : 0.0f;
                        b[c] = k == 1 ? g : 0.0f;
                        c2[c] = k == 2 ? g : 0.0f;
                        d[c] = k == 3 ? g : 0.0f;
                    }
                }
        return;
    }
    for (int n = 0; n < N; n++) {
        float *dxn = dx + (long)n * H * W * C;
        memset(dxn, 0, sizeof(float) * (long)H * W * C);
        for (int ho = 0; ho < Ho; ho++) {
            for (int wo = 0; wo < Wo; wo++) {
                const long o = (((long)n * Ho + ho) * Wo + wo) * C;
                for (int c = 0; c < C; c++) {
                    const int k = arg[o + c];
                    const int h = ho * sh - pt + k / pw, w = wo * sw - pl + k % pw;
                    dxn[((long)h * W + w) * C + c] += dy[o + c];
                }
            }
        }
    }
}

/* dz = dy where y > 0, else 0 (ReLU's backward from its output) */
HOT void relu_bwd_f32(const float *restrict dy, const float *restrict y, float *restrict dz, long n)
{
    /* Load dy unconditionally: "y > 0 ? dy : 0" would be a masked load or a branch, both slow. */
    for (long t = 0; t < n; t++) {
        const float g = dy[t];
        dz[t] = y[t] > 0.0f ? g : 0.0f;
    }
}

/* Keras's Adam step, in place, one pass: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t) */
HOT void adam_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, long n,
              float alpha, float b1, float b2, float eps)
{
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (long t = 0; t < n; t++) {
        const float gt = g[t];
        const float mt = m[t] + (gt - m[t]) * c1;
        const float vt = v[t] + (gt * gt - v[t]) * c2;
        m[t] = mt;
        v[t] = vt;
        p[t] -= alpha * mt / (sqrtf(vt) + eps);
    }
}

/* Keras's RMSprop step (no momentum, not centred), in place: epsilon inside the root */
HOT void rmsprop_f32(float *restrict p, const float *restrict g, float *restrict v, long n,
                 float lr, float rho, float eps)
{
    const float c = 1.0f - rho;
    for (long t = 0; t < n; t++) {
        const float gt = g[t];
        const float vt = rho * v[t] + c * gt * gt;
        v[t] = vt;
        p[t] -= lr * gt / sqrtf(vt + eps);
    }
}

static struct PyModuleDef ckernels_module = {PyModuleDef_HEAD_INIT, "_ckernels",
    "convolab's optional compiled kernels (called through ctypes).", -1, NULL};

PyMODINIT_FUNC PyInit__ckernels(void) { return PyModule_Create(&ckernels_module); }
