"""The table-driven checks in front of every compiled entry point (kernels/checks.c), one case
per entry point: a valid call runs, and each array made wrong in one way (dtype, one element
short, read-only where written) is refused with a message naming the kernel, the array and
what was expected, the outputs untouched. Plus the layout of the C sources: one file per
family, each listed in kernels.h and built by setup.py and .ci/sanitize.
"""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest

from convolab import kernels
from convolab.kernels import KernelArgumentError
from support.paths import REPO, SRC

KERNELS_DIR = SRC / "convolab" / "kernels"

needs_c = pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")

f32 = np.float32


def _z(*shape, dtype=f32):
    return np.zeros(shape, dtype)


def _r(*shape):
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(f32)


#: per entry point: the arrays (role, array, written?), then the integers and options, as
#: kernels/__init__.py documents them. Small valid calls: 3x3 windows over 5x5x2 images etc.
CASES = {
    "im2col_f32": (
        [("x", _r(1, 5, 5, 2), False), ("cols", _z(9, 18), True)],
        [1, 5, 5, 2, 3, 3, 1, 1, 0, 0, 3, 3, 18, 1],
    ),
    "col2im_f32": (
        [("cols", _r(9, 18), False), ("dx", _z(1, 5, 5, 2), True)],
        [1, 5, 5, 2, 3, 3, 1, 1, 0, 0, 3, 3, 18, 1],
    ),
    "maxpool_fwd_f32": (
        [("x", _r(1, 4, 4, 2), False), ("y", _z(1, 2, 2, 2), True), ("arg", _z(1, 2, 2, 2, dtype=np.int32), True)],
        [1, 4, 4, 2, 2, 2, 2, 2, 0, 0, 2, 2, 1],
    ),
    "maxpool_bwd_f32": (
        [("dy", _r(1, 2, 2, 2), False), ("arg", _z(1, 2, 2, 2, dtype=np.int32), False), ("dx", _z(1, 4, 4, 2), True)],
        [1, 4, 4, 2, 2, 2, 2, 2, 0, 0, 2, 2, 1],
    ),
    "relu_fwd_f32": ([("x", _r(16), False), ("y", _z(16), True)], [math.inf, 1]),
    "relu_bwd_f32": ([("dy", _r(16), False), ("y", _r(16), False), ("dz", _z(16), True)], [math.inf, 1]),
    "adam_f32": (
        [("param", _r(10), True), ("grad", _r(10), False), ("m", _z(10), True), ("v", _z(10), True)],
        [0.1, 0.9, 0.999, 1e-7],
    ),
    "rmsprop_f32": ([("param", _r(10), True), ("grad", _r(10), False), ("v", _z(10), True)], [0.1, 0.9, 1e-7]),
    "conv_fwd_f32": (
        [("x", _r(1, 6, 6, 3), False), ("wp", _r(27, 16), False), ("bp", _r(16), False), ("y", _z(1, 4, 4, 8), True)],
        [1, 6, 6, 3, 3, 3, 1, 1, 8, 4, 4, 0, 0, False, 1],
    ),
    "conv_dw_f32": (
        [("x", _r(1, 6, 6, 3), False), ("dy", _r(1, 4, 4, 8), False), ("dwp", _z(27, 16), True), ("dbp", _z(16), True)],
        [1, 6, 6, 3, 3, 3, 1, 1, 8, 4, 4, 0, 0, 1],
    ),
    "bn_moments_f32": ([("x", _r(6, 4), False), ("mean", _z(4), True), ("var", _z(4), True)], [6, 4, 1]),
    "bn_affine_f32": (
        [
            ("x", _r(6, 4), False),
            ("center", _r(4), False),
            ("scale", _r(4), False),
            ("shift", _r(4), False),
            ("y", _z(6, 4), True),
        ],
        [6, 4, 1],
    ),
    "bn_bwd_f32": (
        [
            ("dy", _r(6, 4), False),
            ("x", _r(6, 4), False),
            ("mean", _r(4), False),
            ("inv_std", _r(4), False),
            ("k", _r(4), False),
            ("dx", _z(6, 4), True),
            ("dgamma", _z(4), True),
            ("dbeta", _z(4), True),
        ],
        [6, 4, 1],
    ),
    "depthwise_fwd_f32": (
        [("x", _r(1, 5, 5, 2), False), ("w", _r(3, 3, 2, 1), False), ("b", _r(2), False), ("y", _z(1, 3, 3, 2), True)],
        [1, 5, 5, 2, 3, 3, 1, 1, 0, 0, 1, 1, 3, 3, 1, 1],
    ),
    "depthwise_dx_f32": (
        [("dy", _r(1, 3, 3, 2), False), ("w", _r(3, 3, 2, 1), False), ("dx", _z(1, 5, 5, 2), True)],
        [1, 5, 5, 2, 3, 3, 1, 1, 0, 0, 1, 1, 3, 3, 1, 1],
    ),
    "depthwise_dw_f32": (
        [
            ("x", _r(1, 5, 5, 2), False),
            ("dy", _r(1, 3, 3, 2), False),
            ("dw", _z(3, 3, 2, 1), True),
            ("db", _z(2), True),
        ],
        [1, 5, 5, 2, 3, 3, 1, 1, 0, 0, 1, 1, 3, 3, 1, 1],
    ),
}


def _case(name):
    if name.startswith("conv_") and not (kernels.lib.fused_supported()):
        pytest.skip("no AVX2+FMA: the fused convolutions refuse every call")
    arrays, rest = CASES[name]
    return [(role, a.copy(), out) for role, a, out in arrays], list(rest)


def _call(name, arrays, rest):
    return getattr(kernels.lib, name)(*[a for _, a, _ in arrays], *rest)


def _fill_outputs(arrays):
    for _, a, out in arrays:
        if out:
            a[...] = 7


def _outputs_untouched(arrays):
    return all(np.all(a == 7) for _, a, out in arrays if out)


def test_every_entry_point_has_a_case():
    assert set(CASES) == set(kernels.ENTRY_POINTS)


@needs_c
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_valid_call_runs(name):
    arrays, rest = _case(name)
    assert _call(name, arrays, rest) is None


@needs_c
@pytest.mark.parametrize("name", sorted(CASES))
def test_docstring_is_the_signature_of_the_python_wrapper(name):
    """The description the checks use names the arguments as kernels/__init__.py does."""
    doc = getattr(kernels.lib, name).__doc__
    m = re.fullmatch(rf"{name}\((.*)\)", doc)
    assert m, doc
    names = [p.split("=")[0] for p in m.group(1).split(", ")]
    assert names == list(inspect.signature(getattr(kernels, name)).parameters), doc
    roles = [role for role, _, _ in CASES[name][0]]
    assert names[: len(roles)] == roles


@needs_c
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_array_of_the_wrong_dtype_is_refused(name):
    arrays, rest = _case(name)
    for i, (role, a, out) in enumerate(arrays):
        bad = list(arrays)
        wrong = a.astype(np.float64 if a.dtype == f32 else np.int64)
        bad[i] = (role, wrong, out)
        _fill_outputs(bad)
        want = "float32" if a.dtype == f32 else "int32"
        with pytest.raises(KernelArgumentError, match=rf"compiled kernel {name}: {role} must be {want}; got format"):
            _call(name, bad, rest)
        assert _outputs_untouched(bad)


@needs_c
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_array_one_element_short_is_refused_with_the_count_it_needed(name):
    arrays, rest = _case(name)
    for i, (role, a, out) in enumerate(arrays):
        bad = list(arrays)
        bad[i] = (role, a.reshape(-1)[:-1].copy(), out)
        _fill_outputs(bad)
        with pytest.raises(KernelArgumentError) as err:
            _call(name, bad, rest)
        msg = str(err.value)
        assert msg.startswith(f"compiled kernel {name}: "), msg
        assert msg.endswith("; nothing was called"), msg
        # the first array checked that disagrees is named, with both counts and where the
        # expected one came from: a formula of the integers, or another array
        m = re.search(r": (\w+) has (\d+) elements; the arguments need (\d+) \((.+)\)", msg)
        assert m, msg
        assert int(m.group(2)) != int(m.group(3))
        assert "=" in m.group(4) or m.group(4).startswith("as many as "), msg
        assert _outputs_untouched(bad)


@needs_c
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_output_read_only_is_refused(name):
    arrays, rest = _case(name)
    for role, a, out in arrays:
        if not out:
            continue
        a.flags.writeable = False
        with pytest.raises(KernelArgumentError, match=rf"{name}: {role} is written to but is read-only"):
            _call(name, arrays, rest)
        a.flags.writeable = True


@needs_c
def test_a_count_mismatch_says_which_integers_gave_the_count():
    arrays, rest = _case("im2col_f32")
    cols = np.empty(5, f32)
    with pytest.raises(
        KernelArgumentError, match=re.escape("cols has 5 elements; the arguments need 162 (N*Ho*Wo*ld = 1*3*3*18)")
    ):
        kernels.lib.im2col_f32(arrays[0][1], cols, *rest)
    arrays, rest = _case("adam_f32")
    with pytest.raises(
        KernelArgumentError, match=re.escape("m has 100 elements; the arguments need 10 (as many as param)")
    ):
        kernels.lib.adam_f32(arrays[0][1], arrays[1][1], _z(100), arrays[3][1], *rest)


@needs_c
def test_a_wrong_number_of_arguments_shows_the_signature():
    arrays, rest = _case("maxpool_fwd_f32")
    with pytest.raises(
        TypeError,
        match=re.escape(
            "maxpool_fwd_f32 takes 15 to 16 arguments, maxpool_fwd_f32(x, y, "
            "arg, N, H, W, C, ph, pw, sh, sw, pt, pl, Ho, Wo, threads=1); got 14"
        ),
    ):
        _call("maxpool_fwd_f32", arrays, rest[:-2])


@needs_c
def test_an_integer_of_another_type_is_named():
    arrays, rest = _case("im2col_f32")
    rest[2] = 5.0
    with pytest.raises(TypeError, match=r"im2col_f32: `W` must be an int; got float"):
        _call("im2col_f32", arrays, rest)
    rest[2] = 2**70
    with pytest.raises(KernelArgumentError, match=r"`W` must be an int in \[0, 2\*\*31\); got one past 2\*\*63"):
        _call("im2col_f32", arrays, rest)
    rest[2] = np.int64(5)  # NumPy integers are ints
    _call("im2col_f32", arrays, rest)


@needs_c
@pytest.mark.parametrize("threads", [0, 65, 2**70])
def test_threads_out_of_range(threads):
    arrays, rest = _case("bn_moments_f32")
    rest[-1] = threads
    with pytest.raises(KernelArgumentError, match=r"bn_moments_f32: threads must be in \[1, 64\]"):
        _call("bn_moments_f32", arrays, rest)


@needs_c
def test_an_optional_bias_may_be_none_and_nothing_else_may():
    arrays, rest = _case("depthwise_fwd_f32")
    args = [a for _, a, _ in arrays]
    args[2] = None
    kernels.lib.depthwise_fwd_f32(*args, *rest)
    args[0] = None
    with pytest.raises(KernelArgumentError, match="x must be a float32 NumPy array; got NoneType"):
        kernels.lib.depthwise_fwd_f32(*args, *rest)


# -- the sources: one file per family -------------------------------------------------------

FAMILIES = (
    "window.c",
    "elementwise.c",
    "batchnorm.c",
    "conv.c",
    "conv_avx2.c",
    "conv_avx512.c",
    "depthwise.c",
    "checks.c",
    "_ckernels.c",
)


def test_kernels_are_split_by_family_and_every_file_is_listed():
    sources = sorted(p.name for p in KERNELS_DIR.glob("*.c"))
    assert sorted(FAMILIES) == sources
    listing = (KERNELS_DIR / "kernels.h").read_text()
    for name in sources:
        assert re.search(rf"^ \*   {re.escape(name)} ", listing, re.M), f"kernels.h does not list {name}"
    for path in KERNELS_DIR.glob("*.[ch]"):  # no 2,770-line unit again
        assert len(path.read_text().splitlines()) < 1000, path.name


def test_setup_and_the_sanitizer_build_every_source():
    root = REPO
    setup = (root / "setup.py").read_text()
    assert 'glob("*.c")' in setup and 'glob("*.h")' in setup
    assert "src/convolab/kernels/*.c" in (root / ".ci" / "sanitize").read_text()
