"""Attention slots shared by every model: build an attention layer at a named point, find them again.

Every model builds its attention layers through :func:`build_attention`, which

- calls :func:`miamind.attention.create_attention` (``None`` / ``"none"`` gives ``nn.Identity``),
- turns a layer that cannot be built there (unknown name, 2-D-only layer in a 1-D model, bad
  ``attention_kwargs``) into one ``ValueError`` naming the model, the slot, the channels and ``dims``,
- marks the built layer so :func:`attention_layers` can list it later by its qualified name, wherever
  the model sits (inside a LightningModule, a ``torch.compile`` wrapper's ``_orig_mod``, ...).

The mark is a plain instance attribute, so it survives ``copy.deepcopy`` and needs no global state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch.nn as nn

from .._registry import attention_name, build_in_slot
from ..attention.registry import AttentionSpec, create_attention

__all__ = ["build_attention", "attention_layers", "attention_name", "init_keeping_attention"]

# Instance attribute set on every inserted attention layer; its value is the slot description.
_SLOT_ATTR = "_miamind_attention_slot"


def build_attention(
    spec: AttentionSpec,
    channels: int,
    *,
    model: str,
    slot: str,
    dims: int = 2,
    attention_kwargs: Mapping[str, Any] | None = None,
    device=None,
    dtype=None,
) -> nn.Module:
    """Build the attention layer ``spec`` for ``channels`` channels at ``slot`` of ``model``.

    ``device`` / ``dtype`` are accepted because timm's blocks call ``attn_layer(channels, device=...,
    dtype=...)``; they are forwarded only when set, so attention layers see the same call either way.
    """
    factory = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
    module = build_in_slot(
        create_attention,
        spec,
        channels,
        model=model,
        slot=slot,
        dims=dims,
        attention_kwargs=attention_kwargs,
        **factory,
    )
    if not isinstance(module, nn.Identity):
        setattr(module, _SLOT_ATTR, slot)
    return module


def attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(qualified name, module)]`` of the attention layers inserted in ``model`` (no ``nn.Identity``).

    In ``model.named_modules()`` order, i.e. input to output for the models here. Names are relative
    to ``model``, so ``dict(model.named_modules())[name]`` gives the module back.
    """
    return [(name, m) for name, m in model.named_modules() if getattr(m, _SLOT_ATTR, None) is not None]


def init_keeping_attention(model: nn.Module, init: Callable[[], None]) -> None:
    """Run a backbone's ``init()`` (e.g. timm's Kaiming init of every conv), then give each attention
    layer of ``model`` back the parameters its own constructor chose (its documented init)."""
    saved = [
        (m, {k: v.detach().clone() for k, v in m.state_dict().items()}) for _, m in attention_layers(model)
    ]
    init()
    for module, state in saved:
        module.load_state_dict(state)
