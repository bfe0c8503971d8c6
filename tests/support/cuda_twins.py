"""NumPy twins of the CUDA kernels in ``convolab/kernels/cuda/sources.py``, for CPU tests only.

Each twin takes the kernel's arguments in the kernel's order (arrays as flat NumPy buffers,
then ``total`` and the scalars) and runs the kernel's body for every work item at once: ``idx``
is ``np.arange(total)`` and every line below is the CUDA line of the same name, vectorised.
Checked against the NumPy/C reference ops (``test_gpu_twins.py``), they verify the index
math of the GPU kernels without a GPU; the fake device (``fake_cupy.py``) launches them where
CuPy would launch the kernels.
"""

from __future__ import annotations

import numpy as np


def _decompose(idx, *sizes):
    """Split flat indices into coordinates, last size fastest: ``(a, b, c) = divmods``."""
    out = []
    for s in reversed(sizes[1:]):
        out.append(idx % s)
        idx = idx // s
    out.append(idx)
    return tuple(reversed(out))


def im2col(x, cols, total, N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo, ld):
    x, cols = x.reshape(-1), cols.reshape(-1)
    K = kh * kw * C
    idx = np.arange(total)
    r, k = idx // ld, idx % ld
    bias = k >= K
    kk = np.where(bias, 0, k)
    c, ij = kk % C, kk // C
    j, i = ij % kw, ij // kw
    n, ho, wo = _decompose(r, N, Ho, Wo)
    h, w = ho * sh + i * dh - pt, wo * sw + j * dw - pl
    inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)
    src = ((n * H + np.clip(h, 0, H - 1)) * W + np.clip(w, 0, W - 1)) * C + c
    cols[idx] = np.where(bias, 1, np.where(inside, x[src], 0))


def col2im(cols, dx, total, N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo, ld):
    cols, dx = cols.reshape(-1), dx.reshape(-1)
    idx = np.arange(total)
    n, h, w, c = _decompose(idx, N, H, W, C)
    acc = np.zeros(total, dtype=dx.dtype)
    for i in range(kh):  # the kernel's loops over taps; each pixel gathers, nobody scatters
        th = h + pt - i * dh
        ho = th // sh
        ok_h = (th >= 0) & (th % sh == 0) & (ho < Ho)
        for j in range(kw):
            tw = w + pl - j * dw
            wo = tw // sw
            ok = ok_h & (tw >= 0) & (tw % sw == 0) & (wo < Wo)
            src = ((n * Ho + np.where(ok, ho, 0)) * Wo + np.where(ok, wo, 0)) * ld + (i * kw + j) * C + c
            acc += np.where(ok, cols[src], 0)
    dx[idx] = acc


def maxpool_fwd(x, y, arg, total, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    x, y, arg = x.reshape(-1), y.reshape(-1), arg.reshape(-1)
    idx = np.arange(total)
    n, ho, wo, c = _decompose(idx, N, Ho, Wo, C)
    best = np.full(total, -np.inf, dtype=y.dtype)
    best_at = np.zeros(total, dtype=np.int32)
    found_nan = np.zeros(total, dtype=bool)
    for i in range(ph):
        h = ho * sh + i - pt
        for j in range(pw):
            w = wo * sw + j - pl
            inside = (h >= 0) & (h < H) & (w >= 0) & (w < W) & ~found_nan
            v = np.where(inside, x[((n * H + np.clip(h, 0, H - 1)) * W + np.clip(w, 0, W - 1)) * C + c], -np.inf)
            nan = inside & np.isnan(v)
            better = inside & ~nan & (v > best)
            take = nan | better
            best = np.where(take, v, best)
            best_at = np.where(take, i * pw + j, best_at).astype(np.int32)
            found_nan |= nan
    y[idx] = best
    arg[idx] = best_at


def maxpool_bwd(dy, arg, dx, total, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    dy, arg, dx = dy.reshape(-1), arg.reshape(-1), dx.reshape(-1)
    idx = np.arange(total)
    n, h, w, c = _decompose(idx, N, H, W, C)
    acc = np.zeros(total, dtype=dx.dtype)
    for i in range(ph):
        th = h + pt - i
        ho = th // sh
        ok_h = (th >= 0) & (th % sh == 0) & (ho < Ho)
        for j in range(pw):
            tw = w + pl - j
            wo = tw // sw
            ok = ok_h & (tw >= 0) & (tw % sw == 0) & (wo < Wo)
            o = ((n * Ho + np.where(ok, ho, 0)) * Wo + np.where(ok, wo, 0)) * C + c
            acc += np.where(ok & (arg[o] == i * pw + j), dy[o], 0)
    dx[idx] = acc


def avgpool_fwd(x, y, total, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    x, y = x.reshape(-1), y.reshape(-1)
    idx = np.arange(total)
    n, ho, wo, c = _decompose(idx, N, Ho, Wo, C)
    acc = np.zeros(total, dtype=y.dtype)
    count = np.zeros(total, dtype=np.int64)
    for i in range(ph):
        h = ho * sh + i - pt
        for j in range(pw):
            w = wo * sw + j - pl
            inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)
            acc += np.where(inside, x[((n * H + np.clip(h, 0, H - 1)) * W + np.clip(w, 0, W - 1)) * C + c], 0)
            count += inside
    y[idx] = acc / np.maximum(count, 1).astype(y.dtype)


def avgpool_bwd(dy, dx, total, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    dy, dx = dy.reshape(-1), dx.reshape(-1)
    idx = np.arange(total)
    n, h, w, c = _decompose(idx, N, H, W, C)
    acc = np.zeros(total, dtype=dx.dtype)
    for i in range(ph):
        th = h + pt - i
        ho = th // sh
        ok_h = (th >= 0) & (th % sh == 0) & (ho < Ho)
        h0 = ho * sh - pt
        rows = np.minimum(h0 + ph, H) - np.maximum(h0, 0)
        for j in range(pw):
            tw = w + pl - j
            wo = tw // sw
            ok = ok_h & (tw >= 0) & (tw % sw == 0) & (wo < Wo)
            w0 = wo * sw - pl
            cols_in = np.minimum(w0 + pw, W) - np.maximum(w0, 0)
            o = ((n * Ho + np.where(ok, ho, 0)) * Wo + np.where(ok, wo, 0)) * C + c
            acc += np.where(ok, dy[o] / np.where(ok, rows * cols_in, 1).astype(dx.dtype), 0)
    dx[idx] = acc


def relu_bwd(dy, y, dz, total):
    dz.reshape(-1)[:] = np.where(y.reshape(-1) > 0, dy.reshape(-1), 0)


def adam(p, g, m, v, total, alpha, beta_1, beta_2, epsilon):
    t = p.dtype.type
    a, c1, c2, eps = t(alpha), t(1.0 - beta_1), t(1.0 - beta_2), t(epsilon)
    mi = m + (g - m) * c1
    vi = v + (g * g - v) * c2
    m[...] = mi
    v[...] = vi
    p -= mi / (np.sqrt(vi) + eps) * a


def rmsprop(p, g, v, total, learning_rate, rho, epsilon):
    t = p.dtype.type
    lr, r, c, eps = t(learning_rate), t(rho), t(1.0 - rho), t(epsilon)
    vi = v * r + g * g * c
    v[...] = vi
    p -= g / np.sqrt(vi + eps) * lr


def sgd_momentum(p, g, m, total, learning_rate, momentum, nesterov):
    t = p.dtype.type
    lr, mom = t(learning_rate), t(momentum)
    step = g * lr
    mi = m * mom - step
    m[...] = mi
    if nesterov:
        p += mom * mi - step
    else:
        p += mi


TWINS = {
    name: fn
    for name, fn in globals().items()
    if name
    in (
        "im2col",
        "col2im",
        "maxpool_fwd",
        "maxpool_bwd",
        "avgpool_fwd",
        "avgpool_bwd",
        "relu_bwd",
        "adam",
        "rmsprop",
        "sgd_momentum",
    )
}
