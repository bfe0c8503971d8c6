"""GPU kernels: CuPy launches of the CUDA sources in :mod:`.sources`, one entry point each.

The entry points mirror the C kernels' (``kernels/__init__.py``) with CuPy arrays in place of
NumPy ones: the ops call them when their inputs live on the GPU (``backend.get_array_module``
says CuPy). Products (the convolution GEMMs, Dense) need no kernel of ours: ``@`` on CuPy
arrays is cuBLAS.

Each dtype's kernels compile once, as one ``RawModule``, on first use (CuPy caches the
binary on disk too). Every array handed to a kernel must be C-contiguous and of the kernel's
float dtype (``arg`` arrays int32); the launchers check that before any launch, since a CUDA
kernel, like a C one, trusts its pointers.
"""

from __future__ import annotations

import numpy as np

from ... import _gpu
from . import sources

#: threads per block; the kernels loop over their work, so the grid may be smaller than it
THREADS = 256
_MAX_BLOCKS = 1 << 16
_SUFFIX = {"float32": ("_f32", "float"), "float64": ("_f64", "double")}
_modules: dict = {}


class GPUKernelArgumentError(ValueError):
    """A GPU kernel was about to be launched with arrays that do not fit its arguments."""


def _module(dtype_name):
    mod = _modules.get(dtype_name)
    if mod is None:
        suffix, ctype = _SUFFIX[dtype_name]
        mod = _gpu.cupy.RawModule(code=sources.module_source(suffix, ctype))
        _modules[dtype_name] = mod
    return mod


def launch(name, arrays, total, ints=(), floats=(), int32s=()):
    """Launch kernel ``name`` for ``arrays[0]``'s dtype over ``total`` work items.

    The kernel receives ``(*arrays, total, *ints, *floats, *int32s)`` as ``long long``,
    ``double`` and ``int`` scalars.
    """
    dtype_name = arrays[0].dtype.name
    if dtype_name not in _SUFFIX:
        raise GPUKernelArgumentError(f"GPU kernel {name}: float32 or float64 arrays only; got {dtype_name}")
    if total <= 0:
        return
    fn = _module(dtype_name).get_function(name + _SUFFIX[dtype_name][0])
    blocks = min(-(-total // THREADS), _MAX_BLOCKS)
    args = (
        tuple(arrays)
        + (np.int64(total),)
        + tuple(np.int64(i) for i in ints)
        + tuple(np.float64(f) for f in floats)
        + tuple(np.int32(i) for i in int32s)
    )
    fn((blocks,), (THREADS,), args)


def _contiguous(name, dtype_name, *arrays):
    for a in arrays:
        if a.dtype.name != dtype_name or not a.flags.c_contiguous:
            raise GPUKernelArgumentError(
                f"GPU kernel {name}: expected C-contiguous {dtype_name} arrays; got {a.dtype.name} of shape "
                f"{a.shape} (C-contiguous: {a.flags.c_contiguous})"
            )


def _sized(name, a, n):
    if a.size != n:
        raise GPUKernelArgumentError(f"GPU kernel {name}: an array of {a.size} elements where the arguments imply {n}")


# -- the window kernels (im2col's integer arguments plus the dilation) ------------------------


def im2col(x, cols, N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo, ld):
    """``cols[(n*Ho + ho)*Wo + wo, (i*kw + j)*C + c] = x[n, ho*sh + i*dh - pt, wo*sw + j*dw - pl, c]``
    (0 outside the image); columns from ``kh*kw*C`` to ``ld`` are ones (the bias column)."""
    _contiguous("im2col", x.dtype.name, x, cols)
    _sized("im2col", x, N * H * W * C)
    _sized("im2col", cols, N * Ho * Wo * ld)
    launch("im2col", (x, cols), cols.size, (N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo, ld))


def col2im(cols, dx, N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo, ld):
    """``dx[n, h, w, c]`` = the sum of the ``cols`` entries :func:`im2col` read it into (a gather)."""
    _contiguous("col2im", cols.dtype.name, cols, dx)
    _sized("col2im", cols, N * Ho * Wo * ld)
    _sized("col2im", dx, N * H * W * C)
    launch("col2im", (cols, dx), dx.size, (N, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo, ld))


def _pool_check(name, x_size, y_size, N, H, W, C, Ho, Wo):
    if x_size != N * H * W * C or y_size != N * Ho * Wo * C:
        raise GPUKernelArgumentError(
            f"GPU kernel {name}: arrays of {x_size} and {y_size} elements for "
            f"N={N}, H={H}, W={W}, C={C}, Ho={Ho}, Wo={Wo}"
        )


def maxpool_fwd(x, y, arg, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    """``y`` = window maxima, ``arg`` = int32 ``i*pw + j`` of each first maximum (NaN wins)."""
    _contiguous("maxpool_fwd", x.dtype.name, x, y)
    _contiguous("maxpool_fwd", "int32", arg)
    _pool_check("maxpool_fwd", x.size, y.size, N, H, W, C, Ho, Wo)
    _sized("maxpool_fwd", arg, y.size)
    launch("maxpool_fwd", (x, y, arg), y.size, (N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo))


def maxpool_bwd(dy, arg, dx, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    """``dx[n, h, w, c]`` = the sum of ``dy`` over the windows whose ``arg`` names ``(h, w)``."""
    _contiguous("maxpool_bwd", dy.dtype.name, dy, dx)
    _contiguous("maxpool_bwd", "int32", arg)
    _pool_check("maxpool_bwd", dx.size, dy.size, N, H, W, C, Ho, Wo)
    _sized("maxpool_bwd", arg, dy.size)
    launch("maxpool_bwd", (dy, arg, dx), dx.size, (N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo))


def avgpool_fwd(x, y, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    """``y`` = the mean of each window's pixels inside the image."""
    _contiguous("avgpool_fwd", x.dtype.name, x, y)
    _pool_check("avgpool_fwd", x.size, y.size, N, H, W, C, Ho, Wo)
    launch("avgpool_fwd", (x, y), y.size, (N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo))


def avgpool_bwd(dy, dx, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    """``dx[n, h, w, c]`` = the sum of ``dy / window size`` over the windows covering ``(h, w)``."""
    _contiguous("avgpool_bwd", dy.dtype.name, dy, dx)
    _pool_check("avgpool_bwd", dx.size, dy.size, N, H, W, C, Ho, Wo)
    launch("avgpool_bwd", (dy, dx), dx.size, (N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo))


# -- element-wise ------------------------------------------------------------------------------


def relu_bwd(dy, y, dz):
    """``dz = dy where y > 0 else 0``, all three of one size."""
    _contiguous("relu_bwd", dy.dtype.name, dy, y, dz)
    _sized("relu_bwd", y, dy.size)
    _sized("relu_bwd", dz, dy.size)
    launch("relu_bwd", (dy, y, dz), dz.size)


def adam(param, grad, m, v, alpha, beta_1, beta_2, epsilon):
    """Keras's Adam step in place on ``param``, ``m`` and ``v`` (``alpha`` holds the bias correction)."""
    _contiguous("adam", param.dtype.name, param, grad, m, v)
    for a in (grad, m, v):
        _sized("adam", a, param.size)
    launch("adam", (param, grad, m, v), param.size, floats=(alpha, beta_1, beta_2, epsilon))


def rmsprop(param, grad, v, learning_rate, rho, epsilon):
    """Keras's RMSprop step (no momentum, not centred) in place on ``param`` and ``v``."""
    _contiguous("rmsprop", param.dtype.name, param, grad, v)
    for a in (grad, v):
        _sized("rmsprop", a, param.size)
    launch("rmsprop", (param, grad, v), param.size, floats=(learning_rate, rho, epsilon))


def sgd_momentum(param, grad, m, learning_rate, momentum, nesterov):
    """Keras's SGD step with momentum (and Nesterov's variant) in place on ``param`` and ``m``."""
    _contiguous("sgd_momentum", param.dtype.name, param, grad, m)
    for a in (grad, m):
        _sized("sgd_momentum", a, param.size)
    launch("sgd_momentum", (param, grad, m), param.size, floats=(learning_rate, momentum), int32s=(int(nesterov),))
