"""MIA-Mind layer and variants: equations, gradients, dtypes, memory formats, compile, ONNX, errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from miamind.attention import (
    MIAMind,
    MIAMindAdaptive,
    MIAMindAdd,
    MIAMindCode,
    MIAMindSeq,
    create_attention,
    get_attention,
)
from miamind.attention.mia import mia_hidden_channels

VARIANTS: dict[str, type] = {
    "mia": MIAMind,
    "mia_add": MIAMindAdd,
    "mia_seq": MIAMindSeq,
    "mia_code": MIAMindCode,
    "mia_adaptive": MIAMindAdaptive,
}
_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_SPATIAL = {1: (9,), 2: (5, 6), 3: (3, 4, 5)}


# --------------------------------------------------------------------------------------------------
# Reference equations, written from the paper / the MindSpore code with plain torch ops: the MLP as
# matrix products on (N, C) vectors, the spatial conv through F.conv{1,2,3}d. Only the parameter
# tensors are taken from the layer.
# --------------------------------------------------------------------------------------------------
def _mlp_ref(m: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """W2 relu(W1 z + b1) + b2 for z of shape (N, C)."""
    w1 = m.fc1.weight.reshape(m.fc1.weight.shape[0], -1)
    w2 = m.fc2.weight.reshape(m.fc2.weight.shape[0], -1)
    return torch.relu(z @ w1.T + m.fc1.bias) @ w2.T + m.fc2.bias


def _expand_c(w: torch.Tensor, dims: int) -> torch.Tensor:
    return w.reshape(*w.shape, *([1] * dims))


def _wc_paper(m, x, dims):
    z = x.mean(dim=tuple(range(2, 2 + dims)))
    return _expand_c(torch.sigmoid(_mlp_ref(m, z)), dims)


def _ws_paper(m, x, dims):
    k = m.spatial.weight.shape[-1]
    desc = x.mean(dim=1, keepdim=True)
    return torch.sigmoid(_CONV_FN[dims](desc, m.spatial.weight, m.spatial.bias, padding=k // 2))


def ref_mia(m, x, dims):
    return x * _wc_paper(m, x, dims) * _ws_paper(m, x, dims)


def ref_mia_add(m, x, dims):
    return x * (_wc_paper(m, x, dims) + _ws_paper(m, x, dims))


def ref_mia_seq(m, x, dims):
    x1 = x * _wc_paper(m, x, dims)
    return x1 * _ws_paper(m, x1, dims)


def ref_mia_code(m, x, dims):
    axes = tuple(range(2, 2 + dims))
    avg, mx = x.mean(dim=axes), x.amax(dim=axes)
    x1 = x * _expand_c(torch.sigmoid(_mlp_ref(m, avg) + _mlp_ref(m, mx)), dims)
    desc = torch.cat([x1.mean(dim=1, keepdim=True), x1.amax(dim=1, keepdim=True)], dim=1)
    assert m.spatial.bias is None
    k = m.spatial.weight.shape[-1]
    ws = torch.sigmoid(_CONV_FN[dims](desc, m.spatial.weight, None, padding=k // 2))
    return x1 * ws


def ref_mia_adaptive(m, x, dims):
    wc, ws = _wc_paper(m, x, dims), _ws_paper(m, x, dims)
    g = 1.0 / (1.0 + torch.exp(-m.theta))
    return x * (g * wc * ws + (1.0 - g) * (wc + ws) / 2.0)


REFERENCES: dict[str, Callable] = {
    "mia": ref_mia,
    "mia_add": ref_mia_add,
    "mia_seq": ref_mia_seq,
    "mia_code": ref_mia_code,
    "mia_adaptive": ref_mia_adaptive,
}


def _randomise(m: nn.Module, seed: int) -> nn.Module:
    """Unit-scale random parameters, so both gates vary a lot and every term matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return m


def _make(name, channels=8, dims=2, dtype=torch.float64, seed=0, **kw):
    return _randomise(VARIANTS[name](channels, dims=dims, dtype=dtype, **kw), seed)


# --------------------------------------------------------------------------------------------------
# Equations
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_matches_reference_equation(name, dims):
    torch.manual_seed(1)
    m = _make(name, channels=8, dims=dims, rd_channels=3, kernel_size=3 if dims == 3 else 7)
    x = torch.randn(2, 8, *_SPATIAL[dims], dtype=torch.float64)
    y = m(x)
    with torch.no_grad():
        expected = REFERENCES[name](m, x, dims)
        assert y.shape == x.shape
        torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)
        # The check discriminates: every other paper-parameter variant's equation gives a clearly
        # different output. (mia_code's reference needs a bias-free 2-channel conv and mia_adaptive's
        # needs theta, so those two references only run on their own layers.)
        if name == "mia_code":
            return
        for other, ref in REFERENCES.items():
            if other in (name, "mia_code", "mia_adaptive"):
                continue
            assert (ref(m, x, dims) - y).abs().max() > 1e-3, f"{name} output also matches {other}'s equation"


def test_adaptive_init_is_close_to_paper_form():
    m = MIAMindAdaptive(8, dtype=torch.float64)
    assert m.theta.item() == 4.0
    assert math.isclose(torch.sigmoid(m.theta).item(), 0.98201379, rel_tol=1e-6)
    paper = MIAMind(8, dtype=torch.float64)
    paper.load_state_dict({k: v for k, v in m.state_dict().items() if k != "theta"})
    x = torch.randn(2, 8, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        gap = (m(x) - paper(x)).abs().max().item()
        m.theta.fill_(-4.0)
        far = (m(x) - paper(x)).abs().max().item()
    # At init the fusion is 98 % product: close to the paper form, far closer than at g ~= 0.018.
    assert gap < 0.05 * far


def test_adaptive_theta_learns():
    m = MIAMindAdaptive(8)
    x = torch.randn(2, 8, 5, 6)
    m(x).square().sum().backward()
    assert m.theta.grad is not None and m.theta.grad.abs().item() > 0


# --------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(VARIANTS))
def test_gradcheck_input_and_parameters(name):
    torch.manual_seed(2)
    m = _make(name, channels=4, dims=2, rd_channels=2, kernel_size=3)
    names = [n for n, _ in m.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in m.named_parameters())
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64, requires_grad=True)

    def fn(inp, *ps):
        return functional_call(m, dict(zip(names, ps, strict=True)), (inp,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# Dtypes and memory formats
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(VARIANTS))
def test_bf16_autocast_cpu(name):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), VARIANTS[name](16))
    x = torch.randn(2, 3, 12, 12)

    y32 = model(x)
    y32.square().mean().backward()
    grads32 = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv_out = model[0](x)
        y16 = model[1](conv_out)
    # Autocast runs the conv in bf16; the layer keeps its input's dtype (no silent upcast/downcast).
    assert conv_out.dtype == torch.bfloat16 and y16.dtype == torch.bfloat16
    y16.float().square().mean().backward()
    assert torch.isfinite(y16.float()).all()
    for p, g32 in zip(model.parameters(), grads32, strict=True):
        assert p.grad is not None and torch.isfinite(p.grad).all()
        scale = g32.abs().max().item() + 1e-6
        assert (p.grad - g32).abs().max().item() <= 0.1 * scale
    # bf16 has an 8-bit mantissa: ~0.4 % per rounding, a few roundings deep here.
    torch.testing.assert_close(y16.float(), y32.detach(), rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_channels_last_in_channels_last_out(name, dims):
    torch.manual_seed(4)
    fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    m = VARIANTS[name](16, dims=dims, kernel_size=3)
    x = torch.randn(2, 16, *_SPATIAL[dims])
    y_ref = m(x)
    y = m(x.to(memory_format=fmt))
    assert y.is_contiguous(memory_format=fmt)
    assert y_ref.is_contiguous()
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)


def test_float64_parameters_and_device_kwargs():
    m = MIAMind(8, dtype=torch.float64, device="cpu")
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in m.parameters())
    assert MIAMindAdaptive(8, dtype=torch.float64).theta.dtype == torch.float64


# --------------------------------------------------------------------------------------------------
# Parameters, widths, registry
# --------------------------------------------------------------------------------------------------
def _param_count(channels, hidden, k, dims, spatial_in=1, spatial_bias=True):
    return 2 * channels * hidden + hidden + channels + spatial_in * k**dims + int(spatial_bias)


def test_paper_form_parameters_exactly():
    m = MIAMind(64)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes == {
        "fc1.weight": (4, 64, 1, 1),
        "fc1.bias": (4,),
        "fc2.weight": (64, 4, 1, 1),
        "fc2.bias": (64,),
        "spatial.weight": (1, 1, 7, 7),
        "spatial.bias": (1,),
    }
    assert sum(p.numel() for p in m.parameters()) == 630 == _param_count(64, 4, 7, 2)
    assert list(m.buffers()) == []


@pytest.mark.parametrize(
    "name, extra, spatial_in, spatial_bias",
    [
        ("mia_add", set(), 1, True),
        ("mia_seq", set(), 1, True),
        ("mia_code", set(), 2, False),
        ("mia_adaptive", {"theta"}, 1, True),
    ],
)
def test_variant_parameters(name, extra, spatial_in, spatial_bias):
    m = VARIANTS[name](64)
    expected = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "spatial.weight"} | extra
    if spatial_bias:
        expected.add("spatial.bias")
    assert {n for n, _ in m.named_parameters()} == expected
    assert m.spatial.weight.shape == (1, spatial_in, 7, 7)
    n = sum(p.numel() for p in m.parameters())
    assert n == _param_count(64, 4, 7, 2, spatial_in, spatial_bias) + len(extra)


@pytest.mark.parametrize("dims", [1, 3])
def test_parameter_shapes_follow_dims(dims):
    m = MIAMind(32, dims=dims, kernel_size=5)
    assert m.fc1.weight.shape == (2, 32) + (1,) * dims
    assert m.spatial.weight.shape == (1, 1) + (5,) * dims
    assert sum(p.numel() for p in m.parameters()) == _param_count(32, 2, 5, dims)


def test_hidden_width_rules():
    assert mia_hidden_channels(64) == 4
    assert mia_hidden_channels(48) == 3
    assert mia_hidden_channels(64, rd_ratio=1 / 8) == 8
    assert mia_hidden_channels(3) == 1  # 3 // 16 == 0 -> clamped to 1
    assert mia_hidden_channels(64, rd_channels=10) == 10
    m = MIAMind(64, rd_channels=10)
    assert m.hidden_channels == 10 and m.fc1.weight.shape[0] == 10 and m.fc2.weight.shape[1] == 10
    tiny = MIAMindCode(3)
    assert tiny.fc1.weight.shape[0] == 1
    assert tiny(torch.randn(1, 3, 4, 4)).shape == (1, 3, 4, 4)


def test_registry_names():
    for name, cls in VARIANTS.items():
        assert get_attention(name) is cls
        assert type(create_attention(name, 16, dims=1)) is cls


def test_determinism_same_seed():
    x = torch.randn(2, 16, 7, 7)
    for cls in VARIANTS.values():
        torch.manual_seed(123)
        a = cls(16)
        torch.manual_seed(123)
        b = cls(16)
        torch.manual_seed(124)
        c = cls(16)
        for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
            assert na == nb and torch.equal(pa, pb)
        assert torch.equal(a(x), b(x))
        assert not torch.equal(a(x), c(x))  # the seed does drive the init


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(VARIANTS))
def test_wrong_rank_names_shapes(name):
    m = VARIANTS[name](8)
    with pytest.raises(ValueError) as err:
        m(torch.randn(2, 8, 5))
    msg = str(err.value)
    assert "(N, 8, *, *)" in msg and "(2, 8, 5)" in msg


@pytest.mark.parametrize("name", list(VARIANTS))
def test_wrong_channels_names_shapes(name):
    m = VARIANTS[name](8, dims=3)
    with pytest.raises(ValueError) as err:
        m(torch.randn(2, 4, 3, 3, 3))
    msg = str(err.value)
    assert "(N, 8, *, *, *)" in msg and "(2, 4, 3, 3, 3)" in msg


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(dims=0), "dims=0"),
        (dict(dims=4), "dims=4"),
        (dict(kernel_size=4), "kernel_size"),
        (dict(kernel_size=0), "kernel_size"),
        (dict(rd_channels=0), "rd_channels"),
        (dict(rd_ratio=0.0), "rd_ratio"),
    ],
)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_bad_constructor_args(name, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        VARIANTS[name](8, **kwargs)


def test_bad_channels():
    with pytest.raises(ValueError, match="channels"):
        MIAMind(0)


# --------------------------------------------------------------------------------------------------
# torch.compile and ONNX
# --------------------------------------------------------------------------------------------------
class _TinyNet(nn.Module):
    """conv -> attention -> global average pool -> linear: the smallest model that uses the layer."""

    def __init__(self, attn: Callable[..., nn.Module] = MIAMind, channels: int = 16, classes: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.attn = attn(channels)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.attn(torch.relu(self.conv(x)))
        return self.head(x.mean((2, 3)))


@pytest.mark.slow
def test_torch_compile_matches_eager():
    # Inductor (gcc is available) compiles the tiny model; the layer is compiled as part of it, which
    # keeps this to one compilation (CPU compiles are slow). No aot_eager fallback is needed here.
    torch.manual_seed(5)
    model = _TinyNet(MIAMindAdaptive).eval()
    x = torch.randn(2, 3, 16, 16)
    compiled = torch.compile(model, backend="inductor", fullgraph=True, dynamic=False)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
        h = torch.randn(2, 16, 8, 8)
        compiled_attn = torch.compile(model.attn, backend="inductor", fullgraph=True, dynamic=False)
        torch.testing.assert_close(compiled_attn(h), model.attn(h), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mia", "mia_code"])
def test_onnx_export_matches_onnxruntime(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(6)
    model = _TinyNet(VARIANTS[name]).eval()
    x = torch.randn(2, 3, 16, 16)
    path = tmp_path / f"{name}.onnx"
    # torch 2.14's default exporter (dynamo=True, via torch.export + onnxscript) handles every op
    # here (mean / amax / conv / sigmoid / broadcast mul), so the legacy TorchScript path is not used.
    torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["x"], output_names=["logits"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == want.shape
    assert abs(got - want).max() <= 1e-5


# ----------------------------------------------------------------------------------------------
# gate_init: "paper" (default) vs "identity"
# ----------------------------------------------------------------------------------------------


def _mean_map(layer: nn.Module, x: torch.Tensor) -> float:
    """Mean of the attention map at init, recovered as out / x (x has no zeros)."""
    with torch.no_grad():
        return float((layer.eval()(x) / x).mean())


@pytest.mark.parametrize("name", ["mia", "mia_adaptive", "mia_seq"])
def test_gate_init_identity_starts_the_product_map_near_one(name):
    torch.manual_seed(0)
    x = torch.randn(4, 32, 8, 8)
    x = torch.where(x.abs() < 1e-3, torch.full_like(x, 1e-3), x)
    paper = _mean_map(create_attention(name, 32), x)
    identity = _mean_map(create_attention(name, 32, gate_init="identity"), x)
    assert abs(paper - 0.25) < 0.05, paper  # two sigmoids of ~0 logits: 0.5 * 0.5
    assert abs(identity - 1.0) < 0.06, identity  # sigmoid(4)^2 ~= 0.965


def test_gate_init_identity_for_the_additive_map_and_its_limits():
    torch.manual_seed(0)
    x = torch.randn(4, 32, 8, 8)
    layer = create_attention("mia_add", 32, gate_init="identity")
    with torch.no_grad():
        w = layer.channel_gate(x) + layer.spatial_gate(x)  # w_c + w_s ~= 0.5 + 0.5
    assert abs(float(w.mean()) - 1.0) < 0.05
    assert float(layer.fc2.bias.abs().max()) == 0.0
    with pytest.raises(ValueError, match="spatial conv bias"):
        create_attention("mia_code", 32, gate_init="identity")
    with pytest.raises(ValueError, match="gate_init must be one of"):
        create_attention("mia", 32, gate_init="zeros")


def test_gate_modules_receive_the_gates_and_are_configurable():
    torch.manual_seed(0)
    layer = MIAMind(16, act_layer="gelu", gate_layer="hard_sigmoid").eval()
    assert type(layer.act).__name__ == "GELU"  # timm resolves the name (its own GELU class)
    seen = {}
    layer.gate_c.register_forward_hook(lambda m, a, out: seen.__setitem__("w_c", out))
    layer.gate_s.register_forward_hook(lambda m, a, out: seen.__setitem__("w_s", out))
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        out = layer(x)
    assert seen["w_c"].shape == (2, 16, 1, 1) and seen["w_s"].shape == (2, 1, 6, 6)
    torch.testing.assert_close(out, x * (seen["w_c"] * seen["w_s"]), rtol=0, atol=0)
    # No parameters in the gate modules: state dicts stay those of the paper layer.
    assert set(layer.state_dict()) == set(MIAMind(16).state_dict())
