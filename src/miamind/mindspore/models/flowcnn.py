"""``flowcnn`` as a MindSpore cell, twin of :mod:`miamind.models.flowcnn` (same layout, defaults, names).

Input ``(N, in_chans, F)``: the F features of one flow as a length-F sequence::

    stages.{i}  Conv1d k pad k//2 (no bias) -> BN -> ReLU -> attn (dims=1) -> MaxPool1d(2, ceil)
    mean over the sequence -> dropout -> Dense -> logits (N, num_classes)

Parameter names as in PyTorch (``stages.{i}.conv.weight``, ``stages.{i}.bn.*``, ``stages.{i}.attn.*``,
``head.*``); MindSpore's ``nn.Conv1d`` stores its weight as ``(out, in, 1, k)`` where PyTorch has
``(out, in, k)``, a reshape :mod:`miamind.mindspore.convert` does. The pooling keeps PyTorch's
``ceil_mode=True`` (an odd length keeps its last feature, a length of 1 stays 1).
"""

from __future__ import annotations

from typing import Any

from .._require import require_mindspore

ms = require_mindspore()
from mindspore import nn  # noqa: E402

from ..._arch.flowcnn import ATTENTION_SLOT, FlowCNNSpec  # noqa: E402
from ..._arch.plan import takes_spec  # noqa: E402
from . import _layers  # noqa: E402
from ._registry import register_model  # noqa: E402

__all__ = ["FlowCNN", "flowcnn", "ATTENTION_SLOT"]


@takes_spec(FlowCNNSpec)
class FlowCNN(nn.Cell):
    """1-D CNN over flow features; arguments as :class:`miamind.models.FlowCNN` (both backends take
    :class:`miamind._arch.flowcnn.FlowCNNSpec`'s)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        spec = FlowCNNSpec(**kwargs)
        spec.build_into(self, spec.build_layers(_layers))

    def construct(self, x):
        if x.ndim != 3 or x.shape[1] != self.in_chans or x.shape[2] < 1:
            raise ValueError(
                f"flowcnn expects input (N, {self.in_chans}, F) (features as a length-F sequence), got {x.shape}"
            )
        x = self.stages(x).mean(2)
        return self.head(self.drop(x))


# The class is its own builder: its constructor is the keyword-only signature create_model checks.
flowcnn = register_model("flowcnn")(FlowCNN)
