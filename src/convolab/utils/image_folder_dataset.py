"""``ImageFolderDataset``: batches of images read from disk batch by batch, a ``keras.utils.PyDataset``.

Only the files of the batch asked for are opened, so a folder larger than memory works. With
``shuffle`` the first epoch follows ``file_paths`` (already shuffled once, seeded) and every later
epoch a new permutation from a generator seeded with ``seed``.

Unreadable files. A file that cannot be read as an image (corrupt, truncated, not really an image,
removed since it was listed) is skipped when it is first read, with an ``UnreadableImageWarning``
naming it; it is never deleted or changed. ``len`` (batches per epoch) and ``file_paths`` stay as
they were listed, so ``fit`` sees the same number of steps every epoch; a batch that held skipped
files is that much shorter, and the file is left out, without a new warning, in later epochs.
``skipped_files`` lists the files skipped so far. A batch whose every file is unreadable raises.
"""

from __future__ import annotations

import warnings

import numpy as np

from .image_decode import READ_ERRORS, decode_image
from .py_dataset import PyDataset


class UnreadableImageWarning(UserWarning):
    """An image file could not be read and was skipped (it is left in place)."""


def encode_labels(labels, label_mode, num_classes):
    """Integer labels as Keras gives them per ``label_mode``.

    Returns:
        ``"int"``: int32 ``(N,)``; ``"binary"``: float32 ``(N, 1)``; ``"categorical"``:
        float32 one-hot ``(N, num_classes)``; ``None``: None.
    """
    if label_mode is None:
        return None
    labels = np.asarray(labels, dtype=np.int32)
    if label_mode == "binary":
        return labels.astype(np.float32)[:, None]
    if label_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[labels]
    return labels


class ImageFolderDataset(PyDataset):
    """Batches ``(images, labels)`` (or images alone) of the files in ``file_paths``.

    Args:
        file_paths: image files, in the order of the first epoch.
        labels: int labels, one per file, or None for images alone.
        label_mode: ``"int"``, ``"categorical"``, ``"binary"`` or None.
        class_names: names of the classes (None without labels).
        batch_size: images per batch.
        image_size: ``(height, width)``.
        num_channels: 1, 3 or 4.
        interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio: see ``decode_image``.
        shuffle: a new order every epoch after the first.
        seed: int seed of those orders.

    Shape:
        images float32 ``(B, height, width, num_channels)`` in [0, 255], ``B <= batch_size``;
        labels as ``encode_labels``.
    """

    def __init__(
        self,
        file_paths,
        labels,
        label_mode,
        class_names,
        batch_size,
        image_size,
        num_channels,
        interpolation="bilinear",
        crop_to_aspect_ratio=False,
        pad_to_aspect_ratio=False,
        shuffle=False,
        seed=None,
    ):
        super().__init__()
        self.file_paths = list(file_paths)
        self.class_names = None if class_names is None else list(class_names)
        self.label_mode = label_mode
        self.batch_size = int(batch_size)
        self.image_size = tuple(image_size)
        self.num_channels = num_channels
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.pad_to_aspect_ratio = pad_to_aspect_ratio
        self.shuffle = shuffle
        self.skipped_files = []
        self._skipped = set()
        self._labels = encode_labels(labels, label_mode, len(self.class_names or ()))
        self._order = np.arange(len(self.file_paths))
        self._rng = np.random.default_rng(seed) if shuffle else None

    def __len__(self):
        return -(-len(self.file_paths) // self.batch_size)

    def _read(self, index, path):
        """The image, or None after warning (once per file) that it cannot be read."""
        if path in self._skipped:
            return None
        try:
            return decode_image(
                path,
                self.num_channels,
                self.image_size,
                self.interpolation,
                self.crop_to_aspect_ratio,
                self.pad_to_aspect_ratio,
            )
        except READ_ERRORS as err:
            self.skipped_files.append(path)
            self._skipped.add(path)
            warnings.warn(
                f"image_dataset_from_directory: skipping {path!r}, which cannot be read as an "
                f"image ({type(err).__name__}: {err}); the file is left in place and batch "
                f"{index} of {len(self)} is one image shorter",
                UnreadableImageWarning,
                stacklevel=3,
            )
            return None

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"ImageFolderDataset: a batch index must be an int; got {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"ImageFolderDataset: batch index {index} out of range for {n} batches")
        index = int(index) % n
        chosen = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        images, kept = [], []
        for i in chosen:
            image = self._read(index, self.file_paths[i])
            if image is not None:
                images.append(image)
                kept.append(i)
        if not images:
            names = [self.file_paths[i] for i in chosen]
            raise ValueError(
                f"image_dataset_from_directory: every file of batch {index} is unreadable as an "
                f"image: {names}; fix or move them out of the folder, or use a larger batch_size"
            )
        x = np.stack(images)
        return x if self._labels is None else (x, self._labels[kept])

    def on_epoch_end(self):
        """Draws the next epoch's order when ``shuffle``."""
        if self.shuffle:
            self._order = self._rng.permutation(len(self.file_paths))

    def __repr__(self):
        classes = "no labels" if self.class_names is None else f"{len(self.class_names)} classes"
        return (
            f"<ImageFolderDataset: {len(self.file_paths)} files, {classes}, {len(self)} batches of up to "
            f"{self.batch_size}, images {self.image_size + (self.num_channels,)}>"
        )
