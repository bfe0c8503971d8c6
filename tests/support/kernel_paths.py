"""Test helpers: run a block on the NumPy reference path (the compiled kernels switched off), or
with the fused convolutions on one instruction set."""

from __future__ import annotations

import contextlib

from convolab import kernels


@contextlib.contextmanager
def numpy_path():
    """``kernels.lib = None`` inside the block (every op looks it up when called), restored after."""
    saved = kernels.lib
    kernels.lib = None
    try:
        yield
    finally:
        kernels.lib = saved


@contextlib.contextmanager
def fused_isa(name):
    """The fused convolutions on instruction set ``name`` (``'avx512'``, ``'avx2'``) inside the
    block; ``None`` changes nothing."""
    if name is None:
        yield
        return
    before = kernels.fused_isa()[0]
    kernels.set_fused_isa(name)
    try:
        yield
    finally:
        kernels.set_fused_isa(before or "best")


#: every instruction set the fused convolutions can use here ([None] where they cannot run:
#: the cases still run, on im2col + BLAS)
ISAS = list(kernels.available_isas()) or [None]


def expected_calls():
    """Entry points and variants a test that runs every ISA in ISAS must reach."""
    expected = set(kernels.ENTRY_POINTS) | set(kernels.VARIANTS)
    for isa, variants in kernels.ISA_VARIANTS.items():
        if isa not in ISAS:
            expected -= set(variants)
    if ISAS == [None]:  # no AVX2+FMA, or CONVOLAB_NO_FUSED_CONV: im2col + BLAS only
        expected = {n for n in expected if not n.startswith(("conv_fwd_f32", "conv_dw_f32"))}
    return expected
