"""U-Net as a MindSpore cell, twin of :mod:`miamind.models.unet` (same layout, defaults and names).

``attention_at`` picks the insertion points exactly as in PyTorch (default ``("decoder",)``); the
other points keep an empty slot (``nn.Identity``), so every slot exists in both backends.
MindSpore's ``nn.Conv2dTranspose`` stores its weight as (in, out, kH, kW), like PyTorch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from .._require import require_mindspore

require_mindspore()
from mindspore import nn, ops  # noqa: E402

from ..._registry import AttentionSpec  # noqa: E402
from ._layers import batch_norm, conv2d  # noqa: E402
from ._registry import build_attention, register_model  # noqa: E402

__all__ = ["UNet", "DoubleConv", "unet", "ATTENTION_POINTS"]

#: Valid values of ``attention_at`` and what they mean (used in the ``slot`` of each layer).
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
        layers += [
            ("conv1", conv2d(in_chs, out_chs, 3, padding=1, bias=False)),
            ("bn1", batch_norm(out_chs)),
            ("act1", nn.ReLU()),
            ("conv2", conv2d(out_chs, out_chs, 3, padding=1, bias=False)),
            ("bn2", batch_norm(out_chs)),
            ("act2", nn.ReLU()),
            ("attn", attn),
        ]
        super().__init__(OrderedDict(layers))


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
            proj = conv2d(in_chs, out_chs, 1, bias=True)
            self.up = nn.SequentialCell(OrderedDict(resize=_Resize2x(), proj=proj))
        self.skip_attn = skip_attn
        self.conv = DoubleConv(2 * out_chs, out_chs, attn)

    def construct(self, x, skip):
        return self.conv(ops.cat((self.skip_attn(skip), self.up(x)), 1))


def _check_level_count(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"unet: {what} must be an integer >= 1, got {value!r}")


class UNet(nn.Cell):
    """Classic U-Net (Ronneberger et al., 2015); arguments as :class:`miamind.models.UNet`."""

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
        w = [width * 2**i for i in range(depth + 1)]  # level 0 .. depth (the bottleneck)

        def attn(point: str, channels: int) -> nn.Cell:
            # Each slot's attention is built before its block: the order a seed reproduces.
            return build_attention(
                attention if point in points else None,
                channels,
                model="unet",
                slot=ATTENTION_POINTS[point],
                dims=2,
                attention_kwargs=attention_kwargs,
            )

        self.encoder = nn.CellList(
            [
                DoubleConv(w[i - 1] if i else in_chans, w[i], attn("encoder", w[i]), pool=i > 0)
                for i in range(depth)
            ]
        )
        self.bottleneck = DoubleConv(w[-2], w[-1], attn("bottleneck", w[-1]), pool=True)
        self.decoder = nn.CellList(  # deepest level first; the skip's attention before the level's
            [
                _Up(w[i + 1], w[i], upsample, attn("skip", w[i]), attn("decoder", w[i]))
                for i in reversed(range(depth))
            ]
        )
        self.head = conv2d(w[0], num_classes, 1, bias=True)

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
