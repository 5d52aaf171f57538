"""From a resolved config to the objects that train: data module, model, task module, Lightning Trainer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..tasks.registry import get_task
from .config import Config
from .run_folder import checkpoints_dir
from .schema import TrainerConfig


def build_datamodule_for(cfg: Config, arrays=None):
    """The config's data module; ``arrays`` injects a dataset (``data.synthetic`` generates one)."""
    from ..tasks.datamodules import build_datamodule

    if cfg.data.synthetic and arrays is None:
        arrays = get_task(cfg.task).synthetic_arrays(cfg.seed)
    return build_datamodule(cfg.task, cfg.data, cfg.seed, arrays=arrays)


def build_data_and_model(cfg: Config, arrays=None):
    """``(dm, model)``: a run's data module, set up for fitting, and its PyTorch model before training.

    Seeded twice, so that the model's initial weights depend on the seed only, not on how much RNG
    the data used (both backends start from these weights).
    """
    import lightning.pytorch as pl

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule_for(cfg, arrays)
    dm.setup("fit")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    return dm, build_model(cfg, dm.info)


def model_arguments(cfg: Config, info) -> tuple[str, dict[str, Any]]:
    """``(name, kwargs)`` of the config's model for ``create_model``; both backends' factories take them."""
    m = cfg.model
    attention = None if m.attention in (None, "none") else m.attention
    return m.name, dict(
        num_classes=info.num_classes,
        in_chans=info.channels,
        attention=attention,
        attention_kwargs=dict(m.attention_kwargs),
        **m.kwargs,
    )


def build_model(cfg: Config, info):
    """The config's PyTorch model for the dataset described by ``info`` (a ``DatasetInfo``)."""
    from ..models import create_model

    name, kwargs = model_arguments(cfg, info)
    return create_model(name, **kwargs)


def task_module_arguments(cfg: Config, info) -> dict[str, Any]:
    """The config's ``TaskModule`` arguments besides the model and class weights (its hyper-parameters,
    plain values: they travel in every checkpoint)."""
    return {
        "kind": get_task(cfg.task).kind,
        "class_names": list(info.class_names),
        "optim": cfg.optim.model_dump(),
        "schedule": cfg.schedule.model_dump(),
        "loss": cfg.loss.model_dump(),
        "channels_last": bool(cfg.trainer.channels_last),
        "tta": cfg.eval.tta,
    }


def build_task_module(cfg: Config, model, info, class_weights=None):
    """The ``TaskModule`` that trains ``model`` as the config says (loss, optimiser, schedule, TTA)."""
    from ..tasks.modules import TaskModule

    return TaskModule(model, **task_module_arguments(cfg, info), class_weights=class_weights)


def set_threads(cfg: Config) -> None:
    """``trainer.threads`` torch CPU threads (none set: torch's default)."""
    import torch

    if cfg.trainer.threads:
        torch.set_num_threads(int(cfg.trainer.threads))


def cluster_environment(tr: TrainerConfig, fit: bool = True) -> list:
    """Lightning's cluster environment for a run inside a SLURM allocation.

    Lightning takes any process that sees ``SLURM_NTASKS`` for one rank of a multi-process SLURM
    job. A one-process run (one device, one node, or evaluation) is not one: it gets the plain
    environment. A multi-device run inside an allocation gets SLURM's, without Lightning's own
    requeue on SIGUSR1 (the study executor requeues; the warning signal is SIGUSR2).
    """
    import os

    from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment

    if "SLURM_JOB_ID" not in os.environ:
        return []
    devices = tr.devices
    one_process = not fit or (tr.num_nodes == 1 and isinstance(devices, int) and devices == 1)
    if one_process or int(os.environ.get("SLURM_NTASKS", "1")) == 1:
        return [LightningEnvironment()]
    return [SLURMEnvironment(auto_requeue=False)]


def build_trainer(
    cfg: Config,
    run_dir: Path,
    *,
    callbacks: Sequence = (),
    attempt: int = 0,
    fit: bool = True,
    devices: Any | None = None,
):
    """The Lightning Trainer of a run: safetensors checkpoints into the run folder, CSV logs per attempt.

    ``fit=False``: an evaluation Trainer (no checkpoints, no logger, one node).
    """
    import lightning.pytorch as pl

    from .callbacks import FiniteLossGuard, PreemptionGuard, RNGStateCallback, SafetensorsModelCheckpoint
    from .checkpoint_io import SafetensorsCheckpointIO
    from .loggers import build_loggers

    tr = cfg.trainer
    ck = cfg.checkpoint
    cbs: list[Any] = list(callbacks)
    if fit:
        cbs += [
            SafetensorsModelCheckpoint(dirpath=checkpoints_dir(run_dir), monitor=ck.monitor, mode=ck.mode),
            FiniteLossGuard(),
            RNGStateCallback(),
            PreemptionGuard(),
        ]
        if cfg.optim.ema_decay is not None:
            from lightning.pytorch.callbacks import EMAWeightAveraging

            # Validation, the checkpoints' state_dict and the final weights are the EMA's (with
            # BatchNorm statistics averaged too); the raw weights resume training.
            cbs.append(
                EMAWeightAveraging(
                    decay=float(cfg.optim.ema_decay),
                    update_every_n_steps=int(cfg.optim.ema_every_n_steps),
                    use_buffers=True,
                )
            )
    limit_eval = tr.limit_eval_batches
    return pl.Trainer(
        default_root_dir=str(run_dir),
        max_epochs=tr.epochs,
        precision=tr.precision,
        accelerator=tr.accelerator,
        devices=devices if devices is not None else tr.devices,
        num_nodes=tr.num_nodes if fit else 1,
        strategy=tr.strategy if fit else "auto",
        plugins=[SafetensorsCheckpointIO(), *cluster_environment(tr, fit)],
        callbacks=cbs,
        logger=build_loggers(cfg, run_dir, attempt) if fit else False,
        enable_checkpointing=fit,
        enable_progress_bar=tr.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=tr.log_every_n_steps,
        limit_train_batches=tr.limit_train_batches,
        limit_val_batches=limit_eval,
        limit_test_batches=limit_eval,
        num_sanity_val_steps=0,
        gradient_clip_val=tr.gradient_clip_val,
        # Our samplers shard by rank themselves, deterministically per (seed, epoch, batch, rank).
        use_distributed_sampler=False,
    )
