"""Every model: output shapes with several attentions, bf16 autocast, channels_last, determinism, gradients."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F

from miamind.models import attention_layers, create_model

# (name, create_model kwargs, input shape, output shape); small models / inputs keep this file fast.
CASES = {
    "resnet18": (dict(num_classes=10, in_chans=3), (2, 3, 8, 8), (2, 10)),
    "resnet50": (dict(num_classes=10, in_chans=3), (2, 3, 8, 8), (2, 10)),
    "reference_resnet": (dict(num_classes=10, in_chans=3), (2, 3, 8, 8), (2, 10)),
    "fastnet": (dict(num_classes=10, in_chans=3), (2, 3, 32, 32), (2, 10)),
    "unet": (dict(num_classes=2, in_chans=1, width=8), (2, 1, 32, 32), (2, 2, 32, 32)),
    "flowcnn": (dict(num_classes=2, in_chans=1), (2, 1, 77), (2, 2)),
}
ATTENTIONS = [None, "mia", "se", "cbam", "mia_code"]


def _build(name, attention, seed=0, **extra):
    kwargs, in_shape, out_shape = CASES[name]
    torch.manual_seed(seed)
    model = create_model(name, attention=attention, **kwargs, **extra)
    return model, torch.randn(in_shape, generator=torch.Generator().manual_seed(seed + 1)), out_shape


@functools.cache
def _cached(name, attention):
    """Built once per (model, attention) and shared by the read-only tests below (eval mode)."""
    model, x, out_shape = _build(name, attention)
    return model.eval(), x, out_shape


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("name", [n for n in CASES if n != "resnet50"])
def test_output_shape(name, attention):
    model, x, out_shape = _cached(name, attention)
    with torch.no_grad():
        y = model.eval()(x)
    assert y.shape == out_shape and y.dtype == torch.float32 and torch.isfinite(y).all()
    assert (len(attention_layers(model)) > 0) == (attention is not None)


def test_resnet34_output_shape():
    model = create_model("resnet34", num_classes=10, in_chans=3, attention="mia").eval()
    assert len(attention_layers(model)) == 16
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("name", list(CASES))
def test_bf16_autocast_forward(name):
    model, x, out_shape = _cached(name, "mia")
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
    assert y.dtype == torch.bfloat16 and y.shape == out_shape and torch.isfinite(y).all()
    # Same function at bf16 precision: close relative to the logits' spread.
    assert (y.float() - ref).abs().max() <= 0.1 * ref.abs().max() + 1e-3


@pytest.mark.parametrize("name", [n for n in CASES if n != "flowcnn"])
def test_channels_last(name):
    model, x, out_shape = _cached(name, "mia")
    model = copy.deepcopy(model)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        y = model(x.to(memory_format=torch.channels_last))
    assert y.shape == out_shape
    torch.testing.assert_close(y.contiguous(), ref, rtol=1e-4, atol=1e-4)


def test_flowcnn_channels_last_model_and_strided_input():
    """channels_last only exists for 4-D tensors; converting the model is a no-op and strided input works."""
    model, x, _ = _build("flowcnn", "mia")
    model.eval()
    with torch.no_grad():
        ref = model(x)
        y = model.to(memory_format=torch.channels_last)(x.transpose(1, 2).contiguous().transpose(1, 2))
    torch.testing.assert_close(y, ref)


@pytest.mark.parametrize("name", ["resnet18", "fastnet", "unet", "flowcnn"])
def test_deterministic_given_seed(name):
    a, x, _ = _build(name, "mia", seed=3)
    b, _, _ = _build(name, "mia", seed=3)
    c, _, _ = _build(name, "mia", seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)  # the seed matters, so the check above can fail
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n in CASES if n != "resnet50"])
def test_gradients_reach_every_attention_layer(name):
    extra = {"zero_init_last": False} if name == "resnet18" else {}
    model, x, out_shape = _build(name, "mia", **extra)
    y = model.train()(x)
    target = torch.zeros(out_shape[:1] + out_shape[2:], dtype=torch.long)
    F.cross_entropy(y, target).backward()
    layers = attention_layers(model)
    assert layers
    for layer_name, layer in layers:
        for p_name, p in layer.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{layer_name}.{p_name}"
        # Not per parameter: a channel-MLP hidden unit can be dead (ReLU) on a tiny batch, e.g. the
        # single hidden unit of an 8-channel layer; the spatial conv always gets gradient.
        assert layer.spatial.weight.grad.abs().sum() > 0, f"no gradient reached {layer_name}"
