"""Name -> model-builder registry: ``create_model``, ``list_models``, ``register_model``.

A builder is a function ``fn(*, num_classes, in_chans, attention=..., attention_kwargs=None, **kw)``
returning an ``nn.Module``; ``@register_model("name")`` makes ``create_model("name", ...)`` call it.
``create_model`` validates what is common to all models (the name, ``num_classes``, ``in_chans``,
``attention_kwargs`` and unknown keyword arguments) so every model reports bad input the same way.
"""

from __future__ import annotations

import torch.nn as nn

from .._registry import ModelRegistry

__all__ = ["create_model", "list_models", "register_model", "get_model_builder"]


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
