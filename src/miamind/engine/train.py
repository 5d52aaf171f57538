"""``miamind train``: a resolved config trained into a run folder (new, or resumed after a kill)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._atomic import PathLike
from ..tasks.registry import get_task
from .build import build_data_and_model, build_task_module, build_trainer, set_threads
from .config import Config, load_config
from .loggers import check_loggers
from .plots import save_run_plots
from .preemption import TerminatedError
from .provenance import record_attempt
from .run_folder import (
    RunError,
    check_new_run,
    checkpoint_file,
    data_summary,
    join_attempt_logs,
    next_attempt,
    read_attempts,
    run_identity,
    write_attempts,
    write_metrics,
    write_run_inputs,
)
from .run_lock import run_folder_lock
from .summary import format_table, summary_row


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]


def _is_rank_zero() -> bool:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _checkpoint_epoch(path: Path) -> int | None:
    from .checkpoint_io import SafetensorsCheckpointIO

    return int(SafetensorsCheckpointIO().load_checkpoint(path).get("epoch", -1))


def train(
    cfg: Config,
    out: PathLike,
    *,
    resume: bool = False,
    callbacks: Sequence = (),
    arrays=None,
    quiet: bool = False,
) -> TrainResult:
    """Train ``cfg`` into the run folder ``out``; with ``resume`` continue from its last checkpoint.

    The run folder is locked while training (:mod:`miamind.engine.run_lock`): a second process
    that starts or resumes the same folder is refused with a
    :class:`~miamind.engine.run_lock.RunFolderInUseError`.
    """
    if not _is_rank_zero():  # rank 0 holds the lock for the whole (distributed) run
        return _train_in_folder(cfg, out, resume=resume, callbacks=callbacks, arrays=arrays, quiet=quiet)
    if resume and not (Path(out) / "config.yaml").is_file():
        raise RunError(f"{out}: not a run folder (no config.yaml) - nothing to resume")
    with run_folder_lock(out):
        return _train_in_folder(cfg, out, resume=resume, callbacks=callbacks, arrays=arrays, quiet=quiet)


def _train_in_folder(
    cfg: Config,
    out: PathLike,
    *,
    resume: bool,
    callbacks: Sequence,
    arrays,
    quiet: bool,
) -> TrainResult:
    from .checkpoint_io import SafetensorsCheckpointIO

    run_dir = Path(out)
    rank0 = _is_rank_zero()
    last = checkpoint_file(run_dir, "last")
    state: dict[str, Any] = {"resumed_after": {}}
    attempt, ckpt_path = 0, None
    if resume:
        if not (run_dir / "config.yaml").is_file():
            raise RunError(f"{run_dir}: not a run folder (no config.yaml) - nothing to resume")
        cfg = load_config(run_dir / "config.yaml")
        state = read_attempts(run_dir)
        attempt = next_attempt(run_dir)
        # No last checkpoint (killed before the first epoch ended): start again from scratch.
        if last.is_file():
            ckpt_path = str(last)
            state["resumed_after"][str(attempt)] = _checkpoint_epoch(last)
    elif rank0:
        check_new_run(run_dir, f"use --resume {run_dir} or another --out")

    if rank0:
        check_loggers(cfg, run_dir)  # before anything of the run is written
    set_threads(cfg)
    dm, model = build_data_and_model(cfg, arrays)
    info = dm.info
    if dict(cfg.model).get("whitening_init"):
        from ..models.fastnet import init_whitening

        # airbench's 5,000 training images; a resumed run overwrites this with its checkpoint.
        init_whitening(model, dm.normalized_train_sample(5000))
    module = build_task_module(cfg, model, info, dm.class_weights)
    if cfg.trainer.compile:
        # In place, so parameter names, checkpoints and the EMA copy stay those of the plain network.
        module.model.compile()

    if rank0:
        write_run_inputs(run_dir, cfg, dm)
        record_attempt(run_dir, "resume" if resume else "start")
        if resume:
            write_attempts(run_dir, state)

    trainer = build_trainer(cfg, run_dir, callbacks=callbacks, attempt=attempt)
    t0 = time.perf_counter()
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    except SIGTERMException:
        raise TerminatedError(str(run_dir)) from None
    fit_seconds = time.perf_counter() - t0
    # Read now: trainer.test replaces callback_metrics with the test metrics.
    samples_per_s = trainer.callback_metrics.get("train/samples_per_s")

    ck = trainer.checkpoint_callback
    use_best = cfg.checkpoint.evaluate == "best" and cfg.checkpoint.monitor and ck.best_model_path
    eval_path = ck.best_model_path if use_best else ck.last_model_path
    val_final = module.last_eval.get("val", {})
    # The chosen checkpoint's state_dict (with weight averaging: the averaged weights) is what is
    # tested; loaded here because Lightning's ckpt_path would let the averaging callback put the
    # raw training weights back.
    module.load_state_dict(SafetensorsCheckpointIO().load_checkpoint(eval_path)["state_dict"])
    trainer.test(module, datamodule=dm, verbose=False)
    test = module.last_eval.get("test", {})

    world = trainer.world_size
    metrics = {
        **run_identity(cfg),
        "epochs": int(trainer.current_epoch),
        "world_size": world,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "fit_seconds_this_attempt": round(fit_seconds, 2),
        "train_samples_per_s": None if samples_per_s is None else round(float(samples_per_s) * world, 1),
        "monitor": cfg.checkpoint.monitor,
        "best_score": None if ck.best_model_score is None else float(ck.best_model_score),
        "evaluated_checkpoint": "best" if use_best else "last",
        "test_split": get_task(cfg.task).test_split,
        "val_last_epoch": val_final.get("metrics", {}),
        "test": test.get("metrics", {}),
        "test_confmat": test.get("confmat"),
        "class_names": list(info.class_names),
    }
    data_report = data_summary(dm)
    if get_task(cfg.task).near_copy_metrics and trainer.is_global_zero:
        from ..tasks.near_copies import near_copy_report, network_predictions

        novel, facts = near_copy_report(dm, *network_predictions(module, dm))
        metrics["test"].update(novel)
        data_report.update(facts)
    if data_report:
        metrics["data"] = data_report
    if trainer.is_global_zero:
        join_attempt_logs(run_dir, {int(k): v for k, v in state["resumed_after"].items()})
        write_metrics(run_dir, metrics)
        if cfg.plots:
            save_run_plots(run_dir, metrics, module, dm)
        if not quiet:
            print(format_table([summary_row(metrics)]))
    return TrainResult(run_dir, metrics)
