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

from typing import Any

import numpy as np

from .._require import require_mindspore

ms = require_mindspore()
from mindspore import nn  # noqa: E402

from ..._arch.fastnet import ATTENTION_SLOT, ConvGroupSpec, FastNetSpec  # noqa: E402
from ..._arch.plan import attach, takes_spec  # noqa: E402
from . import _layers  # noqa: E402
from ._layers import conv2d  # noqa: E402
from ._registry import register_model  # noqa: E402

__all__ = ["FastNet", "ConvGroup", "fastnet", "ATTENTION_SLOT"]


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


@takes_spec(ConvGroupSpec)
class ConvGroup(nn.Cell):
    """conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU -> attention.

    Keyword arguments (the BatchNorms' settings): :class:`miamind._arch.fastnet.ConvGroupSpec`.
    """

    def __init__(self, in_chs: int, out_chs: int, attn: nn.Cell, **kwargs: Any) -> None:
        super().__init__()
        spec = ConvGroupSpec(**kwargs)
        attach(self, spec.build_layers(_layers, _dirac_conv, in_chs, out_chs, attn))

    def construct(self, x):
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        x = self.act(self.bn2(self.conv2(x)))
        return self.attn(x)


@takes_spec(FastNetSpec)
class FastNet(nn.Cell):
    """airbench94-style CIFAR network; arguments as :class:`miamind.models.FastNet` (both backends
    take :class:`miamind._arch.fastnet.FastNetSpec`'s)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        spec = FastNetSpec(**kwargs)
        spec.build_into(self, spec.build_layers(_layers, ConvGroup))

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
