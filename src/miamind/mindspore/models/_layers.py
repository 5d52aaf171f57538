"""MindSpore layers built with PyTorch's conventions, where the two frameworks' defaults differ.

- padding: MindSpore convs default to ``pad_mode="same"``; PyTorch's explicit zero padding ``p`` is
  ``pad_mode="pad", padding=p`` (``p = 0`` is ``pad_mode="valid"``).
- bias: MindSpore convs default to ``has_bias=False``, PyTorch's to ``bias=True``; every call here
  says which it wants.
- BatchNorm momentum: MindSpore updates ``moving = momentum * moving + (1 - momentum) * batch``,
  PyTorch ``running = (1 - momentum) * running + momentum * batch``; :func:`batch_norm` takes the
  PyTorch value and passes ``1 - momentum``.
- 1-D convs: MindSpore's ``nn.Conv1d`` stores its weight as ``(out, in, 1, k)`` (PyTorch:
  ``(out, in, k)``); :mod:`miamind.mindspore.convert` reshapes, the names are the same.

Default initialisers (``weight_init=None``) are MindSpore's, which follow PyTorch's scheme
(kaiming-uniform with ``a = sqrt(5)``, bias uniform in ``+-1/sqrt(fan_in)``). Conventions only one
model needs (exact GELU, ``ceil_mode`` pooling) are stated where that model builds the layer.
"""

from __future__ import annotations

from .._require import require_mindspore

require_mindspore()
from mindspore import nn, ops  # noqa: E402

__all__ = ["conv1d", "conv2d", "batch_norm", "DropPath"]


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
    ``train_gamma=False`` freezes the scale (``gamma``, PyTorch's ``weight``) at its initial 1.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"BatchNorm momentum (PyTorch convention) must be in [0, 1], got {momentum!r}")
    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims]
    bn = cls(channels, eps=eps, momentum=1.0 - momentum)
    bn.gamma.requires_grad = train_gamma
    return bn


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
