"""Atomic file writes: a reader sees the old file or the new one, never half of one."""
from __future__ import annotations

import os
import secrets

#: prefix of the temporary files :func:`atomic_write_bytes` writes next to the target
TMP_PREFIX = ".convolab-tmp-"


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` always holds a complete file.

    The bytes go to a temporary file in the same directory (same file system, so the
    rename is atomic), which is flushed and fsync'ed before ``os.replace`` puts it in place;
    the directory is then fsync'ed so the rename itself survives a power cut. A process
    killed mid-write leaves the old ``path`` intact (and possibly a stale
    ``.convolab-tmp-*`` file beside it, safe to delete).

    Args:
        path: destination file path (str or path-like).
        data: the complete file content.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f"{TMP_PREFIX}{os.path.basename(path)}.{secrets.token_hex(6)}")
    # O_EXCL: never follow or reuse someone else's file; 0o666 lets the umask decide, as open() does.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    # Windows cannot open a directory; there the rename is as durable as the OS makes it.
    if os.name != "posix":
        return
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
