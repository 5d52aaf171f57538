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
from ..errors import InputError
from .load import load_trained_model
from .run_folder import run_input_shape

__all__ = ["export_onnx"]


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
        raise InputError(f"{out_path}: an ONNX path must end in .onnx")
    _, _, model, source = load_trained_model(run_dir, "best")
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
