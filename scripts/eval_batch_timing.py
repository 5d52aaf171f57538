"""Evaluation batch size for CIFAR-10: time of a flip-TTA pass over 10,000 images, fastnet 32/64/128.

Why: the `fast` preset's per-epoch validation and final flip + translate test evaluation are ~15%
of its 3-minute budget. This measures, interleaved, the same pass at several evaluation batch sizes
and checks that the logits are bitwise equal to those of batch 1,000 (so the choice changes no
prediction, only the time). bf16 autocast, channels-last, inference mode, random weights and inputs.

    python scripts/eval_batch_timing.py --out results/bench/eval_batch.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from miamind._atomic import atomic_open
from miamind.models import create_model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[128, 250, 500, 1000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    x = torch.randn(10000, 3, 32, 32)
    rows = []
    for attention in ("none", "mia"):
        net = create_model("fastnet", num_classes=10, in_chans=3, attention=attention, widths=[32, 64, 128])
        net = net.eval().to(memory_format=torch.channels_last)

        def flip_pass(batch: int, net=net) -> torch.Tensor:
            out = []
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                for xb in x.split(batch):
                    xb = xb.contiguous(memory_format=torch.channels_last)
                    out.append(0.5 * (net(xb).float() + net(xb.flip(-1)).float()))
            return torch.cat(out)

        reference = flip_pass(1000)
        equal = {b: torch.equal(flip_pass(b), reference) for b in args.batches}
        seconds: dict[int, list[float]] = {b: [] for b in args.batches}
        for _ in range(args.rounds):
            for b in args.batches:
                t0 = time.perf_counter()
                flip_pass(b)
                seconds[b].append(time.perf_counter() - t0)
        base = statistics.median(seconds[1000])
        for b in args.batches:
            med = statistics.median(seconds[b])
            rows.append((attention, b, med, med / base, equal[b]))
    lines = [
        "# CIFAR-10 evaluation batch size: one flip-TTA pass over 10,000 images, fastnet 32/64/128",
        "",
        f"Command: `python scripts/eval_batch_timing.py --out {args.out}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; "
        f"torch {torch.__version__}. bf16 autocast, channels-last, inference mode; median of "
        f"{args.rounds} interleaved rounds; ratio to batch 1,000 in the same run.",
        "",
        "| attention | eval batch | seconds | ratio to 1,000 | logits bitwise equal to batch 1,000 |",
        "|---|---:|---:|---:|---|",
        *[f"| {a} | {b} | {s:.2f} | {r:.3f} | {'yes' if e else 'no'} |" for a, b, s, r, e in rows],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
