"""How many flow test rows have a near-copy among the training rows of the same split.

Exact duplicate rows are removed before the flow data sets are split, but CIC-IDS2017 flows of one
attack often differ in a timing field only. For each data set and seed, the study's own split
(the `fast` preset's: 70/15/15 stratified, scaler fitted on the training rows) is rebuilt and each
test row's nearest training row is found (Euclidean distance after scaling); a test row with one
within ``--threshold`` is a near-copy. Reported per data set: the share of test rows that are
near-copies, in all and per class. It is not a split bug, but it favours models that memorise
(1-NN, random forests), and it is the context of the classical baselines' lead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..tasks.near_copies import near_copy_mask
from ._report import md_head, save_bench

DATASETS = {
    "cicids2017": ("CIC-IDS2017 subset, binary", "binary"),
    "cicids2017_improved": ("CIC-IDS2017 improved sample, 16 classes", "multiclass"),
}


def measure(dataset: str, seed: int, threshold: float) -> dict:
    from ..engine.build import build_datamodule_for
    from ..engine.config import resolve_config

    _, label_mode = DATASETS[dataset]
    cfg = resolve_config(
        "cicids2017",
        "fast",
        overrides={"seed": seed, "model.attention": "none"},
        assignments=[f"data.dataset={dataset}", f"data.label_mode={label_mode}"],
    )
    dm = build_datamodule_for(cfg)
    dm.setup("fit")
    x_train, _ = dm.split_arrays("train")
    x_test, y_test = dm.split_arrays("test")
    mask = near_copy_mask(np.asarray(x_train, np.float64), np.asarray(x_test, np.float64), threshold)
    names = dm.info.class_names
    per_class = {
        names[c]: [int(mask[y_test == c].sum()), int((y_test == c).sum())] for c in range(len(names))
    }
    return {
        "dataset": dataset,
        "seed": seed,
        "test_rows": int(len(y_test)),
        "near_copies": int(mask.sum()),
        "share": round(float(mask.mean()), 4),
        "per_class": per_class,
    }


def to_markdown(result: dict) -> str:
    s = result["settings"]
    lines = md_head(
        "Flow test rows with a near-copy in the training rows",
        result["command"],
        f"Split of the `fast` preset (70/15/15 stratified by seed, exact duplicates removed first, scaler fitted "
        f"on train); a test row is a near-copy when a training row lies within Euclidean distance "
        f"{s['threshold']:g} after scaling. Seeds {', '.join(str(x) for x in s['seeds'])}.",
        "| data set | seed | test rows | near-copies | share | classes with the highest share (near / rows) |",
        "|---|---:|---:|---:|---:|---|",
    )
    for r in result["results"]:
        title, _ = DATASETS[r["dataset"]]
        top = sorted(
            ((name, n, m) for name, (n, m) in r["per_class"].items() if m >= 20),
            key=lambda t: -t[1] / t[2],
        )[:3]
        lines.append(
            f"| {title} | {r['seed']} | {r['test_rows']:,} | {r['near_copies']:,} | {r['share']:.1%} | "
            + ", ".join(f"{name} {n}/{m}" for name, n, m in top)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m miamind.bench.near_duplicates", description=__doc__.splitlines()[0]
    )
    p.add_argument("--threshold", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", type=Path, default=Path("results/data/near_duplicates.json"))
    args = p.parse_args(argv)
    rows = [measure(d, seed, args.threshold) for d in DATASETS for seed in args.seeds]
    command = "python -m miamind.bench.near_duplicates " + " ".join(argv if argv is not None else [])
    settings = {"threshold": args.threshold, "seeds": args.seeds}
    save_bench(args.out, command.strip(), settings, rows, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
