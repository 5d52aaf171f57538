"""Run configuration: defaults < preset < YAML file < command-line flags < ``--set KEY=VALUE``.

A config is a plain nested dict (what ``config.yaml`` in a run folder holds). Every key that can
appear is listed, with its default, in ``presets/defaults.yaml``; anything else is an error that
names the key and the valid ones, so a typo never silently trains with a default.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .._atomic import atomic_open
from ..errors import UserError
from ..tasks.registry import TASKS, TTA_MODES, get_task

PRESETS = ("paper", "fast", "fast12", "full")
PRECISIONS = ("32", "64", "bf16-mixed", "16-mixed", "bf16-true")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "linear", "cosine")

Config = dict[str, Any]


class ConfigError(UserError, ValueError):
    """A bad config value or key; the message names the dotted key (and the file, if any)."""


def _read_yaml(path: str | Path, what: str) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path}: no such file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _packaged(name: str) -> dict:
    text = resources.files("miamind.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def deep_merge(
    base: Mapping, override: Mapping, *, where: str = "", strict: bool = True, source: str = ""
) -> dict:
    """``base`` updated by ``override`` recursively; with ``strict`` an unknown key is an error."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        dotted = f"{where}.{key}" if where else str(key)
        if strict and key not in out:
            valid = ", ".join(sorted(map(str, out))) or "(none)"
            raise ConfigError(f"{source}unknown config key '{dotted}' (valid here: {valid})")
        if isinstance(out.get(key), dict) and key in out and out[key] is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}config key '{dotted}' must be a mapping, got {value!r}")
            # Free-form mappings (constructor kwargs) accept any key.
            free = key in ("attention_kwargs", "kwargs")
            out[key] = deep_merge(out[key], value, where=dotted, strict=strict and not free, source=source)
        else:
            out[key] = copy.deepcopy(value)
    return out


def task_defaults(task: str) -> Config:
    """The full schema of a task's config with default values."""
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}' (valid: {', '.join(TASKS)})")
    defaults = _packaged("defaults")
    section = defaults[task] if task in defaults else get_task(task).defaults
    if section is None:
        raise ConfigError(f"task '{task}' has no config section (presets/defaults.yaml or Task.defaults)")
    cfg = deep_merge(defaults["common"], section, strict=False)
    return {"task": task, "preset": None, **cfg}


def preset_overrides(task: str, preset: str) -> Config:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}' (valid: {', '.join(PRESETS)})")
    recipes = _packaged(preset)
    if task in recipes:
        return recipes[task]
    own = get_task(task).recipes if task in TASKS else {}
    if preset not in own:
        have = ", ".join([*recipes, *(t for t, entry in TASKS.items() if preset in entry.recipes)])
        raise ConfigError(f"preset '{preset}' has no recipe for task '{task}' (it has: {have})")
    return dict(own[preset])


def parse_set(assignment: str) -> Config:
    """``'optim.lr=0.1'`` -> ``{'optim': {'lr': 0.1}}``; the value is read as YAML (numbers, lists, null)."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set expects KEY=VALUE with a dotted key, e.g. optim.lr=0.1; got {assignment!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return _nest(key, value)


def resolve_config(
    task: str,
    preset: str = "fast",
    *,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    assignments: Iterable[str] = (),
) -> Config:
    """Build and validate a run config.

    ``overrides`` holds the values of explicit command-line flags (dotted keys, e.g.
    ``{"model.attention": "se", "seed": 1}``); ``assignments`` the ``--set KEY=VALUE`` strings.
    """
    cfg = task_defaults(task)
    cfg = deep_merge(cfg, preset_overrides(task, preset), source=f"preset {preset}: ")
    cfg["preset"] = preset
    if config_file is not None:
        data = _read_yaml(config_file, "config file")
        if data.get("task", task) != task:
            raise ConfigError(f"config file {config_file}: task '{data['task']}' differs from --task {task}")
        data = {k: v for k, v in data.items() if k not in ("task", "preset")}
        cfg = deep_merge(cfg, data, source=f"config file {config_file}: ")
    for dotted, value in (overrides or {}).items():
        if value is not None:
            cfg = deep_merge(cfg, _nest(dotted, value), source="command line: ")
    for assignment in assignments:
        cfg = deep_merge(cfg, parse_set(assignment), source="--set: ")
    validate_config(cfg)
    return cfg


def _nest(dotted: str, value: Any) -> Config:
    out: Config = {}
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _require(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{key}' {message}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_config(cfg: Config) -> None:
    """Check values whose errors would otherwise surface deep inside training."""
    from ..attention import list_attention
    from ..models import list_models

    task = cfg.get("task")
    _require(task in TASKS, "task", f"must be one of {', '.join(TASKS)}, got {task!r}")
    _require(
        isinstance(cfg["seed"], int) and not isinstance(cfg["seed"], bool),
        "seed",
        f"must be an integer, got {cfg['seed']!r}",
    )
    model = cfg["model"]
    _require(
        model["name"] in list_models(),
        "model.name",
        f"must be one of {', '.join(list_models())}, got {model['name']!r}",
    )
    att = model["attention"]
    valid_att = ["none"] + list_attention()
    _require(
        att is None or att in valid_att,
        "model.attention",
        f"must be one of {', '.join(valid_att)}, got {att!r}",
    )

    optim = cfg["optim"]
    _require(
        optim["name"] in OPTIMIZERS,
        "optim.name",
        f"must be one of {', '.join(OPTIMIZERS)}, got {optim['name']!r}",
    )
    _require(
        _number(optim["lr"]) and optim["lr"] > 0,
        "optim.lr",
        f"must be a positive number, got {optim['lr']!r}",
    )
    _require(
        _number(optim["weight_decay"]) and optim["weight_decay"] >= 0,
        "optim.weight_decay",
        f"must be >= 0, got {optim['weight_decay']!r}",
    )
    _require(
        _number(optim["no_decay_lr_scale"]) and optim["no_decay_lr_scale"] > 0,
        "optim.no_decay_lr_scale",
        f"must be a positive number, got {optim['no_decay_lr_scale']!r}",
    )
    ema = optim["ema_decay"]
    _require(
        ema is None or (_number(ema) and 0 < ema < 1),
        "optim.ema_decay",
        f"must be null or in (0, 1), got {ema!r}",
    )
    _require(
        _positive_int(optim["ema_every_n_steps"]),
        "optim.ema_every_n_steps",
        f"must be a positive integer, got {optim['ema_every_n_steps']!r}",
    )
    tta = cfg["eval"]["tta"]
    _require(tta in TTA_MODES, "eval.tta", f"must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    entry = get_task(str(task))
    _require(
        tta == "none" or entry.supports_tta,
        "eval.tta",
        f"test-time augmentation is for image classification, not {task} ({entry.kind})",
    )
    if "whitening_init" in model:
        _require(
            not model["whitening_init"] or model["name"] == "fastnet",
            "model.whitening_init",
            f"is a fastnet stem initialisation; model.name is {model['name']!r}",
        )
    sched = cfg["schedule"]
    _require(
        sched["name"] in SCHEDULES,
        "schedule.name",
        f"must be one of {', '.join(SCHEDULES)}, got {sched['name']!r}",
    )
    _require(
        _number(sched["warmup_epochs"]) and sched["warmup_epochs"] >= 0,
        "schedule.warmup_epochs",
        f"must be >= 0, got {sched['warmup_epochs']!r}",
    )
    _require(
        _number(sched["final_lr_ratio"]) and 0 <= sched["final_lr_ratio"] <= 1,
        "schedule.final_lr_ratio",
        f"must be in [0, 1], got {sched['final_lr_ratio']!r}",
    )
    ls = cfg["loss"]["label_smoothing"]
    _require(_number(ls) and 0 <= ls < 1, "loss.label_smoothing", f"must be in [0, 1), got {ls!r}")

    tr = cfg["trainer"]
    _require(
        _positive_int(tr["epochs"]), "trainer.epochs", f"must be a positive integer, got {tr['epochs']!r}"
    )
    tr["precision"] = str(tr["precision"])
    _require(
        tr["precision"] in PRECISIONS,
        "trainer.precision",
        f"must be one of {', '.join(PRECISIONS)}, got {tr['precision']!r}",
    )
    _require(
        _positive_int(tr["devices"]) or tr["devices"] == "auto",
        "trainer.devices",
        f"must be a positive integer or 'auto', got {tr['devices']!r}",
    )
    _require(
        _positive_int(tr["num_nodes"]),
        "trainer.num_nodes",
        f"must be a positive integer, got {tr['num_nodes']!r}",
    )
    _require(
        tr["threads"] is None or _positive_int(tr["threads"]),
        "trainer.threads",
        f"must be null or a positive integer, got {tr['threads']!r}",
    )
    _require(
        isinstance(tr["compile"], bool), "trainer.compile", f"must be true or false, got {tr['compile']!r}"
    )
    from .loggers import LOGGERS

    _require(
        isinstance(tr["loggers"], list) and all(isinstance(n, str) for n in tr["loggers"]),
        "trainer.loggers",
        f"must be a list of logger names ({', '.join(LOGGERS)}), got {tr['loggers']!r}",
    )
    for name in tr["loggers"]:
        _require(name in LOGGERS, "trainer.loggers", f"unknown logger {name!r} (valid: {', '.join(LOGGERS)})")
    for key in ("mlflow_tracking_uri", "mlflow_experiment"):
        _require(
            tr[key] is None or isinstance(tr[key], str),
            f"trainer.{key}",
            f"must be null or a string, got {tr[key]!r}",
        )
    for key in ("limit_train_batches", "limit_eval_batches"):
        v = tr[key]
        _require(v is None or (_number(v) and v > 0), f"trainer.{key}", f"must be null or > 0, got {v!r}")

    data = cfg["data"]
    for key in ("batch_size", "eval_batch_size"):
        _require(_positive_int(data[key]), f"data.{key}", f"must be a positive integer, got {data[key]!r}")
    ck = cfg["checkpoint"]
    _require(ck["mode"] in ("min", "max"), "checkpoint.mode", f"must be min or max, got {ck['mode']!r}")
    _require(
        ck["evaluate"] in ("best", "last"),
        "checkpoint.evaluate",
        f"must be best or last, got {ck['evaluate']!r}",
    )
    _require(
        ck["monitor"] is None or isinstance(ck["monitor"], str),
        "checkpoint.monitor",
        f"must be null or a metric name such as val/acc, got {ck['monitor']!r}",
    )


def save_config(cfg: Config, path: str | Path) -> None:
    """Write ``config.yaml`` atomically (a crash never leaves half a config behind)."""
    with atomic_open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)


def load_config(path: str | Path) -> Config:
    """Read a saved config and check it against the schema of its task."""
    return config_from_mapping(_read_yaml(path, "run config"), f"run config {path}")


def config_from_mapping(data: Mapping[str, Any], source: str) -> Config:
    """A saved config (``config.yaml``'s content, or a model folder's copy) checked against the
    schema of its task; errors start with ``source``."""
    task = data.get("task")
    if task not in TASKS:
        raise ConfigError(f"{source}: field 'task' must be one of {', '.join(TASKS)}, got {task!r}")
    cfg = deep_merge(
        task_defaults(task), {k: v for k, v in data.items() if k != "task"}, source=f"{source}: "
    )
    validate_config(cfg)
    return cfg


def flatten(cfg: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{'optim': {'lr': 0.1}}`` -> ``{'optim.lr': 0.1}`` (for printing and hyper-parameter logs)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out
