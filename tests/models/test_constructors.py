"""The model constructors: explicit signatures, argument checks, and the order layers are created in
(PyTorch draws each layer's init from the global RNG as it is built, so that order is what a seed
reproduces, and what the MindSpore twins follow)."""

from __future__ import annotations

import inspect

import pytest
from torch.nn.modules.module import register_module_parameter_registration_hook

from miamind.attention import MIAMind, MIAMindAdd, MIAMindCode, MIAMindSeq
from miamind.models import CifarResNet, FastNet, FlowCNN, UNet, create_model, get_model_builder

CLASSES = [UNet, FastNet, FlowCNN, CifarResNet, MIAMind, MIAMindAdd, MIAMindSeq, MIAMindCode]
MIA_PARAMS = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "spatial.weight", "spatial.bias"]
BN = ["weight", "bias"]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_signature_is_explicit_and_unknown_arguments_name_the_class(cls):
    params = inspect.signature(cls).parameters.values()
    assert not [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    assert all(p.annotation is not inspect.Parameter.empty for p in params)
    positional = [1] if cls.__module__.endswith(".mia") else []  # channels
    with pytest.raises(TypeError, match=r"__init__\(\) got an unexpected keyword argument 'bogus'"):
        cls(*positional, bogus=1)


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_resnet_builders_take_the_class_arguments_but_model_name(name):
    own = dict(inspect.signature(get_model_builder(name)).parameters)
    cls = dict(inspect.signature(CifarResNet).parameters)
    assert list(own) == [n for n in cls if n not in ("block", "layers", "model_name")]
    assert all(own[n].default == cls[n].default for n in own)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("unet", dict(width=0), "unet: width must be an integer >= 1, got 0"),
        ("unet", dict(depth=True), "unet: depth must be an integer >= 1, got True"),
        ("unet", dict(upsample="x"), "unet: upsample must be 'transpose' or 'bilinear', got 'x'"),
        ("fastnet", dict(widths=(0, 4)), "fastnet: widths must be positive integers, got (0, 4)"),
        ("fastnet", dict(widths=()), "fastnet: widths must be positive integers, got ()"),
        ("flowcnn", dict(stages=(8, -1)), "flowcnn: stages must be positive integers, got (8, -1)"),
        ("flowcnn", dict(kernel_size=4), "flowcnn: kernel_size must be a positive odd integer, got 4"),
        ("flowcnn", dict(dropout=2.0), "flowcnn: dropout must be in [0, 1), got 2.0"),
    ],
)
def test_argument_checks(name, kwargs, message):
    with pytest.raises(ValueError) as err:
        create_model(name, num_classes=2, in_chans=1 if name != "fastnet" else 3, **kwargs)
    assert str(err.value) == message


def _creation_order(name, **kwargs):
    """Qualified names of the model's parameters in the order they were created."""
    made = []
    handle = register_module_parameter_registration_hook(lambda module, key, param: made.append(param))
    try:
        model = create_model(name, **kwargs)
    finally:
        handle.remove()
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for p in made if p is not None and id(p) in names]


def _names(prefix, keys):
    return [f"{prefix}.{k}" for k in keys]


def test_flowcnn_builds_each_stage_attention_before_its_conv():
    order = _creation_order("flowcnn", num_classes=2, in_chans=1, attention="mia", stages=(4, 8))
    stage = [*_names("attn", MIA_PARAMS), "conv.weight", *_names("bn", BN)]
    assert order == [*_names("stages.0", stage), *_names("stages.1", stage), *_names("head", BN)]


def test_fastnet_builds_stem_then_each_group_after_its_attention_then_head():
    order = _creation_order("fastnet", num_classes=10, in_chans=3, attention="mia", widths=(8, 16))
    group = [*_names("attn", MIA_PARAMS), "conv1.weight", *_names("bn1", BN), "conv2.weight"]
    group += _names("bn2", BN)
    assert order == [
        *_names("stem.conv", BN),
        *_names("groups.0", group),
        *_names("groups.1", group),
        "head.weight",
    ]


def test_unet_builds_each_slot_attention_before_its_block_and_the_skip_first():
    order = _creation_order(
        "unet",
        num_classes=2,
        in_chans=1,
        attention="mia",
        attention_at=("encoder", "bottleneck", "decoder", "skip"),
        width=4,
        depth=1,
    )
    block = ["conv1.weight", *_names("bn1", BN), "conv2.weight", *_names("bn2", BN)]
    assert order == [
        *_names("encoder.0.attn", MIA_PARAMS),
        *_names("encoder.0", block),
        *_names("bottleneck.attn", MIA_PARAMS),
        *_names("bottleneck", block),
        *_names("decoder.0.skip_attn", MIA_PARAMS),
        *_names("decoder.0.conv.attn", MIA_PARAMS),
        *_names("decoder.0.up", BN),
        *_names("decoder.0.conv", block),
        *_names("head", BN),
    ]
