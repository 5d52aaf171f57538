"""Export a trained run's PyTorch model to ONNX, checked against onnxruntime.

:func:`export_onnx`: a run folder's PyTorch model (a PyTorch run's checkpoint, or a MindSpore run's
``best_torch.safetensors``) as ONNX via ``torch.onnx.export(dynamo=True)`` in eval mode (BatchNorm
uses its moving statistics, dropout is off), with a dynamic batch dimension; the other dimensions
are the run's input shape (``dataset.json``). Needs PyTorch, onnx and onnxruntime only; the MindIR
export lives in :mod:`miamind.mindspore.export`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._atomic import PathLike

__all__ = ["export_onnx", "run_config_and_info", "run_input_shape"]


def run_input_shape(run_dir: PathLike, batch: int = 1) -> tuple[int, ...]:
    """``(batch, *input_shape)`` of a run folder's model, from its ``dataset.json``."""
    from .run import open_run

    _, dataset = open_run(run_dir)
    return (int(batch), *(int(d) for d in dataset["input_shape"]))


def run_config_and_info(run_dir: Path):
    """A run folder's config and DatasetInfo (what builds its model)."""
    from ..data.info import DatasetInfo
    from .run import open_run

    cfg, d = open_run(run_dir)
    return cfg, DatasetInfo(d["name"], d["task"], tuple(d["class_names"]), tuple(d["input_shape"]))


def _torch_model(run_dir: Path):
    """A run folder's PyTorch model in eval mode: a PyTorch run's checkpoint or a MindSpore run's converted weights."""
    from .checkpoint_io import load_weights
    from .run import RunError, build_model, load_trained_model

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
    model = build_model(*run_config_and_info(run_dir))
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
