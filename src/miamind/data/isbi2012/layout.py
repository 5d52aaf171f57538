"""Which layout an ``isbi2012`` folder holds (TIFF stacks or PNG folders), and reading it, checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, DatasetNotFoundError
from ..root import data_root
from .encoding import CELL_VALUE, MEMBRANE_VALUE, describe_values
from .read import INDEX_NAME, index_list, png_files, read_png_stack, read_tif_stack
from .release import HOW_TO_OBTAIN, NAME, PNG_DIRS, PNG_TEST_FALLBACK, TIF_FILES, PathLike


def _check_labels(labels: np.ndarray, path: Path, per_file: dict[int, Path] | None = None) -> None:
    """Labels must be exactly {0 membrane, 255 cell}; name the first bad slice."""
    bad = (labels != MEMBRANE_VALUE) & (labels != CELL_VALUE)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad.reshape(len(labels), -1).any(axis=1))[0])
    msg = (
        f"label is not binary: values must be {MEMBRANE_VALUE} (membrane) or {CELL_VALUE} (cell), "
        f"found {describe_values(labels[i][bad[i]])}"
    )
    if per_file is not None:
        raise DataError(per_file[i], msg, f"slice {i}")
    raise DataError(path, msg, f"page {i}")


def _check_pair(images: np.ndarray, labels: np.ndarray, img_src: Path, lbl_src: Path) -> None:
    if images.shape != labels.shape:
        raise DataError(
            lbl_src,
            f"label stack has shape {labels.shape} but image stack {img_src.name} has {images.shape}; "
            "they must match slice for slice",
        )


@dataclass(frozen=True)
class IsbiLayout:
    kind: str  # "tif" or "png"
    root: Path
    files: dict[str, Path] = field(default_factory=dict)  # tif: split -> file
    pngs: dict[str, dict[int, Path]] = field(default_factory=dict)  # png: split -> {i: file}

    def source_files(self) -> list[Path]:
        if self.kind == "tif":
            return list(self.files.values())
        return [p for split in self.pngs.values() for p in split.values()]


def has_tif(root: Path) -> bool:
    return all((root / TIF_FILES[k]).is_file() for k in ("train_images", "train_labels"))


def has_png(root: Path) -> bool:
    return (root / PNG_DIRS["train_images"]).is_dir()


def _searched(root: Path) -> list[Path]:
    """What ``locate`` looks for: the two training TIFFs or the PNG training image folder."""
    return [
        root / TIF_FILES["train_images"],
        root / TIF_FILES["train_labels"],
        root / PNG_DIRS["train_images"],
    ]


def find_layout(root: Path, source: str = "auto") -> IsbiLayout:
    """Find which layout ``root`` holds; ``source`` forces one ('tif' or 'png')."""
    if source not in ("auto", "tif", "png"):
        raise ValueError(f"source must be 'auto', 'tif' or 'png', got {source!r}")
    if not root.is_dir():
        raise DatasetNotFoundError(NAME, [root], HOW_TO_OBTAIN)
    kind = source
    if source == "auto":
        if has_tif(root):
            kind = "tif"
        elif has_png(root):
            kind = "png"
        else:
            partial = [root / f for f in TIF_FILES.values() if (root / f).exists()]
            if partial:  # half a TIFF layout is a broken dataset, not a missing one
                missing = [f for k, f in TIF_FILES.items() if k != "test_images" and not (root / f).is_file()]
                found = ", ".join(p.name for p in partial)
                raise DataError(root, f"incomplete TIFF layout: found {found} but not {', '.join(missing)}")
            raise DatasetNotFoundError(NAME, _searched(root), HOW_TO_OBTAIN)
    if kind == "tif":
        files = {k: root / f for k, f in TIF_FILES.items()}
        for k in ("train_images", "train_labels"):
            if not files[k].is_file():
                raise DataError(files[k], "file not found (needed for source='tif')")
        if not files["test_images"].is_file():
            del files["test_images"]
        return IsbiLayout("tif", root, files=files)
    img_dir, lbl_dir = root / PNG_DIRS["train_images"], root / PNG_DIRS["train_labels"]
    for d in (img_dir, lbl_dir):
        if not d.is_dir():
            raise DataError(d, "folder not found (needed for source='png')")
    images, labels = png_files(img_dir), png_files(lbl_dir)
    if len(images) != len(labels):
        only_img = sorted(set(images) - set(labels))
        only_lbl = sorted(set(labels) - set(images))
        what = (
            f"no label for image(s) {index_list(only_img)}.png"
            if only_img
            else f"no image for label(s) {index_list(only_lbl)}.png"
        )
        raise DataError(lbl_dir, f"{len(images)} images in {img_dir.name}/ but {len(labels)} labels: {what}")
    pngs = {"train_images": images, "train_labels": labels}
    test_dir = root / PNG_DIRS["test_images"]
    if test_dir.is_dir():
        pngs["test_images"] = png_files(test_dir)
    elif (root / PNG_TEST_FALLBACK).is_dir() and any(
        INDEX_NAME.match(p.name) for p in (root / PNG_TEST_FALLBACK).iterdir()
    ):
        # the U-Net repo's own folder also holds '{i}_predict.png' outputs: skip those names
        pngs["test_images"] = png_files(root / PNG_TEST_FALLBACK, ignore_other_names=True)
    return IsbiLayout("png", root, pngs=pngs)


def read_layout(layout: IsbiLayout) -> dict[str, np.ndarray]:
    """Decode and validate every split; raises DataError before anything is returned."""
    if layout.kind == "tif":
        f = layout.files
        images = read_tif_stack(f["train_images"])
        labels = read_tif_stack(f["train_labels"])
        _check_pair(images, labels, f["train_images"], f["train_labels"])
        _check_labels(labels, f["train_labels"])
        test_src = f.get("test_images")
        test = read_tif_stack(test_src) if test_src is not None else None
    else:
        p = layout.pngs
        images = read_png_stack(p["train_images"])
        labels = read_png_stack(p["train_labels"])
        _check_pair(images, labels, p["train_images"][0].parent, p["train_labels"][0].parent)
        _check_labels(labels, p["train_labels"][0].parent, per_file=p["train_labels"])
        test_src = p["test_images"][0].parent if "test_images" in p else None
        test = read_png_stack(p["test_images"]) if test_src is not None else None
    if test is None:
        test = np.zeros((0,) + images.shape[1:], dtype=np.uint8)
    elif test.shape[1:] != images.shape[1:]:
        raise DataError(
            test_src, f"test slices are {test.shape[1:]} but training slices are {images.shape[1:]}"
        )
    return {"train_images": images, "train_labels": labels, "test_images": test}


def locate(data_dir: PathLike | None = None) -> Path:
    """The ``isbi2012`` folder under the data root, holding a TIFF or PNG layout.

    Raises ``DatasetNotFoundError`` naming the paths searched when neither layout is there.
    """
    root = data_root(data_dir) / NAME
    if root.is_dir() and (has_tif(root) or has_png(root)):
        return root
    raise DatasetNotFoundError(NAME, _searched(root), HOW_TO_OBTAIN)
