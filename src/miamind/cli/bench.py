"""``miamind bench NAME ... | layers``: benchmarks (each parses its own arguments) and the layer tour."""

from __future__ import annotations

import argparse

#: ``miamind bench NAME ...`` -> module under miamind.bench, default output path
BENCHMARKS = {
    "layers": ("layers", "every attention at ResNet stage shapes: latency, saved memory, params, FLOPs"),
    "models": ("models", "train/inference img/s of each model with each attention, as ratios to none"),
    "gate-mlp": ("gate_mlp", "the channel MLP of SE and MIA-Mind: 1x1 convolutions vs matrix products"),
    "loop": ("loop", "CIFAR-10 fastnet: training img/s in the Lightning loop vs a bare loop"),
    "attention-profile": (
        "attention_profile",
        "profiler table: which operators make an attention's extra training time, per model",
    ),
    "time-to-accuracy": (
        "time_to_accuracy",
        "CIFAR-10 fastnet: test accuracy within 3- and 12-minute budgets",
    ),
    "framework": ("framework", "PyTorch eager/compile vs MindSpore PYNATIVE/GRAPH latency"),
    "mindspore-conv": ("mindspore_conv", "MindSpore vs PyTorch CPU conv kernels at fastnet sizes"),
    "slurm-overhead": ("slurm_overhead", "what the SLURM executor adds per cell (a throwaway local SLURM)"),
    "cluster-projection": ("cluster_projection", "projected wall time of the studies on 1, 8 and 64 workers"),
    "near-duplicates": ("near_duplicates", "flow test rows with a near-copy among the training rows"),
}


def _cmd_bench(args) -> int:
    import importlib

    module_name, _ = BENCHMARKS[args.bench_command]
    module = importlib.import_module(f".bench.{module_name}", "miamind")
    argv = list(args.bench_args)
    if "--out" not in argv and not any(a in ("-h", "--help") for a in argv):
        folder = "data" if module_name == "near_duplicates" else "bench"
        argv = ["--out", f"results/{folder}/{module_name}.json"] + argv
    return module.main(argv)


def _cmd_layers(args) -> int:
    from ..layer_tour import run_layer_tour

    return run_layer_tour()


def add_parsers(sub: argparse._SubParsersAction) -> None:
    layers = sub.add_parser("layers", help="tour of the attention layers: parameters, cost, equation check")
    layers.set_defaults(func=_cmd_layers)

    be = sub.add_parser("bench", help="benchmarks")
    be_sub = be.add_subparsers(dest="bench_command", required=True)
    for name, (_module_name, help_text) in BENCHMARKS.items():
        # the benchmark's own parser reads the rest (`miamind bench NAME --help` shows it);
        # --out defaults to results/bench/<name>.json
        bp = be_sub.add_parser(name, help=help_text, add_help=False)
        bp.add_argument("bench_args", nargs=argparse.REMAINDER)
        bp.set_defaults(func=_cmd_bench)
