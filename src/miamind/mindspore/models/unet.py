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
from collections.abc import Iterable, Mapping
from typing import Any

from .._require import require_mindspore

ms = require_mindspore()
from mindspore import nn, ops  # noqa: E402

from ._layers import batch_norm, conv2d  # noqa: E402
from ._registry import AttentionSpec, build_attention, register_model  # noqa: E402

__all__ = ["UNet", "DoubleConv", "unet", "ATTENTION_POINTS"]

#: Valid values of ``attention_at`` and what they mean (same as the PyTorch model's).
ATTENTION_POINTS = {
    "encoder": "after each encoder double conv (before pooling)",
    "bottleneck": "after the bottleneck double conv",
    "decoder": "after each decoder double conv",
    "skip": "on each skip connection before concatenation",
}


class DoubleConv(nn.SequentialCell):
    """[maxpool2 ->] (3x3 conv, padding 1, no bias -> BN -> ReLU) x 2 -> ``attn``."""

    def __init__(self, in_chs: int, out_chs: int, attn: nn.Cell, pool: bool = False) -> None:
        layers = [("pool", nn.MaxPool2d(kernel_size=2, stride=2))] if pool else []
        super().__init__(
            OrderedDict(
                layers
                + [
                    ("conv1", conv2d(in_chs, out_chs, 3, padding=1, bias=False)),
                    ("bn1", batch_norm(out_chs)),
                    ("act1", nn.ReLU()),
                    ("conv2", conv2d(out_chs, out_chs, 3, padding=1, bias=False)),
                    ("bn2", batch_norm(out_chs)),
                    ("act2", nn.ReLU()),
                    ("attn", attn),
                ]
            )
        )


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


class UNet(nn.Cell):
    """Classic U-Net; arguments as :class:`miamind.models.UNet`."""

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
        if isinstance(attention_at, str):
            attention_at = (attention_at,)
        points = tuple(attention_at)
        unknown = sorted(set(points) - set(ATTENTION_POINTS))
        if unknown:
            raise ValueError(f"unet: unknown attention_at {unknown}; valid: {sorted(ATTENTION_POINTS)}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"unet: width must be an integer >= 1, got {width!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"unet: depth must be an integer >= 1, got {depth!r}")
        if upsample not in ("transpose", "bilinear"):
            raise ValueError(f"unet: upsample must be 'transpose' or 'bilinear', got {upsample!r}")
        self.attention_at = points
        self.depth = depth
        self.multiple = 2**depth
        self.in_chans = in_chans

        def attn(point: str, channels: int) -> nn.Cell:
            spec = attention if point in points else None
            return build_attention(
                spec,
                channels,
                model="unet",
                slot=ATTENTION_POINTS[point],
                dims=2,
                attention_kwargs=attention_kwargs,
            )

        widths = [width * 2**i for i in range(depth + 1)]
        self.encoder = nn.CellList(
            [
                DoubleConv(
                    widths[i - 1] if i else in_chans, widths[i], attn("encoder", widths[i]), pool=i > 0
                )
                for i in range(depth)
            ]
        )
        self.bottleneck = DoubleConv(
            widths[depth - 1], widths[depth], attn("bottleneck", widths[depth]), pool=True
        )
        self.decoder = nn.CellList(
            [
                _Up(widths[i + 1], widths[i], upsample, attn("skip", widths[i]), attn("decoder", widths[i]))
                for i in reversed(range(depth))
            ]
        )
        self.head = conv2d(widths[0], num_classes, 1, bias=True)

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


@register_model("unet")
def unet(
    *,
    num_classes: int = 2,
    in_chans: int = 1,
    attention: AttentionSpec = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    attention_at: Iterable[str] = ("decoder",),
    width: int = 64,
    depth: int = 4,
    upsample: str = "transpose",
) -> UNet:
    """Classic U-Net; attention at ``attention_at`` (default after each decoder block)."""
    return UNet(
        num_classes=num_classes,
        in_chans=in_chans,
        attention=attention,
        attention_kwargs=attention_kwargs,
        attention_at=attention_at,
        width=width,
        depth=depth,
        upsample=upsample,
    )
