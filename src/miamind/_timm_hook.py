"""Register miamind's networks with timm when timm is imported, whichever is imported first.

``import miamind`` must not import torch (see :mod:`miamind._lazy`), so it cannot import timm to
register :mod:`miamind.models.timm_models`. Instead: if timm is loaded already, register now (torch
is loaded too, so it costs nothing extra); otherwise put a finder on ``sys.meta_path`` that lets
Python import timm as usual and registers right after timm's package has run; when miamind's own
models package is what imports timm, that package registers at its end instead. Pure Python.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from importlib import import_module
from types import ModuleType
from typing import Any

__all__ = ["register_with_timm"]

_TIMM_MODELS = "miamind.models.timm_models"


def _register() -> None:
    models = sys.modules.get("miamind.models")
    if getattr(getattr(models, "__spec__", None), "_initializing", False):
        return  # timm was imported by miamind.models itself, which registers at its own end
    try:
        import_module(_TIMM_MODELS)
    except Exception as err:  # a broken registration must not break the user's `import timm`
        warnings.warn(f"miamind: could not register its models with timm: {err}", stacklevel=2)


class _RegisterAfterTimm(importlib.abc.Loader):
    """timm's own loader, followed by the registration (every other attribute is the real loader's)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _TimmFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)  # one shot; also keeps find_spec below from finding us again
        spec = importlib.util.find_spec("timm")
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterTimm(spec.loader)
        return spec


def register_with_timm() -> None:
    """Register now if timm is imported, else as soon as it is (idempotent)."""
    if "timm" in sys.modules:
        _register()
    elif not any(isinstance(f, _TimmFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TimmFinder())
