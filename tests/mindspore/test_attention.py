"""MindSpore MIA-Mind cells against the PyTorch layers: names, outputs, gradients, errors."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import miamind.attention as tattn
import mindspore as ms
from miamind.mindspore import attention as A
from miamind.mindspore._require import INSTALL_HINT, require_mindspore
from miamind.mindspore.convert import load_into_cell, torch_to_mindspore
from mindspore import nn as msnn

NAMES = ["mia", "mia_add", "mia_seq", "mia_code", "mia_adaptive"]
C, HIDDEN, K = 6, 3, 3
SIZE = {1: (9,), 2: (5, 6), 3: (3, 4, 5)}


def _pair(name, dims, seed=0):
    """A PyTorch layer with random (non-default) weights and its MindSpore twin loaded via convert."""
    torch.manual_seed(seed)
    t = tattn.create_attention(name, C, dims=dims, rd_channels=HIDDEN, kernel_size=K).eval()
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.randn_like(p) * 0.7)  # gates away from 0.5 / saturation alike
    cell = A.create_attention(name, C, dims=dims, rd_channels=HIDDEN, kernel_size=K)
    load_into_cell(cell, torch_to_mindspore(t.state_dict()))
    return t, cell


def _input(dims, seed=1, n=2, channels=C):
    return np.random.default_rng(seed).standard_normal((n, channels, *SIZE[dims])).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# construction


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", NAMES)
def test_parameter_names_and_shapes_match_torch(name, dims):
    t = tattn.create_attention(name, C, dims=dims, rd_channels=HIDDEN, kernel_size=K)
    cell = A.create_attention(name, C, dims=dims, rd_channels=HIDDEN, kernel_size=K)
    ms_shapes = {n: tuple(p.shape) for n, p in cell.parameters_and_names()}
    torch_shapes = {n: tuple(v.shape) for n, v in torch_to_mindspore(t.state_dict()).items()}
    assert list(ms_shapes) == list(t.state_dict())  # same names, same order
    assert ms_shapes == torch_shapes
    expected = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "spatial.weight"}
    expected |= set() if name == "mia_code" else {"spatial.bias"}
    expected |= {"theta"} if name == "mia_adaptive" else set()
    assert set(ms_shapes) == expected
    assert all(p.requires_grad for p in cell.get_parameters())
    assert isinstance(cell, A.get_attention(name))


def test_constructor_mirrors_torch():
    """Same keyword arguments and defaults as the PyTorch layers (minus ``device``), so configs carry over."""
    import inspect

    def params(cls):
        sig = inspect.signature(cls.__init__)
        return {n: (p.kind, p.default) for n, p in sig.parameters.items() if n not in ("self", "device")}

    assert params(A.MIAMind) == params(tattn.MIAMind)
    cell = A.create_attention("mia", C, fused=False, rd_ratio=0.5)  # accepted, no effect
    assert cell.hidden_channels == 3


def test_registry_mirrors_torch_mia_names():
    assert A.list_attention() == sorted(n for n in tattn.list_attention() if n.startswith("mia"))
    for spec in (None, "none", "NONE", ""):
        assert isinstance(A.create_attention(spec, C), msnn.Identity)
    assert isinstance(A.create_attention("MIA", C), A.MIAMind)
    assert isinstance(A.create_attention(A.MIAMindSeq, C), A.MIAMindSeq)
    with pytest.raises(ValueError, match=r"unknown MindSpore attention 'se'.*mia_add"):
        A.create_attention("se", C)
    with pytest.raises(TypeError, match="attention must be None"):
        A.create_attention(3, C)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(rd_ratio=0.25),
        dict(rd_channels=5),
        dict(channels=3),  # 3 * 1/16 -> clamped to 1
    ],
)
def test_hidden_width_rule_matches_torch(kwargs):
    kwargs = {"channels": 64, **kwargs}
    assert A.MIAMind(**kwargs).hidden_channels == tattn.MIAMind(**kwargs).hidden_channels


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(channels=0), "channels must be a positive integer"),
        (dict(channels=8, dims=4), r"supports dims in \(1, 2, 3\).*dims=4"),
        (dict(channels=8, kernel_size=4), "kernel_size must be a positive odd integer"),
        (dict(channels=8, rd_channels=0), "rd_channels must be a positive integer"),
        (dict(channels=8, rd_ratio=0), "rd_ratio must be > 0"),
    ],
)
def test_constructor_errors_like_torch(kwargs, match):
    with pytest.raises(ValueError, match=match):
        A.MIAMind(**kwargs)
    with pytest.raises(ValueError, match=match):
        tattn.MIAMind(**kwargs)


def test_dtype_argument():
    cell = A.MIAMind(8, dtype=ms.float16)
    assert {p.dtype for p in cell.get_parameters()} == {ms.float16}
    y = cell(ms.Tensor(_input(2, channels=8).astype(np.float16)))
    assert y.dtype == ms.float16 and y.shape == (2, 8, 5, 6)


# ---------------------------------------------------------------------------------------------
# parity (PYNATIVE and GRAPH)


class _AllLayers(msnn.Cell):
    """Every variant side by side, so GRAPH mode compiles once per test instead of once per layer."""

    def __init__(self, cells):
        super().__init__()
        self.layers = msnn.CellList(cells)

    def construct(self, x):
        outs = ()
        for layer in self.layers:
            outs = outs + (layer(x),)
        return outs


class _Objective(msnn.Cell):
    """sum over layers of sum(layer(x) * r): d/dx is the sum of the per-layer input gradients."""

    def __init__(self, cells):
        super().__init__()
        self.layers = msnn.CellList(cells)

    def construct(self, x, r):
        total = 0.0
        for layer in self.layers:
            total = total + (layer(x) * r).sum()
        return total


@pytest.mark.parametrize("dims", [1, 2])
def test_forward_and_gradient_parity(dims, ms_mode):
    """Same weights + same input -> same output and same d(sum(out * r)) w.r.t. input and weights."""
    pairs = [_pair(name, dims) for name in NAMES]
    torch_layers, cells = [t for t, _ in pairs], [c for _, c in pairs]
    x = _input(dims)
    r = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)

    outs = _AllLayers(cells)(ms.Tensor(x))
    xt = torch.from_numpy(x).requires_grad_(True)
    total = 0.0
    for name, t, out_ms in zip(NAMES, torch_layers, outs, strict=True):
        out_t = t(xt)
        np.testing.assert_allclose(out_ms.asnumpy(), out_t.detach().numpy(), rtol=0, atol=1e-5, err_msg=name)
        total = total + (out_t * torch.from_numpy(r)).sum()
    total.backward()

    named = [
        (f"{name}:{n}", p) for name, c in zip(NAMES, cells, strict=True) for n, p in c.parameters_and_names()
    ]
    assert all(p.requires_grad for _, p in named)
    grad_fn = ms.grad(_Objective(cells), grad_position=0, weights=[p for _, p in named])
    dx, dw = grad_fn(ms.Tensor(x), ms.Tensor(r))
    np.testing.assert_allclose(dx.asnumpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)
    torch_grads = {
        f"{name}:{n}": p.grad
        for name, t in zip(NAMES, torch_layers, strict=True)
        for n, p in t.named_parameters()
    }
    assert [n for n, _ in named] == list(torch_grads)
    for (n, _), g in zip(named, dw, strict=True):
        np.testing.assert_allclose(
            g.asnumpy(),
            torch_grads[n].numpy().reshape(g.shape),
            rtol=1e-5,
            atol=1e-5,
            err_msg=n,
        )


def test_dims3_forward_parity():
    for name in ("mia", "mia_code"):
        t, cell = _pair(name, 3)
        x = _input(3)
        np.testing.assert_allclose(
            cell(ms.Tensor(x)).asnumpy(),
            t(torch.from_numpy(x)).detach().numpy(),
            rtol=0,
            atol=1e-5,
        )


def test_gate_shapes():
    cell = A.MIAMind(C, dims=2)
    x = ms.Tensor(_input(2))
    assert cell.channel_gate(x).shape == (2, C, 1, 1)
    assert cell.spatial_gate(x).shape == (2, 1, 5, 6)


# ---------------------------------------------------------------------------------------------
# input errors


@pytest.mark.parametrize("shape", [(2, C + 1, 5, 6), (2, C, 9), (C, 5, 6)])
def test_wrong_input_shape_names_shapes(shape):
    cell = A.MIAMind(C, dims=2)
    with pytest.raises(ValueError, match=rf"MIAMind expects input of shape \(N, {C}, \*, \*\) \(4-D\), got"):
        cell(ms.Tensor(np.zeros(shape, np.float32)))


def test_wrong_input_shape_in_graph_mode(ms_mode):
    cell = A.MIAMindCode(C, dims=1)
    with pytest.raises(
        ValueError, match=rf"MIAMindCode expects input of shape \(N, {C}, \*\) \(3-D\), got \(2, 4, 9\)"
    ):
        cell(ms.Tensor(np.zeros((2, 4, 9), np.float32)))


# ---------------------------------------------------------------------------------------------
# optional dependency


def test_require_mindspore_returns_module():
    assert require_mindspore() is ms


def test_missing_mindspore_raises_install_hint(monkeypatch):
    import importlib

    monkeypatch.setitem(sys.modules, "mindspore", None)  # what `import mindspore` sees when absent
    with pytest.raises(ImportError) as info:
        require_mindspore()
    assert INSTALL_HINT in str(info.value)
    assert "pip install 'miamind[mindspore]'" in str(info.value)
    # a submodule imported without the backend fails with the same message, not a bare ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "miamind.mindspore.attention")
    with pytest.raises(ImportError, match=r"pip install 'miamind\[mindspore\]'"):
        importlib.import_module("miamind.mindspore.attention")


@pytest.mark.parametrize(
    "modules, absent",
    [
        # The core package never imports MindSpore ...
        (
            "miamind, miamind.models, miamind.engine.train, miamind.engine.evaluate, miamind.mindspore",
            "mindspore",
        ),
        # ... and the twins share only pure-Python facts (miamind._arch.mia) with it, not its torch modules.
        ("miamind.mindspore.attention, miamind.mindspore.models", "torch"),
    ],
)
def test_import_boundaries(modules, absent):
    code = f"import sys, {modules}; assert {absent!r} not in sys.modules, '{absent} was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_top_level_exports_like_the_torch_package():
    import miamind
    import miamind.mindspore as msp
    from miamind.mindspore import models as ms_models

    for name in ("MIAMind", "MIAMindAdd", "MIAMindSeq", "MIAMindCode", "MIAMindAdaptive", "create_attention"):
        assert getattr(msp, name) is getattr(A, name)
        assert hasattr(miamind, name)  # the PyTorch package has the same names at its top
    assert msp.create_model is ms_models.create_model and miamind.create_model is not None
    assert "MIAMind" in dir(msp) and "create_model" in msp.__all__


def test_gate_init_identity_and_activation_arguments_like_torch():
    cell = A.MIAMind(C, gate_init="identity")
    layer = tattn.MIAMind(C, gate_init="identity")
    np.testing.assert_array_equal(cell.fc2.bias.asnumpy(), layer.fc2.bias.detach().numpy())
    np.testing.assert_array_equal(cell.spatial.bias.asnumpy(), layer.spatial.bias.detach().numpy())
    assert float(A.MIAMindAdd(C, gate_init="identity").fc2.bias.asnumpy().max()) == 0.0
    with pytest.raises(ValueError, match="spatial conv bias"):
        A.MIAMindCode(C, gate_init="identity")
    with pytest.raises(ValueError, match="act_layer='relu' only"):
        A.MIAMind(C, act_layer="gelu")
