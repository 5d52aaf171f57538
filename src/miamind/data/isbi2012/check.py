"""``check``: validate an ISBI 2012 folder, TIFF stack or PNG slice and summarise it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cache import fingerprint, sha256_file
from ..errors import DataError
from .encoding import CELL_VALUE, CLASS_NAMES, MEMBRANE_VALUE, membrane_fraction
from .folds import N_FOLDS, kfold_slices
from .layout import find_layout, has_png, read_layout
from .read import read_png, read_tif_stack
from .release import PathLike


def check(path: PathLike) -> dict:
    """Validate an ISBI 2012 folder (or one ``.tif`` stack / ``.png`` slice) and summarise it.

    For a folder: layout, slice counts and shape, membrane fraction over all labels and per
    default fold, sha256 of the TIFFs (or a content fingerprint of the PNG folders), and, when
    both layouts are present, whether the PNGs hold the same pixels as the TIFFs.
    """
    path = Path(path)
    if path.is_file():
        return _check_file(path)
    layout = find_layout(path, "auto")
    arrays = read_layout(layout)
    labels = arrays["train_labels"]
    n = len(labels)
    report: dict = {
        "layout": layout.kind,
        "train_slices": n,
        "test_slices": int(len(arrays["test_images"])),
        "slice_shape": list(labels.shape[1:]),
        "class_names": list(CLASS_NAMES),
        "label_values": {"membrane": MEMBRANE_VALUE, "cell": CELL_VALUE},
        "pixels": {
            "membrane": int(np.count_nonzero(labels == MEMBRANE_VALUE)),
            "cell": int(np.count_nonzero(labels == CELL_VALUE)),
        },
        "membrane_fraction": round(membrane_fraction(labels), 6),
    }
    if n >= N_FOLDS:
        folds = [kfold_slices(n, N_FOLDS, k)[1] for k in range(N_FOLDS)]
        report["membrane_fraction_per_fold"] = {
            f"fold {k} (slices {_span(v)})": round(membrane_fraction(labels[v]), 6)
            for k, v in enumerate(folds)
        }
    if layout.kind == "tif":
        report["sha256"] = {p.name: sha256_file(p) for p in layout.files.values()}
        if has_png(path):
            other = read_layout(find_layout(path, "png"))
            report["png_matches_tif"] = all(
                np.array_equal(arrays[k], other[k]) for k in ("train_images", "train_labels", "test_images")
            )
    else:
        report["fingerprint"] = {split: fingerprint(files.values()) for split, files in layout.pngs.items()}
    return report


def _span(idx: np.ndarray) -> str:
    return f"{idx[0]}..{idx[-1]}" if len(idx) else "none"


def _check_file(path: Path) -> dict:
    if path.suffix.lower() in (".tif", ".tiff"):
        arr = read_tif_stack(path)
        kind = "tif stack"
    elif path.suffix.lower() == ".png":
        arr = read_png(path)[None]
        kind = "png slice"
    else:
        raise DataError(path, "expected a .tif/.tiff stack, a .png slice or the isbi2012 folder")
    report: dict = {
        "file": kind,
        "slices": int(len(arr)),
        "slice_shape": list(arr.shape[1:]),
        "dtype": str(arr.dtype),
        "sha256": sha256_file(path),
    }
    is_binary = bool(np.isin(arr, (MEMBRANE_VALUE, CELL_VALUE)).all())
    report["binary_0_255"] = is_binary
    if is_binary:  # only meaningful if this is a label file
        report["membrane_fraction_if_labels"] = round(membrane_fraction(arr), 6)
    return report


def describe(report: dict) -> str:
    """Which copy of ISBI 2012 a :func:`check` report describes, in a few words."""
    if report.get("layout") == "tif":
        return "TIFF stacks (train-volume.tif, train-labels.tif, test-volume.tif)"
    return "PNG slices (train/image, train/label, test/image)"
