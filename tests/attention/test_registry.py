"""Registry contract and the properties every registered attention layer must have.

Parametrised over ``list_attention()``, so a newly registered layer is tested without editing this file.
"""

from __future__ import annotations

import ast
import functools
import re

import pytest
import torch
import torch.nn as nn

from miamind.attention import create_attention, get_attention, list_attention, register_attention
from miamind.attention import registry as registry_module
from miamind.attention.comparators import SqueezeExcite

ALL_NAMES = list_attention()
#: layers that must run on (N, C, L) input (the 1-D flow-feature CNN of the CIC-IDS2017 experiment)
MUST_SUPPORT_1D = ["mia", "mia_add", "mia_seq", "mia_code", "mia_adaptive", "se", "eca", "cbam", "simam"]
#: layers known to be 2-D only, so the "unsupported dims" check below is never vacuous
KNOWN_2D_ONLY = ["coordatt", "triplet"]
INPUT_SHAPES = {1: (2, 16, 20), 2: (2, 16, 8, 8), 3: (2, 16, 4, 5, 6)}


def _check_forward_backward(layer: nn.Module, shape) -> None:
    """Output shape == input shape, finite output, and a finite gradient for every parameter and the input."""
    layer.train()  # the mode used in training: BatchNorm uses batch statistics (batch of 2)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).requires_grad_(True)
    out = layer(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all(), "output has NaN/inf"
    # A random projection, so no gradient vanishes just because the loss is symmetric.
    (out * torch.randn(out.shape, generator=gen)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in layer.named_parameters():
        assert p.grad is not None, f"parameter {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"parameter {pname} has a non-finite gradient"


def _supported_dims(message: str):
    match = re.search(r"supports dims in (\([0-9, ]*\))", message)
    assert match, f"ValueError does not name the supported dims: {message!r}"
    return ast.literal_eval(match.group(1))


def test_registry_lists_the_comparators_and_mia_variants():
    expected = {"se", "eca", "cbam", "gc", "ge", "coordatt", "triplet", "simam", *MUST_SUPPORT_1D}
    assert expected <= set(ALL_NAMES)
    assert ALL_NAMES == sorted(ALL_NAMES)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_layer_2d_shape_finite_and_gradients(name):
    _check_forward_backward(create_attention(name, 16, dims=2), INPUT_SHAPES[2])


@pytest.mark.parametrize("name", MUST_SUPPORT_1D)
def test_required_layers_work_in_1d(name):
    _check_forward_backward(create_attention(name, 16, dims=1), INPUT_SHAPES[1])


@pytest.mark.parametrize("dims", [1, 3])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_other_dims_either_work_or_raise_naming_supported_dims(name, dims):
    try:
        layer = create_attention(name, 16, dims=dims)
    except ValueError as err:
        supported = _supported_dims(str(err))
        assert dims not in supported and 2 in supported
        assert name not in MUST_SUPPORT_1D or dims != 1
        return
    assert name not in KNOWN_2D_ONLY, f"{name} is 2-D only but accepted dims={dims}"
    _check_forward_backward(layer, INPUT_SHAPES[dims])


@pytest.mark.parametrize("name", KNOWN_2D_ONLY)
@pytest.mark.parametrize("dims", [1, 3])
def test_2d_only_layers_raise_at_construction(name, dims):
    with pytest.raises(ValueError) as info:
        create_attention(name, 16, dims=dims)
    assert _supported_dims(str(info.value)) == (2,)


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("dims", [0, 4])
def test_nonsense_dims_raise(name, dims):
    with pytest.raises(ValueError, match="dims"):
        create_attention(name, 16, dims=dims)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_dtype_keyword_gives_float64_parameters(name):
    layer = create_attention(name, 16, dtype=torch.float64)
    for pname, p in layer.named_parameters():
        assert p.dtype == torch.float64, pname
    for bname, b in layer.named_buffers():
        if b.is_floating_point():
            assert b.dtype == torch.float64, bname
    out = layer.eval()(torch.randn(2, 16, 8, 8, dtype=torch.float64))
    assert out.dtype == torch.float64


@pytest.mark.parametrize("name", ALL_NAMES)
def test_device_keyword_places_parameters(name):
    layer = create_attention(name, 16, device="meta")
    for pname, p in layer.named_parameters():
        assert p.device.type == "meta", pname


# ----------------------------------------------------------------------------------------------
# create_attention / get_attention / register_attention
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [None, "none", "None", ""])
def test_none_gives_identity(spec):
    assert get_attention(spec) is None
    assert isinstance(create_attention(spec, 16), nn.Identity)


def test_class_and_partial_are_accepted():
    layer = create_attention(SqueezeExcite, 32)
    assert isinstance(layer, SqueezeExcite) and layer.fc1.out_channels == 2
    layer = create_attention(functools.partial(SqueezeExcite, rd_ratio=1 / 4), 32)
    assert isinstance(layer, SqueezeExcite) and layer.fc1.out_channels == 8
    layer = create_attention("se", 32, rd_channels=3)
    assert layer.fc1.out_channels == 3


def test_names_are_case_insensitive():
    assert type(create_attention("SE", 16)) is type(create_attention("se", 16))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        create_attention("squeeze_and_whatever", 16)
    message = str(info.value)
    assert "squeeze_and_whatever" in message
    for name in ["none", *ALL_NAMES]:
        assert name in message


def test_non_callable_spec_is_a_type_error():
    with pytest.raises(TypeError):
        create_attention(3, 16)


@pytest.fixture
def scratch_name():
    """A registry key that is removed again after the test, whatever happens in it."""
    name = "test_scratch_attention"
    assert name not in registry_module._REGISTRY
    yield name
    registry_module._REGISTRY.unregister(name)


def test_register_makes_a_custom_class_creatable(scratch_name):
    @register_attention(scratch_name)
    class Scale(nn.Module):
        def __init__(self, channels, *, dims=2, device=None, dtype=None, factor=2.0):
            super().__init__()
            self.channels, self.dims, self.factor = channels, dims, factor

        def forward(self, x):
            return x * self.factor

    assert scratch_name in list_attention()
    layer = create_attention(scratch_name, 8, factor=3.0)
    assert isinstance(layer, Scale) and layer.factor == 3.0
    x = torch.randn(1, 8, 4, 4)
    torch.testing.assert_close(layer(x), 3.0 * x)
    # registering the same class again is harmless (e.g. a module imported twice)
    register_attention(scratch_name)(Scale)


def test_register_a_different_class_under_a_taken_name_raises():
    before = get_attention("se")

    class Impostor(nn.Module):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_attention("se")(Impostor)
    with pytest.raises(ValueError, match="already registered"):
        register_attention("SE")(Impostor)
    assert get_attention("se") is before
