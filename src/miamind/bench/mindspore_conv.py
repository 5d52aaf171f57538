"""Why MindSpore trains fastnet so slowly on this CPU: its 3x3 convolution, next to PyTorch's.

Times (median of ``--repeats`` after one warm-up call, ``--threads`` threads in both frameworks,
float32, PYNATIVE mode) of a few operations on fastnet-sized tensors, each in MindSpore and PyTorch:
a 3x3 convolution 64 -> 64 on 8 x 64 x 32 x 32, a 1x1 convolution on the same input, the MIA
spatial 7x7 convolution 1 -> 1 on 8 x 1 x 32 x 32, and a matrix product with the 3x3 convolution's
multiply-adds (512 x 576 times 576 x 8192).

Usage::

    python -m miamind.bench.mindspore_conv --out results/bench/mindspore_conv.json   # + .md beside it
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def _median_s(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(threads: int, repeats: int) -> dict[str, dict[str, float]]:
    import torch
    import torch.nn.functional as F

    from ..mindspore._require import require_mindspore

    ms = require_mindspore()
    from mindspore import ops

    from ..mindspore.train import set_threads

    set_threads(threads)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    rng = np.random.default_rng(0)
    arrays = {
        "x": rng.standard_normal((8, 64, 32, 32), dtype=np.float32),
        "w3": rng.standard_normal((64, 64, 3, 3), dtype=np.float32),
        "w1": rng.standard_normal((64, 64, 1, 1), dtype=np.float32),
        "m": rng.standard_normal((8, 1, 32, 32), dtype=np.float32),
        "w7": rng.standard_normal((1, 1, 7, 7), dtype=np.float32),
        "a": rng.standard_normal((512, 576), dtype=np.float32),
        "b": rng.standard_normal((576, 8192), dtype=np.float32),
    }
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    m = {k: ms.Tensor(v) for k, v in arrays.items()}
    ops_torch = {
        "conv3x3 64->64, 8x64x32x32": lambda: F.conv2d(t["x"], t["w3"], padding=1),
        "conv1x1 64->64, 8x64x32x32": lambda: F.conv2d(t["x"], t["w1"]),
        "conv7x7 1->1, 8x1x32x32": lambda: F.conv2d(t["m"], t["w7"], padding=3),
        "matmul 512x576 @ 576x8192": lambda: t["a"] @ t["b"],
    }
    ops_ms = {
        "conv3x3 64->64, 8x64x32x32": lambda: ops.conv2d(
            m["x"], m["w3"], pad_mode="pad", padding=1
        ).asnumpy(),
        "conv1x1 64->64, 8x64x32x32": lambda: ops.conv2d(m["x"], m["w1"]).asnumpy(),
        "conv7x7 1->1, 8x1x32x32": lambda: ops.conv2d(m["m"], m["w7"], pad_mode="pad", padding=3).asnumpy(),
        "matmul 512x576 @ 576x8192": lambda: ops.matmul(m["a"], m["b"]).asnumpy(),
    }
    out = {}
    for name in ops_torch:
        pt, mst = _median_s(ops_torch[name], repeats), _median_s(ops_ms[name], repeats)
        out[name] = {"torch_ms": 1e3 * pt, "mindspore_ms": 1e3 * mst, "mindspore_over_torch": mst / pt}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    command = "python -m miamind.bench.mindspore_conv " + " ".join(sys.argv[1:] if argv is None else argv)
    import mindspore

    from ._report import md_head, torch_machine, write_report

    info = torch_machine(mindspore=mindspore.__version__)
    result = {
        "command": command,
        "machine": info,
        "threads": args.threads,
        "repeats": args.repeats,
        "ops": measure(args.threads, args.repeats),
    }
    lines = md_head(
        "MindSpore vs PyTorch CPU kernels at fastnet sizes",
        command,
        f"Machine: {info['cpu']}, {info['logical_cores']} logical cores, {args.threads} threads in both; "
        f"torch {info['torch']}, mindspore {info['mindspore']}; float32; median of {args.repeats}.",
        "| op | PyTorch ms | MindSpore ms | MindSpore / PyTorch |",
        "|---|---:|---:|---:|",
    )
    for name, r in result["ops"].items():
        lines.append(
            f"| {name} | {r['torch_ms']:.2f} | {r['mindspore_ms']:.2f} | {r['mindspore_over_torch']:.1f} |"
        )
    write_report(args.out, result, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
