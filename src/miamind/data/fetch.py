"""``miamind data fetch``: download a dataset from its public source, verify it, put it in place.

Each dataset module declares ``FETCH`` (a :class:`Source`) beside its ``HOW_TO_OBTAIN`` text: the
files to download, the mirrors of each (tried in order) and each file's checksum, or, for a source
that needs a login or has no checksum we could verify, ``manual`` instructions instead.

One fetch, step by step:

1. each file downloads to ``<data root>/.downloads/<name>.part``; a ``.part`` left by a cut
   connection is resumed with an HTTP ``Range`` request (a server that ignores it restarts the file);
2. the finished file's checksum is compared with the table before anything reads it (a mismatch
   deletes the file and tries the next mirror);
3. archives are unpacked into a staging folder beside the target: tar with ``filter="data"`` plus
   our own checks, zip with explicit checks; no member may be a link, absolute, or leave the folder;
4. the staging folder is renamed into place (one ``rename`` on the same filesystem), so a dataset
   folder is either absent or complete; then the dataset's own ``locate`` must find it.

Only the standard library (urllib, tarfile, zipfile, hashlib) is used. Failures raise
:class:`FetchError`, whose message is one line saying what failed and what to do by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import DataError, DatasetNotFoundError
from .root import data_root

PathLike = str | Path

#: seconds to wait for a connection or a read; short, so an offline machine fails fast
TIMEOUT_S = 10.0
#: files smaller than this get no progress bar (ISBI 2012 is 90 PNGs of ~200 kB)
BAR_MIN_BYTES = 1_000_000
#: attempts per mirror while each attempt still makes progress (a cut connection is resumed)
ATTEMPTS_PER_MIRROR = 3
DOWNLOADS = ".downloads"  # under the data root: partial and finished downloads
_BLOCK = 1 << 16


class FetchError(DataError):
    """A dataset could not be fetched; ``str(err)`` is one line with the reason and what to do."""

    def __init__(self, message: str):
        super().__init__(None, message)


@dataclass(frozen=True)
class Remote:
    """One file to download: its mirrors (tried in order), checksum and place in the dataset folder.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``. With ``unpack`` the file is an archive
    (``.tar.gz``/``.tgz``/``.tar``/``.zip``) whose members go into the dataset folder; otherwise the
    file itself goes to ``path`` (relative to the dataset folder).
    """

    path: str
    urls: tuple[str, ...]
    checksum: str
    unpack: bool = False

    def __post_init__(self) -> None:
        algo, _, digest = self.checksum.partition(":")
        if algo not in ("md5", "sha256") or not digest:
            raise ValueError(f"Remote {self.path!r}: checksum must be 'md5:<hex>' or 'sha256:<hex>'")
        if not self.urls:
            raise ValueError(f"Remote {self.path!r}: needs at least one URL")
        p = PurePosixPath(self.path)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"Remote path {self.path!r} must stay inside the dataset folder")


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from: files to download, or (``manual``) what to do by hand and why."""

    dataset: str
    folder: str  # the dataset folder under the data root, as the loader's ``locate`` reads it
    copy: str  # which copy this is, in a few words (shown by fetch and check)
    files: tuple[Remote, ...] = ()
    manual: str | None = None  # set when the source cannot be fetched automatically

    def __post_init__(self) -> None:
        if bool(self.files) == bool(self.manual):
            raise ValueError(f"Source {self.dataset!r}: give files to download or manual instructions")

    @property
    def fetchable(self) -> bool:
        return self.manual is None


# ---------------------------------------------------------------------------------------- progress


class _Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise (logs, tests)."""

    def __init__(self, label: str, total_bytes: int | None, stream=None):
        self.label, self.total = label, total_bytes
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)()) and (
            total_bytes is None or total_bytes >= BAR_MIN_BYTES
        )
        self._last = 0.0

    def update(self, done: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self._last < 0.2):
            return
        self._last = now
        mb = done / 1e6
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            text = f"\r{self.label} [{bar:<30s}] {frac:4.0%} {mb:.1f}/{self.total / 1e6:.1f} MB"
        else:
            text = f"\r{self.label} {mb:.1f} MB"
        self.stream.write(text + ("\n" if final else ""))
        self.stream.flush()


# ---------------------------------------------------------------------------------------- download


def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _reason(e: BaseException) -> str:
    """A short phrase for a transport error (the last line a user sees)."""
    if isinstance(e, urllib.error.HTTPError):
        if e.code in (401, 403):
            return f"HTTP {e.code} (the server wants a login or refuses automated downloads)"
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"cannot connect ({e.reason})"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return f"no answer within {TIMEOUT_S:.0f} s"
    if isinstance(e, http.client.IncompleteRead):
        return "connection cut before the end of the file"
    return f"{type(e).__name__}: {e}"


def download(url: str, part: Path, *, label: str = "", timeout: float | None = None) -> None:
    """Append ``url``'s bytes to ``part``, resuming from its size with a ``Range`` request.

    A server that answers a range request with the whole file (200) restarts ``part``. Transport
    errors propagate (``part`` keeps what arrived, for the next attempt).
    """
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "miamind-fetch"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S if timeout is None else timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the part is already whole
            return
        raise
    with resp:
        status = resp.getcode()  # None for file:// URLs
        if have and status != 206:
            have = 0  # the server ignored the range: start again from the first byte
        elif have and not resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            part.unlink()  # a range we did not ask for: start over on the next attempt
            raise http.client.HTTPException(f"unexpected Content-Range {resp.headers.get('Content-Range')!r}")
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        bar = _Progress(label or PurePosixPath(url).name, total)
        done = have
        with open(part, "ab" if have else "wb") as out:
            for block in iter(lambda: resp.read(_BLOCK), b""):
                out.write(block)
                done += len(block)
                bar.update(done)
        bar.update(done, final=True)
        if total is not None and done != total:
            raise http.client.IncompleteRead(b"", total - done)


def fetch_file(
    remote: Remote, downloads: Path, *, label: str = "", unreachable: set[str] | None = None
) -> Path:
    """Download ``remote`` to ``downloads/<remote.path>`` (mirrors in order) and verify its checksum.

    Returns the verified file. ``unreachable`` (hosts that could not be connected to earlier in the
    same fetch) is skipped and updated, so an offline machine fails after one try per host.
    Raises :class:`FetchError` naming the last failure.
    """
    algo, _, expected = remote.checksum.partition(":")
    done_path = downloads / remote.path
    done_path.parent.mkdir(parents=True, exist_ok=True)
    if done_path.is_file() and _hash_file(done_path, algo) == expected:
        return done_path  # fetched before (a later step failed): no need to download again
    part = done_path.with_name(done_path.name + ".part")
    errors: list[str] = []
    for url in remote.urls:
        host = urllib.parse.urlsplit(url).netloc
        if unreachable is not None and host in unreachable:
            errors.append(f"{url}: skipped, {host} could not be reached earlier")
            continue
        for _attempt in range(ATTEMPTS_PER_MIRROR):
            before = part.stat().st_size if part.exists() else 0
            try:
                download(url, part, label=label or done_path.name)
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"{url}: {_reason(e)}")
                after = part.stat().st_size if part.exists() else 0
                if after > before:
                    continue  # a cut connection that delivered bytes: resume from there
                if unreachable is not None and _is_connection_failure(e):
                    unreachable.add(host)
                break  # no progress: next mirror
            got = _hash_file(part, algo)
            if got == expected:
                os.replace(part, done_path)
                return done_path
            part.unlink()  # never unpack or keep a file whose checksum is wrong
            errors.append(f"{url}: {algo} {got} differs from the expected {expected}")
            break
    tried = [e for e in errors if "could not be reached earlier" not in e]
    if not tried:
        hosts = ", ".join(dict.fromkeys(urllib.parse.urlsplit(u).netloc for u in remote.urls))
        raise FetchError(f"no mirror reachable ({hosts} did not answer earlier in this fetch)")
    more = f" (and {len(errors) - 1} more mirror failure(s))" if len(errors) > 1 else ""
    raise FetchError(tried[0] + more)


def _is_connection_failure(e: BaseException) -> bool:
    """No answer at all (DNS, refused, timeout), as opposed to an HTTP error status."""
    return not isinstance(e, urllib.error.HTTPError) and isinstance(
        e, (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError)
    )


# ------------------------------------------------------------------------------------------ unpack


def _check_member(archive: Path, name: str, dest: Path, *, plain: bool) -> None:
    """Refuse a member that is a link or special file (not ``plain``) or lands outside ``dest``."""
    if not plain:
        raise DataError(archive, "refusing to extract a link or special file", where=name)
    parts = PurePosixPath(name.replace("\\", "/")).parts
    target = (dest / name).resolve()
    if (
        name.startswith(("/", "\\"))
        or (len(name) > 1 and name[1] == ":")  # a Windows drive
        or ".." in parts
        or (target != dest and dest not in target.parents)
    ):
        raise DataError(archive, "refusing to extract a path outside the target folder", where=name)


def safe_extract(archive: PathLike, dest: PathLike) -> None:
    """Unpack a tar or zip archive into ``dest``: regular files and folders only, all inside ``dest``.

    Every member is checked before anything is written, so a refused archive writes nothing.
    """
    archive, dest = Path(archive), Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                kind = stat.S_IFMT(info.external_attr >> 16)  # Unix file type, when the zip has one
                _check_member(archive, info.filename, dest, plain=kind in (0, stat.S_IFREG, stat.S_IFDIR))
            zf.extractall(dest, members=infos)
        return
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(archive, f"not a tar or zip archive: {e}") from None
    with tf:
        members = tf.getmembers()
        for m in members:
            _check_member(archive, m.name, dest, plain=m.isfile() or m.isdir())
        # filter="data" (Python 3.12+, backported to 3.10.12/3.11.4) re-checks paths and drops
        # permissions that a data file should not carry.
        kwargs: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(dest, members=members, **kwargs)


# -------------------------------------------------------------------------------------- place it


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the staging folder to ``target``; into an existing folder, entry by entry, never
    replacing what is there."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
        return
    clashes = [p.name for p in staging.iterdir() if (target / p.name).exists()]
    if clashes:
        raise FetchError(
            f"{target} already holds {', '.join(sorted(clashes)[:3])}; not overwritten "
            "(move it away and fetch again)"
        )
    for p in staging.iterdir():
        os.replace(p, target / p.name)
    staging.rmdir()


def _prune_empty(folder: Path) -> None:
    """Remove empty folders under ``folder`` (and ``folder`` itself when it ends up empty)."""
    for dirpath, _dirs, _files in sorted(os.walk(folder), key=lambda t: -len(t[0])):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass  # not empty


def source_of(name: str) -> Source:
    from . import dataset_module

    return dataset_module(name).FETCH


def fetch_dataset(
    name: str,
    data_dir: PathLike | None = None,
    *,
    source: Source | None = None,
    log: Callable[[str], None] | None = print,
    unreachable: set[str] | None = None,
) -> Path:
    """Fetch dataset ``name`` into the data root unless its loader already finds it there.

    Returns the folder the loader reads. Raises :class:`FetchError` (one line) when the source
    needs a login, cannot be reached, or delivers something other than what the table says; the
    message ends with what to do by hand (the dataset's ``HOW_TO_OBTAIN``).
    """
    from . import dataset_module

    mod = dataset_module(name)
    src = source if source is not None else mod.FETCH
    try:
        found = mod.locate(data_dir)
    except DatasetNotFoundError:
        pass
    else:
        if log is not None:
            log(f"{name}: already there ({found}); nothing to fetch")
        return found
    if not src.fetchable:
        raise FetchError(f"{name}: not fetched automatically: {src.manual}")
    root = data_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    downloads = root / DOWNLOADS / name
    fetched: list[Path] = []
    try:
        for i, remote in enumerate(src.files):
            label = f"{name} {i + 1}/{len(src.files)} {PurePosixPath(remote.path).name}"
            fetched.append(fetch_file(remote, downloads, label=label, unreachable=unreachable))
    except FetchError as e:
        _prune_empty(root / DOWNLOADS)  # keep .part files (resumed next time), not empty folders
        raise FetchError(f"{name}: {e}. By hand: {mod.HOW_TO_OBTAIN}") from None
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{PurePosixPath(src.folder).name}.fetch-"))
    try:
        for remote, path in zip(src.files, fetched, strict=True):
            if remote.unpack:
                safe_extract(path, staging)
            else:
                dest = staging / remote.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, dest)
        _move_into_place(staging, root / src.folder)
    except DataError as e:
        raise FetchError(f"{name}: {e}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    shutil.rmtree(downloads, ignore_errors=True)
    _prune_empty(root / DOWNLOADS)
    try:
        found = mod.locate(data_dir)
    except DatasetNotFoundError as e:
        raise FetchError(
            f"{name}: fetched into {root / src.folder}, but the loader does not find it: {e}"
        ) from None
    if log is not None:
        log(f"{name}: fetched {src.copy} into {found}")
    return found


def fetch_all(
    names: Sequence[str], data_dir: PathLike | None = None, *, log: Callable[[str], None] = print
) -> dict[str, Path | FetchError]:
    """Fetch each dataset; a failure is logged as one line and returned, not raised.

    A host that cannot be connected to is not tried again for the next datasets.
    """
    unreachable: set[str] = set()
    out: dict[str, Path | FetchError] = {}
    for name in names:
        try:
            out[name] = fetch_dataset(name, data_dir, log=log, unreachable=unreachable)
        except FetchError as e:
            out[name] = e
            log(str(e))
    return out


__all__ = [
    "FetchError",
    "Remote",
    "Source",
    "download",
    "fetch_all",
    "fetch_dataset",
    "fetch_file",
    "safe_extract",
    "source_of",
]
