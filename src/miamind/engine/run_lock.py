"""One writer per run folder: an exclusive ``flock`` on ``RUN_DIR/.lock`` while a run trains.

A second process that starts or resumes the same folder is refused at once (no waiting: two
writers would interleave checkpoints and logs). The kernel drops the lock when its holder exits,
however it exits (SIGKILL included), so a killed run can be resumed right away; the lock file
itself stays (deleting it would let two processes hold locks on different files).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._atomic import PathLike
from ..errors import UserError

LOCK_NAME = ".lock"


class RunFolderInUseError(UserError, ValueError):
    """Another process holds the run folder's lock."""


def _holder(lock_file: Path) -> str:
    try:
        pid = lock_file.read_text().strip()
    except OSError:
        return "another process"
    return f"process {pid}" if pid.isdigit() else "another process"


@contextmanager
def run_folder_lock(run_dir: PathLike) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the block (the folder is created); refuse if it is held."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lock_file = folder / LOCK_NAME
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise RunFolderInUseError(
                f"{folder}: run folder in use by {_holder(lock_file)}; wait for it to finish or use another --out"
            ) from None
        # Who holds it, for the message above (informational; the flock is what excludes).
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock_file
    finally:
        os.close(fd)  # closing the descriptor releases the flock
