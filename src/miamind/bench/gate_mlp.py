"""The channel MLP of SE and MIA-Mind (``W2 act(W1 z + b1) + b2`` on the pooled z): timm's 1x1
convolutions vs the matrix products MIA-Mind's layers run, forward + backward, in each network.

Both compute the same numbers from the same parameters (the 1x1 convolutions' weights); on the CPU,
oneDNN's 1x1 convolution of an (N, C, 1, 1) tensor costs several times a matrix product, forward and
backward. MIA-Mind's layers run their MLP as matrix products; the ``se`` comparator runs timm's
``SEModule`` forward unchanged (1x1 convolutions). This table says how much of the difference between
the two in ``results/bench/models.md`` is this choice, which SE could make too.

Per network (the workloads of :mod:`.models`), every SE layer's MLP on its pooled input (N, C, 1, 1),
in the workload's precision; medians of ``--repeats`` interleaved calls; the last column sums the
layers: the milliseconds per training step the matrix products save.

Usage::

    python -m miamind.bench.gate_mlp --out results/bench/gate_mlp.json   # + gate_mlp.md beside it
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..attention.mia import MIAMind
from ..models import attention_layers, create_model
from ._report import md_head, save_bench
from .layer_memory import median_seconds
from .models import QUICK_WORKLOADS, WORKLOADS, _autocast


def _pooled_inputs(w: dict[str, Any]) -> list[tuple[torch.nn.Module, torch.Size]]:
    """(SE layer, shape (N, C, 1, 1) of its pooled input) for each attention layer of the workload's network."""
    model = create_model(
        w["model"], num_classes=w["classes"], in_chans=w["input"][0], attention="se", **w["kwargs"]
    ).eval()
    shapes: list[tuple[torch.nn.Module, torch.Size]] = []
    hooks = [
        layer.register_forward_hook(lambda mod, inp, out: shapes.append((mod, inp[0].shape)))
        for _, layer in attention_layers(model)
    ]
    with torch.no_grad():
        model(torch.randn(w["batch"], *w["input"]))
    for h in hooks:
        h.remove()
    # timm's SE runs 2-D 1x1 convolutions for any input rank (1-D and 3-D inputs are reshaped)
    return [(layer, torch.Size([s[0], s[1], 1, 1])) for layer, s in shapes]


def measure(w: dict[str, Any], repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    fns, layers = {}, []
    for i, (layer, shape) in enumerate(_pooled_inputs(w)):
        z = torch.randn(shape, requires_grad=True)
        grad = torch.randn(shape)

        def convs(z=z, grad=grad, layer=layer):
            with _autocast(w["precision"]):
                out = layer.fc2(layer.act(layer.fc1(z)))
            out.float().backward(grad)

        def matmuls(z=z, grad=grad, layer=layer):
            with _autocast(w["precision"]):
                # MIA-Mind's own MLP method, on the SE layer's fc1 / act / fc2
                out = MIAMind._mlp(layer, z)
            out.float().backward(grad)

        fns[(i, "convs")], fns[(i, "matmuls")] = convs, matmuls
        layers.append({"batch": shape[0], "channels": shape[1], "hidden": layer.fc1.out_channels})
    med = median_seconds(fns, repeats, warmup=3, cuda_sync=False)
    for i, row in enumerate(layers):
        row["convs_ms"], row["matmuls_ms"] = 1e3 * med[(i, "convs")], 1e3 * med[(i, "matmuls")]
    return {
        "model": w["model"],
        "precision": w["precision"],
        "layers": layers,
        "saved_ms_per_step": sum(r["convs_ms"] - r["matmuls_ms"] for r in layers),
    }


def to_markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    lines = md_head(
        "The channel MLP: 1x1 convolutions (timm's SE) vs matrix products (MIA-Mind)",
        result["command"],
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {s['threads']} torch threads; torch "
        f"{m['torch']}. Forward + backward of the MLP on each attention layer's pooled input, median of "
        f"{s['repeats']} interleaved calls; `layers` lists batch x channels -> hidden. `saved ms/step`: the "
        "sum over the network's layers of (convolutions - matrix products).",
        "| model | precision | layers (N x C -> h) | 1x1 convs ms | matrix products ms | saved ms/step |",
        "|---|---|---|---:|---:|---:|",
    )
    for r in result["results"]:
        shapes = ", ".join(f"{x['batch']}x{x['channels']}->{x['hidden']}" for x in r["layers"])
        convs = sum(x["convs_ms"] for x in r["layers"])
        matmuls = sum(x["matmuls_ms"] for x in r["layers"])
        lines.append(
            f"| {r['model']} | {r['precision']} | {shapes} | {convs:.2f} | {matmuls:.2f} | "
            f"{r['saved_ms_per_step']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", action="append", help="only these models (default: all workloads)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--quick", action="store_true", help="tiny networks and inputs: checks the script only")
    args = p.parse_args(argv)
    command = "python -m miamind.bench.gate_mlp " + " ".join(sys.argv[1:] if argv is None else argv)
    workloads = [
        w
        for w in (QUICK_WORKLOADS if args.quick else WORKLOADS)
        if not args.model or w["model"] in args.model
    ]
    seen, rows = set(), []
    for w in workloads:  # one row per network and precision
        if (w["model"], w["precision"]) not in seen:
            seen.add((w["model"], w["precision"]))
            rows.append(measure(w, args.repeats))
    save_bench(args.out, command, {"repeats": args.repeats}, rows, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
