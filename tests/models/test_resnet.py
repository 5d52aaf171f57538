"""CIFAR ResNets on timm: stem, attention placement (hooks), attention init, parameter counts."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

from miamind.attention import MIAMind, create_attention, list_attention
from miamind.models import CifarResNet, attention_layers, create_model


def _tiny(attention="mia", block=BasicBlock, **kw) -> CifarResNet:
    """One block per stage: the same code paths as resnet18/50, a fraction of the build time."""
    return CifarResNet(block, (1, 1, 1, 1), num_classes=10, in_chans=3, attention=attention, **kw)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet50_parameter_count_and_bottleneck():
    model = create_model("resnet50", num_classes=10, in_chans=3)
    # torchvision/timm ResNet-50 has 25,557,032 parameters; CIFAR stem (3x3 instead of 7x7 conv:
    # -7,680) and a 10-class head (-2,028,510) give 23,520,842.
    assert _n_params(model) == 23_520_842
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16
    assert model.fc.in_features == 2048


def test_resnet18_parameter_count():
    # The usual "CIFAR ResNet-18" count (e.g. kuangliu/pytorch-cifar).
    model = create_model("resnet18", num_classes=10, in_chans=3)
    assert _n_params(model) == 11_173_962
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 8


def test_cifar_stem_keeps_resolution():
    model = _tiny(None).eval()
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.bias is None
    assert isinstance(model.maxpool, nn.Identity)
    sizes = {}
    for name in ("layer1", "layer2", "layer3", "layer4"):
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: sizes.__setitem__(name, o.shape[-1])
        )
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert sizes == {"layer1": 32, "layer2": 16, "layer3": 8, "layer4": 4}
    assert [f["reduction"] for f in model.feature_info] == [1, 1, 2, 4, 8]


@pytest.mark.parametrize("attention", list_attention())
def test_every_registered_attention_in_resnet18(attention):
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, in_chans=3, attention=attention).eval()
    layers = attention_layers(model)
    expected = type(create_attention(attention, 64))
    assert len(layers) == 8 and all(type(m) is expected for _, m in layers)
    assert [n for n, _ in layers][:2] == ["layer1.0.se", "layer1.1.se"]
    with torch.no_grad():
        y = model(torch.randn(2, 3, 16, 16))
    assert y.shape == (2, 10) and torch.isfinite(y).all()


@pytest.mark.parametrize("block, last_bn", [(BasicBlock, "bn2"), (Bottleneck, "bn3")])
def test_attention_sits_after_last_bn_before_residual_add(block, last_bn):
    """Hooks: attention input == last BN output; block output == relu(attention output + shortcut)."""
    torch.manual_seed(0)
    # zero_init_last=False: with timm's zero-init the last BN outputs 0 and the check would be vacuous.
    model = _tiny("mia", block=block, zero_init_last=False).eval()
    records = []
    for blk in (m for m in model.modules() if isinstance(m, block)):
        rec = {}
        records.append((blk, rec))
        blk.register_forward_pre_hook(lambda m, i, rec=rec: rec.__setitem__("x", i[0].clone()))
        getattr(blk, last_bn).register_forward_hook(lambda m, i, o, rec=rec: rec.__setitem__("bn", o.clone()))
        # clone: timm adds the shortcut to the attention output in place.
        blk.se.register_forward_hook(
            lambda m, i, o, rec=rec: rec.update(attn_in=i[0].clone(), attn_out=o.clone())
        )
        blk.register_forward_hook(lambda m, i, o, rec=rec: rec.__setitem__("out", o.clone()))
    with torch.no_grad():
        model(torch.randn(2, 3, 16, 16))
    assert len(records) == 4
    for blk, rec in records:
        assert isinstance(blk.se, MIAMind)
        torch.testing.assert_close(rec["attn_in"], rec["bn"], rtol=0, atol=0)
        assert not torch.allclose(rec["attn_out"], rec["attn_in"])  # the attention did something
        with torch.no_grad():
            shortcut = rec["x"] if blk.downsample is None else blk.downsample(rec["x"])
        torch.testing.assert_close(rec["out"], torch.relu(rec["attn_out"] + shortcut))


def _recording(cls, store):
    def factory(channels, **kw):
        layer = cls(channels, **kw)
        store.append(copy.deepcopy(layer.state_dict()))
        return layer

    return factory


@pytest.mark.parametrize("attention", ["mia", "mia_adaptive", "gc", "cbam"])
def test_attention_init_survives_timm_init(attention):
    """Every attention parameter equals what the attention's own constructor produced."""
    cls = type(create_attention(attention, 64))
    made = []
    model = _tiny(_recording(cls, made))
    layers = attention_layers(model)
    assert len(layers) == len(made) == 4
    for (name, layer), state in zip(layers, made, strict=True):
        for key, value in layer.state_dict().items():
            torch.testing.assert_close(
                value, state[key], rtol=0, atol=0, msg=f"{name}.{key} was re-initialised"
            )


def test_plain_timm_resnet_would_overwrite_attention_init():
    """The premise of the test above: timm's init_weights does re-initialise the attention's convs."""
    made = []
    model = ResNet(
        BasicBlock, (1, 1, 1, 1), num_classes=10, block_args=dict(attn_layer=_recording(MIAMind, made))
    )
    first = next(m for m in model.modules() if isinstance(m, MIAMind))
    assert not torch.equal(first.fc1.weight, made[0]["fc1.weight"])


def test_attention_init_has_default_conv_statistics():
    """MIA's 1x1 convs keep PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (not Kaiming fan-out)."""
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, in_chans=3, attention="mia")
    for name, layer in attention_layers(model):
        c, h = layer.channels, layer.hidden_channels
        assert layer.fc1.weight.abs().max() <= c**-0.5, name
        assert layer.fc2.weight.abs().max() <= h**-0.5, name
        assert layer.spatial.weight.abs().max() <= 1 / 7, name


def test_zero_init_last_default_and_switch():
    model = _tiny("mia", block=Bottleneck)
    assert all(torch.all(b.bn3.weight == 0) for b in model.modules() if isinstance(b, Bottleneck))
    # Documented consequence: at init the attention layers see an all-zero input.
    seen = []
    for _, layer in attention_layers(model):
        layer.register_forward_hook(lambda m, i, o: seen.append(i[0].abs().max().item()))
    model(torch.randn(2, 3, 16, 16))
    assert seen == [0.0] * 4
    model = _tiny("mia", block=BasicBlock, zero_init_last=False)
    assert all(torch.all(b.bn2.weight == 1) for b in model.modules() if isinstance(b, BasicBlock))
    # The backbone convs still get timm's Kaiming fan-out init (std sqrt(2 / fan_out)).
    w = model.layer4[0].conv2.weight
    assert abs(w.std().item() - (2 / (9 * 512)) ** 0.5) < 0.002


def test_resnet50_forward_backward():
    torch.manual_seed(0)
    model = create_model("resnet50", num_classes=10, in_chans=3, attention="mia", zero_init_last=False)
    x = torch.randn(2, 3, 32, 32)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([1, 7]))
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    for name, layer in attention_layers(model):
        assert layer.fc1.weight.grad.abs().sum() > 0, f"no gradient reached {name}"
