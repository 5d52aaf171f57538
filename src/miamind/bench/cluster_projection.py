"""Projected wall time of the committed studies on 1, 8 and 64 cluster workers, from measured costs.

Reads every finished cell's ``wall_s`` from ``results/study/*/cells.csv`` (measured with one CPU
thread per cell) and the SLURM executor's measured overhead per cell
(``results/bench/slurm_overhead.json``), and packs the cells onto ``k`` workers that each run one
cell at a time, longest first (LPT; within 4/3 of the best packing). The ``requires: gpu`` cells
of the paper protocol have no measured cost (no GPU measured them): they are projected at the
per-cell times given with ``--gpu-cell-minutes``, stated as assumptions in the table.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import statistics
from pathlib import Path

from ._report import md_head, save_bench

STUDIES = ("grid", "ablations", "paper_protocol", "confirm")


def lpt_makespan(costs: list[float], workers: int) -> float:
    """Wall time of ``costs`` on ``workers`` identical workers, longest first to the least loaded."""
    loads = [0.0] * workers
    heapq.heapify(loads)
    for cost in sorted(costs, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + cost)
    return max(loads)


def measured_cells(results: Path) -> dict[str, list[float]]:
    """Study -> wall seconds of its finished cells (a cell listed by two studies counts once)."""
    seen: set[str] = set()
    out: dict[str, list[float]] = {}
    for name in STUDIES:
        path = results / "study" / name / "cells.csv"
        if not path.is_file():
            continue
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row["state"] == "done" and row["wall_s"] and row["cell"] not in seen:
                    seen.add(row["cell"])
                    out.setdefault(name, []).append(float(row["wall_s"]))
    return out


def gpu_cells(results: Path) -> int:
    path = results / "study" / "paper_protocol" / "cells.csv"
    with open(path, newline="") as f:
        return sum(1 for row in csv.DictReader(f) if row["state"] in ("needs_gpu", "pending"))


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def to_markdown(result: dict) -> str:
    s = result["settings"]
    lines = md_head(
        "Projected wall time of the studies on a cluster",
        result["command"],
        f"{s['measured_cells']} measured cells ({', '.join(f'{k} {v}' for k, v in s['cells_per_study'].items())}), "
        f"{s['cell_hours']:.1f} cell-hours as measured with one CPU thread per cell; SLURM overhead "
        f"{s['overhead_per_cell_s']:g} s per cell added (measured median {s['overhead_per_cell_measured_s']:g} s, "
        "`results/bench/slurm_overhead.md`; a negative median counts as 0). Workers run one cell at a "
        "time, longest first. Each measured cell is counted at its measured cost: a GPU worker runs it "
        "faster by a factor not measured here, so those rows are upper bounds. The paper protocol's "
        f"{s['gpu_cells']} GPU cells are projected at assumed minutes per cell (not measured).",
        "| cells | per-cell cost | 1 worker | 8 workers | 64 workers |",
        "|---|---|---:|---:|---:|",
    )
    for row in result["results"]:
        lines.append(
            f"| {row['cells']} | {row['cost']} | "
            + " | ".join(_hours(row[f"wall_s_{k}"]) for k in (1, 8, 64))
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m miamind.bench.cluster_projection", description=__doc__.splitlines()[0]
    )
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--gpu-cell-minutes", type=float, nargs="+", default=[10.0, 30.0, 60.0])
    p.add_argument("--out", type=Path, default=Path("results/bench/cluster_projection.json"))
    args = p.parse_args(argv)
    overhead = json.loads((args.results / "bench" / "slurm_overhead.json").read_text())
    measured = statistics.median(r["overhead_per_cell_s"] for r in overhead["results"])
    # a negative median (SLURM finished the same cells sooner than the local pool) is noise: no saving
    per_cell = max(0.0, measured)
    cells = measured_cells(args.results)
    costs = [c + per_cell for study in cells.values() for c in study]
    n_gpu = gpu_cells(args.results)

    def row(what: str, cost: str, all_costs: list[float]) -> dict:
        walls = {f"wall_s_{k}": round(lpt_makespan(all_costs, k), 1) for k in (1, 8, 64)}
        return {"cells": what, "cost": cost, **walls}

    rows = [row("grid, ablations, paper protocol (CPU groups), confirm", "measured wall_s + overhead", costs)]
    for minutes in args.gpu_cell_minutes:
        gpu = [minutes * 60 + per_cell] * n_gpu
        cost = f"GPU cells assumed {minutes:g} min each"
        rows.append(row(f"all of the above + {n_gpu} GPU cells", cost, costs + gpu))
    command = "python -m miamind.bench.cluster_projection " + " ".join(argv or [])
    settings = {
        "measured_cells": len(costs),
        "cells_per_study": {k: len(v) for k, v in cells.items()},
        "cell_hours": sum(costs) / 3600,
        "overhead_per_cell_s": per_cell,
        "overhead_per_cell_measured_s": measured,
        "gpu_cells": n_gpu,
    }
    save_bench(args.out, command.strip(), settings, rows, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
