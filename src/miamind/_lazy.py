"""Attributes of a package imported on first access (PEP 562), for the packages that must stay cheap.

``import miamind`` must not import torch, and ``import miamind.mindspore`` must not import MindSpore,
yet both offer the layers at the top (``miamind.MIAMind``, ``miamind.mindspore.MIAMind``). Each
package hands :func:`lazy_attributes` the names it offers and gets its module ``__getattr__`` and
``__dir__``. Pure Python, no third-party import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    namespace: MutableMapping[str, Any],
    exports: Mapping[str, str],
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``(__getattr__, __dir__)`` pair of the package whose ``globals()`` is ``namespace``.

    Args:
        namespace: the package's ``globals()``; a value is stored there once imported, so later
            lookups do not reach ``__getattr__`` again.
        exports: attribute name -> the relative module defining it (``".attention"``).
        submodules: submodule names offered as attributes (``miamind.mindspore.convert``).
    """
    package = namespace["__name__"]
    modules = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in modules:
            value = import_module(f".{name}", package)
        elif name in exports:
            value = getattr(import_module(exports[name], package), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
