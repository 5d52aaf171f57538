"""Export a trained model for inference as MindIR (MindSpore); ONNX lives in :mod:`miamind.engine.export`.

- :func:`export_mindir`: a MindSpore cell, or a run folder's weights in the MindSpore twin of its
  model, as a ``.mindir`` graph (``mindspore.export(file_format="MINDIR")``), loadable without miamind
  with ``mindspore.nn.GraphCell(mindspore.load(path))``. A run folder of either backend works: a
  MindSpore run's ``checkpoints/best.ckpt`` (else ``last.ckpt``), else a PyTorch run's
  ``best.safetensors`` (else ``last.safetensors``), converted.

The model is exported in eval mode (BatchNorm uses its moving statistics, dropout is off), with one
static input shape: the run's input shape (``dataset.json``) and a fixed batch. MindSpore is
imported when a function is called, not on import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import as_write_error
from ..engine.run_folder import run_config_and_info, run_input_shape
from ..errors import InputError
from ._require import require_mindspore

PathLike = str | os.PathLike

__all__ = ["export_mindir", "load_mindir"]


def _run_cell(run_dir: Path):
    """The MindSpore twin of a run's model with the run's weights (eval mode) and the file they came from."""
    from ..engine.run_folder import RunError, checkpoint_path
    from .convert import load_into_cell
    from .train import build_mindspore_model

    cfg, info = run_config_and_info(run_dir)
    cell = build_mindspore_model(cfg, info)
    ckpts = (run_dir / "checkpoints" / "best.ckpt", run_dir / "checkpoints" / "last.ckpt")
    source = next((p for p in ckpts if p.is_file()), None)
    if source is None:
        try:
            source = checkpoint_path(run_dir, "best")  # a PyTorch run: best.safetensors, else last
        except RunError:
            raise RunError(
                f"{run_dir}: no checkpoint to export (checkpoints/best.ckpt, last.ckpt, "
                "best.safetensors or last.safetensors)"
            ) from None
    load_into_cell(cell, source)
    cell.set_train(False)
    return cell, source


def export_mindir(run_dir_or_cell: Any, out_path: PathLike, input_shape: Sequence[int] | None = None) -> Path:
    """Write ``run_dir_or_cell`` as a MindIR file at ``out_path`` (must end in ``.mindir``); returns the path.

    Args:
        run_dir_or_cell: a ``mindspore.nn.Cell`` or a miamind run folder (either backend).
        out_path: the ``.mindir`` file to write (atomically: a temporary file, then renamed).
        input_shape: ``(N, *input)``, the one input shape the graph accepts; for a run folder
            default ``(1, *dataset input shape)``, required for a cell.

    The cell is put in eval mode (``set_train(False)``) before export. The shape is static: the
    models' input checks (``raise`` in ``construct``) fold away for a static shape, but with a
    dynamic batch (``None``) they stay in the graph as ``raise`` nodes that ``mindspore.load``
    cannot infer (MindSpore 2.10), so such a file would not load.
    """
    ms = require_mindspore()
    out_path = Path(out_path)
    if out_path.suffix != ".mindir":
        raise InputError(f"{out_path}: a MindIR path must end in .mindir")
    if isinstance(run_dir_or_cell, ms.nn.Cell):
        cell = run_dir_or_cell
        if input_shape is None:
            raise InputError("export_mindir: input_shape (N, *input) is required when exporting a cell")
        cell.set_train(False)
    else:
        cell, _ = _run_cell(Path(run_dir_or_cell))
        if input_shape is None:
            input_shape = run_input_shape(run_dir_or_cell)
    shape = tuple(int(d) for d in input_shape)
    if len(shape) < 2 or min(shape) < 1:
        raise InputError(
            f"export_mindir: input_shape must be (N, *input) with positive sizes, got {tuple(input_shape)}"
        )
    example = ms.Tensor(np.zeros(shape, np.float32))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # mindspore.export appends ".mindir" to the file name it is given, so the temporary name lacks it.
    tmp = out_path.with_name(f".{out_path.stem}.{os.getpid()}.tmp")
    written = tmp.with_name(tmp.name + ".mindir")
    try:
        ms.export(cell, example, file_name=str(tmp), file_format="MINDIR")
        os.replace(written, out_path)
    except Exception as exc:
        if (failure := as_write_error(exc, out_path)) is not None:
            raise failure from exc
        raise
    finally:
        written.unlink(missing_ok=True)
    return out_path


def load_mindir(path: PathLike):
    """A MindIR file as a callable ``mindspore.nn.GraphCell``."""
    ms = require_mindspore()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MindIR file")
    return ms.nn.GraphCell(ms.load(str(path)))
