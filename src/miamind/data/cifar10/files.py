"""The files of a found layout (from a folder or straight out of an archive) and their cache key."""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..cache import fingerprint, sha256_file
from ..errors import DataError
from .layout import LayoutSource, member_parts, open_tar
from .release import TEST_BATCHES, TRAIN_BATCHES

CACHE_VERSION = "cifar10-v1"  # bump when decoding changes, so stale caches are not reused


def iter_files(src: LayoutSource) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(path relative to the layout folder, reader) for every regular file, in a stable order.

    Archives are read sequentially in one pass (random access into a .tar.gz re-decompresses).
    """
    if src.in_tar:
        with open_tar(src.path) as tf:
            try:
                for m in tf:
                    if not m.isfile():
                        continue
                    name = "/".join(member_parts(m.name))
                    if not name.startswith(src.prefix):
                        continue
                    fobj = tf.extractfile(m)
                    assert fobj is not None  # m.isfile() above
                    yield name[len(src.prefix) :], fobj.read
            except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
                raise DataError(src.path, f"corrupt or truncated archive: {e}") from None
    else:
        for dirpath, dirnames, filenames in os.walk(src.path):
            dirnames.sort()
            for fn in sorted(filenames):
                full = Path(dirpath) / fn
                yield full.relative_to(src.path).as_posix(), full.read_bytes


def read_named(src: LayoutSource, names: Sequence[str], optional: Sequence[str] = ()) -> dict[str, bytes]:
    """Bytes of the files ``names`` (required) and ``optional`` at the top of the layout folder."""
    wanted = set(names) | set(optional)
    out: dict[str, bytes] = {}
    if src.in_tar:
        for rel, read in iter_files(src):
            if rel in wanted:
                out[rel] = read()
    else:
        for rel in wanted:
            p = src.path / rel
            if p.is_file():
                out[rel] = p.read_bytes()
    missing = [n for n in names if n not in out]
    if missing:
        where = f"{src.path}" + (f" (inside, under '{src.prefix}')" if src.in_tar and src.prefix else "")
        raise DataError(where, f"missing {src.layout} batch file(s): {', '.join(missing)}")
    return out


def _source_files(src: LayoutSource) -> list[Path]:
    if src.in_tar:
        return [src.path]
    if src.layout == "image-folder":
        return sorted(p for p in src.path.rglob("*") if p.is_file())
    if src.layout == "binary":
        names = tuple(n + ".bin" for n in TRAIN_BATCHES + TEST_BATCHES) + ("batches.meta.txt",)
    else:
        names = TRAIN_BATCHES + TEST_BATCHES + ("batches.meta",)
    return [src.path / n for n in names if (src.path / n).is_file()]


def source_digest(src: LayoutSource) -> tuple[str, str]:
    """(sha256 of the source, cache key). The key also covers file names, which carry labels in
    an image folder, and the decoder version."""
    files = _source_files(src)
    if not files:
        raise DataError(src.path, f"no {src.layout} files found")
    sha = sha256_file(src.path) if src.in_tar else fingerprint(files)
    h = hashlib.sha256(f"{CACHE_VERSION}|{src.layout}|{src.prefix}|{sha}|".encode())
    if not src.in_tar:
        for p in files:
            h.update(p.relative_to(src.path).as_posix().encode() + b"\n")
    return sha, h.hexdigest()
