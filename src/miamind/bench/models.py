"""Training and inference throughput of each model with each attention, as ratios to no attention.

For every workload (model, batch, input, precision, memory format) one model per attention is built,
``none`` included, and all take turns: in each of ``--rounds`` rounds every model runs the same number
of training steps (forward, cross-entropy backward, SGD update, in train mode; at least ``--steps``, and
enough for ``--min-seconds`` of the no-attention model) and then of inference batches (eval mode, no
gradients), A B C ... A B C ..., so a slow phase of a shared machine hits all of them alike.
Reported: median img/s over the rounds and the median over rounds of (img/s with the attention /
img/s without attention in the same round).

Workloads (precision and memory format as the ``fast`` preset trains each model; ResNet-18 in
both fp32 and bf16, the setting of the targets: ``mia`` >= 0.95 x none and >= ``se``):

- ``resnet18`` batch 128 of 3x32x32, channels_last, fp32 and bf16 autocast;
- ``resnet50`` batch 64 of 3x32x32, channels_last, bf16 autocast;
- ``fastnet`` batch 512 of 3x32x32, channels_last, bf16 autocast;
- ``unet`` (width 16) batch 8 of 1x128x128, channels_last, bf16 autocast;
- ``flowcnn`` batch 256 of 1x77, fp32.

``--study``: instead, the networks and batches of the study's cells (``studies/grid.yaml``, ``fast``
preset): fastnet 32/64/128 batch 512 bf16, U-Net width 16 batch 8 of 128x128 bf16, flowcnn batch 256
fp32; an attention a network cannot hold (2-D-only layers in the 1-D flowcnn) is left out with a line.

Usage::

    python -m miamind.bench.models --out results/bench/models.json   # + models.md beside it
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..attention.kernel import kernel
from ..models import attention_layers, cannot_hold, create_model
from ._report import md_head, save_bench

DEFAULT_ATTENTIONS = ("se", "cbam", "eca", "mia")
#: an arm of a layer with a C++ training kernel, trained through the PyTorch path instead
KERNEL_OFF = " (kernel off)"


def _workload(
    model: str, batch: int, input: tuple, classes: int, precision: str, channels_last: bool, **kwargs: Any
) -> dict[str, Any]:
    """A workload: model (with ``kwargs``), batch, input shape, classes, precision, memory format."""
    return {
        "model": model,
        "kwargs": kwargs,
        "batch": batch,
        "input": input,
        "classes": classes,
        "precision": precision,
        "channels_last": channels_last,
    }


WORKLOADS: list[dict[str, Any]] = [
    _workload("resnet18", 128, (3, 32, 32), 10, "fp32", True),
    _workload("resnet18", 128, (3, 32, 32), 10, "bf16", True),
    _workload("resnet50", 64, (3, 32, 32), 10, "bf16", True),
    _workload("fastnet", 512, (3, 32, 32), 10, "bf16", True),
    _workload("unet", 8, (1, 128, 128), 2, "bf16", True, width=16),
    _workload("flowcnn", 256, (1, 77), 2, "fp32", False),
]
#: the study's networks (the ``fast`` preset's): its speed row; ``label`` names the width in tables
STUDY_WORKLOADS: list[dict[str, Any]] = [
    {**WORKLOADS[3], "kwargs": {"widths": (32, 64, 128)}, "label": "fastnet 32/64/128"},
    WORKLOADS[4],
    WORKLOADS[5],
]
QUICK_WORKLOADS: list[dict[str, Any]] = [
    _workload("fastnet", 4, (3, 16, 16), 10, "bf16", True, widths=(4, 8, 8)),
    _workload("flowcnn", 8, (1, 12), 2, "fp32", False),
]


def _autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def build_workload(
    w: dict[str, Any], names: Sequence[str], compile_models: bool = False
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.nn.Module], dict[str, torch.optim.Optimizer]]:
    """The input batch, its targets, and one seeded model + SGD optimizer per attention of ``names``."""
    torch.manual_seed(0)
    x = torch.randn(w["batch"], *w["input"])
    if w["channels_last"]:
        x = x.contiguous(memory_format=torch.channels_last)
    models, opts, target = {}, {}, None
    for n in names:
        attention = n.removesuffix(KERNEL_OFF)
        m = create_model(
            w["model"], num_classes=w["classes"], in_chans=w["input"][0], attention=attention, **w["kwargs"]
        )
        if n.endswith(KERNEL_OFF):  # the same weights as the kernel's arm, the PyTorch path
            m.load_state_dict(models[attention].state_dict())
            for _, layer in attention_layers(m):
                layer.use_kernel = False
        if w["channels_last"]:
            m = m.to(memory_format=torch.channels_last)
        models[n] = m
        opts[n] = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
        if target is None:
            with torch.no_grad():
                out = m.eval()(x)
            # class targets of the output's shape: (N,) for classifiers, (N, *spatial) for U-Net
            target = torch.randint(0, w["classes"], (out.shape[0], *out.shape[2:]))
        if compile_models:
            # In place: forward becomes inductor's; parameters and state_dict keys stay as they are.
            m.compile()
    assert target is not None
    return x, target, models, opts


def train_steps(
    w: dict[str, Any], model: torch.nn.Module, opt: torch.optim.Optimizer, x, target, steps: int
) -> None:
    """``steps`` training steps: forward (autocast as the workload says), cross-entropy, backward, SGD."""
    model.train()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with _autocast(w["precision"]):
            loss = F.cross_entropy(model(x).float(), target)
        loss.backward()
        opt.step()


def _has_kernel(attention: str) -> bool:
    from ..attention import create_attention

    return getattr(create_attention(attention, 8), "has_kernel", False)


def _holds(w: dict[str, Any], attention: str) -> bool:
    """Whether the workload's network can hold ``attention`` (else one line on stderr)."""
    why = cannot_hold(w["model"], attention, num_classes=w["classes"], in_chans=w["input"][0], **w["kwargs"])
    if why:
        print(f"skipped {w['model']} + {attention}: {why}", file=sys.stderr)
    return why is None


def measure_workload(
    w: dict[str, Any],
    attentions: Sequence[str],
    rounds: int,
    steps: int,
    compile_models: bool = False,
    min_seconds: float = 0.0,
) -> list[dict[str, Any]]:
    names = ["none", *[a for a in attentions if a != "none" and _holds(w, a)]]
    if kernel() is not None and not compile_models:  # each layer with a C++ kernel also without it
        # (a compiled model trains through inductor's code, not the kernel: no second arm then)
        names = [m for a in names for m in ((a, a + KERNEL_OFF) if _has_kernel(a) else (a,))]
    x, target, models, opts = build_workload(w, names, compile_models)

    def train(n, k):
        train_steps(w, models[n], opts[n], x, target, k)

    def infer(n, k):
        m = models[n].eval()
        with torch.no_grad(), _autocast(w["precision"]):
            for _ in range(k):
                m(x)

    for n in names:  # warm-up: first-call allocations, oneDNN primitive creation, compilation
        for _ in range(2 if compile_models else 1):  # compiled: the 2nd call may recompile (dynamic)
            train(n, steps)
            infer(n, steps)
    # every model runs the same number of steps per measurement: at least `steps`, and enough for
    # `min_seconds` of the no-attention model (a few-millisecond step is at the mercy of the scheduler)
    counts = {}
    for mode, fn in (("train", train), ("infer", infer)):
        t0 = time.perf_counter()
        fn("none", steps)
        counts[mode] = max(steps, math.ceil(min_seconds * steps / (time.perf_counter() - t0)))
    ips: dict[str, dict[str, list[float]]] = {mode: {n: [] for n in names} for mode in ("train", "infer")}
    for _ in range(rounds):
        for mode, fn in (("train", train), ("infer", infer)):
            for n in names:
                t0 = time.perf_counter()
                fn(n, counts[mode])
                ips[mode][n].append(counts[mode] * w["batch"] / (time.perf_counter() - t0))
    rows = []
    for n in names:
        row = {
            "model": w.get("label", w["model"]),
            "model_kwargs": w["kwargs"],
            "batch": w["batch"],
            "input": list(w["input"]),
            "precision": w["precision"],
            "channels_last": w["channels_last"],
            "compiled": compile_models,
            "attention": n,
            "parameters": sum(p.numel() for p in models[n].parameters()),
        }
        for mode in ("train", "infer"):
            mine, base = ips[mode][n], ips[mode]["none"]
            row[f"{mode}_img_per_s"] = statistics.median(mine)
            row[f"{mode}_ratio_vs_none"] = statistics.median(a / b for a, b in zip(mine, base, strict=True))
            row[f"{mode}_img_per_s_rounds"] = mine  # per round, for paired comparisons of two arms
            row[f"{mode}_steps"] = counts[mode]
        rows.append(row)
    return rows


def to_markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    lines = md_head(
        "Models: training and inference throughput with each attention, as ratios to no attention",
        result["command"],
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {s['threads']} torch threads; "
        f"Python {m['python']}, torch {m['torch']}. {s['rounds']} interleaved rounds; in each, every model of "
        f"a network runs the same number of steps, at least {s['steps']} and enough for "
        f"{s.get('min_seconds', 0):g} s of the no-attention model (train / inference steps: "
        + ", ".join(
            f"{r['model']} {r['precision']} {r.get('train_steps', s['steps'])} / {r.get('infer_steps', s['steps'])}"
            for r in result["results"]
            if r["attention"] == "none"
        )
        + "); img/s = median over rounds; ratio = median over rounds of img/s / img/s of the no-attention "
        "model in the same round. bf16 = CPU bf16 autocast."
        + (
            " `(kernel off)`: the same layers trained through the PyTorch path instead of the C++ kernel."
            if any(r["attention"].endswith(KERNEL_OFF) for r in result["results"])
            else ""
        )
        + (
            " Every model `torch.compile`d (inductor), compilation in the warm-up."
            if s.get("compile")
            else ""
        )
        + (" QUICK: measures nothing." if s["quick"] else ""),
        "| model | batch x input | precision | attention | params "
        "| train img/s | train ratio | infer img/s | infer ratio |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    )
    for r in result["results"]:
        shape = f"{r['batch']}x{'x'.join(map(str, r['input']))}" + (" CL" if r["channels_last"] else "")
        lines.append(
            f"| {r['model']} | {shape} | {r['precision']} | {r['attention']} | {r['parameters']:,} | "
            f"{r['train_img_per_s']:.0f} | {r['train_ratio_vs_none']:.3f} | {r['infer_img_per_s']:.0f} | "
            f"{r['infer_ratio_vs_none']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--out", type=Path, required=True, help="JSON path; the Markdown table goes beside it (.md)"
    )
    p.add_argument(
        "--attention",
        action="append",
        help=f"attentions besides none (default: {' '.join(DEFAULT_ATTENTIONS)})",
    )
    p.add_argument("--model", action="append", help="only these models (default: all workloads)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="at least this many steps per model per round")
    p.add_argument(
        "--min-seconds",
        type=float,
        default=0.5,
        help="and at least enough steps for this long a measurement of the no-attention model",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="tiny models and inputs: checks the script only")
    p.add_argument("--study", action="store_true", help="the study's networks (fast preset) instead")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile every model (inductor) before measuring"
    )
    args = p.parse_args(argv)
    command = "python -m miamind.bench.models " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    attentions = args.attention or list(DEFAULT_ATTENTIONS)
    workloads = QUICK_WORKLOADS if args.quick else STUDY_WORKLOADS if args.study else WORKLOADS
    if args.model:
        unknown = set(args.model) - {w["model"] for w in workloads}
        if unknown:
            raise SystemExit(f"no workload for model(s) {sorted(unknown)}")
        workloads = [w for w in workloads if w["model"] in args.model]
    rounds, steps, min_seconds = (2, 1, 0.0) if args.quick else (args.rounds, args.steps, args.min_seconds)
    rows: list[dict[str, Any]] = []
    for w in workloads:
        rows += measure_workload(w, attentions, rounds, steps, args.compile, min_seconds)
        print(f"measured {w['model']} {w['precision']}", file=sys.stderr, flush=True)
    settings = {
        "quick": args.quick,
        "study": args.study,
        "rounds": rounds,
        "steps": steps,
        "min_seconds": min_seconds,
        "compile": args.compile,
    }
    save_bench(args.out, command, settings, rows, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
