/*
 * Optional compiled kernels for convolab's hot steps: im2col/col2im, pooling, ReLU, the optimizer
 * updates, small convolutions fused with their im2col, depthwise convolution, batch normalization.
 *
 * The NumPy code in convolab/ops is the reference and the fallback; these functions do the
 * same arithmetic in one pass. Each kernel is single-threaded; an entry point given
 * `threads` > 1 runs it on contiguous parts of the batch on the kernels' own threads (pool.h),
 * which nn/threads.py asks for inside fit/evaluate/predict. Python reaches the kernels only
 * through the checked entry points in _ckernels.c (buffer protocol, no NumPy C API), which
 * release the GIL once the checks pass.
 *
 * Layout everywhere: NHWC float32, C-contiguous. Padding (pt, pl) is TensorFlow's 'same'
 * split or zero for 'valid'. Windows are read in (kh, kw, C) order, as im2col.py does.
 *
 * One extension (convolab.kernels._ckernels), one file per family:
 *   window.c       im2col, col2im, max pooling forward and backward
 *   elementwise.c  ReLU forward and backward, the Adam and RMSprop updates
 *   batchnorm.c    batch normalization over (M, C) rows
 *   conv.c         the fused convolutions: instruction set, zero padding (conv.h: their plan)
 *   conv_avx2.c    their AVX2 + FMA loops
 *   conv_avx512.c  their AVX-512 loops
 *   depthwise.c    depthwise convolution without a window matrix
 *   checks.c       the checked boundary: each entry point described once, checked by one function
 *   _ckernels.c    the module: the entry points, their threads (pool.h) and call counts
 * This header is what the kernel files give the module: the kernels' prototypes. A hot loop
 * never calls into another file; what several files inline (conv.h's helpers) is in a header.
 */
#ifndef CONVOLAB_KERNELS_H
#define CONVOLAB_KERNELS_H

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

/* The fused convolutions (conv*.c) are x86 code: elsewhere convolab takes im2col + BLAS.
   -DHAVE_FUSED=0 builds that fallback on x86 too, to check that it still compiles and runs. */
#ifndef HAVE_FUSED
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_FUSED 1
#else
#define HAVE_FUSED 0
#endif
#endif

/* What one file gives another but not the world: hidden, so a call is as direct as it was to
   a static function when all the kernels were one file (no PLT). The kernels without it stay
   exported, as before: tests/kernels/test_sanitizer_detects.py calls them through ctypes. */
#define INTERNAL __attribute__((visibility("hidden")))

/* ---- window.c ---- */
void im2col_f32(const float *restrict x, float *restrict cols, int N, int H, int W, int C, int kh, int kw,
                int sh, int sw, int pt, int pl, int Ho, int Wo, int ld);
void col2im_f32(const float *restrict cols, float *restrict dx, int N, int H, int W, int C, int kh, int kw,
                int sh, int sw, int pt, int pl, int Ho, int Wo, int ld);
int maxpool_fwd_f32(const float *restrict x, float *restrict y, int *restrict arg, int N, int H, int W, int C,
                    int ph, int pw, int sh, int sw, int pt, int pl, int Ho, int Wo);
void maxpool_bwd_f32(const float *restrict dy, const int *restrict arg, float *restrict dx, int N, int H, int W,
                     int C, int ph, int pw, int sh, int sw, int pt, int pl, int Ho, int Wo);

/* ---- elementwise.c ---- */
void relu_fwd_f32(const float *restrict x, float *restrict y, long n, float cap);
void relu_bwd_f32(const float *restrict dy, const float *restrict y, float *restrict dz, long n, float cap);
void adam_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, long n,
              float alpha, float b1, float b2, float eps);
void rmsprop_f32(float *restrict p, const float *restrict g, float *restrict v, long n, float lr, float rho,
                 float eps);

/* ---- batchnorm.c ---- */
void bn_sums_f32(const float *restrict x, const float *restrict shift, double *restrict s1, double *restrict s2,
                 long M, int C);
void bn_affine_f32(const float *restrict x, const float *restrict center, const float *restrict scale,
                   const float *restrict shift, float *restrict y, long M, int C);
void bn_grad_sums_f32(const float *restrict dy, const float *restrict x, const float *restrict mean,
                      const float *restrict inv_std, double *restrict sdy, double *restrict sdyx, long M, int C);
void bn_dx_f32(const float *restrict dy, const float *restrict x, const float *restrict mean,
               const float *restrict a, const float *restrict b, const float *restrict q, float *restrict dx,
               long M, int C);

/* ---- conv.c (the fused convolutions; without HAVE_FUSED only the first four exist) ---- */
int conv_fused_supported(void);  /* AVX2 and FMA on this CPU */
INTERNAL int conv_current_isa(void);  /* the loops conv_fwd_f32 and conv_dw_f32 take: 2 AVX-512, 1 AVX2, 0 none */
INTERNAL int conv_best_isa(void);     /* the best this CPU has */
INTERNAL void conv_set_isa(int isa);  /* with the GIL held; isa <= conv_best_isa() */
void conv_fwd_f32(const float *restrict x, const float *restrict wp, const float *restrict bp, float *restrict y,
                  int N, int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo, int relu);
void conv_dw_f32(const float *restrict x, const float *restrict dy, float *restrict dwp, float *restrict dbp,
                 int N, int H, int W, int C, int kh, int kw, int sh, int sw, int F, int Ho, int Wo);
INTERNAL int conv_fwd_padded_f32(const float *restrict x, const float *restrict wp, const float *restrict bp,
                                 float *restrict y, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                                 int F, int Ho, int Wo, int pt, int pl, int relu);
INTERNAL int conv_dw_padded_f32(const float *restrict x, const float *restrict dy, float *restrict dwp,
                                float *restrict dbp, int N, int H, int W, int C, int kh, int kw, int sh, int sw,
                                int F, int Ho, int Wo, int pt, int pl);

/* ---- depthwise.c ---- */
int depthwise_fwd_f32(const float *restrict x, const float *restrict w, const float *restrict b, float *restrict y,
                      int N, int H, int W, int C, int kh, int kw, int sh, int sw, int pt, int pl, int rh, int rw,
                      int Ho, int Wo, int dm);
int depthwise_dx_f32(const float *restrict dy, const float *restrict w, float *restrict dx, int N, int H, int W,
                     int C, int kh, int kw, int sh, int sw, int pt, int pl, int rh, int rw, int Ho, int Wo, int dm);
int depthwise_dw_f32(const float *restrict x, const float *restrict dy, float *restrict dw, float *restrict db,
                     int N, int H, int W, int C, int kh, int kw, int sh, int sw, int pt, int pl, int rh, int rw,
                     int Ho, int Wo, int dm);

#endif
