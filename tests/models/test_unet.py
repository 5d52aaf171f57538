"""unet: output size, attention points (hooks), shape errors, parameter count."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from miamind.attention import MIAMind
from miamind.models import attention_layers, create_model


def _unet(attention="mia", **kw):
    kw.setdefault("width", 8)
    return create_model("unet", num_classes=2, in_chans=1, attention=attention, **kw)


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
@pytest.mark.parametrize("depth, size", [(4, 32), (2, 12)])
def test_output_has_input_size(upsample, depth, size):
    model = _unet("mia", depth=depth, upsample=upsample).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 1, size, size + 2**depth))
    assert y.shape == (2, 2, size, size + 2**depth)


def test_shape_error_names_the_shape():
    model = _unet(None).eval()
    with pytest.raises(ValueError, match=r"divisible by 16, got \(1, 1, 32, 40\)"):
        model(torch.randn(1, 1, 32, 40))
    with pytest.raises(ValueError, match=r"divisible by 4, got \(1, 1, 6, 8\)"):
        _unet(None, depth=2)(torch.randn(1, 1, 6, 8))


@pytest.mark.parametrize(
    "points, names",
    [
        (("decoder",), [f"decoder.{i}.conv.attn" for i in range(4)]),
        (("encoder",), [f"encoder.{i}.attn" for i in range(4)]),
        (("bottleneck",), ["bottleneck.attn"]),
        (("skip",), [f"decoder.{i}.skip_attn" for i in range(4)]),
    ],
)
def test_attention_points(points, names):
    model = _unet("mia", attention_at=points)
    layers = attention_layers(model)
    assert [n for n, _ in layers] == names
    assert all(isinstance(m, MIAMind) for _, m in layers)


def test_default_and_all_points_channels():
    assert [m.channels for _, m in attention_layers(_unet("se"))] == [64, 32, 16, 8]
    model = _unet("se", attention_at=("encoder", "bottleneck", "decoder", "skip"))
    chans = {n: m.channels for n, m in attention_layers(model)}
    assert len(chans) == 13 and chans["bottleneck.attn"] == 128 and chans["encoder.0.attn"] == 8
    assert chans["decoder.0.skip_attn"] == 64 and chans["decoder.3.conv.attn"] == 8
    with pytest.raises(ValueError, match=r"unknown attention_at \['middle'\]"):
        _unet("se", attention_at=("middle",))


def test_placement_with_hooks():
    """decoder attn sees its block's last ReLU; skip attn sees the encoder output; concat = [skip attn, up]."""
    torch.manual_seed(0)
    model = _unet("mia", attention_at=("decoder", "skip", "encoder")).eval()
    rec = {}

    def keep(key):
        return lambda m, i, o: rec.__setitem__(key, (i[0].clone(), o.clone()))

    for i, block in enumerate(model.encoder):
        block.act2.register_forward_hook(keep(("enc_act", i)))
        block.attn.register_forward_hook(keep(("enc_attn", i)))
    for i, block in enumerate(model.decoder):
        block.conv.act2.register_forward_hook(keep(("dec_act", i)))
        block.conv.attn.register_forward_hook(keep(("dec_attn", i)))
        block.skip_attn.register_forward_hook(keep(("skip_attn", i)))
        block.up.register_forward_hook(keep(("up", i)))
        block.conv.register_forward_pre_hook(
            lambda m, inp, i=i: rec.__setitem__(("concat", i), inp[0].clone())
        )
    with torch.no_grad():
        model(torch.randn(2, 1, 32, 32))
    for i in range(4):
        level = 3 - i  # decoder.0 takes the deepest skip
        torch.testing.assert_close(rec[("enc_attn", level)][0], rec[("enc_act", level)][1], rtol=0, atol=0)
        torch.testing.assert_close(rec[("skip_attn", i)][0], rec[("enc_attn", level)][1], rtol=0, atol=0)
        torch.testing.assert_close(rec[("dec_attn", i)][0], rec[("dec_act", i)][1], rtol=0, atol=0)
        expected = torch.cat([rec[("skip_attn", i)][1], rec[("up", i)][1]], dim=1)
        torch.testing.assert_close(rec[("concat", i)], expected, rtol=0, atol=0)


def test_classic_unet_parameter_count():
    model = create_model("unet", num_classes=2, in_chans=1, attention=None)
    assert isinstance(model.decoder[0].up, nn.ConvTranspose2d)
    # Classic U-Net with BN and bias-free 3x3 convs, 1 -> 2 channels.
    assert sum(p.numel() for p in model.parameters()) == 31_036_546
