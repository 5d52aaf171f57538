"""The one place that imports MindSpore, so a missing backend fails the same way everywhere."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = (
    "MindSpore features need the optional backend: pip install 'miamind[mindspore]' "
    "(mindspore>=2.10, numpy<2)"
)


def require_mindspore() -> ModuleType:
    """Return the ``mindspore`` module, or raise ``ImportError`` saying how to install it.

    Every module of :mod:`miamind.mindspore` calls this at import time instead of a bare
    ``import mindspore``: the PyTorch side of miamind never needs MindSpore, and a user who
    reaches for the MindSpore backend without it gets the install command, not a bare
    ``ModuleNotFoundError`` from deep inside the package.
    """
    try:
        return importlib.import_module("mindspore")
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} [{type(err).__name__}: {err}]") from err
