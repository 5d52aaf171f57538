"""A trained run as a Hugging Face model folder, and back: ``config.json`` + ``model.safetensors`` + card.

:func:`export_hf` writes the folder layout the Hugging Face Hub and its tools read:

- ``config.json``: ``library_name`` ("miamind"), ``format``, the ``architecture`` and ``model_kwargs``
  that :func:`miamind.models.create_model` takes, the ``task``, the ``dataset`` (name, kind, class
  names, input shape), the ``preprocessing`` the run fitted on its training split (what inputs need
  before the network sees them) and the run's whole ``run_config``;
- ``model.safetensors``: the network's weights (no optimizer state, nothing pickled);
- ``README.md``: a model card (front matter through huggingface_hub's ``ModelCard``) with the run's
  test metrics, data, recipe and the command that trained it.

:func:`from_pretrained` builds the network from a folder (or, through ``huggingface_hub``, a Hub
repository id) with those weights, in eval mode; ``miamind predict FOLDER ...`` uses a folder as it
uses a run folder. Pushing is ``huggingface_hub.upload_folder``'s job.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .. import __version__
from .._atomic import PathLike, atomic_open
from .._portable import portable_text
from .config import Config
from .run_folder import RunError

__all__ = ["FORMAT", "export_hf", "from_pretrained", "is_model_folder", "load_model_folder"]

#: The folder layout's version, in ``config.json["format"]``.
FORMAT = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CARD = "README.md"
_REQUIRED = ("architecture", "model_kwargs", "task", "dataset", "preprocessing", "run_config")


def is_model_folder(path: PathLike) -> bool:
    """A folder with ``config.json`` and no ``config.yaml`` (a run folder has the latter)."""
    path = Path(path)
    return (path / CONFIG).is_file() and not (path / "config.yaml").is_file()


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG
    if not path.is_file():
        raise RunError(f"{path}: missing (not a miamind model folder)")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("library_name") != "miamind":
        got = config.get("library_name") if isinstance(config, dict) else type(config).__name__
        raise RunError(f"{path}: not a miamind model config (library_name {got!r}, expected 'miamind')")
    if config.get("format") != FORMAT:
        raise RunError(f"{path}: field 'format' is {config.get('format')!r}; this miamind reads {FORMAT}")
    for key in _REQUIRED:
        if key not in config:
            raise RunError(f"{path}: missing field {key!r}")
    return config


def load_model_folder(path: PathLike):
    """``(cfg, info, model, preprocess_state)`` of a model folder; the model in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..data.info import DatasetInfo
    from ..models import create_model
    from ..tasks.inputs import preprocess_state_from_json
    from .config import config_from_mapping

    folder = Path(path)
    config = _read_config(folder)
    cfg = config_from_mapping(config["run_config"], f"{folder / CONFIG}: run_config")
    d = config["dataset"]
    try:
        info = DatasetInfo(d["name"], d["task"], tuple(d["class_names"]), tuple(d["input_shape"]))
        state = preprocess_state_from_json(config["preprocessing"])
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{folder / CONFIG}: field 'dataset' or 'preprocessing' is not valid ({e})") from None
    model = create_model(config["architecture"], **config["model_kwargs"])
    weights_path = folder / WEIGHTS
    if not weights_path.is_file():
        raise RunError(f"{weights_path}: missing")
    try:
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError) as e:
        raise RunError(f"{weights_path}: not a safetensors file ({e})") from None
    model_state = model.state_dict()
    missing = sorted(set(model_state) - set(weights))
    unexpected = sorted(set(weights) - set(model_state))
    wrong = [k for k in model_state.keys() & weights.keys() if model_state[k].shape != weights[k].shape]
    if missing or unexpected or wrong:
        raise RunError(
            f"{weights_path}: weights do not fit the {config['architecture']} of {CONFIG} "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]}, other shape {sorted(wrong)[:5]})"
        )
    model.load_state_dict(weights)
    return cfg, info, model.eval(), state


def from_pretrained(path_or_repo: PathLike, *, revision: str | None = None):
    """The network of a model folder written by ``miamind export --format hf`` (eval mode).

    A local folder is read as it is; anything else is taken as a Hugging Face Hub repository id
    and downloaded with ``huggingface_hub.snapshot_download`` first (that needs a network).
    """
    folder = Path(path_or_repo)
    if not folder.exists():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(str(path_or_repo), revision=revision))
    return load_model_folder(folder)[2]


def _card(run_dir: Path, config: dict[str, Any], cfg: Config, metrics: dict[str, Any], command: str) -> str:
    from huggingface_hub import ModelCard, ModelCardData

    data = json.dumps(cfg.data.model_dump(), sort_keys=True)
    test = metrics.get("test") or {}
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(test.items()) if isinstance(v, int | float))
    generated = (
        "\n**Generated data** (`data.synthetic=true`): a stand-in to check the pipeline; these numbers say "
        "nothing about MIA-Mind or the paper.\n"
        if cfg.data.synthetic
        else ""
    )
    card_data = ModelCardData(
        library_name="miamind",
        license="mit",
        tags=["miamind", "mia-mind", "attention", config["task"], str(cfg.model.attention or "none")],
    )
    text = f"""---
{card_data.to_yaml()}
---

# {config["architecture"]} + {cfg.model.attention or "no attention"} on {config["dataset"]["name"]}

A network trained with [miamind](https://pypi.org/project/miamind/), the toolkit for the MIA-Mind
attention mechanism (Qin, Liang, Fang, arXiv 2504.19080).

```python
import miamind
model = miamind.from_pretrained("path/to/this/folder")   # eval mode
```

`miamind predict FOLDER INPUTS...` applies the preprocessing in `config.json` (fitted on the run's
training split) before the network, as the run's evaluation did.

## Test metrics

{metrics.get("test_split", "held-out test split")}, checkpoint `{metrics.get("evaluated_checkpoint", "best")}`:

| metric | value |
|---|---|
{rows}

## Data
{generated}
{config["dataset"]["name"]} ({config["task"]}), classes: {", ".join(config["dataset"]["class_names"])};
input shape {tuple(config["dataset"]["input_shape"])}. Data settings: `{data}`.

## Recipe

Preset `{cfg.preset}`, {metrics.get("epochs", cfg.trainer.epochs)} epochs, optimizer
`{cfg.optim.name}` (lr {cfg.optim.lr}), batch size {cfg.data.batch_size}, seed {cfg.seed};
the whole configuration is `run_config` in `config.json`.

## Command

```bash
{command}
```
"""
    return str(ModelCard(portable_text(text, runs_root=run_dir.parent)))


def _command(run_dir: Path, task: str) -> str:
    """The study's recorded command for a study cell, else the ``miamind train`` call of its identity."""
    cell = run_dir / "study_cell.json"
    if cell.is_file():
        try:
            return portable_text(str(json.loads(cell.read_text())["command"]), runs_root=run_dir.parent)
        except (json.JSONDecodeError, KeyError):
            pass
    # The whole configuration gives the same run config back (tests/engine/test_hf_folder.py).
    return (
        "# run_config of config.json saved as run_config.yaml\n"
        f"miamind train --task {task} --config run_config.yaml --out RUN_DIR"
    )


def export_hf(run_dir: PathLike, out_dir: PathLike, *, which: str = "best") -> Path:
    """Write the model folder of a run's ``which`` checkpoint to ``out_dir`` (a new or empty folder).

    The folder is assembled next to ``out_dir`` and renamed into place, so a failure leaves nothing
    half-written; the run folder is only read. Returns ``out_dir``.
    """
    from safetensors.torch import save_file

    from .build import model_arguments
    from .load import load_trained_model
    from .run_folder import open_run

    run_dir, out = Path(run_dir), Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"{out}: exists and is not an empty folder; choose another --out")
    cfg, info, model, _ = load_trained_model(run_dir, which)
    _, dataset = open_run(run_dir)
    architecture, kwargs = model_arguments(cfg, info)
    try:
        preprocessing = json.loads((run_dir / "preprocess.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except FileNotFoundError as e:
        raise RunError(f"{run_dir}: not a finished run folder (missing {Path(e.filename).name})") from None
    config = {
        "library_name": "miamind",
        "format": FORMAT,
        "miamind_version": __version__,
        "architecture": architecture,
        "model_kwargs": kwargs,
        "task": cfg.task,
        "dataset": dataset,
        "preprocessing": preprocessing,
        "run_config": cfg.model_dump(mode="python"),
    }
    part = out.with_name(f".{out.name}.part-{os.getpid()}")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        with atomic_open(part / CONFIG, "w") as f:
            json.dump(config, f, indent=2, sort_keys=False)
            f.write("\n")
        weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(part / WEIGHTS), metadata={"format": "pt", "library_name": "miamind"})
        with atomic_open(part / CARD, "w") as f:
            f.write(_card(run_dir, config, cfg, metrics, _command(run_dir, cfg.task)))
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.replace(part, out)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return out
