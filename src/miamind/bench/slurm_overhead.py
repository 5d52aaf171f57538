"""What SLURM adds per cell: the same small study run by the local executor and by the SLURM executor.

Starts a throwaway single-node SLURM (:mod:`miamind.study.local_slurm`: root, Debian's slurmctld,
slurmd and munge), then trains the same cells (1-D CNN, generated flows, 1 epoch, one thread each)
twice, two at a time: ``--executor local --jobs 2`` and ``--executor slurm`` with
``slurm_array_parallelism: 2``, interleaved over ``--rounds``. Reported per round: the submission
time, each executor's wall time, and the overhead per cell, ``(slurm - local) / (cells / 2)``:
queueing, ``srun``, submitit's unpickling and the polling interval, on top of the same training.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from ._report import md_head, save_bench


def _study(folder: Path, cells: int):
    from ..study import load_study

    sets = {"data.synthetic": True, "trainer.epochs": 1, "trainer.progress_bar": False, "plots": False}
    group = {"name": "flows", "task": "cicids2017", "models": ["flowcnn"], "attentions": ["none"]}
    spec = {"name": "overhead", "groups": [{**group, "seeds": list(range(cells)), "set": sets}]}
    path = folder / "overhead.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_study(path)


def _round(study, folder: Path, poll_s: float, first_local: bool) -> dict:
    from ..study.runner import run_study, study_states
    from ..study.slurm import SlurmExecutor

    def local() -> float:
        t0 = time.perf_counter()
        run_study(study, runs_dir=folder / "local", jobs=2, env={"OMP_NUM_THREADS": "1"}, log=lambda _: None)
        return time.perf_counter() - t0

    def slurm() -> tuple[float, float]:
        executor = SlurmExecutor(
            {"slurm_array_parallelism": 2, "cpus_per_task": 1, "poll_s": poll_s}, threads=1
        )
        t0 = time.perf_counter()
        executor.submit(study, _statuses(study, folder / "slurm"), folder / "slurm")
        submitted = time.perf_counter() - t0
        while not all(r["state"] in ("done", "failed") for r in study_states(study, folder / "slurm")):
            time.sleep(poll_s)
        return submitted, time.perf_counter() - t0

    # the order alternates between rounds, so neither executor always meets a cold cache
    if first_local:
        local_s = local()
        submit, slurm_s = slurm()
    else:
        submit, slurm_s = slurm()
        local_s = local()
    n = len(study.cells)
    return {
        "cells": n,
        "submit_s": round(submit, 2),
        "first": "local" if first_local else "slurm",
        "local_s": round(local_s, 1),
        "slurm_s": round(slurm_s, 1),
        "overhead_per_cell_s": round((slurm_s - local_s) / (n / 2), 2),
    }


def _statuses(study, runs):
    from ..study.runner import cell_status

    return [cell_status(study, c, runs, gpu=True) for c in study.cells]


def to_markdown(result: dict) -> str:
    rows = result["results"]
    med = {k: statistics.median(r[k] for r in rows) for k in ("submit_s", "overhead_per_cell_s")}
    lines = md_head(
        "SLURM executor: overhead per cell",
        result["command"],
        f"Machine: {result['machine']['cpu']}, {result['machine']['logical_cores']} cores; a single-node "
        "SLURM started for the run (miamind.study.local_slurm). The same cells (flowcnn, generated flows, "
        "1 epoch, one thread) run two at a time by each executor, interleaved.",
        "| round | first | cells | submit s | local s | slurm s | overhead per cell s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    )
    for i, r in enumerate(rows):
        cols = ("first", "cells", "submit_s", "local_s", "slurm_s", "overhead_per_cell_s")
        lines.append(f"| {i} | " + " | ".join(str(r[k]) for k in cols) + " |")
    lines += [
        "",
        f"Median over {len(rows)} rounds: submission {med['submit_s']} s for {rows[0]['cells']} cells, "
        f"overhead {med['overhead_per_cell_s']} s per cell (polling every {result['settings']['poll_s']} s)"
        + (
            ": SLURM ran the same cells no slower than the local pool, so what it adds per cell is below "
            "what this machine resolves."
            if med["overhead_per_cell_s"] <= 0
            else "."
        ),
        *([f"Conditions: {result['settings']['note']}", ""] if result["settings"].get("note") else []),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..study.local_slurm import SlurmCluster, missing

    p = argparse.ArgumentParser(
        prog="python -m miamind.bench.slurm_overhead", description=__doc__.splitlines()[0]
    )
    p.add_argument("--cells", type=int, default=6)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--poll-s", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=Path("results/bench/slurm_overhead.json"))
    p.add_argument("--note", default="", help="what else ran on the machine (written with the result)")
    args = p.parse_args(argv)
    if why := missing():
        raise SystemExit(f"miamind: error: {why}")
    import os

    with tempfile.TemporaryDirectory(prefix="miamind-slurm-") as tmp:
        cluster = SlurmCluster(Path(tmp) / "cluster").start()
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            rows = []
            for r in range(args.rounds):
                folder = Path(tmp) / f"round{r}"
                folder.mkdir()
                rows.append(_round(_study(folder, args.cells), folder, args.poll_s, first_local=r % 2 == 0))
                print(rows[-1], flush=True)
        finally:
            cluster.stop()
    command = "python -m miamind.bench.slurm_overhead " + " ".join(argv if argv is not None else [])
    settings = {"cells": args.cells, "rounds": args.rounds, "poll_s": args.poll_s, "note": args.note}
    save_bench(args.out, command.strip(), settings, rows, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
