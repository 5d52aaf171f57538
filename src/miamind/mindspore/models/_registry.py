"""Name -> model-builder registry and attention slots for the MindSpore models.

The MindSpore twin of :mod:`miamind.models.registry` and :mod:`miamind.models._attention`: same
``create_model`` signature, the same validation and the same error messages, but no PyTorch import
(``miamind.models`` pulls in timm and every PyTorch model).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .._require import require_mindspore

require_mindspore()
from mindspore import nn  # noqa: E402  (after the friendly ImportError above)

from ..attention import create_attention  # noqa: E402

#: A registered attention name, a class / callable returning a Cell, or ``None`` (no attention).
AttentionSpec = None | str | Callable[..., Any]

__all__ = ["create_model", "list_models", "register_model", "get_model_builder", "build_attention"]

_MODELS: dict[str, Callable[..., nn.Cell]] = {}

# Arguments every builder takes; the rest of its keyword arguments are model-specific.
_COMMON = ("num_classes", "in_chans", "attention", "attention_kwargs")


def register_model(name: str) -> Callable:
    """Function decorator: ``@register_model("fastnet")`` makes ``create_model("fastnet", ...)`` work."""
    key = name.lower()

    def decorator(fn: Callable[..., nn.Cell]) -> Callable[..., nn.Cell]:
        if key in _MODELS and _MODELS[key] is not fn:
            raise ValueError(f"model name {key!r} is already registered to {_MODELS[key]!r}")
        missing = [a for a in _COMMON if a not in inspect.signature(fn).parameters]
        if missing:
            raise TypeError(f"model builder {fn.__name__} must accept keyword arguments {missing}")
        _MODELS[key] = fn
        return fn

    return decorator


def list_models() -> list[str]:
    """Registered MindSpore model names, sorted."""
    return sorted(_MODELS)


def get_model_builder(name: str) -> Callable[..., nn.Cell]:
    """The builder registered as ``name``; ValueError listing the valid names otherwise."""
    key = name.lower() if isinstance(name, str) else name
    if key not in _MODELS:
        raise ValueError(f"unknown MindSpore model {name!r}; valid names: {', '.join(list_models())}")
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
    attention: AttentionSpec = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    **model_kwargs: Any,
) -> nn.Cell:
    """Build MindSpore model ``name``; same arguments and defaults as :func:`miamind.models.create_model`.

    Args:
        name: one of :func:`list_models` (case-insensitive).
        num_classes: output classes (>= 1).
        in_chans: input channels (>= 1); default 3, as the PyTorch ``create_model`` and timm.
        attention: a name from :func:`miamind.mindspore.attention.list_attention`, a class or callable
            ``fn(channels, *, dims, **attention_kwargs)`` returning a Cell, or ``None`` / ``"none"``
            (no attention, ``nn.Identity``, no parameters). Default ``None``, as every PyTorch model here.
        attention_kwargs: keyword arguments for every attention layer (e.g. ``{"rd_ratio": 1/8}``).
        **model_kwargs: model-specific options, the same as the PyTorch builder's.

    Raises:
        ValueError: unknown model name, bad ``num_classes`` / ``in_chans``, an unknown model keyword
            argument (the message lists the accepted ones), or an attention that cannot be built in
            that model (the message names the model and the insertion point).
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
    unknown = sorted(set(model_kwargs) - set(params))
    if unknown:
        valid = sorted(set(params) - set(_COMMON))
        raise ValueError(f"{key}: unknown keyword argument(s) {unknown}; accepted: {valid}")
    return builder(
        num_classes=num_classes,
        in_chans=in_chans,
        attention=attention,
        attention_kwargs=attention_kwargs,
        **model_kwargs,
    )


def build_attention(
    spec: AttentionSpec,
    channels: int,
    *,
    model: str,
    slot: str,
    dims: int = 2,
    attention_kwargs: Mapping[str, Any] | None = None,
) -> nn.Cell:
    """Build attention ``spec`` for ``channels`` channels at ``slot`` of ``model``.

    Any error building it (unknown name, bad ``attention_kwargs``) becomes one ``ValueError`` naming
    the model, the slot, the channels and ``dims``, as :func:`miamind.models.build_attention` does.
    """
    kwargs = dict(attention_kwargs or {})
    if "dims" in kwargs:
        raise ValueError(f"{model}: attention_kwargs must not set 'dims' (the model sets dims={dims})")
    try:
        return create_attention(spec, channels, dims=dims, **kwargs)
    except (ValueError, TypeError) as err:
        name = spec if isinstance(spec, str) or spec is None else getattr(spec, "__name__", repr(spec))
        raise ValueError(
            f"{model}: cannot build attention {name!r} at {slot} ({channels} channels, dims={dims}): {err}"
        ) from err
