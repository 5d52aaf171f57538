"""``miamind viz attention``: the attention gates of several trained runs on the same test images.

:func:`attention_pictures` captures each run's gates (:func:`~miamind.viz.gate_capture.capture_gates`)
on test images of its task and draws them side by side
(:func:`~miamind.viz.gate_comparison.plot_gate_comparison`); ``docs/engine.md`` describes the picture.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._atomic import PathLike
from ..errors import InputError
from ..tasks.registry import get_task
from .config import Config
from .run_folder import RunError, checkpoint_path, run_config_and_info, write_json

__all__ = ["PictureError", "attention_pictures"]

#: what the first column shows, per task
_SPLIT = {
    "cifar10": "official CIFAR-10 test split",
    "isbi2012": "held-out fold (the run's test set): whole slices, reflect-padded at the bottom/right",
}


class PictureError(RunError):
    """Runs that cannot be drawn together (another task, other test images, an attention without gates)."""


def _portable_command(argv: list[str], run_dirs: Sequence[Path]) -> list[str]:
    """``argv`` with run folders as ``"$RUNS_DIR"/NAME`` and other paths relative (no machine path)."""
    from .._portable import portable_path

    parents = {Path(r).resolve().parent for r in run_dirs}
    root = parents.pop() if len(parents) == 1 else None
    return [portable_path(a, root) if a.startswith("/") else a for a in argv]


def _family(attention: Any) -> str | None:
    """The gate family (``"mia"``, ``"cbam"``, ``"coordatt"``) of a configured attention, or None."""
    from ..attention.comparators import CBAM, CoordAttention
    from ..attention.mia import _MIABase
    from ..attention.registry import get_attention

    try:
        ctor = get_attention(None if attention in (None, "none") else attention)
    except (KeyError, ValueError):
        return None
    for cls, family in ((_MIABase, "mia"), (CBAM, "cbam"), (CoordAttention, "coordatt")):
        if isinstance(ctor, type) and issubclass(ctor, cls):
            return family
    return None


def _check_runs(run_dirs: Sequence[Path]) -> list[Config]:
    """Every run's config, checked cheaply (no weights, no data) before anything is loaded."""
    configs = []
    for run_dir in run_dirs:
        cfg, _ = run_config_and_info(run_dir)
        configs.append(cfg)
        first_dir, first = run_dirs[0], configs[0]
        if cfg.task != first.task:
            raise PictureError(
                f"{run_dir}: task {cfg.task!r}, but {first_dir} is {first.task!r}; "
                "draw runs of one task together"
            )
        if cfg.task not in _SPLIT:
            raise PictureError(f"{run_dir}: task {cfg.task!r} has no images to draw gates over")
        attention = cfg.model.attention
        if _family(attention) is None:
            raise PictureError(
                f"{run_dir}: attention {attention!r} has no gate picture "
                "(only mia-family, cbam and coordatt layers have a channel and a spatial gate)"
            )
    return configs


def _image_record(task: str, cfg: Config, dm: Any, positions: list[int]) -> dict[str, Any]:
    if get_task(task).kind == "segmentation":
        slices = [int(dm.val_slices[p]) for p in positions]
        return {"test_positions": positions, "labelled_slices": slices, "fold": dict(cfg.data)["fold"]}
    # limit_eval keeps a seeded subset of the test split: positions are then within that subset
    official = positions if dict(cfg.data).get("limit_eval") is None else None
    return {"test_positions": positions, "official_test_indices": official}


def attention_pictures(
    run_dirs: Sequence[PathLike],
    out_png: PathLike,
    *,
    images: int = 4,
    layer: str = "auto",
    which: str = "best",
    command: Sequence[str] | None = None,
    arrays: Any = None,
) -> tuple[Path, Path]:
    """Draw the gates of ``run_dirs`` on ``images`` test images of their task (evenly spaced over the
    test split) to ``out_png``.

    All runs must be of one task, have an attention with gate pictures (mia-family, cbam, coordatt)
    and show the same test images (same fold / data); otherwise :class:`PictureError` names the run
    folder, before anything heavy is loaded. ``layer``: the layer whose spatial picture is drawn,
    ``"auto"`` for the deepest one at least 1/4 of the input size (per run), or a module name such as
    ``"groups.0.attn"`` (must exist in every run). The forward runs in float32 on the CPU.

    ``arrays`` injects the dataset (tests); runs with ``data.synthetic`` regenerate theirs.

    Returns ``(png, json)``: the figure and, beside it with the suffix ``.json``, the record of the
    runs, their checkpoint files, the layers drawn, the image indices and the command.
    """
    import numpy as np
    import torch

    from ..viz.gate_capture import capture_gates
    from ..viz.gate_comparison import GateColumn, pick_layer, plot_gate_comparison
    from .build import build_datamodule_for
    from .load import load_run

    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise InputError(f"--images must be an integer >= 1, got {images!r}")
    folders = [Path(r) for r in run_dirs]
    if not folders:
        raise InputError("give at least one run folder")
    out_png = Path(out_png)
    if out_png.suffix.lower() != ".png":
        raise InputError(f"--out {out_png}: expected a .png file name")
    configs = _check_runs(folders)
    task = configs[0].task

    columns: list[GateColumn] = []
    records: list[dict[str, Any]] = []
    shown: Any = None
    first_images: np.ndarray | None = None
    image_record: dict[str, Any] = {}
    denormalize: tuple[Any, Any] | None = None
    labels: list[str] | None = None
    for run_dir, cfg in zip(folders, configs, strict=True):
        module, _ = load_run(run_dir, which)
        network = module.model.float().to(memory_format=torch.contiguous_format)
        dm = build_datamodule_for(cfg, arrays)
        dm.setup("test")
        # spread over the test split: the CIFAR-10 copy is sorted by class, its first images are planes
        positions = dm.example_positions(images, split="test", spread=True)
        x, y = dm.example_batch(images, split="test", spread=True)
        state = dm.preprocess_state()
        mean, std = np.asarray(state["mean"]), np.asarray(state["std"])
        # the pixels themselves, independent of each run's normalisation statistics
        pixels = x.double().numpy() * std.reshape(1, -1, 1, 1) + mean.reshape(1, -1, 1, 1)
        if first_images is None:
            shown, first_images, denormalize = x, pixels, (mean, std)
            image_record = _image_record(task, cfg, dm, positions)
            if get_task(task).kind == "image-classification":
                image_record["classes"] = [dm.info.class_names[int(c)] for c in y]
                labels = [f"test {i}: {name}" for i, name in enumerate(image_record["classes"])]
            else:
                labels = [f"test {i}: slice {s}" for i, s in enumerate(image_record["labelled_slices"])]
        elif pixels.shape != first_images.shape or not np.allclose(pixels, first_images, atol=1e-4):
            raise PictureError(
                f"{run_dir}: its {images} test images differ from those of {folders[0]} "
                "(another fold, data set or limit_eval); draw runs with the same test images together"
            )
        captures = capture_gates(network, x)
        if not captures:
            raise PictureError(f"{run_dir}: the model has no mia-family, cbam or coordatt layer to draw")
        chosen = pick_layer(captures, (int(x.shape[-2]), int(x.shape[-1])), layer)
        attention = str(cfg.model.attention)
        repeated = sum(c.model.attention == attention for c in configs) > 1
        # two runs of one attention (seeds, models) are told apart by their folder names
        title = f"{attention} ({run_dir.name})" if repeated else attention
        columns.append(GateColumn(title=title, captures=captures, layer=chosen))
        layers = [
            dict(name=c.name, channels=int(c.channel.shape[1]), spatial=list(c.spatial.shape[1:]))
            for c in captures
        ]
        records.append(
            {
                "run": run_dir.name,
                "attention": attention,
                "model": cfg.model.name,
                "seed": cfg.seed,
                "checkpoint": str(checkpoint_path(run_dir, which).relative_to(run_dir)),
                "layer": chosen,
                "layers": layers,
                "meaning": captures[0].meaning,
            }
        )
        del module, network, dm

    title = f"{task}: attention gates on {len(shown)} test images"
    png = plot_gate_comparison(
        shown, columns, out_png, denormalize=denormalize, row_labels=labels, title=title
    )
    record = {
        "task": task,
        "png": png.name,
        "checkpoint": which,
        "images": {"split": _SPLIT[task], **image_record},
        "layer_rule": layer if layer != "auto" else "auto: the deepest layer at least 1/4 of the input size",
        "runs": records,
        "command": _portable_command(
            list(command) if command is not None else [Path(sys.argv[0]).name, *sys.argv[1:]], folders
        ),
    }
    record_path = out_png.with_suffix(".json")
    write_json(record_path, record)
    return png, record_path
