"""miamind's networks in timm's model registry: ``timm.create_model("miamind_resnet18", attention="mia")``.

Importing :mod:`miamind` registers them as soon as timm is imported (before or after), under the
``miamind_`` prefix, so timm's own names are untouched. Every entry takes ``attention=`` and
``attention_kwargs=`` as :func:`miamind.models.create_model` does, and timm's ``num_classes``,
``in_chans``, ``features_only`` and ``out_indices``. No weights are published: ``pretrained=True``
raises.

- ``miamind_resnet18``, ``_resnet34``, ``_resnet50``: timm's ImageNet ResNet (7x7 stride-2 stem and
  max-pool, feature reductions 2-32) with attention in every block, in the slot of
  :mod:`miamind.models.resnet`. For ImageNet-size inputs, timm's training script and smp ``tu-``
  encoders (which need those reductions).
- ``miamind_cifar_resnet18``, ``_cifar_resnet34``, ``_cifar_resnet50``: ``create_model("resnet18")``
  etc., the study's CIFAR ResNets (3x3 stride-1 stem, reductions 1, 1, 2, 4, 8).
- ``miamind_fastnet``: ``create_model("fastnet")``.
- ``miamind_reference_resnet``: ``create_model("reference_resnet")`` (default attention ``"mia_code"``).

``features_only=True`` works on the ResNets (timm's ``FeatureListNet`` over their ``feature_info``);
segmentation_models_pytorch accepts ``tu-miamind_resnet18`` etc. as encoders. The U-Net and the 1-D flow network are
not timm classifiers and are not registered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn as nn
from timm.models import build_model_with_cfg, register_model
from timm.models.resnet import ResNet

from ..attention.registry import AttentionSpec
from ._attention import build_attention, init_keeping_attention
from .registry import create_model, get_model_builder
from .resnet import ATTENTION_SLOT, RESNET_VARIANTS

__all__ = ["AttentionResNet", "TIMM_PREFIX", "default_cfgs"]

TIMM_PREFIX = "miamind_"


def _cfg(input_size: tuple[int, int, int], first_conv: str, classifier: str, num_classes: int) -> dict:
    # No url and no hub id: there are no published weights. Mean/std stay timm's defaults: the
    # study's runs standardise with their own training split's statistics instead.
    return {
        "url": "",
        "num_classes": num_classes,
        "input_size": input_size,
        "first_conv": first_conv,
        "classifier": classifier,
        "license": "mit",
    }


# timm's register_model reads this module-level table for each entry's pretrained cfg.
default_cfgs: dict[str, dict] = {
    **{f"{TIMM_PREFIX}{v}": _cfg((3, 224, 224), "conv1", "fc", 1000) for v in RESNET_VARIANTS},
    **{f"{TIMM_PREFIX}cifar_{v}": _cfg((3, 32, 32), "conv1", "fc", 10) for v in RESNET_VARIANTS},
    f"{TIMM_PREFIX}fastnet": _cfg((3, 32, 32), "stem.conv", "head", 10),
    f"{TIMM_PREFIX}reference_resnet": _cfg((3, 32, 32), "conv1", "fc", 10),
}


class AttentionResNet(ResNet):
    """timm's ImageNet ``ResNet`` with ``attention`` after the last BN of every block.

    The same slot and initialisation rule as :class:`miamind.models.CifarResNet` (timm's init for
    the backbone; each attention layer keeps its own constructor's init), with timm's stem.
    ``**kwargs`` go to timm's ``ResNet`` (``zero_init_last``, ``drop_path_rate``, ``output_stride``...).
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: tuple[int, ...],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        attention: AttentionSpec = "mia",
        attention_kwargs: Mapping[str, Any] | None = None,
        model_name: str = "resnet",
        **kwargs: Any,
    ) -> None:
        attn_layer = functools.partial(
            build_attention,
            attention,
            model=model_name,
            slot=ATTENTION_SLOT,
            dims=2,
            attention_kwargs=attention_kwargs,
        )
        super().__init__(
            block,  # type: ignore[arg-type]  # timm annotates its two block classes
            layers,
            num_classes=num_classes,
            in_chans=in_chans,
            block_args=dict(attn_layer=attn_layer),
            **kwargs,
        )
        self.model_name = model_name

    @torch.jit.ignore
    def init_weights(self, zero_init_last: bool = True) -> None:
        """timm's backbone init; attention layers keep the parameters their constructor gave them."""
        init_keeping_attention(self, lambda: super(AttentionResNet, self).init_weights(zero_init_last))


def _entry(name: str, build: Callable[..., nn.Module], doc: str) -> Callable[..., nn.Module]:
    """A timm entry point ``name(pretrained=False, **kwargs)`` built by timm's ``build_model_with_cfg``."""

    def entry(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        if pretrained:
            raise ValueError(f"{name}: no pretrained weights are published; use pretrained=False")
        return build_model_with_cfg(build, name, pretrained, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__module__ = __name__
    entry.__doc__ = doc
    return register_model(entry)


def _miamind_builder(model: str) -> Callable[..., nn.Module]:
    # Through miamind's own create_model: the same validation and messages as everywhere else.
    return functools.partial(create_model, model)


for _v in RESNET_VARIANTS.values():
    # The CIFAR builder's docstring, on one line.
    _doc = " ".join((get_model_builder(_v.name).__doc__ or "").split())
    _entry(
        f"{TIMM_PREFIX}{_v.name}",
        functools.partial(AttentionResNet, _v.block, _v.layers, model_name=f"{TIMM_PREFIX}{_v.name}"),
        f"{_doc.replace('CIFAR ', 'ImageNet-stem ')} timm's 7x7 stride-2 stem and max-pool.",
    )
    _entry(f"{TIMM_PREFIX}cifar_{_v.name}", _miamind_builder(_v.name), _doc)
_entry(f"{TIMM_PREFIX}fastnet", _miamind_builder("fastnet"), "airbench94-style fastnet with attention.")
_entry(
    f"{TIMM_PREFIX}reference_resnet",
    _miamind_builder("reference_resnet"),
    "The public MindSpore code's 'ResNet-50' (a ResNet-34 layout), default attention mia_code.",
)
