"""fastnet (airbench94 style): layout, parameter names, placement, logit scale, whitening init."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from miamind.models import attention_layers, create_model, init_whitening


def _net(attention="mia", **kw):
    return create_model("fastnet", num_classes=10, in_chans=3, attention=attention, **kw)


def test_parameter_names_are_stable():
    names = [n for n, _ in _net(None).named_parameters()]
    expected = ["stem.conv.weight", "stem.conv.bias"]
    for g in range(3):
        expected += [
            f"groups.{g}.conv1.weight",
            f"groups.{g}.bn1.weight",
            f"groups.{g}.bn1.bias",
            f"groups.{g}.conv2.weight",
            f"groups.{g}.bn2.weight",
            f"groups.{g}.bn2.bias",
        ]
    assert names == expected + ["head.weight"]
    mia_names = [n for n, _ in _net("mia").named_parameters() if ".attn." in n]
    assert mia_names[:6] == [
        f"groups.0.attn.{p}"
        for p in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "spatial.weight", "spatial.bias")
    ]


def test_airbench_layout_and_init():
    model = _net(None)
    assert model.stem.conv.kernel_size == (2, 2) and model.stem.conv.out_channels == 24
    assert model.stem.conv.padding == (0, 0) and model.stem.conv.bias is not None
    assert [g.conv2.out_channels for g in model.groups] == [64, 256, 256]
    assert model.head.bias is None and model.logit_scale == pytest.approx(1 / 9)
    bn = model.groups[0].bn1
    assert bn.eps == 1e-12 and bn.momentum == pytest.approx(0.4)
    assert not bn.weight.requires_grad and bn.bias.requires_grad
    assert _net(None, bn_train_gamma=True).groups[0].bn1.weight.requires_grad
    # Dirac init of the first in_channels filters: conv1 of group 1 maps channel i to output i.
    w = model.groups[1].conv1.weight
    assert torch.equal(w[:64, :, 1, 1], torch.eye(64)) and w[:64].abs().sum() == 64


def test_attention_after_each_group_and_sizes():
    torch.manual_seed(0)
    model = _net("mia").eval()
    names = [n for n, _ in attention_layers(model)]
    assert names == ["groups.0.attn", "groups.1.attn", "groups.2.attn"]
    rec = {}
    for i, group in enumerate(model.groups):
        group.bn2.register_forward_hook(lambda m, inp, o, i=i: rec.__setitem__(("bn2", i), o.clone()))
        group.attn.register_forward_hook(
            lambda m, inp, o, i=i: rec.update({("in", i): inp[0].clone(), ("out", i): o.clone()})
        )
        group.register_forward_hook(lambda m, inp, o, i=i: rec.__setitem__(("group", i), o.clone()))
    head_in = {}
    model.head.register_forward_pre_hook(lambda m, inp: head_in.__setitem__("x", inp[0].clone()))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert [rec[("in", i)].shape[-1] for i in range(3)] == [15, 7, 3]
    for i in range(3):
        torch.testing.assert_close(rec[("in", i)], F.gelu(rec[("bn2", i)]))  # after the second GELU
        torch.testing.assert_close(rec[("group", i)], rec[("out", i)], rtol=0, atol=0)  # last op of the group
    torch.testing.assert_close(head_in["x"], rec[("out", 2)].amax((2, 3)))  # global max-pool -> head


def test_logit_scale_multiplies_logits():
    torch.manual_seed(0)
    a = _net("mia").eval()
    b = _net("mia", logit_scale=1.0).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(b(x), 9 * a(x))


def test_widths_kwarg_and_small_input_error():
    model = _net("se", widths=(8, 16, 16)).eval()
    assert [m.channels for _, m in attention_layers(model)] == [8, 16, 16]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 9, 9)).shape == (2, 10)
        with pytest.raises(ValueError, match=r"fastnet expects .*H, W >= 9, got \(2, 3, 8, 8\)"):
            model(torch.randn(2, 3, 8, 8))


def test_init_whitening_whitens_training_patches():
    torch.manual_seed(0)
    # Correlated channels, so whitening has something to undo.
    base = torch.randn(64, 1, 16, 16)
    images = torch.cat([base, 0.8 * base + 0.2 * torch.randn_like(base), torch.randn_like(base)], dim=1)
    model = _net(None)
    init_whitening(model, images, eps=1e-9)  # airbench's 5e-4 would shrink the smallest directions
    conv = model.stem.conv
    assert not conv.weight.requires_grad
    with torch.no_grad():
        y = F.conv2d(images.double(), conv.weight.double())  # (N, 24, 15, 15), no bias
    y = y.permute(0, 2, 3, 1).reshape(-1, 24)
    half = y[:, :12]
    second_moment = half.T @ half / half.shape[0]
    # E[y y^T] = diag(lambda / (lambda + eps)) = identity for eps -> 0 (float32 weights: atol 1e-3).
    torch.testing.assert_close(second_moment, torch.eye(12, dtype=torch.float64), atol=1e-3, rtol=0)
    torch.testing.assert_close(y[:, 12:], -half)
    # Default eps (5e-4): diag(lambda / (lambda + eps)), largest eigenvalue first as in airbench.
    init_whitening(model, images)
    with torch.no_grad():
        y = (
            F.conv2d(images.double(), model.stem.conv.weight.double())
            .permute(0, 2, 3, 1)
            .reshape(-1, 24)[:, :12]
        )
    diag = torch.diagonal(y.T @ y / y.shape[0])
    assert torch.all(diag[:-1] >= diag[1:] - 1e-6) and diag[-1] < 0.99


def test_init_whitening_rejects_bad_input():
    with pytest.raises(ValueError, match="2 \\* in_chans \\* k \\* k = 24"):
        init_whitening(_net(None, whiten_width=32), torch.randn(4, 3, 8, 8))
    with pytest.raises(ValueError, match="float tensor"):
        init_whitening(_net(None), torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(4, 1, 8, 8\)"):
        init_whitening(_net(None), torch.randn(4, 1, 8, 8))


def _airbench94_reference() -> torch.nn.Sequential:
    """airbench94's network written out as one Sequential (Jordan 2024), for a functional check."""
    nn = torch.nn

    def group(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(cout, eps=1e-12, momentum=0.4),
            nn.GELU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout, eps=1e-12, momentum=0.4),
            nn.GELU(),
        ]

    return nn.Sequential(
        nn.Conv2d(3, 24, 2, bias=True),
        nn.GELU(),
        *group(24, 64),
        *group(64, 256),
        *group(256, 256),
        nn.MaxPool2d(3),
        nn.Flatten(),
        nn.Linear(256, 10, bias=False),
    )


def test_fastnet_computes_what_airbench94_computes():
    # Same tensors in the same order -> same function, in training (batch statistics, running
    # averages updated alike) and in evaluation mode.
    torch.manual_seed(0)
    model, ref = _net(None), _airbench94_reference()
    ours, theirs = list(model.state_dict().values()), list(ref.state_dict().values())
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    ref.load_state_dict(dict(zip(ref.state_dict().keys(), ours, strict=True)))
    x = torch.randn(8, 3, 32, 32)
    torch.testing.assert_close(model(x), ref(x) / 9)
    torch.testing.assert_close(list(model.state_dict().values()), list(ref.state_dict().values()))
    model.eval(), ref.eval()
    torch.testing.assert_close(model(x), ref(x) / 9)
