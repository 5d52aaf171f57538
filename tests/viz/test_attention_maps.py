"""capture_attention returns the gates the MIA layers really multiplied by; plot_attention_maps draws them."""

import warnings

import pytest
import torch
import torch.nn as nn

from miamind.attention import (
    MIAMind,
    MIAMindAdaptive,
    MIAMindAdd,
    MIAMindCode,
    MIAMindSeq,
    create_attention,
)
from miamind.viz import AttentionCapture, capture_attention, plot_attention_maps
from miamind.viz.attention_maps import _select_layers

VARIANTS = [MIAMind, MIAMindAdd, MIAMindSeq, MIAMindCode, MIAMindAdaptive]


def _model(attention: nn.Module, in_chs=3, chs=16) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(in_chs, chs, 3, padding=1), attention, nn.Conv2d(chs, 8, 3, padding=1))


def _record_io(module: nn.Module):
    """The input and output of ``module``'s forward, recorded independently of capture_attention."""
    seen = {}

    def hook(_, args, output):
        seen["x"], seen["out"] = args[0].detach().clone(), output.detach().clone()

    return seen, module.register_forward_hook(hook)


def _assert_no_hooks(model: nn.Module) -> None:
    for name, module in model.named_modules():
        assert not module._forward_pre_hooks, f"pre-hook left on {name!r}"
        assert not module._forward_hooks, f"forward hook left on {name!r}"


@pytest.mark.parametrize("cls", VARIANTS, ids=lambda c: c.__name__)
def test_captured_gates_rebuild_the_layer_output_exactly(cls):
    torch.manual_seed(1)
    attention = cls(16, rd_channels=4)
    model = _model(attention)
    x = torch.randn(3, 3, 10, 12)
    seen, handle = _record_io(attention)
    captures = capture_attention(model, x)
    handle.remove()
    _assert_no_hooks(model)

    assert [c.name for c in captures] == ["1"]
    cap = captures[0]
    assert cap.w_c.shape == (3, 16) and cap.w_s.shape == (3, 10, 12)
    assert cap.w_c.min() > 0 and cap.w_c.max() < 1 and cap.w_s.min() > 0 and cap.w_s.max() < 1
    assert not cap.w_c.requires_grad and not cap.w_s.requires_grad
    xin, out = seen["x"], seen["out"]
    w_c, w_s = cap.w_c[:, :, None, None], cap.w_s[:, None]
    # Written out here (not via AttentionCapture.apply) in each variant's published form.
    if cls is MIAMind:
        assert cap.fusion == "product"
        rebuilt = xin * (w_c * w_s)  # the paper: X * (w_c * w_s)
    elif cls is MIAMindAdd:
        assert cap.fusion == "sum"
        rebuilt = xin * (w_c + w_s)
    elif cls in (MIAMindSeq, MIAMindCode):
        assert cap.fusion == "sequential"
        rebuilt = (xin * w_c) * w_s  # X1 = X * w_c, out = X1 * w_s
        # The spatial gate is that of X1, not of X: what the layer used, not spatial_gate(x).
        with torch.no_grad():
            assert torch.equal(attention.spatial_gate(xin * w_c)[:, 0], cap.w_s)
            assert not torch.allclose(attention.spatial_gate(xin)[:, 0], cap.w_s)
    else:
        assert cap.fusion == "adaptive"
        g = torch.sigmoid(attention.theta.detach())
        assert torch.equal(cap.mix, g)
        rebuilt = xin * (g * (w_c * w_s) + (1 - g) * (w_c + w_s) * 0.5)
    assert torch.equal(rebuilt, out)
    assert torch.equal(cap.apply(xin), out)


def test_one_dimensional_layer():
    torch.manual_seed(0)
    attention = MIAMindSeq(8, dims=1)
    model = nn.Sequential(nn.Conv1d(1, 8, 3, padding=1), attention)
    seen, handle = _record_io(attention)
    (cap,) = capture_attention(model, torch.randn(2, 1, 20))
    handle.remove()
    assert cap.w_c.shape == (2, 8) and cap.w_s.shape == (2, 20)
    assert torch.equal((seen["x"] * cap.w_c[:, :, None]) * cap.w_s[:, None], seen["out"])


def test_mode_restored_model_evaluated_and_output_returned():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), MIAMind(16), nn.Conv2d(16, 4, 1), nn.Dropout(0.5)
    )
    model.train()
    model[3].eval()  # a mixed state must come back as it was, not as all-train
    modes = [m.training for m in model.modules()]
    running_mean = model[1].running_mean.clone()
    x = torch.randn(2, 3, 8, 8)
    captures, output = capture_attention(model, x, return_output=True)
    assert [m.training for m in model.modules()] == modes
    # Eval mode during the capture: BatchNorm statistics untouched, dropout off (output deterministic).
    assert torch.equal(model[1].running_mean, running_mean)
    model.eval()
    with torch.no_grad():
        assert torch.equal(output, model(x))
    assert len(captures) == 1


def test_hooks_removed_and_mode_restored_when_forward_fails():
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), MIAMind(16), nn.Flatten(), nn.Linear(5, 2))
    model.train()
    with pytest.raises(RuntimeError):
        capture_attention(model, torch.randn(2, 3, 8, 8))
    _assert_no_hooks(model)
    assert all(m.training for m in model.modules())


def test_non_mia_attentions_skipped_and_repeated_calls_named():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.se = create_attention("se", 8)
            self.cbam = create_attention("cbam", 8)
            self.att = MIAMind(8)

        def forward(self, x):
            return self.att(self.cbam(self.att(self.se(x))))

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Twice())
    captures = capture_attention(model, torch.randn(2, 3, 6, 6))
    assert [c.name for c in captures] == ["1.att", "1.att#1"]
    assert not torch.equal(captures[0].w_c, captures[1].w_c)  # two calls, two inputs
    no_mia = nn.Sequential(nn.Conv2d(3, 8, 1), create_attention("eca", 8))
    assert capture_attention(no_mia, torch.randn(1, 3, 4, 4)) == []


def test_unknown_subclass_warns_and_tampered_forward_is_caught():
    class Custom(MIAMind):
        def forward_gated(self, x):
            return x * self.channel_gate(x)

    model = _model(Custom(16))
    with pytest.warns(UserWarning, match="overrides forward_gated"):
        assert capture_attention(model, torch.randn(1, 3, 6, 6)) == []

    # A forward patched on the instance escapes the class check; the output check still catches it.
    attention = MIAMind(16)
    attention.forward_gated = lambda x: x * attention.channel_gate(x)
    with pytest.raises(RuntimeError, match="do not reproduce its output"):
        capture_attention(_model(attention), torch.randn(1, 3, 6, 6))


def test_bf16_autocast_capture():
    model = _model(MIAMindSeq(16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            (cap,) = capture_attention(model, torch.randn(2, 3, 8, 8))
    assert cap.w_c.dtype == torch.bfloat16 and cap.w_s.shape == (2, 8, 8)


def test_layer_selection_spreads_over_depth():
    caps = [AttentionCapture(f"l{i}", torch.rand(1, 4), torch.rand(1, 4, 4)) for i in range(7)]
    caps.insert(2, AttentionCapture("flat", torch.rand(1, 4), torch.rand(1, 9)))  # 1-D: not drawable
    assert [c.name for c in _select_layers(caps, 3)] == ["l0", "l3", "l6"]
    assert [c.name for c in _select_layers(caps[:4], 4)] == ["l0", "l1", "l2"]
    with pytest.raises(ValueError, match="no layer with a 2-D spatial gate"):
        _select_layers([caps[2]], 4)


def _cifar_like_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        MIAMind(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        MIAMindSeq(32),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1),
        MIAMindCode(32),
    )


def test_plot_rgb_with_denormalize(tmp_path, png_check):
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    raw = torch.rand(3, 3, 32, 32)
    x = (raw - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    captures = capture_attention(_cifar_like_model(), x)
    out = plot_attention_maps(
        x,
        captures,
        tmp_path / "att" / "cifar.png",
        class_names=["cat", "dog"],
        denormalize=(mean, std),
        labels=[0, 1, 1],
        predictions=[0, 0, 1],
    )
    png_check(out, min_width=700, min_height=700)


def test_plot_grey_em_slices(tmp_path, png_check):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), MIAMind(8), nn.Conv2d(8, 8, 3, stride=2, padding=1), MIAMindAdd(8)
    )
    x = torch.randn(2, 1, 40, 40)
    out = plot_attention_maps(x, capture_attention(model, x), tmp_path / "em.png", max_layers=1)
    pixels = png_check(out, min_width=300, min_height=500)
    assert pixels.shape[1] < 700  # input + one layer


def test_plot_input_errors(tmp_path):
    x = torch.rand(2, 3, 16, 16)
    captures = capture_attention(_cifar_like_model(), x)
    with pytest.raises(ValueError, match="fewer than the 3 shown"):
        plot_attention_maps(torch.rand(3, 3, 16, 16), captures, tmp_path / "a.png")
    with pytest.raises(ValueError, match="denormalize: mean and std need 1 or 3 values"):
        plot_attention_maps(x, captures, tmp_path / "a.png", denormalize=((0.5, 0.5), (0.2, 0.2)))
    with pytest.raises(ValueError, match=r"images: expected \(N, 3, H, W\)"):
        plot_attention_maps(torch.rand(2, 2, 16, 16), captures, tmp_path / "a.png")
    with pytest.raises(ValueError, match="no layer with a 2-D spatial gate"):
        plot_attention_maps(x, [], tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()


def test_gates_come_from_hooks_not_recomputation():
    """Each layer computes its gates once per call; the capture adds no gate computation of its own."""
    torch.manual_seed(0)
    attention = MIAMind(16, gate_layer="hard_sigmoid")  # any gate module: the hooks take its output
    calls = {"channel_gate": 0}
    original = attention.channel_gate

    def counted(x):
        calls["channel_gate"] += 1
        return original(x)

    attention.channel_gate = counted
    (cap,) = capture_attention(_model(attention), torch.randn(2, 3, 6, 6))
    assert calls["channel_gate"] == 1
    assert cap.w_c.shape == (2, 16) and cap.w_s.shape == (2, 6, 6)
    assert cap.w_s.max() <= 1 and cap.w_s.min() >= 0  # hard sigmoid's range, not a re-derived sigmoid
