"""The IDX file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimension sizes, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import zlib

import numpy as np

# type code -> big-endian dtype
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data, origin="IDX data"):
    """Parses the bytes of one (uncompressed) IDX file.

    Args:
        data: the file's bytes (bytes or bytearray; a bytearray gives a writable array, no copy).
        origin: names the data in error messages (e.g. the file path).

    Returns:
        An ndarray of the file's shape, in native byte order (uint8 for MNIST images and labels).

    Shape:
        ``(d0, d1, ..., d_{ndim-1})`` as stored in the header.

    Raises:
        ValueError: bad magic number, unknown type code, or a size that does not match the header.
    """
    if len(data) < 4:
        raise ValueError(f"{origin}: not an IDX file (only {len(data)} bytes)")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"{origin}: not an IDX file (magic {bytes(data[:4]).hex()}; "
            f"expected 0000 then a type code and a dimension count)"
        )
    if code not in IDX_DTYPES:
        raise ValueError(
            f"{origin}: unknown IDX type code 0x{code:02x}; known: {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{origin}: truncated IDX header ({len(data)} bytes; {ndim} dimensions need {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{origin}: IDX header says shape {shape} of {dtype} "
            f"({expected} bytes of values) but the file holds {len(data) - header}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    if dtype.byteorder == ">":
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def read_idx_gz(path):
    """Reads a gzip-compressed IDX file (``*-idx?-ubyte.gz``) into a writable ndarray.

    Raises:
        ValueError: the file is not valid gzip or not valid IDX.
    """
    try:
        with gzip.open(path, "rb") as f:
            data = bytearray(f.read())
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: not a readable gzip file ({err})") from err
    return parse_idx(data, origin=str(path))


def load_images_labels(images_path, labels_path):
    """Reads one split: images ``(N, rows, cols)`` and labels ``(N,)``, checking they match.

    Returns:
        ``(x, y)``: x uint8 ``(N, rows, cols)``, y uint8 ``(N,)``.
    """
    x = read_idx_gz(images_path)
    y = read_idx_gz(labels_path)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, rows, cols); got {x.dtype} {x.shape}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise ValueError(f"{labels_path}: expected uint8 labels of shape (N,); got {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels")
    return x, y


def load_train_test(paths, files):
    """Reads the four files of an MNIST-style dataset.

    Args:
        paths: ``{file name: Path}`` (from ``download.fetch``).
        files: ``(train images, train labels, test images, test labels)`` file names.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``.
    """
    train_x, train_y, test_x, test_y = files
    return (load_images_labels(paths[train_x], paths[train_y]), load_images_labels(paths[test_x], paths[test_y]))
