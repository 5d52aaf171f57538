"""``reference_resnet``: the network the public MindSpore MIA-Mind code calls "ResNet-50".

Source: mindspore-lab/models, ``research/arxiv_papers/MIA-Mind/model/ResNet_50.py`` (classes
``ResidualBlock`` and ``ResNetCBAM``), built by ``train.py`` as ``ResNetCBAM(ResidualBlock, [3, 4, 6, 3],
num_classes=10)``. Mirrored here layer by layer:

- stem: 3x3 conv, stride 1, padding 1, 64 channels, no bias -> BN -> ReLU; no max-pool (CIFAR stem);
- four stages of **basic** blocks (two 3x3 convs), [3, 4, 6, 3] blocks, widths 64, 128, 256, 512,
  stride 2 in the first block of stages 2-4;
- block: ``relu(bn1(conv1(x)))`` -> ``bn2(conv2(.))`` -> **MIA** -> ``+ shortcut`` -> ReLU, the shortcut
  a 1x1 strided conv (no bias) + BN when the shape changes, else the identity;
- head: mean over H and W, then a fully connected layer 512 -> num_classes with bias.

Despite its name this is **a ResNet-34 layout** (BasicBlocks, [3, 4, 6, 3]), not ResNet-50 (which uses
Bottleneck blocks and ends with 2048 channels): about 21.3M parameters without attention, against
23.5M for the CIFAR ResNet-50 (``resnet50`` in this package). With ``attention=None`` it has exactly the
parameters, names and forward pass of ``resnet34`` (a test loads one's weights into the other).

Attention placement: after ``bn2`` of every block, before the residual add (16 layers, ``layerS.B.attn``;
the MindSpore code calls the slot ``cbam``). The default attention is ``"mia_code"``, the layer that
code builds (:class:`miamind.attention.MIAMindCode`); pass ``attention="mia"`` for the paper form.

Differences from the MindSpore code, all deliberate:

- ``in_chans`` is a parameter (the original hard-codes 3 input channels);
- initialisation: PyTorch's defaults for convs / linear layers and BN (gamma 1, beta 0). The original
  passes no initialiser either, so it also uses its framework's defaults; unlike ``resnet34`` (timm)
  there is no Kaiming fan-out init and no zero-init of the last BN;
- BN hyper-parameters are PyTorch's (eps 1e-5, momentum 0.1), which equal MindSpore's defaults
  (eps 1e-5, momentum 0.9 in MindSpore's opposite convention).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from ..attention.registry import AttentionSpec
from ._attention import build_attention
from .registry import register_model

__all__ = ["ReferenceBlock", "ReferenceResNet", "reference_resnet", "ATTENTION_SLOT"]

ATTENTION_SLOT = "after bn2 of each residual block, before the residual add"


class ReferenceBlock(nn.Module):
    """The MindSpore code's ``ResidualBlock``: basic block with attention after ``bn2``."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, attn: nn.Module) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.attn = attn
        self.act2 = nn.ReLU(inplace=True)
        self.downsample: nn.Sequential | None = None
        if in_chs != out_chs or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.attn(self.bn2(self.conv2(out)))
        return self.act2(out + shortcut)


class ReferenceResNet(nn.Module):
    """The MindSpore code's ``ResNetCBAM`` (see the module docstring)."""

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        attention: AttentionSpec = "mia_code",
        attention_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(layers) != len(widths):
            raise ValueError(
                f"reference_resnet: layers {tuple(layers)} and widths {tuple(widths)} differ in length"
            )
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.act1 = nn.ReLU(inplace=True)
        in_chs = widths[0]
        for i, (depth, width) in enumerate(zip(layers, widths, strict=True)):
            blocks: list[nn.Module] = []
            for b in range(depth):
                stride = 2 if (i > 0 and b == 0) else 1
                attn = build_attention(
                    attention,
                    width,
                    model="reference_resnet",
                    slot=ATTENTION_SLOT,
                    dims=2,
                    attention_kwargs=attention_kwargs,
                )
                blocks.append(ReferenceBlock(in_chs, width, stride, attn))
                in_chs = width
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(layers)
        self.num_features = in_chs
        self.fc = nn.Linear(in_chs, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x).mean((2, 3)))


@register_model("reference_resnet")
def reference_resnet(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    attention: AttentionSpec = "mia_code",
    attention_kwargs: Mapping[str, Any] | None = None,
) -> ReferenceResNet:
    """The MindSpore code's "ResNet-50" (really a ResNet-34 layout), default attention ``"mia_code"``."""
    return ReferenceResNet(
        num_classes=num_classes, in_chans=in_chans, attention=attention, attention_kwargs=attention_kwargs
    )
