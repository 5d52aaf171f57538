"""Name -> attention-layer registry.

A dict registry rather than timm's if/elif chain: every layer registers itself with
``@register_attention("name")`` and ``create_attention`` looks it up. All registered
constructors share timm's shape: ``cls(channels, *, dims=2, device=None, dtype=None, **kw)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}

AttentionSpec = None | str | Callable[..., nn.Module] | type


def register_attention(name: str) -> Callable:
    """Class decorator: ``@register_attention("se")`` makes ``create_attention("se", C)`` work."""
    key = name.lower()

    def decorator(cls):
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"attention name {key!r} is already registered to {_REGISTRY[key]!r}")
        _REGISTRY[key] = cls
        return cls

    return decorator


def list_attention() -> list[str]:
    """Registered names, sorted ("none" is always accepted and not listed)."""
    return sorted(_REGISTRY)


def get_attention(spec: AttentionSpec) -> Callable[..., nn.Module] | None:
    """Resolve a name / class / callable to a constructor; ``None`` and ``"none"`` give ``None``."""
    if spec is None:
        return None
    if isinstance(spec, str):
        key = spec.lower()
        if key in ("none", ""):
            return None
        if key not in _REGISTRY:
            raise ValueError(
                f"unknown attention {spec!r}; valid names: {', '.join(['none'] + list_attention())}"
            )
        return _REGISTRY[key]
    if callable(spec):
        return spec
    raise TypeError(f"attention must be None, a name, a class or a callable, got {type(spec).__name__}")


def create_attention(spec: AttentionSpec, channels: int, **kwargs) -> nn.Module:
    """Build an attention layer for ``channels`` channels; ``None``/``"none"`` gives ``nn.Identity``."""
    ctor = get_attention(spec)
    if ctor is None:
        return nn.Identity()
    return ctor(channels, **kwargs)
