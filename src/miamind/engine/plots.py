"""A run folder's plots: learning curves, test confusion matrix, segmentation overlays."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._atomic import PathLike


def save_run_plots(run_dir: PathLike, metrics: Mapping[str, Any], module=None, dm=None) -> list[Path]:
    """``plots/``: learning curves (from ``metrics.csv``), the confusion matrix of ``metrics.json``'s test.

    With a segmentation ``module`` and its data module ``dm``: overlays of a few held-out slices too.
    """
    from ..viz import plot_confusion, plot_learning_curves

    plots = Path(run_dir) / "plots"
    written: list[Path] = []
    csv_path = Path(run_dir) / "metrics.csv"
    if csv_path.exists():
        plot_learning_curves(csv_path, plots / "learning_curves.png")
        written.append(plots / "learning_curves.png")
    if metrics.get("test_confmat") is not None:
        plot_confusion(metrics["test_confmat"], metrics["class_names"], plots / "confusion_matrix.png")
        written.append(plots / "confusion_matrix.png")
    if module is not None and module.kind == "segmentation":
        written.append(_segmentation_overlays(plots / "segmentation_overlays.png", module, dm))
    return written


def _segmentation_overlays(path: Path, module, dm) -> Path:
    import torch

    from ..viz import plot_segmentation_overlays

    x, y = dm.example_batch(3, split="val")
    module.eval()
    with torch.no_grad():
        pred = module(x.to(module.device)).argmax(1).cpu()
    pred = pred[..., : y.shape[-2], : y.shape[-1]]
    x = x[..., : y.shape[-2], : y.shape[-1]]
    plot_segmentation_overlays(x, y, pred, path)
    return path
