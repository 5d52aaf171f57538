"""``miamind train / evaluate / predict / visualize`` as library functions.

A run folder holds everything needed to resume, evaluate or reuse a run::

    RUN_DIR/config.yaml              the resolved config (what was trained, exactly)
    RUN_DIR/dataset.json             class names and input shape (to rebuild the model)
    RUN_DIR/preprocess.json          statistics fitted on the training split (for predict)
    RUN_DIR/checkpoints/last.safetensors, best.safetensors   full training state, atomic writes
    RUN_DIR/logs/attempt-K/metrics.csv   Lightning's CSV log of each (re)start
    RUN_DIR/metrics.csv              the attempts joined, epochs a resume replayed dropped
    RUN_DIR/metrics.json             final validation and test metrics, confusion matrix, timings
    RUN_DIR/plots/*.png              learning curves, confusion matrix, segmentation overlays
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._atomic import (
    PathLike,
    atomic_open,
)
from ..tasks.registry import get_task
from .config import Config, load_config, save_config
from .run_lock import run_folder_lock

#: task name -> DatasetInfo.task kind (the task module's behaviour)


class RunError(ValueError):
    """A run folder that cannot be used as asked (exists already, lacks a file, ...)."""


def write_json(path: PathLike, data: Any) -> None:
    with atomic_open(path, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _is_rank_zero() -> bool:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


# ------------------------------------------------------------------------------------------ building
def build_datamodule_for(cfg: Config, arrays=None):
    from ..tasks.datamodules import build_datamodule

    data_cfg = dict(cfg["data"])
    if data_cfg.pop("synthetic", False) and arrays is None:
        arrays = synthetic_arrays(cfg["task"], cfg["seed"])
    return build_datamodule(cfg["task"], data_cfg, cfg["seed"], arrays=arrays)


def synthetic_arrays(task: str, seed: int):
    """A small generated dataset per task: smoke tests and trying the CLI without downloads.

    Sized so every preset's defaults work on it: 6,000 + 1,000 CIFAR-like images (the default
    val_size of 5,000 leaves 1,000 to train on), 10 EM-like 128x128 slices, 3,000 flows.
    """
    from ..tasks import synthetic

    if task == "cifar10":
        return synthetic.synthetic_cifar10(n_train=6000, n_test=1000, seed=seed)
    if task == "isbi2012":
        return synthetic.synthetic_isbi2012(n_slices=10, size=128, seed=seed)
    return synthetic.synthetic_flows(n_rows=3000, n_features=20, seed=seed)


def build_model(cfg: Config, info):
    from ..models import create_model

    m = cfg["model"]
    attention = None if m["attention"] in (None, "none") else m["attention"]
    return create_model(
        m["name"],
        num_classes=info.num_classes,
        in_chans=info.channels,
        attention=attention,
        attention_kwargs=dict(m["attention_kwargs"] or {}),
        **dict(m["kwargs"] or {}),
    )


def build_task_module(cfg: Config, model, info, class_weights=None):
    import torch

    from ..tasks.modules import TaskModule

    if cfg["trainer"]["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    return TaskModule(
        model,
        kind=get_task(cfg["task"]).kind,
        class_names=info.class_names,
        optim=cfg["optim"],
        schedule=cfg["schedule"],
        loss=cfg["loss"],
        class_weights=class_weights,
        channels_last=bool(cfg["trainer"]["channels_last"]),
        tta=cfg["eval"]["tta"],
    )


def _trainer(
    cfg: Config,
    run_dir: Path,
    *,
    callbacks: Sequence = (),
    attempt: int = 0,
    fit: bool = True,
    devices: Any | None = None,
):
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from .callbacks import FiniteLossGuard, RNGStateCallback, SafetensorsModelCheckpoint
    from .checkpoint_io import SafetensorsCheckpointIO

    tr = cfg["trainer"]
    ck = cfg["checkpoint"]
    cbs: list[Any] = list(callbacks)
    if fit:
        cbs += [
            SafetensorsModelCheckpoint(
                dirpath=run_dir / "checkpoints", monitor=ck["monitor"], mode=ck["mode"]
            ),
            FiniteLossGuard(),
            RNGStateCallback(),
        ]
        if cfg["optim"]["ema_decay"] is not None:
            from lightning.pytorch.callbacks import EMAWeightAveraging

            # Validation, the checkpoints' state_dict and the final weights are the EMA's (with
            # BatchNorm statistics averaged too); the raw weights resume training.
            cbs.append(
                EMAWeightAveraging(
                    decay=float(cfg["optim"]["ema_decay"]),
                    update_every_n_steps=int(cfg["optim"]["ema_every_n_steps"]),
                    use_buffers=True,
                )
            )
    limit_eval = tr["limit_eval_batches"]
    return pl.Trainer(
        default_root_dir=str(run_dir),
        max_epochs=tr["epochs"],
        precision=tr["precision"],
        accelerator=tr["accelerator"],
        devices=devices if devices is not None else tr["devices"],
        num_nodes=tr["num_nodes"] if fit else 1,
        strategy=tr["strategy"] if fit else "auto",
        plugins=[SafetensorsCheckpointIO()],
        callbacks=cbs,
        logger=CSVLogger(str(run_dir / "logs"), name="", version=f"attempt-{attempt}") if fit else False,
        enable_checkpointing=fit,
        enable_progress_bar=bool(tr["progress_bar"]),
        enable_model_summary=False,
        log_every_n_steps=tr["log_every_n_steps"],
        limit_train_batches=tr["limit_train_batches"],
        limit_val_batches=limit_eval,
        limit_test_batches=limit_eval,
        num_sanity_val_steps=0,
        gradient_clip_val=tr["gradient_clip_val"],
        # Our samplers shard by rank themselves, deterministically per (seed, epoch, batch, rank).
        use_distributed_sampler=False,
    )


def _set_threads(cfg: Config) -> None:
    import torch

    if cfg["trainer"]["threads"]:
        torch.set_num_threads(int(cfg["trainer"]["threads"]))


# ------------------------------------------------------------------------------------------ train
@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]


def _checkpoint_epoch(path: Path) -> int | None:
    from .checkpoint_io import SafetensorsCheckpointIO

    return int(SafetensorsCheckpointIO().load_checkpoint(path).get("epoch", -1))


def _join_logs(run_dir: Path, resumed_after: dict[int, int]) -> Path | None:
    """Join the attempts' CSV logs; an attempt's rows after its successor's restart point are dropped.

    ``resumed_after[k]`` is the last completed epoch attempt ``k`` started after; rows of attempt
    ``k - 1`` with a later epoch belong to work the kill threw away and was redone.
    """
    attempts = sorted(
        (run_dir / "logs").glob("attempt-*/metrics.csv"), key=lambda p: int(p.parent.name.split("-")[1])
    )
    if not attempts:
        return None
    rows: list[dict[str, str]] = []
    fields: list[str] = []
    for path in attempts:
        k = int(path.parent.name.split("-")[1])
        cutoff = resumed_after.get(k + 1)
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            for name in reader.fieldnames or []:
                if name not in fields:
                    fields.append(name)
            for row in reader:
                epoch = row.get("epoch")
                if cutoff is not None and epoch not in (None, "") and int(float(epoch)) > cutoff:
                    continue
                rows.append(row)
    out = run_dir / "metrics.csv"
    with atomic_open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return out


def _attempt_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "logs" / "attempts.json"
    return json.loads(path.read_text()) if path.exists() else {"resumed_after": {}}


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
    import lightning.pytorch as pl

    from .checkpoint_io import SafetensorsCheckpointIO

    run_dir = Path(out)
    rank0 = _is_rank_zero()
    last = run_dir / "checkpoints" / "last.safetensors"
    state: dict[str, Any] = {"resumed_after": {}}
    attempt = 0
    if resume:
        if not (run_dir / "config.yaml").is_file():
            raise RunError(f"{run_dir}: not a run folder (no config.yaml) - nothing to resume")
        cfg = load_config(run_dir / "config.yaml")
        state = _attempt_state(run_dir)
        attempt = len(list((run_dir / "logs").glob("attempt-*")))
        if not last.is_file():
            # Killed before the first epoch ended: start again from scratch in the same folder.
            ckpt_path = None
        else:
            ckpt_path = str(last)
            state["resumed_after"][str(attempt)] = _checkpoint_epoch(last)
    else:
        if rank0 and (run_dir / "config.yaml").exists():
            raise RunError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
        ckpt_path = None

    _set_threads(cfg)
    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    dm = build_datamodule_for(cfg, arrays)
    dm.setup("fit")
    info = dm.info
    # The model's initial weights depend on the seed only, not on how much RNG the data used.
    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    model = build_model(cfg, info)
    if cfg["model"].get("whitening_init"):
        from ..models.fastnet import init_whitening

        # airbench's 5,000 training images; a resumed run overwrites this with its checkpoint.
        init_whitening(model, dm.normalized_train_sample(5000))
    module = build_task_module(cfg, model, info, dm.class_weights)

    if rank0:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        write_json(
            run_dir / "dataset.json",
            {
                "name": info.name,
                "task": info.task,
                "class_names": list(info.class_names),
                "input_shape": list(info.input_shape),
            },
        )
        _save_preprocess(dm, run_dir / "preprocess.json")
        if resume:
            write_json(run_dir / "logs" / "attempts.json", state)

    trainer = _trainer(cfg, run_dir, callbacks=callbacks, attempt=attempt)
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    fit_seconds = time.perf_counter() - t0
    # Read now: trainer.test replaces callback_metrics with the test metrics.
    samples_per_s = trainer.callback_metrics.get("train/samples_per_s")

    ck = trainer.checkpoint_callback
    use_best = cfg["checkpoint"]["evaluate"] == "best" and cfg["checkpoint"]["monitor"] and ck.best_model_path
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
        "task": cfg["task"],
        "model": cfg["model"]["name"],
        "attention": cfg["model"]["attention"],
        "preset": cfg["preset"],
        "seed": cfg["seed"],
        "epochs": int(trainer.current_epoch),
        "world_size": world,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "fit_seconds_this_attempt": round(fit_seconds, 2),
        "train_samples_per_s": None if samples_per_s is None else round(float(samples_per_s) * world, 1),
        "monitor": cfg["checkpoint"]["monitor"],
        "best_score": None if ck.best_model_score is None else float(ck.best_model_score),
        "evaluated_checkpoint": "best" if use_best else "last",
        "test_split": get_task(cfg["task"]).test_split,
        "val_last_epoch": val_final.get("metrics", {}),
        "test": test.get("metrics", {}),
        "test_confmat": test.get("confmat"),
        "class_names": list(info.class_names),
    }
    data_report = data_summary(dm)
    if data_report:
        metrics["data"] = data_report
    if trainer.is_global_zero:
        _join_logs(run_dir, {int(k): v for k, v in state["resumed_after"].items()})
        write_json(run_dir / "metrics.json", metrics)
        if cfg["plots"]:
            save_run_plots(run_dir, module, dm, metrics)
        if not quiet:
            print(format_table([summary_row(metrics)]))
    return TrainResult(run_dir, metrics)


def data_summary(dm) -> dict[str, Any]:
    """What the data module removed and how it split (flows: duplicates, non-finite rows, split sizes)."""
    report = getattr(dm, "splits_report", None) or {}
    keys = ("duplicate_rows_dropped", "duplicates_dropped", "rows_dropped_nonfinite", "relabelled")
    out = {k: report[k] for k in keys if k in report}
    if "split" in report:
        out["split_rows"] = report["split"]["rows"]
    return out


def _save_preprocess(dm, path: Path) -> None:
    from ..tasks.inputs import preprocess_state_to_json

    write_json(path, preprocess_state_to_json(dm.preprocess_state()))


def load_preprocess(run_dir: Path) -> dict[str, Any]:
    """The statistics the run fitted on its training split (what ``predict`` must apply)."""
    from ..tasks.inputs import preprocess_state_from_json

    path = Path(run_dir) / "preprocess.json"
    if not path.is_file():
        raise RunError(f"{run_dir}: not a complete run folder (missing preprocess.json)")
    try:
        return preprocess_state_from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path}: not a valid preprocessing state ({e})") from None


# ------------------------------------------------------------------------------------------ plots
def save_run_plots(run_dir: Path, module, dm, metrics: Mapping[str, Any]) -> list[Path]:
    """Learning curves, confusion matrix and (segmentation) overlays of a few held-out slices."""
    import torch

    from ..viz import plot_confusion, plot_learning_curves, plot_segmentation_overlays

    plots = run_dir / "plots"
    written: list[Path] = []
    csv_path = run_dir / "metrics.csv"
    if csv_path.exists():
        plot_learning_curves(csv_path, plots / "learning_curves.png")
        written.append(plots / "learning_curves.png")
    if metrics.get("test_confmat") is not None:
        plot_confusion(metrics["test_confmat"], metrics["class_names"], plots / "confusion_matrix.png")
        written.append(plots / "confusion_matrix.png")
    if module.kind == "segmentation":
        x, y = dm.example_batch(3, split="val")
        module.eval()
        with torch.no_grad():
            pred = module(x.to(module.device)).argmax(1).cpu()
        pred = pred[..., : y.shape[-2], : y.shape[-1]]
        x = x[..., : y.shape[-2], : y.shape[-1]]
        plot_segmentation_overlays(x, y, pred, plots / "segmentation_overlays.png")
        written.append(plots / "segmentation_overlays.png")
    return written


# ------------------------------------------------------------------------------------------ reuse a run
def open_run(run_dir: PathLike) -> tuple[Config, dict[str, Any]]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run folder")
    for name in ("config.yaml", "dataset.json"):
        if not (run_dir / name).is_file():
            raise RunError(f"{run_dir}: not a complete run folder (missing {name})")
    cfg = load_config(run_dir / "config.yaml")
    try:
        dataset = json.loads((run_dir / "dataset.json").read_text())
    except json.JSONDecodeError as e:
        raise RunError(f"{run_dir / 'dataset.json'}: not valid JSON ({e})") from None
    return cfg, dataset


def checkpoint_path(run_dir: PathLike, which: str = "best") -> Path:
    run_dir = Path(run_dir)
    if which not in ("best", "last"):
        raise RunError(f"checkpoint must be 'best' or 'last', got {which!r}")
    # Lightning checkpoints of a PyTorch run, then the PyTorch weights a MindSpore run converted;
    # "best" falls back to "last" for runs without a monitored metric.
    order = [which, "last"] if which == "best" else [which]
    for name in order:
        for suffix in (".safetensors", "_torch.safetensors"):
            path = run_dir / "checkpoints" / f"{name}{suffix}"
            if path.is_file():
                return path
    raise RunError(f"{run_dir}: no checkpoint {which}.safetensors in checkpoints/")


def load_trained_model(run_dir: PathLike, which: str = "best"):
    """The run's model with the weights of its ``best`` (or ``last``) checkpoint, in eval mode."""
    from ..data.info import DatasetInfo
    from .checkpoint_io import SafetensorsCheckpointIO, load_weights

    cfg, dataset = open_run(run_dir)
    info = DatasetInfo(
        dataset["name"], dataset["task"], tuple(dataset["class_names"]), tuple(dataset["input_shape"])
    )
    model = build_model(cfg, info)
    path = checkpoint_path(run_dir, which)
    if path.name.endswith("_torch.safetensors"):  # weights converted from a MindSpore run
        weights = load_weights(path)[0]
    else:
        state = SafetensorsCheckpointIO().load_checkpoint(path)["state_dict"]
        weights = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise RunError(
            f"{path}: weights do not fit the model in config.yaml "
            f"(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]})"
        )
    return cfg, info, model.eval(), path


def evaluate(
    run_dir: PathLike, *, which: str = "best", split: str = "test", arrays=None, quiet: bool = False
) -> dict[str, Any]:
    """Re-evaluate a finished (or interrupted) run's checkpoint on ``split``; writes eval-WHICH-SPLIT.json."""
    run_dir = Path(run_dir)
    if split not in ("val", "test"):
        raise RunError(f"split must be 'val' or 'test', got {split!r}")
    cfg, info, model, path = load_trained_model(run_dir, which)
    _set_threads(cfg)
    dm = build_datamodule_for(cfg, arrays)
    dm.setup("test")
    module = build_task_module(cfg, model, info, dm.class_weights)
    trainer = _trainer(cfg, run_dir, fit=False, devices=1)
    loader = dm.test_dataloader() if split == "test" else dm.val_dataloader()
    t0 = time.perf_counter()
    # Lightning's test loop runs any loader; the metrics are logged under "test/" either way.
    trainer.test(module, dataloaders=loader, verbose=False)
    result = {
        "run_dir": str(run_dir),
        "checkpoint": str(path),
        "split": split,
        "seconds": round(time.perf_counter() - t0, 2),
        "metrics": module.last_eval["test"]["metrics"],
        "confmat": module.last_eval["test"]["confmat"],
    }
    write_json(run_dir / f"eval-{which}-{split}.json", result)
    if not quiet:
        row = {
            "task": cfg["task"],
            "model": cfg["model"]["name"],
            "attention": cfg["model"]["attention"],
            "checkpoint": which,
            "split": split,
        }
        row.update(_headline(cfg["task"], result["metrics"]))
        print(format_table([row]))
    return result


# ------------------------------------------------------------------------------------------ summaries


def _headline(task: str, metrics: Mapping[str, float]) -> dict[str, str]:
    return {k: f"{metrics[k]:.4f}" for k in get_task(task).headline if k in metrics}


def summary_row(m: Mapping[str, Any]) -> dict[str, str]:
    row = {
        "task": m["task"],
        "model": m["model"],
        "attention": str(m["attention"]),
        "epochs": str(m["epochs"]),
        "params": f"{m['parameters']:,}",
        "train_s": f"{m['fit_seconds_this_attempt']:.0f}",
        "img_per_s": "" if m["train_samples_per_s"] is None else f"{m['train_samples_per_s']:.0f}",
        "eval_ckpt": m["evaluated_checkpoint"],
    }
    row["test"] = ", ".join(f"{k} {v}" for k, v in _headline(m["task"], m["test"]).items())
    return row


def format_table(rows: Sequence[Mapping[str, str]]) -> str:
    """A Markdown table (readable in a terminal and pasteable into results/)."""
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}

    def line(vals):
        return "| " + " | ".join(str(v).ljust(widths[c]) for c, v in zip(cols, vals, strict=True)) + " |"

    out = [line(cols), "|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|"]
    out += [line([r.get(c, "") for c in cols]) for r in rows]
    return "\n".join(out)
