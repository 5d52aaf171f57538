"""Name -> model-builder registry and attention slots for the MindSpore models.

The MindSpore twin of :mod:`miamind.models.registry` and :mod:`miamind.models._attention`: same
``create_model`` signature, the same validation and the same error messages, but no PyTorch import
(``miamind.models`` pulls in timm and every PyTorch model).
"""

from __future__ import annotations

from typing import Any

from .._require import require_mindspore

require_mindspore()
from mindspore import nn  # noqa: E402  (after the friendly ImportError above)

from ..._registry import AttentionSpec, ModelRegistry, build_in_slot  # noqa: E402
from ..attention import create_attention  # noqa: E402

__all__ = ["create_model", "list_models", "register_model", "get_model_builder", "build_attention"]

_MODELS: ModelRegistry[nn.Cell] = ModelRegistry("MindSpore model")

register_model = _MODELS.register
"""Decorator: ``@register_model("fastnet")`` makes ``create_model("fastnet", ...)`` call the builder."""
list_models = _MODELS.names
"""Registered MindSpore model names, sorted."""
get_model_builder = _MODELS.get
"""The builder registered as a name; ValueError listing the valid names otherwise."""
create_model = _MODELS.create
"""Same arguments and defaults as :func:`miamind.models.create_model`
(:meth:`miamind._registry.ModelRegistry.create`); ``attention`` names are those of
:func:`miamind.mindspore.attention.list_attention`."""


def build_attention(spec: AttentionSpec, channels: int, **where: Any) -> nn.Cell:
    """Build attention ``spec`` for ``channels`` channels at a slot of a model; ``where`` is
    ``model``, ``slot``, ``dims`` and ``attention_kwargs``, as for :func:`miamind.models.build_attention`.

    Any error building it (unknown name, bad ``attention_kwargs``) becomes one ``ValueError`` naming
    the model, the slot, the channels and ``dims``.
    """
    return build_in_slot(create_attention, spec, channels, **where)
