"""Export a trained model for inference: MindIR (MindSpore) and ONNX (PyTorch).

- :func:`export_mindir`: a MindSpore cell, or a run folder's weights in the MindSpore twin of its
  model, as a ``.mindir`` graph (``mindspore.export(file_format="MINDIR")``), loadable without miamind
  with ``mindspore.nn.GraphCell(mindspore.load(path))``. A run folder of either backend works: a
  MindSpore run's ``checkpoints/best.ckpt`` (else ``last.ckpt``), else a PyTorch run's
  ``best.safetensors`` (else ``last.safetensors``), converted.
- :func:`export_onnx`: a run folder's PyTorch model (a PyTorch run's checkpoint, or a MindSpore run's
  ``best_torch.safetensors``) as ONNX via ``torch.onnx.export(dynamo=True)``, checked against
  onnxruntime on a batch of the run's input shape.

Both export the model in eval mode (BatchNorm uses its moving statistics, dropout is off). The
MindIR graph has one static input shape; the ONNX graph a dynamic batch dimension. The other
dimensions are the run's input shape (``dataset.json``).

:func:`export_onnx` needs PyTorch, onnx and onnxruntime only: this module imports MindSpore when a
MindIR function is called, not on import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._require import require_mindspore

PathLike = str | os.PathLike

__all__ = ["export_mindir", "export_onnx", "load_mindir", "run_input_shape"]


def run_input_shape(run_dir: PathLike, batch: int = 1) -> tuple[int, ...]:
    """``(batch, *input_shape)`` of a run folder's model, from its ``dataset.json``."""
    from ..engine.run import open_run

    _, dataset = open_run(run_dir)
    return (int(batch), *(int(d) for d in dataset["input_shape"]))


def _run_config(run_dir: Path):
    """A run folder's config and DatasetInfo (what builds its model)."""
    from ..data.info import DatasetInfo
    from ..engine.run import open_run

    cfg, d = open_run(run_dir)
    return cfg, DatasetInfo(d["name"], d["task"], tuple(d["class_names"]), tuple(d["input_shape"]))


def _run_cell(run_dir: Path):
    """The MindSpore twin of a run's model with the run's weights (eval mode) and the file they came from."""
    from ..engine.run import RunError, checkpoint_path
    from .convert import load_into_cell
    from .train import build_mindspore_model

    cfg, info = _run_config(run_dir)
    cell = build_mindspore_model(cfg, info)
    source = next(
        (
            p
            for p in (run_dir / "checkpoints" / "best.ckpt", run_dir / "checkpoints" / "last.ckpt")
            if p.is_file()
        ),
        None,
    )
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
        raise ValueError(f"{out_path}: a MindIR path must end in .mindir")
    if isinstance(run_dir_or_cell, ms.nn.Cell):
        cell = run_dir_or_cell
        if input_shape is None:
            raise ValueError("export_mindir: input_shape (N, *input) is required when exporting a cell")
        cell.set_train(False)
    else:
        cell, _ = _run_cell(Path(run_dir_or_cell))
        if input_shape is None:
            input_shape = run_input_shape(run_dir_or_cell)
    shape = tuple(int(d) for d in input_shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(
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


def _torch_model(run_dir: Path):
    """A run folder's PyTorch model in eval mode: a PyTorch run's checkpoint or a MindSpore run's converted weights."""
    from ..engine.checkpoint_io import load_weights
    from ..engine.run import RunError, build_model, load_trained_model

    ckpts = run_dir / "checkpoints"
    if (ckpts / "best.safetensors").is_file() or (ckpts / "last.safetensors").is_file():
        _, _, model, path = load_trained_model(run_dir, "best")
        return model, path
    path = next(
        (p for p in (ckpts / "best_torch.safetensors", ckpts / "last_torch.safetensors") if p.is_file()), None
    )
    if path is None:
        raise RunError(
            f"{run_dir}: no PyTorch weights to export (checkpoints/best.safetensors, last.safetensors, "
            "best_torch.safetensors or last_torch.safetensors)"
        )
    model = build_model(*_run_config(run_dir))
    state, _ = load_weights(path)
    model.load_state_dict(state, strict=True)
    return model.eval(), path


def export_onnx(run_dir: PathLike, out_path: PathLike, *, check_batch: int = 4, atol: float = 1e-4) -> Path:
    """Export a run folder's PyTorch model to ONNX at ``out_path`` (``.onnx``) and check it with onnxruntime.

    ``torch.onnx.export(dynamo=True)`` with input ``x`` (batch dimension dynamic) and output
    ``logits``. The check runs ``check_batch`` random inputs of the run's input shape through PyTorch
    and onnxruntime and raises ``RuntimeError`` when they differ by more than ``atol``. The file
    is moved into place only after the check passed. Returns the path.
    """
    import torch

    from .._atomic import atomic_path

    run_dir, out_path = Path(run_dir), Path(out_path)
    if out_path.suffix != ".onnx":
        raise ValueError(f"{out_path}: an ONNX path must end in .onnx")
    model, source = _torch_model(run_dir)
    shape = run_input_shape(run_dir, batch=check_batch)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1)
    with atomic_path(out_path) as tmp:
        torch.onnx.export(
            model,
            (x,),
            str(tmp),
            dynamo=True,
            input_names=["x"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            external_data=False,
            verbose=False,
        )
        import onnxruntime as ort

        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            want = model(x).numpy()
        error = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        if not error <= atol:
            raise RuntimeError(
                f"{out_path}: onnxruntime output differs from PyTorch ({source}) by {error:.3g} "
                f"(shape {got.shape} vs {want.shape}; tolerance {atol})"
            )
    return out_path
