"""Engine callbacks: exact resume after SIGKILL, RNG state, non-finite loss guard, safetensors checkpoints."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from miamind.engine.callbacks import (
    FiniteLossGuard,
    NonFiniteLossError,
    RNGStateCallback,
    SafetensorsModelCheckpoint,
    resume_checkpoint_path,
)
from miamind.engine.checkpoint_io import SafetensorsCheckpointIO

from . import _resume_run
from ._resume_run import STEPS_PER_EPOCH, TinyClassifier, make_data, train
from .test_checkpoint_io import assert_identical

SCRIPT = Path(_resume_run.__file__)
SRC = Path(__file__).resolve().parents[2] / "src"


def load(path: Path) -> dict:
    return SafetensorsCheckpointIO().load_checkpoint(path)


def assert_same_weights(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add contention (and run-to-run variation)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_identical_weights_and_metrics(tmp_path):
    # A: uninterrupted, 3 epochs
    model_a, rec_a, trainer_a = train(tmp_path / "A", epochs=3)
    # B: same run in a subprocess that SIGKILLs itself in the middle of the second epoch
    kill_step = STEPS_PER_EPOCH + STEPS_PER_EPOCH // 2
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "B"), "--epochs", "3", "--kill-at-step", str(kill_step)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    last = resume_checkpoint_path(tmp_path / "B")
    assert last == tmp_path / "B" / "checkpoints" / "last.safetensors"
    saved = load(last)
    assert (saved["epoch"], saved["global_step"]) == (0, STEPS_PER_EPOCH)  # end of the first epoch
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.safetensors", "last.safetensors"]
    backup = tmp_path / "B_at_kill"
    shutil.copytree(tmp_path / "B", backup)

    # C: resume B from its last checkpoint
    model_c, rec_c, trainer_c = train(tmp_path / "B", epochs=3, ckpt_path=last)
    assert rec_c.train_batches == 2 * STEPS_PER_EPOCH  # restarted cleanly at the second epoch
    assert trainer_c.global_step == trainer_a.global_step == 3 * STEPS_PER_EPOCH
    assert_same_weights(model_a.state_dict(), model_c.state_dict())
    assert rec_c.epochs == {e: rec_a.epochs[e] for e in (1, 2)}  # losses, accuracy, LR: bit-identical
    ckpt_a, ckpt_c = trainer_a.checkpoint_callback, trainer_c.checkpoint_callback
    assert torch.equal(ckpt_a.best_model_score, ckpt_c.best_model_score)
    best_a, best_c = load(Path(ckpt_a.best_model_path)), load(Path(ckpt_c.best_model_path))
    assert best_a["epoch"] == best_c["epoch"]
    assert_same_weights(best_a["state_dict"], best_c["state_dict"])
    final_a, final_c = load(tmp_path / "A/checkpoints/last.safetensors"), load(last)
    for key in ("optimizer_states", "lr_schedulers", "loops", "epoch", "global_step"):
        assert_identical(final_a[key], final_c[key], key)

    # control: the same resume without restoring the RNG draws other dropout masks and diverges
    # (so the equality above is evidence that RNGStateCallback works, not that dropout is inert)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RNGStateCallback, "load_state_dict", lambda self, state_dict: None)
        model_x, _, _ = train(backup, epochs=3, ckpt_path=backup / "checkpoints" / "last.safetensors")
    assert not torch.equal(model_x.state_dict()["net.0.weight"], model_a.state_dict()["net.0.weight"])


class NaNAtStep(TinyClassifier):
    def __init__(self, nan_step: int):
        super().__init__()
        self.nan_step = nan_step

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step == self.nan_step else loss


def fit_nan(tmp_path: Path, nan_step: int, extra_callbacks=()):
    torch.manual_seed(0)
    train_dl, val_dl = make_data(0)
    module = NaNAtStep(nan_step)
    trainer = pl.Trainer(
        max_epochs=3,
        plugins=[SafetensorsCheckpointIO()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        callbacks=[
            SafetensorsModelCheckpoint(tmp_path / "checkpoints", monitor="val_loss"),
            FiniteLossGuard(),
            *extra_callbacks,
        ],
    )
    return module, trainer, train_dl, val_dl


def test_non_finite_loss_stops_before_anything_is_saved(tmp_path):
    nan_step = STEPS_PER_EPOCH + 3  # in the second epoch, after the first epoch's checkpoints
    ckpt_dir = tmp_path / "checkpoints"

    class Snapshot(pl.Callback):  # file bytes as they were when the bad step started
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == nan_step:
                self.files = {p.name: p.read_bytes() for p in ckpt_dir.iterdir()}
                self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}

    snap = Snapshot()
    module, trainer, train_dl, val_dl = fit_nan(tmp_path, nan_step, [snap])
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit(module, train_dl, val_dl)
    last = (ckpt_dir / "last.safetensors").resolve()
    msg = str(err.value)
    assert "nan" in msg and "epoch 1" in msg and f"global step {nan_step}" in msg and str(last) in msg
    assert (err.value.epoch, err.value.global_step, err.value.checkpoint) == (1, nan_step, str(last))
    assert isinstance(err.value, RuntimeError)
    assert {p.name: p.read_bytes() for p in ckpt_dir.iterdir()} == snap.files  # no new or changed file
    assert set(snap.files) == {"best.safetensors", "last.safetensors"}
    assert load(last)["global_step"] == STEPS_PER_EPOCH
    # raised before backward: the optimizer never stepped on NaN gradients
    assert_same_weights(snap.weights, module.state_dict())


def test_non_finite_loss_before_any_checkpoint(tmp_path):
    module, trainer, train_dl, val_dl = fit_nan(tmp_path, nan_step=2)
    with pytest.raises(NonFiniteLossError, match="epoch 0, global step 2.*no checkpoint written yet"):
        trainer.fit(module, train_dl, val_dl)
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_guard_checks_batch_end_outputs():
    guard = FiniteLossGuard()
    trainer = SimpleNamespace(current_epoch=4, global_step=17, checkpoint_callback=None)
    guard.on_train_batch_end(trainer, None, torch.tensor(0.5), None, 0)
    guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(1.0)}, None, 0)
    guard.on_train_batch_end(trainer, None, None, None, 0)  # skipped step
    with pytest.raises(NonFiniteLossError, match=r"loss inf at epoch 4, global step 17"):
        guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(float("inf"))}, None, 0)
    with pytest.raises(NonFiniteLossError, match=r"loss nan"):
        guard.on_train_batch_end(trainer, None, torch.tensor(float("nan")), None, 0)


def draws():
    return torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)]


def test_rng_state_survives_a_safetensors_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn()  # leave a cached gaussian in numpy's state
    callback = RNGStateCallback()
    path = tmp_path / "rng.safetensors"
    SafetensorsCheckpointIO().save_checkpoint(
        {"callbacks": {"RNGStateCallback": callback.state_dict()}}, path
    )
    expected = draws()
    draws()  # move every generator on
    callback.load_state_dict(load(path)["callbacks"]["RNGStateCallback"])
    got = draws()
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_monitor_none_writes_last_every_epoch_and_no_best(tmp_path):
    torch.manual_seed(0)
    train_dl, val_dl = make_data(0)
    epochs_in_last = []

    class ReadLast(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch > 0:
                epochs_in_last.append(load(tmp_path / "checkpoints" / "last.safetensors")["epoch"])

    trainer = pl.Trainer(
        max_epochs=3,
        plugins=[SafetensorsCheckpointIO()],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        callbacks=[SafetensorsModelCheckpoint(tmp_path / "checkpoints"), ReadLast()],
    )
    trainer.fit(TinyClassifier(), train_dl, val_dl)
    assert epochs_in_last == [0, 1]  # written at the end of every epoch, not only at train end
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.safetensors"]
    assert load(tmp_path / "checkpoints" / "last.safetensors")["epoch"] == 2


def test_best_and_last_are_fixed_names_overwritten_in_place(tmp_path):
    def fit(mode):
        torch.manual_seed(0)
        train_dl, val_dl = make_data(0)
        val_losses = []

        class RecordVal(pl.Callback):
            def on_validation_end(self, trainer, pl_module):
                val_losses.append(float(trainer.callback_metrics["val_loss"]))

        callback = SafetensorsModelCheckpoint(tmp_path / "checkpoints", monitor="val_loss", mode=mode)
        trainer = pl.Trainer(
            max_epochs=3,
            plugins=[SafetensorsCheckpointIO()],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=tmp_path,
            callbacks=[callback, RecordVal()],
        )
        trainer.fit(TinyClassifier(), train_dl, val_dl)
        return callback, val_losses

    # mode="max" makes the best epoch (highest val loss: the first) differ from the last one
    callback, val_losses = fit("max")
    ckpt_dir = tmp_path / "checkpoints"
    best_epoch = int(np.argmax(val_losses))
    assert best_epoch != 2
    assert Path(callback.best_model_path) == (ckpt_dir / "best.safetensors").resolve()
    assert float(callback.best_model_score) == max(val_losses)
    assert load(ckpt_dir / "best.safetensors")["epoch"] == best_epoch
    assert load(ckpt_dir / "last.safetensors")["epoch"] == 2
    # a second run into the same folder overwrites: no best-v1 / last-v1 version suffixes
    callback, val_losses = fit("min")
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["best.safetensors", "last.safetensors"]
    assert load(ckpt_dir / "best.safetensors")["epoch"] == int(np.argmin(val_losses))


def test_checkpoint_callback_configuration_errors(tmp_path):
    with pytest.raises(ValueError, match="save_top_k must be 0 or 1"):
        SafetensorsModelCheckpoint(tmp_path, monitor="val_loss", save_top_k=3)
    with pytest.raises(ValueError, match="fixed name"):
        SafetensorsModelCheckpoint(tmp_path, filename="{epoch}-best")
    train_dl, val_dl = make_data(0)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[SafetensorsModelCheckpoint(tmp_path / "checkpoints")],
        default_root_dir=tmp_path,
    )
    with pytest.raises(ValueError, match=r"plugins=\[SafetensorsCheckpointIO\(\)\]"):
        trainer.fit(TinyClassifier(), train_dl, val_dl)
    assert not (tmp_path / "checkpoints").exists()


def test_resume_checkpoint_path(tmp_path):
    assert resume_checkpoint_path(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.safetensors").write_bytes(b"")
    assert resume_checkpoint_path(tmp_path) is None
    (tmp_path / "checkpoints" / "last.safetensors").write_bytes(b"")
    assert resume_checkpoint_path(str(tmp_path)) == tmp_path / "checkpoints" / "last.safetensors"
