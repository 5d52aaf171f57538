"""``check``: validate a CIFAR-10 folder, archive or single batch file and summarise it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..cache import md5_file
from ..errors import DataError
from . import release
from .arrays import class_counts
from .batches import read_batches_meta, verified_md5
from .decode import decode_binary_batch, decode_python_batch
from .layout import detect, is_archive
from .load import load_cifar10
from .release import BINARY_TAR_MD5, CLASS_NAMES, PathLike


def _md5_fields(md5: str, published: str | None) -> dict[str, Any]:
    return {"md5": md5, "md5_published": published, "md5_ok": None if published is None else md5 == published}


def _check_batch_file(path: Path) -> dict:
    """One official file: ``batches.meta``, a python batch (safe unpickler) or a ``.bin`` batch."""
    if path.name == "batches.meta":
        return {"layout": "python", "file": "batches.meta", **read_batches_meta(path)}
    raw = path.read_bytes()
    if not raw:
        raise DataError(path, "empty file (0 bytes)")
    binary = path.suffix == ".bin"
    _, labels = (decode_binary_batch if binary else decode_python_batch)(raw, path, None)
    md5 = verified_md5(raw, None if binary else path.name, True, path, None)
    published = None if binary else release.PYTHON_MD5.get(path.name)
    return {
        "layout": "binary" if binary else "python",
        "file": path.name,
        "records": int(len(labels)),
        "counts": class_counts(labels, CLASS_NAMES),
        **_md5_fields(md5, published),
    }


def check(path: PathLike, *, cache_dir: PathLike | None = None) -> dict:
    """Validate a CIFAR-10 folder or archive (full decode, cached), or one batch file, and summarise it.

    A single file (``data_batch_1``, ``test_batch``, ``batches.meta``, ``*.bin``) is decoded on its
    own: record count, images per class, md5 against the published value where one exists.

    Returns layout, counts per split and class, sha256 of the source, md5 of every batch file
    with the published value and whether it matches, and, for an image folder, the official
    ``batches.meta`` found beside it. Raises DataError on bad input (verify=True).
    """
    path = Path(path)
    if path.is_file() and not is_archive(path):
        return _check_batch_file(path)
    src = detect(path)
    arr = load_cifar10(path=path, cache_dir=cache_dir, verify=True)
    counts = arr.counts()
    published = release.PYTHON_MD5 if arr.layout == "python" else {}
    files = [{"name": name, **_md5_fields(md5, published.get(name))} for name, md5 in arr.files]
    if arr.layout == "python":
        verification = "every file matches its published md5"
    elif arr.layout == "binary":
        verification = (
            "no per-file md5 is published for the binary version (only the archive's, "
            f"{BINARY_TAR_MD5}); checked: record size, 10,000 records per file, labels"
        )
    else:
        verification = (
            "image folder: no official checksum exists; checked: 32x32 RGB images, "
            "5,000 train / 1,000 test per class, class folder names"
        )
    report: dict[str, Any] = {
        "layout": arr.layout,
        "container": "archive" if src.in_tar else "folder",
        "source": str(arr.source),
        "source_sha256": arr.source_sha256,
        "lossy": arr.lossy,
        "md5_verified": arr.md5_verified,
        "verification": verification,
        "counts": counts,
        "totals": {s: int(sum(c.values())) for s, c in counts.items()},
        "files": files,
    }
    official_archive = {
        "cifar-10-python.tar.gz": release.PYTHON_TAR_MD5,
        "cifar-10-binary.tar.gz": BINARY_TAR_MD5,
    }
    if src.in_tar and src.path.name in official_archive:
        md5 = md5_file(src.path)
        report["archive_md5"] = md5
        report["archive_md5_ok"] = md5 == official_archive[src.path.name]
    if arr.layout == "image-folder":
        holder = src.path.parent if src.in_tar else src.path
        meta = holder / "batches.meta"
        if meta.is_file():
            info = read_batches_meta(meta)
            if tuple(info["label_names"]) != CLASS_NAMES:
                raise DataError(meta, f"class names {info['label_names']} differ from {list(CLASS_NAMES)}")
            report["batches_meta"] = {"path": str(meta), **info}
    return report


def describe(report: dict) -> str:
    """Which copy of CIFAR-10 a :func:`check` report describes, in a few words."""
    layout = report.get("layout")
    if layout == "python":
        return "official python batches"
    if layout == "binary":
        return "official binary batches"
    if report.get("lossy"):
        return "image folder of lossy JPEGs (not the original batches; labels and split exact)"
    return "image folder (lossless images)"
