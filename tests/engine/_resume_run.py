"""A tiny, fully deterministic Lightning run for the kill-and-resume tests.

Imported by ``test_callbacks.py`` (runs A and C, in process) and executed as a script for run B,
which SIGKILLs itself mid-epoch:  ``python _resume_run.py OUT_DIR --epochs 3 --kill-at-step 12``.
Data order depends only on (seed, epoch) (``EpochSeededSampler``); the model has dropout, so
the global torch RNG state matters and must come back from the checkpoint.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from miamind.engine.callbacks import (
    FiniteLossGuard,
    RNGStateCallback,
    SafetensorsModelCheckpoint,
)
from miamind.engine.checkpoint_io import SafetensorsCheckpointIO

N_TRAIN, N_VAL, BATCH, FEATURES, CLASSES = 64, 32, 8, 8, 3
STEPS_PER_EPOCH = N_TRAIN // BATCH


class EpochSeededSampler(Sampler[int]):
    """A permutation that is a function of (seed, epoch) only; Lightning calls ``set_epoch``."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def make_data(seed: int):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(FEATURES, CLASSES, generator=g)
    x = torch.randn(N_TRAIN + N_VAL, FEATURES, generator=g)
    y = (x @ w).argmax(1)
    train = TensorDataset(x[:N_TRAIN], y[:N_TRAIN])
    val = TensorDataset(x[N_TRAIN:], y[N_TRAIN:])
    return (
        DataLoader(train, batch_size=BATCH, sampler=EpochSeededSampler(N_TRAIN, seed)),
        DataLoader(val, batch_size=16),
    )


class TinyClassifier(pl.LightningModule):
    def __init__(self, lr: float = 0.02):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(FEATURES, 32),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(32, 32),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(32, CLASSES),
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=5)
        decay = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
        return [opt], [
            {"scheduler": warmup, "interval": "step"},
            {"scheduler": decay, "interval": "epoch"},
        ]


class MetricsRecorder(pl.Callback):
    """Epoch-end ``callback_metrics`` and LR, as Python floats, keyed by epoch."""

    def __init__(self):
        self.epochs: dict[int, dict[str, float]] = {}
        self.train_batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.train_batches += 1

    def on_train_epoch_end(self, trainer, pl_module):
        row = {k: float(v) for k, v in trainer.callback_metrics.items()}
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        self.epochs[trainer.current_epoch] = row


class KillAtStep(pl.Callback):
    """SIGKILL this process at a global step: no exception handler, no teardown, no flush."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def train(
    out_dir: Path,
    epochs: int,
    seed: int = 7,
    ckpt_path: Path | None = None,
    kill_at_step: int | None = None,
):
    """One run; returns (module, recorder, trainer)."""
    torch.set_num_threads(1)  # identical float reductions in every process
    pl.seed_everything(seed, workers=True, verbose=False)
    train_dl, val_dl = make_data(seed)
    module = TinyClassifier()
    recorder = MetricsRecorder()
    callbacks = [
        FiniteLossGuard(),
        RNGStateCallback(),
        recorder,
        SafetensorsModelCheckpoint(out_dir / "checkpoints", monitor="val_loss"),
    ]
    if kill_at_step is not None:
        callbacks.append(KillAtStep(kill_at_step))
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        plugins=[SafetensorsCheckpointIO()],
        callbacks=callbacks,
        use_distributed_sampler=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out_dir,
        num_sanity_val_steps=2,
    )
    trainer.fit(module, train_dl, val_dl, ckpt_path=ckpt_path)
    return module, recorder, trainer


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kill-at-step", type=int, default=None)
    args = parser.parse_args()
    train(args.out_dir, args.epochs, args.seed, kill_at_step=args.kill_at_step)
    sys.exit(0)
