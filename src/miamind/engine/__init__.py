"""Training engine: Lightning glue that turns a resolved config into a run folder.

- ``config``: one schema, presets, ``resolve_config``.
- ``build``: data module, model, task module and Lightning Trainer from a config.
- ``train`` / ``evaluate``: ``miamind train`` and ``miamind evaluate`` as functions.
- ``run_folder``: the run folder's file names; the only writer (and reader) of its files, used
  by both backends. ``run_lock``: one writer per run folder (an exclusive lock held while a run trains).
- ``load``: ``load_run(run_dir, checkpoint)`` -> ``(TaskModule, config)``, ``load_trained_model``.
- ``summary``: the summary table; ``plots``: the run folder's plots.
- ``checkpoint_io``: ``SafetensorsCheckpointIO`` (Lightning's whole checkpoint dict as one
  ``.safetensors`` file, written atomically, never unpickled) and ``save_weights`` /
  ``load_weights`` for plain state dicts with JSON metadata.
- ``callbacks``: ``FiniteLossGuard``, ``RNGStateCallback``, ``SafetensorsModelCheckpoint`` and
  ``resume_checkpoint_path``.
- ``predict`` / ``export`` / ``baselines``: using a trained run; classical baselines.

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
