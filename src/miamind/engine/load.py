"""A trained run back from its folder: the network alone, or the whole task module, in one call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._atomic import PathLike
from .build import build_model, task_module_arguments
from .config import Config
from .run_folder import RunError, checkpoint_path, run_config_and_info


def _load(run_dir: PathLike, which: str) -> tuple[Config, Any, Any, Path, dict[str, Any] | None]:
    """``(cfg, info, model, path, checkpoint)``; ``checkpoint`` is None for converted MindSpore weights."""
    from .checkpoint_io import SafetensorsCheckpointIO, load_weights

    cfg, info = run_config_and_info(run_dir)
    model = build_model(cfg, info)
    path = checkpoint_path(run_dir, which)
    checkpoint: dict[str, Any] | None = None
    if path.name.endswith("_torch.safetensors"):  # weights converted from a MindSpore run
        weights = load_weights(path)[0]
    else:
        checkpoint = SafetensorsCheckpointIO().load_checkpoint(path)
        state = checkpoint["state_dict"]
        weights = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise RunError(
            f"{path}: weights do not fit the model in config.yaml "
            f"(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]})"
        )
    return cfg, info, model.eval(), path, checkpoint


def load_trained_model(run_dir: PathLike, which: str = "best"):
    """``(cfg, info, model, path)``: the run's network with the weights of its ``best`` (or ``last``) checkpoint.

    The network alone, in eval mode and the default memory format (what predict, visualize and
    export run). ``path`` is the checkpoint file: Lightning's ``.safetensors``, or for a MindSpore
    run the converted ``_torch.safetensors`` weights.
    """
    return _load(run_dir, which)[:4]


def load_run(run_dir: PathLike, checkpoint: str = "best"):
    """``(module, cfg)``: the run's trained ``TaskModule`` (eval mode) and its config, in one call.

    The module is rebuilt from the hyper-parameters its Lightning checkpoint carries (the
    ``TaskModule`` arguments; from ``config.yaml`` for a MindSpore run's converted weights, which
    carry none), its network gets the checkpoint's weights, and its loss the class weights the run
    trained with. ``checkpoint``: "best" (falls back to "last" for runs without a monitored
    metric) or "last". Everything is read from safetensors files; nothing is unpickled.
    """
    from ..tasks.modules import TaskModule

    cfg, info, model, _, ckpt = _load(run_dir, checkpoint)
    hparams = dict((ckpt or {}).get("hyper_parameters") or {}) or task_module_arguments(cfg, info)
    class_weights = None if ckpt is None else ckpt["state_dict"].get("class_weights")
    module = TaskModule(model, **hparams, class_weights=class_weights)
    return module.eval(), cfg
