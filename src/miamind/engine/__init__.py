"""Training engine: Lightning glue that turns a resolved config into a run folder.

- ``checkpoint_io``: ``SafetensorsCheckpointIO`` (Lightning's whole checkpoint dict as one
  ``.safetensors`` file, written atomically, never unpickled) and ``save_weights`` /
  ``load_weights`` for plain state dicts with JSON metadata.
- ``run_lock``: one writer per run folder (an exclusive lock held while a run trains).
- ``callbacks``: ``FiniteLossGuard``, ``RNGStateCallback``, ``SafetensorsModelCheckpoint`` and
  ``resume_checkpoint_path``.

Submodules are imported explicitly (``from miamind.engine.checkpoint_io import ...``) so that
importing the package does not import Lightning.
"""
