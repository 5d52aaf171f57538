"""What the MIA-Mind layers of a model attend to: capture their gates, draw them over the input.

:func:`capture_attention` records the gates ``w_c`` and ``w_s`` every MIA-family layer
(:class:`miamind.attention.mia._MIABase` subclasses) multiplied its input by; :func:`plot_attention_maps`
draws ``w_s`` as a heat map over the input images and ``w_c`` as a bar chart per layer.

Other attention layers (se, eca, cbam, gc, ge, coordatt, triplet, simam) are skipped: they have no
(channel gate, spatial gate) pair of this form -- SE/ECA/GC/GE have no spatial gate, CBAM applies its
gates one after the other through private sub-modules, coordinate and triplet attention have
per-axis gates, SimAM has one energy-based gate per element -- so there is no (w_c, w_s) picture of
them to draw, and a picture that is not what the layer computed is worse than none.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..attention.mia import MIAMind, MIAMindAdaptive, MIAMindAdd, MIAMindCode, MIAMindSeq, _MIABase
from ._figure import PathLike, new_figure, save_png, to_numpy

__all__ = ["AttentionCapture", "capture_attention", "plot_attention_maps"]

#: How each MIA variant combines its gates (see miamind.attention.mia); the key of AttentionCapture.fusion.
_FUSION = {
    MIAMind: "product",  # out = x * (w_c * w_s),            w_s from x
    MIAMindAdd: "sum",  # out = x * (w_c + w_s),            w_s from x
    MIAMindSeq: "sequential",  # out = (x * w_c) * w_s,            w_s from x * w_c
    MIAMindCode: "sequential",  # same structure, the MindSpore code's gates
    MIAMindAdaptive: "adaptive",  # out = x * (g w_c w_s + (1 - g)(w_c + w_s) / 2), w_s from x
}


@dataclass(frozen=True)
class AttentionCapture:
    """The gates one MIA-family layer applied in one forward pass.

    Attributes:
        name: qualified module name in the model (``"layer1.0.attn"``); a layer called several times in
            one pass gets ``"#k"`` appended from its second call on.
        w_c: channel gate, (N, C), detached, in the dtype and on the device the layer used.
        w_s: spatial gate, (N, *spatial), the gate the layer multiplied by: for the sequential variants
            (``mia_seq``, ``mia_code``) it was computed from the channel-refined ``x * w_c``, not from x.
        fusion: how the layer combined them: ``"product"``, ``"sum"``, ``"sequential"`` or
            ``"adaptive"`` (see :meth:`apply`).
        mix: ``g = sigmoid(theta)`` of ``mia_adaptive`` (0-d tensor), else None.
    """

    name: str
    w_c: torch.Tensor
    w_s: torch.Tensor
    fusion: str = "product"
    mix: torch.Tensor | None = None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output for its input ``x`` rebuilt from the captured gates.

        Same operations in the same order as the layer's ``forward_gated``, so the result is bitwise
        equal to what the layer returned (this is how :func:`capture_attention` checks every capture).
        """
        w_c = self.w_c.reshape(*self.w_c.shape, *([1] * (self.w_s.dim() - 1)))
        w_s = self.w_s.unsqueeze(1)
        if self.fusion == "product":
            return x * (w_c * w_s)
        if self.fusion == "sum":
            return x * (w_c + w_s)
        if self.fusion == "sequential":
            return x * w_c * w_s
        if self.fusion == "adaptive":
            g = self.mix
            return x * (g * (w_c * w_s) + (1 - g) * (w_c + w_s) * 0.5)
        raise ValueError(f"AttentionCapture {self.name!r}: unknown fusion {self.fusion!r}")


def _fusion_of(module: _MIABase) -> str | None:
    """The fusion of a known variant; None for a subclass with its own ``forward_gated`` (unknown maths)."""
    for cls in type(module).__mro__:
        if cls in _FUSION:
            return _FUSION[cls] if type(module).forward_gated is cls.forward_gated else None
    return None


def _reproduces(rebuilt: torch.Tensor, output: torch.Tensor) -> bool:
    if torch.equal(rebuilt, output):
        return True
    # Bitwise equality can fail only through non-deterministic kernels (e.g. cuDNN convolution
    # algorithms picked anew); allow rounding noise of the dtype, nothing more.
    tol = {torch.float16: 1e-2, torch.bfloat16: 2e-2}.get(output.dtype, 1e-5)
    return torch.allclose(rebuilt.float(), output.float(), rtol=tol, atol=tol)


def capture_attention(
    model: nn.Module, x: torch.Tensor, *, return_output: bool = False
) -> list[AttentionCapture] | tuple[list[AttentionCapture], Any]:
    """Run ``model(x)`` once (eval mode, no grad) and capture the gates of every MIA-family layer.

    Forward hooks on each MIA layer's gate modules (``gate_c``, ``gate_s``) receive the gates as the
    layer computed them (for ``mia_seq`` / ``mia_code`` the spatial gate of ``x * w_c``); a forward
    hook on the layer itself then takes its input and output, and :meth:`AttentionCapture.apply` must
    reproduce that output from the captured gates -- bitwise on deterministic kernels -- or a
    RuntimeError names the layer. So what is returned is what the layer really multiplied by.

    Non-MIA attention layers are skipped (see the module docstring), as is an ``_MIABase`` subclass
    that overrides ``forward_gated`` (unknown fusion; a warning names it). A model without MIA layers
    gives an empty list.

    The mode of every module (``training`` flag) is restored and all hooks are removed afterwards, also
    when the forward raises.

    Returns:
        The captures in call order (network depth order for a feed-forward model); with
        ``return_output=True`` the pair ``(captures, model output)``.
    """
    captures: list[AttentionCapture] = []
    calls: dict[str, int] = {}

    def hooks_for(name: str, fusion: str, module: _MIABase) -> list:
        gates: dict[str, torch.Tensor] = {}

        def start(_module: nn.Module, _args: tuple) -> None:
            gates.clear()  # a new call of the layer: gates of an earlier call must not leak in

        def keep(key: str):
            def hook(_gate: nn.Module, _args: tuple, output: torch.Tensor) -> None:
                gates[key] = output.detach()

            return hook

        def finish(_module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            (inp,) = args
            count = calls.get(name, 0)
            calls[name] = count + 1
            label = name if count == 0 else f"{name}#{count}"
            missing = [key for key in ("w_c", "w_s") if key not in gates]
            capture = None
            if not missing:
                capture = AttentionCapture(
                    name=label,
                    w_c=gates["w_c"].flatten(1),
                    w_s=gates["w_s"][:, 0],
                    fusion=fusion,
                    mix=torch.sigmoid(module.theta).detach() if fusion == "adaptive" else None,
                )
            if capture is None or not _reproduces(capture.apply(inp), output):
                why = f" ({' and '.join(missing)} never computed)" if missing else ""
                raise RuntimeError(
                    f"capture_attention: the gates captured for layer {label!r} "
                    f"({type(module).__name__}, fusion {fusion!r}) do not reproduce its output{why}; "
                    "has its forward been changed?"
                )
            captures.append(capture)

        return [
            module.register_forward_pre_hook(start),
            module.gate_c.register_forward_hook(keep("w_c")),
            module.gate_s.register_forward_hook(keep("w_s")),
            module.register_forward_hook(finish),
        ]

    modes = {module: module.training for module in model.modules()}
    handles = []
    try:
        for name, module in model.named_modules():
            if not isinstance(module, _MIABase):
                continue
            fusion = _fusion_of(module)
            if fusion is None:
                warnings.warn(
                    f"capture_attention: skipping {name!r}: {type(module).__name__} overrides forward_gated, "
                    "so how it combines its gates is unknown",
                    stacklevel=2,
                )
                continue
            handles.extend(hooks_for(name or type(module).__name__, fusion, module))
        model.eval()
        with torch.no_grad():
            output = model(x)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            # Set the flag directly: train()/eval() recurse and would undo a sub-module's own mode.
            module.training = training
    return (captures, output) if return_output else captures


def _images_for_display(images: Any, denormalize: tuple[Any, Any] | None) -> np.ndarray:
    """(N, H, W, 3) float in [0, 1] from (N, C, H, W) with C in {1, 3} or (N, H, W)."""
    array = to_numpy(images, "images").astype(np.float64)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"images: expected (N, 3, H, W), (N, 1, H, W) or (N, H, W), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError("images: no images (N = 0)")
    channels = array.shape[1]
    if denormalize is not None:
        try:
            mean, std = denormalize
        except (TypeError, ValueError):
            raise ValueError(f"denormalize: expected (mean, std), got {denormalize!r}") from None
        mean = np.asarray(mean, dtype=np.float64).reshape(1, -1, 1, 1)
        std = np.asarray(std, dtype=np.float64).reshape(1, -1, 1, 1)
        if mean.size not in (1, channels) or std.size not in (1, channels):
            raise ValueError(
                f"denormalize: mean and std need 1 or {channels} values (one per image channel), "
                f"got {mean.size} and {std.size}"
            )
        array = np.clip(array * std + mean, 0.0, 1.0)
    else:
        # Normalised images shown per image min-max, so their content stays visible.
        lo = array.min(axis=(1, 2, 3), keepdims=True)
        hi = array.max(axis=(1, 2, 3), keepdims=True)
        outside = (lo < 0) | (hi > 1)
        scaled = (array - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
        array = np.where(outside, scaled, array)
    array = np.transpose(array, (0, 2, 3, 1))
    return np.repeat(array, 3, axis=3) if channels == 1 else array


def _select_layers(captures: Sequence[AttentionCapture], max_layers: int) -> list[AttentionCapture]:
    spatial_2d = [c for c in captures if c.w_s.dim() == 3]
    if not spatial_2d:
        shapes = ", ".join(f"{c.name}: w_s {tuple(c.w_s.shape)}" for c in captures) or "none given"
        raise ValueError(
            f"captures: no layer with a 2-D spatial gate (N, H, W) to draw over images ({shapes})"
        )
    if max_layers < 1:
        raise ValueError(f"max_layers must be >= 1, got {max_layers}")
    if len(spatial_2d) <= max_layers:
        return spatial_2d
    # Spread over depth (first and last always), not the first few: attention changes along the network.
    picks = np.unique(np.round(np.linspace(0, len(spatial_2d) - 1, max_layers)).astype(int))
    return [spatial_2d[i] for i in picks]


def _heat(spatial: torch.Tensor, n: int, size: tuple[int, int]) -> np.ndarray:
    """(n, H, W) bilinear upsampling of the first ``n`` maps to the input size, all at once."""
    up = F.interpolate(spatial[:n, None].float().cpu(), size=size, mode="bilinear", align_corners=False)
    return up[:, 0].numpy()


def _name_of(index: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)


def plot_attention_maps(
    images: Any,
    captures: Sequence[AttentionCapture],
    out_png: PathLike,
    class_names: Sequence[str] | None = None,
    max_layers: int = 4,
    *,
    denormalize: tuple[Any, Any] | None = None,
    labels: Sequence[int] | None = None,
    predictions: Sequence[int] | None = None,
    max_images: int = 4,
    title: str = "",
) -> Path:
    """Draw the captured MIA gates of a few images to ``out_png``.

    Layout: one row per image -- the input, then for each selected layer its spatial gate ``w_s``
    upsampled (bilinear) to the input size and blended over it (colour scaled to that map's own
    min..max, printed in the panel title, since gates often vary over a narrow range); a last row
    with one bar chart per layer: the channel gate ``w_c`` per channel, bars the mean over the shown
    images, one line per image.

    Args:
        images: the batch given to :func:`capture_attention`: (N, 3, H, W) RGB or (N, 1, H, W) /
            (N, H, W) grey, float. Values in [0, 1] are shown as they are; others min-max scaled per
            image unless ``denormalize`` is given.
        captures: from :func:`capture_attention` on the same batch (layers with 2-D spatial gates are
            drawn; 1-D / 3-D ones are left out).
        out_png: where the PNG goes (parents created, written atomically).
        class_names: names for ``labels`` / ``predictions`` in the titles.
        max_layers: at most this many layers, spread evenly over depth (first and last included).
        denormalize: ``(mean, std)`` per channel (or scalars) that normalised the images:
            shown as ``clip(x * std + mean, 0, 1)``.
        labels, predictions: optional class indices per image, shown in its title.
        max_images: at most this many images (the first ones).
        title: optional figure title.

    Returns the written path. Raises ValueError for bad image shapes, no drawable capture, or captures
    holding fewer images than shown.
    """
    shown_images = _images_for_display(images, denormalize)[:max_images]
    layers = _select_layers(captures, max_layers)
    n_images, height, width = shown_images.shape[:3]
    for capture in layers:
        if capture.w_s.shape[0] < n_images or capture.w_c.shape[0] < n_images:
            raise ValueError(
                f"captures: layer {capture.name!r} holds {capture.w_s.shape[0]} images, fewer than the "
                f"{n_images} shown; capture on the same batch as the images"
            )

    heat = [_heat(c.w_s, n_images, (height, width)) for c in layers]

    from matplotlib import colormaps

    n_cols = 1 + len(layers)
    panel = 2.6
    fig = new_figure((panel * n_cols, panel * (n_images + 1) + 0.6), layout="constrained")
    axes = fig.subplots(n_images + 1, n_cols, squeeze=False)
    image_colours = [colormaps["tab10"](i % 10) for i in range(n_images)]
    for row in range(n_images):
        ax = axes[row, 0]
        ax.imshow(shown_images[row], interpolation="nearest")
        text = f"image {row}"
        if labels is not None:
            text += f"\ntrue: {_name_of(int(labels[row]), class_names)}"
        if predictions is not None:
            text += f"\npred: {_name_of(int(predictions[row]), class_names)}"
        ax.set_title(text, fontsize=8, color=image_colours[row])
        for col, (capture, maps) in enumerate(zip(layers, heat, strict=True), start=1):
            ax = axes[row, col]
            gate = maps[row]
            lo, hi = float(gate.min()), float(gate.max())
            ax.imshow(shown_images[row].mean(axis=2), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            vmax = hi if hi > lo else lo + 1e-6
            ax.imshow(gate, cmap="inferno", vmin=lo, vmax=vmax, alpha=0.6, interpolation="nearest")
            spatial = "x".join(str(s) for s in capture.w_s.shape[1:])
            ax.set_title(f"{capture.name} w_s ({spatial})\n{lo:.4g}..{hi:.4g}", fontsize=7)
    for ax in axes[:n_images].ravel():
        ax.set_xticks([])
        ax.set_yticks([])

    legend = "channel gate w_c\nbars: mean over images\nlines: per image"
    ax = axes[n_images, 0]
    ax.axis("off")
    ax.text(0.5, 0.5, legend, ha="center", va="center", fontsize=8, transform=ax.transAxes)
    for col, capture in enumerate(layers, start=1):
        ax = axes[n_images, col]
        w_c = capture.w_c[:n_images].float().cpu().numpy()
        channels = np.arange(w_c.shape[1])
        ax.bar(channels, w_c.mean(axis=0), width=1.0, color="0.7")
        for row in range(n_images):
            ax.plot(channels, w_c[row], color=image_colours[row], linewidth=0.8, drawstyle="steps-mid")
        ax.set_title(f"{capture.name} w_c (C={w_c.shape[1]})", fontsize=7)
        ax.set_xlabel("channel", fontsize=7)
        ax.set_xlim(-0.5, w_c.shape[1] - 0.5)
        ax.set_ylim(0, max(1.0, float(w_c.max()) * 1.05))
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title)
    return save_png(fig, out_png)
