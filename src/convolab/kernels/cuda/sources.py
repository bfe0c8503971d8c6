"""CUDA sources of convolab's GPU kernels, compiled by CuPy (``RawModule``) on first use.

Each kernel is written once for ``scalar_t`` and instantiated for float32 (suffix ``_f32``)
and float64 (``_f64``) by :func:`module_source`. Layout and index math are those of the C
kernels (``_ckernels.c``) and of ``nn/im2col.py``: images NHWC, the window matrix
``(N*Ho*Wo, ld)`` with columns in ``(i, j, c)`` order and ``ld = kh*kw*C`` or one more (a
trailing column of ones for the bias).

Every kernel runs a grid-stride loop over ``total`` work items (one output element each), so
any grid covers any size. The adjoints (``col2im``, the pooling backwards) are written as
*gathers*: each input pixel sums the entries that read it, so no two threads write one
address and no atomics are needed (the result is also bitwise repeatable).

The sources stay within what NVRTC (CuPy's compiler) offers without headers: no
``#include``, no ``<math.h>`` macros (the infinity macro), only CUDA's built-in math functions.

Integer arguments are ``long long`` and float hyper-parameters ``double``; the launcher in
``__init__.py`` passes NumPy ``int64``/``float64`` scalars to match.
"""

from __future__ import annotations

#: the ``(suffix, C type)`` pairs each kernel is instantiated for
DTYPES = (("_f32", "float"), ("_f64", "double"))

_PRELUDE = r"""
#define GRID_LOOP(idx, total) \
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < (total); \
         idx += (long long)blockDim.x * gridDim.x)
"""

KERNELS = {}

# im2col: cols[r, k] for r = (n*Ho + ho)*Wo + wo, k = (i*kw + j)*C + c; zero outside the image.
KERNELS["im2col"] = r"""
extern "C" __global__ void im2colSUFFIX(
    const scalar_t* __restrict__ x, scalar_t* __restrict__ cols, long long total,
    long long N, long long H, long long W, long long C, long long kh, long long kw,
    long long sh, long long sw, long long dh, long long dw, long long pt, long long pl,
    long long Ho, long long Wo, long long ld)
{
    const long long K = kh * kw * C;
    GRID_LOOP(idx, total) {
        const long long r = idx / ld, k = idx - r * ld;
        if (k >= K) { cols[idx] = (scalar_t)1; continue; }  /* the bias column */
        const long long c = k % C, ij = k / C, j = ij % kw, i = ij / kw;
        const long long wo = r % Wo, t = r / Wo, ho = t % Ho, n = t / Ho;
        const long long h = ho * sh + i * dh - pt, w = wo * sw + j * dw - pl;
        cols[idx] = (h >= 0 && h < H && w >= 0 && w < W) ? x[((n * H + h) * W + w) * C + c] : (scalar_t)0;
    }
}
"""

# col2im as a gather: dx[n, h, w, c] = sum of cols[r, k] over the windows (ho, wo) and taps
# (i, j) with ho*sh + i*dh - pt == h and wo*sw + j*dw - pl == w.
KERNELS["col2im"] = r"""
extern "C" __global__ void col2imSUFFIX(
    const scalar_t* __restrict__ cols, scalar_t* __restrict__ dx, long long total,
    long long N, long long H, long long W, long long C, long long kh, long long kw,
    long long sh, long long sw, long long dh, long long dw, long long pt, long long pl,
    long long Ho, long long Wo, long long ld)
{
    GRID_LOOP(idx, total) {
        const long long c = idx % C, t0 = idx / C, w = t0 % W, t1 = t0 / W, h = t1 % H, n = t1 / H;
        scalar_t acc = 0;
        for (long long i = 0; i < kh; ++i) {
            const long long th = h + pt - i * dh;
            if (th < 0 || th % sh != 0) continue;
            const long long ho = th / sh;
            if (ho >= Ho) continue;
            for (long long j = 0; j < kw; ++j) {
                const long long tw = w + pl - j * dw;
                if (tw < 0 || tw % sw != 0) continue;
                const long long wo = tw / sw;
                if (wo >= Wo) continue;
                acc += cols[((n * Ho + ho) * Wo + wo) * ld + (i * kw + j) * C + c];
            }
        }
        dx[idx] = acc;
    }
}
"""

# Max pooling: y = the window maximum, arg = i*pw + j of its first occurrence (a NaN wins, as
# NumPy's argmax has it); positions outside the image count as -inf, as 'same' pads them.
KERNELS["maxpool_fwd"] = r"""
extern "C" __global__ void maxpool_fwdSUFFIX(
    const scalar_t* __restrict__ x, scalar_t* __restrict__ y, int* __restrict__ arg, long long total,
    long long N, long long H, long long W, long long C, long long ph, long long pw,
    long long sh, long long sw, long long pt, long long pl, long long Ho, long long Wo)
{
    GRID_LOOP(idx, total) {
        const long long c = idx % C, t0 = idx / C, wo = t0 % Wo, t1 = t0 / Wo, ho = t1 % Ho, n = t1 / Ho;
        scalar_t best = (scalar_t)(-__longlong_as_double(0x7ff0000000000000LL));  /* -inf, without math.h */
        int best_at = 0;
        bool found_nan = false;
        for (long long i = 0; i < ph && !found_nan; ++i) {
            const long long h = ho * sh + i - pt;
            for (long long j = 0; j < pw; ++j) {
                const long long w = wo * sw + j - pl;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                const scalar_t v = x[((n * H + h) * W + w) * C + c];
                if (isnan(v)) { best = v; best_at = (int)(i * pw + j); found_nan = true; break; }
                if (v > best) { best = v; best_at = (int)(i * pw + j); }
            }
        }
        y[idx] = best;
        arg[idx] = best_at;
    }
}
"""

# Max pooling's adjoint as a gather: dx[n, h, w, c] sums dy over the windows whose arg names
# (h, w).
KERNELS["maxpool_bwd"] = r"""
extern "C" __global__ void maxpool_bwdSUFFIX(
    const scalar_t* __restrict__ dy, const int* __restrict__ arg, scalar_t* __restrict__ dx, long long total,
    long long N, long long H, long long W, long long C, long long ph, long long pw,
    long long sh, long long sw, long long pt, long long pl, long long Ho, long long Wo)
{
    GRID_LOOP(idx, total) {
        const long long c = idx % C, t0 = idx / C, w = t0 % W, t1 = t0 / W, h = t1 % H, n = t1 / H;
        scalar_t acc = 0;
        for (long long i = 0; i < ph; ++i) {
            const long long th = h + pt - i;
            if (th < 0 || th % sh != 0) continue;
            const long long ho = th / sh;
            if (ho >= Ho) continue;
            for (long long j = 0; j < pw; ++j) {
                const long long tw = w + pl - j;
                if (tw < 0 || tw % sw != 0) continue;
                const long long wo = tw / sw;
                if (wo >= Wo) continue;
                const long long o = ((n * Ho + ho) * Wo + wo) * C + c;
                if (arg[o] == (int)(i * pw + j)) acc += dy[o];
            }
        }
        dx[idx] = acc;
    }
}
"""

# Average pooling over the real pixels of each window (TensorFlow leaves 'same' padding out).
KERNELS["avgpool_fwd"] = r"""
extern "C" __global__ void avgpool_fwdSUFFIX(
    const scalar_t* __restrict__ x, scalar_t* __restrict__ y, long long total,
    long long N, long long H, long long W, long long C, long long ph, long long pw,
    long long sh, long long sw, long long pt, long long pl, long long Ho, long long Wo)
{
    GRID_LOOP(idx, total) {
        const long long c = idx % C, t0 = idx / C, wo = t0 % Wo, t1 = t0 / Wo, ho = t1 % Ho, n = t1 / Ho;
        scalar_t acc = 0;
        long long count = 0;
        for (long long i = 0; i < ph; ++i) {
            const long long h = ho * sh + i - pt;
            if (h < 0 || h >= H) continue;
            for (long long j = 0; j < pw; ++j) {
                const long long w = wo * sw + j - pl;
                if (w < 0 || w >= W) continue;
                acc += x[((n * H + h) * W + w) * C + c];
                ++count;
            }
        }
        y[idx] = acc / (scalar_t)(count > 0 ? count : 1);
    }
}
"""

KERNELS["avgpool_bwd"] = r"""
extern "C" __global__ void avgpool_bwdSUFFIX(
    const scalar_t* __restrict__ dy, scalar_t* __restrict__ dx, long long total,
    long long N, long long H, long long W, long long C, long long ph, long long pw,
    long long sh, long long sw, long long pt, long long pl, long long Ho, long long Wo)
{
    GRID_LOOP(idx, total) {
        const long long c = idx % C, t0 = idx / C, w = t0 % W, t1 = t0 / W, h = t1 % H, n = t1 / H;
        scalar_t acc = 0;
        for (long long i = 0; i < ph; ++i) {
            const long long th = h + pt - i;
            if (th < 0 || th % sh != 0) continue;
            const long long ho = th / sh;
            if (ho >= Ho) continue;
            /* rows of this window inside the image */
            const long long h0 = ho * sh - pt;
            const long long rows = min(h0 + ph, H) - max(h0, 0LL);
            for (long long j = 0; j < pw; ++j) {
                const long long tw = w + pl - j;
                if (tw < 0 || tw % sw != 0) continue;
                const long long wo = tw / sw;
                if (wo >= Wo) continue;
                const long long w0 = wo * sw - pl;
                const long long cols_in = min(w0 + pw, W) - max(w0, 0LL);
                acc += dy[((n * Ho + ho) * Wo + wo) * C + c] / (scalar_t)(rows * cols_in);
            }
        }
        dx[idx] = acc;
    }
}
"""

KERNELS["relu_bwd"] = r"""
extern "C" __global__ void relu_bwdSUFFIX(
    const scalar_t* __restrict__ dy, const scalar_t* __restrict__ y, scalar_t* __restrict__ dz, long long total)
{
    GRID_LOOP(idx, total) {
        dz[idx] = y[idx] > (scalar_t)0 ? dy[idx] : (scalar_t)0;
    }
}
"""

# The fused optimizer steps: one pass over a variable reads and writes each slot once,
# with the arithmetic of the NumPy code in optimizers/ (each constant rounded to scalar_t).
KERNELS["adam"] = r"""
extern "C" __global__ void adamSUFFIX(
    scalar_t* __restrict__ p, const scalar_t* __restrict__ g, scalar_t* __restrict__ m,
    scalar_t* __restrict__ v, long long total, double alpha, double beta_1, double beta_2, double epsilon)
{
    const scalar_t a = (scalar_t)alpha, c1 = (scalar_t)(1.0 - beta_1), c2 = (scalar_t)(1.0 - beta_2);
    const scalar_t eps = (scalar_t)epsilon;
    GRID_LOOP(idx, total) {
        const scalar_t gi = g[idx];
        const scalar_t mi = m[idx] + (gi - m[idx]) * c1;
        const scalar_t vi = v[idx] + (gi * gi - v[idx]) * c2;
        m[idx] = mi;
        v[idx] = vi;
        p[idx] -= mi / (sqrt(vi) + eps) * a;
    }
}
"""

KERNELS["rmsprop"] = r"""
extern "C" __global__ void rmspropSUFFIX(
    scalar_t* __restrict__ p, const scalar_t* __restrict__ g, scalar_t* __restrict__ v,
    long long total, double learning_rate, double rho, double epsilon)
{
    const scalar_t lr = (scalar_t)learning_rate, r = (scalar_t)rho, c = (scalar_t)(1.0 - rho);
    const scalar_t eps = (scalar_t)epsilon;
    GRID_LOOP(idx, total) {
        const scalar_t gi = g[idx];
        const scalar_t vi = v[idx] * r + gi * gi * c;
        v[idx] = vi;
        p[idx] -= gi / sqrt(vi + eps) * lr;
    }
}
"""

# SGD with momentum (Keras): m = momentum*m - lr*g; w += m, or with Nesterov
# w += momentum*m - lr*g. momentum == 0 never reaches here (a plain w -= lr*g).
KERNELS["sgd_momentum"] = r"""
extern "C" __global__ void sgd_momentumSUFFIX(
    scalar_t* __restrict__ p, const scalar_t* __restrict__ g, scalar_t* __restrict__ m,
    long long total, double learning_rate, double momentum, int nesterov)
{
    const scalar_t lr = (scalar_t)learning_rate, mom = (scalar_t)momentum;
    GRID_LOOP(idx, total) {
        const scalar_t step = g[idx] * lr;
        const scalar_t mi = m[idx] * mom - step;
        m[idx] = mi;
        if (nesterov) p[idx] += mom * mi - step;
        else p[idx] += mi;
    }
}
"""


def kernel_source(name, suffix, ctype):
    """One kernel's source for one dtype (what ``nvcc`` and ``RawModule`` compile)."""
    body = KERNELS[name].replace("SUFFIX", suffix)
    return f"typedef {ctype} scalar_t;\n" + _PRELUDE + body


def module_source(suffix, ctype):
    """Every kernel for one dtype, as one module (one compile, one cache entry)."""
    return (
        f"typedef {ctype} scalar_t;\n" + _PRELUDE + "".join(KERNELS[name].replace("SUFFIX", suffix) for name in KERNELS)
    )
