"""Confusion-matrix heat map: rows are the true classes, columns the predicted ones."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._figure import PathLike, new_figure, save_png, to_numpy

__all__ = ["confusion_display_matrix", "plot_confusion"]


def _check_confmat(confmat: Any, class_names: Sequence[str]) -> np.ndarray:
    counts = to_numpy(confmat, "confmat").astype(np.float64, copy=False)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confmat: expected a square (K, K) matrix, got shape {tuple(counts.shape)}")
    if counts.shape[0] != len(class_names):
        raise ValueError(
            f"confmat: shape {tuple(counts.shape)} does not match {len(class_names)} class_names "
            f"({', '.join(map(str, class_names))})"
        )
    if counts.shape[0] < 1:
        raise ValueError("confmat: empty matrix (no classes)")
    if not np.all(np.isfinite(counts)):
        raise ValueError("confmat: contains NaN or infinite entries")
    if np.any(counts < 0):
        raise ValueError(f"confmat: negative entries (min {counts.min():g}); expected counts")
    return counts


def confusion_display_matrix(confmat: Any, class_names: Sequence[str], normalize: bool = True) -> np.ndarray:
    """The (K, K) float matrix :func:`plot_confusion` colours.

    ``normalize=True``: each row (true class) divided by its total, so entry (i, j) is the fraction of
    class-i samples predicted as j and the diagonal is the per-class recall; a class with no samples
    keeps a row of zeros (nothing to divide, and 0 draws as "no mass" rather than as an error).
    ``normalize=False``: the counts themselves, as float.

    Raises ValueError for a non-square matrix, a size that is not ``len(class_names)``, negative or
    non-finite entries.
    """
    counts = _check_confmat(confmat, class_names)
    if not normalize:
        return counts.copy()
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def plot_confusion(
    confmat: Any,
    class_names: Sequence[str],
    out_png: PathLike,
    normalize: bool = True,
    title: str = "",
) -> Path:
    """Draw a confusion matrix (rows = true class, columns = predicted class) to ``out_png``.

    Colour is the row-normalised fraction when ``normalize`` (see :func:`confusion_display_matrix`), the
    count otherwise. Every cell is annotated with its count (and its fraction when normalised); the
    text size and the figure size follow the number of classes, and the column labels are rotated, so
    2 to ~15 classes with long names stay readable. Returns the written path.
    """
    counts = _check_confmat(confmat, class_names)
    shown = confusion_display_matrix(counts, class_names, normalize)
    k = counts.shape[0]
    names = [str(n) for n in class_names]
    longest = max(len(n) for n in names)

    # Room for the cells plus the label text on the left and below.
    label_inches = min(0.075 * longest, 2.5)
    cell = 0.75 if k <= 6 else 0.55
    side = max(3.5, cell * k)
    fig = new_figure((side + label_inches + 1.6, side + label_inches + 1.0), layout="constrained")
    ax = fig.subplots()
    vmax = 1.0 if normalize else max(float(shown.max()), 1.0)
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(
        image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class" if normalize else "count"
    )

    fontsize = 10 if k <= 5 else 8 if k <= 10 else 6
    integer_counts = np.all(counts == np.round(counts))
    for i in range(k):
        for j in range(k):
            count = f"{int(counts[i, j])}" if integer_counts else f"{counts[i, j]:.3g}"
            text = f"{shown[i, j]:.2f}\n({count})" if normalize else count
            # Dark text on light cells, light on dark, so every number stays legible.
            colour = "white" if shown[i, j] > 0.6 * vmax else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=fontsize)

    rotate = longest > 3 or k > 6  # short labels of a few classes fit horizontally
    ax.set_xticks(
        range(k),
        labels=names,
        rotation=45 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor",
        fontsize=fontsize + 1,
    )
    ax.set_yticks(range(k), labels=names, fontsize=fontsize + 1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = counts.sum()
    accuracy = np.trace(counts) / total if total > 0 else float("nan")
    heading = title or "confusion matrix"
    n_text = f"{int(total)}" if integer_counts else f"{total:g}"
    ax.set_title(
        f"{heading}\n(rows: true, columns: predicted; n={n_text}, accuracy {accuracy:.3f})", fontsize=10
    )
    return save_png(fig, out_png)
