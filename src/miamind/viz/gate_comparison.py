"""Attention gates of several trained models side by side: spatial heat maps and channel-gate boxes
(:func:`plot_gate_comparison`, from the :class:`~miamind.viz.gate_capture.GateCapture` lists of each model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._figure import PathLike, new_figure, save_png
from .attention_maps import _heat, _images_for_display
from .gate_capture import GateCapture

__all__ = ["GateColumn", "plot_gate_comparison", "pick_layer"]


@dataclass(frozen=True)
class GateColumn:
    """One model's gates on the shown images: a column of heat maps and a group of channel boxes.

    Attributes:
        title: the column's heading, e.g. the run's attention (``"cbam"``).
        captures: every layer's capture on the shown images, in depth order (from
            :func:`~miamind.viz.gate_capture.capture_gates`).
        layer: name of the capture whose spatial picture the column shows.
    """

    title: str
    captures: Sequence[GateCapture]
    layer: str

    def shown(self) -> GateCapture:
        for capture in self.captures:
            if capture.name == self.layer:
                return capture
        names = ", ".join(c.name for c in self.captures) or "none"
        raise InputError(f"column {self.title!r}: no layer {self.layer!r} (layers: {names})")


def pick_layer(captures: Sequence[GateCapture], input_size: tuple[int, int], layer: str = "auto") -> str:
    """The layer to draw: ``layer`` itself (checked to exist), or for ``"auto"`` the deepest layer whose
    2-D spatial picture is at least 1/4 of ``input_size`` (H, W) along both axes, so the map is readable
    over the image (none that large: the one with the largest map, the deepest of equals).

    Raises ValueError naming the available layers when ``layer`` is not among them or none is 2-D.
    """
    maps = [c for c in captures if c.spatial.dim() == 3]
    names = ", ".join(f"{c.name} ({'x'.join(map(str, c.spatial.shape[1:]))})" for c in captures) or "none"
    if not maps:
        raise InputError(f"no layer with a 2-D spatial picture (layers: {names})")
    if layer != "auto":
        if not any(c.name == layer for c in maps):
            raise InputError(f"layer {layer!r} not found; layers with a 2-D spatial picture: {names}")
        return layer
    height, width = input_size
    readable = [c for c in maps if 4 * c.spatial.shape[1] >= height and 4 * c.spatial.shape[2] >= width]
    if readable:
        return readable[-1].name
    area = [c.spatial.shape[1] * c.spatial.shape[2] for c in maps]
    return maps[max(range(len(maps)), key=lambda i: (area[i], i))].name


def plot_gate_comparison(
    images: Any,
    columns: Sequence[GateColumn],
    out_png: PathLike,
    *,
    denormalize: tuple[Any, Any] | None = None,
    row_labels: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Draw the gates of several models on the same images side by side to ``out_png``.

    Top: one row per image; the input, then per column the spatial picture of its chosen layer
    upsampled (bilinear) to the input size and blended over the grey image, colours scaled to that
    map's own min..max (printed under the panel: gates often vary over a narrow range). Bottom: the
    channel pictures per layer in depth order, one box per column over all values of the shown images
    (N x C; quartiles, whiskers at min and max), so stages and models can be compared. A footnote
    says what the pictures are per family (the :attr:`GateCapture.meaning` lines).

    Args:
        images: the batch the captures were made on, (N, 3, H, W), (N, 1, H, W) or (N, H, W).
        columns: one per model; each capture must hold at least N images.
        out_png: where the PNG goes (parents created, written atomically).
        denormalize: ``(mean, std)`` that normalised the images (shown as ``clip(x * std + mean, 0, 1)``).
        row_labels: optional text per image (e.g. ``"test 3: cat"``).
        title: optional figure title.

    Returns the written path. Raises ValueError for no columns, bad image shapes, a missing layer or
    captures holding fewer images than shown.
    """
    if not columns:
        raise InputError("columns: nothing to draw (no model given)")
    shown_images = _images_for_display(images, denormalize)
    n_images, height, width = shown_images.shape[:3]
    shown = [column.shown() for column in columns]
    for column, capture in zip(columns, shown, strict=True):
        if capture.spatial.dim() != 3:
            raise InputError(f"column {column.title!r}: layer {capture.name!r} has no 2-D spatial picture")
        for c in column.captures:
            if c.channel.shape[0] < n_images or c.spatial.shape[0] < n_images:
                raise InputError(
                    f"column {column.title!r}: layer {c.name!r} holds {c.channel.shape[0]} images, "
                    f"fewer than the {n_images} shown"
                )
    if row_labels is not None and len(row_labels) != n_images:
        raise InputError(f"row_labels: {len(row_labels)} labels for {n_images} images")
    heat = [_heat(c.spatial, n_images, (height, width)) for c in shown]

    from matplotlib import colormaps

    n_cols = 1 + len(columns)
    panel = 2.4
    n_stages = max(len(column.captures) for column in columns)
    box_height = 3.2
    fig = new_figure(
        (max(panel * n_cols, 1.2 * n_stages * len(columns) + 2), panel * n_images + box_height + 1.0),
        layout="constrained",
    )
    top, bottom = fig.subfigures(2, 1, height_ratios=[panel * n_images, box_height + 0.6])
    axes = top.subplots(n_images, n_cols, squeeze=False)
    for row in range(n_images):
        ax = axes[row, 0]
        ax.imshow(shown_images[row], interpolation="nearest")
        ax.set_title(row_labels[row] if row_labels is not None else f"image {row}", fontsize=8)
        grey = shown_images[row].mean(axis=2)
        for col, (column, capture, maps) in enumerate(zip(columns, shown, heat, strict=True), start=1):
            ax = axes[row, col]
            gate = maps[row]
            lo, hi = float(gate.min()), float(gate.max())
            ax.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.imshow(gate, cmap="inferno", vmin=lo, vmax=hi if hi > lo else lo + 1e-6, alpha=0.6)
            size = "x".join(str(s) for s in capture.spatial.shape[1:])
            head = f"{column.title}\n{capture.name} ({size})\n" if row == 0 else ""
            ax.set_title(f"{head}{lo:.3g}..{hi:.3g}", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])

    ax = bottom.subplots()
    colours = [colormaps["tab10"](i % 10) for i in range(len(columns))]
    group = len(columns) + 1  # one gap between stages
    for col, column in enumerate(columns):
        values = [c.channel[:n_images].float().cpu().numpy().ravel() for c in column.captures]
        positions = [stage * group + col for stage in range(len(values))]
        parts = ax.boxplot(
            values,
            positions=positions,
            widths=0.8,
            whis=(0, 100),
            patch_artist=True,
            showfliers=False,
            medianprops={"color": "black"},
        )
        for box in parts["boxes"]:
            box.set_facecolor(colours[col])
            box.set_alpha(0.7)
        ax.plot([], [], color=colours[col], linewidth=6, label=column.title)
    first = columns[0].captures
    same = all([c.name for c in column.captures] == [c.name for c in first] for column in columns)
    # depth order is the grouping; names label it only when every model has the same layers
    ticks = [c.name for c in first] if same else [f"layer {i}" for i in range(n_stages)]
    ax.set_xticks([stage * group + (len(columns) - 1) / 2 for stage in range(len(ticks))], ticks, fontsize=7)
    ax.set_ylabel("channel picture value", fontsize=8)
    ax.set_title(
        f"channel pictures per layer: all channels of the {n_images} images above\n"
        "(box: quartiles, whiskers: min..max)",
        fontsize=9,
    )
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("\n".join(dict.fromkeys(c.meaning for c in shown)), fontsize=7)
    if title:
        fig.suptitle(title)
    return save_png(fig, out_png)
