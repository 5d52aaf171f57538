"""Run configuration: defaults < preset < YAML file < command-line flags < ``--set KEY=VALUE``.

The sources are merged as nested dicts; every key that can appear is listed, with its default,
in ``presets/defaults.yaml`` (or a task's ``Task.defaults``), and anything else is an error that
names the key and the valid ones, so a typo never silently trains with a default. The merged dict
is then validated into the task's typed config (:mod:`miamind.engine.schema`): ``resolve_config``
and ``load_config`` return a :class:`~miamind.engine.schema.RunConfig` (``cfg.optim.lr``), which
``save_config`` writes back as ``config.yaml`` in the same key order.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .._atomic import atomic_open
from ..errors import UserError
from ..tasks.registry import TASKS, get_task
from .schema import PRESETS, RunConfig, config_error_message

__all__ = [
    "PRESETS",
    "TASKS",
    "Config",
    "ConfigError",
    "config_from_mapping",
    "deep_merge",
    "flatten",
    "load_config",
    "parse_set",
    "preset_overrides",
    "resolve_config",
    "save_config",
    "task_defaults",
]

#: a run's typed config (a task's ``RunConfig`` subclass)
Config = RunConfig


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


def task_defaults(task: str) -> dict[str, Any]:
    """Every key of a task's config with its default value, as a nested dict (before presets)."""
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}' (valid: {', '.join(TASKS)})")
    defaults = _packaged("defaults")
    section = defaults[task] if task in defaults else get_task(task).defaults
    if section is None:
        raise ConfigError(f"task '{task}' has no config section (presets/defaults.yaml or Task.defaults)")
    cfg = deep_merge(defaults["common"], section, strict=False)
    return {"task": task, "preset": None, **cfg}


def preset_overrides(task: str, preset: str) -> dict[str, Any]:
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


def parse_set(assignment: str) -> dict[str, Any]:
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
    """Build and validate a run config (the task's typed config).

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
    return validate(task, cfg)


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def validate(task: str, cfg: Mapping[str, Any]) -> RunConfig:
    """``cfg`` (a merged nested mapping) as its task's typed config; a one-line ConfigError naming
    the dotted key otherwise."""
    if task not in TASKS:
        raise ConfigError(f"config key 'task' must be one of {', '.join(TASKS)}, got {task!r}")
    model: type[RunConfig] = get_task(task).config_class()
    try:
        return model.model_validate(cfg)
    except ValidationError as e:
        raise ConfigError(config_error_message(model, e)) from None


def save_config(cfg: Config, path: str | Path) -> None:
    """Write ``config.yaml`` atomically (a crash never leaves half a config behind)."""
    with atomic_open(path, "w") as f:
        yaml.safe_dump(cfg.model_dump(mode="python"), f, sort_keys=False)


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
    return validate(task, cfg)


def flatten(cfg: Mapping | BaseModel, prefix: str = "") -> dict[str, Any]:
    """``{'optim': {'lr': 0.1}}`` -> ``{'optim.lr': 0.1}`` (for printing and hyper-parameter logs)."""
    if isinstance(cfg, BaseModel):
        cfg = cfg.model_dump(mode="python")
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out
