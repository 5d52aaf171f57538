"""MIA-Mind's variants and constructor arguments, shared by the PyTorch and MindSpore layers.

The two backends' classes (:mod:`miamind.attention.mia`, :mod:`miamind.mindspore.attention`) take
``channels`` and the keyword arguments of :class:`MIASpec` (each writes them out in its own
signature, plus its own ``device`` / ``dtype``) and hand the values to
:func:`resolve_mia_args` (:meth:`MIASpec.resolve`), which checks them and derives the sizes, so both
refuse the same input with the same message and build layers of the same shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADAPTIVE_THETA_INIT",
    "GATE_INITS",
    "MIA_CLASS_NAMES",
    "MIA_VARIANTS",
    "MIAArgs",
    "MIASpec",
    "MIAVariant",
    "check_channels",
    "check_dims",
    "expected_input_shape",
    "mia_hidden_channels",
    "resolve_mia_args",
]

#: ``gate_init`` values: ``"paper"`` (PyTorch's default init, as the paper) and ``"identity"``.
GATE_INITS = ("paper", "identity")


@dataclass(frozen=True)
class MIAVariant:
    """What tells one MIA-Mind variant's layers apart from the paper form's.

    Attributes:
        name: the registered name (``create_attention(name, channels)``).
        class_name: the class in both backends.
        spatial_in_chs: channels fed to the spatial conv (1: channel mean; 2: channel mean and max).
        spatial_bias: whether the spatial conv has a bias (the paper's conv does).
        identity_gate_logit: bias of ``fc2`` and ``spatial`` for ``gate_init="identity"``.
    """

    name: str
    class_name: str
    spatial_in_chs: int = 1
    spatial_bias: bool = True
    # sigmoid(4) ~= 0.982 per gate, so a product of the two gates starts at ~0.96 instead of ~0.25,
    # while the sigmoid's slope (~0.018) is not yet saturated (the trade-off of MIAMindAdaptive's theta).
    identity_gate_logit: float = 4.0


#: Registered name -> variant, in the order the docs list them.
MIA_VARIANTS = {
    v.name: v
    for v in (
        MIAVariant("mia", "MIAMind"),
        # w_c + w_s ~= 1 at biases 0 (each gate ~= 0.5).
        MIAVariant("mia_add", "MIAMindAdd", identity_gate_logit=0.0),
        MIAVariant("mia_seq", "MIAMindSeq"),
        # The public MindSpore code's block: [mean, max] over channels into a conv without bias.
        MIAVariant("mia_code", "MIAMindCode", spatial_in_chs=2, spatial_bias=False),
        MIAVariant("mia_adaptive", "MIAMindAdaptive"),
    )
}

#: The variants' class names, the same in both backends (their packages export these).
MIA_CLASS_NAMES = tuple(v.class_name for v in MIA_VARIANTS.values())

#: ``MIAMindAdaptive``'s initial ``theta``: g = sigmoid(4) ~= 0.982, training starts near the paper form.
ADAPTIVE_THETA_INIT = 4.0


def check_dims(dims: int, layer: str, supported: tuple[int, ...] = (1, 2, 3)) -> int:
    """Validate the ``dims`` constructor argument; a layer that cannot work in ``dims`` says so here."""
    if dims not in supported:
        raise ValueError(
            f"{layer} supports dims in {supported} (inputs (N, C, *spatial) with that many spatial dims), "
            f"got dims={dims}"
        )
    return dims


def check_channels(channels: int, layer: str) -> int:
    """Validate a channel-count constructor argument (also used for hidden widths)."""
    if int(channels) != channels or channels < 1:
        raise ValueError(f"{layer}: channels must be a positive integer, got {channels!r}")
    return int(channels)


def expected_input_shape(channels: int, dims: int) -> str:
    """The input shape a layer on ``channels`` channels and ``dims`` spatial dims takes, for messages."""
    spatial = ", ".join(["*"] * dims)
    return f"(N, {channels}, {spatial}) ({dims + 2}-D)"


def mia_hidden_channels(channels: int, rd_ratio: float = 1.0 / 16, rd_channels: int | None = None) -> int:
    """Width of the channel MLP's hidden layer.

    ``rd_channels`` when given, else ``max(1, int(channels * rd_ratio))`` -- the paper's ``C // r`` for
    ``rd_ratio = 1/r`` (exact for power-of-two r), clamped to 1 so tiny ``C`` still gets a gate.
    Unlike timm's SE we do not round to a multiple of 8 (``make_divisible``): the paper uses ``C // r``.
    """
    if rd_channels is not None:
        if int(rd_channels) != rd_channels or rd_channels < 1:
            raise ValueError(f"rd_channels must be a positive integer, got {rd_channels!r}")
        return int(rd_channels)
    if not rd_ratio > 0:
        raise ValueError(f"rd_ratio must be > 0, got {rd_ratio!r}")
    return max(1, int(channels * rd_ratio))


@dataclass(frozen=True)
class MIAArgs:
    """A MIA-Mind layer's checked sizes: what both backends build their convs from."""

    channels: int
    hidden_channels: int
    kernel_size: int
    dims: int


def resolve_mia_args(
    layer: str,
    variant: MIAVariant,
    channels: int,
    *,
    rd_ratio: float,
    rd_channels: int | None,
    kernel_size: int,
    dims: int,
    gate_init: str,
) -> MIAArgs:
    """Check a MIA-Mind layer's constructor arguments (errors name ``layer``) and derive its sizes."""
    dims = check_dims(dims, layer)
    if int(kernel_size) != kernel_size or kernel_size < 1 or kernel_size % 2 == 0:
        # An even kernel with padding k//2 would change the spatial size of the gate.
        raise ValueError(f"{layer}: kernel_size must be a positive odd integer, got {kernel_size!r}")
    if gate_init not in GATE_INITS:
        raise ValueError(f"{layer}: gate_init must be one of {GATE_INITS}, got {gate_init!r}")
    channels = check_channels(channels, layer)
    hidden_channels = mia_hidden_channels(channels, rd_ratio, rd_channels)
    if gate_init == "identity" and not variant.spatial_bias:
        raise ValueError(f"{layer}: gate_init='identity' needs a spatial conv bias; this variant has none")
    return MIAArgs(
        channels=channels, hidden_channels=hidden_channels, kernel_size=int(kernel_size), dims=dims
    )


@dataclass(frozen=True, kw_only=True)
class MIASpec:
    """The keyword arguments of every MIA-Mind layer after ``channels`` (timm's convention for
    attention layers), in both backends; each backend adds its own ``device`` / ``dtype``.

    Args:
        rd_ratio: hidden width of the channel MLP as a fraction of ``channels`` (the paper's 1/r).
        rd_channels: hidden width, overriding ``rd_ratio``.
        kernel_size: odd kernel of the spatial conv ("same" zero padding).
        dims: spatial dims of the input (1, 2 or 3).
        fused: PyTorch's memory-saving gating path (accepted and ignored by MindSpore).
        act_layer: activation of the channel MLP (PyTorch: any timm activation; MindSpore: ``"relu"``).
        gate_layer: the gates' activation (PyTorch: any timm activation; MindSpore: ``"sigmoid"``).
        gate_init: ``"paper"`` or ``"identity"`` (:data:`GATE_INITS`).
    """

    rd_ratio: float = 1.0 / 16
    rd_channels: int | None = None
    kernel_size: int = 7
    dims: int = 2
    fused: bool = True
    act_layer: Any = "relu"
    gate_layer: Any = "sigmoid"
    gate_init: str = "paper"

    def resolve(self, layer: str, variant: MIAVariant, channels: int) -> MIAArgs:
        """:func:`resolve_mia_args` on these arguments (errors name ``layer``)."""
        return resolve_mia_args(
            layer,
            variant,
            channels,
            rd_ratio=self.rd_ratio,
            rd_channels=self.rd_channels,
            kernel_size=self.kernel_size,
            dims=self.dims,
            gate_init=self.gate_init,
        )
