"""Training engine: Lightning glue that turns a resolved config into a run folder.

One module a step (``config``, ``build``, ``train``, ``evaluate``, ``run_folder``, ``load``,
``checkpoint_io``, ``callbacks``, ``predict``, ``export``, ``baselines``...; see ``docs/engine.md``).
Submodules are imported explicitly (``from miamind.engine.checkpoint_io import ...``) so that
importing the package does not import Lightning; ``miamind.engine.load_run`` is imported on first use.
"""

from typing import Any

__all__ = ["load_run"]


def __getattr__(name: str) -> Any:
    if name == "load_run":
        from .load import load_run

        return load_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
