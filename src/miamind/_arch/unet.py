"""``unet`` (classic U-Net, :mod:`miamind.models.unet`) as a plan: the widths of each level and which
of the named attention points (``attention_at``) get a layer; the others keep an empty slot. Also the
layers in construction order (:meth:`UNetSpec.build_layers`, :func:`double_conv_layers`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .plan import AttentionSite, LayerOps, ModelSpec, NamedLayers

__all__ = ["ATTENTION_POINTS", "UNetSpec", "double_conv_layers"]

#: Valid values of ``attention_at`` and what they mean (used in the ``slot`` of each layer).
ATTENTION_POINTS = {
    "encoder": "after each encoder double conv (before pooling)",
    "bottleneck": "after the bottleneck double conv",
    "decoder": "after each decoder double conv",
    "skip": "on each skip connection before concatenation",
}


def double_conv_layers(ops: LayerOps, in_chs: int, out_chs: int, attn: Any, pool: bool) -> NamedLayers:
    """A double conv's layers: [``pool`` (max-pool 2) ->] (3x3 conv, padding 1, no bias -> BN -> ReLU)
    x 2 (``conv1``, ``bn1``, ``act1``, ``conv2``, ``bn2``, ``act2``) -> ``attn``."""
    layers = [("pool", ops.max_pool(2))] if pool else []
    return layers + [
        ("conv1", ops.conv2d(in_chs, out_chs, 3, padding=1, bias=False)),
        ("bn1", ops.batch_norm(out_chs)),
        ("act1", ops.relu()),
        ("conv2", ops.conv2d(out_chs, out_chs, 3, padding=1, bias=False)),
        ("bn2", ops.batch_norm(out_chs)),
        ("act2", ops.relu()),
        ("attn", attn),
    ]


def _check_level_count(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"unet: {what} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class UNetSpec(ModelSpec):
    """``unet``'s constructor arguments (the common ones: :class:`ModelSpec`).

    Args:
        attention_at: insertion points, a subset of ``{"encoder", "bottleneck", "decoder", "skip"}``
            (a single name is accepted too); stored as a tuple.
        width: channels of the first level (paper: 64); level i has ``width * 2**i``.
        depth: number of poolings (paper: 4).
        upsample: ``"transpose"`` (paper) or ``"bilinear"``.
    """

    num_classes: int = 2
    in_chans: int = 1
    attention_at: Iterable[str] = ("decoder",)
    width: int = 64
    depth: int = 4
    upsample: str = "transpose"

    def __post_init__(self) -> None:
        points = (self.attention_at,) if isinstance(self.attention_at, str) else tuple(self.attention_at)
        unknown = sorted(set(points) - set(ATTENTION_POINTS))
        if unknown:
            raise ValueError(f"unet: unknown attention_at {unknown}; valid: {sorted(ATTENTION_POINTS)}")
        _check_level_count(self.width, "width")
        _check_level_count(self.depth, "depth")
        if self.upsample not in ("transpose", "bilinear"):
            raise ValueError(f"unet: upsample must be 'transpose' or 'bilinear', got {self.upsample!r}")
        object.__setattr__(self, "attention_at", points)  # frozen: the one normalisation

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this (``2**depth``)."""
        return 2**self.depth

    @property
    def widths(self) -> list[int]:
        """Channels of level 0 .. depth (the last is the bottleneck's)."""
        return [self.width * 2**i for i in range(self.depth + 1)]

    def attributes(self) -> dict[str, Any]:
        return {
            **super().attributes(),
            "attention_at": self.attention_at,
            "depth": self.depth,
            "multiple": self.multiple,
        }

    def _site(self, point: str, channels: int) -> AttentionSite:
        return self.site("unet", ATTENTION_POINTS[point], channels, attend=point in self.attention_at)

    def encoder(self) -> list[tuple[int, int, AttentionSite, bool]]:
        """``(in_chs, out_chs, attention, pool first)`` of each encoder level, input to output."""
        w = self.widths
        return [
            (w[i - 1] if i else self.in_chans, w[i], self._site("encoder", w[i]), i > 0)
            for i in range(self.depth)
        ]

    def bottleneck(self) -> tuple[int, int, AttentionSite]:
        """``(in_chs, out_chs, attention)`` of the bottleneck (after a pooling)."""
        w = self.widths
        return w[-2], w[-1], self._site("bottleneck", w[-1])

    def decoder(self) -> list[tuple[int, int, AttentionSite, AttentionSite]]:
        """``(in_chs, out_chs, skip attention, attention)`` of each decoder level, deepest first."""
        w = self.widths
        return [
            (w[i + 1], w[i], self._site("skip", w[i]), self._site("decoder", w[i]))
            for i in reversed(range(self.depth))
        ]

    def build_layers(
        self, ops: LayerOps, double_conv: Callable[..., Any], up: Callable[..., Any]
    ) -> NamedLayers:
        """``encoder`` (``double_conv`` per level), ``bottleneck``, ``decoder`` (``up`` per level, deepest
        first), ``head`` (1x1 conv); ``double_conv(in, out, attn, pool=...)`` and ``up(in, out,
        upsample, skip_attn, attn)`` are the backend's blocks. Each slot's attention is built before its
        block, the skip's before the decoder's."""
        build = ops.build_attention
        encoder = [double_conv(i, o, site.build(build), pool=pool) for i, o, site, pool in self.encoder()]
        in_chs, out_chs, site = self.bottleneck()
        bottleneck = double_conv(in_chs, out_chs, site.build(build), pool=True)
        decoder = [
            up(i, o, self.upsample, skip.build(build), site.build(build))
            for i, o, skip, site in self.decoder()
        ]
        return [
            ("encoder", ops.layer_list(encoder)),
            ("bottleneck", bottleneck),
            ("decoder", ops.layer_list(decoder)),
            ("head", ops.conv2d(self.widths[0], self.num_classes, 1, bias=True)),
        ]
