"""Comparator layers against independent, equation-level computations (float64, <= 1e-8).

Each reference below is written from the paper's equations with plain tensor arithmetic: pooling by
explicit means/maxes, matrix products by einsum, "same" convolutions by a loop over kernel offsets on a
zero-padded copy (no F.conv*), BatchNorm and LayerNorm by their formulas. The layers' weights and
BatchNorm running statistics are randomised first so that no term is trivially zero or one.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from timm.layers.eca import EcaModule

from miamind.attention import create_attention
from miamind.attention.comparators import (
    CBAM,
    CoordAttention,
    EfficientChannelAttention,
    GatherExciteBlock,
    GlobalContextBlock,
    SimAM,
    SqueezeExcite,
    TripletAttention,
)

ATOL = 1e-8
COMPARATORS = ["se", "eca", "cbam", "gc", "ge", "coordatt", "triplet", "simam"]
SHAPES = {1: (3, 16, 11), 2: (3, 16, 6, 9), 3: (2, 16, 3, 4, 5)}


# ----------------------------------------------------------------------------------------------
# helpers: randomisation and the reference building blocks
# ----------------------------------------------------------------------------------------------


def _randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights (scale ~0.5) and random BatchNorm running statistics, in float64."""
    module.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(
                    torch.randn(m.running_mean.shape, generator=g, dtype=torch.float64) * 0.3
                )
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g, dtype=torch.float64) + 0.5)
    return module


def _x(shape, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * 1.5 + 0.2


def _sigmoid(t: torch.Tensor) -> torch.Tensor:
    return 1.0 / (1.0 + torch.exp(-t))


def _relu(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0, t, torch.zeros_like(t))


def _pool_all(x: torch.Tensor, how: str) -> torch.Tensor:
    """(N, C, *spatial) -> (N, C) by mean or max over every position."""
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    return flat.mean(-1) if how == "mean" else flat.max(-1).values


def _bcast(v: torch.Tensor, dims: int) -> torch.Tensor:
    """(N, C) -> (N, C, 1, ..., 1) for broadcasting against (N, C, *spatial)."""
    return v.reshape(*v.shape, *([1] * dims))


def _mat(w: torch.Tensor) -> torch.Tensor:
    """1x1 conv weight (out, in, 1, ...) -> (out, in)."""
    return w.reshape(w.shape[0], w.shape[1])


def _conv_same(inp: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One-output-channel cross-correlation with zero 'same' padding, any number of spatial dims.

    inp (N, Cin, *S), weight (1, Cin, *K) with odd K -> (N, 1, *S). Loops over kernel offsets.
    """
    n, cin, *size = inp.shape
    ks = weight.shape[2:]
    pads = [k // 2 for k in ks]
    padded = torch.zeros(n, cin, *[s + 2 * p for s, p in zip(size, pads, strict=True)], dtype=inp.dtype)
    padded[(slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in zip(pads, size, strict=True))] = inp
    out = torch.zeros(n, *size, dtype=inp.dtype)
    for offs in itertools.product(*[range(k) for k in ks]):
        window = padded[
            (slice(None), slice(None)) + tuple(slice(o, o + s) for o, s in zip(offs, size, strict=True))
        ]
        w = weight[(0, slice(None)) + tuple(offs)].reshape(1, cin, *([1] * len(size)))
        out = out + (window * w).sum(1)
    return out.unsqueeze(1)


def _bn(v: torch.Tensor, bn: nn.modules.batchnorm._BatchNorm, train: bool = False) -> torch.Tensor:
    """BatchNorm on (N, C, *) by its formula: running stats (eval) or biased batch stats (train)."""
    shape = (1, -1) + (1,) * (v.dim() - 2)
    if train:
        axes = [0] + list(range(2, v.dim()))
        mean = v.mean(axes, keepdim=True)
        var = ((v - mean) ** 2).mean(axes, keepdim=True)
    else:
        mean, var = bn.running_mean.reshape(shape), bn.running_var.reshape(shape)
    return (v - mean) / torch.sqrt(var + bn.eps) * bn.weight.reshape(shape) + bn.bias.reshape(shape)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=ATOL)


# ----------------------------------------------------------------------------------------------
# SE, ECA, GC, GE: global pooling layers, exact in every dims
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_se_matches_paper_equation(dims):
    layer = _randomise(SqueezeExcite(16, dims=dims)).eval()
    x = _x(SHAPES[dims])
    z = _pool_all(x, "mean")
    h = _relu(z @ _mat(layer.fc1.weight).T + layer.fc1.bias)
    s = _sigmoid(h @ _mat(layer.fc2.weight).T + layer.fc2.bias)
    _close(layer(x), x * _bcast(s, dims))


def test_se_hidden_width_is_c_over_r_not_rounded_to_8():
    assert SqueezeExcite(64).fc1.out_channels == 4
    assert SqueezeExcite(16).fc1.out_channels == 1
    assert SqueezeExcite(64, rd_ratio=1 / 4).fc1.out_channels == 16
    assert SqueezeExcite(64, rd_channels=10).fc1.out_channels == 10
    assert SqueezeExcite(64, rd_divisor=8).fc1.out_channels == 8  # timm's default behaviour on request


@pytest.mark.parametrize("cls", [SqueezeExcite, EfficientChannelAttention])
def test_1d_equals_2d_layer_on_a_length_by_one_map(cls):
    """The (N, C, L) <-> (N, C, L, 1) reshape is exact: same weights give the same output either way."""
    one_d = _randomise(cls(16, dims=1)).eval()
    two_d = cls(16, dims=2).double().eval()
    two_d.load_state_dict(one_d.state_dict())
    x = _x(SHAPES[1])
    _close(one_d(x), two_d(x.unsqueeze(-1)).squeeze(-1))
    _close(one_d(x), two_d(x.unsqueeze(-2)).squeeze(-2))


def _eca_reference(layer: EfficientChannelAttention, x: torch.Tensor) -> torch.Tensor:
    z = _pool_all(x, "mean")  # (N, C)
    w = layer.conv.weight.reshape(-1)
    k = w.numel()
    c = z.shape[1]
    y = torch.zeros_like(z)
    for ch in range(c):
        for j in range(k):
            src = ch + j - k // 2
            if 0 <= src < c:  # zero padding along the channel axis
                y[:, ch] = y[:, ch] + w[j] * z[:, src]
    return x * _bcast(_sigmoid(y), x.dim() - 2)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("kernel_size", [None, 5])
def test_eca_matches_paper_equation(dims, kernel_size):
    layer = _randomise(EfficientChannelAttention(16, dims=dims, kernel_size=kernel_size)).eval()
    assert layer.kernel_size == (3 if kernel_size is None else kernel_size)
    x = _x(SHAPES[dims])
    _close(layer(x), _eca_reference(layer, x))


@pytest.mark.parametrize("channels,k", [(16, 3), (64, 3), (256, 5), (512, 5), (1024, 5)])
def test_eca_adaptive_kernel_size(channels, k):
    # paper: k = |log2(C) / gamma + b / gamma|_odd with gamma = 2, b = 1, at least 3
    assert EfficientChannelAttention(channels).kernel_size == k


def test_eca_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        EfficientChannelAttention(16, kernel_size=4)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_gc_matches_paper_equation(dims):
    layer = _randomise(GlobalContextBlock(16, dims=dims)).eval()
    x = _x(SHAPES[dims])
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    logits = torch.einsum("c,ncp->np", _mat(layer.conv_attn.weight)[0], flat) + layer.conv_attn.bias
    e = torch.exp(logits - logits.max(-1, keepdim=True).values)
    a = e / e.sum(-1, keepdim=True)
    ctx = (flat * a[:, None, :]).sum(-1)  # (N, C)
    mlp = layer.mlp_scale
    h = ctx @ _mat(mlp.fc1.weight).T + mlp.fc1.bias
    mu = h.mean(-1, keepdim=True)
    var = ((h - mu) ** 2).mean(-1, keepdim=True)
    h = (h - mu) / torch.sqrt(var + mlp.norm.eps) * mlp.norm.weight + mlp.norm.bias
    s = _sigmoid(_relu(h) @ _mat(mlp.fc2.weight).T + mlp.fc2.bias)
    _close(layer(x), x * _bcast(s, dims))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_ge_global_extent_matches_equation(dims):
    layer = _randomise(GatherExciteBlock(16, dims=dims)).eval()
    x = _x(SHAPES[dims])
    h = _relu(_pool_all(x, "mean") @ _mat(layer.mlp.fc1.weight).T + layer.mlp.fc1.bias)
    s = _sigmoid(h @ _mat(layer.mlp.fc2.weight).T + layer.mlp.fc2.bias)
    _close(layer(x), x * _bcast(s, dims))


def test_ge_local_extent_is_2d_only_and_runs_in_2d():
    with pytest.raises(ValueError, match=r"supports dims in \(2,\)"):
        GatherExciteBlock(16, dims=1, extent=2)
    layer = GatherExciteBlock(16, extent=2)
    x = torch.randn(2, 16, 8, 8)
    out = layer(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # local gathering: the gate varies over space, unlike the global-extent (SE-like) form
    gate = out / x
    assert gate.reshape(2, 16, -1).std(-1).max() > 1e-4


def test_ge_extra_params_builds_or_says_why_not():
    try:
        layer = GatherExciteBlock(16, extent=2, extra_params=True)
    except TypeError as err:  # timm 1.0.31's positional *dd bug
        assert "extra_params" in str(err)
        return
    out = layer(torch.randn(2, 16, 8, 8))
    assert out.shape == (2, 16, 8, 8) and torch.isfinite(out).all()


# ----------------------------------------------------------------------------------------------
# CBAM: timm's modules, dims-generic spatial conv
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_cbam_matches_paper_equation(dims):
    layer = _randomise(CBAM(16, dims=dims)).eval()
    x = _x(SHAPES[dims])
    w1, w2 = _mat(layer.channel.fc1.weight), _mat(layer.channel.fc2.weight)

    def mlp(v):  # timm's CBAM MLP has no biases
        return _relu(v @ w1.T) @ w2.T

    m_c = _sigmoid(mlp(_pool_all(x, "mean")) + mlp(_pool_all(x, "max")))
    x1 = x * _bcast(m_c, dims)
    desc = torch.cat([x1.mean(1, keepdim=True), x1.max(1, keepdim=True).values], dim=1)
    conv_bn = layer.spatial.conv
    assert tuple(conv_bn.conv.weight.shape) == (1, 2) + (7,) * dims
    m_s = _sigmoid(_bn(_conv_same(desc, conv_bn.conv.weight), conv_bn.bn))
    _close(layer(x), x1 * m_s)


def test_cbam_1d_has_no_dead_kernel_weights():
    # 2*16*1 (MLP, no bias) + 2*7 (1-D conv) + 2 (BN): the 7-tap kernel, not a 7x7 one on a width-1 map
    assert sum(p.numel() for p in CBAM(16, dims=1).parameters()) == 2 * 16 + 2 * 7 + 2


# ----------------------------------------------------------------------------------------------
# Coordinate attention
# ----------------------------------------------------------------------------------------------


def _coordatt_reference(layer: CoordAttention, x: torch.Tensor, train: bool) -> torch.Tensor:
    n, c, h, w = x.shape
    z = torch.cat([x.mean(3), x.mean(2)], dim=2)  # (N, C, H + W): pool along W, then along H
    f = torch.einsum("oc,ncp->nop", _mat(layer.conv1.weight), z) + layer.conv1.bias[None, :, None]
    f = _bn(f, layer.bn1, train=train)
    f = f * torch.clamp(f + 3, 0, 6) / 6  # h_swish
    f_h, f_w = f[:, :, :h], f[:, :, h:]
    a_h = _sigmoid(
        torch.einsum("cm,nmp->ncp", _mat(layer.conv_h.weight), f_h) + layer.conv_h.bias[None, :, None]
    )
    a_w = _sigmoid(
        torch.einsum("cm,nmp->ncp", _mat(layer.conv_w.weight), f_w) + layer.conv_w.bias[None, :, None]
    )
    return x * a_h[:, :, :, None] * a_w[:, :, None, :]


@pytest.mark.parametrize("train", [False, True])
def test_coordatt_matches_paper_equation(train):
    layer = _randomise(CoordAttention(16)).train(train)
    x = _x((3, 16, 6, 9))  # H != W catches a swapped transpose
    _close(layer(x), _coordatt_reference(layer, x, train))


@pytest.mark.parametrize("channels,mip", [(16, 8), (64, 8), (256, 8), (512, 16), (1024, 32)])
def test_coordatt_width_is_max_8_c_over_32(channels, mip):
    assert CoordAttention(channels).rd_channels == mip


def test_coordatt_width_overrides():
    assert CoordAttention(64, rd_ratio=1 / 4).rd_channels == 16
    assert CoordAttention(64, rd_channels=5).rd_channels == 5


def test_coordatt_forward_is_timms():
    from timm.layers.coord_attn import CoordAttn

    ours = _randomise(CoordAttention(32)).eval()
    theirs = CoordAttn(32, rd_channels=ours.rd_channels, bias=True).double().eval()
    theirs.load_state_dict(ours.state_dict())
    x = _x((2, 32, 5, 7))
    _close(ours(x), theirs(x))


# ----------------------------------------------------------------------------------------------
# Triplet attention
# ----------------------------------------------------------------------------------------------


def _zpool_branch(planes_max, planes_mean, gate) -> torch.Tensor:
    """(N, A, B) max and mean maps -> sigmoid(BN(conv7x7([max; mean]))) as (N, A, B)."""
    desc = torch.stack([planes_max, planes_mean], dim=1)
    return _sigmoid(_bn(_conv_same(desc, gate.conv.weight), gate.bn))[:, 0]


def _triplet_reference(layer: TripletAttention, x: torch.Tensor) -> torch.Tensor:
    # C-W branch: pool over H, attend over the (C, W) plane.
    a_cw = _zpool_branch(x.max(2).values, x.mean(2), layer.cw)  # (N, C, W)
    # H-C branch: pool over W, attend over the (H, C) plane.
    a_hc = _zpool_branch(x.max(3).values.transpose(1, 2), x.mean(3).transpose(1, 2), layer.hc)  # (N, H, C)
    out = x * a_cw[:, :, None, :] + x * a_hc.transpose(1, 2)[:, :, :, None]
    if layer.hw is None:
        return out / 2
    # H-W branch: pool over C, plain spatial attention.
    a_hw = _zpool_branch(x.max(1).values, x.mean(1), layer.hw)  # (N, H, W)
    return (out + x * a_hw[:, None]) / 3


@pytest.mark.parametrize("no_spatial", [False, True])
def test_triplet_matches_paper_equation(no_spatial):
    layer = _randomise(TripletAttention(16, no_spatial=no_spatial)).eval()
    x = _x((3, 16, 6, 9))
    _close(layer(x), _triplet_reference(layer, x))


def test_triplet_parameters_do_not_depend_on_channels():
    counts = {c: sum(p.numel() for p in TripletAttention(c).parameters()) for c in (16, 64, 512)}
    assert set(counts.values()) == {3 * (2 * 49 + 2)}


# ----------------------------------------------------------------------------------------------
# SimAM
# ----------------------------------------------------------------------------------------------


def _simam_reference(x: np.ndarray, e_lambda: float) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[i, c]
            n = v.size - 1
            d = (v - v.mean()) ** 2
            y = d / (4 * (d.sum() / n + e_lambda)) + 0.5
            out[i, c] = v / (1 + np.exp(-y))
    return out


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("e_lambda", [1e-4, 0.5])
def test_simam_matches_paper_equation(dims, e_lambda):
    layer = SimAM(16, dims=dims, e_lambda=e_lambda)
    x = _x(SHAPES[dims])
    expected = torch.from_numpy(_simam_reference(x.numpy(), e_lambda))
    _close(layer(x), expected)


def test_simam_is_parameter_free_and_rejects_a_single_position():
    assert list(SimAM(16).parameters()) == []
    with pytest.raises(ValueError, match="at least 2 spatial positions"):
        SimAM(16)(torch.randn(2, 16, 1, 1))
    with pytest.raises(ValueError, match="e_lambda"):
        SimAM(16, e_lambda=0.0)


# ----------------------------------------------------------------------------------------------
# shared contract: parameter counts, unsupported dims, bad input
# ----------------------------------------------------------------------------------------------

C = 64
EXPECTED_PARAMS_C64 = {
    "se": 2 * C * 4 + 4 + C,  # fc1 + b1 + fc2 + b2, hidden 64/16
    "eca": 3,  # k = 3 at C = 64
    "cbam": 2 * C * 4 + 2 * 49 + 2,  # bias-free MLP + 7x7 conv (2->1) + BN
    "gc": (C + 1) + (C * 8 + 8) + 2 * 8 + (8 * C + C),  # context conv + fc1 + LayerNorm + fc2
    "ge": 2 * C * 4 + 4 + C,  # ConvMlp, hidden 64/16
    "coordatt": (C * 8 + 8) + 2 * 8 + 2 * (8 * C + C),  # conv1 + BN + conv_h + conv_w, mip 8
    "triplet": 3 * (2 * 49 + 2),
    "simam": 0,
}


@pytest.mark.parametrize("name", COMPARATORS)
def test_parameter_count_at_c64(name):
    layer = create_attention(name, C)
    assert sum(p.numel() for p in layer.parameters()) == EXPECTED_PARAMS_C64[name]


@pytest.mark.parametrize("cls", [CoordAttention, TripletAttention])
@pytest.mark.parametrize("dims", [1, 3])
def test_2d_only_layers_reject_other_dims(cls, dims):
    with pytest.raises(ValueError, match=r"supports dims in \(2,\).*dims=" + str(dims)):
        cls(16, dims=dims)


@pytest.mark.parametrize("name", COMPARATORS)
def test_wrong_input_shape_is_a_value_error_naming_shapes(name):
    layer = create_attention(name, 16)
    with pytest.raises(ValueError, match=r"\(N, 16, \*, \*\).*\(2, 8, 6, 6\)"):
        layer(torch.randn(2, 8, 6, 6))  # wrong channels
    with pytest.raises(ValueError, match=r"\(2, 16, 6\)"):
        layer(torch.randn(2, 16, 6))  # wrong rank


@pytest.mark.parametrize("name", COMPARATORS)
def test_bad_channels_rejected(name):
    with pytest.raises(ValueError, match="channels"):
        create_attention(name, 0)


@pytest.mark.parametrize("name", COMPARATORS)
def test_eval_mode_is_deterministic_and_batch_independent(name):
    """In eval mode each sample's output must not depend on the rest of the batch."""
    layer = _randomise(create_attention(name, 16)).eval()
    x = _x((4, 16, 6, 7))
    _close(layer(x)[1:2], layer(x[1:2]))
    assert math.isfinite(layer(x).sum().item())


# ----------------------------------------------------------------------------------------------
# the written-out 2-D forwards are timm's
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("se", {}),
        ("se", {"add_maxpool": True}),
        ("eca", {}),
        ("gc", {}),
        ("gc", {"fuse_add": True, "fuse_scale": False}),
        ("ge", {}),
        ("ge", {"extent": 2}),
        ("ge", {"extent": 4, "add_maxpool": True}),
        ("cbam", {}),
    ],
)
def test_forward_is_timms_forward(name, kwargs):
    """The adapters write timm's forward out (scriptable); it must stay the forward of the timm class."""
    layer = create_attention(name, 16, dtype=torch.float64, **kwargs)
    _randomise(layer)
    layer.eval()
    timm_cls = next(c for c in type(layer).__mro__ if c.__module__.startswith("timm."))
    x = torch.randn(3, 16, 7, 9, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), timm_cls.forward(layer, x), rtol=0, atol=1e-12)


def test_eca_batch_of_zero_where_timm_fails():
    layer = create_attention("eca", 16)
    x = torch.randn(0, 16, 5, 5)
    with pytest.raises(RuntimeError):
        EcaModule.forward(layer, x)  # timm's EcaModule: view(0, 1, -1) is ambiguous
    assert layer(x).shape == x.shape
