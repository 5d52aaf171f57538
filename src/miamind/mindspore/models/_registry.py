"""Name -> model-builder registry and attention slots for the MindSpore models.

The MindSpore twin of :mod:`miamind.models.registry` and :mod:`miamind.models._attention`: same
``create_model`` signature, the same validation and the same error messages, but no PyTorch import
(``miamind.models`` pulls in timm and every PyTorch model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._require import require_mindspore

require_mindspore()
from mindspore import nn  # noqa: E402  (after the friendly ImportError above)

from ..._registry import Registry, build_in_slot, check_model_call  # noqa: E402
from ..attention import create_attention  # noqa: E402

#: A registered attention name, a class / callable returning a Cell, or ``None`` (no attention).
AttentionSpec = None | str | Callable[..., Any]

__all__ = ["create_model", "list_models", "register_model", "get_model_builder", "build_attention"]

# Arguments every builder takes; the rest of its keyword arguments are model-specific.
_COMMON = ("num_classes", "in_chans", "attention", "attention_kwargs")
_MODELS = Registry("MindSpore model", required_kwargs=_COMMON)


def register_model(name: str) -> Callable:
    """Function decorator: ``@register_model("fastnet")`` makes ``create_model("fastnet", ...)`` work."""
    return _MODELS.register(name)


def list_models() -> list[str]:
    """Registered MindSpore model names, sorted."""
    return _MODELS.names()


def get_model_builder(name: str) -> Callable[..., nn.Cell]:
    """The builder registered as ``name``; ValueError listing the valid names otherwise."""
    return _MODELS.get(name)


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
    num_classes, in_chans = check_model_call(
        builder,
        name,
        num_classes=num_classes,
        in_chans=in_chans,
        attention_kwargs=attention_kwargs,
        model_kwargs=model_kwargs,
        common=_COMMON,
    )
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
    return build_in_slot(
        create_attention, spec, channels, model=model, slot=slot, dims=dims, attention_kwargs=attention_kwargs
    )
