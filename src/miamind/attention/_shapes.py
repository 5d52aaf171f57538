"""Shape helpers shared by every attention layer (1-D, 2-D and 3-D inputs)."""

from __future__ import annotations

import torch
import torch.nn as nn

# The constructor checks are backend-neutral (the MindSpore layers use them too); re-exported here
# for the PyTorch layers.
from .._arch.mia import check_channels, check_dims, expected_input_shape

__all__ = ["check_channels", "check_dims", "check_input", "conv_nd", "is_symbolic_tracing", "spatial_axes"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}

# torch >= 2.9 names symbolic tracing apart from torch.export (whose is_fx_tracing() is True too, with
# a warning); older releases only have is_fx_tracing, which meant symbolic tracing there.
_fx_symbolic_tracing = getattr(
    torch.fx._symbolic_trace, "is_fx_symbolic_tracing", torch.fx._symbolic_trace.is_fx_tracing
)


def conv_nd(dims: int) -> type:
    return _CONV[dims]


def spatial_axes(dims: int) -> tuple[int, ...]:
    """Axes of the spatial dims of an (N, C, *spatial) tensor, e.g. (2, 3) for 2-D."""
    return tuple(range(2, 2 + dims))


def is_symbolic_tracing() -> bool:
    """True while ``torch.fx.symbolic_trace`` runs: shapes are proxies, so Python checks on them fail.

    Scriptable: TorchScript skips the branch under ``not torch.jit.is_scripting()`` and gets False.
    """
    if not torch.jit.is_scripting():
        return _fx_symbolic_tracing()
    return False


def check_input(x: torch.Tensor, channels: int, dims: int, layer: str) -> None:
    """ValueError naming expected and received shapes when x is not (N, channels, *spatial[dims]).

    Scriptable (TorchScript keeps the check). Under ``torch.fx.symbolic_trace`` the shape is a proxy
    with no value, so the check is left out of the traced graph (timm's layers check nothing there
    either); ``torch.export`` / ``torch.compile`` see real shapes and keep it as a guard.
    """
    if is_symbolic_tracing():
        return
    if x.dim() != dims + 2 or x.shape[1] != channels:
        got = ", ".join([str(s) for s in x.shape])
        raise ValueError(
            f"{layer} expects input of shape {expected_input_shape(channels, dims)}, got ({got})"
        )
