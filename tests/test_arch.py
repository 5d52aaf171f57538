"""What both backends share in pure Python (``miamind._arch``): MIA-Mind's variants and arguments."""

import inspect
import subprocess
import sys

import pytest

from miamind._arch.mia import MIA_VARIANTS, MIASpec, resolve_mia_args


def test_shared_facts_import_neither_framework():
    code = (
        "import sys, miamind._arch.mia, miamind._lazy, miamind._registry; "
        "bad = [m for m in ('torch', 'mindspore', 'timm') if m in sys.modules]; assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_torch_layers_write_out_miaspecs_arguments():
    """Each backend writes the signature out; this keeps the PyTorch one equal to ``MIASpec``
    (tests/mindspore/test_attention.py compares the MindSpore one with it)."""
    from miamind import attention

    spec = inspect.signature(MIASpec).parameters
    for variant in MIA_VARIANTS.values():
        params = inspect.signature(getattr(attention, variant.class_name)).parameters
        if list(params) == ["channels", "kwargs"]:  # MIAMindAdaptive passes everything on
            continue
        assert list(params) == ["channels", *spec, "device", "dtype"], variant.name
        assert all(params[k].default == p.default for k, p in spec.items()), variant.name
        assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in spec), variant.name


def test_mia_args_checks_name_the_layer():
    args = resolve_mia_args(
        "X",
        MIA_VARIANTS["mia"],
        48,
        rd_ratio=1 / 16,
        rd_channels=None,
        kernel_size=3,
        dims=1,
        gate_init="paper",
    )
    assert (args.channels, args.hidden_channels, args.kernel_size, args.dims) == (48, 3, 3, 1)
    with pytest.raises(ValueError, match="X: gate_init='identity' needs a spatial conv bias"):
        resolve_mia_args(
            "X",
            MIA_VARIANTS["mia_code"],
            8,
            rd_ratio=1 / 16,
            rd_channels=None,
            kernel_size=7,
            dims=2,
            gate_init="identity",
        )
