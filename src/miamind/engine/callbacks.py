"""Lightning callbacks for safe, exactly resumable training runs: checkpoints
(:class:`SafetensorsModelCheckpoint`), generator states (:class:`RNGStateCallback`), a stop at the
first non-finite loss (:class:`FiniteLossGuard`) and at the scheduler's warning (:class:`PreemptionGuard`).

Trainer configuration for exact resume (see the tests in ``tests/engine``)::

    Trainer(
        plugins=[SafetensorsCheckpointIO()],
        callbacks=[
            FiniteLossGuard(),
            RNGStateCallback(),
            SafetensorsModelCheckpoint(run_dir / "checkpoints"),
        ],
        use_distributed_sampler=False,
    )  # the data module's sampler owns the (seed, epoch) order
    trainer.fit(module, datamodule, ckpt_path=resume_checkpoint_path(run_dir))
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from .._atomic import PathLike
from ..errors import StoppedError
from .checkpoint_io import SafetensorsCheckpointIO
from .preemption import PREEMPT_SIGNAL, PreemptedError
from .run_folder import checkpoint_file


class NonFiniteLossError(StoppedError):
    """The training loss became NaN or infinite; training was stopped before it could be saved."""

    def __init__(self, loss: float | list[float], epoch: int, global_step: int, checkpoint: str | None):
        self.loss = loss
        self.epoch = epoch
        self.global_step = global_step
        self.checkpoint = checkpoint
        where = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint written yet"
        super().__init__(
            f"non-finite training loss {loss} at epoch {epoch}, global step {global_step}; "
            f"training stopped and nothing was saved after it ({where}). Try a lower learning "
            "rate, gradient clipping, or fp32 instead of mixed precision."
        )


def _last_good_checkpoint(trainer: pl.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    for attr in ("last_model_path", "best_model_path"):
        path = getattr(callback, attr, "") if callback is not None else ""
        if path and Path(path).is_file():
            return str(path)
    return None


class FiniteLossGuard(Callback):
    """Raise :class:`NonFiniteLossError` as soon as the training loss is NaN or infinite.

    The loss is checked in ``on_before_backward`` (so the optimizer never steps on NaN
    gradients and the weights in memory stay the last finite ones) and again in
    ``on_train_batch_end`` (losses that never reach Lightning's backward, e.g. manual
    optimisation). Lightning runs ``ModelCheckpoint`` callbacks after all others and does not
    call ``on_train_epoch_end`` after an exception, and ``SafetensorsModelCheckpoint`` never
    saves on exceptions, so no checkpoint is written after the failure.
    """

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        self._check(trainer, loss)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            self._check(trainer, loss)

    @staticmethod
    def _check(trainer: pl.Trainer, loss: torch.Tensor) -> None:
        loss = loss.detach()
        if bool(torch.isfinite(loss).all()):
            return
        value = loss.float().item() if loss.numel() == 1 else loss.float().cpu().tolist()
        raise NonFiniteLossError(
            value, trainer.current_epoch, trainer.global_step, _last_good_checkpoint(trainer)
        )


class RNGStateCallback(Callback):
    """Checkpoint the global random generators so a resumed run continues identically.

    Stored: torch CPU state (uint8 tensor), CUDA states (when CUDA is initialised), numpy's
    legacy global ``RandomState`` and Python ``random`` (as JSON-able lists), all storable by
    :class:`~miamind.engine.checkpoint_io.SafetensorsCheckpointIO`.

    The states are captured when the checkpoint is written (end of a training epoch, after
    validation) and restored in ``load_state_dict``, i.e. during ``trainer.fit(ckpt_path=...)``
    before any data is drawn (Lightning skips the sanity-check validation when resuming). Both
    runs then draw the same numbers before the next epoch's first batch (one draw for the train
    DataLoader iterator's base seed), so dropout continues identically. This assumes the data
    order does not come from the global generators (a sampler seeded from (seed, epoch)).
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
        version, internal, gauss_next = random.getstate()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": {
                "kind": kind,
                "keys": [int(k) for k in keys],
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached_gaussian),
            },
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"].cpu().to(torch.uint8))
        cuda = state_dict.get("cuda")
        if cuda is not None and torch.cuda.is_available():
            count = torch.cuda.device_count()
            if len(cuda) != count:
                rank_zero_warn(
                    f"the checkpoint holds RNG states of {len(cuda)} CUDA devices and this machine has "
                    f"{count}; restoring the first {min(len(cuda), count)}: the resumed run may not "
                    "continue identically"
                )
            for device, cuda_state in enumerate(cuda[:count]):
                torch.cuda.set_rng_state(cuda_state.cpu().to(torch.uint8), device)
        npst = state_dict["numpy"]
        keys = np.asarray(npst["keys"], dtype=np.uint32)
        np.random.set_state((npst["kind"], keys, npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
        py = state_dict["python"]
        random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))


class SafetensorsModelCheckpoint(ModelCheckpoint):
    """``last.safetensors`` every epoch and ``best.safetensors`` on improvement, no version suffix.

    Saves at the end of every training epoch, after that epoch's validation, so that a run
    resumed from ``last.safetensors`` starts cleanly at the next epoch. Files are overwritten
    in place, atomically (through :class:`SafetensorsCheckpointIO`, which the Trainer must use:
    ``Trainer(plugins=[SafetensorsCheckpointIO()])``; ``setup`` checks it).

    With ``monitor=None`` only ``last`` is written (pass ``save_top_k=1`` to also write a
    ``best`` that is simply the latest epoch). Nothing is saved on exceptions.
    """

    FILE_EXTENSION = ".safetensors"
    CHECKPOINT_NAME_LAST = "last"

    def __init__(
        self,
        dirpath: PathLike | None = None,
        *,
        monitor: str | None = None,
        mode: str = "min",
        filename: str = "best",
        save_top_k: int | None = None,
        every_n_epochs: int = 1,
        verbose: bool = False,
    ):
        if save_top_k is None:
            save_top_k = 1 if monitor is not None else 0
        if save_top_k not in (0, 1):
            raise ValueError(
                f"save_top_k={save_top_k}: SafetensorsModelCheckpoint keeps one best file "
                f"('{filename}{self.FILE_EXTENSION}'), so save_top_k must be 0 or 1"
            )
        if "{" in filename:
            raise ValueError(f"filename {filename!r}: a fixed name is required (no '{{metric}}' templates)")
        super().__init__(
            dirpath=None if dirpath is None else Path(dirpath),
            filename=filename,
            monitor=monitor,
            mode=mode,
            verbose=verbose,
            save_last=True,
            save_top_k=save_top_k,
            save_on_exception=False,
            save_weights_only=False,
            every_n_epochs=every_n_epochs,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        )

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        io = getattr(trainer.strategy, "checkpoint_io", None)
        if not isinstance(io, SafetensorsCheckpointIO):
            raise ValueError(
                f"{type(self).__name__} writes .safetensors files but the Trainer uses "
                f"{type(io).__name__}; pass Trainer(plugins=[SafetensorsCheckpointIO()])"
            )
        super().setup(trainer, pl_module, stage)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning writes `last` only when a top-k file was written at the same step, so with
        # monitor=None / save_top_k=0 (or no improvement with every_n_epochs>1) it would skip it
        if self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        if self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0:
            self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Never save after a failure: the state that raised is not a state worth resuming."""


def resume_checkpoint_path(run_dir: PathLike) -> Path | None:
    """``run_dir/checkpoints/last.safetensors`` if it exists (pass it to ``trainer.fit(ckpt_path=...)``)."""
    path = checkpoint_file(run_dir, "last")
    return path if path.is_file() else None


class PreemptionGuard(Callback):
    """On ``SIGUSR2``, stop at the next training step boundary with :class:`PreemptedError`.

    Nothing is saved at that boundary: the last epoch's checkpoint (written atomically after that
    epoch's validation) is the state a resumed run restarts from, so a preempted and requeued run
    ends with the metrics of an uninterrupted one. A mid-epoch state would also need the data
    loader's position, which no checkpoint holds; at most one epoch is redone.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handler(self, signum, frame) -> None:
        self.requested = True

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(getattr(signal, PREEMPT_SIGNAL), self._handler)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._previous is not None:
            signal.signal(getattr(signal, PREEMPT_SIGNAL), self._previous)
            self._previous = None

    def _check(self, trainer: pl.Trainer) -> None:
        if self.requested:
            raise PreemptedError(trainer.current_epoch, trainer.global_step, _last_good_checkpoint(trainer))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._check(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._check(trainer)
