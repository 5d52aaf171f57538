"""U-Net as a MindSpore cell, twin of :mod:`miamind.models.unet` (same layout, defaults and names).

``encoder.{i}`` / ``bottleneck`` / ``decoder.{i}.conv`` are double convs ([maxpool2 ->] (3x3 conv,
padding 1, no bias -> BN -> ReLU) x 2 -> ``attn``), ``decoder.{i}.up`` the 2x2 stride-2 transposed
conv (``upsample="transpose"``) or ``up.resize`` + ``up.proj`` (bilinear x2, then 1x1 conv),
``decoder.{i}.skip_attn`` the attention on the skip connection, ``head`` the 1x1 output conv.
``attention_at`` picks the insertion points exactly as in PyTorch (default ``("decoder",)``).
Input (N, C, H, W) with H and W divisible by ``2**depth`` -> logits (N, num_classes, H, W).
MindSpore's ``nn.Conv2dTranspose`` stores its weight as (in, out, kH, kW), like PyTorch.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .._require import require_mindspore

ms = require_mindspore()
from mindspore import nn, ops  # noqa: E402

from ..._arch.plan import takes_spec  # noqa: E402
from ..._arch.unet import ATTENTION_POINTS, UNetSpec, double_conv_layers  # noqa: E402
from . import _layers  # noqa: E402
from ._layers import conv2d  # noqa: E402
from ._registry import register_model  # noqa: E402

__all__ = ["UNet", "DoubleConv", "unet", "ATTENTION_POINTS"]


class DoubleConv(nn.SequentialCell):
    """[maxpool2 ->] (3x3 conv, padding 1, no bias -> BN -> ReLU) x 2 -> ``attn``."""

    def __init__(self, in_chs: int, out_chs: int, attn: nn.Cell, pool: bool = False) -> None:
        super().__init__(OrderedDict(double_conv_layers(_layers, in_chs, out_chs, attn, pool)))


class _Resize2x(nn.Cell):
    """Bilinear x2 upsampling, ``align_corners=False`` (``torch.nn.Upsample(scale_factor=2, mode="bilinear")``)."""

    def construct(self, x):
        # An explicit size: MindSpore's interpolate takes no scale_factor for 4-D bilinear.
        return ops.interpolate(x, size=(x.shape[2] * 2, x.shape[3] * 2), mode="bilinear", align_corners=False)


class _Up(nn.Cell):
    """Upsample x2 (halving channels), attention on the skip, concat [skip, up], double conv."""

    def __init__(self, in_chs: int, out_chs: int, upsample: str, skip_attn: nn.Cell, attn: nn.Cell) -> None:
        super().__init__()
        if upsample == "transpose":
            self.up = nn.Conv2dTranspose(in_chs, out_chs, 2, stride=2, pad_mode="valid", has_bias=True)
        else:
            self.up = nn.SequentialCell(
                OrderedDict(
                    [
                        ("resize", _Resize2x()),
                        ("proj", conv2d(in_chs, out_chs, 1, bias=True)),
                    ]
                )
            )
        self.skip_attn = skip_attn
        self.conv = DoubleConv(2 * out_chs, out_chs, attn)

    def construct(self, x, skip):
        return self.conv(ops.cat((self.skip_attn(skip), self.up(x)), 1))


@takes_spec(UNetSpec)
class UNet(nn.Cell):
    """Classic U-Net; arguments as :class:`miamind.models.UNet` (both backends take
    :class:`miamind._arch.unet.UNetSpec`'s)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        spec = UNetSpec(**kwargs)
        spec.build_into(self, spec.build_layers(_layers, DoubleConv, _Up))

    def construct(self, x):
        m = self.multiple
        if x.ndim != 4 or x.shape[1] != self.in_chans or x.shape[2] % m != 0 or x.shape[3] % m != 0:
            raise ValueError(
                f"unet (depth {self.depth}) expects input (N, {self.in_chans}, H, W) with H and W divisible "
                f"by {m}, got {x.shape}; pad the input to a multiple of {m}"
            )
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = self.bottleneck(x)
        level = self.depth
        for block in self.decoder:
            level = level - 1
            x = block(x, skips[level])
        return self.head(x)


# The class is its own builder: its constructor is the keyword-only signature create_model checks.
unet = register_model("unet")(UNet)
