"""Decoders: each returns (images NHWC uint8, labels int64) or raises DataError naming the place."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..safe_pickle import safe_load
from .files import iter_files
from .layout import LayoutSource
from .release import CLASS_NAMES, IMAGE_SUFFIXES, PIXELS, RECORD_BYTES


def _check_labels(labels: np.ndarray, path: Path, where: str | None) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= len(CLASS_NAMES)))
    if bad.size:
        i = int(bad[0])
        loc = f"{where} record {i}" if where else f"record {i}"
        raise DataError(
            path,
            f"label {int(labels[i])} outside 0..{len(CLASS_NAMES) - 1} "
            f"({bad.size} bad label(s) in this file)",
            where=loc,
        )


def _planar_to_nhwc(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def decode_python_batch(raw: bytes, path: Path, where: str | None) -> tuple[np.ndarray, np.ndarray]:
    label = f"{path}:{where}" if where else str(path)
    obj = safe_load(raw, name=label)
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict batch, got {type(obj).__name__}", where=where)

    def entry(key: str):
        for k in (key.encode(), key):
            if k in obj:
                return obj[k]
        raise DataError(path, f"batch has no b'{key}' entry (keys: {sorted(map(repr, obj))})", where=where)

    data, labels = entry("data"), entry("labels")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != PIXELS
    ):
        what = (
            f"shape {data.shape} dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        )
        raise DataError(path, f"b'data' is {what}; expected an (N, {PIXELS}) uint8 array", where=where)
    try:
        lab = np.asarray(labels)
    except Exception:  # ragged or odd objects
        lab = np.asarray([], dtype=object)
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise DataError(path, f"b'labels' must be a list of ints, got {type(labels).__name__}", where=where)
    if len(lab) != len(data):
        raise DataError(
            path, f"b'labels' has {len(lab)} entries but b'data' has {len(data)} rows", where=where
        )
    lab = lab.astype(np.int64)
    _check_labels(lab, path, where)
    return _planar_to_nhwc(data), lab


def decode_binary_batch(raw: bytes, path: Path, where: str | None) -> tuple[np.ndarray, np.ndarray]:
    if not raw:
        raise DataError(path, "empty file (0 bytes)", where=where)
    if len(raw) % RECORD_BYTES:
        raise DataError(
            path,
            f"length {len(raw)} bytes is not a multiple of the {RECORD_BYTES}-byte record "
            f"(1 label byte + {PIXELS} pixels): {len(raw) // RECORD_BYTES} whole records and "
            f"{len(raw) % RECORD_BYTES} bytes left over (truncated or not a CIFAR-10 .bin file)",
            where=where,
        )
    recs = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    lab = recs[:, 0].astype(np.int64)
    _check_labels(lab, path, where)
    return _planar_to_nhwc(recs[:, 1:]), lab


def decode_image(raw: bytes, path: Path, where: str | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not raw:
        raise DataError(path, "empty file (0 bytes); expected a 32x32 RGB image", where=where)
    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            mode, size = im.mode, im.size
            arr = np.asarray(im) if (mode, size) == ("RGB", (32, 32)) else None
    except UnidentifiedImageError:
        raise DataError(path, "cannot decode image: not a recognised image format", where=where) from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt image data
        raise DataError(path, f"cannot decode image: {e}", where=where) from None
    if arr is None:
        raise DataError(path, f"image is {mode} {size[0]}x{size[1]}; expected RGB 32x32", where=where)
    return arr


def decode_image_folder(src: LayoutSource) -> tuple[dict[str, np.ndarray], bool]:
    class_index = {n: i for i, n in enumerate(CLASS_NAMES)}
    items: dict[str, list] = {"train": [], "test": []}
    lossy = False
    for rel, read in iter_files(src):
        parts = rel.split("/")
        if parts[0] not in items:
            continue  # e.g. a README or batches.meta beside train/ and test/
        path, where = src.label(rel)
        if parts[-1].startswith("."):
            continue  # hidden files (.DS_Store) are not data
        if len(parts) != 3:
            raise DataError(
                path, f"expected {parts[0]}/<class>/<image>, found a file at depth {len(parts)}", where=where
            )
        split, cls, fname = parts
        if cls not in class_index:
            raise DataError(
                path, f"unknown class folder '{cls}' (expected one of: {', '.join(CLASS_NAMES)})", where=where
            )
        stem, suffix = os.path.splitext(fname)
        if suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(path, f"not an image file (expected {'/'.join(IMAGE_SUFFIXES)})", where=where)
        lossy |= suffix.lower() in (".jpg", ".jpeg")
        arr = decode_image(read(), path, where)
        # numeric file index first (NNNN = per-class running index in official order)
        order = (0, int(stem), "") if stem.isdigit() else (1, 0, stem)
        items[split].append((class_index[cls], order, arr))
    out: dict[str, np.ndarray] = {}
    for split, rows in items.items():
        if not rows:
            raise DataError(src.path, f"no images under {src.prefix}{split}/<class>/")
        rows.sort(key=lambda r: (r[0], r[1]))
        out[f"{split}_images"] = np.stack([r[2] for r in rows])
        out[f"{split}_labels"] = np.array([r[0] for r in rows], dtype=np.int64)
    return out, lossy
