"""The compiled kernels' own threads (kernels/pool.h), through the public entry points: a call
split over ``threads`` parts gives what one part gives, from any number of callers at once, in a
forked child, and for every ``threads`` the checks allow; and the ReLU kernels against NumPy."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from convolab import kernels
from convolab.kernels import KernelArgumentError

pytestmark = pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")


def _maxpool(x, threads):
    n, h, w, c = x.shape
    y = np.empty((n, h // 2, w // 2, c), np.float32)
    arg = np.empty(y.shape, np.int32)
    kernels.maxpool_fwd_f32(x, y, arg, n, h, w, c, 3, 3, 2, 2, 1, 1, h // 2, w // 2, threads=threads)
    return y, arg


def _depthwise_grads(x, dy, threads):
    n, h, w, c = x.shape
    dw = np.empty((3, 3, c, 2), np.float32)
    db = np.empty(2 * c, np.float32)
    kernels.depthwise_dw_f32(x, dy, dw, db, n, h, w, c, 3, 3, 1, 1, 1, 1, 1, 1, h, w, 2, threads=threads)
    return dw, db


@pytest.mark.parametrize("threads", [1, 2, 3, 7, 64])
def test_any_thread_count_gives_the_whole_batchs_answer(threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8, 8, 3)).astype(np.float32)
    y1, a1 = _maxpool(x, 1)
    y, a = _maxpool(x, threads)  # more threads than images: one part an image
    np.testing.assert_array_equal(y, y1)
    np.testing.assert_array_equal(a, a1)
    dy = rng.standard_normal((5, 8, 8, 6)).astype(np.float32)
    dw1, db1 = _depthwise_grads(x, dy, 1)
    dw, db = _depthwise_grads(x, dy, threads)
    # the parts' sums added in part order: the same to rounding, and the same bits every time
    np.testing.assert_allclose(dw, dw1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, db1, rtol=1e-5, atol=1e-5)
    again = _depthwise_grads(x, dy, threads)
    assert np.array_equal(again[0], dw) and np.array_equal(again[1], db)


@pytest.mark.parametrize("bad", [0, -1, 65])
def test_thread_counts_outside_the_pool_are_refused(bad):
    x = np.ones((2, 4, 4, 1), np.float32)
    with pytest.raises(KernelArgumentError, match=r"threads must be in \[1, 64\]"):
        _maxpool(x, bad)
    with pytest.raises(KernelArgumentError, match="threads must be in"):
        kernels.relu_fwd_f32(x, np.empty_like(x), threads=bad)


def test_split_calls_count_their_parts():
    before = kernels.pool_counts()
    _maxpool(np.ones((6, 4, 4, 2), np.float32), 3)
    _maxpool(np.ones((2, 4, 4, 2), np.float32), 3)  # two images: two parts
    _maxpool(np.ones((6, 4, 4, 2), np.float32), 1)  # whole: not counted
    after = kernels.pool_counts()
    assert after["jobs"] - before["jobs"] == 2 and after["parts"] - before["parts"] == 5
    assert after["workers"] >= 2


def test_callers_on_several_python_threads_at_once():
    """One job at a time runs on the workers; a caller that finds the pool busy runs its parts
    itself. Either way every caller gets its own batch's answer."""
    rng = np.random.default_rng(1)
    batches = [rng.standard_normal((4, 10, 10, 4)).astype(np.float32) for _ in range(4)]
    want = [_maxpool(x, 1)[0] for x in batches]
    errors = []

    def work(i):
        for _ in range(50):
            y, _ = _maxpool(batches[i], 2)
            if not np.array_equal(y, want[i]):
                errors.append(i)
                return

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_workers():
    x = np.random.default_rng(2).standard_normal((4, 6, 6, 2)).astype(np.float32)
    want = _maxpool(x, 1)[0]
    _maxpool(x, 2)  # the parent's workers exist before the fork
    pid = os.fork()
    if pid == 0:  # the child: its pool has no workers until it splits a call
        code = 1
        try:
            code = 0 if np.array_equal(_maxpool(x, 2)[0], want) and kernels.pool_counts()["workers"] >= 1 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


SPECIAL = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, 1e-45, -1e-45, 3.0, 6.0, 6.5, -2.0, 5.999999], np.float32)


@pytest.mark.parametrize("cap", [np.inf, 6.0, 0.5])
@pytest.mark.parametrize("threads", [1, 3])
def test_relu_kernels_against_numpy(cap, threads):
    """relu_fwd_f32 = min(max(x, 0), cap) with NaN kept (NumPy's maximum and minimum keep it);
    relu_bwd_f32 passes dy where 0 < y < cap. Odd lengths reach the parts' ragged ends."""
    rng = np.random.default_rng(3)
    x = np.concatenate([SPECIAL, rng.standard_normal(1000).astype(np.float32) * 8])[:1003]
    y = np.empty_like(x)
    kernels.relu_fwd_f32(x, y, cap, threads=threads)
    np.testing.assert_array_equal(y, np.minimum(np.maximum(x, np.float32(0)), np.float32(cap)))
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dz = np.empty_like(x)
    kernels.relu_bwd_f32(dy, y, dz, cap, threads=threads)
    np.testing.assert_array_equal(dz, np.where((y > 0) & (y < cap), dy, np.float32(0)))


def test_relu6_backward_on_the_kernel_equals_numpy():
    from convolab.nn import activations

    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, 5, 5, 7)) * 5).astype(np.float32)
    x[0, 0, 0, :3] = [6.0, 0.0, np.nan]
    dy = rng.standard_normal(x.shape).astype(np.float32)
    calls = kernels.calls
    y, cache = activations.relu_forward(x, max_value=6.0)
    dz = activations.relu_backward(dy, cache)
    reached = kernels.calls - calls
    assert reached["relu_fwd_f32"] == 1 and reached["relu_bwd_f32"] == 1
    x64 = x.astype(np.float64)
    y64, c64 = activations.relu_forward(x64, max_value=6.0)  # NumPy (float64 has no kernel)
    np.testing.assert_array_equal(y, y64.astype(np.float32))
    np.testing.assert_array_equal(dz, activations.relu_backward(dy.astype(np.float64), c64).astype(np.float32))


def test_concatenate_gradient_pieces_are_contiguous():
    from convolab.autodiff import functions

    rng = np.random.default_rng(5)
    g = rng.standard_normal((4, 3, 3, 9)).astype(np.float32)
    pieces = functions._split_contiguous(g, np.array([2, 7]), -1)
    assert [p.shape[-1] for p in pieces] == [2, 5, 2]
    assert all(p.flags.c_contiguous for p in pieces)
    for got, want in zip(pieces, np.split(g, [2, 7], axis=-1)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("spin_us", ["0", "50"])
def test_workers_that_sleep_at_once_still_take_every_job(spin_us):
    """CONVOLAB_SPIN_US=0: the workers sleep after each job and the next one wakes them (the
    condition-variable path); a short spin covers both paths. A fresh process reads the setting."""
    import subprocess
    import sys

    code = (
        "import numpy as np, time\n"
        "from convolab import kernels\n"
        "x = np.random.default_rng(0).standard_normal((8, 6, 6, 4)).astype(np.float32)\n"
        "want = np.empty_like(x); kernels.relu_fwd_f32(x, want, threads=1)\n"
        "for i in range(200):\n"
        "    y = np.empty_like(x); kernels.relu_fwd_f32(x, y, threads=2)\n"
        "    assert np.array_equal(y, want), i\n"
        "    if i % 50 == 0: time.sleep(0.002)  # longer than any spin: the workers are asleep\n"
        "print(kernels.pool_counts()['jobs'])\n"
    )
    env = dict(os.environ, CONVOLAB_SPIN_US=spin_us)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == 200


def test_relu_entry_points_check_their_arrays():
    x = np.ones(40, np.float32)
    with pytest.raises(KernelArgumentError, match="relu_fwd_f32.*y overlaps x"):
        kernels.relu_fwd_f32(x, x)  # in place is refused
    with pytest.raises(KernelArgumentError, match="relu_fwd_f32.*y has 39 elements; the arguments need 40"):
        kernels.relu_fwd_f32(x, np.empty(39, np.float32))
    with pytest.raises(KernelArgumentError, match="cap must be >= 0"):
        kernels.relu_fwd_f32(x, np.empty_like(x), -1.0)
    with pytest.raises(KernelArgumentError, match="relu_bwd_f32.*dz overlaps dy"):
        kernels.relu_bwd_f32(x, np.ones(40, np.float32), x)
    with pytest.raises(KernelArgumentError, match="cap must be > 0"):
        kernels.relu_bwd_f32(x, x.copy(), np.empty_like(x), 0.0)
    with pytest.raises(KernelArgumentError, match="relu_bwd_f32.*dy has 40 elements; the arguments need 20"):
        kernels.relu_bwd_f32(x, np.ones(20, np.float32), np.empty(20, np.float32))
