"""`make demo` / `miamind demo`: train MIA-Mind on each of the paper's three tasks whose data is found.

Each task is a normal ``miamind train`` run (``fast`` preset) in its own run folder under ``--out``;
the demo only chooses the tasks and prints one table at the end. A task whose data is missing is
skipped with the reason (where it looked, how to get the files).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

TASKS = ("cifar10", "isbi2012", "cicids2017")


def _data_found(task: str) -> str | None:
    """None when the task's dataset is found, else the reason it is not."""
    from .data import dataset_module
    from .data.errors import DatasetNotFoundError

    try:
        dataset_module(task).locate(None)
    except DatasetNotFoundError as e:
        return str(e).splitlines()[0]
    return None


def run_demo(
    out: str = "runs/demo",
    tasks: Sequence[str] | None = None,
    attention: str = "mia",
    preset: str = "fast",
) -> int:
    from .engine.config import resolve_config
    from .engine.run import format_table, summary_row, train

    rows: list[dict] = []
    skipped: list[str] = []
    t0 = time.perf_counter()
    for task in tasks or TASKS:
        missing = _data_found(task)
        if missing:
            skipped.append(f"{task}: skipped ({missing})")
            print(f"== {task}: skipped, {missing}", flush=True)
            continue
        run_dir = Path(out) / f"{task}-{attention}-{preset}"
        if run_dir.exists():
            # The demo is a fresh run every time; real experiments use `miamind train`.
            shutil.rmtree(run_dir)
        cfg = resolve_config(task, preset, overrides={"model.attention": attention})
        print(
            f"== {task}: {cfg['model']['name']} + {attention}, preset {preset}, run folder {run_dir}",
            flush=True,
        )
        result = train(cfg, run_dir, quiet=True)
        rows.append(summary_row(result.metrics))
        print(format_table([rows[-1]]), flush=True)
    wall = time.perf_counter() - t0
    print()
    print(f"## miamind demo: {attention}, preset {preset}, {wall / 60:.1f} min wall")
    print(format_table(rows))
    for line in skipped:
        print(line)
    return 0 if rows else 1
