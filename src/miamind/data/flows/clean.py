"""Non-finite cells (Infinity/NaN: find, fit replacements on train, replace) and exact duplicate rows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def first_of_duplicates(features: np.ndarray, codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For ``rows`` of the table: True where the row is the first (in row order) with its exact
    features and label code. Rows compare by their float32 bytes, so NaN equals NaN and -0.0
    differs from 0.0, as an exact copy in the file would."""
    x = np.ascontiguousarray(features[rows], dtype=np.float32)
    key = np.concatenate([x.view(np.uint32), codes[rows].astype(np.uint32)[:, None]], axis=1)
    key = np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1] * 4))).ravel()
    _, first_index = np.unique(key, return_index=True)
    first = np.zeros(len(rows), bool)
    first[first_index] = True
    return first


def fit_clip(x_train: np.ndarray, block: int = 262_144) -> dict[str, np.ndarray]:
    """Replacement values for non-finite cells, from the finite training values of each column:
    +inf -> column max, -inf -> column min, NaN -> 0 (a 0/0 rate in CICFlowMeter output).
    A column with no finite training value gets 0."""
    f = x_train.shape[1]
    hi = np.full(f, -np.inf, np.float32)
    lo = np.full(f, np.inf, np.float32)
    for i in range(0, len(x_train), block):
        a = x_train[i : i + block]
        finite = np.isfinite(a)
        hi = np.maximum(hi, np.where(finite, a, -np.inf).max(axis=0))
        lo = np.minimum(lo, np.where(finite, a, np.inf).min(axis=0))
    hi[~np.isfinite(hi)] = 0
    lo[~np.isfinite(lo)] = 0
    return {"posinf": hi.astype(np.float32), "neginf": lo.astype(np.float32), "nan": np.zeros(f, np.float32)}


def finite_rows(x: np.ndarray, block: int = 262_144) -> np.ndarray:
    """Rows whose values are all finite (in row blocks: no (N, F) temporary)."""
    out = np.empty(len(x), bool)
    for i in range(0, len(x), block):
        out[i : i + block] = np.isfinite(x[i : i + block]).all(axis=1)
    return out


def apply_clip(x: np.ndarray, clip: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Replace non-finite cells in place; returns how many of each kind were replaced."""
    counts = {}
    for kind, test in (("posinf", np.isposinf), ("neginf", np.isneginf), ("nan", np.isnan)):
        rows, cols = np.nonzero(test(x))
        x[rows, cols] = clip[kind][cols]
        counts[kind] = int(len(rows))
    return counts
