"""CIFAR ResNet-18/34/50 (timm's ResNet with a CIFAR stem) with an attention layer in every block.

Built on ``timm.models.resnet.ResNet`` with ``BasicBlock`` (resnet18, resnet34) or ``Bottleneck``
(resnet50) and the stage depths of He et al. (2016): [2,2,2,2], [3,4,6,3], [3,4,6,3].

CIFAR stem: the ImageNet stem (7x7 stride-2 conv + 3x3 stride-2 max-pool) is replaced by a 3x3
stride-1 conv (64 channels, no bias) + BN + ReLU and no max-pool, so a 32x32 image reaches the
stages at 32x32 and the last stage at 4x4 (feature reductions 1, 1, 2, 4, 8).

Attention placement (the SE / CBAM placement): in every residual block, after the block's last
BatchNorm (``bn2`` in BasicBlock, ``bn3`` in Bottleneck) and before the residual add::

    out = act(attn(bn_last(conv_last(...))) + shortcut(x))

This is timm's own ``attn_layer`` hook: each block calls ``attn_layer(out_channels)`` and stores the
layer as ``block.se`` (timm's name for the slot, whatever the attention is), so parameters are named
e.g. ``layer1.0.se.fc1.weight``. One attention layer per block: 8 (resnet18), 16 (resnet34, resnet50).

Initialisation:

- timm's ``init_weights`` (Kaiming-normal, fan-out, on every ``nn.Conv2d``) would also re-initialise
  the attention layers' 1x1 / 7x7 convs. :class:`CifarResNet` overrides ``init_weights`` to keep every
  attention layer exactly as its own constructor initialised it (tests check this parameter by
  parameter), so the attention starts from its documented init whatever timm does to the backbone.
- ``zero_init_last=True`` (timm's default, kept): the last BN's gamma of every block starts at 0, so
  each block starts as the identity (Goyal et al., 2017) and, at initialisation, the attention layer
  sees an all-zero input (its output is 0 and its own parameters get no gradient on the first step;
  gamma does, scaled by the attention map). Pass ``zero_init_last=False`` to start from gamma = 1.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn as nn
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

from .._registry import AttentionSpec
from ._attention import build_attention, init_keeping_attention
from .registry import register_model

__all__ = ["CifarResNet", "resnet18", "resnet34", "resnet50", "ATTENTION_SLOT", "RESNET_VARIANTS"]

#: Where the attention layers sit (the ``slot`` of ``build_attention``).
ATTENTION_SLOT = "after the last BN of each residual block, before the residual add"


@dataclass(frozen=True)
class ResNetVariant:
    """A registered depth: its timm block class and blocks per stage (its builder holds its docstring)."""

    name: str
    block: type[nn.Module]
    layers: tuple[int, ...]


#: The registered CIFAR ResNets (He et al., 2016 depths); :mod:`.timm_models` registers them too.
RESNET_VARIANTS = {
    v.name: v
    for v in (
        ResNetVariant("resnet18", BasicBlock, (2, 2, 2, 2)),
        ResNetVariant("resnet34", BasicBlock, (3, 4, 6, 3)),
        ResNetVariant("resnet50", Bottleneck, (3, 4, 6, 3)),
    )
}


class CifarResNet(ResNet):
    """timm ``ResNet`` with a CIFAR stem and ``attention`` after the last BN of every block.

    Args:
        block: timm ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)``.
        num_classes: logits per sample.
        in_chans: input channels.
        attention: attention spec (name, class, callable or ``None`` for none).
        attention_kwargs: keyword arguments for every attention layer.
        zero_init_last: zero the last BN's gamma in each block (timm default; see the module docstring).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic-depth rate (timm, linearly increasing over blocks).
        model_name: used in error messages.
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: Sequence[int],
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        attention: AttentionSpec = None,
        attention_kwargs: Mapping[str, Any] | None = None,
        zero_init_last: bool = True,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        model_name: str = "resnet",
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
            block,  # type: ignore[arg-type]  # timm annotates the two classes; any block of that shape works
            tuple(layers),
            num_classes=num_classes,
            in_chans=in_chans,
            zero_init_last=zero_init_last,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            block_args=dict(attn_layer=attn_layer),
        )
        # CIFAR stem; initialised as timm initialises every backbone conv.
        stem_width = cast(nn.BatchNorm2d, self.bn1).num_features
        stem_conv = nn.Conv2d(in_chans, stem_width, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(stem_conv.weight, mode="fan_out", nonlinearity="relu")
        # timm types conv1 / maxpool as the Sequential of its deep stems; any module works there.
        self.conv1 = stem_conv  # type: ignore[assignment]
        self.maxpool = nn.Identity()  # type: ignore[assignment]
        # timm's feature_info assumes the ImageNet stem (stride 4 before layer1); ours has none.
        for info in self.feature_info:
            info["reduction"] = 1 if info["module"] == "act1" else cast(int, info["reduction"]) // 4
        self.model_name = model_name

    @torch.jit.ignore
    def init_weights(self, zero_init_last: bool = True) -> None:
        """timm's backbone init; attention layers keep the parameters their constructor gave them."""
        init_keeping_attention(self, lambda: super(CifarResNet, self).init_weights(zero_init_last))


def _variant(name: str, **kwargs: Any) -> CifarResNet:
    v = RESNET_VARIANTS[name]
    return CifarResNet(v.block, v.layers, model_name=name, **kwargs)


@register_model("resnet18")
def resnet18(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    attention: AttentionSpec = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    zero_init_last: bool = True,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> CifarResNet:
    """CIFAR ResNet-18: BasicBlocks [2, 2, 2, 2], widths 64-512, 8 attention layers."""
    return _variant(
        "resnet18",
        num_classes=num_classes,
        in_chans=in_chans,
        attention=attention,
        attention_kwargs=attention_kwargs,
        zero_init_last=zero_init_last,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )


@register_model("resnet34")
def resnet34(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    attention: AttentionSpec = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    zero_init_last: bool = True,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> CifarResNet:
    """CIFAR ResNet-34: BasicBlocks [3, 4, 6, 3], widths 64-512, 16 attention layers."""
    return _variant(
        "resnet34",
        num_classes=num_classes,
        in_chans=in_chans,
        attention=attention,
        attention_kwargs=attention_kwargs,
        zero_init_last=zero_init_last,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )


@register_model("resnet50")
def resnet50(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    attention: AttentionSpec = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    zero_init_last: bool = True,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> CifarResNet:
    """CIFAR ResNet-50: Bottleneck blocks [3, 4, 6, 3], output widths 256-2048, 16 attention layers
    (after ``bn3``, on 256-2048 channels)."""
    return _variant(
        "resnet50",
        num_classes=num_classes,
        in_chans=in_chans,
        attention=attention,
        attention_kwargs=attention_kwargs,
        zero_init_last=zero_init_last,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
