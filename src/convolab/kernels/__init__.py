"""Optional compiled kernels, loaded with ctypes, behind a checked boundary.

``pip install`` compiles ``_ckernels.c`` when a C compiler is present (the build is marked
optional, so installation never fails for lack of one). The ops use these kernels for
float32 arrays and fall back to their NumPy code otherwise; set ``CONVOLAB_NO_CKERNELS=1``
to force the NumPy path (the tests compare the two), or ``CONVOLAB_CKERNELS_LIB=/path/lib.so``
to load another build of the same file (the sanitizer build in ``.ci/sanitize``).

A C kernel trusts its pointers: handed a buffer smaller than its integer arguments say, it
reads or writes memory it does not own. So the ops never call ``lib`` directly. They call the
functions below, one per kernel, which check every array against the sizes the kernel will
touch (dtype, C-contiguity, alignment, writability, element count, no overlap between
inputs and outputs) and raise :class:`KernelArgumentError` before any pointer crosses into C.
The checks are O(1) each (attributes and products of the shape), a microsecond per call.

``calls`` counts each entry point (and the variant it will take), so the tests can prove that
every kernel was reached by a differential test against the NumPy reference.
"""
from __future__ import annotations

import collections
import ctypes
import importlib.util
import os

import numpy as np

_c_int = ctypes.c_int
_ptr = ctypes.c_void_p

#: every entry point of the compiled file, as the Python functions below name them
ENTRY_POINTS = ("im2col_f32", "col2im_f32", "maxpool_fwd_f32", "maxpool_bwd_f32", "relu_bwd_f32",
                "adam_f32", "rmsprop_f32", "conv_fwd_f32", "conv_dw_f32")
#: the variants chosen inside the kernels, counted as ``name[variant]``
VARIANTS = ("im2col_f32[valid]", "im2col_f32[padded]", "col2im_f32[valid]", "col2im_f32[padded]",
            "maxpool_fwd_f32[2x2]", "maxpool_fwd_f32[general]", "maxpool_bwd_f32[2x2]",
            "maxpool_bwd_f32[general]", "conv_fwd_f32[pixels]", "conv_fwd_f32[filters]")

#: how often each entry point and variant was called in this process
calls: collections.Counter = collections.Counter()


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
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        if os.environ.get("CONVOLAB_CKERNELS_LIB"):
            raise
        return None
    for name, n_ptrs, n_ints in (("im2col_f32", 2, 13), ("col2im_f32", 2, 13),
                                 ("maxpool_fwd_f32", 3, 12), ("maxpool_bwd_f32", 3, 12)):
        fn = getattr(lib, name)
        fn.argtypes = [_ptr] * n_ptrs + [_c_int] * n_ints
        fn.restype = None
    _f, _l = ctypes.c_float, ctypes.c_long
    lib.relu_bwd_f32.argtypes = [_ptr, _ptr, _ptr, _l]
    lib.adam_f32.argtypes = [_ptr, _ptr, _ptr, _ptr, _l, _f, _f, _f, _f]
    lib.rmsprop_f32.argtypes = [_ptr, _ptr, _ptr, _l, _f, _f, _f]
    lib.conv_fwd_f32.argtypes = [_ptr] * 4 + [_c_int] * 11
    lib.conv_dw_f32.argtypes = [_ptr] * 4 + [_c_int] * 11
    for name in ("relu_bwd_f32", "adam_f32", "rmsprop_f32", "conv_fwd_f32", "conv_dw_f32"):
        getattr(lib, name).restype = None
    lib.conv_fused_supported.restype = ctypes.c_int
    lib.fused_conv = bool(lib.conv_fused_supported()) and not os.environ.get("CONVOLAB_NO_FUSED_CONV")
    return lib


lib = _load()

_F32 = np.dtype(np.float32)
_I32 = np.dtype(np.int32)
_INT_MAX = 2**31 - 1
#: the fused convolution kernels keep at most 4 vectors of 8 filters in registers
MAX_FUSED_FILTERS = 32


def available() -> bool:
    """True when the compiled kernels are loaded."""
    return lib is not None


def ptr(a):
    return a.ctypes.data


def usable(*arrays) -> bool:
    """True when the kernels are loaded and every array is C-contiguous float32."""
    return lib is not None and all(a.dtype == _F32 and a.flags.c_contiguous for a in arrays)


# -- the checked boundary ----------------------------------------------------------------------

def _fail(kernel, msg):
    raise KernelArgumentError(f"compiled kernel {kernel}: {msg}; nothing was called")


def _array(kernel, role, a, size, dtype=_F32, out=False):
    """Check that ``a`` is a C-contiguous, aligned ``dtype`` array of exactly ``size`` elements.

    Returns ``(role, address, end address)``: the address is what the kernel gets, and the
    span is what :func:`_disjoint` compares.
    """
    if not isinstance(a, np.ndarray):
        _fail(kernel, f"{role} must be a NumPy array; got {type(a).__name__}")
    if a.dtype != dtype:
        _fail(kernel, f"{role} must be {dtype.name}; got {a.dtype.name}")
    flags = a.flags
    if not (flags.c_contiguous and flags.aligned):
        _fail(kernel, f"{role} must be C-contiguous and aligned")
    if out and not flags.writeable:
        _fail(kernel, f"{role} is written to but is read-only")
    if a.size != size:
        _fail(kernel, f"{role} has {a.size} elements (shape {a.shape}); the arguments need {size}")
    address = a.ctypes.data
    return role, address, address + a.nbytes


def _ints(kernel, names, values):
    """Every value in [0, 2**31): ctypes would silently wrap a larger one into a C int (and
    refuses anything that is not an integer by itself)."""
    if min(values) >= 0 and max(values) <= _INT_MAX:
        return
    for name, v in zip(names, values):  # the slow path only says which one
        if not 0 <= v <= _INT_MAX:
            _fail(kernel, f"`{name}` must be an int in [0, 2**31); got {v!r}")


def _disjoint(kernel, outputs, inputs):
    """No output may share memory with another array: the kernels declare every pointer ``restrict``.

    ``outputs`` and ``inputs`` hold :func:`_array`'s ``(role, start, end)`` spans, or ``None``.
    """
    others = outputs + inputs
    for i, (role, start, end) in enumerate(outputs):
        for other in others[i + 1:]:
            if other is not None and start < other[2] and other[1] < end:
                _fail(kernel, f"{role} overlaps {other[0]} in memory")


_WINDOW_NAMES = ("N", "H", "W", "C", "kh", "kw", "sh", "sw", "pt", "pl", "Ho", "Wo")


def _windows(kernel, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo):
    _ints(kernel, _WINDOW_NAMES, (N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo))
    if min(kh, kw, sh, sw) < 1:
        _fail(kernel, f"window ({kh}, {kw}) and strides ({sh}, {sw}) must be >= 1")
    # Every window starts inside the padded image (the kernels check the far edge themselves).
    if Ho and (Ho - 1) * sh - pt >= H or Wo and (Wo - 1) * sw - pl >= W:
        _fail(kernel, f"an output of {Ho}x{Wo} windows at strides ({sh}, {sw}) starts past a {H}x{W} image")
    if pt >= kh or pl >= kw:
        _fail(kernel, f"padding ({pt}, {pl}) is as large as the window ({kh}, {kw})")


def _count(name, variant_key=None):
    calls[name] += 1
    if variant_key is not None:
        calls[variant_key] += 1


def _fits(H, W, kh, kw, sh, sw, pt, pl, Ho, Wo):
    """Every window lies inside the unpadded image: the kernels' 'valid' fast paths."""
    return pt == 0 and pl == 0 and (Ho - 1) * sh + kh <= H and (Wo - 1) * sw + kw <= W


def im2col_f32(x, cols, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld):
    """``cols[(n*Ho + ho)*Wo + wo, (i*kw + j)*C + c] = x[n, ho*sh + i - pt, wo*sw + j - pl, c]``."""
    k = "im2col_f32"
    _windows(k, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo)
    _ints(k, ("ld",), (ld,))
    if ld not in (kh * kw * C, kh * kw * C + 1):
        _fail(k, f"row length ld={ld} must be kh*kw*C={kh * kw * C} (or one more for the bias column)")
    xs = _array(k, "x", x, N * H * W * C)
    cs = _array(k, "cols", cols, N * Ho * Wo * ld, out=True)
    _disjoint(k, (cs,), (xs,))
    _count(k, f"{k}[valid]" if _fits(H, W, kh, kw, sh, sw, pt, pl, Ho, Wo) else f"{k}[padded]")
    lib.im2col_f32(xs[1], cs[1], N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld)


def col2im_f32(cols, dx, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld):
    """``dx = 0``, then every row of ``cols`` added back onto the window it came from."""
    k = "col2im_f32"
    _windows(k, N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo)
    _ints(k, ("ld",), (ld,))
    if ld < kh * kw * C:
        _fail(k, f"row length ld={ld} is shorter than kh*kw*C={kh * kw * C}")
    cs = _array(k, "cols", cols, N * Ho * Wo * ld)
    ds = _array(k, "dx", dx, N * H * W * C, out=True)
    _disjoint(k, (ds,), (cs,))
    _count(k, f"{k}[valid]" if _fits(H, W, kh, kw, sh, sw, pt, pl, Ho, Wo) else f"{k}[padded]")
    lib.col2im_f32(cs[1], ds[1], N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo, ld)


def _is_2x2(ph, pw, sh, sw, pt, pl):
    return ph == pw == sh == sw == 2 and pt == pl == 0


def maxpool_fwd_f32(x, y, arg, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    """``y`` = window maxima, ``arg`` = int32 flat index ``i*pw + j`` of each (first) maximum."""
    k = "maxpool_fwd_f32"
    _windows(k, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo)
    xs = _array(k, "x", x, N * H * W * C)
    ys = _array(k, "y", y, N * Ho * Wo * C, out=True)
    args = _array(k, "arg", arg, N * Ho * Wo * C, dtype=_I32, out=True)
    _disjoint(k, (ys, args), (xs,))
    fast = _is_2x2(ph, pw, sh, sw, pt, pl) and 2 * Ho <= H and 2 * Wo <= W
    _count(k, f"{k}[2x2]" if fast else f"{k}[general]")
    lib.maxpool_fwd_f32(xs[1], ys[1], args[1], N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo)


def maxpool_bwd_f32(dy, arg, dx, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo):
    """``dx = 0``, then ``dy`` added at each window's ``arg`` position (positions outside the
    image, which only a window with no finite value can name, are skipped by the kernel)."""
    k = "maxpool_bwd_f32"
    _windows(k, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo)
    dys = _array(k, "dy", dy, N * Ho * Wo * C)
    args = _array(k, "arg", arg, N * Ho * Wo * C, dtype=_I32)
    dxs = _array(k, "dx", dx, N * H * W * C, out=True)
    _disjoint(k, (dxs,), (dys, args))
    fast = _is_2x2(ph, pw, sh, sw, pt, pl) and 2 * Ho == H and 2 * Wo == W
    _count(k, f"{k}[2x2]" if fast else f"{k}[general]")
    lib.maxpool_bwd_f32(dys[1], args[1], dxs[1], N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo)


def relu_bwd_f32(dy, y, dz):
    """``dz = dy where y > 0 else 0``, all three of one size."""
    k = "relu_bwd_f32"
    n = y.size if isinstance(y, np.ndarray) else -1
    ys = _array(k, "y", y, n)
    dys = _array(k, "dy", dy, n)
    dzs = _array(k, "dz", dz, n, out=True)
    _disjoint(k, (dzs,), (dys, ys))
    _count(k)
    lib.relu_bwd_f32(dys[1], ys[1], dzs[1], n)


def _optimizer_arrays(k, param, grad, slots):
    """Spans of ``param``, ``grad`` and the state arrays, all of ``param``'s size."""
    n = param.size if isinstance(param, np.ndarray) else -1
    ps = _array(k, "param", param, n, out=True)
    gs = _array(k, "grad", grad, n)
    ss = tuple(_array(k, name, s, n, out=True) for name, s in slots)
    _disjoint(k, (ps,) + ss, (gs,))
    return n, ps[1], gs[1], [s[1] for s in ss]


def adam_f32(param, grad, m, v, alpha, beta_1, beta_2, epsilon):
    """Keras's Adam step in place on ``param``, ``m`` and ``v`` (all the size of ``param``)."""
    k = "adam_f32"
    n, p, g, (ma, va) = _optimizer_arrays(k, param, grad, (("m", m), ("v", v)))
    _count(k)
    lib.adam_f32(p, g, ma, va, n, alpha, beta_1, beta_2, epsilon)


def rmsprop_f32(param, grad, v, learning_rate, rho, epsilon):
    """Keras's RMSprop step (no momentum, not centred) in place on ``param`` and ``v``."""
    k = "rmsprop_f32"
    n, p, g, (va,) = _optimizer_arrays(k, param, grad, (("v", v),))
    _count(k)
    lib.rmsprop_f32(p, g, va, n, learning_rate, rho, epsilon)


def _fused_args(k, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo):
    _windows(k, N, H, W, C, kh, kw, sh, sw, 0, 0, Ho, Wo)
    _ints(k, ("F",), (F,))
    if min(N, C, F, Ho, Wo) < 1:
        _fail(k, f"N={N}, C={C}, F={F}, Ho={Ho}, Wo={Wo} must all be >= 1")
    if F > MAX_FUSED_FILTERS:
        _fail(k, f"F={F} filters; the fused kernels hold at most {MAX_FUSED_FILTERS}")
    if not _fits(H, W, kh, kw, sh, sw, 0, 0, Ho, Wo):
        _fail(k, f"{Ho}x{Wo} windows of {kh}x{kw} at strides ({sh}, {sw}) do not fit a {H}x{W} image "
                 "(the fused kernels take 'valid' windows only)")
    return 8 * (-(-F // 8))


def conv_fwd_f32(x, wp, bp, y, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo):
    """``y = im2col(x) @ wp[:, :F] (+ bp[:F])`` for 'valid' windows, without the im2col matrix.

    ``wp`` is the kernel as a ``(kh*kw*C, Fp)`` matrix with ``Fp = 8 * ceil(F / 8)`` columns
    (zeros past ``F``); ``bp`` is ``None`` or ``Fp`` floats.
    """
    k = "conv_fwd_f32"
    fp = _fused_args(k, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo)
    xs = _array(k, "x", x, N * H * W * C)
    ws = _array(k, "wp", wp, kh * kw * C * fp)
    bs = None if bp is None else _array(k, "bp", bp, fp)
    ys = _array(k, "y", y, N * Ho * Wo * F, out=True)
    _disjoint(k, (ys,), (xs, ws, bs))
    _count(k, "conv_fwd_f32[pixels]" if F <= 6 and sw == 1 and C <= 4 and Wo >= 16 else "conv_fwd_f32[filters]")
    lib.conv_fwd_f32(xs[1], ws[1], None if bs is None else bs[1], ys[1], N, H, W, C, kh, kw, sh, sw, F, Ho, Wo)


def conv_dw_f32(x, dy, dwp, dbp, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo):
    """``dwp[:, :F] += im2col(x).T @ dy`` (and ``dbp[:F] += dy.sum(0)``) for 'valid' windows.

    ``dwp`` is ``(kh*kw*C, Fp)``, ``dbp`` ``None`` or ``Fp`` floats, ``Fp = 8 * ceil(F / 8)``.
    """
    k = "conv_dw_f32"
    fp = _fused_args(k, N, H, W, C, kh, kw, sh, sw, F, Ho, Wo)
    xs = _array(k, "x", x, N * H * W * C)
    dys = _array(k, "dy", dy, N * Ho * Wo * F)
    dws = _array(k, "dwp", dwp, kh * kw * C * fp, out=True)
    dbs = None if dbp is None else _array(k, "dbp", dbp, fp, out=True)
    _disjoint(k, (dws,) if dbs is None else (dws, dbs), (xs, dys))
    _count(k)
    lib.conv_dw_f32(xs[1], dys[1], dws[1], None if dbs is None else dbs[1], N, H, W, C, kh, kw, sh, sw, F, Ho, Wo)
