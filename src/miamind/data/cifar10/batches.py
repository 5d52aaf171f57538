"""The official batch files: md5 against the published sums, record counts, ``batches.meta``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..safe_pickle import safe_load
from . import release
from .decode import decode_binary_batch, decode_python_batch
from .files import read_named
from .layout import LayoutSource
from .release import CLASS_NAMES, TEST_BATCHES, TRAIN_BATCHES, PathLike


def verified_md5(raw: bytes, official_name: str | None, verify: bool, path: Path, where: str | None) -> str:
    """md5 of one file; with ``verify``, a file with a published md5 must match it (checked before
    anything is unpickled)."""
    md5 = hashlib.md5(raw).hexdigest()
    expected = release.PYTHON_MD5.get(official_name) if official_name else None
    if verify and expected and md5 != expected:
        raise DataError(
            path,
            f"md5 {md5} does not match the published {expected} (corrupt, truncated, or not "
            "the official file); pass verify=False to load your own batches",
            where=where,
        )
    return md5


def decode_batches(src: LayoutSource, verify: bool) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    suffix = ".bin" if src.layout == "binary" else ""
    names = [n + suffix for n in TRAIN_BATCHES + TEST_BATCHES]
    meta_name = "batches.meta" if src.layout == "python" else "batches.meta.txt"
    raw = read_named(src, names, optional=[meta_name])
    files: list[tuple[str, str]] = []
    for name in names + [meta_name]:
        if name not in raw:
            continue
        path, where = src.label(name)
        md5 = verified_md5(raw[name], name if src.layout == "python" else None, verify, path, where)
        files.append((name, md5))
    if meta_name in raw:
        _check_meta(raw[meta_name], src, meta_name)
    decode = decode_python_batch if src.layout == "python" else decode_binary_batch
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    for name in names:
        path, where = src.label(name)
        images, labels = decode(raw.pop(name), path, where)
        if verify and len(labels) != release.RECORDS_PER_BATCH:
            raise DataError(
                path,
                f"{len(labels)} records; the official batches hold {release.RECORDS_PER_BATCH} "
                "(pass verify=False to load a subset)",
                where=where,
            )
        parts["test" if name.startswith("test_batch") else "train"].append((images, labels))
    out = {}
    for split, chunks in parts.items():
        out[f"{split}_images"] = np.concatenate([c[0] for c in chunks])
        out[f"{split}_labels"] = np.concatenate([c[1] for c in chunks])
    return out, files


def _check_meta(raw: bytes, src: LayoutSource, name: str) -> None:
    """batches.meta (pickle) / batches.meta.txt (text) must list the ten CIFAR-10 class names."""
    path, where = src.label(name)
    if name.endswith(".txt"):
        names = [ln.strip() for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
    else:
        label = f"{path}:{where}" if where else str(path)
        obj = safe_load(raw, name=label)
        got = obj.get(b"label_names", obj.get("label_names")) if isinstance(obj, dict) else None
        if not isinstance(got, list):
            raise DataError(path, "no b'label_names' list in batches.meta", where=where)
        names = [n.decode("latin-1") if isinstance(n, bytes) else str(n) for n in got]
    if tuple(names) != CLASS_NAMES:
        raise DataError(path, f"class names {names} differ from CIFAR-10's {list(CLASS_NAMES)}", where=where)


def read_batches_meta(path: PathLike) -> dict[str, Any]:
    """Read an official ``batches.meta`` with the safe unpickler: label names, md5, sizes."""
    path = Path(path)
    raw = path.read_bytes()
    obj = safe_load(raw, name=str(path))
    if not isinstance(obj, dict) or b"label_names" not in obj:
        raise DataError(path, "not a CIFAR-10 batches.meta (no b'label_names')")
    md5 = hashlib.md5(raw).hexdigest()
    return {
        "label_names": [n.decode("latin-1") for n in obj[b"label_names"]],
        "num_cases_per_batch": obj.get(b"num_cases_per_batch"),
        "num_vis": obj.get(b"num_vis"),
        "md5": md5,
        "md5_ok": md5 == release.PYTHON_MD5["batches.meta"],
    }
