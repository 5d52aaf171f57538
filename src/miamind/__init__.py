"""mia-mind: the MIA-Mind attention mechanism (arXiv 2504.19080) and an experiment toolkit.

The attention classes are imported on first use, so ``import miamind.data`` (and the
``miamind data`` CLI for CSV/pickle datasets) does not pay for importing torch.
"""

from ._arch.mia import MIA_CLASS_NAMES
from ._lazy import lazy_attributes

__version__ = "0.1.0"

_EXPORTS = {
    **dict.fromkeys(
        (*MIA_CLASS_NAMES, "create_attention", "get_attention", "list_attention", "register_attention"),
        ".attention",
    ),
    **dict.fromkeys(("create_model", "list_models"), ".models"),
    "from_pretrained": ".engine.hf_folder",
}
__all__ = [*_EXPORTS, "__version__"]

__getattr__, __dir__ = lazy_attributes(globals(), _EXPORTS)

# Last: registering may import miamind's models, which needs the names above.
from ._timm_hook import register_with_timm  # noqa: E402

register_with_timm()
