"""Listing the image files of a folder with their labels, and splitting them, as Keras 3 does.

Order, exactly as Keras's ``index_directory``: classes in ``class_names`` order (sorted subfolder
names unless given); inside a class folder, every file of the walk (nested folders too, their
images taking the class of the top folder), folders in sorted path order and files sorted by name.
With ``shuffle`` the whole list is then shuffled once by ``numpy.random.RandomState(seed)``, so a
training and a validation call with the same seed split the same list.
"""

from __future__ import annotations

import os

import numpy as np

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def _walk(directory, follow_links):
    """``(root, file name)`` for every file below ``directory``, in Keras's sorted order."""
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda entry: entry[0]):
        for name in sorted(files):
            yield root, name


def class_subdirs(directory):
    """Sorted names of the subfolders of ``directory`` that do not start with a dot."""
    return [
        name
        for name in sorted(os.listdir(directory))
        if os.path.isdir(os.path.join(directory, name)) and not name.startswith(".")
    ]


def _index_class(directory, subdir, follow_links, formats):
    """Paths of the image files below ``directory/subdir`` and the number of other files met."""
    paths, others = [], 0
    for root, name in _walk(os.path.join(directory, subdir), follow_links):
        if name.lower().endswith(formats):
            paths.append(os.path.join(root, name))
        else:
            others += 1
    return paths, others


def _describe_empty(directory, subdirs, labels, others, formats):
    where = f"in {directory!r}" if labels != "inferred" else f"in the class folders {subdirs} of {directory!r}"
    if labels == "inferred" and not subdirs:
        loose = sum(name.lower().endswith(formats) for name in os.listdir(directory))
        hint = (
            (
                f"; its {loose} image files lie directly in it: pass labels=None to read them without "
                "labels, or move each class into its own subfolder"
            )
            if loose
            else ""
        )
        return (
            f"image_dataset_from_directory: with labels='inferred', {directory!r} must hold one "
            f"subfolder per class (e.g. {os.path.join(directory, 'cats', 'img1.jpg')!r}); found no "
            f"subfolder{hint}"
        )
    ignored = f" ({others} other files ignored)" if others else ""
    return f"image_dataset_from_directory: no image files {where}{ignored}. Allowed formats: {formats}"


def index_directory(
    directory,
    labels,
    formats=ALLOWLIST_FORMATS,
    class_names=None,
    shuffle=True,
    seed=None,
    follow_links=False,
    verbose=True,
):
    """Lists the image files of ``directory`` with their integer labels.

    Args:
        directory: the folder (str); it must exist.
        labels: ``"inferred"`` (one subfolder per class), ``None`` (no labels) or a sequence of
            ints, one per file in sorted walk order.
        formats: file name endings that count as images (case-insensitive).
        class_names: with ``labels="inferred"``, the classes to use, in this order.
        shuffle: shuffle the list once, seeded.
        seed: int seed for that shuffle (drawn from NumPy's global generator if None).
        follow_links: walk into folders that are symbolic links.
        verbose: print ``Found N files belonging to K classes.``

    Returns:
        ``(file_paths, labels, class_names)``: a list of str, an int32 array of the same length
        (None without labels) and a list of str (None without labels).

    Raises:
        ValueError: no image files, class names that are not subfolders, wrong number of labels.
    """
    if not os.path.isdir(directory):
        what = "is not a folder" if os.path.exists(directory) else "does not exist"
        raise ValueError(f"image_dataset_from_directory: `directory` {directory!r} {what}")
    if labels == "inferred":
        subdirs = class_subdirs(directory)
        if class_names is not None:
            missing = [name for name in class_names if name not in subdirs]
            if missing:
                raise ValueError(
                    f"image_dataset_from_directory: class_names {list(class_names)} must name "
                    f"subfolders of {directory!r}; these are not: {missing}. Subfolders: {subdirs}"
                )
            subdirs = list(class_names)
    else:
        subdirs = [""]
    file_paths, per_class, others = [], [], 0
    for subdir in subdirs:
        paths, ignored = _index_class(directory, subdir, follow_links, formats)
        file_paths += paths
        per_class.append(len(paths))
        others += ignored
    if not file_paths:
        raise ValueError(_describe_empty(directory, subdirs if labels == "inferred" else [], labels, others, formats))
    if labels == "inferred":
        class_names = list(subdirs)
        labels = np.repeat(np.arange(len(subdirs), dtype=np.int32), per_class)
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(file_paths):
            raise ValueError(
                f"image_dataset_from_directory: expected one label per image file; got "
                f"len(labels) = {len(labels)} for {len(file_paths)} image files in {directory!r} "
                "(labels follow the sorted order of the file paths)"
            )
        labels = np.asarray(labels, dtype=np.int32)
        class_names = [str(label) for label in sorted(set(labels.tolist()))]
    if verbose:
        if labels is None:
            print(f"Found {len(file_paths)} files.")
        else:
            print(f"Found {len(file_paths)} files belonging to {len(class_names)} classes.")
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(file_paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def training_or_validation_split(file_paths, labels, validation_split, subset):
    """The training part (all but the last ``int(validation_split * N)``) or the validation part
    (those last files) of an indexed list, printing ``Using M files for training.`` as Keras does.

    Raises:
        ValueError: the split leaves one side empty.
    """
    if not validation_split:
        return file_paths, labels
    n = len(file_paths)
    n_val = int(validation_split * n)
    if n_val == 0 or n_val == n:
        side = "validation" if n_val == 0 else "training"
        raise ValueError(
            f"image_dataset_from_directory: validation_split={validation_split} of {n} files "
            f"leaves no files for {side} (int({validation_split} * {n}) = {n_val} for validation); "
            "use more images or another validation_split"
        )
    if subset == "training":
        print(f"Using {n - n_val} files for training.")
        return file_paths[:-n_val], None if labels is None else labels[:-n_val]
    print(f"Using {n_val} files for validation.")
    return file_paths[-n_val:], None if labels is None else labels[-n_val:]
