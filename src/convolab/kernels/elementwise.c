/*
 * The element-wise kernels: ReLU (forward, and backward from its output) and the optimizer
 * updates (Keras's Adam and RMSprop), each one pass over contiguous float32 arrays.
 */
#include <math.h>

#include "kernels.h"

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
