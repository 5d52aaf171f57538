"""MindIR export (MindSpore) runs in a GraphCell like the cell it came from; ONNX export (PyTorch side)
runs in onnxruntime like PyTorch."""

import json

import numpy as np
import pytest
import torch

ms = pytest.importorskip(
    "mindspore", reason="MindSpore backend not installed: pip install miamind[mindspore]"
)

from miamind.engine.build import build_model  # noqa: E402
from miamind.engine.checkpoint_io import load_weights  # noqa: E402
from miamind.engine.config import load_config, resolve_config  # noqa: E402
from miamind.engine.export import export_onnx  # noqa: E402
from miamind.engine.run_folder import RunError, run_input_shape  # noqa: E402
from miamind.mindspore.attention import create_attention  # noqa: E402
from miamind.mindspore.export import export_mindir, load_mindir  # noqa: E402
from miamind.mindspore.train import train_mindspore  # noqa: E402
from miamind.tasks.synthetic import synthetic_flows  # noqa: E402


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    """A short MindSpore run (one epoch of 3 batches): weights with trained BN statistics."""
    cfg = resolve_config(
        "cicids2017",
        "fast",
        overrides={"trainer.epochs": 1},
        assignments=[
            "trainer.threads=1",
            "data.batch_size=32",
            "trainer.limit_train_batches=3",
            "plots=false",
        ],
    )
    run = tmp_path_factory.mktemp("ms_export") / "run"
    train_mindspore(cfg, run, arrays=synthetic_flows(n_rows=300, n_features=12), quiet=True)
    return run


def _info(run):
    from miamind.data.info import DatasetInfo

    d = json.loads((run / "dataset.json").read_text())
    return DatasetInfo(d["name"], d["task"], tuple(d["class_names"]), tuple(d["input_shape"]))


def _run_cell(run):
    """The run's best.ckpt weights in the MindSpore model, built independently of export.py."""
    from miamind.mindspore.convert import load_into_cell
    from miamind.mindspore.train import build_mindspore_model

    cell = build_mindspore_model(load_config(run / "config.yaml"), _info(run))
    load_into_cell(cell, run / "checkpoints" / "best.ckpt")
    cell.set_train(False)
    return cell


def test_mindir_of_a_run_folder_matches_the_cell(flow_run, tmp_path):
    assert run_input_shape(flow_run, batch=5) == (5, 1, 12)
    path = export_mindir(flow_run, tmp_path / "out" / "flowcnn.mindir", (5, 1, 12))
    assert path.is_file() and not list(path.parent.glob(".*tmp*"))
    x = np.random.default_rng(0).standard_normal((5, 1, 12)).astype(np.float32)
    got = load_mindir(path)(ms.Tensor(x)).asnumpy()
    want = _run_cell(flow_run)(ms.Tensor(x)).asnumpy()
    assert got.shape == (5, 2)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_mindir_of_a_pytorch_run_folder(flow_run, tmp_path):
    """A PyTorch run (Lightning checkpoint checkpoints/best.safetensors, no .ckpt) exports to MindIR too."""
    from miamind.engine.checkpoint_io import SafetensorsCheckpointIO

    run = tmp_path / "torch_run"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "dataset.json"):
        (run / name).write_text((flow_run / name).read_text())
    state, _ = load_weights(flow_run / "checkpoints" / "best_torch.safetensors")
    SafetensorsCheckpointIO().save_checkpoint(
        {"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 0},
        run / "checkpoints" / "best.safetensors",
    )
    path = export_mindir(run, tmp_path / "torch_run.mindir")  # default shape: (1, *input shape)
    x = np.random.default_rng(2).standard_normal((1, 1, 12)).astype(np.float32)
    np.testing.assert_allclose(
        load_mindir(path)(ms.Tensor(x)).asnumpy(),
        _run_cell(flow_run)(ms.Tensor(x)).asnumpy(),
        atol=1e-5,
        rtol=0,
    )


def test_mindir_of_a_cell(tmp_path):
    cell = create_attention("mia", 8)
    x = np.random.default_rng(1).standard_normal((2, 8, 6, 6)).astype(np.float32)
    path = export_mindir(cell, tmp_path / "mia.mindir", x.shape)
    graph = ms.nn.GraphCell(ms.load(str(path)))
    np.testing.assert_allclose(graph(ms.Tensor(x)).asnumpy(), cell(ms.Tensor(x)).asnumpy(), atol=1e-5, rtol=0)


def test_mindir_bad_arguments(tmp_path, flow_run):
    with pytest.raises(ValueError, match="must end in .mindir"):
        export_mindir(flow_run, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="input_shape .* is required"):
        export_mindir(create_attention("mia", 8), tmp_path / "x.mindir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a complete run folder"):
        export_mindir(tmp_path / "empty", tmp_path / "x.mindir")


def test_onnx_of_a_mindspore_run_matches_pytorch(flow_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = export_onnx(flow_run, tmp_path / "flowcnn.onnx")
    model = build_model(load_config(flow_run / "config.yaml"), _info(flow_run))
    model.load_state_dict(load_weights(flow_run / "checkpoints" / "best_torch.safetensors")[0])
    model.eval()
    x = torch.randn(7, 1, 12, generator=torch.Generator().manual_seed(3))  # another batch size: dynamic batch
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="must end in .onnx"):
        export_onnx(flow_run, tmp_path / "x.mindir")
