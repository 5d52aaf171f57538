"""Reading slices: multi-page TIFF stacks and numbered PNG folders, as uint8 (N, H, W)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError

INDEX_NAME = re.compile(r"^(\d+)\.png$", re.IGNORECASE)


def read_tif_stack(path: Path) -> np.ndarray:
    """Read a multi-page grayscale uint8 TIFF as (N, H, W); DataError names file and page."""
    import tifffile

    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    slices: list[np.ndarray] = []
    try:
        tf = tifffile.TiffFile(path)
    except Exception as e:  # tifffile raises several types for non-TIFF bytes
        raise DataError(path, f"not a readable TIFF ({type(e).__name__}: {e})") from e
    with tf:
        try:
            pages = list(tf.pages)
        except Exception as e:
            raise DataError(path, f"corrupt TIFF page directory ({type(e).__name__}: {e})") from e
        for i, page in enumerate(pages):
            where = f"page {i}"
            shape = tuple(page.shape)
            channels = int(getattr(page, "samplesperpixel", 1) or 1)
            if channels > 1:  # RGB/RGBA pages, stored interleaved (H, W, C) or planar (C, H, W)
                hint = (
                    " (a stack of 3 or 4 slices written without photometric='minisblack' is stored as one"
                    " planar RGB page)"
                    if len(shape) == 3 and shape[0] == channels
                    else ""
                )
                raise DataError(
                    path,
                    f"page has {channels} channels (shape {shape}); expected 8-bit grayscale (H, W){hint}",
                    where,
                )
            if len(shape) != 2:
                raise DataError(path, f"page has shape {shape}; expected a 2-D grayscale slice (H, W)", where)
            if page.dtype != np.uint8:
                raise DataError(path, f"page has dtype {page.dtype}; expected uint8 (8-bit grayscale)", where)
            if slices and shape != slices[0].shape:
                raise DataError(
                    path,
                    f"page has shape {shape}, page 0 has {slices[0].shape}; all slices must match",
                    where,
                )
            try:
                slices.append(np.asarray(page.asarray()))
            except Exception as e:
                raise DataError(path, f"cannot decode page ({type(e).__name__}: {e})", where) from e
    if not slices:
        raise DataError(path, "TIFF has no pages")
    if len(slices) == 1:
        # The known broken copies of these files are one-page truncations of the 30-page stacks.
        raise DataError(
            path,
            f"single 2-D page of shape {slices[0].shape}; expected a multi-page stack of slices (N, H, W) "
            "(a one-page file is usually a truncated copy)",
        )
    return np.stack(slices)


def read_png(path: Path) -> np.ndarray:
    """Read one 8-bit grayscale PNG as (H, W) uint8; DataError names the file."""
    from PIL import Image

    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated or corrupt file fails here, not later
            mode = img.mode
            arr = np.asarray(img)
    except Exception as e:  # PIL raises OSError / SyntaxError / ValueError for broken files
        raise DataError(path, f"not a readable PNG ({type(e).__name__}: {e})") from e
    if mode != "L":
        raise DataError(
            path, f"image mode {mode!r} with shape {arr.shape}; expected 8-bit grayscale (mode 'L')"
        )
    return arr


def png_files(folder: Path, *, ignore_other_names: bool = False) -> dict[int, Path]:
    """Map slice index -> ``{i}.png`` in ``folder``; indices must be exactly 0..N-1."""
    found: dict[int, Path] = {}
    for p in folder.iterdir():
        if p.name.startswith(".") or not p.is_file():
            continue
        m = INDEX_NAME.match(p.name)
        if m is None:
            if p.suffix.lower() == ".png" and not ignore_other_names:
                raise DataError(p, "unexpected file name; slices must be named {i}.png with i = 0..N-1")
            continue
        idx = int(m.group(1))
        if idx in found:
            raise DataError(p, f"slice {idx} is also stored as {found[idx].name}")
        found[idx] = p
    if not found:
        raise DataError(folder, "no {i}.png slices in folder")
    missing = sorted(set(range(len(found))) - set(found))
    if missing:
        raise DataError(
            folder, f"slice indices must be 0..N-1 without gaps; missing {index_list(missing)}.png"
        )
    return found


def index_list(idx: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in idx[:limit])
    return "{" + shown + (", ..." if len(idx) > limit else "") + "}"


def read_png_stack(files: dict[int, Path]) -> np.ndarray:
    slices: list[np.ndarray] = []
    for i in range(len(files)):
        arr = read_png(files[i])
        if slices and arr.shape != slices[0].shape:
            raise DataError(
                files[i], f"slice {i} has shape {arr.shape}, slice 0 ({files[0].name}) has {slices[0].shape}"
            )
        slices.append(arr)
    return np.stack(slices)
