"""MindSpore backend: MIA-Mind layers as ``mindspore.nn.Cell`` and weight conversion to/from PyTorch.

Optional: needs ``pip install 'miamind[mindspore]'``. ``import miamind`` (and everything outside this
package) never imports MindSpore, and neither does ``import miamind.mindspore`` itself: the submodules
(``attention``, ``convert``, ``models``, ...) are imported on first access, and each calls
:func:`require_mindspore`, which raises an ``ImportError`` with the install command when the backend
is missing; call ``miamind.mindspore.require_mindspore()`` to check up front.

The layers and the model factory are also at the top, as in the PyTorch package
(``miamind.MIAMind``, ``miamind.models.create_model``): ``miamind.mindspore.MIAMind``,
``miamind.mindspore.create_attention``, ``miamind.mindspore.create_model``, ... (imported on first
access, like the submodules).

Submodules:

- :mod:`miamind.mindspore.attention`: ``MIAMind``, ``MIAMindAdd``, ``MIAMindSeq``, ``MIAMindCode``,
  ``MIAMindAdaptive`` and ``create_attention`` -- same constructors and parameter names as the
  PyTorch layers in :mod:`miamind.attention`.
- :mod:`miamind.mindspore.convert`: PyTorch state dict <-> MindSpore parameters (numpy arrays as the
  interchange), ``.safetensors`` <-> MindSpore ``.ckpt`` files, ``load_into_cell`` with strict checks.
"""

from .._arch.mia import MIA_CLASS_NAMES
from .._lazy import lazy_attributes
from ._require import INSTALL_HINT, require_mindspore

_SUBMODULES = ("attention", "convert", "models", "train", "export")
#: top-level names -> the submodule that defines them (imported on first access).
_EXPORTS = {
    **dict.fromkeys((*MIA_CLASS_NAMES, "create_attention", "get_attention", "list_attention"), ".attention"),
    **dict.fromkeys(("create_model", "list_models"), ".models"),
}

__all__ = ["require_mindspore", "INSTALL_HINT", *_SUBMODULES, *_EXPORTS]

__getattr__, __dir__ = lazy_attributes(globals(), _EXPORTS, _SUBMODULES)
