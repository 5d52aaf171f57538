"""Where one MIA-Mind layer's training step goes against its memory floor, pass by pass.

At the two shapes of the kernel's goal (64 x 64 x 32 x 32, and the U-Net's 8 x 16 x 128 x 128), in
float32 and bfloat16: a same-size copy of X (the floor is 3.5 copies forward + backward), each of the
C++ kernel's four full-size passes alone, the spatial gate's 7 x 7 convolution alone (forward, input
gradient, weight gradient on the (N, 1, H, W) map), and the whole layer's forward + backward (bf16
under CPU autocast), all taking turns (median of 40 interleaved calls after 3 warm-up calls).
`rest` = the whole layer minus the passes and the convolution: the gate networks, autograd and Python.

Usage::

    python scripts/floor_parts.py > results/bench/floor_parts.md
"""

from __future__ import annotations

import sys

import torch

from miamind.attention import create_attention
from miamind.attention.kernel import kernel, same_conv, same_conv_weight_grad
from miamind.bench._report import torch_machine
from miamind.bench.layer_memory import median_seconds

CASES = [
    ((64, 64, 32, 32), torch.float32, False),
    ((64, 64, 32, 32), torch.bfloat16, False),
    ((64, 64, 32, 32), torch.bfloat16, True),
    ((8, 16, 128, 128), torch.float32, False),
    ((8, 16, 128, 128), torch.bfloat16, False),
    ((8, 16, 128, 128), torch.bfloat16, True),
]
PASSES = ("dual_sum", "gate", "gate_grads", "gate_input_grad")
CONVS = ("conv", "conv_input_grad", "conv_weight_grad")


def measure(shape, dtype, channels_last: bool) -> dict[str, float]:
    ext = kernel()
    n, c, h, w = shape
    torch.manual_seed(0)
    x = torch.randn(shape).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(x)
    cf, sf = torch.rand(n, c), torch.rand(n, h * w)
    m, weight, bias = torch.randn(n, 1, h, w).to(dtype), torch.randn(1, 1, 7, 7), torch.randn(1)
    layer = create_attention("mia", c)
    xg = x.clone().requires_grad_()

    def whole():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = layer(xg)
        out.backward(g)

    fns = {
        "copy": lambda: torch.empty_like(x).copy_(x),
        "dual_sum": lambda: ext.dual_sum(x),
        "gate": lambda: ext.gate(x, cf, sf, None),
        "gate_grads": lambda: ext.gate_grads(g, x, cf, sf),
        "gate_input_grad": lambda: ext.gate_input_grad(g, x, cf, sf, None, None, None),
        "conv": lambda: same_conv(m, weight, bias, (3, 3)),
        "conv_input_grad": lambda: same_conv(m, weight.flip([2, 3]), None, (3, 3)),
        "conv_weight_grad": lambda: same_conv_weight_grad(m, m, (3, 3)),
        "layer": whole,
    }
    return median_seconds(fns, 40, warmup=3, cuda_sync=False)


def main() -> int:
    if kernel() is None:
        print("the C++ kernel is not built here: nothing to measure", file=sys.stderr)
        return 1
    info = torch_machine()
    lines = [
        "# One MIA-Mind layer's training step against its memory floor, pass by pass",
        "",
        "Command: `python scripts/floor_parts.py > results/bench/floor_parts.md`",
        "",
        f"Machine: {info['cpu']}, {info['logical_cores']} logical cores, {torch.get_num_threads()} torch "
        f"threads; torch {info['torch']}. " + " ".join(__doc__.split("\n\n")[1].split()),
        "The columns after `1.5 x floor ms` are multiples of the floor (3.5 copies of X).",
        "",
        "| input | dtype | layout | floor ms | 1.5 x floor ms | 4 passes | 7 x 7 conv, 3 ops | rest | whole layer |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for shape, dtype, channels_last in CASES:
        med = measure(shape, dtype, channels_last)
        floor = 3.5 * med["copy"]
        passes = sum(med[k] for k in PASSES)
        convs = sum(med[k] for k in CONVS)
        lines.append(
            f"| {'x'.join(map(str, shape))} | {'bf16' if dtype == torch.bfloat16 else 'fp32'} | "
            f"{'channels_last' if channels_last else 'nchw'} | {1e3 * floor:.2f} | {1.5e3 * floor:.2f} | "
            f"{passes / floor:.2f} | {convs / floor:.2f} | {(med['layer'] - passes - convs) / floor:.2f} | "
            f"{med['layer'] / floor:.2f} |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
