"""Splits, class weights and scalers for every dataset, on scikit-learn.

One place for the statistics a loader fits on its training rows and the rows it holds out:
stratified train/val/test splits (CIC-IDS2017 flows), a stratified subset of exact size (the
CIFAR-10 validation hold-out), contiguous k-fold blocks (ISBI 2012 slices), balanced class weights
and standard / min-max scalers. scikit-learn does the work; this module fixes the conventions the
rest of the project relies on (sorted int64 indices, tiny classes kept in train, a 63-bit seed,
scalers stored as plain ``offset``/``scale`` arrays so run folders need no pickle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.model_selection import KFold, train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.class_weight import compute_class_weight

from ..errors import InputError

__all__ = [
    "apply_scaler",
    "balanced_class_weights",
    "fit_scaler",
    "kfold_blocks",
    "random_state",
    "stratified_indices",
    "stratified_split",
]


def random_state(seed: int) -> np.random.RandomState:
    """scikit-learn's ``random_state`` for a project seed (any non-negative int, 63-bit included):
    the seed goes through ``SeedSequence``, so no bits are dropped and nearby seeds are unrelated."""
    return np.random.RandomState(np.random.MT19937(int(seed)))


def _sorted(idx: np.ndarray) -> np.ndarray:
    return np.sort(np.asarray(idx, np.int64))


def stratified_split(
    strata: np.ndarray, fractions: Sequence[float], seed: int
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict[int, int]]:
    """Row indices (train, val, test), stratified by ``strata``, deterministic for a seed.

    Two ``train_test_split`` calls: the test rows first, then the validation rows out of the rest
    (fraction ``val / (train + val)``). A stratum with fewer than 3 rows cannot be stratified three
    ways: all its rows go to train, and it is returned in the second value (stratum -> rows) so the
    caller can report it.
    """
    f = np.asarray(fractions, np.float64)
    if f.shape != (3,) or (f < 0).any() or abs(f.sum() - 1.0) > 1e-6 or f[0] <= 0:
        raise InputError(
            f"split must be three non-negative fractions (train > 0) summing to 1, got {fractions}"
        )
    strata = np.asarray(strata)
    values, counts = np.unique(strata, return_counts=True)
    train_only = {int(s): int(n) for s, n in zip(values, counts, strict=True) if n < 3}
    small = np.isin(strata, list(train_only))
    train = np.flatnonzero(~small)
    val = test = np.empty(0, np.int64)
    rng = random_state(seed)
    if f[2] > 0 and len(train):
        train, test = train_test_split(train, test_size=f[2], stratify=strata[train], random_state=rng)
    if f[1] > 0 and len(train):
        train, val = train_test_split(
            train, test_size=f[1] / (f[0] + f[1]), stratify=strata[train], random_state=rng
        )
    train = np.concatenate([train, np.flatnonzero(small)])
    return (_sorted(train), _sorted(val), _sorted(test)), train_only


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick exactly ``n`` rows, stratified by ``labels``: ``(chosen, rest)``, both sorted int64.

    ``train_test_split(train_size=n, stratify=labels)``: each class contributes in proportion to
    its count (the remainders go to the classes with the largest fractional parts). Used to hold
    out a validation set and to take a training subset.
    """
    labels = np.asarray(labels)
    total = len(labels)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= total:
        raise InputError(f"cannot pick {n!r} of {total} rows")
    rows = np.arange(total, dtype=np.int64)
    if n in (0, total):  # scikit-learn refuses an empty side
        return (rows, rows[:0]) if n else (rows[:0], rows)
    chosen, rest = train_test_split(rows, train_size=int(n), stratify=labels, random_state=random_state(seed))
    return _sorted(chosen), _sorted(rest)


def kfold_blocks(n: int, n_folds: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """``KFold(n_folds)`` without shuffling, fold ``fold``: ``(train_idx, val_idx)``, sorted int64.

    The folds are contiguous blocks whose sizes differ by at most one (the first ``n % n_folds``
    blocks are one longer).
    """
    train_idx, val_idx = list(KFold(n_splits=n_folds).split(np.arange(n)))[fold]
    return _sorted(train_idx), _sorted(val_idx)


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's ``"balanced"`` weights ``n / (K * n_c)`` over the given labels (the training
    split), K the number of classes present; 0 for a class with no rows."""
    y = np.asarray(y)
    present = np.unique(y)
    w = np.zeros(n_classes, np.float64)
    if len(present):
        w[present] = compute_class_weight("balanced", classes=present, y=y)
    return w.astype(np.float32)


def fit_scaler(x_train: np.ndarray, kind: str | None) -> dict[str, np.ndarray]:
    """``x' = (x - offset) / scale`` with offset/scale from the training rows (float64).

    standard: ``StandardScaler`` (offset = mean, scale = std, ddof 0); minmax: ``MinMaxScaler``
    (offset = min, scale = max - min). A constant column gets scale 1 (CIC-IDS2017 has several
    all-zero columns). Stored as two arrays, not as the scikit-learn object, so a run folder holds
    no pickle.
    """
    f = x_train.shape[1]
    if kind is None:
        return {"offset": np.zeros(f, np.float64), "scale": np.ones(f, np.float64)}
    if kind not in ("standard", "minmax"):
        raise InputError(f"scale must be 'standard', 'minmax' or None, got {kind!r}")
    if len(x_train) == 0:
        raise InputError("cannot fit a scaler on an empty training split")
    if not np.isfinite(x_train).all():
        raise InputError("cannot fit a scaler on non-finite values; use nonfinite='drop' or 'clip'")
    x64 = np.asarray(x_train, np.float64)  # statistics in float64 whatever the input dtype
    if kind == "standard":
        std = StandardScaler().fit(x64)
        offset, scale = std.mean_, std.scale_
    else:
        mm = MinMaxScaler().fit(x64)
        offset, scale = mm.data_min_, mm.data_range_
    scale = np.where(scale > 0, scale, 1.0)
    return {"offset": np.asarray(offset, np.float64), "scale": np.asarray(scale, np.float64)}


def apply_scaler(x: np.ndarray, scaler: Mapping[str, np.ndarray]) -> np.ndarray:
    """Scale float32 ``x`` in place (statistics in float64, result float32)."""
    off = scaler["offset"].astype(np.float32)
    inv = (1.0 / scaler["scale"]).astype(np.float32)
    x -= off
    x *= inv
    return x
