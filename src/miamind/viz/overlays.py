"""Segmentation results per slice: image, ground truth, prediction and an error overlay."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._figure import PathLike, display_range, new_figure, save_png, to_numpy

__all__ = ["plot_segmentation_overlays"]

#: Overlay colours (RGB): predicted positive where the truth is not / truth positive that was missed.
#: Orange and azure stay distinguishable for the common colour-vision deficiencies and on grey images.
FALSE_POSITIVE_RGB = (1.0, 0.45, 0.0)
MISSED_RGB = (0.0, 0.6, 1.0)


def _class_map(value: Any, name: str, shape: tuple, n_classes: int) -> np.ndarray:
    array = to_numpy(value, name)
    if array.shape != shape:
        raise ValueError(
            f"{name}: expected shape {shape} (as images, without the channel axis), got {array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.bool_)):
        if not np.all(array == np.round(array)):
            raise ValueError(
                f"{name}: expected integer class indices, got non-integer values of dtype {array.dtype}"
            )
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= n_classes):
        raise ValueError(
            f"{name}: class indices must lie in [0, {n_classes}) for class_names of length {n_classes}, "
            f"got values in [{array.min()}, {array.max()}]"
        )
    return array


def plot_segmentation_overlays(
    images: Any,
    targets: Any,
    preds: Any,
    out_png: PathLike,
    class_names: Sequence[str] = ("membrane", "cell"),
    positive_class: int = 0,
    max_slices: int | None = 8,
    title: str = "",
) -> Path:
    """One row per slice: image | ground truth | prediction | errors over the image.

    Args:
        images: (N, 1, H, W) or (N, H, W) float slices (any range: shown min-max scaled unless in [0, 1]).
        targets: (N, H, W) integer class map (0 = ``class_names[0]``, ...).
        preds: (N, H, W) integer class map, e.g. ``logits.argmax(1)``.
        out_png: where the PNG goes (parents created, written atomically).
        class_names: names of the classes; default ISBI 2012's (0 = membrane, 1 = cell).
        positive_class: the class whose errors the overlay shows (default 0, membrane): orange where it
            was predicted but is not there ("false membrane"), azure where it is there but was not
            predicted ("missed membrane").
        max_slices: draw at most this many slices (the first ones); None for all.
        title: optional figure title.

    Each row's title gives the slice's pixel error rate and the positive class's Dice.
    Returns the written path. Raises ValueError for mismatched shapes or class indices out of range.
    """
    image_array = to_numpy(images, "images")
    if image_array.ndim == 4 and image_array.shape[1] == 1:
        image_array = image_array[:, 0]
    if image_array.ndim != 3:
        raise ValueError(f"images: expected (N, 1, H, W) or (N, H, W), got shape {image_array.shape}")
    if image_array.shape[0] == 0:
        raise ValueError("images: no slices (N = 0)")
    n_classes = len(class_names)
    if n_classes < 2:
        raise ValueError(f"class_names: need at least 2 classes, got {list(class_names)}")
    if not 0 <= positive_class < n_classes:
        raise ValueError(f"positive_class: {positive_class} is not a class index in [0, {n_classes})")
    target_array = _class_map(targets, "targets", image_array.shape, n_classes)
    pred_array = _class_map(preds, "preds", image_array.shape, n_classes)
    if max_slices is not None:
        image_array, target_array, pred_array = (
            a[:max_slices] for a in (image_array, target_array, pred_array)
        )

    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    if n_classes == 2:
        # ISBI convention: membrane (class 0) dark, cell (class 1) light.
        colours = [(0.05, 0.05, 0.05), (0.95, 0.95, 0.95)]
    else:
        from matplotlib import colormaps

        base = colormaps["tab10" if n_classes <= 10 else "tab20"]
        colours = [base(i)[:3] for i in range(n_classes)]
    class_cmap = ListedColormap(colours)

    n, height, width = image_array.shape
    panel = 3.0
    aspect = height / width
    fig = new_figure((4 * panel, n * panel * aspect + 1.2), layout="constrained")
    axes = fig.subplots(n, 4, squeeze=False)
    positive = str(class_names[positive_class])
    for row in range(n):
        gray = display_range(image_array[row])
        truth, pred = target_array[row], pred_array[row]
        false_pos = (pred == positive_class) & (truth != positive_class)
        missed = (truth == positive_class) & (pred != positive_class)
        overlay = np.repeat(gray[..., None], 3, axis=2)
        # Opaque colours: a blended pixel of a thin membrane would vanish at figure resolution.
        overlay[false_pos] = FALSE_POSITIVE_RGB
        overlay[missed] = MISSED_RGB

        error_rate = float(np.mean(truth != pred))
        inter = np.sum((truth == positive_class) & (pred == positive_class))
        denom = np.sum(truth == positive_class) + np.sum(pred == positive_class)
        dice = 2.0 * inter / denom if denom > 0 else float("nan")

        shown = [
            (gray, dict(cmap="gray", vmin=0.0, vmax=1.0), "image"),
            (truth, dict(cmap=class_cmap, vmin=-0.5, vmax=n_classes - 0.5), "ground truth"),
            (pred, dict(cmap=class_cmap, vmin=-0.5, vmax=n_classes - 0.5), "prediction"),
            (overlay, {}, f"errors: {error_rate:.1%} px, {positive} Dice {dice:.3f}"),
        ]
        for ax, (data, kwargs, label) in zip(axes[row], shown, strict=True):
            ax.imshow(data, interpolation="nearest", **kwargs)
            ax.set_title(f"slice {row}: {label}" if label == "image" else label, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])

    handles = [
        Patch(facecolor=colours[i], edgecolor="gray", label=str(name)) for i, name in enumerate(class_names)
    ]
    handles += [
        Patch(facecolor=FALSE_POSITIVE_RGB, label=f"false {positive} (predicted, not true)"),
        Patch(facecolor=MISSED_RGB, label=f"missed {positive} (true, not predicted)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize="small")
    if title:
        fig.suptitle(title)
    return save_png(fig, out_png)
