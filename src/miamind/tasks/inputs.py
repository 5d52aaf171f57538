"""Raw files -> model inputs for ``miamind predict``, with the preprocessing fitted at training time.

``load_inputs(task, paths, preprocess_state) -> (x, names)``; ``paths`` are files or folders
(a folder means its own files of the task's kinds, sorted; subfolders are not searched) and
``preprocess_state`` is ``datamodule.preprocess_state()`` of the training run. Every error is a
``DataError`` naming the file (and page or line) that is wrong.

* ``cifar10``: image files (PNG, JPEG, BMP) that are 32x32 RGB -> float32 (N, 3, 32, 32)
  normalised with the training mean/std; ``names[i]`` is the file path.
* ``isbi2012``: 8-bit grayscale TIFF stacks (every page a slice; one page is fine here) or PNG
  slices -> float32 (N, 1, H, W), scaled to [0, 1] and standardised with the training mean/std.
  NOT padded: pad with ``isbi2012.pad_to_multiple(x, multiple)`` before the network and crop
  the output back with ``isbi2012.unpad`` (or ``datamodules.crop_to_target``); all slices must
  share one size. ``names[i]`` is the PNG path or ``"<tif path>:page <k>"``.
* ``cicids2017``: CSV files (``.csv`` / ``.csv.gz``) holding the training feature columns
  (``preprocess_state["feature_names"]``) under their CICFlowMeter names, in any order, other
  columns (identifiers, ``Label``) ignored -> float32 (N, 1, F) transformed exactly as
  ``FlowSplits.transform`` (clip, then scale). Read with the dataset reader's rules (latin-1,
  stripped header names, repeated header lines and empty lines skipped, ``Infinity``/``NaN``
  accepted, any other text an error). A non-finite cell is replaced as in training when the run
  used ``nonfinite="clip"``; after ``nonfinite="drop"`` there is no replacement value and it is
  an error. ``names[i]`` is ``"<csv path>:line <n>"`` (file line, header = line 1).

``preprocess_state_to_json`` / ``preprocess_state_from_json`` store such a state (numeric and
string arrays) in JSON metadata and back, dtype and values exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.augment import normalize
from ..data.errors import DataError
from ..errors import InputError

PathLike = str | Path
Inputs = tuple[torch.Tensor, list[str]]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SLICE_SUFFIXES = (".tif", ".tiff", ".png")
CSV_SUFFIXES = (".csv", ".csv.gz")


def _files(paths: PathLike | Sequence[PathLike], suffixes: Sequence[str], what: str) -> list[Path]:
    """Files in argument order; a folder contributes its own ``suffixes`` files, sorted."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise DataError(None, f"no input files given (expected {what})")
    out: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(tuple(suffixes)))
            if not found:
                raise DataError(
                    p, f"folder has no {what} ({', '.join(suffixes)}; subfolders are not searched)"
                )
            out.extend(found)
        elif p.is_file():
            if not p.name.lower().endswith(tuple(suffixes)):
                raise DataError(p, f"unsupported file type; expected {what} ({', '.join(suffixes)})")
            out.append(p)
        else:
            raise DataError(p, "no such file or folder")
    return out


def _state(state: Mapping[str, Any], keys: Sequence[str], task: str) -> dict[str, np.ndarray]:
    missing = [k for k in keys if k not in state]
    if missing:
        raise InputError(
            f"preprocess_state for {task} lacks {', '.join(missing)} (has: {', '.join(state) or 'nothing'})"
        )
    return {k: np.asarray(state[k]) for k in state}


def load_cifar10_inputs(paths, state) -> Inputs:
    from ..data.cifar10 import decode_image

    st = _state(state, ("mean", "std"), "cifar10")
    files = _files(paths, IMAGE_SUFFIXES, "image files")
    # decode_image insists on 32x32 RGB and names the file, its mode and size otherwise.
    images = np.stack([decode_image(f.read_bytes(), f, None) for f in files])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return normalize(x, st["mean"].tolist(), st["std"].tolist()), [str(f) for f in files]


def _read_tif_slices(path: Path) -> np.ndarray:
    """Every page of a grayscale uint8 TIFF as (N, H, W); a single page is allowed here."""
    import tifffile

    try:
        arr = tifffile.imread(path)
    except Exception as e:  # tifffile raises several types for non-TIFF or broken bytes
        raise DataError(path, f"not a readable TIFF ({type(e).__name__}: {e})") from None
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DataError(
            path, f"TIFF holds an array of shape {arr.shape}; expected 8-bit grayscale slices (N, H, W)"
        )
    if arr.dtype != np.uint8:
        raise DataError(path, f"TIFF has dtype {arr.dtype}; expected uint8 (8-bit grayscale)")
    return arr


def load_isbi2012_inputs(paths, state) -> Inputs:
    from ..data.isbi2012 import images_to_tensor, read_png

    st = _state(state, ("mean", "std"), "isbi2012")
    mean, std = float(st["mean"].reshape(-1)[0]), float(st["std"].reshape(-1)[0])
    slices: list[np.ndarray] = []
    names: list[str] = []
    for f in _files(paths, SLICE_SUFFIXES, "TIFF stacks or PNG slices"):
        if f.suffix.lower() == ".png":
            got, labels = read_png(f)[None], [str(f)]  # read_png: 8-bit grayscale or DataError
        else:
            got = _read_tif_slices(f)
            labels = [f"{f}:page {k}" for k in range(len(got))]
        if slices and got.shape[1:] != slices[0].shape:
            raise DataError(
                f,
                f"slices are {got.shape[1]}x{got.shape[2]} but {names[0]} is "
                f"{slices[0].shape[0]}x{slices[0].shape[1]}; predict one slice size at a time",
            )
        slices.extend(got)
        names.extend(labels)
    x = images_to_tensor(np.stack(slices))
    # The same float32 arithmetic as Isbi2012DataModule._standardise, so results match bit for bit.
    return (x - mean) / std, names


def load_cicids2017_inputs(paths, state) -> Inputs:
    from ..data.flows import apply_clip, read_feature_csv
    from ..data.splits import apply_scaler

    st = _state(state, ("scaler_offset", "scaler_scale", "feature_names"), "cicids2017")
    names_f = [str(n) for n in st["feature_names"].reshape(-1)]
    clip = {k: st[f"clip_{k}"] for k in ("posinf", "neginf", "nan")} if "clip_posinf" in st else None
    xs: list[np.ndarray] = []
    names: list[str] = []
    for f in _files(paths, CSV_SUFFIXES, "CSV files"):
        x, lines = read_feature_csv(f, names_f)
        bad = ~np.isfinite(x)
        if bad.any() and clip is None:
            r, c = np.argwhere(bad)[0]
            raise DataError(
                f,
                f"column {names_f[c]!r} is {x[r, c]}; the model was trained with nonfinite='drop', "
                "so rows with Infinity/NaN cannot be scored (remove them)",
                where=f"line {lines[r]}",
            )
        if clip is not None:
            apply_clip(x, clip)
        xs.append(apply_scaler(x, {"offset": st["scaler_offset"], "scale": st["scaler_scale"]}))
        names.extend(f"{f}:line {n}" for n in lines)
    x = np.concatenate(xs)
    return torch.from_numpy(x).reshape(len(x), 1, x.shape[1]), names


def load_inputs(
    task: str, paths: PathLike | Sequence[PathLike], preprocess_state: Mapping[str, Any]
) -> Inputs:
    """Files for ``task`` -> ``(x float32 batch, names)``, prepared as the evaluation data were.

    See the module docstring for the accepted files per task and the layout of ``x``.
    """
    from .registry import get_task

    return get_task(task).input_loader()(paths, preprocess_state)


def preprocess_state_to_json(state: Mapping[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """``{key: {"dtype", "shape", "data"}}`` with plain lists (floats repr round-trip exactly)."""
    out = {}
    for k, v in state.items():
        a = np.asarray(v)
        kind = "str" if a.dtype.kind == "U" else a.dtype.str
        out[k] = {"dtype": kind, "shape": list(a.shape), "data": a.reshape(-1).tolist()}
    return out


def preprocess_state_from_json(data: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Inverse of :func:`preprocess_state_to_json`."""
    out = {}
    for k, v in data.items():
        dtype = str if v["dtype"] == "str" else np.dtype(v["dtype"])
        out[k] = np.asarray(v["data"], dtype=dtype).reshape(v["shape"])
    return out


__all__ = [
    "load_cicids2017_inputs",
    "load_cifar10_inputs",
    "load_inputs",
    "load_isbi2012_inputs",
    "preprocess_state_from_json",
    "preprocess_state_to_json",
]
