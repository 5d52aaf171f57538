"""Does the training loop run at the network's speed? One CIFAR-10 fastnet step, bare vs in Lightning.

``python -m miamind.bench.loop [--attention mia] [--batches 12]`` builds the ``fast`` preset's
model, task module and data module (generated CIFAR-shaped data, so no files are needed), runs a
few Lightning training batches with a callback timing each step and the gap between steps (data
and hooks), then times the same module and optimizer kind in a plain loop on prepared batches.
Medians, after two warm-up steps; the ratio bare / Lightning is what matters (machines are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def measure(attention: str = "none", batches: int = 12) -> dict[str, float]:
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
        ],
    )
    dm = build_datamodule_for(cfg, synthetic.synthetic_cifar10(n_train=12000, n_test=1000))
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
        "batch": float(cfg["data"]["batch_size"]),
        "threads": float(torch.get_num_threads()),
        "lightning_step_ms": statistics.median(steps) * 1e3,
        "gap_ms": statistics.median(gaps) * 1e3,
        "bare_step_ms": statistics.median(bare[2:]) * 1e3,
    }
    result["bare_over_lightning"] = result["bare_step_ms"] / (result["lightning_step_ms"] + result["gap_ms"])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m miamind.bench.loop", description=__doc__.splitlines()[0])
    p.add_argument("--attention", default="none")
    p.add_argument("--batches", type=int, default=12)
    args = p.parse_args(argv)
    r = measure(args.attention, args.batches)
    print(
        f"fastnet+{args.attention}, batch {r['batch']:.0f}, {r['threads']:.0f} threads: "
        f"Lightning step {r['lightning_step_ms']:.0f} ms + {r['gap_ms']:.1f} ms between batches, "
        f"bare step {r['bare_step_ms']:.0f} ms; bare / in-loop = {r['bare_over_lightning']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
