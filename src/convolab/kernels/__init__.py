"""Optional compiled kernels, loaded with ctypes; ``None`` when the extension was not built.

``pip install`` compiles ``_ckernels.c`` when a C compiler is present (the build is marked
optional, so installation never fails for lack of one). The ops use these kernels for
float32 arrays and fall back to their NumPy code otherwise; set ``CONVOLAB_NO_CKERNELS=1``
to force the NumPy path (the tests compare the two).
"""
from __future__ import annotations

import ctypes
import importlib.util
import os

_c_int = ctypes.c_int
_ptr = ctypes.c_void_p


def _load():
    if os.environ.get("CONVOLAB_NO_CKERNELS"):
        return None
    try:
        spec = importlib.util.find_spec("convolab.kernels._ckernels")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:
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


def available() -> bool:
    """True when the compiled kernels are loaded."""
    return lib is not None


def ptr(a):
    return a.ctypes.data


def usable(*arrays) -> bool:
    """True when the kernels are loaded and every array is C-contiguous float32."""
    return lib is not None and all(a.dtype == "float32" and a.flags.c_contiguous for a in arrays)
