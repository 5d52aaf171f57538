"""PyTorch-convention constructors for MindSpore layers: the MindSpore
:class:`~miamind._arch.plan.LayerOps` the plans in :mod:`miamind._arch` build the models from (the
PyTorch one is :mod:`miamind.models._ops`), so both backends get the same layers from one plan.

The conventions that differ between the frameworks, handled here once:

- padding: MindSpore convs default to ``pad_mode="same"``; PyTorch's explicit zero padding ``p`` is
  ``pad_mode="pad", padding=p`` (``p = 0`` is ``pad_mode="valid"``).
- bias: MindSpore convs default to ``has_bias=False``, PyTorch's to ``bias=True``; every call here
  says which it wants.
- BatchNorm momentum: MindSpore updates ``moving = momentum * moving + (1 - momentum) * batch``,
  PyTorch ``running = (1 - momentum) * running + momentum * batch``; the helpers take the PyTorch
  value and pass ``1 - momentum``.
- activations: ``nn.GELU`` defaults to the tanh approximation here; PyTorch's is the exact (erf) form.
- pooling: ``ceil_mode`` needs ``pad_mode="pad"`` in MindSpore.
- 1-D convs: MindSpore's ``nn.Conv1d`` stores its weight as ``(out, in, 1, k)`` (PyTorch:
  ``(out, in, k)``); :mod:`miamind.mindspore.convert` reshapes, the names are the same.

Default initialisers (``weight_init=None``) are MindSpore's, which follow PyTorch's scheme
(kaiming-uniform with ``a = sqrt(5)``, bias uniform in ``+-1/sqrt(fan_in)``).
"""

from __future__ import annotations

from collections import OrderedDict

from .._require import require_mindspore

ms = require_mindspore()
from mindspore import nn, ops  # noqa: E402

from ._registry import build_attention  # noqa: E402

__all__ = [
    "conv1d",
    "conv2d",
    "batch_norm",
    "relu",
    "gelu",
    "max_pool",
    "dropout",
    "dense",
    "sequential",
    "layer_list",
    "build_attention",
    "DropPath",
]


def conv2d(
    in_chs: int,
    out_chs: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int = 0,
    bias: bool,
    weight_init=None,
) -> nn.Conv2d:
    """``torch.nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, bias=bias)`` as a MindSpore cell."""
    pad = dict(pad_mode="pad", padding=padding) if padding else dict(pad_mode="valid")
    return nn.Conv2d(
        in_chs, out_chs, kernel_size, stride=stride, has_bias=bias, weight_init=weight_init, **pad
    )


def conv1d(in_chs: int, out_chs: int, kernel_size: int, *, padding: int = 0, bias: bool) -> nn.Conv1d:
    """``torch.nn.Conv1d(in_chs, out_chs, kernel_size, padding=padding, bias=bias)`` as a MindSpore cell."""
    pad = dict(pad_mode="pad", padding=padding) if padding else dict(pad_mode="valid")
    return nn.Conv1d(in_chs, out_chs, kernel_size, has_bias=bias, **pad)


def batch_norm(
    channels: int, *, dims: int = 2, momentum: float = 0.1, eps: float = 1e-5, train_gamma: bool = True
) -> nn.Cell:
    """``torch.nn.BatchNorm{dims}d(channels, eps=eps, momentum=momentum)``; ``momentum`` in PyTorch's convention.
    ``train_gamma=False`` freezes the scale (``gamma``) at its initial 1.

    Parameters ``gamma``, ``beta``, ``moving_mean``, ``moving_variance`` are PyTorch's ``weight``,
    ``bias``, ``running_mean``, ``running_var``.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"BatchNorm momentum (PyTorch convention) must be in [0, 1], got {momentum!r}")
    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims]
    bn = cls(channels, eps=eps, momentum=1.0 - momentum)
    bn.gamma.requires_grad = train_gamma
    return bn


def relu() -> nn.ReLU:
    return nn.ReLU()


def gelu() -> nn.GELU:
    """``torch.nn.GELU()``: the exact (erf) form."""
    return nn.GELU(approximate=False)


def max_pool(kernel_size: int, *, dims: int = 2, ceil_mode: bool = False) -> nn.Cell:
    """``torch.nn.MaxPool{dims}d(kernel_size, ceil_mode=ceil_mode)`` (stride = kernel, no padding)."""
    cls = {1: nn.MaxPool1d, 2: nn.MaxPool2d}[dims]
    if ceil_mode:  # only with pad_mode="pad" in MindSpore (padding 0: nothing is padded)
        return cls(kernel_size, kernel_size, pad_mode="pad", padding=0, ceil_mode=True)
    return cls(kernel_size=kernel_size, stride=kernel_size)


def dropout(p: float) -> nn.Dropout:
    return nn.Dropout(p=p)


def dense(in_features: int, out_features: int, *, bias: bool) -> nn.Dense:
    return nn.Dense(in_features, out_features, has_bias=bias)


def sequential(layers) -> nn.SequentialCell:
    """``torch.nn.Sequential(OrderedDict(layers))``: ``layers`` is ``[(name, cell)]``."""
    return nn.SequentialCell(OrderedDict(layers))


def layer_list(layers) -> nn.CellList:
    return nn.CellList(list(layers))


class DropPath(nn.Cell):
    """Stochastic depth (timm's ``DropPath``): in training, zero whole samples with probability ``p``
    and scale the kept ones by ``1 / (1 - p)``; the identity in eval mode. No parameters."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"DropPath: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        # Dropout on a per-sample ones mask does the Bernoulli draw and the 1/(1-p) rescaling.
        self.mask = nn.Dropout(p=self.p)

    def construct(self, x):
        if not self.training or self.p == 0.0:
            return x
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * self.mask(ops.ones(shape, x.dtype))
