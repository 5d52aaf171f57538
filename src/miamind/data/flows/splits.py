"""Train/val/test splits of a FlowTable: split first, then fit clip, scaler and class weights on train."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from ...errors import InputError
from ..info import DatasetInfo
from ..splits import apply_scaler, balanced_class_weights, fit_scaler, stratified_split
from .clean import apply_clip, finite_rows, first_of_duplicates, fit_clip
from .labels import BENIGN
from .table import FlowTable


class SplitOptions(TypedDict, total=False):
    """The keyword arguments of ``make_splits`` a dataset's loader passes through unchanged
    (``load_cicids2017(**options)``); defaults and meaning are those of ``make_splits``."""

    label_mode: str
    split: Sequence[float]
    seed: int
    nonfinite: str
    scale: str | None
    all_classes: bool
    drop_duplicates: bool


@dataclass
class FlowSplits:
    """Train/val/test arrays ready for a training engine, and what was fitted on train.

    ``x_*`` are float32 (N, F), ``y_*`` int64 class indices into ``class_names``. For a 1-D CNN,
    ``x.reshape(-1, *input_shape)`` gives (N, 1, F). ``indices`` are the rows of the parsed
    table in each split; ``transform`` applies the fitted clip + scaling to new raw features.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    class_weights: np.ndarray
    feature_names: tuple[str, ...]
    scaler: dict[str, object]
    clip: dict[str, np.ndarray] | None
    indices: dict[str, np.ndarray]
    label_mode: str
    report: dict
    dataset: str = "cicids2017"

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(self.dataset, "flow-classification", self.class_names, self.input_shape)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int]:
        return (1, self.n_features)

    def transform(self, x_raw: np.ndarray) -> np.ndarray:
        """Raw features -> model input, with the statistics fitted on the training split."""
        x = np.array(x_raw, dtype=np.float32, copy=True)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(f"expected features of shape (N, {self.n_features}), got {x.shape}")
        if self.clip is not None:
            apply_clip(x, self.clip)
        return apply_scaler(x, self.scaler)  # type: ignore[arg-type]


def make_splits(
    table: FlowTable,
    *,
    label_mode: str = "binary",
    split: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    nonfinite: str = "drop",
    scale: str | None = "standard",
    all_classes: bool = False,
    relabel: Mapping[str, str | None] | None = None,
    dataset: str = "cicids2017",
    drop_duplicates: bool = True,
) -> FlowSplits:
    """Split first (stratified, seeded), then fit clip bounds, scaler and class weights on train.

    - ``label_mode``: "binary" (0 = BENIGN, 1 = attack) or "multiclass" (the table's labels).
      The split is stratified by the fine label in both modes, so it is the same rows either way.
    - ``nonfinite``: "drop" rows with Infinity/NaN (before splitting; counted per label) or
      "clip" them after splitting (see ``fit_clip``; replacements counted per split).
    - ``all_classes``: multiclass over the whole label vocabulary, absent classes included
      (weight 0); default is the labels present, in vocabulary order.
    - ``relabel``: label -> new label (or None to drop the rows); used for dataset policies such
      as the improved re-extraction's '... - Attempted' rows. Counted in the report.
    - ``drop_duplicates``: keep only the first of rows that are exact copies (every feature and the
      label, after relabelling and the non-finite policy), *before* splitting; otherwise a copy in
      train and another in test makes the test score partly a memory test. Counted per label in
      ``report["duplicates_dropped"]``.
    """
    if label_mode not in ("binary", "multiclass"):
        raise InputError(f"label_mode must be 'binary' or 'multiclass', got {label_mode!r}")
    if nonfinite not in ("drop", "clip"):
        raise InputError(f"nonfinite must be 'drop' or 'clip', got {nonfinite!r}")
    if scale not in ("standard", "minmax", None):
        raise InputError(f"scale must be 'standard', 'minmax' or None, got {scale!r}")
    names = list(table.label_names)
    codes = table.label_codes
    keep = np.ones(len(codes), bool)
    report: dict = {"read": table.report, "label_mode": label_mode, "nonfinite_policy": nonfinite}

    if relabel:
        unknown = set(relabel) - set(names)
        if unknown:
            raise InputError(f"relabel names labels not in the vocabulary: {sorted(unknown)}")
        targets = [t for t in relabel.values() if t is not None and t not in names]
        if targets:
            raise InputError(f"relabel targets not in the vocabulary: {sorted(set(targets))}")
        before = table.label_counts()
        lookup = np.arange(len(names))
        for src, dst in relabel.items():
            lookup[names.index(src)] = -1 if dst is None else names.index(dst)
        codes = lookup[codes]
        keep &= codes >= 0
        report["relabelled"] = {src: {"to": dst, "rows": before.get(src, 0)} for src, dst in relabel.items()}

    if nonfinite == "drop":
        finite = finite_rows(table.features)
        report["rows_dropped_nonfinite"] = _counts(codes[keep & ~finite], names)
        keep &= finite
    rows = np.flatnonzero(keep)
    if drop_duplicates:
        first = first_of_duplicates(table.features, codes, rows)
        report["duplicates_dropped"] = _counts(codes[rows[~first]], names)
        report["duplicate_rows_dropped"] = int((~first).sum())
        rows = rows[first]
    if not len(rows):
        raise InputError("no rows left to split")
    codes = codes[rows]

    (tr, va, te), train_only = stratified_split(codes, split, seed)
    if train_only:
        rare = {names[c]: n for c, n in train_only.items()}
        report["train_only_classes"] = rare
        warnings.warn(
            f"classes with fewer than 3 rows cannot be split three ways; kept in train only: {rare}",
            stacklevel=2,
        )

    if label_mode == "binary":
        class_names: tuple[str, ...] = (BENIGN, "attack")
        benign = names.index(BENIGN)
        y_all = (codes != benign).astype(np.int64)
    else:
        mapped_away = {names.index(s) for s, d in (relabel or {}).items() if d != s}
        vocabulary = np.array([c for c in range(len(names)) if c not in mapped_away], np.int64)
        chosen = vocabulary if all_classes else np.unique(codes)
        class_names = tuple(names[c] for c in chosen)
        to_class = np.full(len(names), -1, np.int64)
        to_class[chosen] = np.arange(len(chosen))
        y_all = to_class[codes]

    parts = {"train": tr, "val": va, "test": te}
    xs = {part: table.features[rows[idx]] for part, idx in parts.items()}  # copies, scaled in place below
    clip = None
    if nonfinite == "clip":
        clip = fit_clip(xs["train"])
        report["values_clipped"] = {part: apply_clip(x, clip) for part, x in xs.items()}
    scaler = fit_scaler(xs["train"], scale)
    for x in xs.values():
        apply_scaler(x, scaler)

    y = {part: y_all[idx] for part, idx in parts.items()}
    report["split"] = {
        "seed": seed,
        "fractions": [float(v) for v in split],
        "rows": {part: int(len(idx)) for part, idx in parts.items()},
        "label_counts": {part: _counts(codes[idx], names) for part, idx in parts.items()},
    }
    return FlowSplits(
        x_train=xs["train"],
        y_train=y["train"],
        x_val=xs["val"],
        y_val=y["val"],
        x_test=xs["test"],
        y_test=y["test"],
        class_names=class_names,
        class_weights=balanced_class_weights(y["train"], len(class_names)),
        feature_names=table.feature_names,
        scaler={"kind": scale, **scaler},
        clip=clip,
        indices={part: rows[idx] for part, idx in parts.items()},
        label_mode=label_mode,
        report=report,
        dataset=dataset,
    )


def _counts(codes: np.ndarray, names: Sequence[str]) -> dict[str, int]:
    c = np.bincount(codes, minlength=len(names))
    return {n: int(v) for n, v in zip(names, c, strict=True) if v}
