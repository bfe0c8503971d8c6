"""One op, several cores: per-image work split into slices of the batch, each on a thread.

A graph model (ResNet, Inception, anything with BatchNormalization) cannot be cut into
independent shards as :mod:`convolab.models.parallel` cuts the lesson's stacks: a
BatchNormalization needs the statistics of the whole batch in the middle of the pass. So here
each *op* is parallel instead, as PyTorch's and TensorFlow's CPU kernels are: a convolution
splits its batch into ``k`` contiguous slices, each thread computes its slice's rows of the
output (or input gradient) in place, and the kernel gradient is the sum of the slices'
partial gradients, added in a fixed order (bitwise repeatable for a given thread count).

The split is active only inside :func:`batch_threads`, which the training, evaluation and
prediction loops enter, and only on the thread that entered it; BLAS runs on one thread
there (the slices are the parallelism; two pools would fight for the same cores). Outside it,
every op runs whole on the calling thread, exactly as before.

NumPy, BLAS and convolab's compiled kernels release the GIL, so the slices run at the same time.

Two ways to split:

- :func:`kernel_threads`, for an op that is one call of a compiled kernel: the kernel splits
  itself over its own threads (``kernels/pool.h``, ``threads=`` on each entry point). The
  hand-off is a store a spinning worker sees within a microsecond.
- :func:`spans` and :func:`run`, for anything else (NumPy and BLAS calls, several kernels in
  a row): Python threads, 49 to 57 us a hand-off here (``benchmarks/handoff.py``).
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

#: an op is split only when each slice carries at least this much arithmetic (about 40 us
#: on one core), so the hand-off (about 20 us) stays small against the work
MIN_SLICE_FLOPS = 4e6
#: the same for a slice handed to the kernels' own threads (about 4 us on one core): their
#: hand-off costs about a microsecond, not tens
MIN_KERNEL_SLICE_FLOPS = 4e5
#: the most bytes of window matrix one chunk of a slice writes: it must stay in the caches
#: (L2 is 1 MiB a core here) between the im2col that writes it and the product that reads it
CHUNK_BYTES = 2 << 20

_state = {"n": 1, "owner": None, "pool": None}
_lock = threading.Lock()


def _blas_single_threaded():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its own threads
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@contextlib.contextmanager
def batch_threads(n_threads):
    """Let the ops called on this thread split their batch over ``n_threads`` threads.

    Re-entering (a fit inside a callback of another fit, a predict inside fit) keeps the
    outer setting. ``n_threads`` below 2 leaves every op whole.
    """
    with _lock:
        outer = _state["owner"] is not None
        if not outer and n_threads >= 2:
            _state["n"] = int(n_threads)
            _state["owner"] = threading.get_ident()
            if _state["pool"] is None or _state["pool"]._max_workers < n_threads - 1:
                if _state["pool"] is not None:
                    _state["pool"].shutdown(wait=False)
                _state["pool"] = ThreadPoolExecutor(max_workers=n_threads - 1, thread_name_prefix="convolab-op")
    if outer or n_threads < 2:
        yield
        return
    try:
        with _blas_single_threaded():
            yield
    finally:
        with _lock:
            _state["n"] = 1
            _state["owner"] = None


def spans(n_images, flops, bytes_per_image=0):
    """Contiguous ``(lo, hi)`` slices of a batch of ``n_images`` for an op of ``flops``, or ``None``.

    ``None`` (run the op whole) outside :func:`batch_threads`, on another thread, or when a
    slice would carry less than :data:`MIN_SLICE_FLOPS`. With ``bytes_per_image`` (the
    temporary an image's share of the op writes and reads back, such as its rows of the
    im2col matrix), each thread's slice is cut further into chunks of at most
    :data:`CHUNK_BYTES`, which :func:`run` takes one after another on that thread, so that a
    chunk's temporary is still in the cache when it is read back.
    """
    n = _state["n"]
    if n < 2 or _state["owner"] != threading.get_ident() or n_images < 2:
        return None
    k = int(min(n, n_images, flops // MIN_SLICE_FLOPS if MIN_SLICE_FLOPS > 0 else n))
    if k < 2:
        return None
    per_thread = -(-n_images // k)
    chunks = max(1, -(-per_thread * bytes_per_image // CHUNK_BYTES)) if bytes_per_image else 1
    total = int(min(n_images, k * chunks))
    bounds = [n_images * i // total for i in range(total + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(total)]


def kernel_threads(n_images, flops):
    """How many threads a compiled kernel should split a batch of ``n_images`` over (its
    ``threads=`` argument) for an op of ``flops``: 1 outside :func:`batch_threads`, on another
    thread, or when a part would carry less than :data:`MIN_KERNEL_SLICE_FLOPS`."""
    n = _state["n"]
    if n < 2 or _state["owner"] != threading.get_ident() or n_images < 2:
        return 1
    return int(max(1, min(n, n_images, flops // MIN_KERNEL_SLICE_FLOPS if MIN_KERNEL_SLICE_FLOPS > 0 else n)))


def run(fn, parts):
    """``[fn(lo, hi) for (lo, hi) in parts]``, results in slice order. The parts are dealt to the
    threads in contiguous runs (one run each), the first run on the calling thread."""
    pool = _state["pool"]
    n = max(1, min(_state["n"], len(parts)))
    cuts = [len(parts) * i // n for i in range(n + 1)]
    runs = [parts[cuts[i] : cuts[i + 1]] for i in range(n)]

    def work(group):
        return [fn(lo, hi) for lo, hi in group]

    futures = [pool.submit(work, group) for group in runs[1:]]
    first = work(runs[0])
    return first + [r for f in futures for r in f.result()]


def over_batch(n_images, flops, fn):
    """``fn(lo, hi)`` on slices of a batch of ``n_images`` as :func:`spans` cuts it (one thread
    each), or ``fn(0, n_images)`` on the calling thread where it cuts nothing. For ops whose
    slices write disjoint rows of their outputs and return nothing."""
    parts = spans(n_images, flops)
    if parts is None:
        fn(0, n_images)
    else:
        run(fn, parts)


def spans_threads():
    """How many threads the current :func:`batch_threads` splits over (1 outside one)."""
    return _state["n"] if _state["owner"] == threading.get_ident() else 1
