"""``fastnet``: a small, fast CIFAR network in the style of airbench94 (Keller Jordan, 2024).

Reference: github.com/KellerJordan/cifar10-airbench, ``airbench94.py`` (94% on CIFAR-10 in a few
seconds on one A100). Layout, for a 3 x 32 x 32 input and the default widths::

    stem     conv 2x2, 3 -> 24 (= 2 * in_chans * 2 * 2), no padding, bias -> GELU       24 x 31 x 31
    groups.0 conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU -> attn        64 x 15 x 15
    groups.1 (same)                                                                   256 x  7 x  7
    groups.2 (same)                                                                   256 x  3 x  3
    global max-pool -> linear 256 -> num_classes, no bias -> logits * logit_scale (1/9)

As in airbench94: 3x3 convs have no bias, "same" padding and a partial identity (Dirac) init of their
first ``in_channels`` filters; BatchNorm has eps 1e-12, momentum 0.4 (airbench's 0.6 in the opposite
convention) and a frozen gamma of 1 (``requires_grad=False``; only beta is learned); the logits are
scaled by 1/9. airbench ends with ``MaxPool2d(3)`` on the 3x3 map; a global max-pool is the same there
and also accepts other input sizes (at least 9 x 9).

The stem conv is airbench's "whitening" layer: :func:`init_whitening` sets its filters from the
eigenvectors of the 2x2 patch covariance of training images (+ and - each, hence 2 * C * k * k
filters) and freezes them. Without it the stem is an ordinary trainable conv with PyTorch's default
init. airbench also trains the stem bias for 3 epochs only, uses label smoothing, Lookahead/EMA and
test-time augmentation: those belong to the training recipe, not to this module.

Attention placement: after each conv group (after its second GELU), before the next group / the
global pool; 3 layers, ``groups.{0,1,2}.attn``, on 64, 256, 256 channels at 15x15, 7x7, 3x3.

Parameter names (stable, for the 1:1 MindSpore mapping): ``stem.conv.{weight,bias}``,
``groups.{i}.conv1.weight``, ``groups.{i}.bn1.*``, ``groups.{i}.conv2.weight``, ``groups.{i}.bn2.*``,
``groups.{i}.attn.*``, ``head.weight``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from .._registry import AttentionSpec
from ._attention import build_attention
from .registry import register_model

__all__ = ["FastNet", "ConvGroup", "fastnet", "init_whitening", "ATTENTION_SLOT"]

ATTENTION_SLOT = "after each conv group (after its second GELU)"


def _dirac_conv(in_chs: int, out_chs: int) -> nn.Conv2d:
    """3x3 'same' conv without bias; first ``in_chs`` filters start as the identity (airbench's init)."""
    conv = nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False)
    with torch.no_grad():
        # An implicit residual: the group starts close to passing its input through.
        nn.init.dirac_(conv.weight[: min(in_chs, out_chs)])
    return conv


def _batch_norm(channels: int, momentum: float, eps: float, train_gamma: bool) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum)
    bn.weight.requires_grad_(train_gamma)  # airbench freezes gamma at 1
    return bn


class ConvGroup(nn.Module):
    """conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU -> attention.

    The BatchNorms' settings (``bn_momentum``, ``bn_eps``, ``bn_train_gamma``) are :class:`FastNet`'s.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        attn: nn.Module,
        *,
        bn_momentum: float,
        bn_eps: float,
        bn_train_gamma: bool,
    ) -> None:
        super().__init__()
        self.conv1 = _dirac_conv(in_chs, out_chs)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = _batch_norm(out_chs, bn_momentum, bn_eps, bn_train_gamma)
        self.conv2 = _dirac_conv(out_chs, out_chs)
        self.bn2 = _batch_norm(out_chs, bn_momentum, bn_eps, bn_train_gamma)
        self.act = nn.GELU()  # used after both BNs
        self.attn = attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        x = self.act(self.bn2(self.conv2(x)))
        return self.attn(x)


class FastNet(nn.Module):
    """airbench94-style CIFAR network (Keller Jordan, 2024; see the module docstring).

    Args:
        num_classes: logits per sample.
        in_chans: input channels.
        attention: attention spec (name, class, callable or ``None`` for none).
        attention_kwargs: keyword arguments for every attention layer.
        widths: output channels of the conv groups (airbench94: 64, 256, 256).
        whiten_kernel_size: kernel of the stem conv (airbench: 2).
        whiten_width: stem channels; default ``2 * in_chans * whiten_kernel_size ** 2`` (24), the
            width ``init_whitening`` needs.
        logit_scale: multiplies the logits (airbench: 1/9).
        bn_momentum: PyTorch-convention BN momentum (airbench: 0.4).
        bn_eps: BN epsilon (airbench: 1e-12).
        bn_train_gamma: learn the BN scale (airbench: False, gamma frozen at 1).
    """

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
        stem_width = 2 * in_chans * whiten_kernel_size**2 if whiten_width is None else whiten_width
        self.in_chans = in_chans
        self.num_features = widths[-1]  # channels into the classifier
        self.logit_scale = float(logit_scale)
        # Smallest H, W: the stem loses k - 1, then each group's 2x pooling must leave >= 1 pixel.
        self.min_input_size = (whiten_kernel_size - 1) + 2 ** len(widths)
        # Stem, then each group (its attention first), then the head: the order a seed reproduces.
        conv = nn.Conv2d(in_chans, stem_width, whiten_kernel_size, padding=0, bias=True)
        self.stem = nn.Sequential(OrderedDict([("conv", conv), ("act", nn.GELU())]))
        groups = []
        in_chs = stem_width
        for i, width in enumerate(widths):
            attn = build_attention(
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
            groups.append((str(i), group))
            in_chs = width
        self.groups = nn.Sequential(OrderedDict(groups))
        self.head = nn.Linear(self.num_features, num_classes, bias=False)

    def extra_repr(self) -> str:
        return f"logit_scale={self.logit_scale:.6g}"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or min(x.shape[-2:]) < self.min_input_size:
            raise ValueError(
                f"fastnet expects input (N, {self.in_chans}, H, W) with H, W >= "
                f"{self.min_input_size}, got {tuple(x.shape)}"
            )
        return self.groups(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x).amax((2, 3))
        return self.head(x) * self.logit_scale


# The class is its own builder: its constructor is the keyword-only signature create_model checks.
fastnet = register_model("fastnet")(FastNet)


@torch.no_grad()
def init_whitening(
    model: FastNet, train_images: torch.Tensor, *, eps: float = 5e-4, freeze: bool = True
) -> None:
    """Set the stem conv to airbench's patch-whitening filters, computed from ``train_images``.

    For k x k patches P (flattened, C*k*k values) of the images, with the uncentred covariance
    ``Sigma = E[P P^T] = V diag(lambda) V^T``, the filters are ``v_i / sqrt(lambda_i + eps)`` and their
    negatives (2 * C * k * k filters, largest eigenvalue first), as ``init_whitening_conv`` in
    airbench94. The stem bias is left as it is.

    Args:
        model: a :class:`FastNet` whose stem width is ``2 * in_chans * k * k``.
        train_images: float tensor (N, C, H, W), preprocessed exactly as the model's inputs
            (airbench: 5000 normalised training images). Use training images only: this is a
            statistic of the data and must not see validation or test images.
        eps: added to the eigenvalues (airbench: 5e-4).
        freeze: set ``requires_grad=False`` on the stem weight (airbench freezes it).
    """
    conv = model.stem.conv
    assert isinstance(conv, nn.Conv2d)  # FastNet's stem; narrows the type for the checker
    c, (kh, kw) = conv.in_channels, conv.kernel_size
    if conv.out_channels != 2 * c * kh * kw:
        raise ValueError(
            f"init_whitening needs a stem of 2 * in_chans * k * k = {2 * c * kh * kw} channels, "
            f"the model has {conv.out_channels} (whiten_width)"
        )
    if not torch.is_tensor(train_images) or not train_images.is_floating_point():
        raise ValueError(
            "init_whitening: train_images must be a float tensor preprocessed like the model's inputs"
        )
    if train_images.dim() != 4 or train_images.shape[1] != c or min(train_images.shape[-2:]) < max(kh, kw):
        raise ValueError(
            f"init_whitening: train_images must be (N, {c}, H, W), got {tuple(train_images.shape)}"
        )
    x = train_images.to(torch.float64)
    patches = x.unfold(2, kh, 1).unfold(3, kw, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kh * kw)
    cov = patches.T @ patches / patches.shape[0]
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    order = torch.arange(eigenvalues.numel() - 1, -1, -1)  # largest first, as airbench's flip(0)
    filters = (eigenvectors[:, order].T / torch.sqrt(eigenvalues[order] + eps)[:, None]).reshape(
        -1, c, kh, kw
    )
    conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight))
    if freeze:
        conv.weight.requires_grad_(False)
