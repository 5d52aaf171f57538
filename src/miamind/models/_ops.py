"""The PyTorch layers the plans in :mod:`miamind._arch` build the models from (their
:class:`~miamind._arch.plan.LayerOps`; the MindSpore twin is :mod:`miamind.mindspore.models._layers`).

Thin constructors with PyTorch's own conventions: ReLU is in place, pooling strides by its kernel.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch.nn as nn

from .._arch.plan import NamedLayers
from ._attention import build_attention

__all__ = [
    "batch_norm",
    "build_attention",
    "conv1d",
    "conv2d",
    "dense",
    "dropout",
    "gelu",
    "layer_list",
    "max_pool",
    "relu",
    "sequential",
]


def conv1d(in_chs: int, out_chs: int, kernel_size: int, *, padding: int = 0, bias: bool) -> nn.Conv1d:
    return nn.Conv1d(in_chs, out_chs, kernel_size, padding=padding, bias=bias)


def conv2d(
    in_chs: int, out_chs: int, kernel_size: int, *, stride: int = 1, padding: int = 0, bias: bool
) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding, bias=bias)


def batch_norm(
    channels: int, *, dims: int = 2, momentum: float = 0.1, eps: float = 1e-5, train_gamma: bool = True
) -> nn.Module:
    """``train_gamma=False`` freezes the scale (``weight``) at its initial 1."""
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims](channels, eps=eps, momentum=momentum)
    bn.weight.requires_grad_(train_gamma)
    return bn


def relu() -> nn.ReLU:
    return nn.ReLU(inplace=True)


def gelu() -> nn.GELU:
    return nn.GELU()


def max_pool(kernel_size: int, *, dims: int = 2, ceil_mode: bool = False) -> nn.Module:
    return {1: nn.MaxPool1d, 2: nn.MaxPool2d}[dims](kernel_size, ceil_mode=ceil_mode)


def dropout(p: float) -> nn.Dropout:
    return nn.Dropout(p)


def dense(in_features: int, out_features: int, *, bias: bool) -> nn.Linear:
    return nn.Linear(in_features, out_features, bias=bias)


def sequential(layers: NamedLayers) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


def layer_list(layers: Sequence[nn.Module]) -> nn.ModuleList:
    return nn.ModuleList(layers)
