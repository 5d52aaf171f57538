"""One way to write a file so that a crash never leaves half of it: temp file, fsync, rename.

A write that fails for want of space or of a working disk raises :class:`WriteError` (an
``OSError`` naming the file and the cause), whichever library did the writing: safetensors, torch
and onnx report a full disk with their own exception classes, which no ``except OSError`` sees.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

PathLike = str | os.PathLike[str]

# "os error 28" (Rust: safetensors), "[Errno 28]" (Python), "errno: 28" -- the cause a library
# folded into its own message
_ERRNO_IN_TEXT = re.compile(r"os error (\d+)|\[Errno (\d+)\]|errno:? (\d+)", re.IGNORECASE)


class WriteError(OSError):
    """``filename`` could not be written (disk full, quota, read-only or failing disk)."""


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def as_write_error(exc: BaseException, path: PathLike) -> OSError | None:
    """``exc``, raised while writing ``path``, as an ``OSError`` naming ``path``; None when it is not
    an I/O failure (a bug in the writer keeps its own exception and traceback)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        code = exc.errno
    elif m := _ERRNO_IN_TEXT.search(str(exc)):
        code = int(next(g for g in m.groups() if g))
    elif _free_bytes(Path(path).parent) == 0:  # torch: "file write failed", no cause given
        code = errno.ENOSPC
    else:
        return None
    return WriteError(code, os.strerror(code), str(path))


def _default_mode() -> int:
    # mkstemp creates 0600; a finished file gets the permissions open() would have given it.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    try:  # makes the rename itself durable; not possible on every filesystem
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it becomes ``path``.

    For writers that want a file name (``safetensors.save_file``, ``np.savez``). Parent folders are
    created; on any error the temporary file is removed and an existing ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data must be on disk before the rename makes it the file
        finally:
            os.close(fd)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        plain = isinstance(exc, Exception) and not isinstance(exc, WriteError)
        failure = as_write_error(exc, path) if plain else None
        Path(tmp).unlink(missing_ok=True)
        if failure is not None:
            raise failure from exc
        raise
    _fsync_dir(path.parent)


@contextmanager
def atomic_open(path: PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """``open(path, mode)`` whose result appears at ``path`` only once the block has succeeded."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes files; mode must start with 'w', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
