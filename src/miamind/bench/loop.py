"""Does the training loop run at the network's speed? One CIFAR-10 fastnet step, bare vs in Lightning.

``python -m miamind.bench.loop [--attention none --attention mia] [--repeats 3] [--out FILE.json]``
builds the ``fast`` preset's model, task module and data module (generated CIFAR-shaped data, so no
files are needed), runs a few Lightning training batches with a callback timing each step and the
gap between steps (data and hooks), then times the same module and optimizer kind in a plain loop on
prepared batches. Medians, after two warm-up steps; the ratio in-loop / bare img/s is what matters
(the goal: >= 0.9), taken per repeat, the attentions and repeats interleaved, and its median
reported (machines are noisy). ``--out`` writes the JSON and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ._report import md_head, save_bench


def measure(attention: str = "none", batches: int = 12, quick: bool = False) -> dict[str, float]:
    import lightning.pytorch as pl
    import torch

    from ..engine.build import build_datamodule_for, build_model, build_task_module, build_trainer
    from ..engine.config import resolve_config
    from ..tasks import synthetic

    cfg = resolve_config(
        "cifar10",
        "fast",
        overrides={"trainer.epochs": 1},
        assignments=[
            f"model.attention={attention}",
            "trainer.progress_bar=false",
            "data.val_size=1000",
            "plots=false",
            f"trainer.limit_train_batches={batches}",
            "trainer.limit_eval_batches=1",
            *(
                ["model.kwargs.widths=[8, 16, 16]", "data.batch_size=64", "data.val_size=100"]
                if quick
                else []
            ),
        ],
    )
    n_train, n_test = (1000, 100) if quick else (12000, 1000)
    dm = build_datamodule_for(cfg, synthetic.synthetic_cifar10(n_train=n_train, n_test=n_test))
    dm.setup("fit")
    model = build_model(cfg, dm.info)
    module = build_task_module(cfg, model, dm.info)

    class StepTimes(pl.Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []
            self.ends: list[float] = []

        def on_train_batch_start(self, *args) -> None:
            self.starts.append(time.perf_counter())

        def on_train_batch_end(self, *args) -> None:
            self.ends.append(time.perf_counter())

    times = StepTimes()
    build_trainer(cfg, Path(tempfile.mkdtemp()), callbacks=[times]).fit(module, datamodule=dm)
    steps = [e - s for s, e in zip(times.starts, times.ends, strict=True)][2:]
    gaps = [s - e for e, s in zip(times.ends[:-1], times.starts[1:], strict=True)][2:]

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    loader = iter(dm.train_dataloader())
    prepared = [next(loader) for _ in range(4)]
    module.train()
    bare = []
    for i in range(10):
        t0 = time.perf_counter()
        x, y = prepared[i % len(prepared)]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = module.loss(module(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bare.append(time.perf_counter() - t0)
    result = {
        "batch": float(cfg.data.batch_size),
        "threads": float(torch.get_num_threads()),
        "lightning_step_ms": statistics.median(steps) * 1e3,
        "gap_ms": statistics.median(gaps) * 1e3,
        "bare_step_ms": statistics.median(bare[2:]) * 1e3,
    }
    result["bare_over_lightning"] = result["bare_step_ms"] / (result["lightning_step_ms"] + result["gap_ms"])
    return result


def to_markdown(result: dict) -> str:
    m, st = result["machine"], result["settings"]
    lines = md_head(
        "Does the training loop run at the network's speed? fastnet, `fast` preset, Lightning vs a bare loop",
        result["command"],
        f"Machine: {m.get('cpu', '?')}, {m.get('logical_cores', '?')} logical cores, {st['threads']} torch "
        f"threads; torch {m.get('torch', '?')}. Generated CIFAR-shaped data, batch {st['batch']}, "
        f"{st['batches']} Lightning batches and 10 bare steps per measurement, {st['repeats']} repeats, "
        "attentions interleaved. In-loop img/s = batch / (Lightning step + gap between steps); bare "
        "img/s = batch / step of a plain loop (same module, autocast, SGD) on prepared batches.",
        "| attention | Lightning step ms | gap ms | bare step ms | in-loop img/s | bare img/s | in-loop / bare |",
        "|---|---:|---:|---:|---:|---:|---:|",
    )
    for r in result["results"]:
        lines.append(
            f"| {r['attention']} | {r['lightning_step_ms']:.0f} | {r['gap_ms']:.1f} | {r['bare_step_ms']:.0f} | "
            f"{r['in_loop_img_per_s']:.0f} | {r['bare_img_per_s']:.0f} | {r['in_loop_over_bare']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m miamind.bench.loop", description=__doc__.splitlines()[0])
    p.add_argument("--attention", action="append", help="attentions to measure (default: none)")
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="JSON path; the Markdown table goes beside it")
    p.add_argument("--quick", action="store_true", help="a tiny fastnet and batch: checks the script only")
    args = p.parse_args(argv)
    command = "python -m miamind.bench.loop " + " ".join(sys.argv[1:] if argv is None else argv)
    attentions = args.attention or ["none"]
    runs: dict[str, list[dict[str, float]]] = {a: [] for a in attentions}
    for _ in range(args.repeats):
        for a in attentions:
            r = measure(a, args.batches, quick=args.quick)
            runs[a].append(r)
            print(
                f"fastnet+{a}, batch {r['batch']:.0f}, {r['threads']:.0f} threads: "
                f"Lightning step {r['lightning_step_ms']:.0f} ms + {r['gap_ms']:.1f} ms between batches, "
                f"bare step {r['bare_step_ms']:.0f} ms; in-loop / bare = {r['bare_over_lightning']:.2f}",
                flush=True,
            )
    rows = []
    for a, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        rows.append(
            {
                "attention": a,
                **{k: med[k] for k in ("lightning_step_ms", "gap_ms", "bare_step_ms")},
                "in_loop_img_per_s": med["batch"] / ((med["lightning_step_ms"] + med["gap_ms"]) / 1e3),
                "bare_img_per_s": med["batch"] / (med["bare_step_ms"] / 1e3),
                "in_loop_over_bare": med["bare_over_lightning"],
            }
        )
    if args.out is not None:
        batch = int(runs[attentions[0]][0]["batch"])
        settings = {"batch": batch, "batches": args.batches, "repeats": args.repeats, "quick": args.quick}
        save_bench(args.out, command, settings, rows, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
