"""``flowcnn`` (1-D CNN over a flow's features, :mod:`miamind.models.flowcnn`) as a plan: each conv
stage's channels and its 1-D attention slot (built with ``dims=1``), checked kernel and dropout, and
the layers in construction order (:meth:`FlowCNNSpec.build_layers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .plan import AttentionSite, LayerOps, ModelSpec, NamedLayers

__all__ = ["ATTENTION_SLOT", "FlowCNNSpec"]

ATTENTION_SLOT = "after each conv stage's ReLU, before its pooling"


@dataclass(frozen=True, kw_only=True)
class FlowCNNSpec(ModelSpec):
    """``flowcnn``'s constructor arguments (the common ones: :class:`ModelSpec`; ``in_chans`` is 1
    for a plain feature vector; the attention layers are built with ``dims=1``).

    Args:
        stages: output channels of the conv stages.
        kernel_size: odd kernel size of the convs ("same" padding).
        dropout: dropout probability before the classifier.
    """

    num_classes: int = 2
    in_chans: int = 1
    stages: Sequence[int] = (32, 64, 128)
    kernel_size: int = 3
    dropout: float = 0.2

    def __post_init__(self) -> None:
        stages, kernel_size, dropout = self.stages, self.kernel_size, self.dropout
        if len(stages) < 1 or any(isinstance(c, bool) or int(c) != c or c < 1 for c in stages):
            raise ValueError(f"flowcnn: stages must be positive integers, got {tuple(stages)!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"flowcnn: kernel_size must be a positive odd integer, got {kernel_size!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"flowcnn: dropout must be in [0, 1), got {dropout!r}")

    @property
    def num_features(self) -> int:
        """Channels into the classifier (the last stage's)."""
        return int(self.stages[-1])

    def attributes(self) -> dict[str, Any]:
        return {**super().attributes(), "num_features": self.num_features}

    def stage_plan(self) -> list[tuple[int, int, AttentionSite]]:
        """``(in_chs, out_chs, attention)`` of each conv stage, input to output."""
        plan = []
        in_chs = self.in_chans
        for out_chs in map(int, self.stages):
            plan.append((in_chs, out_chs, self.site("flowcnn", ATTENTION_SLOT, out_chs, dims=1)))
            in_chs = out_chs
        return plan

    def build_layers(self, ops: LayerOps) -> NamedLayers:
        """``stages`` (each: conv -> BN -> ReLU -> ``attn`` -> max-pool 2 with ceil), ``drop``, ``head``."""
        k = self.kernel_size
        stages = []
        for i, (in_chs, out_chs, site) in enumerate(self.stage_plan()):
            attn = site.build(ops.build_attention)  # before the stage's conv: the order seeds reproduce
            layers = [
                ("conv", ops.conv1d(in_chs, out_chs, k, padding=k // 2, bias=False)),
                ("bn", ops.batch_norm(out_chs, dims=1)),
                ("act", ops.relu()),
                ("attn", attn),
                ("pool", ops.max_pool(2, dims=1, ceil_mode=True)),
            ]
            stages.append((str(i), ops.sequential(layers)))
        return [
            ("stages", ops.sequential(stages)),
            ("drop", ops.dropout(self.dropout)),
            ("head", ops.dense(self.num_features, self.num_classes, bias=True)),
        ]
