"""ONNX export of a PyTorch run (no MindSpore needed): onnxruntime gives PyTorch's outputs."""

import numpy as np
import pytest
import torch

from miamind.engine.config import resolve_config
from miamind.engine.export import export_onnx
from miamind.engine.load import load_trained_model
from miamind.engine.run_folder import run_input_shape
from miamind.engine.train import train

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_onnx_of_a_pytorch_run_matches_pytorch(tmp_path):
    cfg = resolve_config(
        "cicids2017",
        "fast",
        overrides={"trainer.epochs": 1},
        assignments=["trainer.threads=1", "trainer.progress_bar=false", "data.synthetic=true", "plots=false"],
    )
    run = tmp_path / "run"
    train(cfg, run, quiet=True)
    path = export_onnx(run, tmp_path / "flowcnn.onnx")
    _, _, model, _ = load_trained_model(run, "best")
    shape = run_input_shape(run, batch=7)  # another batch size than the export's: dynamic batch
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = model.eval()(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="must end in .onnx"):
        export_onnx(run, tmp_path / "x.mindir")
