"""``fastnet`` (airbench94-style CIFAR net, :mod:`miamind.models.fastnet`) as a plan: the whitening
stem's width, the conv groups' channels with an attention slot after each, the smallest input, and
the layers in construction order (:meth:`FastNetSpec.build_layers`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .plan import AttentionSite, LayerOps, ModelSpec, NamedLayers

__all__ = ["ATTENTION_SLOT", "ConvGroupSpec", "FastNetSpec"]

ATTENTION_SLOT = "after each conv group (after its second GELU)"


@dataclass(frozen=True, kw_only=True)
class ConvGroupSpec:
    """The keyword arguments of a conv group (``ConvGroup`` in both backends): its BatchNorms'
    settings, as :class:`FastNetSpec`'s ``bn_*``."""

    bn_momentum: float
    bn_eps: float
    bn_train_gamma: bool

    def build_layers(
        self, ops: LayerOps, dirac_conv: Callable[[int, int], Any], in_chs: int, out_chs: int, attn: Any
    ) -> NamedLayers:
        """``conv1``, ``pool``, ``bn1``, ``conv2``, ``bn2``, ``act`` (used after both BNs), ``attn``;
        ``dirac_conv(in_chs, out_chs)`` is the backend's 3x3 conv with airbench's partial identity init."""
        norm = partial(
            ops.batch_norm, momentum=self.bn_momentum, eps=self.bn_eps, train_gamma=self.bn_train_gamma
        )
        return [
            ("conv1", dirac_conv(in_chs, out_chs)),
            ("pool", ops.max_pool(2)),
            ("bn1", norm(out_chs)),
            ("conv2", dirac_conv(out_chs, out_chs)),
            ("bn2", norm(out_chs)),
            ("act", ops.gelu()),
            ("attn", attn),
        ]


@dataclass(frozen=True, kw_only=True)
class FastNetSpec(ModelSpec):
    """``fastnet``'s constructor arguments (the common ones: :class:`ModelSpec`).

    Args:
        widths: output channels of the conv groups (airbench94: 64, 256, 256).
        whiten_kernel_size: kernel of the stem conv (airbench: 2).
        whiten_width: stem channels; default ``2 * in_chans * whiten_kernel_size ** 2`` (24), the
            width ``init_whitening`` needs.
        logit_scale: multiplies the logits (airbench: 1/9).
        bn_momentum: PyTorch-convention BN momentum (airbench: 0.4).
        bn_eps: BN epsilon (airbench: 1e-12).
        bn_train_gamma: learn the BN scale (airbench: False, gamma frozen at 1).
    """

    num_classes: int = 10
    in_chans: int = 3
    widths: Sequence[int] = (64, 256, 256)
    whiten_kernel_size: int = 2
    whiten_width: int | None = None
    logit_scale: float = 1.0 / 9
    bn_momentum: float = 0.4
    bn_eps: float = 1e-12
    bn_train_gamma: bool = False

    def __post_init__(self) -> None:
        widths = self.widths
        if len(widths) < 1 or any(int(w) != w or w < 1 for w in widths):
            raise ValueError(f"fastnet: widths must be positive integers, got {tuple(widths)!r}")

    @property
    def stem_width(self) -> int:
        """Channels out of the whitening stem."""
        if self.whiten_width is None:
            return 2 * self.in_chans * self.whiten_kernel_size**2
        return self.whiten_width

    @property
    def num_features(self) -> int:
        """Channels into the classifier (the last group's)."""
        return self.widths[-1]

    @property
    def min_input_size(self) -> int:
        """Smallest H, W: the stem loses k - 1, then each group's 2x pooling must leave >= 1 pixel."""
        return (self.whiten_kernel_size - 1) + 2 ** len(self.widths)

    def attributes(self) -> dict[str, Any]:
        return {
            **super().attributes(),
            "num_features": self.num_features,
            "logit_scale": float(self.logit_scale),
            "min_input_size": self.min_input_size,
        }

    def groups(self) -> list[tuple[int, int, AttentionSite]]:
        """``(in_chs, out_chs, attention)`` of each conv group, input to output."""
        plan = []
        in_chs = self.stem_width
        for width in self.widths:
            plan.append((in_chs, width, self.site("fastnet", ATTENTION_SLOT, width)))
            in_chs = width
        return plan

    def build_layers(self, ops: LayerOps, conv_group: Callable[..., Any]) -> NamedLayers:
        """``stem`` (``conv``, ``act``), ``groups`` (the backend's ``conv_group`` class, each with its
        attention), ``head`` (no bias)."""
        conv = ops.conv2d(self.in_chans, self.stem_width, self.whiten_kernel_size, padding=0, bias=True)
        stem = ops.sequential([("conv", conv), ("act", ops.gelu())])
        bn = dict(bn_momentum=self.bn_momentum, bn_eps=self.bn_eps, bn_train_gamma=self.bn_train_gamma)
        groups = [
            (str(i), conv_group(in_chs, out_chs, site.build(ops.build_attention), **bn))
            for i, (in_chs, out_chs, site) in enumerate(self.groups())
        ]
        head = ops.dense(self.num_features, self.num_classes, bias=False)
        return [("stem", stem), ("groups", ops.sequential(groups)), ("head", head)]
