"""The spatial gate's 1 -> 1 channel convolution and its hand-written backward (attention/spatial_conv.py)."""

from __future__ import annotations

import pytest
import torch

from miamind.attention import create_attention, spatial_conv
from miamind.attention.spatial_conv import SameSingleChannelConv, single_channel_conv

_CONVS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def _grads(fn, conv, m, g):
    out = fn(m)
    return out, torch.autograd.grad(out, [m, *conv.parameters()], g)


@pytest.mark.parametrize(
    "dims,spatial", [(1, (40,)), (2, (5, 7)), (2, (16, 20)), (2, (33, 40)), (3, (4, 5, 6))]
)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kernel", [3, 7])
def test_single_channel_conv_matches_the_conv_in_values_and_gradients(dims, spatial, bias, kernel):
    torch.manual_seed(0)
    conv = _CONVS[dims - 1](1, 1, kernel, padding=kernel // 2, bias=bias).double()
    m = torch.randn(3, 1, *spatial, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 1, *spatial, dtype=torch.float64)
    ref, ref_grads = _grads(conv, conv, m, g)
    out, grads = _grads(lambda t: single_channel_conv(conv, t), conv, m, g)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    if m.numel() > 500:
        return  # gradcheck is slow on a large map; the comparison above covers it
    args = (conv.weight.detach().clone().requires_grad_(), None)
    if bias:
        args = (args[0], conv.bias.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(
        lambda t, w, b: SameSingleChannelConv.apply(t, w, b, conv.padding), (m, *args)
    )


def test_the_same_convolution_takes_the_function_and_others_do_not(monkeypatch):
    calls = []
    original = SameSingleChannelConv.forward

    def spy(ctx, *args):
        calls.append(1)
        return original(ctx, *args)

    monkeypatch.setattr(SameSingleChannelConv, "forward", staticmethod(spy))
    m = torch.randn(4, 1, 9, 9, requires_grad=True)
    single_channel_conv(torch.nn.Conv2d(1, 1, 7, padding=3), m)
    assert len(calls) == 1
    for other in (
        torch.nn.Conv2d(1, 1, 4, padding=2),  # even kernel: the output grows by one
        torch.nn.Conv2d(1, 1, 7, padding=3, stride=2),
        torch.nn.Conv2d(1, 1, 7, padding=6, dilation=2),
        torch.nn.Conv2d(1, 1, 7, padding=1),
    ):
        out = single_channel_conv(other, m)
        torch.testing.assert_close(out, other(m), rtol=1e-6, atol=1e-6)
        out.sum().backward()
    assert len(calls) == 1
    with torch.no_grad():  # inference: no graph, the plain depthwise convolution
        single_channel_conv(torch.nn.Conv2d(1, 1, 7, padding=3), m)
    assert len(calls) == 1


def test_single_channel_conv_leaves_other_convs_to_themselves():
    conv = torch.nn.Conv2d(2, 1, 7, padding=3)  # mia_code's 2 -> 1 conv: not a single-channel one
    x = torch.randn(4, 2, 9, 9)
    torch.testing.assert_close(single_channel_conv(conv, x), conv(x), rtol=0, atol=0)


def test_under_bf16_autocast_it_computes_like_the_conv_and_returns_grads_in_input_dtypes():
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(1, 1, 7, padding=3)
    m = torch.randn(64, 1, 16, 16, requires_grad=True)
    g = torch.randn(64, 1, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = conv(m)
        out = single_channel_conv(conv, m)
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.float(), rtol=2e-2, atol=2e-2)
    grads = torch.autograd.grad(out, [m, conv.weight, conv.bias], g.to(out.dtype))
    ref_grads = torch.autograd.grad(ref, [m, conv.weight, conv.bias], g.to(ref.dtype))
    assert [t.dtype for t in grads] == [torch.float32] * 3
    for a, b in zip(grads, ref_grads, strict=True):
        # both from bf16 operands; the weight sum over 16,384 products is accumulated in float32 here
        torch.testing.assert_close(a, b.to(a.dtype), rtol=2e-2, atol=2e-1)


def test_a_mia_layer_trains_through_the_function(monkeypatch):
    seen = []
    monkeypatch.setattr(spatial_conv, "_is_same_conv", lambda conv: seen.append(conv) or True)
    layer = create_attention("mia", 16)
    x = torch.randn(4, 16, 8, 8, requires_grad=True)
    layer(x).sum().backward()
    assert seen == [layer.spatial] and layer.spatial.weight.grad is not None
