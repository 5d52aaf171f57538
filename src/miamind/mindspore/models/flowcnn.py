"""``flowcnn`` as a MindSpore cell, twin of :mod:`miamind.models.flowcnn` (same layout, defaults, names).

Input ``(N, in_chans, F)``: the F features of one flow as a length-F sequence::

    stages.{i}  Conv1d k pad k//2 (no bias) -> BN -> ReLU -> attn (dims=1) -> MaxPool1d(2, ceil)
    mean over the sequence -> dropout -> Dense -> logits (N, num_classes)

Parameter names as in PyTorch (``stages.{i}.conv.weight``, ``stages.{i}.bn.*``, ``stages.{i}.attn.*``,
``head.*``; the Conv1d weights reshaped, see :mod:`._layers`). The pooling keeps PyTorch's
``ceil_mode=True`` (an odd length keeps its last feature, a length of 1 stays 1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from .._require import require_mindspore

require_mindspore()
from mindspore import nn  # noqa: E402

from ..._registry import AttentionSpec  # noqa: E402
from ._layers import batch_norm, conv1d  # noqa: E402
from ._registry import build_attention, register_model  # noqa: E402

__all__ = ["FlowCNN", "flowcnn", "ATTENTION_SLOT"]

ATTENTION_SLOT = "after each conv stage's ReLU, before its pooling"


def _stage(in_chs: int, out_chs: int, kernel_size: int, attn: nn.Cell) -> nn.SequentialCell:
    """Conv1d ("same" zero padding, no bias) -> BN -> ReLU -> ``attn`` -> MaxPool1d(2, ceil_mode)."""
    layers = [
        ("conv", conv1d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=False)),
        ("bn", batch_norm(out_chs, dims=1)),
        ("act", nn.ReLU()),
        ("attn", attn),
        # MindSpore takes ceil_mode only with pad_mode="pad" (padding 0: nothing is padded).
        ("pool", nn.MaxPool1d(2, 2, pad_mode="pad", padding=0, ceil_mode=True)),
    ]
    return nn.SequentialCell(OrderedDict(layers))


class FlowCNN(nn.Cell):
    """1-D CNN over flow features (the paper's CIC-IDS2017 experiment); arguments as
    :class:`miamind.models.FlowCNN`."""

    def __init__(
        self,
        *,
        num_classes: int = 2,
        in_chans: int = 1,
        attention: AttentionSpec = None,
        attention_kwargs: Mapping[str, Any] | None = None,
        stages: Sequence[int] = (32, 64, 128),
        kernel_size: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if len(stages) < 1 or any(isinstance(c, bool) or int(c) != c or c < 1 for c in stages):
            raise ValueError(f"flowcnn: stages must be positive integers, got {tuple(stages)!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"flowcnn: kernel_size must be a positive odd integer, got {kernel_size!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"flowcnn: dropout must be in [0, 1), got {dropout!r}")
        self.in_chans = in_chans
        self.num_features = int(stages[-1])
        cells: list[tuple[str, nn.Cell]] = []
        in_chs = in_chans
        for out_chs in map(int, stages):
            attn = build_attention(  # before the stage's conv: the order a seed reproduces
                attention,
                out_chs,
                model="flowcnn",
                slot=ATTENTION_SLOT,
                dims=1,
                attention_kwargs=attention_kwargs,
            )
            cells.append((str(len(cells)), _stage(in_chs, out_chs, kernel_size, attn)))
            in_chs = out_chs
        self.stages = nn.SequentialCell(OrderedDict(cells))
        self.drop = nn.Dropout(p=dropout)
        self.head = nn.Dense(self.num_features, num_classes, has_bias=True)

    def construct(self, x):
        if x.ndim != 3 or x.shape[1] != self.in_chans or x.shape[2] < 1:
            raise ValueError(
                f"flowcnn expects input (N, {self.in_chans}, F) (features as a length-F sequence), got {x.shape}"
            )
        x = self.stages(x).mean(2)
        return self.head(self.drop(x))


# The class is its own builder: its constructor is the keyword-only signature create_model checks.
flowcnn = register_model("flowcnn")(FlowCNN)
