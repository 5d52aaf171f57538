"""mia-mind: the MIA-Mind attention mechanism (arXiv 2504.19080) and an experiment toolkit.

The attention classes are imported on first use, so ``import miamind.data`` (and the
``miamind data`` CLI for CSV/pickle datasets) does not pay for importing torch.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_FROM_ATTENTION = (
    "MIAMind",
    "MIAMindAdd",
    "MIAMindSeq",
    "MIAMindCode",
    "MIAMindAdaptive",
    "create_attention",
    "get_attention",
    "list_attention",
    "register_attention",
)
_FROM_MODELS = ("create_model", "list_models")
__all__ = [*_FROM_ATTENTION, *_FROM_MODELS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _FROM_ATTENTION or name in _FROM_MODELS:
        package = ".attention" if name in _FROM_ATTENTION else ".models"
        value = getattr(import_module(package, __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
