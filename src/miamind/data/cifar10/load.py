"""``load_cifar10``: find, verify, decode once, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cache import cached_arrays
from ..errors import DataError
from . import release
from .arrays import Cifar10Arrays
from .batches import decode_batches
from .decode import decode_image_folder
from .files import source_digest
from .layout import LayoutSource, detect, locate
from .release import CLASS_NAMES, NAME, PathLike


def check_counts(arrays: dict[str, np.ndarray], src: LayoutSource) -> None:
    """verify=True: the full dataset, 5,000 train and 1,000 test images of every class."""
    for split, per_class in (("train", release.TRAIN_PER_CLASS), ("test", release.TEST_PER_CLASS)):
        counts = np.bincount(arrays[f"{split}_labels"], minlength=len(CLASS_NAMES))
        for i, n in enumerate(counts):
            if n != per_class:
                raise DataError(
                    src.path,
                    f"{n} images of class '{CLASS_NAMES[i]}', expected {per_class} "
                    "(pass verify=False to load a subset)",
                    where=f"{src.prefix}{split}/{CLASS_NAMES[i]}",
                )


def load_cifar10(
    data_dir: PathLike | None = None,
    *,
    path: PathLike | None = None,
    cache_dir: PathLike | None = None,
    verify: bool = True,
) -> Cifar10Arrays:
    """Load CIFAR-10 as uint8 NHWC arrays (decoded once, then read from the cache).

    Args:
        data_dir: data root (else $MIAMIND_DATA, else ~/.cache/miamind/data); the dataset is
            looked up by :func:`locate`.
        path: read this folder or archive instead of locating one.
        cache_dir: decoded-array cache (default: $MIAMIND_CACHE or ~/.cache/miamind/cache).
        verify: python layout -- every file must match its published md5; all layouts -- the
            full dataset (10,000 records per batch; 5,000/1,000 images per class). ``False``
            loads your own or partial files (labels, sizes and formats are still checked).

    Raises:
        DatasetNotFoundError: nothing found (says where it looked and how to get the files).
        DataError: a bad file, naming it (and the record or archive member) and what is wrong.
            Nothing is cached from a bad source.
    """
    src = detect(Path(path) if path is not None else locate(data_dir))
    sha, key = source_digest(src)

    def build() -> dict[str, np.ndarray]:
        if src.layout == "image-folder":
            arrays, lossy = decode_image_folder(src)
            files: list[tuple[str, str]] = []
        else:
            arrays, files = decode_batches(src, verify)
            lossy = False
        if verify:
            check_counts(arrays, src)
        arrays["class_names"] = np.array(CLASS_NAMES)
        arrays["file_names"] = np.array([f[0] for f in files], dtype="<U64")
        arrays["file_md5"] = np.array([f[1] for f in files], dtype="<U32")
        arrays["lossy"] = np.array(lossy)
        return arrays

    arrays = cached_arrays(NAME, key, build, Path(cache_dir) if cache_dir is not None else None)
    files = tuple(zip(arrays["file_names"].tolist(), arrays["file_md5"].tolist(), strict=True))
    md5_ok = src.layout == "python" and bool(files) and all(release.PYTHON_MD5.get(n) == m for n, m in files)
    if verify:
        # The cache may have been filled by a verify=False load of the same bytes: check again.
        if src.layout == "python":
            for n, m in files:
                if n in release.PYTHON_MD5 and m != release.PYTHON_MD5[n]:
                    p, where = src.label(n)
                    raise DataError(
                        p, f"md5 {m} does not match the published {release.PYTHON_MD5[n]}", where=where
                    )
        check_counts(arrays, src)
    return Cifar10Arrays(
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"],
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"],
        class_names=tuple(arrays["class_names"].tolist()),
        layout=src.layout,
        source=src.path,
        source_sha256=sha,
        md5_verified=md5_ok,
        lossy=bool(arrays["lossy"]),
        files=files,
    )
