"""Every registered attention layer works wherever timm's layers work (the README's support matrix).

One parametrised test per check, over ``list_attention()``: a layer registered later is covered
without editing this file. Each check compares against the eager layer on the same input, so a path
that runs but computes something else fails too.
"""

from __future__ import annotations

import functools
import io
import warnings

import pytest
import torch
import torch.nn as nn

from miamind.attention import create_attention, list_attention

NAMES = list_attention()
SHAPE = (2, 16, 8, 8)
CHANNELS = SHAPE[1]


def _layer(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    layer = create_attention(name, CHANNELS, dims=2, **kwargs)
    # Non-trivial BatchNorm statistics, so eval mode is not an identity that hides a wrong path.
    for module in layer.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return layer.eval()


def _input(batch: int = SHAPE[0], **kwargs) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(batch, *SHAPE[1:], generator=gen, **kwargs)


def _close(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-5) -> None:
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_fx_symbolic_trace(name):
    layer = _layer(name)
    x = _input()
    graph_module = torch.fx.symbolic_trace(layer)
    with torch.no_grad():
        _close(graph_module(x), layer(x))
    # The traced graph also trains (timm's feature_cls='fx' and torchvision's feature extractor do).
    graph_module.train()
    xg = x.clone().requires_grad_(True)
    graph_module(xg).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_timm_fx_feature_extraction(name):
    """What ``timm.create_model(..., features_only=True, feature_cls='fx')`` builds, on a timm ResNet."""
    from timm.models import FeatureGraphNet
    from timm.models.resnet import BasicBlock, ResNet

    torch.manual_seed(0)
    attn = functools.partial(create_attention, name)
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10, block_args=dict(attn_layer=attn)).eval()
    x = torch.randn(2, 3, 64, 64)  # 2 x 2 at layer4 (SimAM needs more than one position)
    eager = []
    handles = [
        getattr(model, f"layer{i}").register_forward_hook(lambda m, a, out: eager.append(out))
        for i in (1, 2, 3, 4)
    ]
    with torch.no_grad():
        model(x)
        for handle in handles:
            handle.remove()
        features = FeatureGraphNet(model, out_indices=(1, 2, 3, 4))(x)
    assert len(features) == 4
    for got, want in zip(features, eager, strict=True):
        _close(got, want)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("name", NAMES)
def test_torchscript_script(name):
    layer = _layer(name)
    x = _input()
    scripted = torch.jit.script(layer)
    with torch.no_grad():
        _close(scripted(x), layer(x))


@pytest.mark.parametrize("name", NAMES)
def test_torch_export(name):
    layer = _layer(name)
    x = _input()
    program = torch.export.export(layer, (x,))
    with torch.no_grad():
        _close(program.module()(x), layer(x))


def _check_compiled(name: str, backend: str) -> None:
    torch._dynamo.reset()
    layer = _layer(name).train()
    x = _input()
    compiled = torch.compile(layer, fullgraph=True, backend=backend)
    xc, xe = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_c, out_e = compiled(xc), layer(xe)
    _close(out_c, out_e)
    weight = torch.randn(out_e.shape, generator=torch.Generator().manual_seed(2))
    (out_c * weight).sum().backward()
    (out_e * weight).sum().backward()
    _close(xc.grad, xe.grad, 1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_torch_compile_fullgraph(name):
    # aot_eager: the whole graph through dynamo (fullgraph=True fails on any graph break) and
    # AOTAutograd (forward and backward), without paying for inductor's C++ code generation.
    _check_compiled(name, "aot_eager")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_torch_compile_fullgraph_inductor(name):
    # The default backend, generated C++ kernels: ~14 s per layer on this CPU.
    _check_compiled(name, "inductor")


# The TorchScript-based exporter in the fast set; the dynamo exporter (torch.export + onnxscript, the
# default of torch.onnx.export since torch 2.9) takes ~2 s per layer here, so it is marked slow.
@pytest.mark.parametrize(
    "dynamo", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["legacy", "dynamo"]
)
@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_matches_onnxruntime(name, dynamo):
    ort = pytest.importorskip("onnxruntime")
    layer = _layer(name)
    x = _input()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation notes, not about this layer
        if dynamo:
            model = torch.onnx.export(layer, (x,), dynamo=True, verbose=False).model_proto.SerializeToString()
        else:
            buffer = io.BytesIO()
            torch.onnx.export(layer, (x,), buffer, input_names=["x"], output_names=["y"], dynamo=False)
            model = buffer.getvalue()
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        _close(torch.from_numpy(got), layer(x), 1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_meta_device_construction_and_forward(name):
    layer = create_attention(name, CHANNELS, dims=2, device="meta")
    assert all(p.is_meta for p in layer.parameters())
    x = torch.empty(SHAPE, device="meta", requires_grad=True)
    out = layer.train()(x)
    assert out.is_meta and out.shape == SHAPE
    with torch.no_grad():
        out = layer.eval()(x)
    assert out.is_meta and out.shape == SHAPE
    # Deferred initialisation: materialise, then the layer runs on real data.
    layer.to_empty(device="cpu")
    for module in layer.modules():
        if hasattr(module, "reset_parameters") and module is not layer:
            module.reset_parameters()
    real = layer(_input())
    assert real.shape == SHAPE


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_zero(name):
    layer = _layer(name)
    x = _input(0)
    with torch.no_grad():
        assert layer(x).shape == x.shape
    xg = x.clone().requires_grad_(True)
    layer.train()(xg).sum().backward()
    assert xg.grad is not None and xg.grad.shape == x.shape


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_algorithms(name):
    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        layer = _layer(name).train()
        x = _input().requires_grad_(True)
        out = layer(x)
        (out * out).sum().backward()
        return out.detach(), [x.grad, *(p.grad for p in layer.parameters())]

    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        out1, grads1 = run()
        out2, grads2 = run()
    finally:
        torch.use_deterministic_algorithms(before)
    assert torch.isfinite(out1).all()
    assert torch.equal(out1, out2)
    for g1, g2 in zip(grads1, grads2, strict=True):
        assert torch.equal(g1, g2)
