"""``miamind evaluate``: a run's checkpoint evaluated again on its validation or test split."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .._atomic import PathLike
from .build import build_datamodule_for, build_trainer, set_threads
from .load import load_run
from .run_folder import RunError, checkpoint_path, write_json
from .summary import format_table, headline


def evaluate(
    run_dir: PathLike, *, which: str = "best", split: str = "test", arrays=None, quiet: bool = False
) -> dict[str, Any]:
    """Re-evaluate a finished (or interrupted) run's checkpoint on ``split``; writes eval-WHICH-SPLIT.json."""
    run_dir = Path(run_dir)
    if split not in ("val", "test"):
        raise RunError(f"split must be 'val' or 'test', got {split!r}")
    module, cfg = load_run(run_dir, which)
    path = checkpoint_path(run_dir, which)
    set_threads(cfg)
    dm = build_datamodule_for(cfg, arrays)
    dm.setup("test")
    trainer = build_trainer(cfg, run_dir, fit=False, devices=1)
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
            "task": cfg.task,
            "model": cfg.model.name,
            "attention": cfg.model.attention,
            "checkpoint": which,
            "split": split,
            **headline(cfg.task, result["metrics"]),
        }
        print(format_table([row]))
    return result
