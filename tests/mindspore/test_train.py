"""MindSpore training backend: torch-equal loss and optimisers, a run folder that learns, and weights
that PyTorch evaluates to the same metrics (trained in one framework, evaluated in the other)."""

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ms = pytest.importorskip(
    "mindspore", reason="MindSpore backend not installed: pip install miamind[mindspore]"
)

from miamind.engine.build import build_datamodule_for, build_model  # noqa: E402
from miamind.engine.checkpoint_io import load_weights  # noqa: E402
from miamind.engine.config import load_config, resolve_config  # noqa: E402
from miamind.engine.run_folder import RunError  # noqa: E402
from miamind.engine.run_lock import RunFolderInUseError, run_folder_lock  # noqa: E402
from miamind.mindspore.convert import load_into_cell, torch_to_mindspore  # noqa: E402
from miamind.mindspore.train import (  # noqa: E402
    build_mindspore_model,
    build_optimizer,
    cross_entropy,
    make_train_step,
    train_mindspore,
)
from miamind.tasks.metrics import flow_metrics, scalar_metrics  # noqa: E402
from miamind.tasks.modules import lr_lambda  # noqa: E402
from miamind.tasks.synthetic import synthetic_cifar10, synthetic_flows  # noqa: E402

QUIET = ["trainer.threads=1", "trainer.progress_bar=false"]
# The keys of the PyTorch engine's metrics.json (engine/train.py train()); the MindSpore one has them all.
TORCH_METRICS_KEYS = {
    "task",
    "model",
    "attention",
    "preset",
    "seed",
    "epochs",
    "world_size",
    "parameters",
    "fit_seconds_this_attempt",
    "train_samples_per_s",
    "monitor",
    "best_score",
    "evaluated_checkpoint",
    "test_split",
    "val_last_epoch",
    "test",
    "test_confmat",
    "class_names",
}


def flows():
    return synthetic_flows(n_rows=1200, n_features=12)


@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_equals_torch(with_weight, smoothing):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((9, 3)).astype(np.float32) * 3
    target = rng.integers(0, 3, 9)
    weight = np.array([0.3, 2.0, 1.1], np.float32) if with_weight else None
    want = F.cross_entropy(
        torch.from_numpy(logits),
        torch.from_numpy(target),
        weight=None if weight is None else torch.from_numpy(weight),
        label_smoothing=smoothing,
    )
    got = cross_entropy(
        ms.Tensor(logits),
        ms.Tensor(target.astype(np.int32)),
        None if weight is None else ms.Tensor(weight),
        smoothing,
    )
    assert abs(float(got.asnumpy()) - float(want)) < 1e-6


class _TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(5, 7)
        self.fc2 = torch.nn.Linear(7, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class _MsNet(ms.nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = ms.nn.Dense(5, 7)
        self.fc2 = ms.nn.Dense(7, 3)

    def construct(self, x):
        return self.fc2(ms.ops.relu(self.fc1(x)))


@pytest.mark.parametrize(
    "name,jit,clip", [("sgd", False, 0.05), ("adam", False, None), ("adamw", True, None)]
)
def test_optimiser_steps_equal_torch(name, jit, clip):
    """Same weights, batches, groups (no decay on biases) and per-step lr schedule: same weights after 5 steps."""
    torch.manual_seed(0)
    tnet = _TorchNet()
    mnet = _MsNet()
    load_into_cell(mnet, torch_to_mindspore(tnet.state_dict()))
    cfg = {
        "name": name,
        "lr": 0.05,
        "momentum": 0.9,
        "nesterov": True,
        "betas": [0.9, 0.99],
        "weight_decay": 0.1,
    }
    schedule = {"name": "cosine", "warmup_epochs": 1.0, "final_lr_ratio": 0.1}
    factor = lr_lambda(schedule, total_steps=5, steps_per_epoch=2)
    decay = [p for p in tnet.parameters() if p.ndim > 1]
    no_decay = [p for p in tnet.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg["weight_decay"]},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    topt = {
        "sgd": lambda: torch.optim.SGD(groups, lr=cfg["lr"], momentum=0.9, nesterov=True),
        "adam": lambda: torch.optim.Adam(groups, lr=cfg["lr"], betas=(0.9, 0.99)),
        "adamw": lambda: torch.optim.AdamW(groups, lr=cfg["lr"], betas=(0.9, 0.99)),
    }[name]()
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, factor)
    mopt = build_optimizer(mnet.trainable_params(), cfg)
    msched = ms.experimental.optim.lr_scheduler.LambdaLR(mopt, factor)

    def loss_fn(logits, y):
        return cross_entropy(logits, y, None, 0.1)

    step = make_train_step(mnet, mopt, loss_fn, jit=jit, gradient_clip_val=clip)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.standard_normal((8, 5)).astype(np.float32)
        y = rng.integers(0, 3, 8)
        topt.zero_grad()
        loss = F.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(y), label_smoothing=0.1)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(tnet.parameters(), clip)
        topt.step()
        tsched.step()
        mloss = step(ms.Tensor(x), ms.Tensor(y.astype(np.int32)))
        msched.step()
        assert abs(float(mloss.asnumpy()) - loss.item()) < 1e-5
    want = torch_to_mindspore(tnet.state_dict())
    for pname, p in mnet.parameters_and_names():
        np.testing.assert_allclose(p.asnumpy(), want[pname], atol=2e-5, err_msg=pname)


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    """Two epochs of the fast cicids2017 recipe on synthetic flows, with the compiled (GRAPH) train step.

    (PYNATIVE, the default, trains the cifar10 run below; the optimiser tests check both modes step
    like torch.)"""
    cfg = resolve_config(
        "cicids2017", "fast", overrides={"trainer.epochs": 2}, assignments=[*QUIET, "data.batch_size=32"]
    )
    run = tmp_path_factory.mktemp("ms_flow") / "run"
    metrics = train_mindspore(cfg, run, arrays=flows(), quiet=True, jit=True)
    return run, metrics


def test_training_writes_a_run_folder_and_learns(flow_run):
    run, metrics = flow_run
    for name in (
        "config.yaml",
        "dataset.json",
        "preprocess.json",
        "metrics.csv",
        "metrics.json",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
        "checkpoints/last_torch.safetensors",
        "checkpoints/best_torch.safetensors",
        "plots/learning_curves.png",
        "plots/confusion_matrix.png",
    ):
        assert (run / name).is_file(), name
    m = json.loads((run / "metrics.json").read_text())
    assert m == json.loads(json.dumps(metrics))
    assert TORCH_METRICS_KEYS <= set(m)
    assert m["backend"] == "mindspore" and m["mindspore_mode"].startswith("GRAPH")
    assert m["epochs"] == 2 and m["evaluated_checkpoint"] == "best" and m["monitor"] == "val/f1"
    assert m["parameters"] == sum(
        p.numel() for p in build_model(load_config(run / "config.yaml"), _info(run)).parameters()
    )
    # Not a smoke test only: 2 classes (60% benign), so chance is 0.6 accuracy and 0.5 AUROC.
    assert m["test"]["acc"] > 0.9 and m["test"]["auroc"] > 0.95
    import pandas as pd

    log = pd.read_csv(run / "metrics.csv")
    assert log["val/loss"].notna().sum() == 2 and log["train/loss"].iloc[1] < log["train/loss"].iloc[0]
    # config.yaml is a valid run config (the backend is recorded in metrics.json, not in the config)
    assert load_config(run / "config.yaml").task == "cicids2017"


def _info(run):
    from miamind.data.info import DatasetInfo

    d = json.loads((run / "dataset.json").read_text())
    return DatasetInfo(d["name"], d["task"], tuple(d["class_names"]), tuple(d["input_shape"]))


def test_pytorch_evaluates_the_mindspore_weights_identically(flow_run):
    """best_torch.safetensors in the PyTorch flowcnn gives MindSpore's logits and test metrics."""
    run, metrics = flow_run
    cfg = load_config(run / "config.yaml")
    info = _info(run)
    model = build_model(cfg, info)
    state, _ = load_weights(run / "checkpoints" / "best_torch.safetensors")
    model.load_state_dict(state, strict=True)
    model.eval()
    cell = build_mindspore_model(cfg, info)
    load_into_cell(cell, run / "checkpoints" / "best.ckpt")
    cell.set_train(False)

    dm = build_datamodule_for(cfg, flows())
    dm.setup("test")
    collection = flow_metrics(info.class_names)
    for x, y in dm.test_dataloader():
        with torch.no_grad():
            logits = model(x)
        ms_logits = cell(ms.Tensor(x.numpy())).asnumpy()
        assert np.abs(logits.numpy() - ms_logits).max() < 1e-4
        collection.update(logits, y)
    computed = collection.compute()
    torch_metrics = scalar_metrics(computed, info.class_names)
    assert torch_metrics["acc"] == metrics["test"]["acc"]
    assert computed["confmat"].tolist() == metrics["test_confmat"]
    for key, value in metrics["test"].items():
        assert torch_metrics[key] == pytest.approx(value, abs=1e-4), key


def test_existing_run_folder_is_refused(flow_run):
    run, _ = flow_run
    cfg = load_config(run / "config.yaml")
    with pytest.raises(RunError, match="already holds a run"):
        train_mindspore(cfg, run, arrays=flows(), quiet=True)


def test_a_run_folder_in_use_is_refused_in_one_line(tmp_path, capsys):
    """As for PyTorch: a second run on a folder another process trains into is refused, nothing written."""
    from miamind.cli import main

    run = tmp_path / "run"
    cfg = resolve_config("cicids2017", "fast", assignments=QUIET)
    with run_folder_lock(run):
        with pytest.raises(RunFolderInUseError, match=re.escape(f"{run}: run folder in use by process")):
            train_mindspore(cfg, run, arrays=flows(), quiet=True)
        argv = ["train", "--backend", "mindspore", "--task", "cicids2017", "--out", str(run)]
        assert main([*argv, "--set", "data.synthetic=true"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(f"miamind: error: {run}: run folder in use"), err
        assert sorted(p.name for p in run.iterdir()) == [".lock"]


def test_unsupported_task_raises(tmp_path):
    cfg = resolve_config("isbi2012", "fast", assignments=QUIET)
    with pytest.raises(ValueError, match="task 'isbi2012' needs the PyTorch backend"):
        train_mindspore(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_multi_device_config_raises(tmp_path):
    cfg = resolve_config(
        "cicids2017", "fast", assignments=[*QUIET, "trainer.devices=2", "trainer.strategy=ddp"]
    )
    with pytest.raises(ValueError, match="one device: config keys trainer.devices"):
        train_mindspore(cfg, tmp_path / "run", arrays=flows(), quiet=True)


def test_cifar10_fastnet_runs_and_reports_pytorch_only_settings(tmp_path):
    """The fast cifar10 recipe (bf16-mixed, channels_last: PyTorch settings) trains fastnet in float32."""
    cfg = resolve_config(
        "cifar10",
        "fast",
        overrides={"trainer.epochs": 1},
        assignments=[
            *QUIET,
            "model.kwargs.widths=[8, 16, 16]",
            "data.val_size=40",
            "data.batch_size=16",
            "data.eval_batch_size=40",
            "trainer.limit_train_batches=2",
            "plots=false",
        ],
    )
    m = train_mindspore(cfg, tmp_path / "run", arrays=synthetic_cifar10(n_train=120, n_test=40), quiet=True)
    assert m["model"] == "fastnet" and m["evaluated_checkpoint"] == "best"
    assert (
        set(m["ignored_settings"]) == {"trainer.precision", "trainer.channels_last"}
        and m["precision"] == "32"
    )
    assert m["mindspore_mode"] == "PYNATIVE"
    assert 0.0 <= m["test"]["acc"] <= 1.0 and len(m["test_confmat"]) == 10
    # fastnet's frozen BN gammas stay frozen: the saved weights still hold 1.0 there
    state, _ = load_weights(tmp_path / "run" / "checkpoints" / "last_torch.safetensors")
    assert torch.equal(state["groups.0.bn1.weight"], torch.ones_like(state["groups.0.bn1.weight"]))
    model = build_model(cfg, _info(tmp_path / "run"))
    model.load_state_dict(state, strict=True)
