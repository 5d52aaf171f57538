"""What the real datasets hold and how fast they load: the numbers quoted in the README and notes.

For each dataset: a cold load (empty cache folder) and two cached loads, timed; counts per split
and class; CIFAR-10 channel statistics of the training split; ISBI 2012 membrane fraction per
default fold; CIC-IDS2017 rows kept per label and the seed-0 split sizes. Usage::

    python -m miamind.bench.data_report --out results/data/data_report.json

writes the JSON and a Markdown table beside it (same name, ``.md``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._portable import portable_text
from ..data import cicids2017, cicids2017_improved, cifar10, isbi2012
from ..data.root import data_root
from ._report import md_head
from .csv_memory import machine


def _timed_loads(load: Callable[[Path], object]) -> dict[str, object]:
    """Cold load into a fresh cache folder, then two cached loads; returns times and the result."""
    with tempfile.TemporaryDirectory() as cache:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = load(Path(cache))
            times.append(time.perf_counter() - t0)
    return {"cold_s": round(times[0], 3), "cached_s": [round(t, 3) for t in times[1:]], "result": result}


def _cifar(data_dir: Path | None) -> dict:
    run = _timed_loads(lambda c: cifar10.load_cifar10(data_dir, cache_dir=c))
    arr = run.pop("result")
    mean, std = arr.channel_stats()
    return {
        **run,
        "layout": arr.layout,
        "lossy": arr.lossy,
        "counts": arr.counts(),
        "train_mean": [round(v, 5) for v in mean],
        "train_std": [round(v, 5) for v in std],
    }


def _isbi(data_dir: Path | None) -> dict:
    run = _timed_loads(lambda c: isbi2012.load_isbi2012(data_dir, cache_dir=c))
    arr = run.pop("result")
    folds = {}
    for k in range(isbi2012.N_FOLDS):
        _, val = isbi2012.kfold_slices(len(arr.train_labels), isbi2012.N_FOLDS, k)
        folds[f"fold {k} (slices {val[0]}..{val[-1]})"] = round(
            isbi2012.membrane_fraction(arr.train_labels[val]), 4
        )
    return {
        **run,
        "train_slices": len(arr.train_images),
        "test_slices": len(arr.test_images),
        "input_shape": list(arr.info.input_shape),
        "membrane_fraction": round(isbi2012.membrane_fraction(arr.train_labels), 6),
        "membrane_fraction_per_validation_fold": folds,
    }


def _flows(load: Callable[..., object], data_dir: Path | None) -> dict:
    run = _timed_loads(lambda c: load(data_dir, label_mode="multiclass", seed=0, cache_dir=c))
    splits = run.pop("result")
    return {
        **run,
        "n_features": splits.n_features,
        "class_names": list(splits.class_names),
        "rows_read_per_label": splits.report["read"]["label_counts_read"],
        "rows_dropped_nonfinite_per_label": splits.report["rows_dropped_nonfinite"],
        "duplicate_rows_dropped": int(splits.report.get("duplicate_rows_dropped", 0)),
        "split_rows_seed0": {
            p: int(len(y))
            for p, y in (("train", splits.y_train), ("val", splits.y_val), ("test", splits.y_test))
        },
        "class_weights_train": [round(float(w), 4) for w in splits.class_weights],
    }


def build_report(data_dir: Path | None = None) -> dict:
    return {
        "data_root": portable_text(str(data_root(data_dir))),
        "machine": machine(),
        "cifar10": _cifar(data_dir),
        "isbi2012": _isbi(data_dir),
        "cicids2017": _flows(cicids2017.load_cicids2017, data_dir),
        "cicids2017_improved": _flows(cicids2017_improved.load_cicids2017_improved, data_dir),
    }


def to_markdown(report: dict, command: str) -> str:
    lines = md_head(
        "Real data: contents and load times",
        command,
        f"Data root: `{report['data_root']}`; machine: {json.dumps(report['machine'])}",
        "| dataset | cold load (s) | cached loads (s) |",
        "|---|---:|---|",
    )
    for name in ("cifar10", "isbi2012", "cicids2017", "cicids2017_improved"):
        r = report[name]
        lines.append(f"| {name} | {r['cold_s']} | {', '.join(map(str, r['cached_s']))} |")
    lines += ["", "Full details (counts, statistics, splits) in the JSON beside this file.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True, help="JSON path; a .md is written beside it")
    args = p.parse_args(argv)
    report = build_report(args.data_dir)
    command = "python -m miamind.bench.data_report --out " + str(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": command, **report}, indent=2, default=_json_default) + "\n")
    args.out.with_suffix(".md").write_text(to_markdown(report, command))
    print(args.out.with_suffix(".md").read_text())
    return 0


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


if __name__ == "__main__":
    raise SystemExit(main())
