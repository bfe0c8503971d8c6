"""What the subcommands share: error types, data loading, image reading, progress."""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np


class UsageError(ValueError):
    """A bad command-line argument: ``main`` prints it and returns 2."""


class CommandError(RuntimeError):
    """A failure while running a command (missing module, nothing to do): exit code 1."""


DATASETS = ("mnist", "fashion_mnist", "cifar10")


def note(message):
    """A remark for the user on stderr, kept apart from the results on stdout."""
    print(f"note: {message}", file=sys.stderr, flush=True)


def positive_int(text):
    """argparse type: an int >= 1 (argparse turns ArgumentTypeError into a usage error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1; got {text!r}")
    return value


def fraction(text):
    """argparse type: a float strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (exclusive); got {text!r}")
    return value


def parse_kernel(text):
    """``--kernel`` value: a name (``sobel_x``) or a Python/JSON nested list (``'[[-1,0,1],[-1,0,1]]'``)."""
    from ..filters import get_kernel

    spec = text.strip()
    if spec.startswith(("[", "(")):
        try:
            value = ast.literal_eval(spec)
        except (ValueError, SyntaxError):
            raise UsageError(
                f"--kernel: cannot read {text!r} as a nested list of numbers like '[[-1,0,1],[-1,0,1]]'"
            ) from None
    else:
        value = spec
    try:
        return get_kernel(value)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--kernel: {exc}") from None


def scale_images(x):
    """uint8 images -> float32 in [0, 1], with a channel axis for grey images (NHWC)."""
    x = np.asarray(x)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x[..., None] if x.ndim == 3 else x


def load_dataset(name, data_dir=None, offline=False):
    """``((x_train, y_train), (x_test, y_test))`` of a Keras dataset, scaled to [0, 1], NHWC, labels (N,).

    ``data_dir`` is a folder of the original files (the dataset loader reads it), or an ``.npz``
    file holding ``x_train``, ``y_train``, ``x_test``, ``y_test`` (such as a subset you made).
    """
    from .. import datasets

    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if data_dir is not None and str(data_dir).endswith(".npz"):
        (xtr, ytr), (xte, yte) = _load_npz(data_dir)
    else:
        loader = getattr(datasets, name, None)
        if loader is None or not hasattr(loader, "load_data"):
            raise CommandError(f"convolab.datasets.{name} is not available in this install")
        (xtr, ytr), (xte, yte) = loader.load_data(data_dir=data_dir, download=not offline)
    return (scale_images(xtr), np.asarray(ytr).reshape(-1)), (scale_images(xte), np.asarray(yte).reshape(-1))


def _load_npz(path):
    keys = ("x_train", "y_train", "x_test", "y_test")
    regular_file(path, "an .npz file")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a lone .npy, loaded as an array
            raise ValueError("it holds one array, not named arrays (write it with numpy.savez)")
        with data:
            missing = [k for k in keys if k not in data.files]
            if not missing:
                return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
            held = ", ".join(data.files) or "nothing"
    except (OSError, EOFError, ValueError, MemoryError, zipfile.BadZipFile, zlib.error) as exc:
        raise OSError(f"cannot read {path} as a NumPy .npz archive: {exc}") from None
    raise ValueError(f"{path} lacks {', '.join(missing)}; it holds {held}")


def regular_file(path, kind="a file", missing="no such file"):
    """``Path(path)`` when it names a regular file; else an ``OSError`` naming it and what it is.

    A named pipe or a device would block or never end: they are refused before anything opens them.

    Args:
        kind: what the file should be, for the message (``"an image"``).
        missing: the message when nothing is there.
    """
    p = Path(path)
    try:
        if p.is_file():
            return p
        exists, is_dir = p.exists(), p.is_dir()
    except OSError as exc:  # a name too long, a loop of links...
        raise OSError(f"{str(p)!r}: {exc.strerror or exc}") from None
    if not exists:
        raise FileNotFoundError(2, missing, str(p))
    if is_dir:
        raise IsADirectoryError(21, f"is a directory, not {kind}", str(p))
    raise OSError(f"{str(p)!r} is not a regular file (a pipe or a device?), not {kind}")


def writable_folder(folder, what="--out", files=()):
    """Create ``folder`` if needed and check a file can be written in it, before any long work.

    Args:
        folder: the output folder.
        what: the option that named it, for the message.
        files: names that will be written in it; none may be an existing folder.

    Returns:
        ``Path(folder)``.

    Raises:
        CommandError: naming the folder and why nothing can be written there.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise CommandError(f"{what} {str(out)!r} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".convolab-write-check-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CommandError(f"{what} {str(out)!r}: cannot write files there ({exc.strerror or exc})") from None
    for name in files:
        if (out / name).is_dir():
            raise CommandError(f"{what} {str(out)!r}: cannot write {name} there: {str(out / name)!r} is a folder")
    return out


def writable_file(path, what="--out"):
    """Check ``path`` can be written (its folder is created if needed) before any long work.

    Raises:
        CommandError: naming the file and why it cannot be written.
    """
    p = Path(path)
    if p.is_dir():
        raise CommandError(f"{what} {str(p)!r} is a folder; give a file name")
    writable_folder(p.parent, f"{what} {str(p)!r}: its folder")
    return p


def read_image(path, channels=None):
    """Read a PNG/JPEG/... file with Pillow as uint8 ``(H, W)`` or ``(H, W, 3)``.

    Args:
        channels: 1 (convert to grey), 3 (convert to RGB) or ``None`` (grey files stay grey,
            everything else becomes RGB; alpha is dropped).

    Returns:
        ``(array, original_mode)``.

    Raises:
        OSError: naming the file, when it is missing, not a regular file, not an image Pillow can
            read, truncated, or a decompression bomb (over twice ``PIL.Image.MAX_IMAGE_PIXELS``;
            over once that limit only a note is printed, as Pillow only warns).
    """
    from PIL import Image, UnidentifiedImageError

    p = regular_file(path, "an image")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            im = Image.open(p)
        with im:
            for w in caught:
                if issubclass(w.category, Image.DecompressionBombWarning):
                    note(
                        f"{p}: {im.width}x{im.height} pixels, more than Pillow's decompression-bomb warning "
                        f"limit of {Image.MAX_IMAGE_PIXELS:,}; reading it anyway"
                    )
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            im.load()
            mode = im.mode
            if mode.startswith("I") or mode == "F":  # 16/32-bit grey: stretch to 8 bits
                arr = np.asarray(im, dtype=np.float64)
                lo, hi = arr.min(), arr.max()
                im = Image.fromarray(((arr - lo) / ((hi - lo) or 1.0) * 255).astype(np.uint8))
            if channels is None:
                channels = 1 if im.mode in ("1", "L", "LA", "P") and _palette_is_grey(im) else 3
            out = im.convert("L" if channels == 1 else "RGB")
            return np.asarray(out), mode
    except UnidentifiedImageError:
        raise OSError(
            f"cannot read image {str(p)!r}: not a format Pillow recognises (PNG, JPEG, BMP, GIF, TIFF...)"
        ) from None
    except (
        OSError,
        EOFError,
        ValueError,
        SyntaxError,
        MemoryError,  # truncated or corrupt files
        Image.DecompressionBombError,
    ) as exc:  # refused from the header, before any pixel is decoded
        raise OSError(f"cannot read image {str(p)!r}: {exc or type(exc).__name__}") from None


def _palette_is_grey(im):
    if im.mode != "P":
        return True
    rgb = np.asarray(im.convert("RGB"))
    return bool(np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]))


def progress(iterable, total=None, desc=None):
    """A tqdm bar on stderr when it is a terminal; the plain iterable otherwise."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a declared dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, disable=None, leave=False, unit="batch")


def predict_batches(model, x, batch_size=256, desc="predicting"):
    """Model outputs for ``x`` in batches, with a progress bar when there are many."""
    starts = range(0, len(x), batch_size)
    bar = progress(starts, total=len(starts), desc=desc) if len(starts) > 4 else starts
    return np.concatenate(
        [np.asarray(model.predict(x[s : s + batch_size], batch_size=batch_size, verbose=0)) for s in bar], axis=0
    )


def evaluate_outputs(model, outputs, y):
    """``{'loss': ..., 'acc': ...}`` from outputs already predicted (loss when the model is compiled)."""
    y = np.asarray(y).reshape(-1)
    logs = {}
    loss = getattr(model, "loss", None)
    if loss is not None:
        logs["loss"] = float(loss(y, outputs))
    logs["acc"] = float((np.asarray(outputs).argmax(axis=1) == y).mean())
    return logs


def load_model_file(path):
    """``convolab.saving.load_model(path)`` with a clear error when the file or the module is missing."""
    p = regular_file(path, "a model file", missing="no such model file")
    try:
        from ..saving import load_model
    except ImportError:
        raise CommandError("cannot load models: convolab.saving is not available in this install") from None
    return load_model(str(p))


def saving_available(path):
    """Whether convolab.saving can be imported; if not, a note that the model will not be saved to ``path``."""
    try:
        import convolab.saving  # noqa: F401
    except ImportError:
        note(f"model not saved to {path}: convolab.saving is not available in this install")
        return False
    return True


def save_model_file(model, path):
    """``model.save(path)``; returns False (after a note) if convolab.saving is not installed."""
    if not saving_available(path):
        return False
    model.save(str(path))
    return True


def write_json(path, data):
    """Write ``data`` as indented JSON (NumPy numbers become floats)."""

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    Path(path).write_text(json.dumps(data, indent=2, default=default) + "\n")


def history_json(history):
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
