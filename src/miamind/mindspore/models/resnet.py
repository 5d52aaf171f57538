"""CIFAR ResNet-18/34/50 as MindSpore cells, twins of :mod:`miamind.models.resnet` (timm's ResNet).

Same layout, forward pass and parameter names as the PyTorch models (timm ``ResNet`` with a CIFAR
stem), so ``convert.torch_to_mindspore(torch_model.state_dict())`` loads one-to-one::

    conv1 (3x3, stride 1, no bias) -> bn1 -> ReLU            CIFAR stem, no max-pool
    layer1..layer4                                           [2,2,2,2] / [3,4,6,3] blocks, stride 1,2,2,2
    global average pool -> dropout(drop_rate) -> fc          logits (N, num_classes)

Blocks are timm's :class:`BasicBlock` and :class:`Bottleneck`, names included: the shortcut is
``downsample.0`` (1x1 conv) + ``downsample.1`` (BN) when the shape changes, and ``se`` is timm's
attention slot (``nn.Identity`` for none), after the block's last BN and before the residual add;
e.g. ``layer1.0.se.fc1.weight``.

Initialisation as timm's ``init_weights`` (for training from scratch in MindSpore): backbone convs
kaiming-normal (fan-out, ReLU), BN gamma 1 / beta 0, the last BN's gamma of every block 0 when
``zero_init_last`` (each block starts as the identity), ``fc`` MindSpore's (= PyTorch's) default;
the attention cells keep the initialisation their constructor gives them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._require import require_mindspore

require_mindspore()
from mindspore.common.initializer import HeNormal, Zero, initializer  # noqa: E402

from mindspore import nn  # noqa: E402

from ..._registry import AttentionSpec  # noqa: E402
from ._layers import DropPath, batch_norm, conv2d  # noqa: E402
from ._registry import build_attention, register_model  # noqa: E402

__all__ = ["CifarResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "ATTENTION_SLOT"]

#: Where the attention layers sit (the ``slot`` of ``build_attention``).
ATTENTION_SLOT = "after the last BN of each residual block, before the residual add"

#: Planes of the 4 stages (timm's ``channels``); the CIFAR stem has the first stage's width.
STAGE_PLANES = (64, 128, 256, 512)


def _backbone_conv(in_chs: int, out_chs: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    # timm: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu") on every backbone conv.
    init = HeNormal(mode="fan_out", nonlinearity="relu")
    return conv2d(
        in_chs, out_chs, kernel_size, stride=stride, padding=kernel_size // 2, bias=False, weight_init=init
    )


def _downsample(in_chs: int, out_chs: int, stride: int) -> nn.SequentialCell | None:
    """timm's default shortcut projection, ``downsample.0`` (1x1 conv) + ``downsample.1`` (BN)."""
    if stride == 1 and in_chs == out_chs:
        return None
    return nn.SequentialCell([_backbone_conv(in_chs, out_chs, 1, stride), batch_norm(out_chs)])


class _ResidualBlock(nn.Cell):
    """What timm's two blocks share after their convs: attention ``se``, stochastic depth, the
    shortcut (``downsample`` when the shape changes) and the add; subclasses build the convs first,
    so the parameters keep timm's order."""

    def _init_residual(self, in_chs: int, out_chs: int, stride: int, attn: nn.Cell, drop_path: float) -> None:
        self.se = attn
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self.downsample = _downsample(in_chs, out_chs, stride)

    def _residual(self, x, shortcut):
        """``se(x)`` (after drop path) + the shortcut; the block's last activation follows."""
        x = self.se(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return x + shortcut


class BasicBlock(_ResidualBlock):
    """timm ``BasicBlock``: two 3x3 convs, attention ``se`` after ``bn2``, before the residual add."""

    expansion = 1  # output channels per plane

    def __init__(self, in_chs: int, planes: int, stride: int, attn: nn.Cell, drop_path: float = 0.0) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.conv1 = _backbone_conv(in_chs, planes, 3, stride)
        self.bn1 = batch_norm(planes)
        self.act1 = nn.ReLU()
        self.conv2 = _backbone_conv(planes, out_chs, 3)
        self.bn2 = batch_norm(out_chs)
        self._init_residual(in_chs, out_chs, stride, attn, drop_path)
        self.act2 = nn.ReLU()

    @property
    def last_bn(self) -> nn.Cell:
        return self.bn2

    def construct(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self._residual(self.bn2(self.conv2(out)), x))


class Bottleneck(_ResidualBlock):
    """timm ``Bottleneck``: 1x1 -> 3x3 (stride) -> 1x1 (4x), attention ``se`` after ``bn3``, before the add."""

    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int, attn: nn.Cell, drop_path: float = 0.0) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.conv1 = _backbone_conv(in_chs, planes, 1)
        self.bn1 = batch_norm(planes)
        self.act1 = nn.ReLU()
        self.conv2 = _backbone_conv(planes, planes, 3, stride)
        self.bn2 = batch_norm(planes)
        self.act2 = nn.ReLU()
        self.conv3 = _backbone_conv(planes, out_chs, 1)
        self.bn3 = batch_norm(out_chs)
        self._init_residual(in_chs, out_chs, stride, attn, drop_path)
        self.act3 = nn.ReLU()

    @property
    def last_bn(self) -> nn.Cell:
        return self.bn3

    def construct(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        return self.act3(self._residual(self.bn3(self.conv3(out)), x))


class CifarResNet(nn.Cell):
    """ResNet (He et al., 2016) with a CIFAR stem and attention in every block (module docstring).

    Arguments as :class:`miamind.models.CifarResNet`; ``block`` is :class:`BasicBlock` or :class:`Bottleneck`.
    """

    def __init__(
        self,
        block: type,
        layers: Sequence[int],
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        attention: AttentionSpec = None,
        attention_kwargs: Mapping[str, Any] | None = None,
        zero_init_last: bool = True,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        model_name: str = "resnet",
    ) -> None:
        super().__init__()
        # MindSpore's Dropout refuses p = 1 (PyTorch's accepts it); say so before building anything.
        for arg, rate in (("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{model_name}: {arg} must be in [0, 1), got {rate!r}")
        self.in_chans = in_chans
        self.model_name = model_name
        stem_width = STAGE_PLANES[0]
        self.conv1 = _backbone_conv(in_chans, stem_width, 3)
        self.bn1 = batch_norm(stem_width)
        self.act1 = nn.ReLU()
        # The blocks as timm's ResNet makes them: the first block of stages 2-4 halves H and W.
        expansion: int = block.expansion  # type: ignore[attr-defined]  # BasicBlock's or Bottleneck's
        total, index, in_chs = sum(layers), 0, stem_width
        for stage, (planes, depth) in enumerate(zip(STAGE_PLANES, layers, strict=True)):
            blocks = []
            for i in range(depth):
                out_chs = planes * expansion
                attn = build_attention(  # before its block's convs: the order a seed reproduces
                    attention,
                    out_chs,
                    model=model_name,
                    slot=ATTENTION_SLOT,
                    dims=2,
                    attention_kwargs=attention_kwargs,
                )
                stride = 2 if stage > 0 and i == 0 else 1
                # timm's stochastic-depth rule: linear in the block index, 0 for the first block.
                drop_path = drop_path_rate * index / max(total - 1, 1)
                blocks.append(block(in_chs, planes, stride, attn, drop_path))
                in_chs, index = out_chs, index + 1
            setattr(self, f"layer{stage + 1}", nn.SequentialCell(blocks))
        self.num_features = in_chs
        self.drop_rate = float(drop_rate)
        self.drop = nn.Dropout(p=self.drop_rate) if drop_rate > 0 else None
        self.fc = nn.Dense(self.num_features, num_classes)
        if zero_init_last:
            for stage_cell in (self.layer1, self.layer2, self.layer3, self.layer4):
                for blk in stage_cell:
                    gamma = blk.last_bn.gamma
                    gamma.set_data(initializer(Zero(), gamma.shape, gamma.dtype))

    def forward_features(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"{self.model_name} expects input (N, {self.in_chans}, H, W), got {x.shape}")
        x = self.act1(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def construct(self, x):
        x = self.forward_features(x).mean((2, 3))
        if self.drop is not None:
            x = self.drop(x)
        return self.fc(x)


# The registered depths (He et al., 2016): block type and blocks per stage, as the PyTorch models.
@register_model("resnet18")
def resnet18(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    attention: AttentionSpec = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    zero_init_last: bool = True,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> CifarResNet:
    """CIFAR ResNet-18: BasicBlocks [2, 2, 2, 2], widths 64-512, 8 attention layers."""
    return CifarResNet(
        BasicBlock,
        (2, 2, 2, 2),
        num_classes=num_classes,
        in_chans=in_chans,
        attention=attention,
        attention_kwargs=attention_kwargs,
        zero_init_last=zero_init_last,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        model_name="resnet18",
    )


@register_model("resnet34")
def resnet34(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    attention: AttentionSpec = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    zero_init_last: bool = True,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> CifarResNet:
    """CIFAR ResNet-34: BasicBlocks [3, 4, 6, 3], widths 64-512, 16 attention layers."""
    return CifarResNet(
        BasicBlock,
        (3, 4, 6, 3),
        num_classes=num_classes,
        in_chans=in_chans,
        attention=attention,
        attention_kwargs=attention_kwargs,
        zero_init_last=zero_init_last,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        model_name="resnet34",
    )


@register_model("resnet50")
def resnet50(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    attention: AttentionSpec = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    zero_init_last: bool = True,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> CifarResNet:
    """CIFAR ResNet-50: Bottleneck blocks [3, 4, 6, 3], output widths 256-2048, 16 attention layers
    (after ``bn3``, on 256-2048 channels)."""
    return CifarResNet(
        Bottleneck,
        (3, 4, 6, 3),
        num_classes=num_classes,
        in_chans=in_chans,
        attention=attention,
        attention_kwargs=attention_kwargs,
        zero_init_last=zero_init_last,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        model_name="resnet50",
    )
