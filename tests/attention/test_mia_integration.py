"""MIA-Mind inside timm's ResNet, through timm's own ``attn_layer`` hook (``block_args``)."""

from __future__ import annotations

import functools

import pytest
import torch

from miamind.attention import MIAMind, MIAMindAdaptive, MIAMindAdd, MIAMindCode, MIAMindSeq

timm_resnet = pytest.importorskip("timm.models.resnet")


def _resnet(attn_layer) -> torch.nn.Module:
    return timm_resnet.ResNet(
        block=timm_resnet.BasicBlock,
        layers=[1, 1, 1, 1],
        num_classes=10,
        block_args=dict(attn_layer=attn_layer),
        # timm zero-inits each block's bn2 by default, so at init the attention layer would see an
        # all-zero input and W1 no gradient; real, non-zero activations make the gradient check meaningful.
        zero_init_last=False,
    )


def _blocks(model):
    return [m for m in model.modules() if isinstance(m, timm_resnet.BasicBlock)]


def _check_forward_backward(model, cls, hidden_of):
    blocks = _blocks(model)
    assert len(blocks) == 4
    calls = []
    for block in blocks:
        # timm stores the attention layer as ``block.se`` and applies it after bn2.
        assert isinstance(block.se, cls), f"block has {type(block.se).__name__}, expected {cls.__name__}"
        channels = block.conv2.out_channels
        assert block.se.channels == channels and block.se.hidden_channels == hidden_of(channels)
        block.se.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape))

    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 10)
    logits.logsumexp(1).sum().backward()
    assert len(calls) == 4  # every block's attention layer ran
    for block in blocks:
        for name, p in block.se.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, f"no gradient reached {name}"


@pytest.mark.parametrize("cls", [MIAMind, MIAMindAdd, MIAMindSeq, MIAMindCode, MIAMindAdaptive])
def test_timm_resnet_with_class(cls):
    _check_forward_backward(_resnet(cls), cls, lambda c: c // 16)


def test_timm_resnet_with_partial():
    model = _resnet(functools.partial(MIAMind, rd_ratio=1 / 8))
    _check_forward_backward(model, MIAMind, lambda c: c // 8)


def test_timm_resnet_channels_last():
    torch.manual_seed(1)
    model = _resnet(MIAMind).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
