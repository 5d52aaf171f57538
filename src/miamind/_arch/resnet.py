"""The CIFAR ResNets' arguments, variants and block plan (timm's ResNet rules), for both backends.

See :mod:`miamind.models.resnet` (timm's ``ResNet`` with a CIFAR stem) for the network. The PyTorch
model leaves the block plan to timm; the MindSpore twin builds it from :meth:`ResNetSpec.blocks`,
which states timm's rules (widths, strides, stochastic depth), and both register their variants
with :func:`resnet_builder`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .plan import AttentionSite, ModelSpec, spec_signature

__all__ = [
    "register_resnets",
    "ATTENTION_SLOT",
    "BLOCK_EXPANSION",
    "RESNET_VARIANTS",
    "ResNetBlock",
    "ResNetSpec",
    "resnet_builder",
]

#: Where the attention layers sit (the ``slot`` of ``build_attention``).
ATTENTION_SLOT = "after the last BN of each residual block, before the residual add"

#: Planes of the 4 stages (timm's ``channels``); the CIFAR stem has the first stage's width.
STAGE_PLANES = (64, 128, 256, 512)

#: Output channels per plane of each block type (timm's ``BasicBlock.expansion`` / ``Bottleneck``'s).
BLOCK_EXPANSION = {"basic": 1, "bottleneck": 4}

M = TypeVar("M")


@dataclass(frozen=True)
class ResNetVariant:
    """A registered depth: block type (a key of :data:`BLOCK_EXPANSION`), blocks per stage, docstring."""

    name: str
    block: str
    layers: tuple[int, ...]
    doc: str


#: The registered CIFAR ResNets (He et al., 2016 depths).
RESNET_VARIANTS = {
    v.name: v
    for v in (
        ResNetVariant(
            "resnet18",
            "basic",
            (2, 2, 2, 2),
            "CIFAR ResNet-18: BasicBlocks [2, 2, 2, 2], widths 64-512, 8 attention layers.",
        ),
        ResNetVariant(
            "resnet34",
            "basic",
            (3, 4, 6, 3),
            "CIFAR ResNet-34: BasicBlocks [3, 4, 6, 3], widths 64-512, 16 attention layers.",
        ),
        ResNetVariant(
            "resnet50",
            "bottleneck",
            (3, 4, 6, 3),
            "CIFAR ResNet-50: Bottleneck blocks [3, 4, 6, 3], output widths 256-2048, 16 attention "
            "layers (after ``bn3``, on 256-2048 channels).",
        ),
    )
}


@dataclass(frozen=True)
class ResNetBlock:
    """One residual block: ``in_chs`` -> ``planes`` -> ``out_chs`` (planes * expansion), its first
    conv's ``stride``, its stochastic-depth rate and its attention."""

    in_chs: int
    planes: int
    out_chs: int
    stride: int
    drop_path: float
    attention: AttentionSite


@dataclass(frozen=True, kw_only=True)
class ResNetSpec(ModelSpec):
    """The CIFAR ResNet's keyword arguments (the common ones: :class:`ModelSpec`).

    Args:
        zero_init_last: zero the last BN's gamma in each block (timm default).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic-depth rate (timm, linearly increasing over blocks).
        model_name: used in error messages.
    """

    num_classes: int = 10
    in_chans: int = 3
    zero_init_last: bool = True
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    model_name: str = "resnet"

    @property
    def stem_width(self) -> int:
        return STAGE_PLANES[0]

    def blocks(self, layers: Sequence[int], expansion: int) -> list[list[ResNetBlock]]:
        """The blocks of each stage, as timm's ``ResNet`` makes them for ``layers`` blocks per stage."""
        total = sum(layers)
        in_chs, index = self.stem_width, 0
        stages = []
        for stage, (planes, depth) in enumerate(zip(STAGE_PLANES, layers, strict=True)):
            blocks = []
            for i in range(depth):
                out_chs = planes * expansion
                blocks.append(
                    ResNetBlock(
                        in_chs,
                        planes,
                        out_chs,
                        stride=2 if stage > 0 and i == 0 else 1,
                        # timm's stochastic-depth rule: linear in the block index, 0 for the first block.
                        drop_path=self.drop_path_rate * index / max(total - 1, 1),
                        attention=self.site(self.model_name, ATTENTION_SLOT, out_chs),
                    )
                )
                in_chs, index = out_chs, index + 1
            stages.append(blocks)
        return stages


def resnet_builder(variant: ResNetVariant, model: Callable[..., M], block: Any) -> Callable[..., M]:
    """The ``create_model`` builder of ``variant``: ``model(block, variant.layers, **kwargs)``, taking
    :class:`ResNetSpec`'s keyword arguments (but ``model_name``: the variant's name)."""

    def build(**kwargs: Any) -> M:
        return model(block, variant.layers, model_name=variant.name, **kwargs)

    build.__signature__ = spec_signature(  # type: ignore[attr-defined]
        ResNetSpec, exclude=("model_name",), returns=getattr(model, "__name__", "")
    )
    build.__name__ = build.__qualname__ = variant.name
    build.__doc__ = variant.doc
    return build


def register_resnets(
    register: Callable[[str], Callable[[Callable[..., M]], Callable[..., M]]],
    model: Callable[..., M],
    blocks: Mapping[str, Any],
) -> tuple[Callable[..., M], ...]:
    """Register every variant of :data:`RESNET_VARIANTS` with a backend's ``register_model``, building
    ``model`` with that backend's block classes (``blocks``: a class per key of
    :data:`BLOCK_EXPANSION`). Returns the builders in :data:`RESNET_VARIANTS` order."""
    return tuple(
        register(v.name)(resnet_builder(v, model, blocks[v.block])) for v in RESNET_VARIANTS.values()
    )
