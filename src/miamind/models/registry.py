"""Name -> model-builder registry: ``create_model``, ``list_models``, ``register_model``.

A builder is a function ``fn(*, num_classes, in_chans, attention=..., attention_kwargs=None, **kw)``
returning an ``nn.Module``; ``@register_model("name")`` makes ``create_model("name", ...)`` call it.
``create_model`` validates what is common to all models (the name, ``num_classes``, ``in_chans``,
``attention_kwargs`` and unknown keyword arguments) so every model reports bad input the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch.nn as nn

from ..attention.registry import AttentionSpec

__all__ = ["create_model", "list_models", "register_model", "get_model_builder"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


class _ModelDefault:
    """Sentinel: ``attention`` not given, use the builder's own default."""

    def __repr__(self) -> str:
        return "<model default>"


MODEL_DEFAULT = _ModelDefault()

# Arguments every builder takes; the rest of its keyword arguments are model-specific.
_COMMON = ("num_classes", "in_chans", "attention", "attention_kwargs")


def register_model(name: str) -> Callable:
    """Function decorator: ``@register_model("resnet18")`` makes ``create_model("resnet18", ...)`` work."""
    key = name.lower()

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if key in _MODELS and _MODELS[key] is not fn:
            raise ValueError(f"model name {key!r} is already registered to {_MODELS[key]!r}")
        missing = [a for a in _COMMON if a not in inspect.signature(fn).parameters]
        if missing:
            raise TypeError(f"model builder {fn.__name__} must accept keyword arguments {missing}")
        _MODELS[key] = fn
        return fn

    return decorator


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered as ``name``; ValueError listing the valid names otherwise."""
    key = name.lower() if isinstance(name, str) else name
    if key not in _MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    return _MODELS[key]


def _check_count(value: Any, what: str, model: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{model}: {what} must be an integer >= 1, got {value!r}")
    return value


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
    key = name.lower()
    num_classes = _check_count(num_classes, "num_classes", key)
    in_chans = _check_count(in_chans, "in_chans", key)
    if attention_kwargs is not None and not isinstance(attention_kwargs, Mapping):
        raise ValueError(
            f"{key}: attention_kwargs must be a mapping or None, got {type(attention_kwargs).__name__}"
        )
    params = inspect.signature(builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        unknown = sorted(set(model_kwargs) - set(params))
        if unknown:
            valid = sorted(set(params) - set(_COMMON))
            raise ValueError(f"{key}: unknown keyword argument(s) {unknown}; accepted: {valid}")
    kwargs = dict(
        num_classes=num_classes, in_chans=in_chans, attention_kwargs=attention_kwargs, **model_kwargs
    )
    if attention is not MODEL_DEFAULT:
        kwargs["attention"] = attention
    return builder(**kwargs)
