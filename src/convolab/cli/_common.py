"""What the subcommands share: error types, data loading, image reading, progress."""
from __future__ import annotations

import argparse
import ast
import json
import sys
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
            raise UsageError(f"--kernel: cannot read {text!r} as a nested list of numbers like '[[-1,0,1],[-1,0,1]]'") from None
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
    if not Path(path).is_file():
        raise FileNotFoundError(2, "no such file", str(path))
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise ValueError(f"{path} lacks {', '.join(missing)}; it holds {', '.join(data.files) or 'nothing'}")
            xtr, ytr, xte, yte = (data[k] for k in keys)
    except (OSError, EOFError) as exc:
        raise OSError(f"cannot read {path} as a NumPy .npz archive: {exc}") from None
    return (xtr, ytr), (xte, yte)


def read_image(path, channels=None):
    """Read a PNG/JPEG/... file with Pillow as uint8 ``(H, W)`` or ``(H, W, 3)``.

    Args:
        channels: 1 (convert to grey), 3 (convert to RGB) or ``None`` (grey files stay grey,
            everything else becomes RGB; alpha is dropped).

    Returns:
        ``(array, original_mode)``.

    Raises:
        OSError: naming the file, when it is missing or not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, "no such file", str(p))
    if p.is_dir():
        raise IsADirectoryError(21, "is a directory, not an image", str(p))
    try:
        with Image.open(p) as im:
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
        raise OSError(f"cannot read image {str(p)!r}: not a format Pillow recognises (PNG, JPEG, BMP, GIF, TIFF...)") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt files
        raise OSError(f"cannot read image {str(p)!r}: {exc}") from None


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
    return np.concatenate([np.asarray(model.predict(x[s : s + batch_size], batch_size=batch_size, verbose=0))
                           for s in bar], axis=0)


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
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, "no such model file", str(p))
    try:
        from ..saving import load_model
    except ImportError:
        raise CommandError("cannot load models: convolab.saving is not available in this install") from None
    return load_model(str(p))


def save_model_file(model, path):
    """``model.save(path)``; returns False (after a note) if convolab.saving is not installed."""
    try:
        import convolab.saving  # noqa: F401
    except ImportError:
        note(f"model not saved to {path}: convolab.saving is not available in this install")
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
