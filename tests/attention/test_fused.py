"""Fused MIA-Mind gating (attention/fused.py): same numbers as the plain layer, less saved memory.

These are the PyTorch path's tests: the C++ training kernel (tests/attention/test_kernel.py) is
turned off here, as where it cannot be built.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
from torch.func import functional_call

from miamind.attention import MIAMind, MIAMindAdaptive, MIAMindAdd, MIAMindCode, MIAMindSeq, fused
from miamind.attention.fused import broadcast_mean, fused_gate, reference_gate, use_fused
from tests.attention.test_mia import _SPATIAL, _randomise, _TinyNet

FUSABLE = {"mia": MIAMind, "mia_add": MIAMindAdd, "mia_adaptive": MIAMindAdaptive}
GATE_NODE = "ChannelSpatialGateBackward"


@pytest.fixture(autouse=True)
def _pytorch_path(monkeypatch):
    from miamind.attention.mia import _MIABase

    monkeypatch.setattr(_MIABase, "use_kernel", False)


def _gate_inputs(dims: int = 2, dtype=torch.float64, seed: int = 0, n: int = 2, c: int = 4):
    gen = torch.Generator().manual_seed(seed)
    sp = _SPATIAL[dims]
    ones = (1,) * dims
    x = torch.randn(n, c, *sp, generator=gen, dtype=dtype)
    scale = torch.rand(n, c, *ones, generator=gen, dtype=dtype)
    gate = torch.rand(n, 1, *sp, generator=gen, dtype=dtype)
    shift = torch.rand(n, c, *ones, generator=gen, dtype=dtype)
    return [t.requires_grad_(True) for t in (x, scale, gate, shift)]


def _pair(name: str, channels: int = 8, dims: int = 2, dtype=torch.float64, seed: int = 0, **kw):
    """The same randomised layer twice: fused (default) and plain."""
    fused_layer = _randomise(FUSABLE[name](channels, dims=dims, dtype=dtype, **kw), seed)
    plain = FUSABLE[name](channels, dims=dims, dtype=dtype, fused=False, **kw)
    plain.load_state_dict(fused_layer.state_dict())
    return fused_layer, plain


def _run(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor):
    """Output, and gradients of sum(out * weight) w.r.t. x and every parameter."""
    x = x.detach().clone().requires_grad_(True)
    layer.zero_grad(set_to_none=True)
    out = layer(x)
    (out * weight).sum().backward()
    return out, x.grad, {n: p.grad for n, p in layer.named_parameters()}


# --------------------------------------------------------------------------------------------------
# The autograd Functions on their own
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_scale, use_shift", [(True, False), (False, True), (True, True), (False, False)])
def test_gate_function_gradcheck_and_reference(use_scale, use_shift):
    x, scale, gate, shift = _gate_inputs()
    scale = scale if use_scale else None
    shift = shift if use_shift else None
    inputs = [t for t in (x, scale, gate, shift) if t is not None]

    def call(fn):
        def wrapped(*ts):
            it = iter(ts)
            return fn(next(it), next(it) if use_scale else None, next(it), next(it) if use_shift else None)

        return wrapped

    assert torch.autograd.gradcheck(call(fused_gate), inputs, eps=1e-6, atol=1e-6, rtol=1e-6)
    # The create_graph branch of the backward (double backward) is checked too.
    assert torch.autograd.gradgradcheck(call(fused_gate), inputs, eps=1e-6, atol=1e-6, rtol=1e-6)
    out, ref = call(fused_gate)(*inputs), call(reference_gate)(*inputs)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    weight = torch.randn_like(out)
    got = torch.autograd.grad((out * weight).sum(), inputs)
    want = torch.autograd.grad((ref * weight).sum(), inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_broadcast_mean_value_gradient_and_view(dims):
    x = torch.randn(2, 3, *_SPATIAL[dims], dtype=torch.float64, requires_grad=True)
    axes = tuple(range(2, 2 + dims))
    for d in (axes, (1,)):
        torch.testing.assert_close(broadcast_mean(x, d), x.mean(d, keepdim=True), rtol=0, atol=1e-15)
        assert torch.autograd.gradcheck(lambda t, d=d: broadcast_mean(t, d), (x,))
        (g,) = torch.autograd.grad(broadcast_mean(x, d).sum(), x)
        assert 0 in g.stride()  # the point of the Function: an expanded view, not a full-size tensor


def test_fused_gate_bad_shapes_name_them():
    x, scale, gate, shift = _gate_inputs()
    with pytest.raises(ValueError, match=r"channel_scale must have shape \(2, 4, 1, 1\).*got \(2, 4, 1\)"):
        fused_gate(x, scale[..., 0], gate)
    with pytest.raises(ValueError, match=r"spatial_gate must have shape \(2, 1, 5, 6\).*got \(2, 4, 5, 6\)"):
        fused_gate(x, scale, x)
    with pytest.raises(ValueError, match=r"channel_shift must have shape"):
        fused_gate(x, scale, gate, gate)


def test_use_fused_only_while_building_a_graph():
    a, b = torch.randn(2, 3), torch.randn(2, 3, requires_grad=True)
    assert use_fused(a, b) and not use_fused(a)
    with torch.no_grad():
        assert not use_fused(a, b)
    with torch.inference_mode():
        assert not use_fused(torch.randn(2, 3))


# --------------------------------------------------------------------------------------------------
# The layers: fused == plain (outputs and all gradients), gradcheck, which variants fuse
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("name", list(FUSABLE))
def test_layer_fused_matches_plain_outputs_and_gradients(name, dims):
    fused_layer, plain = _pair(name, dims=dims, rd_channels=3, kernel_size=3)
    torch.manual_seed(0)  # fixed data: with these parameters no hidden ReLU unit is dead for any case
    x = torch.randn(2, 8, *_SPATIAL[dims], dtype=torch.float64)
    weight = torch.randn_like(x)
    out_f, gx_f, gp_f = _run(fused_layer, x, weight)
    out_p, gx_p, gp_p = _run(plain, x, weight)
    # The fused path did run (and the plain one did not): the output comes from the gate Function.
    assert type(out_f.grad_fn).__name__ == GATE_NODE and type(out_p.grad_fn).__name__ != GATE_NODE
    torch.testing.assert_close(out_f, out_p, rtol=0, atol=1e-6)
    torch.testing.assert_close(gx_f, gx_p, rtol=0, atol=1e-6)
    assert gp_f.keys() == gp_p.keys() and len(gp_f) >= 6
    for key in gp_f:
        assert gp_f[key] is not None and gp_f[key].abs().sum() > 0, key
        torch.testing.assert_close(gp_f[key], gp_p[key], rtol=0, atol=1e-6, msg=key)


@pytest.mark.parametrize("dims", [1, 3])
@pytest.mark.parametrize("name", list(FUSABLE))
def test_layer_fused_gradcheck(name, dims):
    layer, _ = _pair(name, channels=4, dims=dims, rd_channels=2, kernel_size=3, seed=1)
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in layer.parameters())
    x = torch.randn(2, 4, *_SPATIAL[dims], dtype=torch.float64, requires_grad=True)

    def fn(inp, *ps):
        out = functional_call(layer, dict(zip(names, ps, strict=True)), (inp,))
        assert type(out.grad_fn).__name__ == GATE_NODE
        return out

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("cls", [MIAMindSeq, MIAMindCode])
def test_sequential_variants_have_no_fused_path(cls):
    layer = cls(8)
    assert layer.fused is False and "fused=False" in repr(layer)
    out = layer(torch.randn(2, 8, 5, 6, requires_grad=True))
    assert type(out.grad_fn).__name__ != GATE_NODE


def test_no_grad_path_equals_plain_and_keeps_channels_last():
    layer, plain = _pair("mia")
    x = torch.randn(2, 8, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        out = layer(x)
        assert out.grad_fn is None
        # the fused layer pools with a matmul and runs the spatial conv depthwise over the batch:
        # other summation orders than mean / conv, so last-bit differences only
        torch.testing.assert_close(out, plain(x), rtol=0, atol=1e-12)
        out_cl = layer(x.to(memory_format=torch.channels_last))
        assert out_cl.is_contiguous(memory_format=torch.channels_last)
        # (the pooled means reduce in another order for channels_last: last-bit differences)
        torch.testing.assert_close(out_cl, out, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Saved memory
# --------------------------------------------------------------------------------------------------
def _saved_bytes(layer: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Unique storages saved for backward by layer(x), parameters excluded: all, and without X."""
    from miamind.bench.layer_memory import saved_bytes

    got = saved_bytes(layer, x)
    return {"all": got["saved_bytes"], "extra": got["extra_saved_bytes"]}


@pytest.mark.parametrize("name", list(FUSABLE))
def test_fused_saves_only_x_and_small_tensors(name):
    n, c, h, w = 8, 64, 32, 32
    x = torch.randn(n, c, h, w, requires_grad=True)
    in_bytes = x.numel() * x.element_size()
    fused_layer, plain = FUSABLE[name](c), FUSABLE[name](c, fused=False)
    got, ref = _saved_bytes(fused_layer, x), _saved_bytes(plain, x)
    # Measured (8 x 64 x 32 x 32 float32, 2 MiB input): plain mia / mia_add save X + 1.033 x input,
    # mia_adaptive X + 3.033 x; fused mia / mia_add X + 0.033 x, mia_adaptive X + 0.035 x.
    assert ref["extra"] >= 1.0 * in_bytes  # the plain graph keeps at least one full-size map
    assert got["all"] < ref["all"] - 0.9 * in_bytes
    assert got["extra"] <= 0.05 * in_bytes  # the target is <= 1.05 x
    # What is left is O(N (C + H W)): pooled descriptors, gates and MLP activations.
    assert got["extra"] <= n * 4 * (c + h * w) * x.element_size()
    assert got["all"] - got["extra"] == in_bytes  # X itself is saved (by reference, not copied)


# --------------------------------------------------------------------------------------------------
# Memory formats and dtypes
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("name", list(FUSABLE))
def test_channels_last_output_and_gradient(name, dims):
    fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    layer, _ = _pair(name, channels=16, dims=dims, dtype=torch.float32, kernel_size=3, seed=2)
    x = torch.randn(2, 16, *_SPATIAL[dims])
    weight = torch.randn_like(x)
    out_ref, gx_ref, gp_ref = _run(layer, x, weight)
    # A channels_last upstream gradient (what a channels_last network sends back) ...
    out, gx, gp = _run(layer, x.to(memory_format=fmt), weight.to(memory_format=fmt))
    assert out.is_contiguous(memory_format=fmt) and gx.is_contiguous(memory_format=fmt)
    assert type(out.grad_fn).__name__ == GATE_NODE
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-5)
    for key in gp:
        torch.testing.assert_close(gp[key], gp_ref[key], rtol=1e-4, atol=1e-5, msg=key)
    # ... and a zero-stride one (loss = out.sum()): dL/dX still follows X's layout.
    xc = x.to(memory_format=fmt).requires_grad_(True)
    layer(xc).sum().backward()
    assert xc.grad.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("name", list(FUSABLE))
def test_bf16_autocast_matches_plain(name):
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 16, 3, padding=1)
    layer = FUSABLE[name](16)
    plain = copy.deepcopy(layer)
    plain.fused = False
    x = torch.randn(2, 3, 12, 12)
    results = []
    for attn in (layer, plain):
        model = nn.Sequential(copy.deepcopy(conv), attn)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
        assert y.dtype == torch.bfloat16
        y.float().square().mean().backward()
        results.append((y.float(), [p.grad for p in model.parameters()], type(y.grad_fn).__name__))
    (y_f, g_f, node_f), (y_p, g_p, node_p) = results
    assert node_f == GATE_NODE and node_p != GATE_NODE
    # Same bf16 ops up to the gating step, whose rounding order differs by a few bf16 ulps at most.
    torch.testing.assert_close(y_f, y_p, rtol=2e-2, atol=2e-2)
    for a, b in zip(g_f, g_p, strict=True):
        assert a.dtype == torch.float32 and torch.isfinite(a).all()
        assert (a - b).abs().max().item() <= 0.05 * (b.abs().max().item() + 1e-6)


def test_autocast_with_float32_input_keeps_type_promotion():
    # A float32 X with bf16 gates (autocast runs the gate convs in bf16): the output is float32 like
    # the plain ``X * A``, and every gradient comes back in its tensor's dtype. The backward runs
    # inside the autocast region here, which the fused backward's reductions opt out of.
    layer, plain = _pair("mia", channels=16, dtype=torch.float32, seed=4)
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6, 6)
    weight = torch.randn_like(x)
    _, gx_32, gp_32 = _run(plain, x, weight)  # float32 throughout: the yardstick
    outs = []
    for m in (layer, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outs.append(_run(m, x, weight))
    (y_f, gx_f, gp_f), (y_p, gx_p, gp_p) = outs
    assert y_f.dtype == y_p.dtype == torch.float32 and gx_f.dtype == torch.float32
    torch.testing.assert_close(y_f, y_p, rtol=1e-5, atol=1e-6)
    # The plain graph rounds dL/dA to bf16 (A's dtype) before reducing it to the gates' gradients,
    # the fused one reduces G * X in float32: both are bf16-accurate, neither equals the other.
    # Measured errors (max abs / max |float32 gradient|), fused vs plain: x 0.0035 / 0.0039,
    # fc1.weight 0.019 / 0.022, others <= 0.008 / 0.012.
    grads = {"x": (gx_f, gx_p, gx_32), **{k: (gp_f[k], gp_p[k], gp_32[k]) for k in gp_f}}
    for key, (fused_g, plain_g, ref_g) in grads.items():
        assert fused_g.dtype == torch.float32, key
        scale = ref_g.abs().max()
        err_fused = ((fused_g - ref_g).abs().max() / scale).item()
        err_plain = ((plain_g - ref_g).abs().max() / scale).item()
        assert err_fused <= 0.05 and err_fused <= max(2 * err_plain, 0.01), (key, err_fused, err_plain)


# --------------------------------------------------------------------------------------------------
# torch.compile and ONNX
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_torch_compile_fullgraph_forward_backward_matches_eager():
    torch.manual_seed(5)
    layer = MIAMindAdaptive(16)  # the widest use of the Function: scale and shift
    x = torch.randn(2, 16, 8, 8)
    weight = torch.randn_like(x)
    eager = _run(layer, x, weight)
    assert type(eager[0].grad_fn).__name__ == GATE_NODE
    compiled = torch.compile(layer, backend="inductor", fullgraph=True, dynamic=False)
    out, gx, _ = _run(compiled, x, weight)
    torch.testing.assert_close(out, eager[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gx, eager[1], rtol=1e-4, atol=1e-5)
    for key, p in layer.named_parameters():  # the compiled module shares the layer's parameters
        torch.testing.assert_close(p.grad, eager[2][key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.slow
def test_onnx_export_of_training_mode_layer_uses_plain_ops(tmp_path, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    calls = []
    original = fused.ChannelSpatialGate.forward

    def spy(ctx, *args):
        calls.append(1)
        return original(ctx, *args)

    monkeypatch.setattr(fused.ChannelSpatialGate, "forward", staticmethod(spy))
    torch.manual_seed(6)
    model = _TinyNet(MIAMind).train()  # grad mode on, parameters require grad: the fused condition
    x = torch.randn(2, 3, 16, 16)
    model(x)
    assert len(calls) == 1  # eager training forward goes through the Function
    path = tmp_path / "mia_fused.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["x"], output_names=["logits"])
    assert len(calls) == 1  # ... the export does not
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    assert abs(got - want).max() <= 1e-5


@pytest.mark.parametrize("shape", [(3, 5, 7), (3, 5, 6, 7), (2, 4, 3, 5, 6)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_matmul_mean_equals_mean_for_both_mia_means(shape, layout, dtype):
    from miamind.attention.fused import matmul_mean

    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64)
    if layout == "channels_last" and len(shape) > 3:
        x = x.contiguous(memory_format=torch.channels_last if len(shape) == 4 else torch.channels_last_3d)
    elif layout == "strided":
        x = x.transpose(-1, -2)  # neither layout: falls back to mean
    for dims in ((1,), tuple(range(2, len(shape)))):
        ref = x.mean(dims, keepdim=True)
        got = matmul_mean(x.to(dtype), dims)
        assert got.shape == ref.shape and got.dtype == dtype
        tol = {torch.float64: 1e-12, torch.float32: 1e-6, torch.bfloat16: 2e-2}[dtype]
        torch.testing.assert_close(got.double(), ref, atol=tol, rtol=tol)


def test_matmul_mean_keeps_float32_under_bf16_autocast():
    from miamind.attention.fused import matmul_mean

    x = torch.randn(2, 8, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = matmul_mean(x, (2, 3))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, x.mean((2, 3), keepdim=True))
