"""Where an attention's extra training time goes: a profiler table per ``bench models`` workload.

For each workload (the same models, batches and precisions as :mod:`miamind.bench.models`), the
model without attention and each named attention are trained in turn under ``torch.profiler``
(``--rounds`` rounds of ``--steps`` steps each, interleaved, after a warm-up). Every operator call is
keyed by its name and input shapes; the table lists, per attention, the operators whose self CPU time
per step grew most over the same network without attention (``none``): the attention's own
operators and whatever it changed around it. The profiled step times give the ratio, as a cross-check
of ``bench models`` (the profiler adds overhead, so its ratio is only indicative).

Usage::

    python -m miamind.bench.attention_profile --model unet --model flowcnn \\
        --out results/bench/attention_profile.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from ._report import md_head, save_bench
from .models import QUICK_WORKLOADS, WORKLOADS, build_workload, train_steps


def profile_workload(
    w: dict[str, Any], attentions: Sequence[str], rounds: int, steps: int, top: int
) -> dict[str, Any]:
    names = ["none", *[a for a in attentions if a != "none"]]
    x, target, models, opts = build_workload(w, names)
    for n in names:  # warm-up: allocations, oneDNN primitives
        train_steps(w, models[n], opts[n], x, target, 2)
    ops: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in names}
    wall: dict[str, float] = dict.fromkeys(names, 0.0)
    for _ in range(rounds):
        for n in names:
            t0 = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                train_steps(w, models[n], opts[n], x, target, steps)
            wall[n] += time.perf_counter() - t0
            # self CPU ms and calls per step of every (operator, input shapes)
            for e in prof.key_averages(group_by_input_shape=True):
                acc = ops[n].setdefault(
                    f"{e.key} {e.input_shapes}",
                    {"op": e.key, "shapes": str(e.input_shapes), "ms": 0.0, "calls": 0.0},
                )
                acc["ms"] += e.self_cpu_time_total / 1000 / (steps * rounds)
                acc["calls"] += e.count / (steps * rounds)
    step_ms = {n: 1000 * wall[n] / (rounds * steps) for n in names}
    per_attention = {}
    for n in names[1:]:
        extra = []
        for key in set(ops[n]) | set(ops["none"]):
            mine, base = ops[n].get(key), ops["none"].get(key)
            ref = mine or base
            assert ref is not None
            d = (mine["ms"] if mine else 0.0) - (base["ms"] if base else 0.0)
            calls = mine["calls"] if mine else 0.0
            extra.append(
                {"op": ref["op"], "shapes": ref["shapes"], "extra_ms_per_step": d, "calls_per_step": calls}
            )
        extra.sort(key=lambda r: -r["extra_ms_per_step"])
        per_attention[n] = {
            "step_ms": step_ms[n],
            "ratio_vs_none": step_ms["none"] / step_ms[n],
            "extra_ms_per_step": step_ms[n] - step_ms["none"],
            "top_ops": extra[:top],
        }
    return {
        "model": w["model"],
        "batch": w["batch"],
        "input": list(w["input"]),
        "precision": w["precision"],
        "channels_last": w["channels_last"],
        "none_step_ms": step_ms["none"],
        "attentions": per_attention,
    }


def to_markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    lines = md_head(
        "Where an attention's extra training time goes (torch.profiler, self CPU time per step)",
        result["command"],
        f"Machine: {m.get('cpu', '?')}, {m.get('logical_cores', '?')} logical cores, "
        f"{s['threads']} torch threads; torch {m.get('torch', '?')}. {s['rounds']} interleaved rounds of "
        f"{s['steps']} profiled training steps per model. `extra ms` = self CPU ms per step of that "
        "operator (same name and input shapes) with the attention minus without it; operators the "
        "attention adds have no counterpart, so their whole time is extra. Profiled step times carry "
        "the profiler's overhead: the ratios are indicative, `bench models` has the measured ones.",
    )
    for r in result["results"]:
        shape = "x".join(str(v) for v in r["input"])
        for att, a in r["attentions"].items():
            lines += [
                f"## {r['model']}, batch {r['batch']} x {shape}, {r['precision']}: {att}",
                "",
                f"Step {a['step_ms']:.1f} ms vs {r['none_step_ms']:.1f} ms without attention "
                f"(+{a['extra_ms_per_step']:.1f} ms, ratio {a['ratio_vs_none']:.3f}).",
                "",
                "| operator | input shapes | calls / step | extra ms / step |",
                "|---|---|---:|---:|",
            ]
            for op in a["top_ops"]:
                shapes = op["shapes"].replace("|", "\\|")
                lines.append(
                    f"| {op['op']} | {shapes} | {op['calls_per_step']:.0f} | {op['extra_ms_per_step']:.2f} |"
                )
            lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="JSON path; the Markdown table goes beside it")
    p.add_argument("--model", action="append", help="only these models' workloads (default: all)")
    p.add_argument("--attention", action="append", help="attentions besides none (default: se mia)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2, help="profiled steps per model per round")
    p.add_argument("--top", type=int, default=12, help="operators listed per attention")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="tiny models and inputs: checks the script only")
    args = p.parse_args(argv)
    command = "python -m miamind.bench.attention_profile " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    workloads = QUICK_WORKLOADS if args.quick else WORKLOADS
    if args.model:
        unknown = set(args.model) - {w["model"] for w in workloads}
        if unknown:
            p.error(f"--model: no workload for {', '.join(sorted(unknown))}")
        workloads = [w for w in workloads if w["model"] in args.model]
    rounds, steps = (1, 1) if args.quick else (args.rounds, args.steps)
    attentions = args.attention or ["se", "mia"]
    rows = []
    for w in workloads:
        rows.append(profile_workload(w, attentions, rounds, steps, args.top))
        print(f"profiled {w['model']} {w['precision']}", file=sys.stderr, flush=True)
    save_bench(args.out, command, {"rounds": rounds, "steps": steps, "quick": args.quick}, rows, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
