"""``convolab train --data-dir photos/``: a folder of class subfolders as training and validation batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils.py_dataset import PyDataset
from ._common import UsageError


class ScaledBatches(PyDataset):
    """Batches of another dataset with the images divided by 255 (the models train on [0, 1], as
    ``convolab train`` scales the Keras datasets and ``convolab predict`` scales its images)."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        x, y = self.batches[index]
        return np.asarray(x, dtype=np.float32) / np.float32(255.0), y

    def on_epoch_begin(self):
        self.batches.on_epoch_begin()

    def on_epoch_end(self):
        self.batches.on_epoch_end()


def image_size(text):
    """``--image-size``: ``64`` (square) or ``64,48`` / ``64x48`` (height, width)."""
    parts = text.lower().replace("x", ",").split(",")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        import argparse

        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHT,WIDTH in pixels (whole numbers >= 1); got {text!r}")
    return (sizes[0], sizes[0]) if len(sizes) == 1 else tuple(sizes)


def load_image_folder(directory, size, val_split, seed, batch_size, color_mode):
    """``(train, val, class_names)``: scaled batches read with ``image_dataset_from_directory``.

    Raises:
        UsageError: ``directory`` is not a folder of at least two class subfolders.
    """
    from ..utils.image_dataset import image_dataset_from_directory

    root = Path(directory)
    if not root.is_dir():
        raise UsageError(
            f"--data-dir without --dataset expects a folder of class subfolders; "
            f"{str(root)!r} is {'a file' if root.exists() else 'missing'}"
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise UsageError(
            f"--data-dir {str(root)!r} expects one subfolder per class (at least 2); "
            f"got {len(classes)}{': ' + classes[0] if classes else ''}"
        )
    train, val = image_dataset_from_directory(
        root,
        label_mode="int",
        color_mode=color_mode,
        batch_size=batch_size,
        image_size=size,
        seed=seed,
        validation_split=val_split,
        subset="both",
    )
    return ScaledBatches(train), ScaledBatches(val), list(train.class_names)


def predict_all(model, batches):
    """``(outputs, labels)`` of a model over every batch (for the confusion matrix)."""
    outs, labels = [], []
    for i in range(len(batches)):
        x, y = batches[i]
        outs.append(np.asarray(model.predict(x, batch_size=len(x), verbose=0)))
        labels.append(np.asarray(y).reshape(-1))
    return np.concatenate(outs, axis=0), np.concatenate(labels, axis=0)
