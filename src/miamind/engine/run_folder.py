"""The run folder: its file names, and the only code that writes or reads them (both backends).

::

    RUN_DIR/config.yaml              the resolved config (what was trained, exactly)
    RUN_DIR/dataset.json             class names and input shape (to rebuild the model)
    RUN_DIR/preprocess.json          statistics fitted on the training split (for predict)
    RUN_DIR/checkpoints/last.safetensors, best.safetensors   full Lightning training state
    RUN_DIR/checkpoints/last.ckpt, best.ckpt                 a MindSpore run's checkpoints
    RUN_DIR/checkpoints/last_torch.safetensors, best_torch.safetensors
                                     a MindSpore run's weights as PyTorch state dicts
    RUN_DIR/logs/attempt-K/metrics.csv   Lightning's CSV log of each (re)start
    RUN_DIR/logs/attempts.json       where each resumed attempt restarted
    RUN_DIR/metrics.csv              one row per logged step/epoch (a PyTorch run: the attempts joined)
    RUN_DIR/metrics.json             final validation and test metrics, confusion matrix, timings
    RUN_DIR/plots/*.png              learning curves, confusion matrix, segmentation overlays
    RUN_DIR/.lock                    held while a run trains (:mod:`miamind.engine.run_lock`)

Writes are atomic (``miamind._atomic``). Nothing here imports torch or Lightning.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._atomic import PathLike, atomic_open
from ..errors import UserError
from .config import Config, load_config, save_config

CHECKPOINTS = "checkpoints"
#: checkpoint kind -> file name suffix after "last" / "best"
CHECKPOINT_SUFFIXES = {
    "lightning": ".safetensors",  # SafetensorsCheckpointIO: the whole Lightning training state
    "mindspore": ".ckpt",  # mindspore.save_checkpoint of the network
    "torch-weights": "_torch.safetensors",  # checkpoint_io.save_weights: a PyTorch state dict
}


class RunError(UserError, ValueError):
    """A run folder that cannot be used as asked (exists already, lacks a file, ...)."""


def write_json(path: PathLike, data: Any) -> None:
    """``data`` as indented JSON, written atomically."""
    with atomic_open(path, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


# ------------------------------------------------------------------------------------------ writing
def check_new_run(run_dir: PathLike, hint: str = "choose another --out") -> None:
    """Refuse a folder that already holds a run (a ``config.yaml``); ``hint`` ends the message."""
    if (Path(run_dir) / "config.yaml").exists():
        raise RunError(f"{run_dir} already holds a run; {hint}")


def write_config(run_dir: PathLike, cfg: Config) -> None:
    """``config.yaml``: the resolved config (the folder is created)."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    save_config(cfg, Path(run_dir) / "config.yaml")


def write_dataset_files(run_dir: PathLike, dm) -> None:
    """``dataset.json`` (what rebuilds the model) and ``preprocess.json`` (what predict applies) of ``dm``."""
    from ..tasks.inputs import preprocess_state_to_json

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    info = dm.info
    write_json(
        run_dir / "dataset.json",
        {
            "name": info.name,
            "task": info.task,
            "class_names": list(info.class_names),
            "input_shape": list(info.input_shape),
        },
    )
    write_json(run_dir / "preprocess.json", preprocess_state_to_json(dm.preprocess_state()))


def write_run_inputs(run_dir: PathLike, cfg: Config, dm) -> None:
    """What a run starts with: ``config.yaml``, ``dataset.json``, ``preprocess.json``."""
    write_config(run_dir, cfg)
    write_dataset_files(run_dir, dm)


def write_metrics(run_dir: PathLike, metrics: Mapping[str, Any]) -> Path:
    """``metrics.json``: the run's final metrics (the file a finished run is recognised by)."""
    path = Path(run_dir) / "metrics.json"
    write_json(path, metrics)
    return path


def write_csv(path: PathLike, rows: Sequence[Mapping[str, Any]], fields: Sequence[str] | None = None) -> Path:
    """``rows`` as CSV under the columns ``fields`` (default: every row key, first seen first), atomically."""
    if fields is None:
        fields = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def write_metrics_csv(
    run_dir: PathLike, rows: Sequence[Mapping[str, Any]], fields: Sequence[str] | None = None
) -> Path:
    """``metrics.csv``: ``rows`` under the columns ``fields`` (default: every row key, first seen first)."""
    return write_csv(Path(run_dir) / "metrics.csv", rows, fields)


def run_identity(cfg: Config) -> dict[str, Any]:
    """The first keys of every ``metrics.json``: what was trained (task, model, attention, preset, seed)."""
    return {
        "task": cfg.task,
        "model": cfg.model.name,
        "attention": cfg.model.attention,
        "preset": cfg.preset,
        "seed": cfg.seed,
    }


def data_summary(dm) -> dict[str, Any]:
    """What the data module removed and how it split (flows: duplicates, non-finite rows, split sizes)."""
    report = getattr(dm, "splits_report", None) or {}
    keys = ("duplicate_rows_dropped", "duplicates_dropped", "rows_dropped_nonfinite", "relabelled")
    out = {k: report[k] for k in keys if k in report}
    if "split" in report:
        out["split_rows"] = report["split"]["rows"]
    return out


# ------------------------------------------------------------------------------------------ attempts
def logs_dir(run_dir: PathLike) -> Path:
    """``logs/``: one ``attempt-K`` folder of Lightning CSV logs per (re)start."""
    return Path(run_dir) / "logs"


def next_attempt(run_dir: PathLike) -> int:
    """The number of the next attempt (0 for a new run)."""
    return len(list(logs_dir(run_dir).glob("attempt-*")))


def read_attempts(run_dir: PathLike) -> dict[str, Any]:
    """``logs/attempts.json``: ``{"resumed_after": {attempt: last completed epoch}}``."""
    path = logs_dir(run_dir) / "attempts.json"
    return json.loads(path.read_text()) if path.exists() else {"resumed_after": {}}


def write_attempts(run_dir: PathLike, state: Mapping[str, Any]) -> None:
    """``logs/attempts.json`` (see :func:`read_attempts`)."""
    write_json(logs_dir(run_dir) / "attempts.json", state)


def join_attempt_logs(run_dir: PathLike, resumed_after: Mapping[int, int]) -> Path | None:
    """Join the attempts' CSV logs into ``metrics.csv``; rows a later attempt redid are dropped.

    ``resumed_after[k]`` is the last completed epoch attempt ``k`` started after; rows of attempt
    ``k - 1`` with a later epoch belong to work the kill threw away and was redone.
    """
    attempts = sorted(
        logs_dir(run_dir).glob("attempt-*/metrics.csv"), key=lambda p: int(p.parent.name.split("-")[1])
    )
    if not attempts:
        return None
    rows: list[dict[str, str]] = []
    fields: dict[str, None] = {}  # every attempt's columns, first seen first
    for path in attempts:
        k = int(path.parent.name.split("-")[1])
        cutoff = resumed_after.get(k + 1)
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields.update(dict.fromkeys(reader.fieldnames or []))
            for row in reader:
                epoch = row.get("epoch")
                if cutoff is not None and epoch not in (None, "") and int(float(epoch)) > cutoff:
                    continue
                rows.append(row)
    return write_metrics_csv(run_dir, rows, list(fields))


# ------------------------------------------------------------------------------------------ checkpoints
def checkpoints_dir(run_dir: PathLike) -> Path:
    """``checkpoints/``: where both backends write their checkpoints."""
    return Path(run_dir) / CHECKPOINTS


def checkpoint_file(run_dir: PathLike, which: str, kind: str = "lightning") -> Path:
    """Where the ``which`` ("best" / "last") checkpoint of ``kind`` (see ``CHECKPOINT_SUFFIXES``) lives."""
    if which not in ("best", "last"):
        raise RunError(f"checkpoint must be 'best' or 'last', got {which!r}")
    if kind not in CHECKPOINT_SUFFIXES:
        raise ValueError(f"checkpoint kind must be one of {', '.join(CHECKPOINT_SUFFIXES)}, got {kind!r}")
    return checkpoints_dir(run_dir) / f"{which}{CHECKPOINT_SUFFIXES[kind]}"


def checkpoint_path(run_dir: PathLike, which: str = "best") -> Path:
    """The existing PyTorch checkpoint ``which`` of a run: Lightning's, else a MindSpore run's converted weights.

    "best" falls back to "last" for runs without a monitored metric.
    """
    run_dir = Path(run_dir)
    for name in [which, "last"] if which == "best" else [which]:
        for kind in ("lightning", "torch-weights"):
            path = checkpoint_file(run_dir, name, kind)
            if path.is_file():
                return path
    raise RunError(f"{run_dir}: no checkpoint {which}.safetensors in checkpoints/")


# ------------------------------------------------------------------------------------------ reading
def open_run(run_dir: PathLike) -> tuple[Config, dict[str, Any]]:
    """A run folder's config and ``dataset.json``; ``RunError`` for a folder that is not a run."""
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


def run_config_and_info(run_dir: PathLike):
    """A run folder's config and ``DatasetInfo`` (what builds its model)."""
    from ..data.info import DatasetInfo

    cfg, d = open_run(run_dir)
    return cfg, DatasetInfo(d["name"], d["task"], tuple(d["class_names"]), tuple(d["input_shape"]))


def run_input_shape(run_dir: PathLike, batch: int = 1) -> tuple[int, ...]:
    """``(batch, *input_shape)`` of a run folder's model, from its ``dataset.json``."""
    _, dataset = open_run(run_dir)
    return (int(batch), *(int(d) for d in dataset["input_shape"]))


def load_preprocess(run_dir: PathLike) -> dict[str, Any]:
    """The statistics the run fitted on its training split (what ``predict`` must apply)."""
    from ..tasks.inputs import preprocess_state_from_json

    path = Path(run_dir) / "preprocess.json"
    if not path.is_file():
        raise RunError(f"{run_dir}: not a complete run folder (missing preprocess.json)")
    try:
        return preprocess_state_from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path}: not a valid preprocessing state ({e})") from None
