"""End to end: `train` writes a complete run folder for each task; resume after a kill ends where an
uninterrupted run ends; evaluate / predict / visualize reuse the folder; DDP with 2 CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from miamind.engine.checkpoint_io import SafetensorsCheckpointIO
from miamind.engine.config import resolve_config, save_config
from miamind.engine.evaluate import evaluate
from miamind.engine.predict import predict, visualize
from miamind.engine.run_folder import RunError
from miamind.engine.train import train
from miamind.tasks import synthetic
from miamind.tasks.registry import get_task, task_names

HERE = Path(__file__).parent
QUIET = ["trainer.progress_bar=false", "trainer.threads=1"]

# Small but learnable: each fits in a few seconds on one core.
TINY = {
    "cifar10": [
        "model.kwargs.widths=[8, 16, 16]",
        "data.val_size=100",
        "data.batch_size=64",
        "data.eval_batch_size=200",
        "optim.lr=0.2",
        # 8 steps an epoch: the preset's EMA (decay 0.8 every 5 steps) lags the raw weights by about
        # as long as these runs last; tests/engine/test_recipe.py tests the EMA itself
        "optim.ema_decay=null",
        "trainer.precision=32",
    ],
    "isbi2012": [
        "model.kwargs.width=4",
        "data.crop=32",
        "data.crops_per_epoch=64",
        "data.batch_size=16",
        "data.fold=4",
        "data.n_folds=5",
    ],
    "cicids2017": ["data.batch_size=64"],
}


def tiny_arrays(task, seed=0):
    if task == "cifar10":
        return synthetic.synthetic_cifar10(n_train=600, n_test=200, seed=seed)
    if task == "isbi2012":
        return synthetic.synthetic_isbi2012(n_slices=10, size=32, seed=seed)
    if task == "cicids2017":
        return synthetic.synthetic_flows(n_rows=1200, n_features=12, seed=seed)
    return get_task(task).synthetic_arrays(seed)  # a task added later: its own generated data


def tiny_cfg(task, *extra, epochs=2):
    return resolve_config(
        task, "fast", overrides={"trainer.epochs": epochs}, assignments=[*QUIET, *TINY.get(task, ()), *extra]
    )


def weights(path):
    return SafetensorsCheckpointIO().load_checkpoint(path)["state_dict"]


@pytest.mark.parametrize("task", task_names())
def test_train_writes_a_complete_run_folder(task, tmp_path):
    run = tmp_path / "run"
    result = train(tiny_cfg(task), run, arrays=tiny_arrays(task), quiet=True)
    for name in (
        "config.yaml",
        "dataset.json",
        "preprocess.json",
        "metrics.csv",
        "metrics.json",
        "checkpoints/last.safetensors",
        "plots/learning_curves.png",
    ):
        assert (run / name).is_file(), name
    m = json.loads((run / "metrics.json").read_text())
    assert m == json.loads(json.dumps(result.metrics))
    assert m["epochs"] == 2 and m["train_samples_per_s"] > 0
    headline = get_task(task).headline
    assert all(np.isfinite(m["test"][name]) for name in headline)
    assert 0.0 <= m["test"][headline[0]] <= 1.0
    if get_task(task).kind == "segmentation":
        # No "best" epoch is chosen on the held-out fold that is also the test set.
        assert m["evaluated_checkpoint"] == "last" and (run / "plots/segmentation_overlays.png").is_file()
        assert {"adapted_rand_error", "vi", "dice_cell", "iou_membrane", "pixel_acc"} <= set(m["test"])
        assert visualize(run, n=2, arrays=tiny_arrays(task))[0].is_file()
    else:
        assert m["evaluated_checkpoint"] == "best" and (run / "plots/confusion_matrix.png").is_file()
        assert len(m["test_confmat"]) == len(m["class_names"])
    # The CSV log has one validation row per epoch.
    import pandas as pd

    log = pd.read_csv(run / "metrics.csv")
    assert log["val/loss"].notna().sum() == 2
    assert yaml.safe_load((run / "config.yaml").read_text())["task"] == task


def test_training_learns_the_synthetic_task(tmp_path):
    """Not a smoke test only: a few epochs must beat chance clearly, or the engine is broken."""
    m = train(
        tiny_cfg("cicids2017", epochs=4), tmp_path / "run", arrays=tiny_arrays("cicids2017"), quiet=True
    ).metrics
    assert m["test"]["acc"] > 0.9 and m["test"]["auroc"] > 0.95
    m = train(
        tiny_cfg("cifar10", epochs=4), tmp_path / "cifar", arrays=tiny_arrays("cifar10"), quiet=True
    ).metrics
    assert m["test"]["acc"] > 0.3  # 10 classes: chance is 0.1


def test_existing_run_folder_is_not_overwritten(tmp_path):
    cfg = tiny_cfg("cicids2017", epochs=1)
    train(cfg, tmp_path / "run", arrays=tiny_arrays("cicids2017"), quiet=True)
    with pytest.raises(RunError, match="already holds a run; use --resume"):
        train(cfg, tmp_path / "run", arrays=tiny_arrays("cicids2017"), quiet=True)


def test_resume_after_kill_ends_like_an_uninterrupted_run(tmp_path):
    """Run A uninterrupted; run B SIGKILLed mid-epoch 2 of 3, then resumed: same weights and metrics."""
    cfg = resolve_config(
        "cicids2017",
        "fast",
        overrides={"trainer.epochs": 3},
        assignments=[*QUIET, "data.synthetic=true", "data.batch_size=256"],
    )
    a = train(cfg, tmp_path / "a", quiet=True)
    config = tmp_path / "cfg.yaml"
    save_config(cfg, config)
    steps_per_epoch = 8  # 70% of the 3,000 synthetic flows in batches of 256, last partial batch kept
    b = tmp_path / "b"
    proc = subprocess.run(
        [sys.executable, str(HERE / "_kill_run.py"), str(b), str(config), str(steps_per_epoch + 3)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL
    assert (b / "checkpoints/last.safetensors").is_file() and not (b / "metrics.json").exists()
    c = train({}, b, resume=True, quiet=True)
    wa, wc = weights(a.run_dir / "checkpoints/last.safetensors"), weights(b / "checkpoints/last.safetensors")
    assert wa.keys() == wc.keys()
    for k in wa:
        assert torch.equal(wa[k], wc[k]), k
    assert c.metrics["test"] == a.metrics["test"]
    assert c.metrics["val_last_epoch"] == a.metrics["val_last_epoch"]
    # The joined log has each epoch's validation once, as run A's does.
    import pandas as pd

    la, lc = pd.read_csv(a.run_dir / "metrics.csv"), pd.read_csv(b / "metrics.csv")
    va = la.dropna(subset=["val/loss"])["val/loss"].to_numpy()
    vc = lc.dropna(subset=["val/loss"])["val/loss"].to_numpy()
    np.testing.assert_array_equal(va, vc)


def test_resume_needs_a_run_folder(tmp_path):
    with pytest.raises(RunError, match="not a run folder"):
        train({}, tmp_path, resume=True)


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    from miamind.engine.callbacks import NonFiniteLossError

    cfg = tiny_cfg("cicids2017", "optim.lr=1.0e+30", "optim.name=sgd", epochs=3)
    with pytest.raises(NonFiniteLossError, match=r"step \d+"):
        train(cfg, tmp_path / "run", arrays=tiny_arrays("cicids2017"), quiet=True)


@pytest.fixture(scope="module")
def cifar_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cifar") / "run"
    cfg = tiny_cfg("cifar10", "data.synthetic=true", "data.limit_train=600", "data.val_size=100", epochs=1)
    train(cfg, run, quiet=True)
    return run


def test_evaluate_reproduces_the_runs_test_metrics(cifar_run):
    saved = json.loads((cifar_run / "metrics.json").read_text())
    result = evaluate(cifar_run, which="best", split="test", quiet=True)
    assert result["metrics"] == pytest.approx(saved["test"], abs=1e-6)
    assert (cifar_run / "eval-best-test.json").is_file()


def test_checkpoints_carry_the_hyper_parameters_and_load_run_rebuilds_the_module(cifar_run):
    """TaskModule.save_hyperparameters: the config (not the network) in every checkpoint and in the
    attempt's hparams.yaml; miamind.engine.load_run gives the trained module back in one call."""
    import miamind.engine
    from miamind.engine.config import load_config

    cfg = load_config(cifar_run / "config.yaml")
    ckpt = SafetensorsCheckpointIO().load_checkpoint(cifar_run / "checkpoints" / "last.safetensors")
    hparams = ckpt["hyper_parameters"]
    assert set(hparams) == {"kind", "class_names", "optim", "schedule", "loss", "channels_last", "tta"}
    assert (
        hparams["optim"] == cfg.optim.model_dump() and hparams["channels_last"] is cfg.trainer.channels_last
    )
    logged = yaml.safe_load((cifar_run / "logs" / "attempt-0" / "hparams.yaml").read_text())
    assert logged["schedule"] == cfg.schedule.model_dump() and len(logged["class_names"]) == 10

    module, loaded_cfg = miamind.engine.load_run(cifar_run, checkpoint="last")
    assert loaded_cfg == cfg and not module.training and module.optim_cfg == cfg.optim.model_dump()
    state = module.state_dict()
    assert state.keys() == ckpt["state_dict"].keys()
    for key, value in state.items():
        assert torch.equal(value, ckpt["state_dict"][key]), key
    with pytest.raises(RunError, match="checkpoint must be 'best' or 'last'"):
        miamind.engine.load_run(cifar_run, checkpoint="final")


def test_predict_images_with_the_training_statistics(cifar_run, tmp_path):
    from PIL import Image

    arrays = synthetic.synthetic_cifar10(n_train=6000, n_test=1000, seed=0)  # what data.synthetic made
    for i in range(3):
        Image.fromarray(arrays.test_images[i]).save(tmp_path / f"img{i}.png")
    rows = predict(cifar_run, [tmp_path], out=tmp_path / "pred.csv", quiet=True)
    assert [Path(r["input"]).name for r in rows] == ["img0.png", "img1.png", "img2.png"]
    assert all(abs(sum(v for k, v in r.items() if k.startswith("p_")) - 1) < 1e-4 for r in rows)
    # The same images through the evaluation pipeline give the same prediction.
    from miamind.engine.build import build_datamodule_for
    from miamind.engine.load import load_trained_model

    cfg, info, model, _ = load_trained_model(cifar_run)
    dm = build_datamodule_for(cfg)
    dm.setup("test")
    x, _ = dm.example_batch(3, split="test")
    with torch.no_grad():
        expected = model(x).argmax(1).tolist()
    assert [info.class_names.index(r["predicted"]) for r in rows] == expected
    assert (tmp_path / "pred.csv").read_text().startswith("input,predicted,probability")


def test_visualize_writes_attention_maps(cifar_run):
    paths = visualize(cifar_run, n=2)
    assert paths[0].is_file() and paths[0].stat().st_size > 10_000


def test_ddp_two_cpu_processes(tmp_path):
    """`--devices 2 --strategy ddp` on CPU (gloo): both ranks train on disjoint shards; rank 0 writes."""
    run = tmp_path / "ddp"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "miamind",
            "train",
            "--task",
            "cicids2017",
            "--out",
            str(run),
            "--epochs",
            "1",
            "--devices",
            "2",
            "--strategy",
            "ddp",
            "--accelerator",
            "cpu",
            "--threads",
            "1",
            "--set",
            "data.synthetic=true",
            "--set",
            "trainer.progress_bar=false",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((run / "metrics.json").read_text())
    assert m["world_size"] == 2
    assert 0.5 < m["test"]["acc"] <= 1.0
    assert "gloo" in proc.stderr or "distributed_backend=gloo" in proc.stdout + proc.stderr


def test_predict_segmentation_writes_masks_matching_evaluation(tmp_path):
    """ISBI: a TIFF of held-out slices -> one PNG mask per page, equal to the evaluation prediction."""
    import tifffile
    from PIL import Image

    from miamind.engine.build import build_datamodule_for
    from miamind.engine.load import load_trained_model

    arrays = tiny_arrays("isbi2012")
    run = tmp_path / "run"
    train(tiny_cfg("isbi2012", epochs=1), run, arrays=arrays, quiet=True)
    cfg, _, model, _ = load_trained_model(run)
    dm = build_datamodule_for(cfg, arrays)
    dm.setup("test")
    x, y = dm.example_batch(2, split="val")
    val_slices = dm.val_slices[:2]
    tifffile.imwrite(tmp_path / "slices.tif", arrays.train_images[val_slices])
    rows = predict(run, [tmp_path / "slices.tif"], out=tmp_path / "masks", quiet=True)
    assert len(rows) == 2
    with torch.no_grad():
        expected = model(x).argmax(1)[..., : y.shape[-2], : y.shape[-1]].numpy()
    for row, exp in zip(rows, expected, strict=True):
        mask = np.asarray(Image.open(row["mask"]))
        np.testing.assert_array_equal(mask, exp.astype(np.uint8) * 255)
        assert row["membrane_fraction"] == pytest.approx(float((exp == 0).mean()))


REAL_SHORT = {
    "cifar10": [
        "data.limit_train=2000",
        # no attention: 40 steps of this small net with mia's gates (x0.25 at init) stay within
        # 0.07 of chance; the path from disk to metrics is the same for every attention
        "model.attention=none",
        "data.val_size=200",
        "data.limit_eval=500",
        "data.batch_size=50",
        "model.kwargs.widths=[16, 32, 32]",
        "optim.lr=0.1",
        "schedule.warmup_epochs=0",
    ],
    "isbi2012": ["data.crops_per_epoch=32", "data.crop=64", "model.kwargs.width=4"],
    "cicids2017": ["data.batch_size=64"],
}


@pytest.mark.realdata
@pytest.mark.parametrize("task", ["cifar10", "isbi2012", "cicids2017"])
def test_real_data_short_run(task, real_data_dir, shared_cache_dir, monkeypatch, tmp_path):
    """One short epoch on the real files: the whole path from disk to metrics.json works."""
    monkeypatch.setenv("MIAMIND_CACHE", str(shared_cache_dir))
    cfg = resolve_config(
        task,
        "fast",
        overrides={"trainer.epochs": 1, "data.data_dir": str(real_data_dir)},
        assignments=[*QUIET, *REAL_SHORT[task]],
    )
    m = train(cfg, tmp_path / "run", quiet=True).metrics
    n_test = sum(sum(row) for row in m["test_confmat"]) if m["test_confmat"] else None
    if task == "cifar10":
        assert n_test == 500 and m["test"]["acc"] > 0.15  # 10 classes; chance 0.1
    elif task == "isbi2012":
        assert 0.5 < m["test"]["dice_cell"] <= 1.0 and m["test_split"].startswith("held-out fold")
    else:
        # the seed-0 split of the shipped subset, exact duplicates removed first
        assert n_test == 1884 and m["test"]["acc"] > 0.8
