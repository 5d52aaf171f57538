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

from collections.abc import Mapping
from typing import Any

import torch.nn as nn

from ..attention import create_attention
from ..attention.registry import AttentionSpec

__all__ = ["build_attention", "attention_layers", "attention_name"]

# Instance attribute set on every inserted attention layer; its value is the slot description.
_SLOT_ATTR = "_miamind_attention_slot"


def attention_name(spec: AttentionSpec) -> str:
    """A printable name for an attention spec (name, class or callable)."""
    if spec is None:
        return "none"
    if isinstance(spec, str):
        return spec
    return (
        getattr(spec, "__name__", None)
        or getattr(getattr(spec, "func", None), "__name__", None)
        or repr(spec)
    )


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
    kwargs = dict(attention_kwargs or {})
    if "dims" in kwargs:
        raise ValueError(f"{model}: attention_kwargs must not set 'dims' (the model sets dims={dims})")
    if device is not None:
        kwargs["device"] = device
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        module = create_attention(spec, channels, dims=dims, **kwargs)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{model}: cannot build attention {attention_name(spec)!r} at {slot} "
            f"({channels} channels, dims={dims}): {err}"
        ) from err
    if not isinstance(module, nn.Identity):
        setattr(module, _SLOT_ATTR, slot)
    return module


def attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(qualified name, module)]`` of the attention layers inserted in ``model`` (no ``nn.Identity``).

    In ``model.named_modules()`` order, i.e. input to output for the models here. Names are relative
    to ``model``, so ``dict(model.named_modules())[name]`` gives the module back.
    """
    return [(name, m) for name, m in model.named_modules() if getattr(m, _SLOT_ATTR, None) is not None]
