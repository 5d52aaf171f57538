"""Study files: a YAML grid of ordinary runs, expanded into cells with stable ids.

A study file (``studies/NAME.yaml``) holds a ``name``, free-text ``protocol`` (per task: what is
trained, what is held out, what is reported; fixed before any result is seen) and ``groups``.
Each group is a product::

    groups:
      - name: cic-binary            # unique within the study
        task: cicids2017
        preset: fast
        models: [flowcnn, sklearn_rf]          # sklearn_* models are classical baselines
        attentions: [none, se, mia]            # ignored (none) for sklearn_* models
        attention_kwargs: [{}]                 # optional, product with attentions
        seeds: [0, 1, 2, 3, 4]
        folds: [0, 1, 2, 3, 4]                 # optional: sets data.fold (ISBI k-fold)
        sweep: {model.kwargs.attention_at: [[encoder], [decoder]]}   # optional, product
        set: {data.dataset: cicids2017, trainer.progress_bar: false}  # --set KEY=VALUE for every cell
        metrics: [f1_macro, acc]               # optional; the first is the primary metric
        reference: {model: flowcnn, attention: none}   # default: same model (baselines: the
                                                       # group's first network), attention none
        reference_ignores: [model.kwargs.attention_at]  # set keys the reference does not vary
        requires: gpu                          # optional: skipped, with a line, without a GPU
        resources: {gpus: 1, cpus: 8, mem: 32G, time: 120, partition: gpu}   # optional: what a
                                               # cluster gives each cell (not part of its id)

A cell is one run: (task, preset, model, attention, attention_kwargs, set, seed, fold). Its id is
readable and ends in a hash of exactly those values, so the same cell in two groups (or two
studies sharing a runs folder) is one run folder, and editing a group never reuses a folder
trained with other values. A cell whose attention cannot be built into the model (2-D-only layers
in the 1-D flowcnn) is marked N/A with the model's own reason and never run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from ..tasks.registry import get_task, task_names

SKLEARN_PREFIX = "sklearn_"
GROUP_KEYS = {
    "name",
    "task",
    "preset",
    "models",
    "attentions",
    "attention_kwargs",
    "seeds",
    "folds",
    "sweep",
    "set",
    "metrics",
    "reference",
    "reference_ignores",
    "requires",
    "resources",
    "note",
}
STUDY_KEYS = {"name", "description", "protocol", "hypotheses", "groups", "runs_dir", "notes"}
REFERENCE_KEYS = {"model", "attention"}
#: what a cell asks a cluster for (``resources:`` of a group; never part of a cell's id)
RESOURCE_KEYS = {
    "gpus": "GPUs per cell (int)",
    "cpus": "CPU cores per cell (int)",
    "mem": "memory per cell, e.g. 16G (SLURM's --mem)",
    "time": "time limit per attempt in minutes (int)",
    "partition": "SLURM partition",
}


class StudyError(UserError, ValueError):
    """A study file that cannot be used; the message names the file and the field."""


def is_baseline(model: str) -> bool:
    return model.startswith(SKLEARN_PREFIX)


@dataclass(frozen=True)
class Cell:
    """One run of a study."""

    study: str
    group: str
    task: str
    preset: str
    model: str
    attention: str
    attention_kwargs: dict[str, Any]
    sets: dict[str, Any]  # dotted key -> value, the group's `set` plus this cell's sweep values
    sweep: dict[str, Any]  # the swept keys only (part of the configuration label)
    seed: int
    fold: int | None
    metrics: tuple[str, ...]
    reference: dict[str, Any]
    reference_ignores: tuple[str, ...]
    requires: str | None = None
    na_reason: str | None = None
    id: str = field(default="")
    # what the cell asks a cluster for: not what it trains, so not part of identity() or the id
    resources: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ identity
    def identity(self) -> dict[str, Any]:
        """What the run trains; the cell id hashes exactly this."""
        return {
            "task": self.task,
            "preset": self.preset,
            "model": self.model,
            "attention": self.attention,
            "attention_kwargs": self.attention_kwargs,
            "set": self.sets,
            "seed": self.seed,
            "fold": self.fold,
        }

    def _config(self) -> dict[str, Any]:
        return {k: v for k, v in self.identity().items() if k not in ("seed", "fold")}

    def config_key(self) -> str:
        """The configuration the cell belongs to: everything but seed and fold."""
        return _canonical(self._config())

    def reference_key(self) -> str | None:
        """The configuration this cell's configuration is compared with (None: it is a reference)."""
        ref_model = self.reference.get("model") or self.model
        ref_attention = self.reference.get("attention", "none")
        if self.model == ref_model and self.attention == ref_attention and not self.attention_kwargs:
            return None
        ident = {**self._config(), "model": ref_model, "attention": ref_attention, "attention_kwargs": {}}
        if self.reference_ignores:
            # e.g. the U-Net insertion point: without attention it changes nothing, so every
            # insertion point is compared with the one network without attention
            ident["set"] = {k: v for k, v in self.sets.items() if k not in self.reference_ignores}
        return _canonical(ident)

    def label(self) -> str:
        """Short name of the configuration: model/attention, kwargs and swept values."""
        parts = [self.model if is_baseline(self.model) else f"{self.model}/{self.attention}"]
        if self.attention_kwargs:
            parts.append(",".join(f"{k}={_short(v)}" for k, v in sorted(self.attention_kwargs.items())))
        if self.sweep:
            parts.append(",".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in self.sweep.items()))
        return " ".join(parts)

    # ------------------------------------------------------------------ commands
    def argv(self, run_dir: Path | str) -> list[str]:
        """``miamind ...`` arguments that train this cell into ``run_dir`` (without the program)."""
        if is_baseline(self.model):
            argv = ["baseline", "--task", self.task, "--preset", self.preset, "--model", self.model]
        else:
            argv = ["train", "--task", self.task, "--preset", self.preset, "--model", self.model]
            argv += ["--attention", self.attention]
        argv += ["--seed", str(self.seed), "--out", str(run_dir)]
        sets = dict(self.sets)
        if self.fold is not None:
            sets["data.fold"] = self.fold
        for key, value in sorted(self.attention_kwargs.items()):
            sets[f"model.attention_kwargs.{key}"] = value
        for key, value in sets.items():
            argv += ["--set", f"{key}={_yaml_value(value)}"]
        return argv

    def command(self, run_dir: Path | str) -> str:
        """The shell command that reruns this one cell."""
        return shlex.join(["miamind", *self.argv(run_dir)])


@dataclass
class Study:
    name: str
    path: Path
    description: str
    protocol: dict[str, Any]
    groups: list[dict[str, Any]]
    cells: list[Cell]  # one per run: a run listed by two groups is the first group's cell
    runs_dir: Path | None
    # every (group, cell) listing, repeats included, each with its own group's reference: what the
    # report compares (a cell shared by two groups is compared in both, and counted once by Holm)
    members: list[Cell] = field(default_factory=list)
    # a confirmatory study's pre-stated hypotheses (free text, written before any cell runs)
    hypotheses: list[str] = field(default_factory=list)

    def runs_root(self, runs_dir: Path | str | None = None) -> Path:
        """Where the cells' run folders go: the argument, the file's ``runs_dir``, else runs/study/NAME."""
        if runs_dir is not None:
            return Path(runs_dir)
        if self.runs_dir is not None:
            return self.runs_dir
        return Path("runs") / "study" / self.name

    def run_dir(self, cell: Cell, runs_dir: Path | str | None = None) -> Path:
        return self.runs_root(runs_dir) / cell.id


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(_short(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _yaml_value(value: Any) -> str:
    """A value as ``--set`` reads it back (YAML): plain strings stay plain unless YAML would retype them."""
    if isinstance(value, str):
        try:
            if yaml.safe_load(value) == value and value.strip() == value and value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z.]+", "-", text).strip("-").lower()


def cell_id(cell: Cell) -> str:
    """``<task or data.dataset>-<model>-<attention>[-kw]-s<seed>[-f<fold>]-<hash>``: readable, stable, unique."""
    digest = hashlib.sha256(_canonical(cell.identity()).encode()).hexdigest()[:8]
    dataset = cell.sets.get("data.dataset")
    parts = [dataset if isinstance(dataset, str) and dataset else cell.task, cell.model]
    if not is_baseline(cell.model):
        parts.append(cell.attention)
    if cell.attention_kwargs:
        parts.append(_slug(",".join(f"{k}{_short(v)}" for k, v in sorted(cell.attention_kwargs.items()))))
    parts.append(f"s{cell.seed}")
    if cell.fold is not None:
        parts.append(f"f{cell.fold}")
    parts.append(digest)
    return "-".join(parts)


# ---------------------------------------------------------------------------------- N/A cells
@cache
def _not_applicable(model: str, attention: str, kwargs_json: str, model_kwargs_json: str) -> str | None:
    """Why ``attention`` cannot be built into ``model`` (its own error message), else None."""
    if is_baseline(model) or attention in ("none", None):
        return None
    from ..models import cannot_hold

    return cannot_hold(
        model, attention, attention_kwargs=json.loads(kwargs_json), **json.loads(model_kwargs_json)
    )


def _model_kwargs(sets: Mapping[str, Any], model: str) -> dict[str, Any]:
    return {k[len("model.kwargs.") :]: v for k, v in sets.items() if k.startswith("model.kwargs.")}


# ---------------------------------------------------------------------------------- loading
def _fail(path: Path, where: str, message: str) -> StudyError:
    return StudyError(f"study file {path}: {where}: {message}")


def _as_list(value: Any, path: Path, where: str, *, of: type | tuple[type, ...]) -> list:
    if not isinstance(value, list) or not value:
        raise _fail(path, where, f"must be a non-empty list, got {value!r}")
    for v in value:
        if not isinstance(v, of) or isinstance(v, bool) and of is int:
            raise _fail(path, where, f"every entry must be {getattr(of, '__name__', of)}, got {v!r}")
    return value


def load_study(path: str | Path, *, check_applicable: bool = True) -> Study:
    """Read, validate and expand a study file; errors name the file and the field."""
    from ..attention import list_attention
    from ..engine.config import PRESETS, TASKS
    from ..models import list_models

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"study file {path}: no such file") from None
    except yaml.YAMLError as e:
        raise StudyError(f"study file {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise StudyError(f"study file {path}: expected a mapping at the top level")
    unknown = set(data) - STUDY_KEYS
    if unknown:
        raise _fail(path, "top level", f"unknown keys {sorted(unknown)} (valid: {sorted(STUDY_KEYS)})")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise _fail(path, "name", f"must be letters, digits, '_', '-' or '.', got {name!r}")
    hypotheses = data.get("hypotheses") or []
    if not isinstance(hypotheses, list) or not all(isinstance(h, str) for h in hypotheses):
        raise _fail(path, "hypotheses", "must be a list of statements (strings)")
    groups = data.get("groups")
    if not isinstance(groups, list) or not groups:
        raise _fail(path, "groups", "must be a non-empty list of groups")
    valid_attention = ["none", *list_attention()]
    valid_models = list_models()
    cells: dict[str, Cell] = {}
    members: list[Cell] = []
    seen_groups: set[str] = set()
    for gi, group in enumerate(groups):
        where = f"groups[{gi}]"
        if not isinstance(group, dict):
            raise _fail(path, where, "must be a mapping")
        unknown = set(group) - GROUP_KEYS
        if unknown:
            raise _fail(path, where, f"unknown keys {sorted(unknown)} (valid: {sorted(GROUP_KEYS)})")
        gname = group.get("name")
        if not isinstance(gname, str) or not gname or gname in seen_groups:
            raise _fail(path, f"{where}.name", f"must be a unique non-empty string, got {gname!r}")
        seen_groups.add(gname)
        where = f"group {gname!r}"
        task = group.get("task")
        if task not in TASKS:
            raise _fail(path, f"{where}.task", f"must be one of {', '.join(TASKS)}, got {task!r}")
        preset = group.get("preset", "fast")
        if preset not in PRESETS:
            raise _fail(path, f"{where}.preset", f"must be one of {', '.join(PRESETS)}, got {preset!r}")
        models = _as_list(group.get("models"), path, f"{where}.models", of=str)
        for m in models:
            if not is_baseline(m) and m not in valid_models:
                raise _fail(
                    path, f"{where}.models", f"unknown model {m!r} (valid: {', '.join(valid_models)})"
                )
            if is_baseline(m) and not get_task(task).has_baselines:
                valid = ", ".join(t for t in task_names() if get_task(t).has_baselines)
                raise _fail(path, f"{where}.models", f"{m}: classical baselines exist for {valid} only")
        attentions = _as_list(group.get("attentions", ["none"]), path, f"{where}.attentions", of=str)
        for a in attentions:
            if a not in valid_attention:
                raise _fail(path, f"{where}.attentions", f"unknown attention {a!r}")
        kwargs_list = _as_list(
            group.get("attention_kwargs", [{}]), path, f"{where}.attention_kwargs", of=dict
        )
        seeds = _as_list(group.get("seeds", [0]), path, f"{where}.seeds", of=int)
        folds = group.get("folds")
        folds = [None] if folds is None else _as_list(folds, path, f"{where}.folds", of=int)
        sweep = group.get("sweep") or {}
        if not isinstance(sweep, dict):
            raise _fail(path, f"{where}.sweep", "must map dotted config keys to lists of values")
        for key, values in sweep.items():
            _as_list(values, path, f"{where}.sweep.{key}", of=object)
        sets = group.get("set") or {}
        if not isinstance(sets, dict):
            raise _fail(path, f"{where}.set", "must map dotted config keys to values")
        if "data.fold" in sets or "seed" in sets:
            raise _fail(path, f"{where}.set", "seed and data.fold are set with `seeds` and `folds`")
        metrics = group.get("metrics") or list(get_task(task).report_metrics)
        metrics = _as_list(metrics, path, f"{where}.metrics", of=str)
        reference = group.get("reference") or {}
        if not isinstance(reference, dict) or set(reference) - REFERENCE_KEYS:
            raise _fail(path, f"{where}.reference", f"must be a mapping with keys {sorted(REFERENCE_KEYS)}")
        ignores = group.get("reference_ignores") or []
        _as_list(ignores, path, f"{where}.reference_ignores", of=str) if ignores else None
        requires = group.get("requires")
        if requires not in (None, "gpu"):
            raise _fail(path, f"{where}.requires", f"must be gpu or absent, got {requires!r}")
        resources = _resources(group.get("resources"), path, f"{where}.resources")
        combos = itertools.product(
            models, attentions, kwargs_list, itertools.product(*sweep.values()), seeds, folds
        )
        for model, attention, kwargs, values, seed, fold in combos:
            if is_baseline(model):
                if attention != attentions[0]:
                    continue  # one baseline cell per seed, whatever the attention list
                attention, kwargs = "none", {}
            elif attention == "none" and kwargs:
                continue  # attention kwargs mean nothing without attention
            swept = dict(zip(sweep, values, strict=True))
            cell_sets = {**sets, **swept}
            na = None
            if check_applicable and not is_baseline(model):
                model_kwargs = _canonical(_model_kwargs(cell_sets, model))
                na = _not_applicable(model, attention, _canonical(kwargs), model_kwargs)
            cell = Cell(
                study=name,
                group=gname,
                task=task,
                preset=preset,
                model=model,
                attention=attention,
                attention_kwargs=dict(kwargs),
                sets=cell_sets,
                sweep=swept,
                seed=int(seed),
                fold=fold,
                metrics=tuple(metrics),
                reference=_reference_for(model, reference, models),
                reference_ignores=tuple(ignores),
                requires=requires,
                na_reason=na,
                resources=resources,
            )
            cell = replace(cell, id=cell_id(cell))
            cells.setdefault(cell.id, cell)  # the same run listed by two groups is one cell
            members.append(cell)
    runs_dir = data.get("runs_dir")
    return Study(
        name=name,
        path=path,
        description=str(data.get("description", "")),
        protocol=dict(data.get("protocol") or {}),
        groups=groups,
        cells=list(cells.values()),
        runs_dir=None if runs_dir is None else Path(runs_dir),
        members=members,
        hypotheses=list(hypotheses),
    )


def _resources(value: Any, path: Path, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, where, f"must be a mapping with keys {sorted(RESOURCE_KEYS)}")
    unknown = set(value) - set(RESOURCE_KEYS)
    if unknown:
        raise _fail(path, where, f"unknown keys {sorted(unknown)} (valid: {sorted(RESOURCE_KEYS)})")
    for key in ("gpus", "cpus", "time"):
        if key in value and (
            not isinstance(value[key], int) or isinstance(value[key], bool) or value[key] < 0
        ):
            raise _fail(path, f"{where}.{key}", f"must be a non-negative integer, got {value[key]!r}")
    for key in ("mem", "partition"):
        if key in value and not isinstance(value[key], str | int):
            raise _fail(path, f"{where}.{key}", f"must be a string, got {value[key]!r}")
    return dict(value)


def _reference_for(model: str, reference: Mapping[str, Any], models: Sequence[str]) -> dict[str, Any]:
    """A baseline's reference is the group's first network (without attention) unless one is named."""
    ref = dict(reference)
    networks = [m for m in models if not is_baseline(m)]
    if is_baseline(model) and "model" not in ref and networks:
        ref["model"] = networks[0]
    return ref


def select(cells: Sequence[Cell], only: Sequence[str] | None) -> list[Cell]:
    """Cells whose id, group or task matches one of ``only`` (all when None)."""
    if not only:
        return list(cells)
    wanted = set(only)
    return [c for c in cells if c.id in wanted or c.group in wanted or c.task in wanted]
