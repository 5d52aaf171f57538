"""MIA-Mind attention (Qin, Liang, Fang, arXiv 2504.19080): the paper form and four variants.

Paper form, for X of shape (N, C, *spatial) with 1, 2 or 3 spatial dims::

    z   = mean of X over the spatial dims                        (N, C, 1, ...)
    w_c = sigmoid(W2 relu(W1 z + b1) + b2)                       W1: C -> C//r, W2: C//r -> C
    M   = mean of X over the channels                            (N, 1, *spatial)
    w_s = sigmoid(conv_k(M))                                     1 -> 1 channel, k x k, bias, zero pad k//2
    out = X * (w_c * w_s)                                        multiplicative fusion, broadcast

Registered as ``mia`` (:class:`MIAMind`, the paper form), ``mia_add``, ``mia_seq``, ``mia_code`` and
``mia_adaptive``; all share :class:`MIAMind`'s constructor. ``docs/attention.md`` tables their fusions
and describes the gate modules (``act``, ``gate_c``, ``gate_s``: a forward hook on ``gate_c`` /
``gate_s`` receives the gates the layer multiplies by) and the memory of the fused path.

The channel MLP's parameters are two 1x1 convolutions (``fc1``, ``fc2``), as timm's SE: their state
dict is the usual one. It runs as two matrix products (``F.linear`` on the flattened pooled (N, C)
vector with the convolutions' weights): the same math, and on the CPU a fraction of the time of
oneDNN's 1x1 convolutions of (N, C, 1, ...) tensors, forward and backward
(``results/bench/gate_mlp.md``).

``fused=True`` (default; ``mia``, ``mia_add``, ``mia_adaptive``) applies the map through
:func:`miamind.attention.fused.fused_gate`: same values and gradients, only X and the two small gates
saved while training, the plain expressions under tracers, exporters and TorchScript (and with
``fused=False``). ``mia_seq`` and ``mia_code`` gate sequentially and have no fused path.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import create_act_layer

from .._arch.mia import (
    ADAPTIVE_THETA_INIT,
    GATE_INITS,
    MIA_CLASS_NAMES,
    MIA_VARIANTS,
    MIAVariant,
    mia_hidden_channels,
    resolve_mia_args,
)
from ._shapes import check_input, conv_nd, spatial_axes
from .fused import _exporting, broadcast_mean, fused_gate, matmul_mean, use_fused
from .kernel import MIALayerFunction, kernel_applies, same_conv, same_conv_weight_grad
from .registry import register_attention
from .spatial_conv import single_channel_conv

__all__ = [*MIA_CLASS_NAMES, "mia_hidden_channels", "GATE_INITS"]


class _MIABase(nn.Module):
    """Shared pieces: the channel MLP (``fc1``, ``act``, ``fc2``), the spatial conv (``spatial``), the gate
    modules (``gate_c``, ``gate_s``). Arguments as :class:`MIAMind`, checked by
    :func:`miamind._arch.mia.resolve_mia_args` (one message for both backends).

    Subclasses implement :meth:`forward_gated` (``x`` already validated) and name their ``variant``
    (:data:`miamind._arch.mia.MIA_VARIANTS`, which the MindSpore twins read too). The fused routes are
    Python-only (:mod:`.fused`), behind ``torch.jit.is_scripting()`` checks and ``@torch.jit.unused``
    methods, so TorchScript compiles the plain expressions (and :mod:`.fused` falls back to plain ops
    under every other tracer).
    """

    #: spatial conv input channels and bias, ``gate_init="identity"`` logit (shared with MindSpore);
    #: the paper form's unless a subclass names its own.
    variant: MIAVariant = MIA_VARIANTS["mia"]
    #: whether the variant has a fused (memory-saving) gating path, see ``fused.py``.
    has_fused_path: bool = False

    def __init__(
        self,
        channels: int,
        *,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        kernel_size: int = 7,
        dims: int = 2,
        fused: bool = True,
        act_layer: str | type[nn.Module] = "relu",
        gate_layer: str | type[nn.Module] = "sigmoid",
        gate_init: str = "paper",
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self._name = name  # for error messages; TorchScript cannot call type() in forward
        args = resolve_mia_args(
            name,
            self.variant,
            channels,
            rd_ratio=rd_ratio,
            rd_channels=rd_channels,
            kernel_size=kernel_size,
            dims=dims,
            gate_init=gate_init,
        )
        self.dims, self.channels = args.dims, args.channels
        self.kernel_size, self.hidden_channels = args.kernel_size, args.hidden_channels
        conv = conv_nd(self.dims)
        factory = dict(device=device, dtype=dtype)
        self.fc1 = conv(self.channels, self.hidden_channels, 1, bias=True, **factory)
        self.act = create_act_layer(act_layer)
        self.fc2 = conv(self.hidden_channels, self.channels, 1, bias=True, **factory)
        self.spatial = conv(
            self.variant.spatial_in_chs,
            1,
            self.kernel_size,
            padding=self.kernel_size // 2,
            bias=self.variant.spatial_bias,
            **factory,
        )
        self.gate_c = create_act_layer(gate_layer)
        self.gate_s = create_act_layer(gate_layer)
        # A list, not a tuple: TorchScript's mean/amax take List[int].
        self._spatial_axes = list(spatial_axes(self.dims))
        self.fused = bool(fused) and self.has_fused_path
        self.gate_init = gate_init
        if gate_init == "identity":
            self._init_identity_gates()

    def _init_identity_gates(self) -> None:
        """Biases so the attention map starts near 1 (the layer starts near the identity)."""
        # resolve_mia_args refused gate_init="identity" for a variant without a spatial bias.
        assert self.spatial.bias is not None
        with torch.no_grad():
            self.fc2.bias.fill_(self.variant.identity_gate_logit)
            self.spatial.bias.fill_(self.variant.identity_gate_logit)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, hidden={self.hidden_channels}, "
            f"kernel_size={self.kernel_size}, dims={self.dims}, fused={self.fused}"
        )

    def _mlp(self, z: torch.Tensor) -> torch.Tensor:
        """W2 act(W1 z + b1) + b2 on the pooled ``z`` (N, C, 1, ...), as matrix products (module docstring)."""
        hidden = self.act(F.linear(z.flatten(1), self.fc1.weight.flatten(1), self.fc1.bias))
        return F.linear(hidden, self.fc2.weight.flatten(1), self.fc2.bias).reshape(z.shape)

    def channel_gate(self, x: torch.Tensor) -> torch.Tensor:
        """w_c = sigmoid(MLP(mean over space)), shape (N, C, 1, ...)."""
        return self.gate_c(self._mlp(self._mean(x, self._spatial_axes)))

    def spatial_gate(self, x: torch.Tensor) -> torch.Tensor:
        """w_s = sigmoid(conv(mean over channels)), shape (N, 1, *spatial)."""
        m = self._mean(x, [1])
        if self.fused and not torch.jit.is_scripting():
            # the fused layers also take the fast route for the 1 -> 1 channel conv (same values)
            return self.gate_s(self._fast_spatial_conv(m))
        return self.gate_s(self.spatial(m))

    def _mean(self, x: torch.Tensor, dims: list[int]) -> torch.Tensor:
        # Same value as x.mean(dims, keepdim=True); on the fused path its backward is a cheap view
        # (and both paths of a fused layer take the faster matmul mean, fused.matmul_mean).
        if self.fused and not torch.jit.is_scripting():
            return self._fast_mean(x, dims)
        return x.mean(dims, keepdim=True)

    @torch.jit.unused
    def _fast_mean(self, x: torch.Tensor, dims: list[int]) -> torch.Tensor:
        axes = tuple(dims)
        return broadcast_mean(x, axes) if use_fused(x) else matmul_mean(x, axes)

    @torch.jit.unused
    def _fast_spatial_conv(self, m: torch.Tensor) -> torch.Tensor:
        if self.has_kernel and self.use_kernel:  # the C++ kernel's convolution where it is built
            return single_channel_conv(self.spatial, m, same_conv_weight_grad, same_conv)
        return single_channel_conv(self.spatial, m)

    @torch.jit.unused
    def _fused_gate(
        self, x: torch.Tensor, scale: torch.Tensor | None, gate: torch.Tensor, shift: torch.Tensor | None
    ) -> torch.Tensor:
        return fused_gate(x, scale, gate, shift)

    @torch.jit.unused
    def _building_graph(self, x: torch.Tensor, w_c: torch.Tensor, w_s: torch.Tensor, g: torch.Tensor) -> bool:
        return use_fused(x, w_c, w_s, g)

    @torch.jit.unused
    def _kernel_forward(self, x: torch.Tensor) -> torch.Tensor | None:
        """The layer through :class:`~miamind.attention.kernel.MIALayerFunction` (eager CPU training
        of a fusion written as ``x (c s + b)``), or None where that does not apply."""
        if not (self.fused and self.use_kernel and self.has_kernel):
            return None
        if _exporting() or torch.compiler.is_compiling():
            return None
        params = [q for q in self.parameters() if q.requires_grad]
        if not use_fused(x, *params) or not kernel_applies(x):
            return None
        return MIALayerFunction.apply(x, self.kernel_gates, *params)

    #: whether :meth:`kernel_gates` exists: the layer's map is ``c s + b`` of the two means' gates
    has_kernel: bool = False
    #: train through the C++ kernel where it applies (:mod:`miamind.attention.kernel`); set to False
    #: on a layer (or ``MIAMIND_KERNEL=0`` for all) to keep the PyTorch path
    use_kernel: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.channels, self.dims, self._name)
        if not torch.jit.is_scripting():
            out = self._kernel_forward(x)
            if out is not None:
                return out
        return self.forward_gated(x)

    @torch.jit.unused
    def kernel_gates(self, z: torch.Tensor, m: torch.Tensor) -> tuple:
        """``(c, s, b)`` (None for 1 / 0) of the map ``c s + b`` from the mean over space ``z`` and the
        mean over channels ``m``: what the kernel multiplies X by."""
        raise NotImplementedError

    def _gates_from_means(self, z: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(w_c, w_s) from the mean over space ``z`` and the mean over channels ``m``."""
        w_c = self.gate_c(self._mlp(z))
        # the kernel's path: the spatial conv's weight gradient from the C++ kernel too
        return w_c, self.gate_s(single_channel_conv(self.spatial, m, same_conv_weight_grad, same_conv))

    def forward_gated(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@register_attention("mia")
class MIAMind(_MIABase):
    """MIA-Mind, paper form: ``out = X * (w_c * w_s)``.

    Args:
        channels: C, channels of the (N, C, *spatial) input.
        rd_ratio: reduction ratio 1/r of the channel MLP (default 1/16, the paper's r = 16).
        rd_channels: hidden width of the channel MLP; overrides ``rd_ratio``.
            Default ``max(1, int(channels * rd_ratio))``.
        kernel_size: odd size k of the spatial conv (default 7), zero padding k // 2.
        dims: spatial dims of the input: 1, 2 or 3.
        fused: use the memory-saving gating path while training (module docstring); same results.
        act_layer: activation of the channel MLP (timm name or class; default ReLU, the paper's).
        gate_layer: the gate non-linearity for w_c and w_s (default sigmoid, the paper's).
        gate_init: ``"paper"`` (default): PyTorch's default init, as the paper, so at init
            w_c ~= w_s ~= 0.5 and the map w_c * w_s ~= 0.25 -- each layer scales its input down by ~4.
            ``"identity"``: the biases of ``fc2`` and ``spatial`` start at 4 (sigmoid ~= 0.982), so the
            map starts near 1 and a deep stack of layers starts near the identity.
        device: device of the parameters (factory kwarg).
        dtype: dtype of the parameters (factory kwarg).

    Parameters (exactly): ``fc1.weight``, ``fc1.bias`` (W1, b1), ``fc2.weight``, ``fc2.bias`` (W2, b2),
    ``spatial.weight``, ``spatial.bias`` -- ``2*C*h + h + C + k**dims + 1`` numbers for hidden width h.
    """

    has_fused_path = True
    has_kernel = True

    @torch.jit.unused
    def kernel_gates(self, z: torch.Tensor, m: torch.Tensor) -> tuple:
        w_c, w_s = self._gates_from_means(z, m)
        return w_c, w_s, None

    def forward_gated(self, x: torch.Tensor) -> torch.Tensor:
        w_c, w_s = self.channel_gate(x), self.spatial_gate(x)
        if self.fused and not torch.jit.is_scripting():
            return self._fused_gate(x, w_c, w_s, None)
        # x first: the product then follows x's memory format (channels_last in -> channels_last out).
        return x * (w_c * w_s)


@register_attention("mia_add")
class MIAMindAdd(_MIABase):
    """Additive fusion ablation: ``out = X * (w_c + w_s)``; the attention map lies in (0, 2).

    Same parameters and constructor as :class:`MIAMind`; ``gate_init="identity"`` sets the biases to 0
    here (w_c ~= w_s ~= 0.5, so w_c + w_s ~= 1).
    """

    variant = MIA_VARIANTS["mia_add"]
    has_fused_path = True
    has_kernel = True

    @torch.jit.unused
    def kernel_gates(self, z: torch.Tensor, m: torch.Tensor) -> tuple:
        w_c, w_s = self._gates_from_means(z, m)
        return None, w_s, w_c

    def forward_gated(self, x: torch.Tensor) -> torch.Tensor:
        w_c, w_s = self.channel_gate(x), self.spatial_gate(x)
        if self.fused and not torch.jit.is_scripting():
            return self._fused_gate(x, None, w_s, w_c)
        return x * (w_c + w_s)


@register_attention("mia_seq")
class MIAMindSeq(_MIABase):
    """Sequential gating: ``X1 = X * w_c(X)``, ``out = X1 * w_s(X1)``.

    The spatial descriptor is the channel mean of the channel-refined X1 (CBAM's order), not of X.
    Same parameters and constructor as :class:`MIAMind`.
    """

    variant = MIA_VARIANTS["mia_seq"]

    def forward_gated(self, x: torch.Tensor) -> torch.Tensor:
        x1 = x * self.channel_gate(x)
        return x1 * self.spatial_gate(x1)


@register_attention("mia_code")
class MIAMindCode(_MIABase):
    """What the public MindSpore code accompanying the paper builds.

    Source: mindspore-lab/models, ``research/arxiv_papers/MIA-Mind/model/MIA_Mind.py``
    (commit e9ccc716d0502c37be901c37e5643426f4d12c6a), class ``MIA`` = ``ChannelAttention`` then
    ``SpatialAttention``; its ResNet-50 (``model/ResNet_50.py``) puts it after bn2 of each block::

        w_c = sigmoid(MLP(mean_space(X)) + MLP(max_space(X)))      one MLP shared by both descriptors
        X1  = X * w_c
        w_s = sigmoid(conv_7x7([mean_ch(X1), max_ch(X1)]))          2 -> 1 channels, NO bias
        out = X1 * w_s

    Differences from the paper form (:class:`MIAMind`):

    1. sequential, not multiplicative, fusion: the spatial gate is computed from the channel-refined
       X1 rather than from X, and the two gates are applied one after the other (CBAM's structure);
    2. the channel descriptor uses average AND max pooling over space (the paper: average only);
    3. the two pooled descriptors go through one shared MLP and the logits are summed before the sigmoid;
    4. the spatial conv has no bias (MindSpore ``nn.Conv2d`` defaults to ``has_bias=False``);
    5. the spatial conv's input has 2 channels, channel-mean and channel-max (the paper: mean only).

    Also: the original is 2-D only and uses ``C // 16`` hidden units, which is 0 for C < 16; here the
    same ``dims`` and hidden-width rule as every variant apply (hidden width at least 1).
    Parameters: ``fc1.*``, ``fc2.*`` (with biases, as MindSpore ``nn.Dense``), ``spatial.weight``.
    ``gate_init="identity"`` is refused (no spatial bias to set).
    """

    variant = MIA_VARIANTS["mia_code"]

    def channel_gate(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(self._spatial_axes, keepdim=True)
        mx = x.amax(self._spatial_axes, keepdim=True)
        return self.gate_c(self._mlp(avg) + self._mlp(mx))

    def spatial_gate(self, x: torch.Tensor) -> torch.Tensor:
        desc = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return self.gate_s(self.spatial(desc))

    def forward_gated(self, x: torch.Tensor) -> torch.Tensor:
        x1 = x * self.channel_gate(x)
        return x1 * self.spatial_gate(x1)


@register_attention("mia_adaptive")
class MIAMindAdaptive(_MIABase):
    """Learned fusion: ``A = g * (w_c * w_s) + (1 - g) * (w_c + w_s) / 2`` with ``g = sigmoid(theta)``.

    ``theta`` is one learned scalar per layer (parameter ``theta``; all others as :class:`MIAMind`).

    Why this form: both terms are attention maps in (0, 1) -- the paper's product and the *mean* of
    the gates (the additive ablation rescaled so it shares the product's range) -- so their convex
    combination stays in (0, 1) for every g, the output scale does not drift as g moves, and one
    scalar interpolates between the two fusions the paper discusses. ``g`` goes through a sigmoid so
    it stays in (0, 1) without constraints or clipping.

    Why ``theta = 4.0`` (g = sigmoid(4) ~= 0.982): training starts almost at the paper form, so the
    variant is a near-identical drop-in at init, while dg/dtheta = g (1 - g) ~= 0.018 is not yet
    saturated and the layer can still move towards additive fusion if that helps.
    """

    variant = MIA_VARIANTS["mia_adaptive"]
    theta_init: float = ADAPTIVE_THETA_INIT
    has_fused_path = True
    has_kernel = True

    def __init__(self, channels: int, **kwargs) -> None:
        """Same arguments as :class:`MIAMind`; adds the fusion parameter ``theta``."""
        super().__init__(channels, **kwargs)
        factory = dict(device=self.fc1.weight.device, dtype=self.fc1.weight.dtype)
        self.theta = nn.Parameter(torch.full((), self.theta_init, **factory))

    @torch.jit.unused
    def kernel_gates(self, z: torch.Tensor, m: torch.Tensor) -> tuple:
        w_c, w_s = self._gates_from_means(z, m)
        g = torch.sigmoid(self.theta)
        half = (1 - g) * 0.5
        return g * w_c + half, w_s, half * w_c

    def forward_gated(self, x: torch.Tensor) -> torch.Tensor:
        w_c, w_s = self.channel_gate(x), self.spatial_gate(x)
        g = torch.sigmoid(self.theta)
        if self.fused and not torch.jit.is_scripting():
            if self._building_graph(x, w_c, w_s, g):
                # Training: the same map regrouped as c * w_s + b = (g w_c + (1-g)/2) w_s + (1-g)/2 w_c,
                # equal up to rounding. Without a graph the published expression below is kept, so the
                # output stays bitwise what viz.attention_maps rebuilds from the captured gates.
                half = (1 - g) * 0.5
                return self._fused_gate(x, g * w_c + half, w_s, half * w_c)
        return x * (g * (w_c * w_s) + (1 - g) * (w_c + w_s) * 0.5)
