"""Time to accuracy on CIFAR-10: ``fastnet`` with the ``fast`` and ``fast12`` presets, one attention per run.

Two budgets, each a complete short recipe (the learning-rate schedule is sized to it, not a long
one cut off):

- ``3min``: the ``fast`` preset (narrow fastnet, 5 epochs); goal >= 83% test accuracy in <= 180 s;
  attentions none, se, cbam, eca, mia; seeds 0, 1, 2;
- ``12min``: the ``fast12`` preset (full-width fastnet, 6 epochs); goal >= 93% in <= 720 s;
  attentions none and mia; seeds 0, 1, 2.

Each run is ``miamind train`` in a fresh process (so one run's compiled kernels or memory do not help
or hurt the next), timed from process start to exit: data loading, training, per-epoch validation on
the 5,000 held-out training images, and the final test on the 10,000 test images all count. The
run folders go under ``--work`` (checkpoints: not for the repository); the summary goes to ``--out``
(JSON, and Markdown beside it). Re-running the command skips finished runs and resumes an
interrupted one (its wall time is then marked ``resumed`` and is not comparable).

``--quick`` trains on a tiny generated dataset with one short budget: it checks the script and
measures nothing.

Usage::

    python -m miamind.bench.time_to_accuracy --out results/bench/time_to_accuracy.json --work runs/tta
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._atomic import atomic_open
from .._portable import portable_text
from ._report import md_head, torch_machine, write_report

#: name -> (preset, config assignments, wall-time goal s, accuracy goal, attentions, seeds)
BUDGETS: dict[str, dict[str, Any]] = {
    "3min": {
        "preset": "fast",
        "set": [],
        "goal_s": 180,
        "goal_acc": 0.83,
        "attentions": ["none", "se", "cbam", "eca", "mia"],
        "seeds": [0, 1, 2],
    },
    "12min": {
        "preset": "fast12",
        "set": [],
        "goal_s": 720,
        "goal_acc": 0.93,
        "attentions": ["none", "mia"],
        "seeds": [0, 1, 2],
    },
}
QUICK_BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {
        "preset": "fast",
        "set": [
            "trainer.epochs=1",
            "data.synthetic=true",
            "data.batch_size=32",
            "data.val_size=32",
            "model.kwargs.widths=[8,16,16]",
        ],
        "goal_s": 60,
        "goal_acc": 0.0,
        "attentions": ["none", "mia"],
        "seeds": [0],
    },
}
COMMON_SET = ["plots=false", "trainer.progress_bar=false"]


def run_one(
    budget: dict[str, Any], attention: str, seed: int, run_dir: Path, threads: int | None
) -> dict[str, Any]:
    """Train one run (or resume it), return its summary; a finished run is read, not re-trained."""
    wall_file = run_dir / "bench_wall.json"
    metrics_file = run_dir / "metrics.json"
    if metrics_file.exists() and wall_file.exists():
        return _summary(run_dir, json.loads(wall_file.read_text()))
    base = [sys.executable, "-m", "miamind", "train"]
    resumed = (run_dir / "config.yaml").exists()
    if resumed:
        cmd = base + ["--resume", str(run_dir)]
    else:
        cmd = base + ["--task", "cifar10", "--model", "fastnet", "--attention", attention]
        cmd += ["--preset", budget["preset"], "--seed", str(seed), "--out", str(run_dir)]
        for assignment in COMMON_SET + budget["set"]:
            cmd += ["--set", assignment]
        if threads:
            cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"run {run_dir} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    wall_info = {"wall_s": round(wall, 1), "resumed": resumed, "command": portable_text(" ".join(cmd[1:]))}
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(wall_file, "w") as f:
        f.write(json.dumps(wall_info, indent=2) + "\n")
    return _summary(run_dir, wall_info)


def _summary(run_dir: Path, wall_info: dict[str, Any]) -> dict[str, Any]:
    m = json.loads((run_dir / "metrics.json").read_text())
    return {
        "attention": str(m["attention"]),
        "seed": m["seed"],
        "epochs": m["epochs"],
        "test_acc": m["test"]["acc"],
        "fit_s": m["fit_seconds_this_attempt"],
        "train_img_per_s": m["train_samples_per_s"],
        "parameters": m["parameters"],
        "evaluated_checkpoint": m["evaluated_checkpoint"],
        **wall_info,
    }


def aggregate(budget_name: str, budget: dict[str, Any], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for attention in budget["attentions"]:
        mine = [r for r in runs if r["attention"] == attention]
        if not mine:
            continue
        accs = [r["test_acc"] for r in mine]
        walls = [r["wall_s"] for r in mine]
        rows.append(
            {
                "budget": budget_name,
                "attention": attention,
                "seeds": [r["seed"] for r in mine],
                "test_acc_mean": statistics.fmean(accs),
                "test_acc_min": min(accs),
                "test_acc_max": max(accs),
                "wall_s_median": statistics.median(walls),
                "fit_s_median": statistics.median(r["fit_s"] for r in mine),
                "train_img_per_s_median": statistics.median(r["train_img_per_s"] or 0.0 for r in mine),
                "goal_acc": budget["goal_acc"],
                "goal_s": budget["goal_s"],
                "meets_goal": all(
                    r["test_acc"] >= budget["goal_acc"]
                    and r["wall_s"] <= budget["goal_s"]
                    and not r["resumed"]
                    for r in mine
                ),
            }
        )
    return rows


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = md_head(
        "Time to accuracy: CIFAR-10, fastnet, `fast` and `fast12` presets",
        result["command"],
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores; Python {m['python']}, torch {m['torch']}. "
        "Data: the JPEG-q75 copy of CIFAR-10 in `../shared/data` (labels exact, pixels re-encoded), "
        "45,000 training images (5,000 held out for validation), test = the official 10,000 test images, "
        "weights of the best validation epoch.\n"
        "Wall time: one `miamind train` process from start to exit (data loading, training, per-epoch "
        "validation, final test).",
        "| budget | recipe | attention | seeds | test acc mean (min-max) "
        "| wall s (median) | train img/s | goal | met |",
        "|---|---|---|---|---|---:|---:|---|---|",
    )
    for row in result["summary"]:
        b = result["budgets"][row["budget"]]
        recipe = " ".join(["--preset", b["preset"], *b["set"]])
        lines.append(
            f"| {row['budget']} | {recipe} | {row['attention']} | {len(row['seeds'])} | "
            f"{row['test_acc_mean']:.4f} ({row['test_acc_min']:.4f}-{row['test_acc_max']:.4f}) | "
            f"{row['wall_s_median']:.0f} | {row['train_img_per_s_median']:.0f} | "
            f">= {row['goal_acc']:.0%} in <= {row['goal_s']} s | {'yes' if row['meets_goal'] else 'no'} |"
        )
    lines += [
        "",
        "Runs:",
        "",
        "| budget | attention | seed | test acc | wall s | fit s | resumed |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for name, runs in result["runs"].items():
        for r in runs:
            lines.append(
                f"| {name} | {r['attention']} | {r['seed']} | {r['test_acc']:.4f} | {r['wall_s']:.0f} | "
                f"{r['fit_s']:.0f} | {'yes' if r['resumed'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="summary JSON; the Markdown table goes beside it")
    p.add_argument(
        "--work", type=Path, default=Path("runs/time_to_accuracy"), help="run folders (default %(default)s)"
    )
    p.add_argument("--budget", action="append", help="only these budgets (default: all)")
    p.add_argument("--attention", action="append", help="only these attentions (default: each budget's list)")
    p.add_argument("--seeds", type=int, nargs="+", help="only these seeds (default: each budget's list)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: torch's)")
    p.add_argument(
        "--quick", action="store_true", help="tiny generated data: checks the script, measures nothing"
    )
    args = p.parse_args(argv)
    command = "python -m miamind.bench.time_to_accuracy " + " ".join(sys.argv[1:] if argv is None else argv)
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    unknown = set(args.budget or []) - set(budgets)
    if unknown:
        raise SystemExit(f"unknown budget(s) {sorted(unknown)} (valid: {', '.join(budgets)})")
    if not args.quick and not os.environ.get("MIAMIND_DATA"):
        raise SystemExit("time_to_accuracy needs the CIFAR-10 data: set MIAMIND_DATA (or use --quick)")
    all_runs: dict[str, list[dict[str, Any]]] = {}
    summary: list[dict[str, Any]] = []
    for name, budget in budgets.items():
        if args.budget and name not in args.budget:
            continue
        runs = []
        seeds = [sd for sd in budget["seeds"] if not args.seeds or sd in args.seeds]
        for seed in seeds:  # seed-major: a cut-off session leaves every attention at equal seeds
            for attention in budget["attentions"]:
                if args.attention and attention not in args.attention:
                    continue
                run_dir = args.work / name / f"{attention}-seed{seed}"
                r = run_one(budget, attention, seed, run_dir, args.threads)
                print(
                    f"[{name}] {attention} seed {seed}: test acc {r['test_acc']:.4f}, wall {r['wall_s']:.0f} s",
                    flush=True,
                )
                runs.append(r)
        all_runs[name] = runs
        summary += aggregate(name, budget, runs)
    result = {
        "command": portable_text(command),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": torch_machine(),
        "budgets": budgets,
        "summary": summary,
        "runs": all_runs,
    }
    write_report(args.out, result, to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
