"""flowcnn: 1-D attention over flow features, odd / tiny lengths, 2-D-only attentions rejected."""

from __future__ import annotations

import pytest
import torch

from miamind.attention import create_attention, list_attention
from miamind.models import attention_layers, create_model


def _flow(attention="mia", **kw):
    return create_model("flowcnn", num_classes=2, in_chans=1, attention=attention, **kw)


def _works_in_1d(name: str) -> bool:
    try:
        create_attention(name, 8, dims=1)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("attention", [None, "mia", "se", "cbam", "mia_code"])
@pytest.mark.parametrize("n_features", [77, 83, 5, 2, 1])
def test_shapes_for_any_feature_count(attention, n_features):
    model = _flow(attention).eval()
    with torch.no_grad():
        y = model(torch.randn(3, 1, n_features))
    assert y.shape == (3, 2) and torch.isfinite(y).all()


def test_the_2d_only_comparators_are_refused_and_the_mia_variants_work():
    two_d_only = {n for n in list_attention() if not _works_in_1d(n)}
    assert {"coordatt", "triplet"} <= two_d_only  # so the refusal below is exercised
    assert not {n for n in two_d_only if n.startswith("mia")}


@pytest.mark.parametrize("attention", list_attention())
def test_every_registered_attention(attention):
    if not _works_in_1d(attention):
        with pytest.raises(ValueError, match=f"flowcnn: cannot build attention '{attention}'.*dims=1"):
            _flow(attention)
        return
    torch.manual_seed(0)
    model = _flow(attention).eval()
    layers = attention_layers(model)
    assert [n for n, _ in layers] == ["stages.0.attn", "stages.1.attn", "stages.2.attn"]
    assert all(m.dims == 1 for _, m in layers)
    with torch.no_grad():
        y = model(torch.randn(2, 1, 77))
    assert y.shape == (2, 2) and torch.isfinite(y).all()


def test_attention_after_relu_before_pool():
    torch.manual_seed(0)
    model = _flow("mia").eval()
    rec = {}
    for i, stage in enumerate(model.stages):
        stage.act.register_forward_hook(lambda m, inp, o, i=i: rec.__setitem__(("act", i), o.clone()))
        stage.attn.register_forward_hook(
            lambda m, inp, o, i=i: rec.update({("in", i): inp[0].clone(), ("out", i): o.clone()})
        )
        stage.pool.register_forward_pre_hook(lambda m, inp, i=i: rec.__setitem__(("pool", i), inp[0].clone()))
    with torch.no_grad():
        model(torch.randn(2, 1, 77))
    assert [rec[("in", i)].shape[-1] for i in range(3)] == [77, 39, 20]
    for i in range(3):
        torch.testing.assert_close(rec[("in", i)], rec[("act", i)], rtol=0, atol=0)
        torch.testing.assert_close(rec[("pool", i)], rec[("out", i)], rtol=0, atol=0)
        assert not torch.allclose(rec[("out", i)], rec[("in", i)])


def test_input_shape_error_and_in_chans():
    model = _flow(None)
    with pytest.raises(ValueError, match=r"flowcnn expects input \(N, 1, F\).*got \(2, 77\)"):
        model(torch.randn(2, 77))
    two = create_model("flowcnn", num_classes=3, in_chans=2, attention="mia").eval()
    with torch.no_grad():
        assert two(torch.randn(4, 2, 10)).shape == (4, 3)


def test_parameter_count():
    # conv 3*1*32 + BN 64 + conv 3*32*64 + 128 + conv 3*64*128 + 256 + head 129*2.
    assert sum(p.numel() for p in _flow(None).parameters()) == 31_522
