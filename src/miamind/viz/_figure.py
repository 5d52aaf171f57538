"""Headless figure creation and atomic PNG writing shared by the plotting functions.

Figures are built with :class:`matplotlib.figure.Figure` and an Agg canvas, never through
``pyplot``: pyplot keeps every figure in a global registry (a leak in long runs unless each one is
closed) and may pick an interactive backend that needs a display. A bare ``Figure`` is freed like any
Python object once the caller drops it, and works on machines without a display.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import numpy as np

from .._atomic import atomic_open

PathLike = Union[str, "os.PathLike[str]"]


def new_figure(figsize: tuple[float, float], **kwargs: Any):
    """A matplotlib ``Figure`` attached to an Agg canvas (imported here so ``import miamind`` stays light)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, out_png: PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` to ``out_png`` atomically (temporary file in the same folder, then ``os.replace``).

    Parent folders are created. A reader never sees a half-written PNG, and a failure leaves any
    previous file at ``out_png`` untouched. The figure is cleared afterwards so its artists can be freed.
    """
    out = Path(out_png)
    try:
        with atomic_open(out, "wb") as handle:
            fig.savefig(handle, format="png", dpi=dpi)
    finally:
        fig.clear()
    return out


def to_numpy(value: Any, name: str) -> np.ndarray:
    """``value`` (torch tensor, numpy array or nested sequence) as a numpy array, on the CPU."""
    if hasattr(value, "detach"):  # torch.Tensor without importing torch here
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            value = value.float()
        value = value.numpy()
    try:
        return np.asarray(value)
    except Exception as exc:  # pragma: no cover - depends on the foreign object
        raise ValueError(f"{name}: cannot convert {type(value).__name__} to an array ({exc})") from exc


def display_range(image: np.ndarray) -> np.ndarray:
    """Float image scaled for display: kept as is when inside [0, 1], else min-max rescaled to [0, 1].

    Normalised inputs (zero mean, unit variance) then still show their structure.
    """
    image = np.asarray(image, dtype=np.float64)
    lo, hi = float(np.nanmin(image)), float(np.nanmax(image))
    if lo >= 0.0 and hi <= 1.0:
        return image
    if hi - lo <= 0:
        return np.zeros_like(image)
    return (image - lo) / (hi - lo)
