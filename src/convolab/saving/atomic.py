"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import socket

#: prefix of the temporary files :func:`atomic_write_bytes` writes next to the target
TMP_PREFIX = ".convolab-tmp-"

# <prefix><target name>.<host tag>.<pid>.<random>: the writer's machine and process are in the name,
# so a later save can tell a dead writer's leftover from a live writer's file.
_TMP_TAIL = re.compile(r"\.([0-9a-f]{8})\.([0-9]{1,10})\.[0-9a-f]{12}")


@functools.lru_cache(maxsize=None)
def _host_tag() -> str:
    """8 hex digits naming this machine and pid namespace: a pid means nothing on another one
    (a directory shared over NFS, a container with its own pids)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return hashlib.sha256(f"{socket.gethostname()}/{namespace}".encode()).hexdigest()[:8]


def temp_name(path) -> str:
    """The temporary file :func:`atomic_write_bytes` writes beside ``path`` in this process."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    name = f"{TMP_PREFIX}{os.path.basename(path)}.{_host_tag()}.{os.getpid()}.{secrets.token_hex(6)}"
    return os.path.join(directory, name)


def _process_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False  # exists under another user, or cannot tell: keep its file
    return False


def remove_stale_temps(path) -> list:
    """Delete the temporary files that killed saves of ``path`` left (best effort).

    Only files named for ``path`` whose writer ran on this machine and whose process is gone are
    removed; a file of a save still running (in this process or another) is never touched, nor one
    named in the format used before the writer's pid was in the name (its writer cannot be known).

    Returns:
        the paths removed.
    """
    if os.name != "posix":  # os.kill(pid, 0) is no existence test on Windows
        return []
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    start = f"{TMP_PREFIX}{os.path.basename(path)}"
    removed = []
    try:
        entries = [e.name for e in os.scandir(directory) if e.name.startswith(start)]
    except OSError:
        return removed
    for name in entries:
        m = _TMP_TAIL.fullmatch(name, len(start))
        if m is None or m.group(1) != _host_tag() or not _process_gone(int(m.group(2))):
            continue
        stale = os.path.join(directory, name)
        try:
            os.unlink(stale)
        except OSError:  # gone already (another save cleaned it), or not ours to delete
            continue
        removed.append(stale)
    return removed


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` always holds a complete file.

    The bytes go to a temporary file in the same directory (same file system, so the
    rename is atomic), which is flushed and fsync'ed before ``os.replace`` puts it in place;
    the directory is then fsync'ed so the rename itself survives a power cut. A process
    killed mid-write leaves the old ``path`` intact and a ``.convolab-tmp-*`` file beside it,
    which the next save of the same ``path`` deletes (see :func:`remove_stale_temps`).

    Args:
        path: destination file path (str or path-like).
        data: the complete file content (bytes or any buffer).

    Raises:
        OSError: of the original kind (``PermissionError``, ``IsADirectoryError``...), naming
            ``path``, not the temporary file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temps(path)
    tmp = temp_name(path)
    try:
        # O_EXCL: never follow or reuse someone else's file; 0o666 lets the umask decide, as open() does.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        # The directory must take a new file, even where the target itself is writable.
        raise _naming_target(
            e, path, f" (saving writes a new file in {directory!r}, then renames it over the target)"
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise _naming_target(e, path, "") from None
        raise
    _fsync_directory(directory)


def _naming_target(e: OSError, path: str, why: str) -> OSError:
    """The same kind of OSError about ``path``, the user's file, rather than the temporary one:
    ``[Errno 13] Permission denied<why>: 'path'``."""
    try:
        return type(e)(e.errno, f"{e.strerror or e}{why}", path)
    except TypeError:  # an OSError subclass with another constructor
        return OSError(e.errno, f"{e.strerror or e}{why}", path)


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
