"""``flowcnn``: a small 1-D CNN over a flow-feature vector, with 1-D attention after each stage.

Input ``(N, in_chans, F)``: the F features of one network flow (CIC-IDS2017: F = 77 or 83 after
cleaning), read as a length-F sequence with ``in_chans`` (normally 1) channels. Layout with the
default ``stages = (32, 64, 128)`` and F = 77::

    stages.0  Conv1d k=3 pad 1 (no bias) -> BN -> ReLU -> attn -> MaxPool1d(2, ceil)   32 x 39
    stages.1  (same)                                                                   64 x 20
    stages.2  (same)                                                                  128 x 10
    mean over the sequence -> dropout -> linear 128 -> num_classes                   logits

Pooling uses ``ceil_mode=True``: an odd length keeps its last feature (77 -> 39) and a length of 1
stays 1, so any F >= 1 works (F = 1 pools nothing away; every stage then sees length 1).

Attention placement: after each stage's ReLU, before its pooling, on the full-resolution sequence;
3 layers, ``stages.{0,1,2}.attn``, on 32, 64, 128 channels at lengths F, ceil(F/2), ceil(F/4).
The layers are built with ``dims=1`` (``create_attention(name, channels, dims=1)``): MIA-Mind's spatial
branch becomes a 1-D conv (k = 7) along the feature axis. Attention layers that exist only in 2-D
(``coordatt``, ``triplet``) raise a ValueError naming ``flowcnn``. ``simam`` needs at least 2 positions
at every stage, i.e. F >= 5 (it raises a ValueError naming the shape otherwise).

Note: the sequence axis is the order of the columns of the feature table, which carries no natural
locality; convolutions and MIA-Mind's spatial branch then learn patterns over adjacent columns. This
is the setup the paper's CIC-IDS2017 experiment uses (its public code: ``CNN_mia``, two 1x3 "valid"
convs with MIA after each ReLU, then a 4608 -> 128 -> 2 MLP; that network is fixed to one F and is
not reproduced here).
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

__all__ = ["FlowCNN", "flowcnn", "ATTENTION_SLOT"]

ATTENTION_SLOT = "after each conv stage's ReLU, before its pooling"


class FlowCNN(nn.Module):
    """1-D CNN over flow features, see the module docstring.

    Args:
        num_classes: logits per sample.
        in_chans: input channels (1 for a plain feature vector).
        attention: attention spec (name, class, callable or ``None`` for none), built with ``dims=1``.
        attention_kwargs: keyword arguments for every attention layer.
        stages: output channels of the conv stages.
        kernel_size: odd kernel size of the convs ("same" padding).
        dropout: dropout probability before the classifier.
    """

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
        self.num_features = int(stages[-1])  # channels into the classifier
        blocks = []
        in_chs = in_chans
        for i, out_chs in enumerate(map(int, stages)):
            # The attention before the stage's conv: the order in which a seed draws the parameters.
            attn = build_attention(
                attention,
                out_chs,
                model="flowcnn",
                slot=ATTENTION_SLOT,
                dims=1,
                attention_kwargs=attention_kwargs,
            )
            layers = [
                ("conv", nn.Conv1d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=False)),
                ("bn", nn.BatchNorm1d(out_chs)),
                ("act", nn.ReLU(inplace=True)),
                ("attn", attn),
                ("pool", nn.MaxPool1d(2, ceil_mode=True)),
            ]
            blocks.append((str(i), nn.Sequential(OrderedDict(layers))))
            in_chs = out_chs
        self.stages = nn.Sequential(OrderedDict(blocks))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_features, num_classes, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.in_chans or x.shape[2] < 1:
            raise ValueError(
                f"flowcnn expects input (N, {self.in_chans}, F) (features as a length-F sequence), "
                f"got {tuple(x.shape)}"
            )
        x = self.stages(x).mean(2)
        return self.head(self.drop(x))


# The class is its own builder: its constructor is the keyword-only signature create_model checks.
flowcnn = register_model("flowcnn")(FlowCNN)
