"""Finding, downloading and verifying the original dataset files.

Every file a loader reads is checked against the checksums published with the dataset. Downloads
go to a temporary file in the destination folder and are moved into place (``os.replace``) only
once they are complete and verified, so an interrupted download never leaves a file that looks
finished.

The cache folder is, in order of preference: the ``cache_dir`` argument, the environment variable
``CONVOLAB_DATA_DIR``, then ``~/.convolab/datasets``. Already present, verified files are found in
any of them; new downloads go to the first.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ENV_DATA_DIR = "CONVOLAB_DATA_DIR"
ENV_NO_PROGRESS = "CONVOLAB_NO_PROGRESS"
DEFAULT_CACHE = Path("~") / ".convolab" / "datasets"
TIMEOUT_S = 30
_CHUNK = 1 << 20
_USER_AGENT = "convolab-datasets/0.1 (+https://pypi.org/project/convolab/)"


class DatasetUnavailableError(OSError):
    """The files of a dataset are neither on disk nor downloadable.

    Attributes:
        dataset: the dataset's name, e.g. ``"MNIST"``.
        missing: names of the files that are missing (or failed verification).
        tried: ``{file name: [(url, reason), ...]}`` for every download attempt.
        target: the folder where the files are expected.
    """

    def __init__(self, message, *, dataset=None, missing=(), tried=None, target=None):
        super().__init__(message)
        self.dataset = dataset
        self.missing = list(missing)
        self.tried = dict(tried or {})
        self.target = target

    def __str__(self):
        return self.args[0]


class ChecksumError(DatasetUnavailableError):
    """A file's bytes differ from the published ones (corrupt, truncated, or another version)."""


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset, as published.

    Args:
        name: the published file name, e.g. ``"train-images-idx3-ubyte.gz"``.
        checksums: ``{"md5": hex, "sha256": hex}``; every digest given is checked.
        size: the published size in bytes, or None.
    """

    name: str
    checksums: dict = field(default_factory=dict)
    size: int | None = None


# ---------------------------------------------------------------------------------------------
# Argument checks shared by every load_data
# ---------------------------------------------------------------------------------------------


def check_path_arg(value, arg, loader):
    """Returns ``value`` as a Path (or None); TypeError for anything but str / os.PathLike."""
    if value is None:
        return None
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"{loader}: {arg} must be a str or os.PathLike folder path; got {type(value).__name__} {value!r}"
        )
    if str(value) == "":
        raise ValueError(f"{loader}: {arg} must not be an empty string")
    return Path(os.fspath(value)).expanduser()


def check_load_args(loader, path, data_dir, cache_dir, download):
    """Validates the common ``load_data`` arguments; returns ``(path, data_dir, cache_dir)`` as Paths."""
    if not isinstance(download, bool):
        raise TypeError(f"{loader}: download must be True or False; got {type(download).__name__} {download!r}")
    path = check_path_arg(path, "path", loader)
    data_dir = check_path_arg(data_dir, "data_dir", loader)
    cache_dir = check_path_arg(cache_dir, "cache_dir", loader)
    if data_dir is not None:
        if path is not None or cache_dir is not None:
            raise ValueError(
                f"{loader}: data_dir names a folder that already holds the files, so it "
                f"cannot be combined with path= or cache_dir= (which say where downloads "
                f"go); got data_dir={str(data_dir)!r}, path={path and str(path)!r}, "
                f"cache_dir={cache_dir and str(cache_dir)!r}"
            )
        if not data_dir.exists():
            raise ValueError(f"{loader}: data_dir {str(data_dir)!r} does not exist")
        if not data_dir.is_dir():
            raise ValueError(f"{loader}: data_dir {str(data_dir)!r} is not a folder")
    return path, data_dir, cache_dir


# ---------------------------------------------------------------------------------------------
# Cache folders
# ---------------------------------------------------------------------------------------------


def cache_roots(cache_dir=None):
    """The cache folders to search, most preferred first; downloads go to the first.

    Args:
        cache_dir: the ``cache_dir`` argument of ``load_data`` (Path or None).

    Returns:
        A list of distinct Paths: ``cache_dir``, ``$CONVOLAB_DATA_DIR``, ``~/.convolab/datasets``
        (the first two only when given).
    """
    roots = []
    if cache_dir is not None:
        roots.append(Path(cache_dir).expanduser())
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        roots.append(Path(env).expanduser())
    roots.append(DEFAULT_CACHE.expanduser())
    unique = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def dataset_dirs(subdir, cache_dir=None):
    """The folders, one per cache root, where a dataset's files live: ``root / subdir``.

    ``subdir`` may be absolute (``load_data(path="/data/mnist")``); then it is the only folder.
    """
    subdir = Path(subdir)
    if subdir.is_absolute():
        return [subdir]
    return [root / subdir for root in cache_roots(cache_dir)]


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def _hashers(spec):
    return {algo: hashlib.new(algo) for algo in spec.checksums}


def _mismatches(spec, hashers):
    """``[(algo, got, expected)]`` for each digest that differs."""
    out = []
    for algo, expected in spec.checksums.items():
        got = hashers[algo].hexdigest()
        if got != expected.lower():
            out.append((algo, got, expected.lower()))
    return out


def verify_file(path, spec):
    """Raises ChecksumError unless the file at ``path`` has every digest in ``spec.checksums``."""
    hashers = _hashers(spec)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            for h in hashers.values():
                h.update(chunk)
    bad = _mismatches(spec, hashers)
    if bad:
        details = "; ".join(f"{algo} {got}, expected {want}" for algo, got, want in bad)
        raise ChecksumError(
            f"{path} is not the published {spec.name}: {details}. Delete it and download the file again.",
            missing=[spec.name],
            target=str(Path(path).parent),
        )


def verify_bytes(data, spec, origin):
    """Like ``verify_file`` for bytes already in memory (``origin`` names them in the error)."""
    hashers = _hashers(spec)
    for h in hashers.values():
        h.update(data)
    bad = _mismatches(spec, hashers)
    if bad:
        details = "; ".join(f"{algo} {got}, expected {want}" for algo, got, want in bad)
        raise ChecksumError(f"{origin} is not the published {spec.name}: {details}", missing=[spec.name])


def find_verified(spec, folders):
    """The first ``folder / spec.name`` that exists and verifies, or None.

    Returns:
        ``(path or None, bad)``: ``bad`` lists ``(path, ChecksumError)`` for files that were found
        but failed verification (they are then re-downloaded, or reported).
    """
    bad = []
    for folder in folders:
        candidate = Path(folder) / spec.name
        if candidate.is_file():
            try:
                verify_file(candidate, spec)
            except ChecksumError as err:
                bad.append((candidate, err))
                continue
            return candidate, bad
    return None, bad


# ---------------------------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------------------------


class _MirrorUnreachable(Exception):
    """The server could not be reached at all (not an HTTP error): skip it for later files."""


def _progress_enabled():
    if os.environ.get(ENV_NO_PROGRESS):
        return False
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def _progress_bar(total, name):
    """A tqdm bar writing to stderr, or None when disabled or tqdm is not installed."""
    if not _progress_enabled():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, leave=False)


def download_file(url, dest, spec, timeout=TIMEOUT_S):
    """Downloads ``url`` to ``dest`` atomically, verifying ``spec``'s checksums and size.

    The bytes go to a temporary file next to ``dest``; only a complete, verified file is renamed
    to ``dest``. On any failure the temporary file is removed and ``dest`` is left untouched.

    Raises:
        _MirrorUnreachable: the host could not be reached.
        OSError / http.client.HTTPException: HTTP errors, dropped connections, short reads.
        ChecksumError: the bytes are not the published file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(request, timeout=timeout)
            except urllib.error.HTTPError:
                raise
            except urllib.error.URLError as err:
                raise _MirrorUnreachable(str(err.reason)) from err
            with response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else spec.size
                hashers = _hashers(spec)
                received = 0
                bar = _progress_bar(total, spec.name)
                try:
                    while True:
                        chunk = response.read(_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        for h in hashers.values():
                            h.update(chunk)
                        received += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                finally:
                    if bar is not None:
                        bar.close()
            expected = int(length) if length and length.isdigit() else None
            if expected is not None and received != expected:
                # http.client returns b"" rather than raising when a server hangs up early.
                raise ConnectionError(f"connection closed early: got {received} of {expected} bytes")
            if spec.size is not None and received != spec.size:
                raise ChecksumError(
                    f"{url} sent {received} bytes; the published {spec.name} has {spec.size}", missing=[spec.name]
                )
            bad = _mismatches(spec, hashers)
            if bad:
                details = "; ".join(f"{algo} {got}, expected {want}" for algo, got, want in bad)
                raise ChecksumError(f"checksum mismatch ({details})", missing=[spec.name])
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        # Reached with the temporary file still present only on failure (including Ctrl-C).
        if tmp.exists():
            tmp.unlink()
    return dest


def _reason(err):
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, http.client.IncompleteRead):
        return f"connection closed early ({len(err.partial)} bytes read, {err.expected} more expected)"
    if isinstance(err, ConnectionError) and not err.errno:
        return str(err)
    if isinstance(err, ChecksumError):
        return str(err)
    return f"{type(err).__name__}: {err}"


# ---------------------------------------------------------------------------------------------
# The entry point used by the loaders
# ---------------------------------------------------------------------------------------------


def _format_unavailable(dataset, missing, tried, target, *, data_dir_mode, download, extra=""):
    lines = [f"{dataset} is not available: {len(missing)} file(s) missing or not verified."]
    for name in missing:
        lines.append(f"  {name}")
        for url, reason in tried.get(name, []):
            lines.append(f"    tried {url}: {reason}")
    if data_dir_mode:
        lines.append(f"Looked in data_dir {target} (data_dir is never downloaded into).")
    elif not download:
        lines.append("Downloading is switched off (download=False).")
    if extra:
        lines.append(extra)
    lines.append(
        f"To fix it, put the original file(s), named exactly as above, in:\n  {target}\n"
        f"then call load_data again; each file is checked against its published checksum."
    )
    if not data_dir_mode:
        lines.append(
            f"(Or pass data_dir= to a folder holding them, or set {ENV_DATA_DIR} / cache_dir= to another cache folder.)"
        )
    return "\n".join(lines)


def fetch(dataset, specs, mirrors, *, subdir, data_dir=None, cache_dir=None, download=True, hint=""):
    """Returns a verified local path for every file in ``specs``, downloading what is missing.

    Args:
        dataset: the dataset's name for messages, e.g. ``"MNIST"``.
        specs: a list of FileSpec.
        mirrors: base URLs (ending in ``/``), tried in order; a file's URL is ``base + name``.
        subdir: the dataset's folder inside each cache root (absolute: used as is).
        data_dir: a folder of local files; when given nothing is downloaded.
        cache_dir: the preferred cache root (see ``cache_roots``).
        download: whether missing files may be downloaded.
        hint: an extra line for the error message (e.g. other accepted file forms).

    Returns:
        ``{name: Path}`` for every spec.

    Raises:
        DatasetUnavailableError: one or more files can be neither found nor downloaded; the
            message names each file, the URLs tried and where to put the files.
    """
    if data_dir is not None:
        folders, target = [Path(data_dir)], Path(data_dir)
    else:
        folders = dataset_dirs(subdir, cache_dir)
        target = folders[0]

    found, missing, tried = {}, [], {}
    for spec in specs:
        path, bad = find_verified(spec, folders)
        if path is not None:
            found[spec.name] = path
            continue
        missing.append(spec)
        tried[spec.name] = [(str(p), f"present but failed verification: {err}") for p, err in bad]

    if missing and download and data_dir is None:
        dead = set()
        still_missing = []
        for spec in missing:
            ok = False
            for base in mirrors:
                url = base + spec.name
                if base in dead:
                    tried[spec.name].append((url, "skipped: host unreachable for an earlier file"))
                    continue
                try:
                    found[spec.name] = download_file(url, target / spec.name, spec)
                    ok = True
                    break
                except _MirrorUnreachable as err:
                    dead.add(base)
                    tried[spec.name].append((url, f"unreachable ({err})"))
                except (OSError, http.client.HTTPException, ValueError) as err:
                    tried[spec.name].append((url, _reason(err)))
            if not ok:
                still_missing.append(spec)
        missing = still_missing

    if missing:
        names = [s.name for s in missing]
        message = _format_unavailable(
            dataset, names, tried, target, data_dir_mode=data_dir is not None, download=download, extra=hint
        )
        raise DatasetUnavailableError(message, dataset=dataset, missing=names, tried=tried, target=str(target))
    return {spec.name: found[spec.name] for spec in specs}
