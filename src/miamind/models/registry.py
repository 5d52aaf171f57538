"""Name -> model-builder registry: ``create_model``, ``list_models``, ``register_model``.

A builder is a function ``fn(*, num_classes, in_chans, attention=..., attention_kwargs=None, **kw)``
returning an ``nn.Module``; ``@register_model("name")`` makes ``create_model("name", ...)`` call it.
``create_model`` validates what is common to all models (the name, ``num_classes``, ``in_chans``,
``attention_kwargs`` and unknown keyword arguments) so every model reports bad input the same way.
"""

from __future__ import annotations

import torch.nn as nn

from .._registry import ModelRegistry

__all__ = ["create_model", "list_models", "register_model", "get_model_builder", "cannot_hold"]


_MODELS: ModelRegistry[nn.Module] = ModelRegistry("model")

register_model = _MODELS.register
"""Decorator: ``@register_model("resnet18")`` makes ``create_model("resnet18", ...)`` call the builder."""
list_models = _MODELS.names
"""Registered model names, sorted."""
get_model_builder = _MODELS.get
"""The builder registered as a name; ValueError listing the valid names otherwise."""
create_model = _MODELS.create
"""``create_model(name, *, num_classes, in_chans=3, attention=<the model's default>,
attention_kwargs=None, **model_kwargs)``: :meth:`miamind._registry.ModelRegistry.create`, the same
in both backends."""


def cannot_hold(
    model: str, attention: str, *, num_classes: int = 2, in_chans: int = 1, **kwargs
) -> str | None:
    """Why ``model`` cannot be built with ``attention`` (the first line of its own error), else None.

    One definition of "not applicable" for the study grid (N/A cells) and the speed benchmark
    (rows left out): e.g. a 2-D-only attention in the 1-D flow network.
    """
    try:
        create_model(model, num_classes=num_classes, in_chans=in_chans, attention=attention, **kwargs)
    except (ValueError, TypeError) as err:
        return str(err).splitlines()[0]
    return None
