"""``unet``: the classic U-Net (Ronneberger, Fischer, Brox, MICCAI 2015) with attention at named points.

Layout for ``depth = 4``, ``width = 64`` (widths ``width * 2**i``)::

    encoder.0   double conv  in_chans -> 64                    H     x W       (skip 0)
    encoder.1   maxpool2, double conv 64 -> 128                H/2   x W/2     (skip 1)
    encoder.2   maxpool2, double conv 128 -> 256               H/4   x W/4     (skip 2)
    encoder.3   maxpool2, double conv 256 -> 512               H/8   x W/8     (skip 3)
    bottleneck  maxpool2, double conv 512 -> 1024              H/16  x W/16
    decoder.0   up 1024 -> 512, concat skip 3, double conv 1024 -> 512        H/8
    decoder.1   up 512 -> 256,  concat skip 2, double conv 512 -> 256         H/4
    decoder.2   up 256 -> 128,  concat skip 1, double conv 256 -> 128         H/2
    decoder.3   up 128 -> 64,   concat skip 0, double conv 128 -> 64          H
    head        1x1 conv 64 -> num_classes                                    logits (N, K, H, W)

Double conv = (3x3 conv, padding 1, no bias -> BN -> ReLU) x 2, so every level keeps its size ("same"
padding, unlike the paper's valid convs and cropping) and the output has the input's H x W, which must
be divisible by ``2**depth`` (a ValueError names the shape otherwise). ``up`` is a 2x2 stride-2
transposed conv (the paper's up-convolution), or with ``upsample="bilinear"`` a bilinear 2x upsampling
followed by a 1x1 conv that halves the channels (no checkerboard artefacts, fewer parameters).

Attention placement, chosen with ``attention_at`` (any subset; default ``("decoder",)``):

============ ============================================= ========================== =================
point        where                                         module names               channels (w=64)
============ ============================================= ========================== =================
encoder      after each encoder double conv, before the    ``encoder.{i}.attn``       64, 128, 256, 512
             pooling (the skip carries attended features)
bottleneck   after the bottleneck double conv              ``bottleneck.attn``        1024
decoder      after each decoder double conv (the block's   ``decoder.{i}.conv.attn``  512, 256, 128, 64
             output)
skip         on each skip connection, just before it is    ``decoder.{i}.skip_attn``  512, 256, 128, 64
             concatenated with the upsampled features
============ ============================================= ========================== =================

(The public MindSpore code's "U-Net + MIA" is a different, 2-level network with 32-64-128 channels,
no BN, and MIA on the upsampled features before the concatenation; it is not reproduced here.)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn as nn

from .._arch.plan import takes_spec
from .._arch.unet import ATTENTION_POINTS, UNetSpec, double_conv_layers
from . import _ops
from .registry import register_model

__all__ = ["UNet", "DoubleConv", "unet", "ATTENTION_POINTS"]


class DoubleConv(nn.Sequential):
    """[maxpool2 ->] (3x3 conv, padding 1, no bias -> BN -> ReLU) x 2 -> ``attn`` (``nn.Identity`` if none)."""

    def __init__(self, in_chs: int, out_chs: int, attn: nn.Module, pool: bool = False) -> None:
        super().__init__(OrderedDict(double_conv_layers(_ops, in_chs, out_chs, attn, pool)))


class _Up(nn.Module):
    """Upsample x2 (halving channels), attention on the skip, concat [skip, up], double conv."""

    def __init__(
        self, in_chs: int, out_chs: int, upsample: str, skip_attn: nn.Module, attn: nn.Module
    ) -> None:
        super().__init__()
        self.up: nn.Module
        if upsample == "transpose":
            self.up = nn.ConvTranspose2d(in_chs, out_chs, 2, stride=2)
        else:
            self.up = nn.Sequential(
                OrderedDict(
                    [
                        ("resize", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)),
                        ("proj", nn.Conv2d(in_chs, out_chs, 1)),
                    ]
                )
            )
        self.skip_attn = skip_attn
        self.conv = DoubleConv(2 * out_chs, out_chs, attn)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.skip_attn(skip), self.up(x)], dim=1))


@takes_spec(UNetSpec)
class UNet(nn.Module):
    """Classic U-Net, see the module docstring.

    Keyword arguments, defaults and their checks: :class:`miamind._arch.unet.UNetSpec`
    (``num_classes``, ``in_chans``, ``attention``, ``attention_kwargs``, ``attention_at``, ``width``,
    ``depth``, ``upsample``), shared with the MindSpore twin.
    """

    # Set by spec.build_into, as UNetSpec.attributes and .build_layers name them.
    in_chans: int
    attention_at: tuple[str, ...]
    depth: int
    multiple: int  # H and W must be multiples of this (2**depth)
    encoder: nn.ModuleList
    bottleneck: DoubleConv
    decoder: nn.ModuleList
    head: nn.Conv2d

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        spec = UNetSpec(**kwargs)
        spec.build_into(self, spec.build_layers(_ops, DoubleConv, _Up))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.multiple
        if x.dim() != 4 or x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(
                f"unet (depth {self.depth}) expects input (N, C, H, W) with H and W divisible by {m}, "
                f"got {tuple(x.shape)}; pad the input to a multiple of {m}"
            )
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = self.bottleneck(x)
        for block, skip in zip(self.decoder, reversed(skips), strict=True):
            x = block(x, skip)
        return self.head(x)


# The class is its own builder: its constructor is the keyword-only signature create_model checks.
unet = register_model("unet")(UNet)
