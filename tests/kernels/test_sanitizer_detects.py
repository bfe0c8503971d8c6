"""Proof that ``.ci/sanitize``'s build catches an out-of-bounds write (and read).

A sanitizer step that silently loads the normal build (or a build whose reports go nowhere)
would pass every test and prove nothing. So, when this process runs under the sanitized
kernels (``CONVOLAB_CKERNELS_LIB`` set and libasan in ``LD_PRELOAD``), a child process calls
the bare C symbol ``im2col_f32`` through ctypes, past the checked entry points, with an output one row too
small, and must die with an AddressSanitizer report; the same for the AVX-512 convolution loops
(``conv_fwd_f32`` writing past its output, ``conv_dw_f32`` reading past its image), whose whole
vectors go through memcpy so that the sanitizer sees them.

Skipped everywhere else, except that ``.ci/sanitize`` sets ``CONVOLAB_REQUIRE_SANITIZER=1``,
under which a missing sanitizer is a failure, not a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from convolab import kernels

_LIB = os.environ.get("CONVOLAB_CKERNELS_LIB", "")
_SANITIZED = bool(_LIB) and "asan" in os.environ.get("LD_PRELOAD", "")

_CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    from convolab import kernels
    import ctypes
    assert kernels.lib is not None and kernels.lib.__file__ == os.environ["CONVOLAB_CKERNELS_LIB"], kernels.lib
    which = sys.argv[1]
    raw = getattr(ctypes.CDLL(kernels.lib.__file__), which)  # the bare C symbol, past the checks
    x = np.ones((1, 6, 6, 3), np.float32)
    if which == "im2col_f32":
        raw.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_int] * 13
        # 3x3 windows, stride 1, 'valid': 4x4 = 16 rows of 27 floats; one row short
        cols = np.empty((15, 27), np.float32)
        raw(x.ctypes.data, cols.ctypes.data, 1, 6, 6, 3, 3, 3, 1, 1, 0, 0, 4, 4, 27)
    else:  # the AVX-512 convolution loops (the CPU must have them: the test checks)
        kernels.set_fused_isa("avx512")
        raw.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 11
        wp = np.ones((27, 16), np.float32)
        if which == "conv_fwd_f32":  # y of 4x4 pixels x 16 filters, one pixel short: a whole-vector store
            y = np.empty((15, 16), np.float32)
            raw(x.ctypes.data, wp.ctypes.data, None, y.ctypes.data, 1, 6, 6, 3, 3, 3, 1, 1, 16, 4, 4)
        else:  # conv_dw_f32 reading an image one row short
            short = np.ones((1, 5, 6, 3), np.float32)
            dy = np.ones((16, 16), np.float32)
            raw(short.ctypes.data, dy.ctypes.data, wp.ctypes.data, None, 1, 6, 6, 3, 3, 3, 1, 1, 16, 4, 4)
    print("NOT DETECTED")
""")


def _without_log_path(options):
    """The child's report must reach its stderr, not the files ``.ci/sanitize`` collects."""
    return ":".join(o for o in options.split(":") if o and not o.startswith("log_path="))


@pytest.mark.parametrize("kernel,access", [("im2col_f32", "WRITE"), ("conv_fwd_f32", "WRITE"), ("conv_dw_f32", "READ")])
def test_sanitized_build_reports_out_of_bounds_write(kernel, access):
    if not _SANITIZED:
        if os.environ.get("CONVOLAB_REQUIRE_SANITIZER") == "1":
            pytest.fail(
                "CONVOLAB_REQUIRE_SANITIZER=1 but CONVOLAB_CKERNELS_LIB is unset or libasan "
                f"is not in LD_PRELOAD ({os.environ.get('LD_PRELOAD')!r})"
            )
        pytest.skip("runs only under the sanitizer build (.ci/sanitize)")
    assert kernels.lib is not None and kernels.lib.__file__ == _LIB
    if kernel != "im2col_f32" and "avx512" not in kernels.available_isas():
        pytest.skip("this CPU has no AVX-512: the AVX-512 loops cannot run")
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = _without_log_path(env.get("ASAN_OPTIONS", ""))
    proc = subprocess.run([sys.executable, "-c", _CHILD, kernel], env=env, capture_output=True, text=True, timeout=120)
    assert "NOT DETECTED" not in proc.stdout, "the out-of-bounds access went unreported"
    assert proc.returncode != 0, proc.stderr[-4000:]
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in proc.stderr, proc.stderr[-4000:]
    assert f"{access} of size" in proc.stderr, proc.stderr[-4000:]
    assert kernel.rsplit("_", 1)[0] in proc.stderr, proc.stderr[-4000:]  # the report names the kernel


# -- defects only a sanitizer sees -------------------------------------------------------------
# An out-of-bounds write lands in memory the test does not look at: in a normal build the test
# may pass, or fail elsewhere, or glibc aborts later on a corrupted heap. Under .ci/sanitize the
# write itself stops the run with a report naming the kernel and the line.


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")
@pytest.mark.parametrize(
    "shape,pool,strides",
    [
        ((2, 4, 5, 3), (3, 3), (1, 1)),  # 'same' pads 1 before: pt = pl = 1
        ((2, 5, 5, 2), (3, 3), (2, 2)),  # pt = pl = 1 at stride 2
        ((1, 3, 4, 1), (2, 3), (1, 1)),  # pt = 0, pl = 1
        ((1, 6, 6, 4), (4, 4), (2, 2)),  # pt = pl = 1, 4x4 windows
    ],
)
def test_max_pool_backward_drops_all_neg_inf_windows_that_start_in_the_padding(shape, pool, strides):
    """maxpool_bwd_f32's general path: a window whose values are all -inf keeps arg 0, its
    top-left corner. Where TensorFlow's 'same' split pads before the image (pt or pl > 0, so
    windows of 3 and more), that corner is a padded pixel at row or column -1, and an unchecked
    backward adds the gradient before the image: before the array for the first image, into
    the previous image for the others. (tests/kernels/test_kernel_boundary.py's 2x2/2 case pads only
    after the image, where arg 0 is always a real pixel.)"""
    from convolab.nn import max_pool_backward, max_pool_forward

    x = np.full(shape, -np.inf, dtype=np.float32)
    x[:, -1, -1, :] = 1.0  # one finite pixel, far from the windows that start in the padding
    y, cache = max_pool_forward(x, pool, strides, "same")
    dy = np.ones_like(y)
    dx = max_pool_backward(dy, cache)
    _, cache64 = max_pool_forward(x.astype(np.float64), pool, strides, "same")
    dx64 = max_pool_backward(dy.astype(np.float64), cache64)
    np.testing.assert_array_equal(dx, dx64)
