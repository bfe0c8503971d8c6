"""``keras.utils.PyDataset`` (and its older name ``Sequence``): batches by index, for ``fit``.

    class Batches(keras.utils.PyDataset):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):                      # batches per epoch
            return math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, idx):             # one batch: (x, y) or (x, y, sample_weight)
            s = slice(idx * self.batch_size, (idx + 1) * self.batch_size)
            return self.x[s], self.y[s]

    model.fit(Batches(x, y, 32), epochs=5)

``fit`` asks for batches ``0 .. len - 1`` in order each epoch (shuffling is the dataset's
business, as in Keras) and calls ``on_epoch_end`` after each epoch. Batches are loaded in the
training thread: ``workers`` is accepted for compatibility, multiprocessing is refused.
"""

from __future__ import annotations


class PyDataset:
    """Base class for a dataset of batches; implement ``__len__`` and ``__getitem__``.

    Args:
        workers: accepted (batches are loaded in the training thread).
        use_multiprocessing: must be False.
        max_queue_size: accepted.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        if use_multiprocessing:
            raise ValueError(
                f"{type(self).__name__}: use_multiprocessing=True is not supported by convolab; "
                "batches are loaded in the training thread"
            )
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"{type(self).__name__}: `workers` must be an int >= 1; got {workers!r}")
        self.workers = workers
        self.use_multiprocessing = False
        self.max_queue_size = max_queue_size

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: define __getitem__(index) returning one batch")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__}: define __len__() returning the batches per epoch")

    @property
    def num_batches(self):
        return len(self)

    def on_epoch_begin(self):
        """Called before each epoch."""

    def on_epoch_end(self):
        """Called after each epoch (shuffle here, as Keras's examples do)."""


Sequence = PyDataset
