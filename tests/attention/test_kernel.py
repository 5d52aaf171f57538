"""The C++ CPU kernel behind MIA-Mind's training step (miamind.attention.kernel).

Numerics against the plain layer (``fused=False``: the paper's expressions in plain ops): float64
gradcheck and gradgradcheck; float32 outputs and gradients to 1e-5 of the output scale; bfloat16
no further from a float64 reference than the plain bfloat16 layer is (1.5x for the output and
dL/dx, 2x or 3e-2 for the parameters' gradients); bitwise the same run to run (the kernel's own
passes also for 1 or 2 threads); the input's memory format kept. Where the kernel cannot be built the
layer warns once and trains as before (a real failing compiler, in a fresh process).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch

import miamind.attention.kernel as kernel_module
from miamind.attention import create_attention
from miamind.attention.kernel import kernel

pytestmark = pytest.mark.skipif(kernel() is None, reason="the C++ kernel could not be built here")


@pytest.fixture(autouse=True)
def _kernel_for_every_shape(monkeypatch):
    """The small contiguous shapes below exercise the kernel's channel-first code, which the layer
    by default leaves to the PyTorch path for short rows (see the test of that threshold)."""
    monkeypatch.setattr(kernel_module, "MIN_CHANNEL_FIRST_POSITIONS", 1)


NAMES = ("mia", "mia_add", "mia_adaptive")
# (shape, channels_last); P = 40 * 40 spans two tiles of the kernel
SHAPES = [
    ((2, 4, 5, 3), False),
    ((2, 4, 5, 3), True),
    ((2, 4, 7), False),
    ((1, 4, 3, 2, 3), True),
    ((2, 4, 40, 40), False),
    ((2, 7, 3, 3), True),  # channels-last blocks of 4, 2 and 1 channels
]
# channels_last with 29 = 16 + 8 + 4 + 1 and 99 = 64 + 32 + 2 + 1 channels: every block width;
# channel-first rows of 77 = 4 x 16 + 13 positions (flowcnn's first stage): lanes plus a remainder
FLOAT32_SHAPES = [
    ((8, 32, 16, 16), False),
    ((8, 32, 16, 16), True),
    ((4, 16, 300), False),
    ((8, 32, 77), False),
    ((4, 29, 9, 7), True),
    ((2, 99, 5, 6), True),
    ((2, 29, 3, 4, 5), True),
]


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    if not channels_last:
        return x
    return x.to(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)


def _step(layer: torch.nn.Module, x: torch.Tensor, seed: int = 3):
    """Output, dL/dx and the parameters' gradients of ``sum(layer(x) * G)``."""
    x = x.detach().clone().requires_grad_()
    out = layer(x)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.dtype)
    (out * g).sum().backward()
    grads = {k: p.grad.clone() for k, p in layer.named_parameters()}
    layer.zero_grad(set_to_none=True)
    return out.detach(), x.grad, grads, out.grad_fn


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape, channels_last", SHAPES)
def test_gradcheck_in_float64(name, shape, channels_last):
    layer = create_attention(name, shape[1], dims=len(shape) - 2, kernel_size=3).double()
    x = _layout(torch.randn(shape, dtype=torch.float64), channels_last).requires_grad_()
    params = tuple(layer.parameters())
    assert type(layer(x).grad_fn).__name__ == "MIALayerFunctionBackward"
    fast = x.numel() > 1000  # the two-tile case: the slow mode's full Jacobian takes minutes
    assert torch.autograd.gradcheck(lambda x, *p: layer(x), (x, *params), eps=1e-6, atol=1e-6, fast_mode=fast)


@pytest.mark.parametrize("name", NAMES)
def test_double_backward_differentiates_a_plain_recomputation(name):
    layer = create_attention(name, 4, kernel_size=3).double()
    x = torch.randn(2, 4, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, *p: layer(x), (x, *layer.parameters()), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape, channels_last", FLOAT32_SHAPES)
def test_float32_matches_the_plain_layer(name, shape, channels_last):
    torch.manual_seed(0)
    layer = create_attention(name, shape[1], dims=len(shape) - 2)
    plain = copy.deepcopy(layer)
    plain.fused = False
    x = _layout(torch.randn(shape), channels_last)
    out, gx, grads, fn = _step(layer, x)
    ref_out, ref_gx, ref_grads, _ = _step(plain, x)
    assert type(fn).__name__ == "MIALayerFunctionBackward"
    assert out.stride() == x.stride() and gx.stride() == x.stride()  # the memory format is kept

    def close(a, b):
        return (a - b).abs().max() <= 1e-5 * b.abs().max()

    assert close(out, ref_out) and close(gx, ref_gx)
    assert all(close(grads[k], ref_grads[k]) for k in grads), name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_bfloat16_is_no_further_from_float64_than_the_plain_layer(name, channels_last):
    torch.manual_seed(0)
    layer = create_attention(name, 32)
    x = _layout(torch.randn(4, 32, 12, 12), channels_last)
    exact = _step(copy.deepcopy(layer).double(), x.double())
    kernel_bf16 = _step(copy.deepcopy(layer).bfloat16(), x.bfloat16())
    plain = copy.deepcopy(layer).bfloat16()
    plain.fused = False
    plain_bf16 = _step(plain, x.bfloat16())

    def err(a, b):
        return ((a.double() - b).abs().max() / b.abs().max()).item()

    for i in (0, 1):  # output, dL/dx
        assert err(kernel_bf16[i], exact[i]) <= max(1.5 * err(plain_bf16[i], exact[i]), 1e-2)
    for k in exact[2]:
        # small parameter gradients (a bias's sum of 576 bf16 products) carry more rounding either way
        assert err(kernel_bf16[2][k], exact[2][k]) <= max(2 * err(plain_bf16[2][k], exact[2][k]), 3e-2), k


@pytest.mark.parametrize("channels_last", [False, True])
def test_bitwise_the_same_run_to_run(channels_last):
    torch.manual_seed(0)
    layer = create_attention("mia", 32)
    x = _layout(torch.randn(4, 32, 48, 48), channels_last)  # 2304 positions: three tiles
    first, second = _step(layer, x), _step(layer, x)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert all(torch.equal(first[2][k], second[2][k]) for k in first[2])


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_kernels_passes_give_the_same_bits_for_any_thread_count(channels_last):
    """Fixed tiles reduced in a fixed order (the gate networks are PyTorch's: oneDNN may not be)."""
    ext = kernel()
    gen = torch.Generator().manual_seed(0)
    x = _layout(torch.randn(4, 32, 48, 48, generator=gen), channels_last)
    g = _layout(torch.randn(4, 32, 48, 48, generator=gen), channels_last)
    c, s, b = (
        torch.rand(4, 32, generator=gen),
        torch.rand(4, 48 * 48, generator=gen),
        torch.rand(4, 32, generator=gen),
    )
    threads = torch.get_num_threads()
    try:
        runs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            runs.append(
                [
                    *ext.dual_sum(x),
                    ext.gate(x, c, s, b),
                    *ext.gate_grads(g, x, c, s),
                    ext.gate_input_grad(g, x, c, s, b, c, s),
                ]
            )
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_bf16_autocast_with_a_float32_input_keeps_its_dtype_and_the_plain_values():
    torch.manual_seed(0)
    layer = create_attention("mia", 16)
    plain = copy.deepcopy(layer)
    plain.fused = False
    x = torch.randn(4, 16, 12, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, gx, _, fn = _step(layer, x)
        ref, ref_gx, _, _ = _step(plain, x)
    assert type(fn).__name__ == "MIALayerFunctionBackward"
    assert out.dtype == ref.dtype == torch.float32 and gx.dtype == torch.float32
    # the gates are bf16 either way; the kernel multiplies in float32, the plain layer in bf16 then float32
    assert (out - ref).abs().max() <= 1e-2 * ref.abs().max() and (
        gx - ref_gx
    ).abs().max() <= 2e-2 * ref_gx.abs().max()


def test_the_kernel_only_runs_while_training_on_the_cpu():
    layer = create_attention("mia", 8)
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        assert layer(x).grad_fn is None
    frozen = copy.deepcopy(layer).requires_grad_(False)
    assert frozen(x).grad_fn is None  # nothing to differentiate: no graph, no kernel
    assert type(layer(x).grad_fn).__name__ == "MIALayerFunctionBackward"  # parameters need gradients
    assert type(layer(torch.randn(0, 8, 6, 6)).grad_fn).__name__ != "MIALayerFunctionBackward"
    seq = create_attention("mia_seq", 8)  # a sequential variant: not a map c s + b
    assert type(seq(x).grad_fn).__name__ != "MIALayerFunctionBackward"


def test_short_channel_first_rows_keep_the_pytorch_path(monkeypatch):
    monkeypatch.setattr(kernel_module, "MIN_CHANNEL_FIRST_POSITIONS", 128)
    for x, kernel_path in (
        (torch.randn(2, 8, 127), False),  # contiguous, 127 positions
        (torch.randn(2, 8, 128), True),
        (torch.randn(2, 8, 6, 6).to(memory_format=torch.channels_last), True),  # reduced over channels
    ):
        layer = create_attention("mia", 8, dims=x.dim() - 2)
        out = layer(x)
        assert (type(out.grad_fn).__name__ == "MIALayerFunctionBackward") == kernel_path, x.shape
        plain = copy.deepcopy(layer)
        plain.fused = False
        assert torch.allclose(out, plain(x), atol=1e-5)


def _fresh_process(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


TRAIN_ONE_STEP = """
import warnings, torch
warnings.simplefilter("always")
from miamind.attention import create_attention
with warnings.catch_warnings(record=True) as caught:
    layer = create_attention("mia", 8)
    for _ in range(3):
        out = layer(torch.randn(2, 8, 6, 6))
        out.sum().backward()
kernel = [w for w in caught if "kernel" in str(w.message)]
print(len(kernel), type(out.grad_fn).__name__, str(kernel[0].message) if kernel else "")
"""


def test_without_a_compiler_the_layer_warns_once_and_trains(tmp_path):
    done = _fresh_process(TRAIN_ONE_STEP, {"CXX": "/bin/false", "TORCH_EXTENSIONS_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    count, grad_fn, message = done.stdout.strip().split(" ", 2)
    assert count == "1" and grad_fn != "MIALayerFunctionBackward", done.stdout
    assert "could not be built" in message and "PyTorch path" in message


def test_the_kernel_can_be_turned_off():
    done = _fresh_process(TRAIN_ONE_STEP, {"MIAMIND_KERNEL": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    count, grad_fn, _ = (done.stdout.strip() + " ").split(" ", 2)
    assert count == "0" and grad_fn != "MIALayerFunctionBackward"


@pytest.mark.parametrize(
    "shape, k",
    [
        ((3, 1, 9, 11), (7, 7)),
        ((2, 1, 5, 4), (3, 5)),
        ((4, 1, 20), (7,)),
        ((2, 1, 3), (7,)),
        ((2, 1, 2, 2), (7, 7)),
    ],
)
def test_spatial_conv_weight_gradient_equals_the_convolution(shape, k):
    from miamind.attention.kernel import same_conv_weight_grad
    from miamind.attention.spatial_conv import weight_grad_by_conv

    gen = torch.Generator().manual_seed(0)
    m, grad = (
        torch.randn(shape, generator=gen, dtype=torch.float64),
        torch.randn(shape, generator=gen, dtype=torch.float64),
    )
    padding = tuple(kk // 2 for kk in k)
    got = same_conv_weight_grad(m, grad, padding)
    assert got.shape == (1, 1, *k)
    torch.testing.assert_close(got, weight_grad_by_conv(m, grad, padding), rtol=1e-12, atol=1e-12)
    # float32 and bfloat16 maps accumulate in float32
    for dtype in (torch.float32, torch.bfloat16):
        low = same_conv_weight_grad(m.to(dtype), grad.to(dtype), padding)
        assert low.dtype == torch.float32
        torch.testing.assert_close(
            low.double(),
            weight_grad_by_conv(m.to(dtype), grad.to(dtype), padding).double(),
            rtol=1e-5,
            atol=1e-5,
        )


@pytest.mark.parametrize(
    "shape, k",
    [
        ((3, 1, 9, 11), (7, 7)),
        ((2, 1, 5, 4), (3, 5)),
        ((2, 1, 70, 130), (7, 7)),  # rows longer than one block of positions
        ((4, 1, 20), (7,)),
        ((2, 1, 3), (7,)),
        ((2, 1, 2, 2), (7, 7)),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_spatial_conv_equals_the_convolution_and_gives_the_same_gradients(shape, k, bias):
    from miamind.attention.kernel import same_conv, same_conv_weight_grad
    from miamind.attention.spatial_conv import SameSingleChannelConv, depthwise

    gen = torch.Generator().manual_seed(0)
    m = torch.randn(shape, generator=gen, dtype=torch.float64)
    weight = torch.randn(1, 1, *k, generator=gen, dtype=torch.float64)
    b = torch.randn(1, generator=gen, dtype=torch.float64) if bias else None
    padding = tuple(kk // 2 for kk in k)
    got = same_conv(m, weight, b, padding)
    assert got.shape == m.shape and got.dtype == m.dtype
    torch.testing.assert_close(got, depthwise(m, weight, b, padding), rtol=1e-12, atol=1e-12)
    # float32 sums, rounded once to the map's dtype: as oneDNN's convolution in that dtype
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 1e-2)):
        args = (m.to(dtype), weight.to(dtype), None if b is None else b.to(dtype), padding)
        low = same_conv(*args)
        assert low.dtype == dtype
        torch.testing.assert_close(low.double(), depthwise(*args).double(), rtol=tol, atol=tol)
    if m.numel() > 200:
        return  # gradcheck's full Jacobian is slow on a large map; the values above cover it
    params = [weight.clone().requires_grad_()] + ([b.clone().requires_grad_()] if bias else [None])
    assert torch.autograd.gradcheck(
        lambda t, w, bb: SameSingleChannelConv.apply(t, w, bb, padding, same_conv_weight_grad, same_conv),
        (m.clone().requires_grad_(), *params),
    )
