"""Optional compiled kernels, behind a checked boundary; ``lib`` is ``None`` when not built.

``pip install`` compiles the C files here (one a family: ``kernels.h`` lists them) into one
extension module, ``_ckernels``, when a C compiler is present
(the build is marked optional, so installation never fails for lack of one). The ops use these
kernels for float32 arrays and fall back to their NumPy code otherwise; set
``CONVOLAB_NO_CKERNELS=1`` to force the NumPy path (the tests compare the two), or
``CONVOLAB_CKERNELS_LIB=/path/to/_ckernels.so`` to load another build of the same files (the
sanitizer build in ``.ci/sanitize``).

A C kernel trusts its pointers: handed a buffer smaller than its integer arguments say, it
reads or writes memory it does not own. So no pointer crosses from Python. Each entry point
below takes the arrays themselves, and the extension checks every one against what the
kernel will touch (dtype, C-contiguity, alignment, writability, the element count the
integers imply, no output overlapping another array, integers in range, windows inside the
image) before the kernel runs, raising :class:`KernelArgumentError` instead. Each entry point
is described once (``_ckernels.c``) and checked by one function (``checks.c``). The checks are
C code: written in Python they held the GIL long enough to slow the two shard threads by 15%.

:data:`calls` counts each entry point and each variant a kernel took, so the tests can prove
that every kernel was reached by a differential test against the NumPy reference.
"""

from __future__ import annotations

import collections
import importlib.machinery
import importlib.util
import os

import numpy as np

#: every entry point of the compiled module
ENTRY_POINTS = (
    "im2col_f32",
    "col2im_f32",
    "maxpool_fwd_f32",
    "maxpool_bwd_f32",
    "relu_fwd_f32",
    "relu_bwd_f32",
    "adam_f32",
    "rmsprop_f32",
    "conv_fwd_f32",
    "conv_dw_f32",
    "depthwise_fwd_f32",
    "depthwise_dx_f32",
    "depthwise_dw_f32",
    "bn_moments_f32",
    "bn_affine_f32",
    "bn_bwd_f32",
)
#: the variants chosen inside the kernels, counted as ``name[variant]``
VARIANTS = (
    "im2col_f32[valid]",
    "im2col_f32[padded]",
    "col2im_f32[valid]",
    "col2im_f32[padded]",
    "maxpool_fwd_f32[2x2]",
    "maxpool_fwd_f32[general]",
    "maxpool_bwd_f32[2x2]",
    "maxpool_bwd_f32[general]",
    "conv_fwd_f32[pixels]",
    "conv_fwd_f32[filters]",
    "conv_fwd_f32[pixels/avx512]",
    "conv_fwd_f32[filters/avx512]",
    "conv_dw_f32[avx2]",
    "conv_dw_f32[avx512]",
    "conv_dw_f32[taps/avx512]",
    "depthwise_fwd_f32[dm=1]",
    "depthwise_fwd_f32[dm>1]",
    "depthwise_dx_f32[dm=1]",
    "depthwise_dx_f32[dm>1]",
    "depthwise_dw_f32[dm=1]",
    "depthwise_dw_f32[dm>1]",
)
#: the variants of each instruction set the fused convolutions can use (see :func:`fused_isa`)
ISA_VARIANTS = {
    "avx2": ("conv_fwd_f32[pixels]", "conv_fwd_f32[filters]", "conv_dw_f32[avx2]"),
    "avx512": (
        "conv_fwd_f32[pixels/avx512]",
        "conv_fwd_f32[filters/avx512]",
        "conv_dw_f32[avx512]",
        "conv_dw_f32[taps/avx512]",
    ),
}
#: the kernel matrix handed to the fused convolutions has ``fused_width(F)`` columns
FUSED_WIDTH = 16

_F32 = np.dtype(np.float32)


class KernelArgumentError(ValueError):
    """A compiled kernel was about to be called with arrays that do not match its arguments."""


def _library_path():
    path = os.environ.get("CONVOLAB_CKERNELS_LIB")
    if path:
        if not os.path.exists(path):
            raise ImportError(f"CONVOLAB_CKERNELS_LIB names {path!r}, which does not exist")
        return path
    try:
        spec = importlib.util.find_spec("convolab.kernels._ckernels")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return None
    return spec.origin


def _load():
    if os.environ.get("CONVOLAB_NO_CKERNELS"):
        return None
    path = _library_path()
    if path is None:
        return None
    loader = importlib.machinery.ExtensionFileLoader("convolab.kernels._ckernels", path)
    spec = importlib.util.spec_from_file_location("convolab.kernels._ckernels", path, loader=loader)
    try:
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except ImportError:
        if os.environ.get("CONVOLAB_CKERNELS_LIB"):
            raise
        return None
    module.set_error_class(KernelArgumentError)
    module.fused_conv = module.fused_supported() and not os.environ.get("CONVOLAB_NO_FUSED_CONV")
    # the fused convolutions' instruction set and filter limit, read by nn/conv.py on each call
    module.fused_name, module.fused_max_filters = module.fused_isa() if module.fused_conv else ("", 0)
    if module.fused_conv and os.environ.get("CONVOLAB_FUSED_ISA"):
        module.fused_name, module.fused_max_filters = module.set_fused_isa(os.environ["CONVOLAB_FUSED_ISA"])
    return module


lib = _load()


def fused_width(filters: int) -> int:
    """Columns of the zero-padded ``(kh*kw*C, Fp)`` kernel matrix the fused convolutions take."""
    return FUSED_WIDTH * -(-filters // FUSED_WIDTH)


def fused_isa() -> tuple[str, int]:
    """``(name, max_filters)``: the instruction set the fused convolutions use now (``'avx512'``,
    ``'avx2'``, or ``''`` where they cannot run) and the most filters they take (AVX2: 32, in
    registers; AVX-512: 4096, in blocks of 64)."""
    if lib is None or not lib.fused_conv:
        return "", 0
    return tuple(lib.fused_isa())


def available_isas() -> tuple[str, ...]:
    """The instruction sets the fused convolutions can use on this CPU, best first."""
    if lib is None or not lib.fused_conv:
        return ()
    current = lib.fused_name
    try:
        best = lib.set_fused_isa("best")[0]
    finally:
        lib.set_fused_isa(current)
    return ("avx512", "avx2") if best == "avx512" else ("avx2",)


def set_fused_isa(name: str) -> tuple[str, int]:
    """Make the fused convolutions use ``'avx512'``, ``'avx2'`` or the ``'best'`` the CPU has
    (the default); the tests run both. Returns :func:`fused_isa`. ``ValueError`` for a set the
    CPU lacks."""
    if lib is None or not lib.fused_conv:
        raise ValueError(f"set_fused_isa({name!r}): the fused convolution kernels are not available here")
    lib.fused_name, lib.fused_max_filters = lib.set_fused_isa(name)
    return lib.fused_name, lib.fused_max_filters


def pool_counts() -> dict:
    """``{'jobs', 'parts', 'workers'}``: how many kernel calls ran split over the kernels' own
    threads (``threads`` > 1) in this process, their parts in all, and the worker threads
    started (kernels/pool.h). Zeros without the compiled kernels."""
    return dict(lib.pool_counts()) if lib is not None else {"jobs": 0, "parts": 0, "workers": 0}


def available() -> bool:
    """True when the compiled kernels are loaded."""
    return lib is not None


def usable(*arrays) -> bool:
    """True when the kernels are loaded and every array is C-contiguous float32."""
    return lib is not None and all(a.dtype == _F32 and a.flags.c_contiguous for a in arrays)


def __getattr__(name):
    # ``calls``: a fresh snapshot of the extension's counters, as a Counter.
    if name == "calls":
        return collections.Counter(lib.counts() if lib is not None else {})
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- the entry points (checked in C; see checks.h, "The checked boundary") -------------------
# Each looks up ``lib`` when called, so that switching the kernels off (lib = None, as the
# tests do) takes effect everywhere at once. ``threads`` (1 to 64) runs one call on that many
# contiguous parts of the batch (or of the rows), each on a thread of the kernels' own pool
# (kernels/pool.h): the same arithmetic per image; sums over the batch are added in part
# order, so a given ``threads`` gives the same bits every time. nn/threads.py chooses it.


def im2col_f32(x, cols, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld, threads=1):
    """``cols[(n*Ho + ho)*Wo + wo, (i*kw + j)*C + c] = x[n, ho*sh + i - pt, wo*sw + j - pl, c]``;
    ``ld`` is ``kh*kw*C`` or one more (a trailing column of ones for the bias)."""
    lib.im2col_f32(x, cols, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld, threads)


def col2im_f32(cols, dx, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld, threads=1):
    """``dx = 0``, then every row of ``cols`` added back onto the window it came from."""
    lib.col2im_f32(cols, dx, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld, threads)


def maxpool_fwd_f32(x, y, arg, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo, threads=1):
    """``y`` = window maxima, ``arg`` = int32 flat index ``i*pw + j`` of each (first) maximum."""
    lib.maxpool_fwd_f32(x, y, arg, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo, threads)


def maxpool_bwd_f32(dy, arg, dx, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo, threads=1):
    """``dx = 0``, then ``dy`` added at each window's ``arg`` position (positions outside the
    image, which only a window with no finite value can name, are skipped)."""
    lib.maxpool_bwd_f32(dy, arg, dx, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo, threads)


def relu_fwd_f32(x, y, cap=float("inf"), threads=1):
    """``y = min(max(x, 0), cap)``, a NaN kept as NaN (NumPy's maximum and minimum keep it);
    ``cap`` is ``inf`` for the plain ReLU, 6 for ReLU6."""
    lib.relu_fwd_f32(x, y, cap, threads)


def relu_bwd_f32(dy, y, dz, cap=float("inf"), threads=1):
    """``dz = dy where 0 < y < cap else 0``, all three of one size: the backward of
    :func:`relu_fwd_f32` from its output (``cap`` ``inf``: the plain ReLU)."""
    lib.relu_bwd_f32(dy, y, dz, cap, threads)


def adam_f32(param, grad, m, v, alpha, beta_1, beta_2, epsilon):
    """Keras's Adam step in place on ``param``, ``m`` and ``v`` (all the size of ``param``)."""
    lib.adam_f32(param, grad, m, v, alpha, beta_1, beta_2, epsilon)


def rmsprop_f32(param, grad, v, learning_rate, rho, epsilon):
    """Keras's RMSprop step (no momentum, not centred) in place on ``param`` and ``v``."""
    lib.rmsprop_f32(param, grad, v, learning_rate, rho, epsilon)


def conv_fwd_f32(x, wp, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, pt=0, pl=0, relu=False, threads=1):
    """``y = im2col(x) @ wp[:, :F] (+ bp[:F])`` without the im2col matrix; the windows are those of
    ``x`` with ``pt`` rows and ``pl`` columns of zeros before it and as many after as they reach
    (each image is padded on its own, in the cache, not as a padded copy of the batch). With
    ``relu`` the outputs are rectified as they are stored (``max(y, 0)``: a ReLU with no pass of
    its own).

    ``wp`` is the kernel as a ``(kh*kw*C, Fp)`` matrix with ``Fp = fused_width(F)`` columns
    (zeros past ``F``); ``bp`` is ``None`` or ``Fp`` floats; at most ``fused_isa()[1]`` filters.
    """
    lib.conv_fwd_f32(x, wp, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, pt, pl, bool(relu), threads)


def conv_dw_f32(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, pt=0, pl=0, threads=1):
    """``dwp[:, :F] += im2col(x).T @ dy`` (and ``dbp[:F] += dy.sum(0)``), windows as in
    :func:`conv_fwd_f32`.

    ``dwp`` is ``(kh*kw*C, Fp)``, ``dbp`` ``None`` or ``Fp`` floats, ``Fp = fused_width(F)``.
    """
    lib.conv_dw_f32(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo, pt, pl, threads)


# The depthwise kernels share 15 integers: N H W C kh kw sh sw pt pl rh rw Ho Wo dm, with
# (pt, pl) the padding before the image, (rh, rw) the dilation and dm the depth multiplier.
# Output channel ``c*dm + m`` is input channel ``c`` through filter ``m``; ``w`` is Keras's
# ``(kh, kw, C, dm)`` kernel. Taps that fall outside the image contribute zero.


def depthwise_fwd_f32(x, w, b, y, N, H, W, C, kh, kw, sh, sw, pt, pl, rh, rw, Ho, Wo, dm, threads=1):
    """``y[n, ho, wo, c*dm + m] = b[c*dm + m] + sum over (i, j) of
    x[n, ho*sh - pt + i*rh, wo*sw - pl + j*rw, c] * w[i, j, c, m]``; ``b`` may be ``None``."""
    lib.depthwise_fwd_f32(x, w, b, y, N, H, W, C, kh, kw, sh, sw, pt, pl, rh, rw, Ho, Wo, dm, threads)


def depthwise_dx_f32(dy, w, dx, N, H, W, C, kh, kw, sh, sw, pt, pl, rh, rw, Ho, Wo, dm, threads=1):
    """``dx`` = the adjoint of :func:`depthwise_fwd_f32` applied to ``dy``, each pixel written once."""
    lib.depthwise_dx_f32(dy, w, dx, N, H, W, C, kh, kw, sh, sw, pt, pl, rh, rw, Ho, Wo, dm, threads)


def depthwise_dw_f32(x, dy, dw, db, N, H, W, C, kh, kw, sh, sw, pt, pl, rh, rw, Ho, Wo, dm, threads=1):
    """``dw[i, j, c, m]`` = sum over the batch and output pixels of the input each tap read times
    ``dy[..., c*dm + m]``; ``db`` (``None`` or ``C*dm`` floats) = ``dy`` summed over N, Ho, Wo.
    Both are overwritten, not added to."""
    lib.depthwise_dw_f32(x, dy, dw, db, N, H, W, C, kh, kw, sh, sw, pt, pl, rh, rw, Ho, Wo, dm, threads)


def bn_moments_f32(x, mean, var, M, C, threads=1):
    """Per-channel ``mean`` and biased ``var`` (``C`` floats each, written) of ``x`` seen as an
    ``(M, C)`` array; the sums run in double."""
    lib.bn_moments_f32(x, mean, var, M, C, threads)


def bn_affine_f32(x, center, scale, shift, y, M, C, threads=1):
    """``y = (x - center) * scale + shift`` per channel over ``(M, C)`` arrays."""
    lib.bn_affine_f32(x, center, scale, shift, y, M, C, threads)


def bn_bwd_f32(dy, x, mean, inv_std, k, dx, dgamma, dbeta, M, C, threads=1):
    """Training-mode batch-norm backward over ``(M, C)``: writes ``dbeta = sum(dy)``,
    ``dgamma = sum(dy * xhat)`` and ``dx = k * (dy - dbeta / M - xhat * dgamma / M)``,
    ``xhat = (x - mean) * inv_std`` (``k = gamma * inv_std``)."""
    lib.bn_bwd_f32(dy, x, mean, inv_std, k, dx, dgamma, dbeta, M, C, threads)
