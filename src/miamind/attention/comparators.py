"""Comparator attention layers: SE, ECA, CBAM, GC, GE, CoordAtt (timm) and Triplet, SimAM (from their papers).

Every layer is registered by name (names, sources and supported dims: ``docs/attention.md``) and
shares one constructor shape: ``cls(channels, *, dims=2, device=None, dtype=None, **layer_kwargs)``,
``device`` and ``dtype`` saying where and in which dtype the parameters are made.

How the 2-D timm layers handle 1-D and 3-D input: SE, ECA, GC, GE (global extent) and CBAM's
channel half only ever pool over *all* positions and apply 1x1 maps, so an (N, C, *spatial) input is
flattened to (N, C, P, 1), run through timm's unchanged forward and reshaped back -- exactly the
same computation (tests check it against direct formulas). CBAM's spatial half is a k x k conv, so
flattening would not be equivalent: a 1-D (N, C, L, 1) input would leave 6/7 of the 7x7 kernel
multiplying zero padding (dead weights that still count as parameters and receive weight decay),
and a 3-D input has no 2-D layout with the right neighbourhoods at all (:class:`CBAM` swaps in an
N-D conv for ``dims != 2``).

timm layers are built in timm's default device/dtype and then moved with ``.to(device, dtype)``
rather than given timm's ``device=``/``dtype=`` keywords: those exist only in recent timm releases,
and in timm 1.0.31 ``GatherExcite`` forwards them as ``*dd`` (positionally), which raises TypeError.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import ConvMlp, get_act_layer, make_divisible
from timm.layers.cbam import CbamModule
from timm.layers.coord_attn import CoordAttn
from timm.layers.eca import EcaModule
from timm.layers.gather_excite import GatherExcite
from timm.layers.global_context import GlobalContext
from timm.layers.squeeze_excite import SEModule

from ._shapes import check_channels, check_dims, check_input, conv_nd, is_symbolic_tracing, spatial_axes
from .registry import register_attention

__all__ = [
    "SqueezeExcite",
    "EfficientChannelAttention",
    "CBAM",
    "GlobalContextBlock",
    "GatherExciteBlock",
    "CoordAttention",
    "TripletAttention",
    "SimAM",
]

_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def _move(module: nn.Module, device, dtype) -> None:
    if device is not None or dtype is not None:
        module.to(device=device, dtype=dtype)


class _TimmAdapter:
    """Mixin for timm 2-D layers that only use global pooling and 1x1 maps (exact under flattening).

    Put it first in the bases, e.g. ``class SqueezeExcite(_TimmAdapter, SEModule)``, call
    :meth:`_adapt` at the end of ``__init__`` and define ``forward_2d``: timm's forward for
    (N, C, H, W), written out with the same operations on timm's sub-modules. Why written out rather
    than ``super().forward``: TorchScript compiles neither ``super()`` nor a method passed around as a
    value, and timm's own forwards branch on traced shapes (GE) or cannot take a batch of 0 (ECA).
    ``tests/attention/test_comparators.py`` checks each ``forward_2d`` against timm's forward.
    """

    layer_name: str = ""
    __constants__ = ["layer_name"]  # TorchScript reads class attributes listed here (subclasses too)

    def _adapt(self, channels: int, dims: int, device, dtype) -> None:
        self.channels = channels
        self.dims = dims
        _move(self, device, dtype)  # type: ignore[arg-type]  # a mixin of nn.Module subclasses

    def forward_2d(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # each adapter writes out its timm layer's forward here

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # No mypy ignore comments in here: TorchScript parses those as type annotations.
        check_input(x, self.channels, self.dims, self.layer_name)
        if self.dims == 2:
            return self.forward_2d(x)
        # (N, C, *spatial) -> (N, C, P, 1) and back: global pooling and 1x1 maps see the same numbers.
        return self.forward_2d(x.reshape(x.shape[0], x.shape[1], -1, 1)).reshape(x.shape)


@register_attention("se")
class SqueezeExcite(_TimmAdapter, SEModule):
    """Squeeze-and-Excitation (Hu et al., CVPR 2018) -- timm's ``SEModule`` for 1-, 2- and 3-D input.

    ``out = x * sigmoid(W2 relu(W1 mean_space(x) + b1) + b2)``.

    Args:
        channels: C of the (N, C, *spatial) input.
        dims: number of spatial dims (1, 2 or 3).
        rd_ratio: hidden width ratio (default 1/16, the paper's r = 16).
        rd_channels: hidden width; overrides ``rd_ratio``.
        rd_divisor: round the hidden width to a multiple of this. Default 1, i.e. ``round(C * rd_ratio)``
            as in the paper, NOT timm's 8: with 8, C = 64 would get 8 hidden units (r = 8) and any C <= 128
            a ratio other than the one asked for, which skews parameter-matched comparisons.
        **kwargs: passed to timm's ``SEModule`` (``act_layer``, ``gate_layer``, ``bias``, ...).

    Parameters at C = 64, defaults: 2*64*4 + 4 + 64 = 580.
    """

    layer_name = "se"

    def __init__(
        self,
        channels: int,
        *,
        dims: int = 2,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        device=None,
        dtype=None,
        **kwargs,
    ) -> None:
        check_dims(dims, self.layer_name)
        channels = check_channels(channels, self.layer_name)
        super().__init__(
            channels, rd_ratio=rd_ratio, rd_channels=rd_channels, rd_divisor=rd_divisor, **kwargs
        )
        self._adapt(channels, dims, device, dtype)

    def forward_2d(self, x: torch.Tensor) -> torch.Tensor:
        """timm's ``SEModule.forward``."""
        x_se = x.mean((2, 3), keepdim=True)
        if self.add_maxpool:
            x_se = 0.5 * x_se + 0.5 * x.amax((2, 3), keepdim=True)
        x_se = self.fc2(self.act(self.bn(self.fc1(x_se))))
        return x * self.gate(x_se)


@register_attention("eca")
class EfficientChannelAttention(_TimmAdapter, EcaModule):
    """Efficient Channel Attention (Wang et al., CVPR 2020) -- timm's ``EcaModule``, 1-, 2-, 3-D.

    ``out = x * sigmoid(conv1d_k(mean_space(x)))`` where the 1-D conv (no bias, zero padding) slides
    over the channel axis. ``k`` is the paper's adaptive size ``|log2(C)/gamma + beta/gamma|_odd``
    (at least 3) unless ``kernel_size`` is given.

    Args:
        channels: C of the (N, C, *spatial) input.
        dims: number of spatial dims (1, 2 or 3).
        kernel_size: fixed odd kernel size; ``None`` (default) uses the adaptive size.
        gamma: constant of the adaptive size (paper: 2).
        beta: constant of the adaptive size (paper: 1).
        **kwargs: passed to timm's ``EcaModule`` (``gate_layer``, ...). ECA has no reduction, so
            there is no ``rd_ratio``.

    Parameters at C = 64, defaults: k = 3.
    """

    layer_name = "eca"

    def __init__(
        self,
        channels: int,
        *,
        dims: int = 2,
        kernel_size: int | None = None,
        gamma: float = 2,
        beta: float = 1,
        device=None,
        dtype=None,
        **kwargs,
    ) -> None:
        check_dims(dims, self.layer_name)
        channels = check_channels(channels, self.layer_name)
        if kernel_size is not None and (kernel_size < 1 or kernel_size % 2 == 0):
            raise ValueError(f"eca: kernel_size must be a positive odd integer, got {kernel_size!r}")
        # timm derives k from ``channels`` whenever it is given, so pass None to force a fixed k.
        timm_channels = channels if kernel_size is None else None
        super().__init__(timm_channels, kernel_size=kernel_size or 3, gamma=gamma, beta=beta, **kwargs)
        self._adapt(channels, dims, device, dtype)

    def forward_2d(self, x: torch.Tensor) -> torch.Tensor:
        """timm's ``EcaModule.forward``, except the views name C instead of -1: timm's ``view(N, 1, -1)``
        has no answer for a batch of 0 (any size fits an empty tensor) and raises."""
        n, c = x.shape[0], x.shape[1]
        y = self.conv(x.mean((2, 3)).view(n, 1, c))  # the 1-D conv slides over the channels
        if self.conv2 is not None:
            y = self.act(y)
            y = self.conv2(y)
        y = self.gate(y).view(n, c, 1, 1)
        return x * y.expand_as(x)

    @property
    def kernel_size(self) -> int:
        return self.conv.kernel_size[0]


@register_attention("gc")
class GlobalContextBlock(_TimmAdapter, GlobalContext):
    """Global Context block (Cao et al., GCNet, ICCVW 2019) -- timm's ``GlobalContext``, 1-, 2-, 3-D.

    ``a = softmax_p(w_k . x_p + b_k)``, ``ctx = sum_p a_p x_p``, then with timm's defaults (scale
    fusion) ``out = x * sigmoid(W2 relu(LN(W1 ctx + b1)) + b2)``. The GCNet paper's default fusion is
    additive (``fuse_add=True, fuse_scale=False``) with ``rd_ratio=1/16``; pass those to get it. We keep
    timm's defaults (``rd_ratio=1/8``, multiplicative) because a multiplicative gate is what the
    other comparators and MIA-Mind are.

    Args:
        channels: C of the (N, C, *spatial) input.
        dims: number of spatial dims (1, 2 or 3); softmax pooling over all positions and 1x1 maps
            make the flattened computation exact.
        rd_ratio: hidden width of the transform MLP as a fraction of C (default 1/8: ``round(C / 8)``).
        rd_channels: hidden width of the transform MLP; overrides ``rd_ratio``.
        **kwargs: passed to timm's ``GlobalContext`` (``fuse_add``, ``fuse_scale``, ``use_attn``, ...).

    Parameters at C = 64, defaults: 65 (context conv) + 520 + 16 (LayerNorm) + 576 = 1177.
    """

    layer_name = "gc"

    def __init__(
        self,
        channels: int,
        *,
        dims: int = 2,
        rd_ratio: float = 1.0 / 8,
        rd_channels: int | None = None,
        device=None,
        dtype=None,
        **kwargs,
    ) -> None:
        check_dims(dims, self.layer_name)
        channels = check_channels(channels, self.layer_name)
        super().__init__(channels, rd_ratio=rd_ratio, rd_channels=rd_channels, **kwargs)
        self._adapt(channels, dims, device, dtype)

    def forward_2d(self, x: torch.Tensor) -> torch.Tensor:
        """timm's ``GlobalContext.forward``."""
        n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        if self.conv_attn is not None:
            attn = self.conv_attn(x).reshape(n, 1, h * w)  # (N, 1, HW)
            attn = F.softmax(attn, dim=-1).unsqueeze(3)  # (N, 1, HW, 1)
            context = x.reshape(n, c, h * w).unsqueeze(1) @ attn
            context = context.view(n, c, 1, 1)
        else:
            context = x.mean(dim=(2, 3), keepdim=True)
        if self.mlp_scale is not None:
            x = x * self.gate(self.mlp_scale(context))
        if self.mlp_add is not None:
            x = x + self.mlp_add(context)
        return x


@register_attention("ge")
class GatherExciteBlock(_TimmAdapter, GatherExcite):
    """Gather-Excite (Hu et al., NeurIPS 2018) -- timm's ``GatherExcite``.

    With timm's defaults (global extent, no gather parameters, an excite MLP) this is the paper's
    GE-theta-minus-with-MLP variant and computes ``x * sigmoid(W2 relu(W1 mean_space(x) + b1) + b2)``,
    i.e. SE with timm's ``ConvMlp``; it works in 1-, 2- and 3-D. ``extent > 0`` (strided local
    gathering + nearest upsampling) and ``extra_params=True`` (depthwise-conv gathering) are 2-D only.

    Args:
        channels: C of the (N, C, *spatial) input.
        dims: number of spatial dims; 1, 2, 3 for the global extent, only 2 otherwise.
        rd_ratio: hidden width of the excite MLP as a fraction of C (default 1/16: ``round(C / 16)``).
        rd_channels: hidden width of the excite MLP; overrides ``rd_ratio``.
        rd_divisor: round the hidden width to a multiple of this (default 1).
        extent: gather extent; 0 = global.
        extra_params: depthwise-conv gather; timm 1.0.31 cannot build it (``*dd`` bug, see module doc),
            which is reported as a TypeError naming ``extra_params``.
        use_mlp: excite with an MLP (default) rather than the identity.
        act_layer: MLP activation.
        **kwargs: passed to timm's ``GatherExcite``.

    Parameters at C = 64, defaults: 64*4 + 4 + 4*64 + 64 = 580.
    """

    layer_name = "ge"

    def __init__(
        self,
        channels: int,
        *,
        dims: int = 2,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        extent: int = 0,
        extra_params: bool = False,
        use_mlp: bool = True,
        act_layer=nn.ReLU,
        device=None,
        dtype=None,
        **kwargs,
    ) -> None:
        global_only = extent == 0 and not extra_params
        check_dims(
            dims,
            "ge" if global_only else "ge with extent > 0 or extra_params=True",
            (1, 2, 3) if global_only else (2,),
        )
        channels = check_channels(channels, self.layer_name)
        try:
            super().__init__(
                channels,
                extent=extent,
                extra_params=extra_params,
                use_mlp=False,
                rd_ratio=rd_ratio,
                rd_channels=rd_channels,
                rd_divisor=rd_divisor,
                act_layer=act_layer,
                **kwargs,
            )
        except TypeError as err:
            if not extra_params:
                raise
            raise TypeError(
                "ge: the installed timm cannot build GatherExcite(extra_params=True) (timm 1.0.31 passes "
                "device/dtype to its gather convs positionally); use extra_params=False"
            ) from err
        if use_mlp:
            # timm 1.0.31 builds this ConvMlp with ``*dd`` (TypeError), so it is built here exactly
            # as timm intends: same width rule, same activation, biases on both 1x1 convs.
            if not rd_channels:
                rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
            self.mlp = ConvMlp(channels, rd_channels, act_layer=get_act_layer(act_layer))
        self._adapt(channels, dims, device, dtype)

    def forward_2d(self, x: torch.Tensor) -> torch.Tensor:
        """timm's ``GatherExcite.forward`` (timm's itself does not script: ``keepdims=``), upsampling
        when ``extent > 0`` rather than when the pooled map is not 1 x 1 (a branch on a traced shape):
        nearest upsampling of a 1 x 1 map is the broadcast timm relies on, so the values agree."""
        if self.gather is not None:
            x_ge = self.gather(x)
        elif self.extent == 0:
            x_ge = x.mean(dim=(2, 3), keepdim=True)  # global extent
            if self.add_maxpool:
                x_ge = 0.5 * x_ge + 0.5 * x.amax((2, 3), keepdim=True)
        else:
            x_ge = F.avg_pool2d(
                x, kernel_size=self.gk, stride=self.gs, padding=self.gk // 2, count_include_pad=False
            )
            if self.add_maxpool:
                x_ge = 0.5 * x_ge + 0.5 * F.max_pool2d(
                    x, kernel_size=self.gk, stride=self.gs, padding=self.gk // 2
                )
        x_ge = self.mlp(x_ge)
        if self.extent != 0:
            x_ge = F.interpolate(x_ge, size=[x.shape[2], x.shape[3]])
        return x * self.gate(x_ge)


def _conv_bn(dims: int, in_chs: int, kernel_size: int) -> nn.Sequential:
    """k^dims conv (no bias, zero 'same' padding) to one channel + BatchNorm, named like timm's ConvNormAct."""
    conv = conv_nd(dims)(in_chs, 1, kernel_size, padding=kernel_size // 2, bias=False)
    return nn.Sequential(OrderedDict([("conv", conv), ("bn", _BATCH_NORM[dims](1))]))


@register_attention("cbam")
class CBAM(CbamModule):
    """Convolutional Block Attention Module (Woo et al., ECCV 2018) -- timm's ``CbamModule``, 1-, 2-, 3-D.

    ``x1 = x * sigmoid(MLP(avg_space(x)) + MLP(max_space(x)))`` (shared MLP, no biases in timm);
    ``out = x1 * sigmoid(BN(conv_k([mean_ch(x1), max_ch(x1)])))`` (conv without bias).

    For ``dims != 2`` the spatial conv is a k^dims ``ConvNd`` + ``BatchNormNd`` with the same structure
    instead of timm's 2-D ``ConvNormAct`` (see the module docstring for why flattening is not used
    there); timm's channel and spatial modules are kept and the parameter names stay
    ``spatial.conv.conv.weight`` / ``spatial.conv.bn.*``.

    Args:
        channels: C of the (N, C, *spatial) input.
        dims: number of spatial dims (1, 2 or 3).
        rd_ratio: hidden width of the channel MLP as a fraction of C (default 1/16: ``round(C / 16)``).
        rd_channels: hidden width of the channel MLP; overrides ``rd_ratio``.
        spatial_kernel_size: k of the spatial conv (default 7, the paper's).
        **kwargs: passed to timm's ``CbamModule`` (``mlp_bias``, ``act_layer``, ``gate_layer``, ...).

    Parameters at C = 64, defaults: 2*64*4 (MLP) + 2*49 (conv) + 2 (BN) = 612; 1-D: 528.
    """

    layer_name = "cbam"
    __constants__ = ["layer_name"]  # TorchScript reads class attributes listed here

    def __init__(
        self,
        channels: int,
        *,
        dims: int = 2,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        spatial_kernel_size: int = 7,
        device=None,
        dtype=None,
        **kwargs,
    ) -> None:
        check_dims(dims, self.layer_name)
        channels = check_channels(channels, self.layer_name)
        if spatial_kernel_size < 1 or spatial_kernel_size % 2 == 0:
            raise ValueError(
                f"cbam: spatial_kernel_size must be a positive odd integer, got {spatial_kernel_size!r}"
            )
        super().__init__(
            channels,
            rd_ratio=rd_ratio,
            rd_channels=rd_channels,
            spatial_kernel_size=spatial_kernel_size,
            **kwargs,
        )
        if dims != 2:
            self.spatial.conv = _conv_bn(dims, 2, spatial_kernel_size)  # type: ignore[assignment]
        self.channels = channels
        self.dims = dims
        _move(self, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.channels, self.dims, self.layer_name)
        if self.dims == 2:
            x = self.channel(x)
        else:  # the channel half pools over all positions: exact on (N, C, P, 1)
            x = self.channel(x.reshape(x.shape[0], x.shape[1], -1, 1)).reshape(x.shape)
        # timm's SpatialAttn only pools over dim 1, so it runs unchanged on any rank.
        return self.spatial(x)


@register_attention("coordatt")
class CoordAttention(_TimmAdapter, CoordAttn):
    """Coordinate Attention (Hou, Zhou, Feng, CVPR 2021) -- timm's ``CoordAttn``, 2-D only.

    As in the paper and its official code (github.com/houqb/CoordAttention)::

        z_h = mean over W  (N, C, H, 1);   z_w = mean over H, transposed  (N, C, W, 1)
        f   = h_swish(BN(conv1x1_{C->mip}([z_h; z_w])))      concatenated along the H+W axis
        f_h, f_w = split(f, [H, W])
        a_h = sigmoid(conv1x1_{mip->C}(f_h));  a_w = sigmoid(conv1x1_{mip->C}(f_w^T))
        out = x * a_w * a_h

    timm's defaults differ from the paper's (width ``C/16 * 2/3`` rounded to 8, no conv bias), so
    this class passes the paper's: ``mip = max(8, C // reduction)`` with reduction 32, i.e.
    ``rd_ratio = 1/32``, and biases on all 1x1 convs as in the official code.

    Args:
        channels: C of the (N, C, H, W) input.
        dims: must be 2 (the two pooling directions are H and W).
        rd_ratio: 1 / reduction (default 1/32).
        rd_channels: mip directly; overrides ``rd_ratio`` and ``min_rd_channels``.
        min_rd_channels: lower bound on mip (paper: 8).
        **kwargs: passed to timm's ``CoordAttn`` (``act_layer``, ``gate_layer``, ...).

    Parameters at C = 64, defaults (mip = 8): 520 + 16 (BN) + 2 * 576 = 1688.
    """

    layer_name = "coordatt"

    def __init__(
        self,
        channels: int,
        *,
        dims: int = 2,
        rd_ratio: float = 1.0 / 32,
        rd_channels: int | None = None,
        min_rd_channels: int = 8,
        device=None,
        dtype=None,
        **kwargs,
    ) -> None:
        check_dims(dims, self.layer_name, (2,))
        channels = check_channels(channels, self.layer_name)
        if rd_channels is None:
            # int(C * (1/r)) == C // r; the 1e-9 guards against 1/r not being exact in binary.
            rd_channels = max(min_rd_channels, int(channels * rd_ratio + 1e-9))
        rd_channels = check_channels(rd_channels, "coordatt rd_channels")
        kwargs.setdefault("bias", True)
        super().__init__(channels, rd_channels=rd_channels, **kwargs)
        self.rd_channels = rd_channels
        self._adapt(channels, dims, device, dtype)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, rd_channels={self.rd_channels}"

    def forward_2d(self, x: torch.Tensor) -> torch.Tensor:
        """timm's ``CoordAttn.forward`` (``has_skip`` included)."""
        h, w = x.shape[2], x.shape[3]
        x_h = x.mean(3, keepdim=True)  # (N, C, H, 1)
        x_w = x.mean(2, keepdim=True).transpose(-1, -2)  # (N, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = self.gate(self.conv_h(y_h))  # (N, C, H, 1)
        a_w = self.gate(self.conv_w(y_w.transpose(-1, -2)))  # (N, C, 1, W)
        out = x * a_w * a_h
        if self.has_skip:
            out = out + x
        return out


class _ZPoolGate(nn.Module):
    """One triplet branch on an already rotated tensor: ``t * sigmoid(BN(conv_k([max_1(t); mean_1(t)])))``."""

    def __init__(self, kernel_size: int, device=None, dtype=None) -> None:
        super().__init__()
        # Official code: conv without bias, BN(eps=1e-5, momentum=0.01), Z-pool order [max, mean].
        self.conv = nn.Conv2d(
            2, 1, kernel_size, padding=kernel_size // 2, bias=False, device=device, dtype=dtype
        )
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01, device=device, dtype=dtype)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        z = torch.cat([t.amax(1, keepdim=True), t.mean(1, keepdim=True)], dim=1)
        return t * torch.sigmoid(self.bn(self.conv(z)))


@register_attention("triplet")
class TripletAttention(nn.Module):
    """Triplet Attention (Misra, Nalamada, Arasanipalai, Hou, WACV 2021), 2-D only.

    Three branches, each a rotation of x followed by Z-pool (max and mean over the rotated tensor's
    first non-batch dim), a k x k conv (2 -> 1, no bias) + BN, a sigmoid gate, and the inverse rotation:

    - ``cw``: rotate (N, C, H, W) -> (N, H, C, W): pools over H, attends over the C-W plane;
    - ``hc``: rotate -> (N, W, H, C): pools over W, attends over the H-C plane;
    - ``hw``: no rotation: pools over C, attends over H-W (plain spatial attention).

    ``out = (cw + hc + hw) / 3`` (``no_spatial=True`` drops ``hw`` and averages two). Branch names
    and BN settings follow the official code (github.com/landskape-ai/triplet-attention).

    Args:
        channels: C of the (N, C, H, W) input (only checked; the layer has no per-channel weights).
        dims: must be 2 (the rotations need two spatial axes).
        kernel_size: k of the branch convs (default 7).
        no_spatial: drop the H-W branch.

    Parameters, defaults: 3 * (2*49 + 2) = 300, independent of C.
    """

    layer_name = "triplet"
    __constants__ = ["layer_name"]  # TorchScript reads class attributes listed here

    def __init__(
        self,
        channels: int,
        *,
        dims: int = 2,
        kernel_size: int = 7,
        no_spatial: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.dims = check_dims(dims, self.layer_name, (2,))
        self.channels = check_channels(channels, self.layer_name)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"triplet: kernel_size must be a positive odd integer, got {kernel_size!r}")
        dd = dict(device=device, dtype=dtype)
        self.cw = _ZPoolGate(kernel_size, **dd)
        self.hc = _ZPoolGate(kernel_size, **dd)
        self.hw = None if no_spatial else _ZPoolGate(kernel_size, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.channels, self.dims, self.layer_name)
        # permute(0, 2, 1, 3) and permute(0, 3, 2, 1) are their own inverses.
        out_cw = self.cw(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        out_hc = self.hc(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
        if self.hw is None:
            return 0.5 * (out_cw + out_hc)
        return (out_cw + out_hc + self.hw(x)) * (1.0 / 3.0)


@register_attention("simam")
class SimAM(nn.Module):
    """SimAM (Yang, Zhang, Li, Xie, ICML 2021): parameter-free, 1-, 2- and 3-D.

    Per sample and channel, over the ``P = prod(spatial)`` positions, with ``n = P - 1``::

        d = (x - mean(x))^2
        y = d / (4 * (sum(d) / n + e_lambda)) + 0.5          (inverse of the minimal energy)
        out = x * sigmoid(y)

    Args:
        channels: C of the input (only checked).
        dims: number of spatial dims (1, 2 or 3).
        e_lambda: the energy regulariser lambda (paper: 1e-4).
        device: accepted for the common constructor; SimAM has no parameters.
        dtype: as ``device``.

    Raises ValueError at forward when the input has a single spatial position (n = 0: the variance
    estimate is undefined and the paper's formula divides 0 by 0).
    """

    layer_name = "simam"
    __constants__ = ["layer_name"]  # TorchScript reads class attributes listed here

    def __init__(
        self,
        channels: int,
        *,
        dims: int = 2,
        e_lambda: float = 1e-4,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.dims = check_dims(dims, self.layer_name)
        self.channels = check_channels(channels, self.layer_name)
        if not e_lambda > 0:
            raise ValueError(f"simam: e_lambda must be > 0, got {e_lambda!r}")
        self.e_lambda = float(e_lambda)
        self._axes = list(spatial_axes(dims))  # a list: TorchScript's reductions take List[int]

    def extra_repr(self) -> str:
        return f"channels={self.channels}, dims={self.dims}, e_lambda={self.e_lambda}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.channels, self.dims, self.layer_name)
        positions = 1
        for axis in self._axes:  # not math.prod: TorchScript and torch.fx proxies need plain products
            positions = positions * x.shape[axis]
        n = positions - 1
        if not is_symbolic_tracing() and n < 1:
            shape = ", ".join([str(s) for s in x.shape])
            raise ValueError(f"simam needs at least 2 spatial positions, got input of shape ({shape})")
        d = (x - x.mean(self._axes, keepdim=True)).pow(2)
        y = d / (4 * (d.sum(self._axes, keepdim=True) / n + self.e_lambda)) + 0.5
        return x * torch.sigmoid(y)
