"""`make demo` / `miamind demo`: train MIA-Mind on each of the paper's three tasks and print one table.

Each task is a normal ``miamind train`` run (``fast`` preset) in its own run folder under ``--out``;
the demo only chooses the data and prints one table at the end. For each task:

1. the real dataset, when its loader finds it (for the flow task: CIC-IDS2017, else the improved
   re-extraction);
2. else what ``miamind data fetch`` can download (unless ``fetch=False``), then that;
3. else generated data (``data.synthetic=true``), under a banner saying the numbers mean nothing.

The table's ``data`` column says which of these each row used, so a generated row is never read
as a result.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from .tasks.registry import get_task, task_names

TASKS = task_names()
GENERATED = "generated"


def _found(dataset: str) -> bool:
    from .data import dataset_module
    from .data.errors import DatasetNotFoundError

    try:
        dataset_module(dataset).locate(None)
    except DatasetNotFoundError:
        return False
    return True


def choose_data(task: str, fetch: bool = True, unreachable: set[str] | None = None) -> str:
    """The dataset ``task`` trains on (fetching it when allowed and possible), or ``GENERATED``."""
    from .data.fetch import FetchError, fetch_dataset

    candidates = get_task(task).datasets
    for dataset in candidates:
        if _found(dataset):
            return dataset
    if fetch:
        for dataset in candidates:
            try:
                fetch_dataset(dataset, log=_say, unreachable=unreachable)
                return dataset
            except FetchError as e:
                _say(f"   {e}")
    return GENERATED


GENERATED_EPOCHS = 2


def _say(line: str) -> None:
    print(line, flush=True)


def generated_banner(tasks: Sequence[str]) -> str:
    names = ", ".join(tasks)
    return "\n".join(
        [
            "!" * 100,
            f"!! GENERATED DATA for {names}: no real data was found or could be fetched, so these rows",
            "!! train on small generated stand-ins (data.synthetic=true). Their numbers say nothing about",
            "!! MIA-Mind or the paper. Get the real data with `miamind data fetch all` (or by hand: see",
            "!! `miamind data check`), set MIAMIND_DATA to its folder, and run `make demo` again.",
            "!" * 100,
        ]
    )


def run_demo(
    out: str = "runs/demo",
    tasks: Sequence[str] | None = None,
    attention: str = "mia",
    preset: str = "fast",
    *,
    fetch: bool = True,
    assignments: Sequence[str] = (),
) -> int:
    """Train every task (real data when found or fetched, else generated) and print one table.

    ``assignments`` are ``--set KEY=VALUE`` overrides applied to every task (tests use them to
    shrink the budget; the demo itself keeps the preset's).
    """
    from .engine.config import resolve_config
    from .engine.summary import format_table, summary_row
    from .engine.train import train

    rows: list[dict] = []
    generated: list[str] = []
    unreachable: set[str] = set()  # a host that did not answer is not asked again for the next task
    t0 = time.perf_counter()
    for task in tasks or TASKS:
        data = choose_data(task, fetch=fetch, unreachable=unreachable)
        overrides: dict[str, object] = {"model.attention": attention}
        if data == GENERATED:
            generated.append(task)
            overrides["data.synthetic"] = True
            # Generated numbers mean nothing, so the run only shows the pipeline end to end: a
            # couple of epochs, not the real-data budget.
            overrides["trainer.epochs"] = GENERATED_EPOCHS
            print(generated_banner([task]), flush=True)
        elif data != task:
            overrides["data.dataset"] = data
        run_dir = Path(out) / f"{task}-{attention}-{preset}"
        if run_dir.exists():
            # The demo is a fresh run every time; real experiments use `miamind train`.
            shutil.rmtree(run_dir)
        cfg = resolve_config(task, preset, overrides=overrides, assignments=assignments)
        print(
            f"== {task}: {cfg.model.name} + {attention}, preset {preset}, "
            f"data {_data_label(data)}, run folder {run_dir}",
            flush=True,
        )
        result = train(cfg, run_dir, quiet=True)
        row = summary_row(result.metrics)
        rows.append({"task": row.pop("task"), "data": _data_label(data), **row})
        print(format_table([rows[-1]]), flush=True)
    wall = time.perf_counter() - t0
    print()
    print(f"## miamind demo: {attention}, preset {preset}, {wall / 60:.1f} min wall")
    print(format_table(rows))
    if generated:
        print(generated_banner(generated))
    return 0


def _data_label(data: str) -> str:
    return GENERATED if data == GENERATED else f"real: {data}"
