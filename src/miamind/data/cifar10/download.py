"""Download (needs internet; tests run it against a local file:// archive)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..fetch import Remote, Source, fetch_dataset
from ..root import data_root
from . import release
from .release import BINARY_TAR_MD5, BINARY_URL, NAME, PathLike


def download(data_dir: PathLike | None = None, *, version: str = "python") -> Path:
    """Download the official archive into ``<data root>/cifar10/``, check its md5, extract it.

    ``version`` is "python" (``cifar-10-batches-py/``) or "binary" (``cifar-10-batches-bin/``).
    The same path as ``miamind data fetch cifar10`` (:mod:`miamind.data.fetch`): resumable,
    md5 checked before unpacking, safe unpacking, atomic move. Returns the ``cifar10`` folder.
    """
    if version == "python":
        url, md5 = release.PYTHON_URL, release.PYTHON_TAR_MD5
    elif version == "binary":
        url, md5 = BINARY_URL, BINARY_TAR_MD5
    else:
        raise ValueError(f"version must be 'python' or 'binary', got {version!r}")
    source = Source(
        dataset=NAME,
        folder=NAME,
        copy=f"the official {version} batches",
        files=(Remote(PurePosixPath(url).name, (url,), f"md5:{md5}", unpack=True),),
    )
    fetch_dataset(NAME, data_dir, source=source, log=None)
    return data_root(data_dir) / NAME
