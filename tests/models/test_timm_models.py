"""miamind's networks in timm's registry: every import order registers them, timm builds each one,
``features_only`` works on the ResNets, and an smp U-Net with a ``tu-miamind_resnet18`` encoder trains."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import timm
import torch
from timm.models.resnet import BasicBlock, ResNet

from miamind.attention import MIAMind
from miamind.models import attention_layers, create_model
from miamind.models.timm_models import AttentionResNet, default_cfgs

NAMES = sorted(default_cfgs)


IMPORT_ORDERS = (
    "import miamind; import timm",
    "import timm; import miamind",
    "import miamind; from miamind import MIAMind",  # the attention package is what imports timm
    "import miamind.models",  # the models package is what imports timm
)


def test_every_import_order_registers_every_name_once():
    """-W error::UserWarning: a failed registration or a name registered twice (timm warns) fails the run. The
    orders run side by side, each in a fresh interpreter (`import miamind` staying torch-free is
    tests/test_arch.py's)."""
    procs = {
        order: subprocess.Popen(
            [
                sys.executable,
                "-W",
                "error::UserWarning",
                "-c",
                f"{order}\nimport timm\nprint(*timm.list_models('miamind_*'))",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for order in IMPORT_ORDERS
    }
    for order, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{order}: {err[-2000:]}"
        assert out.split() == NAMES, order


def test_the_names_and_timm_own_names_untouched():
    assert NAMES == [
        "miamind_cifar_resnet18",
        "miamind_cifar_resnet34",
        "miamind_cifar_resnet50",
        "miamind_fastnet",
        "miamind_reference_resnet",
        "miamind_resnet18",
        "miamind_resnet34",
        "miamind_resnet50",
    ]
    from timm.models import model_entrypoint

    assert model_entrypoint("resnet18").__module__ == "timm.models.resnet"


@pytest.mark.parametrize("name", ["miamind_resnet18", "miamind_cifar_resnet18", "miamind_fastnet"])
def test_timm_builds_each_with_the_attention_asked_for(name):
    model = timm.create_model(name, num_classes=7, attention="mia").eval()
    size = default_cfgs[name]["input_size"][1:]
    assert model(torch.randn(2, 3, *size)).shape == (2, 7)
    layers = attention_layers(model)
    assert layers and all(isinstance(m, MIAMind) for _, m in layers)
    assert attention_layers(timm.create_model(name, num_classes=7, attention="none")) == []


def test_cifar_entries_are_create_model_networks():
    torch.manual_seed(0)
    via_timm = timm.create_model("miamind_cifar_resnet18", num_classes=10, attention="mia")
    torch.manual_seed(0)
    direct = create_model("resnet18", num_classes=10, in_chans=3, attention="mia")
    a, b = via_timm.state_dict(), direct.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_imagenet_stem_resnet_keeps_timm_resnet18_layout():
    ours = timm.create_model("miamind_resnet18", attention="none")
    theirs = timm.create_model("resnet18")
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


@pytest.mark.parametrize(
    "name, reductions, channels",
    [
        ("miamind_resnet18", [2, 4, 8, 16, 32], [64, 64, 128, 256, 512]),
        ("miamind_resnet50", [2, 4, 8, 16, 32], [64, 256, 512, 1024, 2048]),
        ("miamind_cifar_resnet18", [1, 1, 2, 4, 8], [64, 64, 128, 256, 512]),
    ],
)
def test_features_only_on_the_resnets(name, reductions, channels):
    model = timm.create_model(name, features_only=True, attention="mia").eval()
    assert model.feature_info.reduction() == reductions
    feats = model(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == channels
    assert [64 // f.shape[-1] for f in feats] == reductions


def _recording(made):
    def factory(channels, **kw):
        layer = MIAMind(channels, **kw)
        made.append(copy.deepcopy(layer.state_dict()))
        return layer

    return factory


def test_attention_init_survives_timm_init_in_the_imagenet_stem_resnet():
    made: list[dict] = []
    model = AttentionResNet(BasicBlock, (1, 1, 1, 1), num_classes=10, attention=_recording(made))
    layers = attention_layers(model)
    assert len(layers) == len(made) == 4
    for (name, layer), state in zip(layers, made, strict=True):
        for key, value in layer.state_dict().items():
            torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=f"{name}.{key}")
    # The premise: timm's own ResNet re-initialises them.
    made.clear()
    plain = ResNet(BasicBlock, (1, 1, 1, 1), num_classes=10, block_args=dict(attn_layer=_recording(made)))
    first = next(m for m in plain.modules() if isinstance(m, MIAMind))
    assert not torch.equal(first.fc1.weight, made[0]["fc1.weight"])


def test_smp_unet_with_a_tu_miamind_encoder_trains_a_step():
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    # zero_init_last=False: with timm's default the blocks start as the identity and the attention
    # sees zeros on the first step (see miamind.models.resnet), so it would not move yet.
    net = smp.Unet(
        "tu-miamind_resnet18", encoder_weights=None, classes=2, attention="mia", zero_init_last=False
    )
    mias = [m for _, m in attention_layers(net)]
    assert len(mias) == 8 and all(isinstance(m, MIAMind) for m in mias)
    before = copy.deepcopy(mias[-1].state_dict())
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(2, 3, 64, 64), torch.randint(0, 2, (2, 64, 64))
    out = net(x)
    assert out.shape == (2, 2, 64, 64)
    loss = torch.nn.functional.cross_entropy(out, y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    after = mias[-1].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the attention learned


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("miamind_resnet18", pretrained=True)
    with pytest.raises(ValueError, match="unknown attention 'nope'"):
        timm.create_model("miamind_resnet18", attention="nope")
