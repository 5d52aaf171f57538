"""Label values in the files (0 membrane, 255 cell) and class indices in targets (0, 1), both ways."""

from __future__ import annotations

import numpy as np

CLASS_NAMES: tuple[str, str] = ("membrane", "cell")
MEMBRANE_VALUE = 0  # pixel value of membrane in the label files
CELL_VALUE = 255  # pixel value of cell interior in the label files
MEMBRANE_TARGET = 0  # class index of membrane in training targets (= CLASS_NAMES.index("membrane"))
CELL_TARGET = 1  # class index of cell interior in training targets


def _check_two_values(a: np.ndarray, membrane: int, cell: int, what: str) -> None:
    """ValueError naming the values of ``a`` that are neither ``membrane`` nor ``cell``."""
    bad = (a != membrane) & (a != cell)
    if bad.any():
        raise ValueError(
            f"{what} must be {membrane} (membrane) or {cell} (cell); found {describe_values(a[bad])}"
        )


def labels_to_target(labels: np.ndarray) -> np.ndarray:
    """Label values {0 membrane, 255 cell} -> class indices {0 membrane, 1 cell} (uint8)."""
    labels = np.asarray(labels)
    _check_two_values(labels, MEMBRANE_VALUE, CELL_VALUE, "labels")
    return (labels == CELL_VALUE).astype(np.uint8)


def target_to_labels(target: np.ndarray) -> np.ndarray:
    """Class indices {0 membrane, 1 cell} -> label values {0 membrane, 255 cell} (uint8)."""
    target = np.asarray(target)
    _check_two_values(target, MEMBRANE_TARGET, CELL_TARGET, "targets")
    return np.where(target == CELL_TARGET, CELL_VALUE, MEMBRANE_VALUE).astype(np.uint8)


def membrane_fraction(labels: np.ndarray) -> float:
    """Fraction of label pixels that are membrane (value ``MEMBRANE_VALUE``)."""
    labels = np.asarray(labels)
    return float(np.count_nonzero(labels == MEMBRANE_VALUE) / labels.size) if labels.size else float("nan")


def describe_values(a: np.ndarray, limit: int = 8) -> str:
    vals = np.unique(a)
    shown = ", ".join(str(v) for v in vals[:limit].tolist())
    return f"[{shown}{', ...' if len(vals) > limit else ''}] in {a.size} pixel(s)"
