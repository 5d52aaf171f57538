"""Every registered attention at ResNet stage shapes: latency, saved memory, parameters, FLOPs.

For each attention, input shape (N=64 by default: 64x32x32, 128x16x16, 256x8x8, 512x4x4, 2048x4x4),
dtype (fp32; bf16 = a bf16 input under CPU bf16 autocast, as in a ``bf16-mixed`` network) and memory
format (NCHW, channels_last):

- ``forward_ms`` and ``forward_backward_ms``: medians of ``--repeats`` timed calls after warm-up,
  every layer of one input configuration taking turns with a same-size copy (``copy_ms``: one read
  and one write of X) so that load changes on a shared machine hit them alike;
- ``forward_over_floor`` and ``forward_backward_over_floor``: time / the layer's memory floor, the
  bytes a gating layer must move divided by the copy bandwidth measured beside it: forward, two
  reads and one write of X (1.5 copies); forward + backward, that plus one read of dX' and X (both
  gates' gradients) and one read of dX' and write of dX (3.5 copies);
- ``kernel``: for the layers with a C++ training kernel (``mia``, ``mia_add``, ``mia_adaptive``),
  ``on`` and ``off`` rows (``off``: the same layer with ``use_kernel = False``, the PyTorch path);
  ``-`` for the others;
- ``extra_saved_bytes``: bytes autograd keeps for the backward pass beyond X itself (unique storages,
  parameters excluded), and ``extra_saved_ratio`` = that / the size of X: the activation memory the
  layer adds to training;
- ``parameters`` and ``forward_flops``: ``torch.utils.flop_counter.FlopCounterMode`` on one forward
  pass, which counts matmuls and convolutions as 2 x MACs and ignores elementwise ops, pooling and
  activations (so gates made only of pooling and elementwise ops show 0 or few FLOPs).

Usage::

    python -m miamind.bench.layers --out results/bench/layers.json   # + layers.md beside it
    python -m miamind.bench.layers --attention mia --attention se --batch 8 --shape 16x128x128 \
        --out results/bench/layers_unet.json                        # the U-Net's first level
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..attention import create_attention, list_attention
from ..attention.kernel import kernel
from ._report import md_head, save_bench
from .layer_memory import median_seconds, saved_bytes
from .models import _autocast

SHAPES = [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (2048, 4, 4)]
QUICK_SHAPES = [(16, 8, 8)]
DTYPES = ("fp32", "bf16")
#: memory floor of a gating layer in copies of X (one copy = one read + one write)
FORWARD_FLOOR, FORWARD_BACKWARD_FLOOR = 1.5, 3.5
LAYOUTS = ("nchw", "channels_last")


def forward_flops(layer: torch.nn.Module, x: torch.Tensor) -> int:
    """Forward FLOPs by torch's counter, counted on the PyTorch path: the C++ kernel's operations (the
    spatial gate's convolution) are invisible to the counter, and the math is the same."""
    from torch.utils.flop_counter import FlopCounterMode

    use_kernel = getattr(layer, "use_kernel", None)
    counter = FlopCounterMode(display=False)
    try:
        if use_kernel is not None:
            layer.use_kernel = False
        with counter, torch.no_grad():
            layer(x)
    finally:
        if use_kernel is not None:
            layer.use_kernel = use_kernel
    return int(counter.get_total_flops())


def measure_config(
    names: Sequence[str], batch: int, shape: Sequence[int], dtype: str, layout: str, repeats: int, warmup: int
) -> list[dict[str, Any]]:
    """All layers on one (shape, dtype, layout), interleaved with the copy; one row per layer."""
    torch.manual_seed(0)
    x = torch.randn(batch, *shape, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    in_bytes = x.numel() * x.element_size()
    layers = {}
    for n in names:
        layers[(n, "-")] = layer = create_attention(n, shape[0])
        if getattr(layer, "has_kernel", False) and kernel() is not None:
            layers[(n, "on")] = layers.pop((n, "-"))
            off = create_attention(n, shape[0])
            off.load_state_dict(layer.state_dict())
            off.use_kernel = False
            layers[(n, "off")] = off
    grads = {}
    with _autocast(dtype), torch.no_grad():
        for n, layer in layers.items():
            grads[n] = torch.randn_like(layer(x))  # dtype/layout of the output as autocast makes it

    def fwd(layer):
        def fn():
            with _autocast(dtype):
                layer(x)

        return fn

    def fwd_bwd(layer, grad):
        def fn():
            with _autocast(dtype):
                out = layer(x)
            out.backward(grad)
            x.grad = None
            layer.zero_grad(set_to_none=True)

        return fn

    fns: dict[str, Callable[[], object]] = {"copy": lambda: torch.empty_like(x).copy_(x.detach())}
    for n, layer in layers.items():
        fns[f"{n}.fwd"] = fwd(layer)
        fns[f"{n}.fwd_bwd"] = fwd_bwd(layer, grads[n])
    med = median_seconds(fns, repeats, warmup, cuda_sync=False)
    copy_s = med["copy"]
    rows = []
    for (name, on), layer in layers.items():
        n = (name, on)
        with _autocast(dtype):
            mem = saved_bytes(layer, x)
            flops = forward_flops(layer, x.detach())
        f, fb = med[f"{n}.fwd"], med[f"{n}.fwd_bwd"]
        rows.append(
            {
                "attention": name,
                "kernel": on,
                "input": [batch, *shape],
                "dtype": dtype,
                "layout": layout,
                "input_bytes": in_bytes,
                "forward_ms": 1e3 * f,
                "forward_backward_ms": 1e3 * fb,
                "copy_ms": 1e3 * copy_s,
                "forward_over_floor": f / (FORWARD_FLOOR * copy_s),
                "forward_backward_over_floor": fb / (FORWARD_BACKWARD_FLOOR * copy_s),
                "extra_saved_bytes": mem["extra_saved_bytes"],
                "extra_saved_ratio": mem["extra_saved_bytes"] / in_bytes,
                "parameters": sum(p.numel() for p in layer.parameters()),
                "forward_flops": flops,
            }
        )
    return rows


def to_markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    lines = md_head(
        "Attention layers: latency, saved memory, parameters, FLOPs",
        result["command"],
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {s['threads']} torch threads; "
        f"Python {m['python']}, torch {m['torch']}. Median of {s['repeats']} interleaved calls after "
        f"{s['warmup']} warm-up calls. bf16 = bf16 input under CPU bf16 autocast. `fwd/floor` = forward "
        "time / its memory floor (1.5 x a same-size copy measured beside it), `fwd+bwd/floor` = forward "
        "+ backward time / 3.5 copies; `kernel`: the C++ training kernel on or off (`-`: the layer has "
        "none). `saved/X` = bytes kept for backward beyond X "
        "/ bytes of X. FLOPs = forward FLOPs by torch.utils.flop_counter (2 x MACs of matmuls and "
        "convolutions; elementwise ops and pooling not counted)."
        + (" QUICK: measures nothing." if s["quick"] else ""),
        "| attention | kernel | input | dtype | layout | fwd ms | fwd+bwd ms | copy ms | fwd/floor | fwd+bwd/floor "
        "| saved/X | params | FLOPs |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    )
    for r in result["results"]:
        lines.append(
            f"| {r['attention']} | {r['kernel']} | {'x'.join(map(str, r['input']))} | {r['dtype']} | "
            f"{r['layout']} | {r['forward_ms']:.2f} | {r['forward_backward_ms']:.2f} | {r['copy_ms']:.2f} | "
            f"{r['forward_over_floor']:.2f} | {r['forward_backward_over_floor']:.2f} | "
            f"{r['extra_saved_ratio']:.3f} | {r['parameters']:,} | "
            f"{r['forward_flops']:,} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--out", type=Path, required=True, help="JSON path; the Markdown table goes beside it (.md)"
    )
    p.add_argument(
        "--attention", action="append", help="only these attentions (default: every registered one)"
    )
    p.add_argument("--batch", type=int, default=64)
    p.add_argument(
        "--shape", action="append", help="C x H x W of an input (repeatable; default: the ResNet stages)"
    )
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="one tiny shape, 2 repeats: checks the script only")
    args = p.parse_args(argv)
    command = "python -m miamind.bench.layers " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.attention or list_attention()
    for n in names:
        create_attention(n, 8)  # unknown names fail here, before any measuring
    shapes = QUICK_SHAPES if args.quick else SHAPES
    if args.shape and not args.quick:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shape]
    batch = 2 if args.quick else args.batch
    repeats, warmup = (2, 1) if args.quick else (args.repeats, args.warmup)
    rows: list[dict[str, Any]] = []
    for shape in shapes:
        for dtype in DTYPES:
            for layout in LAYOUTS:
                rows += measure_config(names, batch, shape, dtype, layout, repeats, warmup)
                print(
                    f"measured {batch}x{'x'.join(map(str, shape))} {dtype} {layout}",
                    file=sys.stderr,
                    flush=True,
                )
    settings = {"quick": args.quick, "batch": batch, "repeats": repeats, "warmup": warmup}
    save_bench(args.out, command, settings, rows, to_markdown, portable=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
