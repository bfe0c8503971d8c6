/*
 * The module convolab.kernels._ckernels: the entry points Python calls, each described once
 * for the checked boundary (checks.h: what is checked and how), then split over the kernels'
 * own threads (pool.h) and run with the GIL released. The kernels are in the family files
 * that kernels.h lists.
 *
 * Every entry point and every variant a kernel takes is counted (counts()), so the tests
 * can prove that a differential test against the NumPy reference reached each one.
 */
#include "checks.h"

#include <math.h>
#include <string.h>

#include "conv.h"
#include "kernels.h"
#include "pool.h"

_Static_assert(MAX_THREADS == POOL_MAX_THREADS, "checks.h and pool.h disagree on the most threads");

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

/* ---- One call split over the kernels' threads (pool.h) ----
   Every entry point below that works image by image (or row by row) takes an optional last
   argument `threads` (default 1). With more, the batch is cut into that many contiguous parts
   (at most one an image) and the same single-threaded kernel runs on each part, on its own
   thread: outputs are disjoint rows of the same arrays. Sums over the batch (kernel gradients,
   batch-normalization statistics) are computed part by part and added in part order, so a
   given `threads` gives the same bits on every run. The arrays were checked whole; each part
   reads and writes only its rows of them. */

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

/* ---- The descriptions: one an entry point, in argument order (checks.h) ---- */

#define THREADS {"threads", OPT_THREADS, 0, 1}
#define WINDOW_INTS "N H W C kh kw sh sw pt pl Ho Wo"  /* g[0..11] for check_windows */
#define POOL_INTS "N H W C ph pw sh sw pt pl Ho Wo"
#define CONV_INTS "N H W C kh kw sh sw F Ho Wo pt pl"
#define DEPTHWISE_INTS "N H W C kh kw sh sw pt pl rh rw Ho Wo dm"

static int windows(const char *k, long long *g) { return check_windows(k, g); }

/* im2col's rows hold the kh*kw*C window values, or one more for the bias trick's ones */
static int im2col_geometry(const char *k, long long *g)
{
    if (check_windows(k, g) < 0) return -1;
    const long long taps = g[4] * g[5] * g[3], ld = g[12];
    if (ld != taps && ld != taps + 1)
        return fail(k, "row length ld=%lld must be kh*kw*C=%lld (or one more for the bias column)", ld, taps);
    return 0;
}

/* col2im reads the window values of rows that may be longer (the ones column is skipped) */
static int col2im_geometry(const char *k, long long *g)
{
    if (check_windows(k, g) < 0) return -1;
    const long long taps = g[4] * g[5] * g[3], ld = g[12];
    if (ld < taps) return fail(k, "row length ld=%lld is shorter than kh*kw*C=%lld", ld, taps);
    return 0;
}

static int pool_bwd_geometry(const char *k, long long *g)
{
    if (check_windows(k, g) < 0) return -1;
    if (g[4] * g[5] > INT32_MAX) return fail(k, "a %lldx%lld window overflows a C int", g[4], g[5]);
    return 0;
}

/* Batch normalization's (M, C) rows: at least one channel; the means need one row */
static int rows_geometry(const char *k, long long *g)
{
    if (g[1] < 1) return fail(k, "C must be >= 1; got %lld", g[1]);
    return 0;
}

static int mean_geometry(const char *k, long long *g)
{
    if (rows_geometry(k, g) < 0) return -1;
    if (g[0] < 1) return fail(k, "M must be >= 1 (a mean over no values)");
    return 0;
}

#define MAX_FUSED_FILTERS_AVX2 32
#define MAX_FUSED_FILTERS_AVX512 4096

static int max_fused_filters(void)
{
    return conv_current_isa() == 2 ? MAX_FUSED_FILTERS_AVX512 : MAX_FUSED_FILTERS_AVX2;
}

/* The fused convolutions' windows as check_windows orders them (N H W C kh kw sh sw pt pl Ho Wo) */
static void conv_windows(const long long *g, long long *w)
{
    const long long v[12] = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[11], g[12], g[9], g[10]};
    memcpy(w, v, sizeof v);
}

/* g: N H W C kh kw sh sw F Ho Wo pt pl; 1..max_fused_filters() filters. The windows are those
   of the image with pt rows and pl columns of zeros before it (and as many after as they
   reach), checked as im2col's are. Sets g[13] = Fp, the kernel matrix's columns. */
static int conv_geometry(const char *k, long long *g)
{
    if (!HAVE_FUSED || !conv_fused_supported()) return fail(k, "this CPU has no AVX2+FMA");
    long long w[12];
    conv_windows(g, w);
    if (check_windows(k, w) < 0) return -1;
    if (g[0] < 1 || g[3] < 1 || g[8] < 1 || g[9] < 1 || g[10] < 1)
        return fail(k, "N=%lld, C=%lld, F=%lld, Ho=%lld, Wo=%lld must all be >= 1", g[0], g[3], g[8], g[9], g[10]);
    if (g[8] > max_fused_filters())
        return fail(k, "F=%lld filters; the fused kernels take at most %d", g[8], max_fused_filters());
    g[13] = FUSED_WIDTH * ((g[8] + FUSED_WIDTH - 1) / FUSED_WIDTH);
    return 0;
}

#if HAVE_FUSED
/* padding, or windows past the image's end: the convolution pads each image on its own */
static int conv_padded(const long long *g)
{
    long long w[12];
    conv_windows(g, w);
    return !fits(w);
}
#endif

/* Depthwise geometry. g: N H W C kh kw sh sw pt pl rh rw Ho Wo dm (rh, rw: dilation; dm: depth
   multiplier). The windows are checked as check_windows checks them, with the dilated window's
   span in place of (kh, kw). Sets g[15] = Co = C * dm, the output channels. */
static int depthwise_geometry(const char *k, long long *g)
{
    if (g[4] < 1 || g[5] < 1 || g[10] < 1 || g[11] < 1 || g[14] < 1)
        return fail(k, "window (%lld, %lld), dilation (%lld, %lld) and depth multiplier %lld must be >= 1",
                    g[4], g[5], g[10], g[11], g[14]);
    const long long span_h = (g[4] - 1) * g[10] + 1, span_w = (g[5] - 1) * g[11] + 1;  /* < 2^62: no overflow */
    if (span_h > INT32_MAX || span_w > INT32_MAX)
        return fail(k, "a %lldx%lld window dilated by (%lld, %lld) overflows a C int", g[4], g[5], g[10], g[11]);
    const long long win[12] = {g[0], g[1], g[2], g[3], span_h, span_w, g[6], g[7], g[8], g[9], g[12], g[13]};
    if (check_windows(k, win) < 0) return -1;
    g[15] = g[3] * g[14];
    if (g[15] > INT32_MAX) return fail(k, "C * dm = %lld channels overflow a C int", g[15]);
    return 0;
}

static Entry IM2COL = {"im2col_f32",
    {{"x", F32, IN, NEEDED, "N*H*W*C"}, {"cols", F32, OUT, NEEDED, "N*Ho*Wo*ld"}},
    WINDOW_INTS " ld", {THREADS}, im2col_geometry};
static Entry COL2IM = {"col2im_f32",
    {{"cols", F32, IN, NEEDED, "N*Ho*Wo*ld"}, {"dx", F32, OUT, NEEDED, "N*H*W*C"}},
    WINDOW_INTS " ld", {THREADS}, col2im_geometry};
static Entry MAXPOOL_FWD = {"maxpool_fwd_f32",
    {{"x", F32, IN, NEEDED, "N*H*W*C"}, {"y", F32, OUT, NEEDED, "N*Ho*Wo*C"}, {"arg", I32, OUT, NEEDED, "N*Ho*Wo*C"}},
    POOL_INTS, {THREADS}, windows};
static Entry MAXPOOL_BWD = {"maxpool_bwd_f32",
    {{"dy", F32, IN, NEEDED, "N*Ho*Wo*C"}, {"arg", I32, IN, NEEDED, "N*Ho*Wo*C"}, {"dx", F32, OUT, NEEDED, "N*H*W*C"}},
    POOL_INTS, {THREADS}, pool_bwd_geometry};
static Entry RELU_FWD = {"relu_fwd_f32",
    {{"x", F32, IN, NEEDED, "any"}, {"y", F32, OUT, NEEDED, "=x"}},
    "", {{"cap", OPT_FLOAT, 1, INFINITY}, THREADS}};
static Entry RELU_BWD = {"relu_bwd_f32",
    {{"dy", F32, IN, NEEDED, "=y"}, {"y", F32, IN, NEEDED, "any"}, {"dz", F32, OUT, NEEDED, "=y"}},
    "", {{"cap", OPT_FLOAT, 0, INFINITY}, THREADS}};
static Entry ADAM = {"adam_f32",
    {{"param", F32, OUT, NEEDED, "any"}, {"grad", F32, IN, NEEDED, "=param"}, {"m", F32, OUT, NEEDED, "=param"},
     {"v", F32, OUT, NEEDED, "=param"}},
    "", {{"alpha", OPT_FLOAT, 1}, {"beta_1", OPT_FLOAT, 1}, {"beta_2", OPT_FLOAT, 1}, {"epsilon", OPT_FLOAT, 1}}};
static Entry RMSPROP = {"rmsprop_f32",
    {{"param", F32, OUT, NEEDED, "any"}, {"grad", F32, IN, NEEDED, "=param"}, {"v", F32, OUT, NEEDED, "=param"}},
    "", {{"learning_rate", OPT_FLOAT, 1}, {"rho", OPT_FLOAT, 1}, {"epsilon", OPT_FLOAT, 1}}};
static Entry CONV_FWD = {"conv_fwd_f32",
    {{"x", F32, IN, NEEDED, "N*H*W*C"}, {"wp", F32, IN, NEEDED, "kh*kw*C*Fp"}, {"bp", F32, IN, OR_NONE, "Fp"},
     {"y", F32, OUT, NEEDED, "N*Ho*Wo*F"}},
    CONV_INTS, {{"relu", OPT_BOOL, 0, 0}, THREADS}, conv_geometry, "Fp"};
static Entry CONV_DW = {"conv_dw_f32",
    {{"x", F32, IN, NEEDED, "N*H*W*C"}, {"dy", F32, IN, NEEDED, "N*Ho*Wo*F"}, {"dwp", F32, OUT, NEEDED, "kh*kw*C*Fp"},
     {"dbp", F32, OUT, OR_NONE, "Fp"}},
    CONV_INTS, {THREADS}, conv_geometry, "Fp"};
static Entry BN_MOMENTS = {"bn_moments_f32",
    {{"x", F32, IN, NEEDED, "M*C"}, {"mean", F32, OUT, NEEDED, "C"}, {"var", F32, OUT, NEEDED, "C"}},
    "M C", {THREADS}, mean_geometry};
static Entry BN_AFFINE = {"bn_affine_f32",
    {{"x", F32, IN, NEEDED, "M*C"}, {"center", F32, IN, NEEDED, "C"}, {"scale", F32, IN, NEEDED, "C"},
     {"shift", F32, IN, NEEDED, "C"}, {"y", F32, OUT, NEEDED, "M*C"}},
    "M C", {THREADS}, rows_geometry};
static Entry BN_BWD = {"bn_bwd_f32",
    {{"dy", F32, IN, NEEDED, "M*C"}, {"x", F32, IN, NEEDED, "M*C"}, {"mean", F32, IN, NEEDED, "C"},
     {"inv_std", F32, IN, NEEDED, "C"}, {"k", F32, IN, NEEDED, "C"}, {"dx", F32, OUT, NEEDED, "M*C"},
     {"dgamma", F32, OUT, NEEDED, "C"}, {"dbeta", F32, OUT, NEEDED, "C"}},
    "M C", {THREADS}, mean_geometry};
static Entry DEPTHWISE_FWD = {"depthwise_fwd_f32",
    {{"x", F32, IN, NEEDED, "N*H*W*C"}, {"w", F32, IN, NEEDED, "kh*kw*Co"}, {"b", F32, IN, OR_NONE, "Co"},
     {"y", F32, OUT, NEEDED, "N*Ho*Wo*Co"}},
    DEPTHWISE_INTS, {THREADS}, depthwise_geometry, "Co"};
static Entry DEPTHWISE_DX = {"depthwise_dx_f32",
    {{"dy", F32, IN, NEEDED, "N*Ho*Wo*Co"}, {"w", F32, IN, NEEDED, "kh*kw*Co"}, {"dx", F32, OUT, NEEDED, "N*H*W*C"}},
    DEPTHWISE_INTS, {THREADS}, depthwise_geometry, "Co"};
static Entry DEPTHWISE_DW = {"depthwise_dw_f32",
    {{"x", F32, IN, NEEDED, "N*H*W*C"}, {"dy", F32, IN, NEEDED, "N*Ho*Wo*Co"}, {"dw", F32, OUT, NEEDED, "kh*kw*Co"},
     {"db", F32, OUT, OR_NONE, "Co"}},
    DEPTHWISE_INTS, {THREADS}, depthwise_geometry, "Co"};

/* ---- The entry points: checked (entry_take), counted, run, released ---- */

/* im2col and col2im share their arguments: an image of N*H*W*C floats and a window matrix of
   N*Ho*Wo rows of ld floats; im2col reads the image and writes the matrix, col2im (its adjoint)
   the other way round. */
static PyObject *window_matrix_entry(PyObject *args, int adjoint)
{
    const Entry *e = adjoint ? &COL2IM : &IM2COL;
    Call c;
    if (entry_take(e, args, &c) < 0) return NULL;
    const long long *g = c.v;
    counters[adjoint ? N_COL2IM : N_IM2COL]++;
    counters[adjoint ? (fits(g) ? N_COL2IM_VALID : N_COL2IM_PADDED) : (fits(g) ? N_IM2COL_VALID : N_IM2COL_PADDED)]++;
    WindowJob job = {adjoint ? JOB_COL2IM : JOB_IM2COL, c.buf[0], NULL, c.buf[1], NULL, {0}};
    memcpy(job.g, g, sizeof job.g);
    Py_BEGIN_ALLOW_THREADS
    pool_run(window_part, &job, parts_of(c.threads, g[0]));
    Py_END_ALLOW_THREADS
    entry_release(e, &c);
    Py_RETURN_NONE;
}

static PyObject *py_im2col(PyObject *self, PyObject *args) { return window_matrix_entry(args, 0); }

static PyObject *py_col2im(PyObject *self, PyObject *args) { return window_matrix_entry(args, 1); }

static int is_2x2(const long long *g)
{
    return g[4] == 2 && g[5] == 2 && g[6] == 2 && g[7] == 2 && g[8] == 0 && g[9] == 0;
}

static PyObject *py_maxpool_fwd(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&MAXPOOL_FWD, args, &c) < 0) return NULL;
    const long long *g = c.v;
    counters[N_MAXPOOL_FWD]++;
    counters[is_2x2(g) && 2 * g[10] <= g[1] && 2 * g[11] <= g[2] ? N_MAXPOOL_FWD_2X2 : N_MAXPOOL_FWD_GENERAL]++;
    WindowJob job = {JOB_POOL_FWD, c.buf[0], NULL, c.buf[1], c.buf[2], {0}, {0}};
    memcpy(job.g, g, sizeof(long long) * 12);
    const int np = parts_of(c.threads, g[0]);
    Py_BEGIN_ALLOW_THREADS
    pool_run(window_part, &job, np);
    Py_END_ALLOW_THREADS
    entry_release(&MAXPOOL_FWD, &c);
    for (int p = 0; p < np; p++)
        if (job.rc[p] < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *py_maxpool_bwd(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&MAXPOOL_BWD, args, &c) < 0) return NULL;
    const long long *g = c.v;
    counters[N_MAXPOOL_BWD]++;
    counters[is_2x2(g) && 2 * g[10] == g[1] && 2 * g[11] == g[2] ? N_MAXPOOL_BWD_2X2 : N_MAXPOOL_BWD_GENERAL]++;
    WindowJob job = {JOB_POOL_BWD, c.buf[0], c.buf[1], c.buf[2], NULL, {0}};
    memcpy(job.g, g, sizeof(long long) * 12);
    Py_BEGIN_ALLOW_THREADS
    pool_run(window_part, &job, parts_of(c.threads, g[0]));
    Py_END_ALLOW_THREADS
    entry_release(&MAXPOOL_BWD, &c);
    Py_RETURN_NONE;
}

/* relu_fwd_f32(x, y, cap, threads=1): y = min(max(x, 0), cap), NaN kept; cap = inf for none.
   relu_bwd_f32(dy, y, dz, cap=inf, threads=1): dz = dy where 0 < y < cap, else 0.
   One entry for both: the first array sets the size (y backward), the others must match it. */
static PyObject *relu_entry(PyObject *args, int backward)
{
    const Entry *e = backward ? &RELU_BWD : &RELU_FWD;
    Call c;
    if (entry_take(e, args, &c) < 0) return NULL;
    const float cap = (float)c.opt[0];
    if (backward ? !(cap > 0.0f) : !(cap >= 0.0f)) {
        entry_release(e, &c);
        return fail(e->name, "cap must be %s 0 (inf for none); got %g", backward ? ">" : ">=", (double)cap), NULL;
    }
    /* backward: dy, y, dz (written); forward: x, y (written) */
    const long n = (long)c.count[backward ? 1 : 0];
    counters[backward ? N_RELU_BWD : N_RELU_FWD]++;
    ReluJob job = {c.buf[0], backward ? c.buf[1] : NULL, backward ? c.buf[2] : c.buf[1], n, cap, backward};
    Py_BEGIN_ALLOW_THREADS
    pool_run(relu_part, &job, parts_of(c.threads, (n + 15) / 16));
    Py_END_ALLOW_THREADS
    entry_release(e, &c);
    Py_RETURN_NONE;
}

static PyObject *py_relu_fwd(PyObject *self, PyObject *args) { return relu_entry(args, 0); }

static PyObject *py_relu_bwd(PyObject *self, PyObject *args) { return relu_entry(args, 1); }

/* bn_moments_f32(x, mean, var, M, C): per-channel mean and biased variance of an (M, C) array */
static PyObject *py_bn_moments(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&BN_MOMENTS, args, &c) < 0) return NULL;
    const long long M = c.v[0], C = c.v[1];
    const int np = parts_of(c.threads, M);
    double *acc = calloc(2 * (size_t)np * C, sizeof(double));  /* np rows of sums, then np of squares */
    if (!acc) {
        entry_release(&BN_MOMENTS, &c);
        return PyErr_NoMemory();
    }
    counters[N_BN_MOMENTS]++;
    float *mu = c.buf[1], *va = c.buf[2];
    BnJob job = {JOB_BN_SUM, c.buf[0], NULL, mu, NULL, NULL, NULL, NULL, NULL, NULL, NULL, acc, M, (int)C};
    Py_BEGIN_ALLOW_THREADS
    pool_run(bn_part, &job, np);
    add_parts(acc, C, np);
    for (long long ch = 0; ch < C; ch++) mu[ch] = (float)(acc[ch] / (double)M);
    job.kind = JOB_BN_SQ;
    job.acc = acc + (size_t)np * C;
    pool_run(bn_part, &job, np);
    add_parts(job.acc, C, np);
    for (long long ch = 0; ch < C; ch++) va[ch] = (float)(job.acc[ch] / (double)M);
    Py_END_ALLOW_THREADS
    free(acc);
    entry_release(&BN_MOMENTS, &c);
    Py_RETURN_NONE;
}

/* bn_affine_f32(x, center, scale, shift, y, M, C): y = (x - center) * scale + shift per channel */
static PyObject *py_bn_affine(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&BN_AFFINE, args, &c) < 0) return NULL;
    const long long M = c.v[0], C = c.v[1];
    counters[N_BN_AFFINE]++;
    BnJob job = {JOB_BN_AFFINE, c.buf[0], NULL, c.buf[1], NULL, c.buf[2], c.buf[3], NULL, NULL, NULL, c.buf[4],
                 NULL, M, (int)C};
    Py_BEGIN_ALLOW_THREADS
    pool_run(bn_part, &job, parts_of(c.threads, M));
    Py_END_ALLOW_THREADS
    entry_release(&BN_AFFINE, &c);
    Py_RETURN_NONE;
}

/* bn_bwd_f32(dy, x, mean, inv_std, k, dx, dgamma, dbeta, M, C): the training-mode BN backward.
   dbeta = sum dy, dgamma = sum dy * xhat, dx = k * (dy - dbeta / M - xhat * dgamma / M),
   with xhat = (x - mean) * inv_std and k = gamma * inv_std (inv_std without a gamma). */
static PyObject *py_bn_bwd(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&BN_BWD, args, &c) < 0) return NULL;
    const long long M = c.v[0], C = c.v[1];
    const int np = parts_of(c.threads, M);
    double *acc = calloc(2 * (size_t)np * C, sizeof(double));  /* per part: C sums of dy, C of dy * xhat */
    float *coef = malloc(3 * (size_t)C * sizeof(float));
    if (!acc || !coef) {
        free(acc);
        free(coef);
        entry_release(&BN_BWD, &c);
        return PyErr_NoMemory();
    }
    counters[N_BN_BWD]++;
    const float *mu = c.buf[2], *is = c.buf[3], *kv = c.buf[4];
    float *dgv = c.buf[6], *dbv = c.buf[7];
    BnJob job = {JOB_BN_GRAD_SUMS, c.buf[1], c.buf[0], mu, is, NULL, NULL, coef, coef + C, coef + 2 * C, c.buf[5], acc,
                 M, (int)C};
    Py_BEGIN_ALLOW_THREADS
    pool_run(bn_part, &job, np);
    add_parts(acc, 2 * C, np);
    for (long long ch = 0; ch < C; ch++) {
        dbv[ch] = (float)acc[ch];
        dgv[ch] = (float)acc[C + ch];
        coef[ch] = kv[ch];                                                           /* a */
        coef[C + ch] = (float)(-(double)kv[ch] * acc[ch] / (double)M);               /* b */
        coef[2 * C + ch] = (float)(-(double)kv[ch] * acc[C + ch] / (double)M * is[ch]); /* q */
    }
    job.kind = JOB_BN_DX;
    pool_run(bn_part, &job, np);
    Py_END_ALLOW_THREADS
    free(acc);
    free(coef);
    entry_release(&BN_BWD, &c);
    Py_RETURN_NONE;
}

static PyObject *py_adam(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&ADAM, args, &c) < 0) return NULL;
    const float alpha = (float)c.opt[0], b1 = (float)c.opt[1], b2 = (float)c.opt[2], eps = (float)c.opt[3];
    counters[N_ADAM]++;
    Py_BEGIN_ALLOW_THREADS
    adam_f32(c.buf[0], c.buf[1], c.buf[2], c.buf[3], (long)c.count[0], alpha, b1, b2, eps);
    Py_END_ALLOW_THREADS
    entry_release(&ADAM, &c);
    Py_RETURN_NONE;
}

static PyObject *py_rmsprop(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&RMSPROP, args, &c) < 0) return NULL;
    const float lr = (float)c.opt[0], rho = (float)c.opt[1], eps = (float)c.opt[2];
    counters[N_RMSPROP]++;
    Py_BEGIN_ALLOW_THREADS
    rmsprop_f32(c.buf[0], c.buf[1], c.buf[2], (long)c.count[0], lr, rho, eps);
    Py_END_ALLOW_THREADS
    entry_release(&RMSPROP, &c);
    Py_RETURN_NONE;
}

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

static int conv_job_ok(const ConvJob *j, int np)
{
    for (int p = 0; p < np; p++)
        if (!j->ok[p]) return 0;
    return 1;
}
#endif

static PyObject *py_conv_fwd(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&CONV_FWD, args, &c) < 0) return NULL;  /* refused where !HAVE_FUSED */
    int ok = 1;
    counters[N_CONV_FWD]++;
#if HAVE_FUSED
    const long long *g = c.v;
    if (conv_current_isa() == 2)
        counters[PIXELS512(g[8], g[3], g[7], g[10]) ? N_CONV_FWD_PIXELS512 : N_CONV_FWD_FILTERS512]++;
    else
        counters[AVX2_PIXELS(g[8], g[3], g[7], g[10]) ? N_CONV_FWD_PIXELS : N_CONV_FWD_FILTERS]++;
    ConvJob job = {c.buf[0], c.buf[1], c.buf[2], c.buf[3], NULL, NULL, NULL, {0}, 0, (long)g[13], conv_padded(g),
                   c.opt[0] != 0, {0}};
    memcpy(job.g, g, sizeof job.g);
    const int np = parts_of(c.threads, g[0]);
    Py_BEGIN_ALLOW_THREADS
    pool_run(conv_fwd_part, &job, np);
    Py_END_ALLOW_THREADS
    ok = conv_job_ok(&job, np);
#endif
    entry_release(&CONV_FWD, &c);
    if (!ok) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *py_conv_dw(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&CONV_DW, args, &c) < 0) return NULL;  /* refused where !HAVE_FUSED */
    int ok = 1;
    counters[N_CONV_DW]++;
#if HAVE_FUSED
    const long long *g = c.v;
    const long ndw = (long)c.count[2], fp = (long)g[13];
    counters[conv_current_isa() != 2 ? N_CONV_DW_AVX2 : TAPS_IN_LANES(g[8], g[3], g[5]) ? N_CONV_DW_TAPS512 : N_CONV_DW_AVX512]++;
    const int np = parts_of(c.threads, g[0]);
    float *partial = np > 1 ? calloc((size_t)(np - 1) * (size_t)(ndw + fp), sizeof(float)) : NULL;
    if (np > 1 && !partial) {
        entry_release(&CONV_DW, &c);
        return PyErr_NoMemory();
    }
    ConvJob job = {c.buf[0], c.buf[1], NULL, NULL, c.buf[2], c.buf[3], partial, {0}, ndw, fp, conv_padded(g), 0, {0}};
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
    entry_release(&CONV_DW, &c);
    if (!ok) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

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
    Call c;
    if (entry_take(&DEPTHWISE_FWD, args, &c) < 0) return NULL;
    const long long *g = c.v;
    counters[N_DEPTHWISE_FWD]++;
    counters[g[14] == 1 ? N_DEPTHWISE_FWD_DM1 : N_DEPTHWISE_FWD_DM]++;
    DepthwiseJob job = {JOB_DW_FWD, c.buf[0], c.buf[1], c.buf[2], c.buf[3], NULL, NULL, {0}, 0, 0, {0}};
    memcpy(job.g, g, sizeof job.g);
    const int np = parts_of(c.threads, g[0]);
    Py_BEGIN_ALLOW_THREADS
    pool_run(depthwise_part, &job, np);
    Py_END_ALLOW_THREADS
    entry_release(&DEPTHWISE_FWD, &c);
    if (depthwise_job_rc(&job, np) < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *py_depthwise_dx(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&DEPTHWISE_DX, args, &c) < 0) return NULL;
    const long long *g = c.v;
    counters[N_DEPTHWISE_DX]++;
    counters[g[14] == 1 ? N_DEPTHWISE_DX_DM1 : N_DEPTHWISE_DX_DM]++;
    DepthwiseJob job = {JOB_DW_DX, c.buf[0], c.buf[1], NULL, c.buf[2], NULL, NULL, {0}, 0, 0, {0}};
    memcpy(job.g, g, sizeof job.g);
    const int np = parts_of(c.threads, g[0]);
    Py_BEGIN_ALLOW_THREADS
    pool_run(depthwise_part, &job, np);
    Py_END_ALLOW_THREADS
    entry_release(&DEPTHWISE_DX, &c);
    if (depthwise_job_rc(&job, np) < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *py_depthwise_dw(PyObject *self, PyObject *args)
{
    Call c;
    if (entry_take(&DEPTHWISE_DW, args, &c) < 0) return NULL;
    const long long *g = c.v;
    const long nw = (long)c.count[2], nb = (long)g[15];
    counters[N_DEPTHWISE_DW]++;
    counters[g[14] == 1 ? N_DEPTHWISE_DW_DM1 : N_DEPTHWISE_DW_DM]++;
    const int np = parts_of(c.threads, g[0]);
    float *partial = np > 1 ? malloc(sizeof(float) * (size_t)(np - 1) * (size_t)(nw + nb)) : NULL;
    if (np > 1 && !partial) {
        entry_release(&DEPTHWISE_DW, &c);
        return PyErr_NoMemory();
    }
    DepthwiseJob job = {JOB_DW_DW, c.buf[0], c.buf[1], NULL, c.buf[2], c.buf[3], partial, {0}, nw, nb, {0}};
    memcpy(job.g, g, sizeof job.g);
    Py_BEGIN_ALLOW_THREADS
    pool_run(depthwise_part, &job, np);
    for (int p = 1; p < np; p++) {  /* in part order: the same bits for the same `threads` */
        add_f32(job.out, partial + (p - 1) * (nw + nb), nw);
        if (job.db) add_f32(job.db, partial + (p - 1) * (nw + nb) + nw, nb);
    }
    Py_END_ALLOW_THREADS
    free(partial);
    entry_release(&DEPTHWISE_DW, &c);
    if (depthwise_job_rc(&job, np) < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
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
    return Py_BuildValue("(si)", isa_names[conv_current_isa()], conv_current_isa() ? max_fused_filters() : 0);
}

/* set_fused_isa(name): 'avx512', 'avx2' or 'best'; refuses one the CPU lacks */
static PyObject *py_set_fused_isa(PyObject *self, PyObject *arg)
{
    const char *name = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (!name) { PyErr_SetString(PyExc_TypeError, "set_fused_isa expects a str"); return NULL; }
    const int best = conv_best_isa();
    int want = -1;
    if (!strcmp(name, "best")) want = best;
    else if (!strcmp(name, "avx2")) want = 1;
    else if (!strcmp(name, "avx512")) want = 2;
    if (want < 0 || want > best || want == 0) {
        PyErr_Format(PyExc_ValueError, "set_fused_isa: %R is not available here (expected 'best'%s%s)", arg,
                     best >= 1 ? ", 'avx2'" : "", best >= 2 ? ", 'avx512'" : "");
        return NULL;
    }
    conv_set_isa(want);
    return py_fused_isa(self, NULL);
}

static PyObject *py_set_error_class(PyObject *self, PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)PyExc_ValueError)) {
        PyErr_SetString(PyExc_TypeError, "set_error_class expects a ValueError subclass");
        return NULL;
    }
    set_kernel_error_class(Py_NewRef(cls));
    Py_RETURN_NONE;
}

/* The entry points, their descriptions and their functions: the method table is built from
   this at import, each docstring the signature its description gives. */
static const struct { Entry *entry; PyCFunction call; } ENTRIES[] = {
    {&IM2COL, py_im2col}, {&COL2IM, py_col2im}, {&MAXPOOL_FWD, py_maxpool_fwd}, {&MAXPOOL_BWD, py_maxpool_bwd},
    {&RELU_FWD, py_relu_fwd}, {&RELU_BWD, py_relu_bwd}, {&ADAM, py_adam}, {&RMSPROP, py_rmsprop},
    {&CONV_FWD, py_conv_fwd}, {&CONV_DW, py_conv_dw}, {&BN_MOMENTS, py_bn_moments}, {&BN_AFFINE, py_bn_affine},
    {&BN_BWD, py_bn_bwd}, {&DEPTHWISE_FWD, py_depthwise_fwd}, {&DEPTHWISE_DX, py_depthwise_dx},
    {&DEPTHWISE_DW, py_depthwise_dw},
};
#define N_ENTRIES (sizeof ENTRIES / sizeof ENTRIES[0])

static const PyMethodDef other_methods[] = {
    {"counts", py_counts, METH_NOARGS, "How often each entry point and variant was called in this process."},
    {"pool_counts", py_pool_counts, METH_NOARGS, "Calls split over the kernels' threads (jobs), their parts, the workers started."},
    {"fused_supported", py_fused_supported, METH_NOARGS, "True when the fused convolution kernels can run here."},
    {"fused_isa", py_fused_isa, METH_NOARGS, "(name, max_filters) of the fused convolutions' instruction set."},
    {"set_fused_isa", py_set_fused_isa, METH_O, "Use 'avx512', 'avx2' or the 'best' the CPU has for the fused convolutions."},
    {"set_error_class", py_set_error_class, METH_O, "The ValueError subclass the checks raise."},
};
#define N_OTHERS (sizeof other_methods / sizeof other_methods[0])

static PyMethodDef ckernels_methods[N_ENTRIES + N_OTHERS + 1];

static struct PyModuleDef ckernels_module = {PyModuleDef_HEAD_INIT, "_ckernels",
    "convolab's optional compiled kernels behind a checked boundary (see convolab/kernels/__init__.py).", -1,
    ckernels_methods};

PyMODINIT_FUNC PyInit__ckernels(void)
{
    static int prepared = 0;
    for (size_t i = 0; i < N_ENTRIES && !prepared; i++) {
        Entry *e = ENTRIES[i].entry;
        if (entry_prepare(e) < 0) return NULL;
        ckernels_methods[i] = (PyMethodDef){e->name, ENTRIES[i].call, METH_VARARGS, e->signature};
    }
    for (size_t i = 0; i < N_OTHERS && !prepared; i++) ckernels_methods[N_ENTRIES + i] = other_methods[i];
    prepared = 1;
    return PyModule_Create(&ckernels_module);
}
