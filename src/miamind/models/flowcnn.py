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

from typing import Any

import torch
import torch.nn as nn

from .._arch.flowcnn import ATTENTION_SLOT, FlowCNNSpec
from .._arch.plan import takes_spec
from . import _ops
from .registry import register_model

__all__ = ["FlowCNN", "flowcnn", "ATTENTION_SLOT"]


@takes_spec(FlowCNNSpec)
class FlowCNN(nn.Module):
    """1-D CNN over flow features, see the module docstring.

    Keyword arguments, defaults and their checks: :class:`miamind._arch.flowcnn.FlowCNNSpec`
    (``num_classes``, ``in_chans``, ``attention``, ``attention_kwargs``, ``stages``, ``kernel_size``,
    ``dropout``), shared with the MindSpore twin.
    """

    # Set by spec.build_into, as FlowCNNSpec.attributes and .build_layers name them.
    in_chans: int
    num_features: int
    stages: nn.Sequential
    drop: nn.Dropout
    head: nn.Linear

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        spec = FlowCNNSpec(**kwargs)
        spec.build_into(self, spec.build_layers(_ops))

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
