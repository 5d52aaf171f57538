"""Learning curves from the ``metrics.csv`` written by Lightning's ``CSVLogger``.

The file format (``lightning.fabric.loggers.csv_logs._ExperimentWriter``): one header of all keys
ever logged, sorted, including ``step`` and (added by the Trainer) ``epoch``; one row per
``log_metrics`` call, so rows are sparse -- a training-step row has ``train/loss_step`` but no
``val/*``, the validation row of an epoch has ``val/*`` but no ``train/*_step``. A metric logged with
both ``on_step`` and ``on_epoch`` appears twice, as ``NAME_step`` and ``NAME_epoch``.

:func:`epoch_curves` reduces that table to one value per epoch and metric; :func:`plot_learning_curves`
draws it.
"""

from __future__ import annotations

import csv
import math
from bisect import bisect_left
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._figure import PathLike, new_figure, save_png

__all__ = ["epoch_curves", "plot_learning_curves"]

#: Columns that index rows rather than hold a metric.
_INDEX_COLUMNS = ("epoch", "step")

Curves = dict[str, tuple[np.ndarray, np.ndarray]]


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: metrics CSV not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        if not header:
            raise InputError(f"{path}: empty metrics CSV (no header line)")
        rows = list(reader)
    return header, rows


def _parse(cell: str, path: Path, line: int, column: str) -> float:
    if cell is None or cell.strip() == "":
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise InputError(f"{path}: line {line}, column {column!r}: not a number: {cell!r}") from None


def _row_epoch(row: dict[str, str], path: Path, line: int) -> int | None:
    epoch = _parse(row.get("epoch"), path, line, "epoch")
    if math.isnan(epoch):
        return None
    if epoch < 0 or epoch != int(epoch):
        raise InputError(f"{path}: line {line}, column 'epoch': not a non-negative integer: {row['epoch']!r}")
    return int(epoch)


def _fill_epochs_from_steps(
    rows: list[dict[str, str]], epochs: list[int | None], path: Path
) -> list[int | None]:
    """Epoch of rows logged without one, from their ``step``.

    ``LearningRateMonitor`` logs through the logger directly, so its rows have a step but no epoch;
    such a row belongs to the epoch of the rows with the same (else the closest earlier) step.
    """
    steps = [_parse(row.get("step"), path, line, "step") for line, row in enumerate(rows, start=2)]
    known = sorted(
        {(int(s), e) for s, e in zip(steps, epochs, strict=True) if e is not None and not math.isnan(s)}
    )
    if not known:
        return epochs
    known_steps = [s for s, _ in known]
    filled = list(epochs)
    for i, (step, epoch) in enumerate(zip(steps, epochs, strict=True)):
        if epoch is not None or math.isnan(step):
            continue
        # The first epoch seen at this step (at an epoch boundary, rows of the finished epoch share
        # the step of its last batch; the new epoch's first step is one higher), else the last one before.
        at = bisect_left(known_steps, int(step))
        if at < len(known) and known_steps[at] == int(step):
            filled[i] = known[at][1]
        elif at > 0:
            filled[i] = known[at - 1][1]
    return filled


def epoch_curves(metrics_csv: PathLike) -> Curves:
    """One value per epoch for every metric of a Lightning ``CSVLogger`` file.

    Returns ``{metric_name: (epochs, values)}`` (int64 and float64 arrays, epochs ascending), where

    * a metric logged as ``NAME_step`` and ``NAME_epoch`` is reported once, as ``NAME``, from the
      ``_epoch`` column (the epoch aggregate Lightning computed; the per-step values are dropped);
    * the value of an epoch is the mean of the metric's non-empty cells in that epoch's rows: exactly
      the logged value for epoch-level metrics, the epoch mean for metrics logged only per step, and
      the mean over the validation runs when validation ran several times in one epoch;
    * a row without an epoch (``LearningRateMonitor``'s) counts in the epoch of its ``step``; other rows
      without an epoch and metrics without any value are left out.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError (naming the file): empty file, no ``epoch`` column, no data rows, a cell that is not
            a number, or no metric with any value.
    """
    path = Path(metrics_csv)
    header, rows = _read_rows(path)
    if "epoch" not in header:
        raise InputError(
            f"{path}: no 'epoch' column (columns: {', '.join(header)}); "
            "expected the metrics.csv of Lightning's CSVLogger written during Trainer.fit"
        )
    if not rows:
        raise InputError(f"{path}: no data rows below the header (nothing was logged)")

    columns = [c for c in header if c not in _INDEX_COLUMNS]
    names = {}  # column -> reported metric name
    for column in columns:
        stem = column.rsplit("_", 1)[0]
        if column.endswith("_step") and stem + "_epoch" in columns:
            continue
        names[column] = stem if column.endswith("_epoch") and stem + "_step" in columns else column

    epochs_of_rows = [_row_epoch(row, path, line) for line, row in enumerate(rows, start=2)]
    if "step" in header:
        epochs_of_rows = _fill_epochs_from_steps(rows, epochs_of_rows, path)

    sums: dict[str, dict[int, list[float]]] = {name: defaultdict(list) for name in names.values()}
    # line 1 is the header
    for line, (row, epoch) in enumerate(zip(rows, epochs_of_rows, strict=True), start=2):
        if epoch is None:
            continue
        for column, name in names.items():
            value = _parse(row.get(column), path, line, column)
            if not math.isnan(value):
                sums[name][epoch].append(value)

    curves: Curves = {}
    for name, per_epoch in sums.items():
        if not per_epoch:
            continue
        epochs = np.array(sorted(per_epoch), dtype=np.int64)
        values = np.array([np.mean(per_epoch[int(e)]) for e in epochs], dtype=np.float64)
        curves[name] = (epochs, values)
    if not curves:
        raise InputError(f"{path}: no metric has a value (columns: {', '.join(header)})")
    return curves


def _is_lr(name: str) -> bool:
    # LearningRateMonitor logs "lr-<Optimizer>" (and "lr-<Optimizer>/pg<i>" for several param groups).
    leaf = name.rsplit("/", 1)[-1].lower()
    return name.lower().startswith("lr-") or leaf in ("lr", "learning_rate")


def _style(name: str) -> dict:
    """Line style by split prefix, so train / val / test of one metric are told apart at a glance."""
    split = name.split("/", 1)[0].lower() if "/" in name else ""
    if split == "train":
        return dict(linestyle="-", marker="o", markersize=3)
    if split in ("val", "valid", "validation"):
        return dict(linestyle="--", marker="s", markersize=3)
    if split == "test":
        return dict(linestyle=":", marker="*", markersize=8)
    return dict(linestyle="-.", marker=".", markersize=4)


def plot_learning_curves(metrics_csv: PathLike, out_png: PathLike, title: str = "") -> Path:
    """Plot per-epoch learning curves of a Lightning ``CSVLogger`` ``metrics.csv`` to ``out_png``.

    Panels (each only when it has a curve): **loss** (every metric whose name contains "loss": train
    and val losses together), **metrics** (every other metric: accuracy, dice, F1, ... of all splits;
    train solid, val dashed, test dotted -- a test metric logged once is a single star), and
    **learning rate** (``LearningRateMonitor`` columns, log scale) and **throughput** (columns ending
    in ``per_s``). Per-class metrics (``..._per_class_...``, ``dice_<class>`` and the like are kept;
    only names containing ``per_class``) are left out: ten classes would bury the headline curve
    (they are in metrics.json). Values per epoch as computed by :func:`epoch_curves`. Epochs are
    Lightning's, counted from 0.

    Returns the written path. Errors as :func:`epoch_curves`.
    """
    curves = epoch_curves(metrics_csv)
    groups: dict[str, list[str]] = {"loss": [], "metrics": [], "learning rate": [], "throughput": []}
    for name in curves:
        if "per_class" in name:
            continue
        if _is_lr(name):
            groups["learning rate"].append(name)
        elif name.endswith("per_s"):
            groups["throughput"].append(name)
        elif "loss" in name.lower():
            groups["loss"].append(name)
        else:
            groups["metrics"].append(name)
    panels = [(label, names) for label, names in groups.items() if names]

    fig = new_figure((6.4 * len(panels), 4.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    max_epoch = max(int(epochs.max()) for epochs, _ in curves.values())
    for ax, (label, names) in zip(axes, panels, strict=True):
        for name in sorted(names):
            epochs, values = curves[name]
            # A metric with one value (typically test/*, logged once after fit) gets it in the legend.
            label_text = f"{name} = {values[0]:.4g}" if len(values) == 1 else name
            ax.plot(epochs, values, label=label_text, **_style(name))
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if label == "learning rate" and all(np.all(curves[n][1] > 0) for n in names):
            ax.set_yscale("log")
        # Integer ticks only: a fraction of an epoch means nothing here.
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlim(-0.25, max_epoch + 0.25)
        ax.legend(fontsize="small" if len(names) <= 8 else "x-small", ncol=1 if len(names) <= 12 else 2)
    if title:
        fig.suptitle(title)
    return save_png(fig, out_png)
