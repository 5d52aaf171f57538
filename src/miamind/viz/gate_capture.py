"""The gates of MIA-Mind, CBAM and coordinate attention layers as one channel and one spatial picture.

:func:`capture_gates` runs a model once per attention family present and records, for every layer of
these three families, the gates it multiplied its input by -- taken by forward hooks on the layer's
gate modules, never recomputed -- as two pictures of the same kind for every family, ``channel``
(N, C) and ``spatial`` (N, *spatial):

- MIA-Mind (``mia*``): ``channel`` = ``w_c``, the channel gate; ``spatial`` = ``w_s``, the spatial
  gate (for ``mia_seq`` / ``mia_code`` computed from the channel-refined ``x * w_c``).
- cbam (Woo et al., ECCV 2018): ``channel`` = the channel gate ``sigmoid(MLP(avg) + MLP(max))``;
  ``spatial`` = the spatial gate, computed from the channel-refined input ``x * w_c``: CBAM gates one
  after the other, ``out = (x * w_c) * w_s``.
- coordatt (Hou, Zhou, Feng, CVPR 2021; ``out = x * a_w * a_h`` with ``a_h`` (N, C, H, 1) and ``a_w``
  (N, C, 1, W)): ``channel`` = the mean over positions (h, w) of ``a_h * a_w``; ``spatial`` = the mean
  over channels of ``a_h * a_w``.

For MIA-Mind and CBAM both pictures are gates the layer applied; for coordinate attention, which has
no separate channel and spatial gate, they are the two marginal means of its per-element map
``a_h * a_w`` (the raw ``a_h`` / ``a_w`` are kept in :attr:`GateCapture.gates`). Every capture is
checked: the layer's output must be rebuilt from the captured gates (:meth:`GateCapture.apply`) --
bitwise on deterministic kernels -- or a RuntimeError names the layer.

Other attentions (se, eca, gc, ge: no spatial gate; triplet: three rotated gates averaged; simam: one
energy gate per element) give no capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..attention.comparators import CBAM, CoordAttention
from ..attention.mia import _MIABase
from .attention_maps import AttentionCapture, _reproduces, capture_attention

__all__ = ["GateCapture", "capture_gates", "GATE_FAMILIES"]

#: attention families with a (channel, spatial) picture; the value of GateCapture.family.
GATE_FAMILIES = ("mia", "cbam", "coordatt")

_MEANING = {
    "cbam": "cbam: channel gate, then spatial gate computed from x * w_c (sequential)",
    "coordatt": "coordatt: channel = mean over positions of a_h*a_w, spatial = mean over channels of a_h*a_w",
}


@dataclass(frozen=True)
class GateCapture:
    """The gates one attention layer applied in one forward pass, as a channel and a spatial picture.

    Attributes:
        name: qualified module name in the model (``"groups.0.attn"``); ``"#k"`` is appended from a
            layer's second call in one pass on.
        family: ``"mia"``, ``"cbam"`` or ``"coordatt"``.
        layer: the layer's class name (``"MIAMind"``, ``"MIAMindSeq"``, ``"CBAM"``, ...).
        channel: (N, C) channel picture (see the module docstring for what it is per family).
        spatial: (N, *spatial) spatial picture.
        meaning: one line saying what ``channel`` and ``spatial`` are for this layer.
        gates: the raw gates as the layer multiplied by them: MIA ``w_c`` (N, C), ``w_s`` (N, *spatial);
            cbam ``w_c`` (N, C), ``w_s`` (N, *spatial); coordatt ``a_h`` (N, C, H), ``a_w`` (N, C, W).
        mia: the MIA capture this one was made from (its fusion rebuilds the output), else None.
        skip: coordatt's ``has_skip`` (``out = x * a_w * a_h + x``).
    """

    name: str
    family: str
    layer: str
    channel: torch.Tensor
    spatial: torch.Tensor
    meaning: str
    gates: dict[str, torch.Tensor] = field(default_factory=dict)
    mia: AttentionCapture | None = None
    skip: bool = False

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output for its input ``x`` rebuilt from the raw gates, in the layer's own order
        of operations (so it is bitwise what the layer returned on deterministic kernels)."""
        if self.mia is not None:
            return self.mia.apply(x)
        if self.family == "cbam":
            w_c = self.gates["w_c"].reshape(*self.gates["w_c"].shape, *([1] * (x.dim() - 2)))
            return (x * w_c) * self.gates["w_s"].unsqueeze(1)
        if self.family == "coordatt":
            out = x * self.gates["a_w"].unsqueeze(2) * self.gates["a_h"].unsqueeze(3)
            return out + x if self.skip else out
        raise ValueError(f"GateCapture {self.name!r}: unknown family {self.family!r}")


def _from_mia(capture: AttentionCapture, layer: str) -> GateCapture:
    order = {
        "product": "x * (w_c * w_s)",
        "sum": "x * (w_c + w_s)",
        "sequential": "(x * w_c) * w_s, w_s computed from x * w_c",
        "adaptive": "x * (g w_c w_s + (1 - g)(w_c + w_s) / 2)",
    }[capture.fusion]
    return GateCapture(
        name=capture.name,
        family="mia",
        layer=layer,
        channel=capture.w_c,
        spatial=capture.w_s,
        meaning=f"mia ({capture.fusion}): channel = w_c, spatial = w_s; out = {order}",
        gates={"w_c": capture.w_c, "w_s": capture.w_s},
        mia=capture,
    )


def _coordatt_pictures(a_h: torch.Tensor, a_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean over (h, w), mean over c)`` of ``a_h[n, c, h] * a_w[n, c, w]`` without the (N, C, H, W) map:
    the product is separable, so its mean over positions is ``mean_h(a_h) * mean_w(a_w)``."""
    channel = a_h.float().mean(2) * a_w.float().mean(2)
    spatial = torch.einsum("nch,ncw->nhw", a_h.float(), a_w.float()) / a_h.shape[1]
    return channel, spatial


def _hooks_for(
    name: str, module: nn.Module, captures: list[GateCapture], calls: dict[str, int]
) -> list[torch.utils.hooks.RemovableHandle]:
    """Hooks that record ``module``'s gates and, after its forward, check and keep one capture."""
    family = "cbam" if isinstance(module, CBAM) else "coordatt"
    seen: list[torch.Tensor] = []  # gate outputs of the current call, in call order

    def start(_module: nn.Module, _args: tuple) -> None:
        seen.clear()

    def keep(_gate: nn.Module, _args: tuple, output: torch.Tensor) -> None:
        seen.append(output.detach())

    def finish(_module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        (inp,) = args
        count = calls.get(name, 0)
        calls[name] = count + 1
        label = name if count == 0 else f"{name}#{count}"
        capture = None
        if len(seen) == 2:
            if family == "cbam":
                # channel.gate: (N, C, 1, 1) (also for dims != 2, where the channel half runs on
                # (N, C, P, 1)); spatial.gate: (N, 1, *spatial)
                w_c, w_s = seen[0].reshape(inp.shape[0], -1), seen[1][:, 0]
                pictures, gates = (w_c, w_s), {"w_c": w_c, "w_s": w_s}
            else:
                # the shared gate module is called for a_h (N, C, H, 1) first, then a_w (N, C, 1, W)
                a_h, a_w = seen[0][..., 0], seen[1][:, :, 0]
                pictures, gates = _coordatt_pictures(a_h, a_w), {"a_h": a_h, "a_w": a_w}
            capture = GateCapture(
                name=label,
                family=family,
                layer=type(module).__name__,
                channel=pictures[0],
                spatial=pictures[1],
                meaning=_MEANING[family],
                gates=gates,
                skip=family == "coordatt" and bool(getattr(module, "has_skip", False)),
            )
        if capture is None or not _reproduces(capture.apply(inp), output):
            raise RuntimeError(
                f"capture_gates: the gates captured for layer {label!r} ({type(module).__name__}: "
                f"{len(seen)} gate calls, 2 expected) do not reproduce its output; "
                "has its forward been changed?"
            )
        captures.append(capture)

    gate_modules: list[nn.Module] = (
        [module.channel.gate, module.spatial.gate] if family == "cbam" else [module.gate]  # type: ignore[list-item]
    )
    return [
        module.register_forward_pre_hook(start),
        *(gate.register_forward_hook(keep) for gate in gate_modules),
        module.register_forward_hook(finish),
    ]


def _capture_timm(model: nn.Module, x: torch.Tensor) -> list[GateCapture]:
    captures: list[GateCapture] = []
    calls: dict[str, int] = {}
    modes = {module: module.training for module in model.modules()}
    handles = []
    try:
        for name, module in model.named_modules():
            if isinstance(module, (CBAM, CoordAttention)):
                handles.extend(_hooks_for(name or type(module).__name__, module, captures, calls))
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training  # directly: eval()/train() recurse into sub-modules
    return captures


def capture_gates(model: nn.Module, x: torch.Tensor) -> list[GateCapture]:
    """Run ``model(x)`` (eval mode, no grad) and capture the gates of every MIA-Mind, CBAM and coordinate
    attention layer as :class:`GateCapture` (channel and spatial picture, see the module docstring).

    MIA-family layers are captured by :func:`~miamind.viz.attention_maps.capture_attention`. Each family
    present costs one forward pass (a model built from a config has one family); modes and hooks are
    restored afterwards, also on error.

    Returns:
        The captures, per family in call order (MIA first); empty when the model has none of these layers.
    """
    captures: list[GateCapture] = []
    modules = list(model.modules())
    if any(isinstance(m, _MIABase) for m in modules):
        layers = {name: type(m).__name__ for name, m in model.named_modules()}
        found = capture_attention(model, x)
        assert isinstance(found, list)  # without return_output
        # a capture's name is the module's name, or the class name for the model itself
        captures += [_from_mia(c, layers.get(c.name.split("#")[0]) or c.name.split("#")[0]) for c in found]
    if any(isinstance(m, (CBAM, CoordAttention)) for m in modules):
        captures += _capture_timm(model, x)
    return captures
