"""Decode once, cache as uint8 .npz keyed by the source's checksum; written atomically."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .._atomic import atomic_open
from .root import cache_root


def _file_digest(path: Path, algorithm: str, chunk: int) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    return _file_digest(path, "sha256", chunk)


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    return _file_digest(path, "md5", chunk)


def fingerprint(paths: Iterable[Path]) -> str:
    """Checksum of several source files (content, not names or mtimes)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def atomic_save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temp file in the same folder, then rename: a crash never leaves half a cache."""
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def cached_arrays(
    namespace: str,
    key: str,
    build: Callable[[], dict[str, np.ndarray]],
    cache_dir: Path | None = None,
) -> dict[str, np.ndarray]:
    """Return the cached arrays for ``key`` or build, then cache them.

    ``build`` raising (bad input) caches nothing, since the write happens only after it returns.
    """
    root = (cache_dir or cache_root()) / namespace
    path = root / f"{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception:
            path.unlink(missing_ok=True)  # a corrupt cache entry is rebuilt, never trusted
    arrays = build()
    atomic_save_npz(path, arrays)
    return arrays
