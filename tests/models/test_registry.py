"""create_model / list_models / register_model / attention_layers: validation and bookkeeping."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from miamind.attention import MIAMind, MIAMindCode
from miamind.models import attention_layers, create_model, list_models, register_model
from miamind.models import registry as model_registry

#: the models the package ships; a model added later needs no edit here
NAMES = ["fastnet", "flowcnn", "reference_resnet", "resnet18", "resnet34", "resnet50", "unet"]


def test_list_models_holds_the_shipped_models_in_order():
    assert set(NAMES) <= set(list_models())
    assert list_models() == sorted(list_models())


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'resnet19'") as err:
        create_model("resnet19", num_classes=10, in_chans=3)
    for name in NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10", None])
def test_num_classes_must_be_positive_int(bad):
    with pytest.raises(ValueError, match="flowcnn: num_classes must be an integer >= 1"):
        create_model("flowcnn", num_classes=bad, in_chans=1)


@pytest.mark.parametrize("bad", [0, -3, 1.0])
def test_in_chans_must_be_positive_int(bad):
    with pytest.raises(ValueError, match="fastnet: in_chans must be an integer >= 1"):
        create_model("fastnet", num_classes=10, in_chans=bad)


def test_unknown_model_kwarg_lists_accepted():
    with pytest.raises(ValueError, match=r"unet: unknown keyword argument\(s\) \['widht'\]") as err:
        create_model("unet", num_classes=2, in_chans=1, widht=8)
    assert "'width'" in str(err.value) and "'attention_at'" in str(err.value)


def test_attention_kwargs_must_be_mapping():
    with pytest.raises(ValueError, match="attention_kwargs must be a mapping"):
        create_model(
            "flowcnn", num_classes=2, in_chans=1, attention="mia", attention_kwargs=[("rd_ratio", 0.5)]
        )


@pytest.mark.parametrize(
    "name, kwargs, x, first_conv",
    [
        ("fastnet", {}, torch.randn(2, 5, 16, 16), "stem.conv"),
        ("unet", {"width": 4, "depth": 2}, torch.randn(2, 5, 8, 8), "encoder.0.conv1"),
        ("flowcnn", {}, torch.randn(2, 5, 9), "stages.0.conv"),
        ("reference_resnet", {}, torch.randn(2, 5, 8, 8), "conv1"),
    ],
)
def test_in_chans_and_num_classes_are_passed(name, kwargs, x, first_conv):
    model = create_model(name, num_classes=7, in_chans=5, attention=None, **kwargs).eval()
    assert dict(model.named_modules())[first_conv].in_channels == 5
    with torch.no_grad():
        y = model(x)
    assert y.shape[:2] == (2, 7)


def test_in_chans_passed_to_timm_resnet():
    model = create_model("resnet18", num_classes=3, in_chans=1)
    assert model.conv1.in_channels == 1 and model.fc.out_features == 3


def test_unknown_attention_names_model_and_valid_names():
    with pytest.raises(ValueError, match="fastnet: cannot build attention 'mia2'") as err:
        create_model("fastnet", num_classes=10, in_chans=3, attention="mia2")
    assert "mia_code" in str(err.value) and "cbam" in str(err.value)


def test_bad_attention_kwargs_name_model():
    with pytest.raises(ValueError, match="flowcnn: cannot build attention 'mia'.*rd_ratio"):
        create_model("flowcnn", num_classes=2, in_chans=1, attention="mia", attention_kwargs={"rd_ratio": -1})
    with pytest.raises(ValueError, match="flowcnn: cannot build attention 'se'.*kernel"):
        create_model("flowcnn", num_classes=2, in_chans=1, attention="se", attention_kwargs={"kernel": 3})


def test_attention_kwargs_cannot_set_dims():
    with pytest.raises(ValueError, match="must not set 'dims'"):
        create_model("flowcnn", num_classes=2, in_chans=1, attention="mia", attention_kwargs={"dims": 2})


def test_attention_kwargs_reach_every_layer():
    model = create_model(
        "fastnet",
        num_classes=10,
        in_chans=3,
        attention="mia",
        attention_kwargs={"rd_ratio": 1 / 4, "kernel_size": 3},
    )
    layers = attention_layers(model)
    assert [m.hidden_channels for _, m in layers] == [16, 64, 64]
    assert all(m.kernel_size == 3 for _, m in layers)


def test_attention_as_class_and_callable():
    made = []

    def factory(channels, **kw):
        made.append(channels)
        return MIAMind(channels, rd_channels=2, **kw)

    model = create_model("flowcnn", num_classes=2, in_chans=1, attention=factory)
    assert made == [32, 64, 128]
    assert [m.hidden_channels for _, m in attention_layers(model)] == [2, 2, 2]
    model = create_model("flowcnn", num_classes=2, in_chans=1, attention=MIAMindCode)
    assert all(isinstance(m, MIAMindCode) for _, m in attention_layers(model))


def test_omitted_attention_uses_model_default():
    assert attention_layers(create_model("flowcnn", num_classes=2, in_chans=1)) == []
    ref = create_model("reference_resnet", num_classes=10, in_chans=3)
    layers = attention_layers(ref)
    assert len(layers) == 16 and all(type(m) is MIAMindCode for _, m in layers)
    # Explicit None means no attention, also for reference_resnet.
    assert (
        attention_layers(create_model("reference_resnet", num_classes=10, in_chans=3, attention=None)) == []
    )


@pytest.mark.parametrize("none", [None, "none", "NONE"])
def test_none_gives_identity_and_no_layers(none):
    model = create_model("fastnet", num_classes=10, in_chans=3, attention=none)
    assert attention_layers(model) == []
    assert all(isinstance(g.attn, nn.Identity) for g in model.groups)


def test_attention_layers_names_resolve_and_work_when_nested():
    model = create_model("fastnet", num_classes=10, in_chans=3, attention="se")
    layers = attention_layers(model)
    assert [n for n, _ in layers] == ["groups.0.attn", "groups.1.attn", "groups.2.attn"]
    modules = dict(model.named_modules())
    assert all(modules[n] is m for n, m in layers)
    wrapper = nn.Sequential()
    wrapper.add_module("model", model)
    assert [n for n, _ in attention_layers(wrapper)] == ["model." + n for n, _ in layers]


def test_register_model_rejects_duplicates_and_bad_builders():
    def builder(*, num_classes, in_chans, attention=None, attention_kwargs=None):
        return nn.Linear(in_chans, num_classes)

    try:
        register_model("_test_linear")(builder)
        assert "_test_linear" in list_models()
        model = create_model("_test_linear", num_classes=4, in_chans=3)
        assert isinstance(model, nn.Linear) and model.out_features == 4
        with pytest.raises(ValueError, match="already registered"):
            register_model("_test_linear")(lambda **kw: None)
    finally:
        model_registry._MODELS.unregister("_test_linear")

    def no_attention(*, num_classes, in_chans):
        return nn.Identity()

    with pytest.raises(TypeError, match="must accept keyword arguments"):
        register_model("_test_bad")(no_attention)
    assert "_test_bad" not in list_models()


def test_in_chans_defaults_to_three_like_timm():
    model = create_model("resnet18", num_classes=10)
    assert model.eval()(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_cannot_hold_names_why_a_2d_only_attention_does_not_fit_the_flow_network():
    from miamind.models import cannot_hold

    why = cannot_hold("flowcnn", "triplet")
    assert why is not None and "dims" in why and "\n" not in why
    assert cannot_hold("flowcnn", "mia") is None
    assert cannot_hold("fastnet", "coordatt", in_chans=3, num_classes=10) is None
