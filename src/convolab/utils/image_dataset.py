"""``keras.utils.image_dataset_from_directory``: a folder of class subfolders as a dataset for ``fit``.

    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        "pets/", validation_split=0.2, subset="both", seed=1337, image_size=(180, 180), batch_size=32)
    model.fit(train_ds, validation_data=val_ds, epochs=5)

Keras 3's arguments, file order, class names, labels, split and messages (see ``directory_index``);
the result is an ``ImageFolderDataset`` (a ``keras.utils.PyDataset``) that reads images batch by
batch, where Keras returns a ``tf.data.Dataset``. Differences: resizing is Pillow's (see
``image_decode``), ``batch_size=None`` and ``data_format``/``format`` are not supported, unreadable
files are skipped with a warning (see ``image_folder_dataset``), and a ``validation_split`` that
leaves one side empty raises instead of giving an empty or a complete subset.
"""

from __future__ import annotations

import os

import numpy as np

from .directory_index import ALLOWLIST_FORMATS, index_directory, training_or_validation_split
from .image_decode import CHANNELS, KERAS_ONLY_INTERPOLATIONS, RESAMPLING
from .image_folder_dataset import ImageFolderDataset

_WHO = "image_dataset_from_directory"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _int_like(value):
    """``value`` as a Python int when it is a NumPy integer, else unchanged."""
    return int(value) if hasattr(value, "__index__") and not isinstance(value, bool) else value


def _check_labels(labels, label_mode, class_names):
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)) or not all(_is_int(_int_like(v)) for v in labels):
            raise ValueError(
                f"{_WHO}: `labels` must be 'inferred', None, or a list/tuple of int labels, one per "
                f"image file in sorted path order; got {labels!r}"
            )
        if class_names is not None:
            raise ValueError(
                f"{_WHO}: `class_names` goes with labels='inferred' only (with a list of labels the "
                f"class names are the sorted labels); got labels={labels!r}, "
                f"class_names={class_names!r}"
            )
        if min(labels, default=0) < 0:
            raise ValueError(f"{_WHO}: labels must be >= 0; got {min(labels)}")
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(f"{_WHO}: `label_mode` must be 'int', 'categorical', 'binary' or None; got {label_mode!r}")
    if labels is None and class_names is not None:
        raise ValueError(f"{_WHO}: with labels=None (no labels) `class_names` must be None; got {class_names!r}")
    if class_names is not None and (
        isinstance(class_names, str) or not all(isinstance(name, str) for name in class_names)
    ):
        raise ValueError(f"{_WHO}: `class_names` must be a list of subfolder names; got {class_names!r}")


def _check_image_size(image_size):
    if _is_int(image_size):
        image_size = (image_size, image_size)
    if (
        not isinstance(image_size, (list, tuple))
        or len(image_size) != 2
        or not all(_is_int(v) and v > 0 for v in image_size)
    ):
        raise ValueError(f"{_WHO}: `image_size` must be (height, width), two ints > 0; got {image_size!r}")
    return tuple(image_size)


def _check_interpolation(interpolation):
    name = interpolation.lower() if isinstance(interpolation, str) else interpolation
    if name in KERAS_ONLY_INTERPOLATIONS:
        raise ValueError(
            f"{_WHO}: interpolation={interpolation!r} is a TensorFlow kernel that Pillow, which "
            f"convolab resizes with, does not have; use one of {tuple(RESAMPLING)}"
        )
    if name not in RESAMPLING:
        raise ValueError(f"{_WHO}: `interpolation` must be one of {tuple(RESAMPLING)}; got {interpolation!r}")
    return name


def _check_split(validation_split, subset, shuffle, seed):
    if validation_split is not None and (
        isinstance(validation_split, bool) or not isinstance(validation_split, (int, float))
    ):
        raise ValueError(f"{_WHO}: `validation_split` must be a float between 0 and 1; got {validation_split!r}")
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"{_WHO}: `validation_split` must be between 0 and 1 (exclusive); got {validation_split}")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f"{_WHO}: `subset` must be 'training', 'validation', 'both' or None; got {subset!r}")
    if bool(validation_split) != bool(subset):
        raise ValueError(
            f"{_WHO}: `subset` and `validation_split` go together: set both or neither; got "
            f"validation_split={validation_split!r}, subset={subset!r}"
        )
    if seed is not None and not _is_int(_int_like(seed)):
        raise ValueError(f"{_WHO}: `seed` must be an int or None; got {seed!r}")
    if validation_split and shuffle and seed is None:
        raise ValueError(
            f"{_WHO}: with validation_split and shuffle=True, pass a `seed` (an int), so that the "
            "training and the validation call shuffle the files alike and do not overlap"
        )


def image_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    color_mode="rgb",
    batch_size=32,
    image_size=(256, 256),
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    interpolation="bilinear",
    follow_links=False,
    crop_to_aspect_ratio=False,
    pad_to_aspect_ratio=False,
    verbose=True,
):
    """A dataset of image batches from a folder, labelled by subfolder, as Keras 3's.

    Args:
        directory: with ``labels="inferred"``, a folder with one subfolder per class (images in
            nested folders count for the class of their top subfolder); otherwise any folder.
        labels: ``"inferred"``, None (images only) or a list/tuple of int labels, one per image
            file in sorted path order.
        label_mode: ``"int"`` (int32 ``(B,)``), ``"categorical"`` (float32 one-hot ``(B, K)``),
            ``"binary"`` (float32 ``(B, 1)``, two classes) or None (images only).
        class_names: with ``labels="inferred"``, the subfolders to use, in this label order.
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"`` (1, 3 or 4 channels).
        batch_size: images per batch (an int; the last batch may be smaller).
        image_size: ``(height, width)`` every image is resized to (an int means square).
        shuffle: shuffle the file list (seeded) and reshuffle every epoch; False: sorted order.
        seed: int seed for the shuffles; required with ``validation_split`` and ``shuffle``.
        validation_split: fraction of the files kept for validation (the last ones of the list).
        subset: ``"training"``, ``"validation"`` or ``"both"`` (returns ``[train, val]``).
        interpolation: ``"bilinear"``, ``"nearest"``, ``"bicubic"``, ``"area"``, ``"lanczos3"``.
        follow_links: walk into folders that are symbolic links.
        crop_to_aspect_ratio: crop the largest centred window of the target shape, then resize.
        pad_to_aspect_ratio: resize to fit, then pad with zeros to the target shape.
        verbose: print ``Found N files belonging to K classes.``

    Returns:
        An ``ImageFolderDataset`` with ``class_names``, ``file_paths`` and ``len`` = batches per
        epoch; ``[train, val]`` for ``subset="both"``.

    Shape:
        images float32 ``(B, image_size[0], image_size[1], channels)`` with values in [0, 255].

    Raises:
        ValueError: bad arguments, a missing or empty folder, a wrong number of labels.
    """
    if isinstance(directory, bytes) or not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"{_WHO}: `directory` must be a str or path; got {type(directory).__name__}")
    directory = os.fspath(directory)
    _check_labels(labels, label_mode, class_names)
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    elif labels != "inferred":
        labels = [int(v) for v in labels]
    if color_mode not in CHANNELS:
        raise ValueError(f"{_WHO}: `color_mode` must be one of {tuple(CHANNELS)}; got {color_mode!r}")
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(
            f"{_WHO}: `batch_size` must be an int >= 1; got {batch_size!r}"
            + (" (unbatched samples are not supported: fit takes batches)" if batch_size is None else "")
        )
    image_size = _check_image_size(image_size)
    interpolation = _check_interpolation(interpolation)
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(f"{_WHO}: set at most one of crop_to_aspect_ratio and pad_to_aspect_ratio")
    _check_split(validation_split, subset, shuffle, seed)
    # As Keras: one seed, drawn here if not given, for the list's shuffle and every epoch's order.
    seed = int(np.random.randint(1e6)) if seed is None else int(seed)

    file_paths, labels, class_names = index_directory(
        directory,
        labels,
        ALLOWLIST_FORMATS,
        class_names=class_names,
        shuffle=shuffle,
        seed=seed,
        follow_links=follow_links,
        verbose=verbose,
    )
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f"{_WHO}: label_mode='binary' needs exactly 2 classes; got {len(class_names)}: {class_names}")
    if labels is not None and label_mode in ("binary", "categorical") and labels.max() >= len(class_names):
        raise ValueError(
            f"{_WHO}: label_mode={label_mode!r} needs labels 0 .. {len(class_names) - 1} (one per "
            f"class); got a label {int(labels.max())}"
        )

    def dataset(paths, subset_labels, reshuffle):
        return ImageFolderDataset(
            paths,
            subset_labels,
            label_mode,
            class_names,
            batch_size,
            image_size,
            CHANNELS[color_mode],
            interpolation,
            crop_to_aspect_ratio,
            pad_to_aspect_ratio,
            shuffle=reshuffle,
            seed=seed,
        )

    if subset == "both":
        train = training_or_validation_split(file_paths, labels, validation_split, "training")
        val = training_or_validation_split(file_paths, labels, validation_split, "validation")
        # As Keras: the validation set is not reshuffled when both come from one call.
        return [dataset(*train, shuffle), dataset(*val, False)]
    return dataset(*training_or_validation_split(file_paths, labels, validation_split, subset), shuffle)
