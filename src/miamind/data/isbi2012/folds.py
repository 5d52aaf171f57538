"""Deterministic k-fold over slices: contiguous blocks, since neighbouring sections look alike."""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from ..splits import kfold_blocks

N_FOLDS = 5
DEFAULT_FOLD = 4  # with 30 slices and 5 folds: validation = slices 24..29, training = slices 0..23


def kfold_slices(
    n_slices: int = 30, n_folds: int = N_FOLDS, fold: int = DEFAULT_FOLD, *, gap: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-fold over slice indices: ``(train_idx, val_idx)``, both sorted int64.

    Folds are **contiguous blocks** of adjacent slices (fold k of 5 over 30 slices validates on
    slices 6k..6k+5), not a shuffled permutation: the slices are serial sections 50 nm apart,
    so neighbours look alike and a shuffled split would validate almost every slice next to a
    training neighbour, inflating scores. With blocks only the block edges touch training
    slices; ``gap`` > 0 also drops ``gap`` slices on each side of the validation block from
    training for a stricter split. Block sizes differ by at most one when ``n_folds`` does not
    divide ``n_slices``. There is no seed because nothing is random.
    """
    for name, v in (("n_slices", n_slices), ("n_folds", n_folds), ("fold", fold), ("gap", gap)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InputError(f"{name} must be an int, got {v!r}")
    if not 2 <= n_folds <= n_slices:
        raise InputError(f"n_folds must be in 2..n_slices={n_slices}, got {n_folds}")
    if not 0 <= fold < n_folds:
        raise InputError(f"fold must be in 0..{n_folds - 1} for n_folds={n_folds}, got {fold}")
    if gap < 0:
        raise InputError(f"gap must be >= 0, got {gap}")
    _, val_idx = kfold_blocks(n_slices, n_folds, fold)
    lo, hi = int(val_idx[0]) - gap, int(val_idx[-1]) + gap
    all_idx = np.arange(n_slices, dtype=np.int64)
    train_idx = all_idx[(all_idx < lo) | (all_idx > hi)]
    if len(train_idx) == 0:
        raise InputError(f"gap={gap} leaves no training slices for fold {fold}")
    return train_idx, val_idx
