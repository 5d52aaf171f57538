"""``fastnet`` as a MindSpore cell, twin of :mod:`miamind.models.fastnet` (airbench94-style CIFAR net).

Same layout, forward pass, defaults and parameter names as the PyTorch model::

    stem     conv 2x2 (no padding, bias) -> GELU                       stem.conv.{weight,bias}
    groups.i conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU -> attn
             groups.{i}.conv1.weight, .bn1.*, .conv2.weight, .bn2.*, .attn.*
    global max-pool -> Dense (no bias) -> logits * logit_scale         head.weight

As in PyTorch: GELU is the exact (erf) form (``nn.GELU(approximate=False)``; MindSpore's default is
the tanh approximation), BN has eps 1e-12 and PyTorch-convention momentum 0.4 (MindSpore momentum
0.6), its gamma is frozen at 1 (``requires_grad=False``) unless ``bn_train_gamma``, the 3x3 convs
start with airbench's partial identity (Dirac) init. The whitening init of the stem
(:func:`miamind.models.init_whitening`) is a PyTorch function: initialise the PyTorch model and
convert its weights.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._require import require_mindspore

ms = require_mindspore()
from mindspore import nn  # noqa: E402

from ..._registry import AttentionSpec  # noqa: E402
from ._layers import batch_norm, conv2d  # noqa: E402
from ._registry import build_attention, register_model  # noqa: E402

__all__ = ["FastNet", "ConvGroup", "fastnet", "ATTENTION_SLOT"]

ATTENTION_SLOT = "after each conv group (after its second GELU)"


def _dirac_conv(in_chs: int, out_chs: int) -> nn.Conv2d:
    """3x3 'same' conv without bias; first ``in_chs`` filters start as the identity (airbench's init)."""
    conv = conv2d(in_chs, out_chs, 3, padding=1, bias=False)
    weight = conv.weight.asnumpy().copy()
    n = min(in_chs, out_chs)
    # torch.nn.init.dirac_ on weight[:n]: filter i passes input channel i through its centre tap.
    weight[:n] = 0.0
    weight[np.arange(n), np.arange(n), 1, 1] = 1.0
    conv.weight.set_data(ms.Tensor(weight))
    return conv


class ConvGroup(nn.Cell):
    """conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU -> attention.

    The keyword arguments are the BatchNorms' settings, as :class:`FastNet`'s ``bn_*``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        attn: nn.Cell,
        *,
        bn_momentum: float,
        bn_eps: float,
        bn_train_gamma: bool,
    ) -> None:
        super().__init__()
        self.conv1 = _dirac_conv(in_chs, out_chs)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.bn1 = batch_norm(out_chs, momentum=bn_momentum, eps=bn_eps, train_gamma=bn_train_gamma)
        self.conv2 = _dirac_conv(out_chs, out_chs)
        self.bn2 = batch_norm(out_chs, momentum=bn_momentum, eps=bn_eps, train_gamma=bn_train_gamma)
        # PyTorch's nn.GELU() is the exact (erf) form; MindSpore's default is the tanh approximation.
        self.act = nn.GELU(approximate=False)  # used after both BNs
        self.attn = attn

    def construct(self, x):
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        x = self.act(self.bn2(self.conv2(x)))
        return self.attn(x)


class FastNet(nn.Cell):
    """airbench94-style CIFAR network (Keller Jordan, 2024); arguments as :class:`miamind.models.FastNet`."""

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        attention: AttentionSpec = None,
        attention_kwargs: Mapping[str, Any] | None = None,
        widths: Sequence[int] = (64, 256, 256),
        whiten_kernel_size: int = 2,
        whiten_width: int | None = None,
        logit_scale: float = 1.0 / 9,
        bn_momentum: float = 0.4,
        bn_eps: float = 1e-12,
        bn_train_gamma: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) < 1 or any(int(w) != w or w < 1 for w in widths):
            raise ValueError(f"fastnet: widths must be positive integers, got {tuple(widths)!r}")
        whiten_width = 2 * in_chans * whiten_kernel_size**2 if whiten_width is None else whiten_width
        self.in_chans = in_chans
        self.num_features = widths[-1]
        self.logit_scale = float(logit_scale)
        # The stem loses k - 1 pixels, then each group's 2x pooling must leave >= 1.
        self.min_input_size = (whiten_kernel_size - 1) + 2 ** len(widths)
        conv = conv2d(in_chans, whiten_width, whiten_kernel_size, padding=0, bias=True)
        self.stem = nn.SequentialCell(OrderedDict([("conv", conv), ("act", nn.GELU(approximate=False))]))
        groups: list[tuple[str, nn.Cell]] = []
        in_chs = whiten_width
        for width in widths:
            attn = build_attention(  # before its group's convs: the order a seed reproduces
                attention,
                width,
                model="fastnet",
                slot=ATTENTION_SLOT,
                dims=2,
                attention_kwargs=attention_kwargs,
            )
            group = ConvGroup(
                in_chs, width, attn, bn_momentum=bn_momentum, bn_eps=bn_eps, bn_train_gamma=bn_train_gamma
            )
            groups.append((str(len(groups)), group))
            in_chs = width
        self.groups = nn.SequentialCell(OrderedDict(groups))
        self.head = nn.Dense(self.num_features, num_classes, has_bias=False)

    def extend_repr(self) -> str:
        return f"logit_scale={self.logit_scale:.6g}"

    def forward_features(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_chans or min(x.shape[2], x.shape[3]) < self.min_input_size:
            raise ValueError(
                f"fastnet expects input (N, {self.in_chans}, H, W) with H, W >= {self.min_input_size}, "
                f"got {x.shape}"
            )
        return self.groups(self.stem(x))

    def construct(self, x):
        x = self.forward_features(x).amax((2, 3))
        return self.head(x) * self.logit_scale


# The class is its own builder: its constructor is the keyword-only signature create_model checks.
fastnet = register_model("fastnet")(FastNet)
