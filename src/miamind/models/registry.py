"""Name -> model-builder registry: ``create_model``, ``list_models``, ``register_model``.

A builder is a function ``fn(*, num_classes, in_chans, attention=..., attention_kwargs=None, **kw)``
returning an ``nn.Module``; ``@register_model("name")`` makes ``create_model("name", ...)`` call it.
``create_model`` validates what is common to all models (the name, ``num_classes``, ``in_chans``,
``attention_kwargs`` and unknown keyword arguments) so every model reports bad input the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch.nn as nn

from .._registry import Registry, check_model_call
from ..attention.registry import AttentionSpec

__all__ = ["create_model", "list_models", "register_model", "get_model_builder"]


class _ModelDefault:
    """Sentinel: ``attention`` not given, use the builder's own default."""

    def __repr__(self) -> str:
        return "<model default>"


MODEL_DEFAULT = _ModelDefault()

# Arguments every builder takes; the rest of its keyword arguments are model-specific.
_COMMON = ("num_classes", "in_chans", "attention", "attention_kwargs")
_MODELS = Registry("model", required_kwargs=_COMMON)


def register_model(name: str) -> Callable:
    """Function decorator: ``@register_model("resnet18")`` makes ``create_model("resnet18", ...)`` work."""
    return _MODELS.register(name)


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return _MODELS.names()


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered as ``name``; ValueError listing the valid names otherwise."""
    return _MODELS.get(name)


def create_model(
    name: str,
    *,
    num_classes: int,
    in_chans: int = 3,
    attention: AttentionSpec | _ModelDefault = MODEL_DEFAULT,
    attention_kwargs: Mapping[str, Any] | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Build model ``name`` with ``attention`` inserted at the model's documented points.

    Args:
        name: one of :func:`list_models` (case-insensitive).
        num_classes: output classes (>= 1): logits ``(N, num_classes)``, or ``(N, num_classes, H, W)``
            for ``unet``.
        in_chans: input channels (>= 1); default 3 (RGB), as timm's ``create_model``.
        attention: a registered attention name (see ``miamind.attention.list_attention()``), a class or
            callable ``fn(channels, *, dims, **attention_kwargs)``, or ``None`` / ``"none"`` for no
            attention (``nn.Identity``). Omitted: the model's default, which is no attention for every
            model except ``reference_resnet`` (``"mia_code"``, as the public MindSpore code).
        attention_kwargs: keyword arguments for every attention layer (e.g. ``{"rd_ratio": 1/8}``).
        **model_kwargs: model-specific options (see each builder's docstring).

    Raises:
        ValueError: unknown model name, ``num_classes`` / ``in_chans`` not an integer >= 1, an unknown
            model keyword argument (the message lists the accepted ones), or an attention that cannot
            be built in that model (the message names the model and the insertion point).
    """
    builder = get_model_builder(name)
    num_classes, in_chans = check_model_call(
        builder,
        name,
        num_classes=num_classes,
        in_chans=in_chans,
        attention_kwargs=attention_kwargs,
        model_kwargs=model_kwargs,
        common=_COMMON,
    )
    kwargs = dict(
        num_classes=num_classes, in_chans=in_chans, attention_kwargs=attention_kwargs, **model_kwargs
    )
    if attention is not MODEL_DEFAULT:
        kwargs["attention"] = attention
    return builder(**kwargs)
