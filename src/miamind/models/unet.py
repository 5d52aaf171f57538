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
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn as nn

from .._registry import AttentionSpec
from ._attention import build_attention
from .registry import register_model

__all__ = ["UNet", "DoubleConv", "unet", "ATTENTION_POINTS"]

#: Valid values of ``attention_at`` and what they mean (used in the ``slot`` of each layer).
ATTENTION_POINTS = {
    "encoder": "after each encoder double conv (before pooling)",
    "bottleneck": "after the bottleneck double conv",
    "decoder": "after each decoder double conv",
    "skip": "on each skip connection before concatenation",
}


class DoubleConv(nn.Sequential):
    """[maxpool2 ->] (3x3 conv, padding 1, no bias -> BN -> ReLU) x 2 -> ``attn`` (``nn.Identity`` if none)."""

    def __init__(self, in_chs: int, out_chs: int, attn: nn.Module, pool: bool = False) -> None:
        layers: list[tuple[str, nn.Module]] = [("pool", nn.MaxPool2d(2))] if pool else []
        layers += [
            ("conv1", nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False)),
            ("bn1", nn.BatchNorm2d(out_chs)),
            ("act1", nn.ReLU(inplace=True)),
            ("conv2", nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)),
            ("bn2", nn.BatchNorm2d(out_chs)),
            ("act2", nn.ReLU(inplace=True)),
            ("attn", attn),
        ]
        super().__init__(OrderedDict(layers))


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
            resize = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.up = nn.Sequential(OrderedDict(resize=resize, proj=nn.Conv2d(in_chs, out_chs, 1)))
        self.skip_attn = skip_attn
        self.conv = DoubleConv(2 * out_chs, out_chs, attn)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.skip_attn(skip), self.up(x)], dim=1))


def _check_level_count(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"unet: {what} must be an integer >= 1, got {value!r}")


class UNet(nn.Module):
    """Classic U-Net (Ronneberger et al., 2015) with attention at named points, see the module docstring.

    Args:
        num_classes: logits per pixel.
        in_chans: input channels.
        attention: attention spec (name, class, callable or ``None`` for none).
        attention_kwargs: keyword arguments for every attention layer.
        attention_at: insertion points, a subset of ``{"encoder", "bottleneck", "decoder", "skip"}``
            (a single name is accepted too); stored as a tuple.
        width: channels of the first level (paper: 64); level i has ``width * 2**i``.
        depth: number of poolings (paper: 4).
        upsample: ``"transpose"`` (paper) or ``"bilinear"``.
    """

    def __init__(
        self,
        *,
        num_classes: int = 2,
        in_chans: int = 1,
        attention: AttentionSpec = None,
        attention_kwargs: Mapping[str, Any] | None = None,
        attention_at: Iterable[str] = ("decoder",),
        width: int = 64,
        depth: int = 4,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        points = (attention_at,) if isinstance(attention_at, str) else tuple(attention_at)
        unknown = sorted(set(points) - set(ATTENTION_POINTS))
        if unknown:
            raise ValueError(f"unet: unknown attention_at {unknown}; valid: {sorted(ATTENTION_POINTS)}")
        _check_level_count(width, "width")
        _check_level_count(depth, "depth")
        if upsample not in ("transpose", "bilinear"):
            raise ValueError(f"unet: upsample must be 'transpose' or 'bilinear', got {upsample!r}")
        self.in_chans = in_chans
        self.attention_at = points
        self.depth = depth
        self.multiple = 2**depth  # H and W must be multiples of this

        def attn(point: str, channels: int) -> nn.Module:
            # A point not in attention_at keeps its slot as nn.Identity (same module names either way).
            return build_attention(
                attention if point in points else None,
                channels,
                model="unet",
                slot=ATTENTION_POINTS[point],
                dims=2,
                attention_kwargs=attention_kwargs,
            )

        # Each slot's attention is built before its block, the skip's before the decoder's: the order
        # in which layers draw from the RNG is what a seed reproduces (and the MindSpore twin's).
        w = [width * 2**i for i in range(depth + 1)]  # level 0 .. depth (the bottleneck's)
        encoder = []
        for i in range(depth):
            a = attn("encoder", w[i])
            encoder.append(DoubleConv(w[i - 1] if i else in_chans, w[i], a, pool=i > 0))
        self.encoder = nn.ModuleList(encoder)
        a = attn("bottleneck", w[-1])
        self.bottleneck = DoubleConv(w[-2], w[-1], a, pool=True)
        decoder = []
        for i in reversed(range(depth)):
            skip_attn, a = attn("skip", w[i]), attn("decoder", w[i])
            decoder.append(_Up(w[i + 1], w[i], upsample, skip_attn, a))
        self.decoder = nn.ModuleList(decoder)
        self.head = nn.Conv2d(w[0], num_classes, 1, bias=True)

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
