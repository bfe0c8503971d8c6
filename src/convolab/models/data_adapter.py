"""Batches for fit, evaluate and predict, from arrays, a ``keras.utils.PyDataset`` or a generator.

The one batch iterator the loop uses: each yields ``(x, y, sample_weight)`` batches already
checked and converted for the model (``y`` and ``sample_weight`` ``None`` where absent).

On the GPU the batches come out as GPU arrays. Arrays go there once, whole, when they fit in
``CONVOLAB_GPU_DATA_FRACTION`` of the free GPU memory (:func:`to_device_once`; as fast GPU
trainers keep the whole set resident), else one batch at a time; a batch source's batches
are copied as they come.
"""

from __future__ import annotations

import collections.abc
import inspect
import itertools

from .. import _gpu, backend
from ..utils.py_dataset import PyDataset


def is_batch_source(x) -> bool:
    """True for a PyDataset/Sequence or an iterator/generator of batches (not arrays or lists)."""
    return isinstance(x, PyDataset) or inspect.isgenerator(x) or isinstance(x, collections.abc.Iterator)


def _take(x, index):
    """Rows ``index`` of an array, or of each array in a list or dict (``None`` entries stay ``None``)."""
    if x is None:
        return None
    if isinstance(x, dict):
        return {k: None if a is None else a[index] for k, a in x.items()}
    if isinstance(x, (list, tuple)):
        return [None if a is None else a[index] for a in x]
    return x[index]


def _count(x):
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    return len(x[0]) if isinstance(x, (list, tuple)) else len(x)


def _map(fn, x):
    if isinstance(x, dict):
        return {k: None if a is None else fn(a) for k, a in x.items()}
    if isinstance(x, (list, tuple)):
        return [None if a is None else fn(a) for a in x]
    return None if x is None else fn(x)


def _nbytes(x):
    if isinstance(x, dict):
        return sum(_nbytes(a) for a in x.values())
    if isinstance(x, (list, tuple)):
        return sum(_nbytes(a) for a in x)
    return 0 if x is None or backend.is_device_array(x) else int(getattr(x, "nbytes", 0))


def to_device_once(x, y=None, sample_weight=None):
    """``(x, y, sample_weight, put)``: on the GPU, the arrays copied there whole if they fit
    (``put`` is then ``None``), else left on the host with ``put = backend.to_device`` for
    each batch. On the CPU everything is returned as it is."""
    if not backend.on_gpu():
        return x, y, sample_weight, None
    if _gpu.fits(_nbytes(x) + _nbytes(y) + _nbytes(sample_weight)):
        move = backend.to_device
        return _map(move, x), _map(move, y), _map(move, sample_weight), None
    return x, y, sample_weight, backend.to_device


def put_batch(batch, put):
    """Apply ``put`` to each array of an ``(x, y, sample_weight)`` batch (``None``: as it is)."""
    if put is None:
        return batch
    return tuple(_map(put, part) for part in batch)


class ArrayBatches:
    """Batches of prepared arrays; a new permutation each epoch when ``shuffle``."""

    def __init__(self, x, y, sample_weight, batch_size, shuffle=False, rng=None, put=None):
        self.x, self.y, self.sw = x, y, sample_weight
        self.put = put  # None, or a function copying each batch to the device
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = rng
        self.n = _count(x)
        self.steps = -(-self.n // batch_size)
        self.exhausted = False

    def epoch(self):
        # the permutation is drawn on the host from convolab's generator (the same shuffles on
        # CPU and GPU for one seed), and copied once to where the arrays are
        order = self.rng.permutation(self.n) if self.shuffle else None
        first = (
            next(iter(self.x.values()))
            if isinstance(self.x, dict)
            else self.x[0]
            if isinstance(self.x, (list, tuple))
            else self.x
        )
        if order is not None and backend.is_device_array(first):
            order = backend.get_array_module(first).asarray(order)
        b = self.batch_size
        for step in range(self.steps):
            idx = slice(step * b, (step + 1) * b) if order is None else order[step * b : (step + 1) * b]
            yield put_batch(
                (
                    _take(self.x, idx),
                    None if self.y is None else _take(self.y, idx),
                    None if self.sw is None else self.sw[idx],
                ),
                self.put,
            )

    def on_epoch_end(self):
        pass


class SourceBatches:
    """Batches from a PyDataset (by index, ``len`` per epoch) or an iterator (``steps`` per epoch,
    or until it runs out). ``prepare(batch) -> (x, y, sample_weight)`` checks each batch."""

    def __init__(self, source, prepare, steps=None, what="fit"):
        self.source = source
        self.prepare = prepare
        self.put = backend.to_device if backend.on_gpu() else None
        self.what = what
        if isinstance(source, PyDataset):
            n = len(source)
            self.steps = n if steps is None else min(int(steps), n)
            self._iterator = None
        else:
            self.steps = None if steps is None else int(steps)
            self._iterator = iter(source)
        self.exhausted = False

    def epoch(self):
        if self._iterator is None:
            self.source.on_epoch_begin()
            for i in range(self.steps):
                yield put_batch(self.prepare(self.source[i]), self.put)
            return
        for i in itertools.count():
            if self.steps is not None and i >= self.steps:
                return
            try:
                batch = next(self._iterator)
            except StopIteration:
                self.exhausted = True
                return
            yield put_batch(self.prepare(batch), self.put)

    def on_epoch_end(self):
        if self._iterator is None:
            self.source.on_epoch_end()


def unpack(batch, model, what, need_y=True):
    """``(x, y, sample_weight)`` from a batch a data source gave: a tuple of 1 to 3 items, or x."""
    if isinstance(batch, tuple):
        if not 1 <= len(batch) <= 3:
            raise ValueError(
                f"{model.describe()}.{what}: a batch must be (x,), (x, y) or (x, y, sample_weight); "
                f"got a tuple of {len(batch)}"
            )
        x, y, sw = (tuple(batch) + (None, None))[:3]
    else:
        x, y, sw = batch, None, None
    if need_y and y is None:
        raise ValueError(
            f"{model.describe()}.{what}: each batch must carry targets, (x, y) or "
            f"(x, y, sample_weight); got {type(batch).__name__}"
        )
    return x, y, sw
