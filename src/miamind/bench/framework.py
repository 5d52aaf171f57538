"""PyTorch vs MindSpore latency: the MIA-Mind layer and fastnet, inference and one training step.

Four backends on the same weights and the same inputs, measured in one process:

- ``torch_eager``: PyTorch as written;
- ``torch_compile``: the model wrapped in ``torch.compile`` (forward; in the train step also the
  backward, through AOTAutograd; the SGD update stays eager, as usual), backend ``inductor`` unless
  ``--compile-backend`` says otherwise;
- ``ms_pynative``: MindSpore PYNATIVE mode (op by op; the train step's update is compiled, as
  ``miamind.mindspore.train.make_train_step`` does -- MindSpore's optimisers compile their update
  kernels in either mode);
- ``ms_graph``: the same function compiled with ``mindspore.jit`` (GRAPH mode).

Workloads (``--quick``: tiny shapes and widths, for the test of this script only):

- ``mia``: one MIA-Mind layer (``mia``) on (32, 64, 32, 32);
- ``fastnet``: fastnet with MIA-Mind, batch 128 of 3 x 32 x 32, 10 classes.

``inference`` is a forward pass in eval mode without gradients; ``train_step`` is forward, backward
and one SGD update (lr 0.01, momentum 0.9) in train mode -- loss: cross entropy against fixed labels
(fastnet), mean squared error against a fixed target (the layer).

Timing: every cell is warmed up first (compilation happens there; its duration is recorded as
``first_call_s``); then the repetitions are interleaved (A B C D A B C D ...), so slow phases of a
shared machine spread over all backends alike. Each time covers one call until its result is ready
(MindSpore launches ops asynchronously: the output, for a train step the loss and an updated weight,
is read with ``asnumpy()``; ``mindspore.runtime.synchronize`` does not support the CPU device).
Reported: median, min and max in ms, and the ratio of each median to PyTorch eager's median of the
same workload measured in this run. Both frameworks use ``--threads`` CPU threads
(``torch.set_num_threads``, MindSpore's ``device_context.cpu.op_tuning.threads_num``, which a
process can set once: run the script in a fresh process). After the warm-up, each backend's inference output
is compared with PyTorch eager's (``inference_max_abs_diff_vs_torch_eager``): the four compute the
same function on the same weights.

Usage::

    python -m miamind.bench.framework --out results/bench/framework.json   # + framework.md beside it
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._report import md_head, torch_machine, write_report

BACKENDS = ("torch_eager", "torch_compile", "ms_pynative", "ms_graph")
MODES = ("inference", "train_step")

#: workload -> shapes: full run and --quick
WORKLOADS = {
    "mia": {"full": {"input": (32, 64, 32, 32)}, "quick": {"input": (2, 8, 6, 6)}},
    "fastnet": {
        "full": {"input": (128, 3, 32, 32), "widths": (64, 256, 256)},
        "quick": {"input": (2, 3, 12, 12), "widths": (4, 8, 8)},
    },
}
NUM_CLASSES = 10
LR, MOMENTUM = 0.01, 0.9


@dataclass
class Cell:
    """One (workload, mode, backend) measurement: ``run()`` does one call and waits for its result."""

    workload: str
    mode: str
    backend: str
    run: Callable[[], Any]


# ------------------------------------------------------------------------------------------ builders
def _fastnet_kwargs(shapes: dict[str, Any]) -> dict[str, Any]:
    """``create_model("fastnet", ...)`` arguments, the same in both frameworks."""
    chans, widths = shapes["input"][1], tuple(shapes["widths"])
    return {"num_classes": NUM_CLASSES, "in_chans": chans, "attention": "mia", "widths": widths}


def _torch_module(workload: str, shapes: dict[str, Any], seed: int):
    import torch

    torch.manual_seed(seed)
    if workload == "mia":
        from ..attention import create_attention

        return create_attention("mia", shapes["input"][1])
    from ..models import create_model

    return create_model("fastnet", **_fastnet_kwargs(shapes))


def _ms_cell(workload: str, shapes: dict[str, Any], torch_state: dict[str, Any]):
    from ..mindspore.convert import load_into_cell, torch_to_mindspore

    if workload == "mia":
        from ..mindspore.attention import create_attention

        cell = create_attention("mia", shapes["input"][1])
    else:
        from ..mindspore.models import create_model

        cell = create_model("fastnet", **_fastnet_kwargs(shapes))
    load_into_cell(cell, torch_to_mindspore(torch_state))
    return cell


def _inputs(workload: str, shapes: dict[str, Any], seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shapes["input"]).astype(np.float32)
    if workload == "mia":
        target = rng.standard_normal(shapes["input"]).astype(np.float32)
    else:
        target = rng.integers(0, NUM_CLASSES, shapes["input"][0]).astype(np.int64)
    return x, target


def _torch_cells(workload: str, shapes, x_np, target_np, seed: int, compile_backend: str):
    import torch
    import torch.nn.functional as F

    x, target = torch.from_numpy(x_np), torch.from_numpy(target_np)
    loss_fn = F.mse_loss if workload == "mia" else F.cross_entropy
    cells, outputs = [], {}
    for backend in ("torch_eager", "torch_compile"):
        infer_model = _torch_module(workload, shapes, seed).eval()
        train_model = _torch_module(workload, shapes, seed).train()
        opt = torch.optim.SGD(train_model.parameters(), lr=LR, momentum=MOMENTUM)
        if backend == "torch_compile":
            # the usual use: compile the model (forward, and backward through AOTAutograd); the
            # optimiser step stays eager
            infer_model = torch.compile(infer_model, backend=compile_backend)
            train_model = torch.compile(train_model, backend=compile_backend)

        def forward(inp, m=infer_model):
            return m(inp)

        def step(inp, tgt, m=train_model, o=opt):
            o.zero_grad(set_to_none=True)
            loss = loss_fn(m(inp), tgt)
            loss.backward()
            o.step()
            return loss.detach()

        def infer(f=forward):
            with torch.no_grad():
                return f(x)

        cells.append(Cell(workload, "inference", backend, infer))
        cells.append(Cell(workload, "train_step", backend, lambda f=step: f(x, target)))
        outputs[backend] = infer
    return cells, outputs


def _ms_cells(workload: str, shapes, x_np, target_np, torch_state):
    import mindspore as ms
    from mindspore import ops

    from ..mindspore.train import build_optimizer, cross_entropy, make_train_step

    x = ms.Tensor(x_np)
    target = ms.Tensor(target_np if workload == "mia" else target_np.astype(np.int32))

    def loss_fn(out, tgt):
        if workload == "mia":
            return ops.mse_loss(out, tgt)
        return cross_entropy(out, tgt)

    sgd = {"name": "sgd", "lr": LR, "momentum": MOMENTUM, "nesterov": False, "weight_decay": 0.0}
    cells, outputs = [], {}
    for backend in ("ms_pynative", "ms_graph"):
        jit = backend == "ms_graph"
        infer_cell = _ms_cell(workload, shapes, torch_state)
        infer_cell.set_train(False)
        train_cell = _ms_cell(workload, shapes, torch_state)
        train_cell.set_train(True)
        step = make_train_step(
            train_cell, build_optimizer(train_cell.trainable_params(), sgd), loss_fn, jit=jit
        )

        forward = _ms_forward(infer_cell, jit)

        def infer(f=forward):
            out = f(x)
            out.asnumpy()  # waits for the value (MindSpore launches ops asynchronously)
            return out

        first_weight = train_cell.trainable_params()[0]

        def train(s=step, first=first_weight):
            loss = s(x, target)
            # the loss, and a weight the update writes: the step is done only when both are
            loss.asnumpy()
            first.asnumpy()
            return loss

        cells.append(Cell(workload, "inference", backend, infer))
        cells.append(Cell(workload, "train_step", backend, train))
        outputs[backend] = infer
    return cells, outputs


def _ms_forward(cell, jit: bool):
    import mindspore as ms

    # a closure, not a default argument: MindSpore's graph compiler resolves free variables only
    def forward(inp):
        return cell(inp)

    return ms.jit(forward) if jit else forward


def _as_numpy(value) -> np.ndarray:
    return value.asnumpy() if hasattr(value, "asnumpy") else value.detach().numpy()


# ------------------------------------------------------------------------------------------ measuring
def machine_info(threads: int) -> dict[str, Any]:
    import mindspore

    return torch_machine(mindspore=mindspore.__version__, threads=threads)


def measure(
    *,
    quick: bool = False,
    repeats: int | None = None,
    warmup: int = 3,
    threads: int = 2,
    compile_backend: str = "inductor",
    seed: int = 0,
    cell_budget_s: float = 120.0,
    fastnet_batch: int | None = None,
) -> dict[str, Any]:
    """Build the 16 cells, check their outputs agree, time them interleaved; returns the result dict."""
    from ..mindspore._require import require_mindspore

    ms = require_mindspore()  # ImportError with the install command when the backend is missing
    from ..mindspore.train import set_threads

    repeats = repeats if repeats is not None else (3 if quick else 30)
    if repeats < 1 or warmup < 1:
        raise ValueError(f"repeats and warmup must be >= 1, got {repeats} and {warmup}")
    set_threads(threads)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    size = "quick" if quick else "full"
    workloads = {w: dict(sizes[size]) for w, sizes in WORKLOADS.items()}
    if fastnet_batch:
        workloads["fastnet"]["input"] = (fastnet_batch, *workloads["fastnet"]["input"][1:])
    cells: list[Cell] = []
    outputs: dict[str, dict[str, Callable[[], Any]]] = {}
    for workload, shapes in workloads.items():
        x_np, target_np = _inputs(workload, shapes, seed)
        state = {k: v.detach().clone() for k, v in _torch_module(workload, shapes, seed).state_dict().items()}
        t_cells, t_out = _torch_cells(workload, shapes, x_np, target_np, seed, compile_backend)
        m_cells, m_out = _ms_cells(workload, shapes, x_np, target_np, state)
        cells += t_cells + m_cells
        outputs[workload] = {**t_out, **m_out}

    first_call: dict[int, float] = {}
    for i, cell in enumerate(cells):
        t0 = time.perf_counter()
        cell.run()  # compiles, for torch_compile and ms_graph
        first_call[i] = time.perf_counter() - t0
        spent = 0.0
        for _ in range(warmup - 1):  # a very slow cell stops warming up after one warm call
            if spent > cell_budget_s / 4:
                break
            t0 = time.perf_counter()
            cell.run()
            spent += time.perf_counter() - t0
    parity: dict[str, dict[str, float]] = {}
    for workload, out in outputs.items():
        reference = _as_numpy(out["torch_eager"]())
        parity[workload] = {b: float(np.abs(_as_numpy(out[b]()) - reference).max()) for b in BACKENDS}
    times: dict[int, list[float]] = {i: [] for i in range(len(cells))}
    for _ in range(repeats):
        for i, cell in enumerate(cells):  # interleaved: every backend sees the same machine noise
            # a cell past its time budget stops once it has 3 timings (its row says how many)
            if len(times[i]) >= min(3, repeats) and sum(times[i]) > cell_budget_s:
                continue
            t0 = time.perf_counter()
            cell.run()
            times[i].append(time.perf_counter() - t0)

    results = []
    for i, cell in enumerate(cells):
        ts = times[i]
        results.append(
            {
                "workload": cell.workload,
                "mode": cell.mode,
                "backend": cell.backend,
                "median_ms": 1e3 * statistics.median(ts),
                "min_ms": 1e3 * min(ts),
                "max_ms": 1e3 * max(ts),
                "repeats": len(ts),
                "first_call_s": first_call[i],
            }
        )
    eager = {(r["workload"], r["mode"]): r["median_ms"] for r in results if r["backend"] == "torch_eager"}
    for r in results:
        r["ratio_vs_torch_eager"] = r["median_ms"] / eager[(r["workload"], r["mode"])]
    return {
        "settings": {
            "quick": quick,
            "repeats": repeats,
            "warmup": warmup,
            "threads": threads,
            "compile_backend": compile_backend,
            "seed": seed,
            "cell_budget_s": cell_budget_s,
            "shapes": {w: {k: list(v) for k, v in s.items()} for w, s in workloads.items()},
            "optimizer": f"SGD lr {LR} momentum {MOMENTUM}",
        },
        "machine": machine_info(threads),
        "inference_max_abs_diff_vs_torch_eager": parity,
        "results": results,
    }


def to_markdown(result: dict[str, Any], command: str) -> str:
    m, s = result["machine"], result["settings"]
    by = {(r["workload"], r["mode"], r["backend"]): r for r in result["results"]}
    lines = md_head(
        "PyTorch vs MindSpore: latency of the MIA-Mind layer and fastnet",
        command,
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {s['threads']} threads per framework; "
        f"Python {m['python']}, torch {m['torch']}, mindspore {m['mindspore']}. "
        f"Median of up to {s['repeats']} interleaved repetitions after up to {s['warmup']} warm-up calls "
        f"(a cell whose timed calls pass {s['cell_budget_s']:.0f} s stops at 3 or more: the `n` column); "
        f"torch.compile backend {s['compile_backend']}."
        + (" QUICK shapes (a smoke run, not a measurement)." if s["quick"] else ""),
        "Each cell: median ms (x ratio to PyTorch eager in the same run).",
        "",
        "| workload | shape | mode | " + " | ".join(BACKENDS) + " |",
        "|---|---|---|" + "---:|" * len(BACKENDS),
    )
    for workload in WORKLOADS:
        shape = "x".join(str(d) for d in s["shapes"][workload]["input"])
        for mode in MODES:
            cells = [by[(workload, mode, b)] for b in BACKENDS]
            cells = [
                f"{c['median_ms']:.2f} (x{c['ratio_vs_torch_eager']:.2f})"
                + ("" if c["repeats"] == s["repeats"] else f" n={c['repeats']}")
                for c in cells
            ]
            lines.append(f"| {workload} | {shape} | {mode} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "First call (includes compilation), seconds:",
        "",
        "| workload | mode | " + " | ".join(BACKENDS) + " |",
        "|---|---|" + "---:|" * len(BACKENDS),
    ]
    for workload in WORKLOADS:
        for mode in MODES:
            lines.append(
                f"| {workload} | {mode} | "
                + " | ".join(f"{by[(workload, mode, b)]['first_call_s']:.2f}" for b in BACKENDS)
                + " |"
            )
    lines += [
        "",
        "Inference outputs, max |difference| to PyTorch eager (same weights, same input): "
        + "; ".join(
            f"{w}: " + ", ".join(f"{b} {d:.1e}" for b, d in diffs.items())
            for w, diffs in result["inference_max_abs_diff_vs_torch_eager"].items()
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--out", type=Path, required=True, help="JSON path; the Markdown table is written beside it (.md)"
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny shapes, 3 repeats: checks the script, measures nothing"
    )
    p.add_argument("--repeats", type=int, default=None, help="timed calls per cell (default 30; --quick 3)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per cell before timing (default 3)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of each framework (default 2)")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend (default inductor)")
    p.add_argument(
        "--cell-budget-s",
        type=float,
        default=120.0,
        help="a cell stops being timed once its timed calls pass this many seconds (>= 3 calls)",
    )
    p.add_argument("--fastnet-batch", type=int, default=None, help="fastnet batch size (default 128)")
    args = p.parse_args(argv)
    command = "python -m miamind.bench.framework " + " ".join(sys.argv[1:] if argv is None else argv)
    result = measure(
        quick=args.quick,
        repeats=args.repeats,
        warmup=args.warmup,
        threads=args.threads,
        compile_backend=args.compile_backend,
        cell_budget_s=args.cell_budget_s,
        fastnet_batch=args.fastnet_batch,
    )
    result = {"command": command, "generated": time.strftime("%Y-%m-%d %H:%M:%S"), **result}
    write_report(args.out, result, to_markdown(result, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
