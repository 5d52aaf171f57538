"""Name -> attention-layer registry.

A dict registry rather than timm's if/elif chain: every layer registers itself with
``@register_attention("name")`` and ``create_attention`` looks it up. All registered
constructors share timm's shape: ``cls(channels, *, dims=2, device=None, dtype=None, **kw)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from .._registry import AttentionSpec, Registry, resolve_spec

_REGISTRY = Registry("attention", also_valid=("none",))


def register_attention(name: str) -> Callable:
    """Class decorator: ``@register_attention("se")`` makes ``create_attention("se", C)`` work."""
    return _REGISTRY.register(name)


def list_attention() -> list[str]:
    """Registered names, sorted ("none" is always accepted and not listed)."""
    return _REGISTRY.names()


def get_attention(spec: AttentionSpec) -> Callable[..., nn.Module] | None:
    """Resolve a name / class / callable to a constructor; ``None`` and ``"none"`` give ``None``."""
    return resolve_spec(_REGISTRY, spec)


def create_attention(spec: AttentionSpec, channels: int, **kwargs) -> nn.Module:
    """Build an attention layer for ``channels`` channels; ``None``/``"none"`` gives ``nn.Identity``."""
    ctor = get_attention(spec)
    if ctor is None:
        return nn.Identity()
    return ctor(channels, **kwargs)
