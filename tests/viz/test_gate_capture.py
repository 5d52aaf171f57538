"""capture_gates: known-answer layers (weights set so each gate has a closed form) prove that what is
captured is what the layer multiplied by; pick_layer's rule; plot_gate_comparison writes a figure."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from miamind.attention import create_attention
from miamind.attention.comparators import CBAM
from miamind.viz.gate_capture import GateCapture, capture_gates
from miamind.viz.gate_comparison import GateColumn, pick_layer, plot_gate_comparison


def _identity_bn(bn: nn.Module) -> None:
    """Eval BatchNorm that passes its input through unchanged (mean 0, var 1, eps 0, affine 1/0)."""
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0)
    bn.weight.data.fill_(1.0)
    bn.bias.data.zero_()
    bn.eps = 0.0


def _known_cbam(channels: int) -> CBAM:
    """CBAM with w_c = sigmoid(relu(avg) + relu(max)) and w_s = sigmoid(mean over channels of its input)."""
    layer = CBAM(channels, rd_channels=channels).eval()
    with torch.no_grad():
        eye = torch.eye(channels)[:, :, None, None]
        layer.channel.fc1.weight.copy_(eye)
        layer.channel.fc2.weight.copy_(eye)
        conv = layer.spatial.conv.conv
        conv.weight.zero_()
        conv.weight[0, 0, conv.kernel_size[0] // 2, conv.kernel_size[1] // 2] = 1.0  # centre tap on the mean
        _identity_bn(layer.spatial.conv.bn)
    return layer


def test_cbam_capture_is_the_channel_gate_then_the_spatial_gate_of_the_refined_input():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 7)
    layer = _known_cbam(4)
    (capture,) = capture_gates(nn.Sequential(layer), x)
    w_c = torch.sigmoid(F.relu(x.mean((2, 3))) + F.relu(x.amax((2, 3))))
    x1 = x * w_c[:, :, None, None]
    w_s = torch.sigmoid(x1.mean(1))
    assert capture.family == "cbam" and capture.name == "0" and capture.layer == "CBAM"
    torch.testing.assert_close(capture.channel, w_c)
    torch.testing.assert_close(capture.spatial, w_s)
    # sequential: the spatial gate of x itself is a different map
    assert not torch.allclose(capture.spatial, torch.sigmoid(x.mean(1)), atol=1e-3)
    with torch.no_grad():
        assert torch.equal(capture.apply(x), layer(x))
    assert "x * w_c" in capture.meaning


def _known_coordatt(channels: int) -> nn.Module:
    """CoordAttention with a_h = sigmoid(hardswish(mean over w)) and a_w = sigmoid(2 hardswish(mean over h))."""
    layer = create_attention("coordatt", channels, rd_channels=channels).eval()
    with torch.no_grad():
        eye = torch.eye(channels)[:, :, None, None]
        layer.conv1.weight.copy_(eye)
        layer.conv1.bias.zero_()
        _identity_bn(layer.bn1)
        layer.conv_h.weight.copy_(eye)
        layer.conv_h.bias.zero_()
        layer.conv_w.weight.copy_(2 * eye)  # a_w differs from a_h, so a swap would show
        layer.conv_w.bias.zero_()
    return layer


def test_coordatt_pictures_are_the_means_of_the_map_it_multiplied_by():
    torch.manual_seed(1)
    x = torch.randn(2, 8, 5, 7)  # H != W: a transposed gate would not fit
    layer = _known_coordatt(8)
    (capture,) = capture_gates(nn.Sequential(layer), x)
    a_h = torch.sigmoid(F.hardswish(x.mean(3)))  # (N, C, H)
    a_w = torch.sigmoid(2 * F.hardswish(x.mean(2)))  # (N, C, W)
    torch.testing.assert_close(capture.gates["a_h"], a_h)
    torch.testing.assert_close(capture.gates["a_w"], a_w)
    full = a_h[:, :, :, None] * a_w[:, :, None, :]  # the (N, C, H, W) map: x * a_w * a_h
    torch.testing.assert_close(capture.channel, full.mean((2, 3)))
    torch.testing.assert_close(capture.spatial, full.mean(1))
    assert capture.channel.shape == (2, 8) and capture.spatial.shape == (2, 5, 7)
    with torch.no_grad():
        assert torch.equal(capture.apply(x), layer(x))
        torch.testing.assert_close(layer(x), x * full)


def test_mia_capture_is_w_c_and_w_s():
    torch.manual_seed(2)
    x = torch.randn(2, 8, 6, 6)
    layer = create_attention("mia", 8).eval()
    with torch.no_grad():
        layer.fc2.weight.zero_()
        bias = torch.linspace(-2, 2, 8)
        layer.fc2.bias.copy_(bias)
        k = layer.spatial.kernel_size[0]
        layer.spatial.weight.zero_()
        layer.spatial.weight[0, 0, k // 2, k // 2] = 1.0
        layer.spatial.bias.zero_()
    model = nn.Sequential(nn.Identity(), layer)
    (capture,) = capture_gates(model, x)
    assert capture.family == "mia" and capture.name == "1" and capture.layer == "MIAMind"
    torch.testing.assert_close(capture.channel, torch.sigmoid(bias).expand(2, 8))
    torch.testing.assert_close(capture.spatial, torch.sigmoid(x.mean(1)))
    with torch.no_grad():
        assert torch.equal(capture.apply(x), layer(x))


def test_layers_without_gate_pictures_give_nothing_and_modes_are_restored():
    model = nn.Sequential(create_attention("se", 8), create_attention("simam", 8)).train()
    assert capture_gates(model, torch.randn(2, 8, 4, 4)) == []
    assert model.training
    mixed = nn.Sequential(_known_cbam(8), create_attention("coordatt", 8)).train()
    captures = capture_gates(mixed, torch.randn(2, 8, 4, 4))
    assert [c.family for c in captures] == ["cbam", "coordatt"] and all(m.training for m in mixed.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in mixed.modules())


class _ScaledCBAM(CBAM):
    def forward(self, x):
        return 2 * super().forward(x)


def test_a_forward_that_is_not_the_captured_gates_is_refused():
    with pytest.raises(RuntimeError, match="layer '0'.*do not reproduce its output"):
        capture_gates(nn.Sequential(_ScaledCBAM(8)), torch.randn(2, 8, 4, 4))


def _fake(name: str, size: int, channels: int = 4, n: int = 2) -> GateCapture:
    g = torch.Generator().manual_seed(size)
    return GateCapture(
        name=name,
        family="mia",
        layer="MIAMind",
        channel=torch.rand(n, channels, generator=g),
        spatial=torch.rand(n, size, size, generator=g),
        meaning="mia (product): channel = w_c, spatial = w_s",
    )


def test_pick_layer_takes_the_deepest_readable_map():
    captures = [_fake("a", 16), _fake("b", 8), _fake("c", 4)]
    assert pick_layer(captures, (32, 32)) == "b"  # 8 >= 32 / 4; 4 is not
    assert pick_layer(captures, (64, 64)) == "a"  # only a is readable
    assert pick_layer(captures, (256, 256)) == "a"  # none readable: the largest map
    assert pick_layer(captures, (32, 32), "c") == "c"
    with pytest.raises(ValueError, match=r"layer 'd' not found.*a \(16x16\), b \(8x8\)"):
        pick_layer(captures, (32, 32), "d")


def test_plot_gate_comparison_writes_a_figure(tmp_path, png_check):
    images = torch.rand(2, 3, 32, 32)
    columns = [
        GateColumn("mia", [_fake("a", 16), _fake("b", 8)], "a"),
        GateColumn("cbam", [_fake("a", 15), _fake("b", 7)], "b"),
    ]
    out = plot_gate_comparison(images, columns, tmp_path / "cmp.png", row_labels=["x", "y"], title="t")
    png_check(out, min_width=400, min_height=400)
    with pytest.raises(ValueError, match="fewer than the 3 shown"):
        plot_gate_comparison(torch.rand(3, 3, 32, 32), columns, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="no layer 'z'"):
        plot_gate_comparison(images, [GateColumn("mia", [_fake("a", 16)], "z")], tmp_path / "bad.png")
