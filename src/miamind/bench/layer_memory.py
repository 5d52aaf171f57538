"""Saved memory and speed of one MIA-Mind layer: plain autograd vs the fused gating path.

For one input shape (default a CIFAR ResNet-18 stage-1 activation, 64 x 64 x 32 x 32) it reports:

- ``saved_bytes`` / ``extra_saved_bytes``: bytes of the unique storages autograd saves for the
  backward pass of the layer (``torch.autograd.graph.saved_tensors_hooks``), parameters excluded,
  and the same without X's own storage (X is usually kept by the previous layer anyway); also as a
  ratio to the input's size;
- median wall times of ``forward`` (autograd on), ``forward+backward`` and ``forward`` under
  ``torch.no_grad()`` for the plain layer (``fused=False``) and the fused one (``fused=True``), both on
  the PyTorch path (``use_kernel = False``; ``miamind bench layers`` times the C++ kernel), next
  to a same-size copy (``torch.empty_like(x).copy_(x)``: one read and one write of X), measured in
  the same run, all functions taking turns so that load changes on a shared machine hit them alike.
  The memory-traffic bound of the forward pass (two reads and one write of X) is taken as 1.5 x the
  copy time.

Timings depend on the machine and on what else runs on it; compare rows of one run only. Usage::

    python -m miamind.bench.layer_memory --shape 64 64 32 32 --repeats 10 --out layer_memory.json
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch

from miamind.attention import get_attention


def saved_bytes(layer: torch.nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Bytes of unique storages saved for backward by ``layer(x)``: all, and without X's storage."""
    param_ptrs = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x)
    acts = {ptr: n for ptr, n in storages.items() if ptr not in param_ptrs}
    x_ptr = x.untyped_storage().data_ptr()
    extra = sum(n for ptr, n in acts.items() if ptr != x_ptr)
    return {"saved_bytes": sum(acts.values()), "extra_saved_bytes": extra}


def median_seconds(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2, cuda_sync: bool = True
) -> dict[str, float]:
    """Median wall time of each function; the functions take turns, so load changes hit all alike.
    ``cuda_sync``: wait for the GPU after each call (when there is one)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if cuda_sync and torch.cuda.is_available():
                torch.cuda.synchronize()
            if i >= warmup:
                times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def run(name: str, shape: list[int], repeats: int, device: str, channels_last: bool) -> dict:
    torch.manual_seed(0)
    x = torch.randn(*shape, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    grad = torch.randn_like(x)
    in_bytes = x.numel() * x.element_size()
    layers = {
        key: get_attention(name)(shape[1], dims=len(shape) - 2, fused=fused).to(device)
        for key, fused in (("reference", False), ("fused", True))
    }
    for layer in layers.values():
        # the PyTorch paths this compares; the C++ kernel has its own rows in `miamind bench layers`
        layer.use_kernel = False

    def fwd_bwd(layer: torch.nn.Module) -> Callable[[], None]:
        def fn() -> None:
            layer(x).backward(grad)
            x.grad = None
            layer.zero_grad(set_to_none=True)

        return fn

    def fwd_nograd(layer: torch.nn.Module) -> Callable[[], None]:
        def fn() -> None:
            with torch.no_grad():
                layer(x)

        return fn

    fns: dict[str, Callable[[], object]] = {"copy": lambda: torch.empty_like(x).copy_(x.detach())}
    for key, layer in layers.items():
        fns[f"{key}.forward"] = functools.partial(layer, x)
        fns[f"{key}.forward_backward"] = fwd_bwd(layer)
        fns[f"{key}.forward_nograd"] = fwd_nograd(layer)
    med = median_seconds(fns, repeats)
    copy_s = med["copy"]
    result = {
        "layer": name,
        "shape": shape,
        "dtype": str(x.dtype),
        "device": device,
        "channels_last": channels_last,
        "input_bytes": in_bytes,
        "copy_s": copy_s,
        "traffic_bound_s": 1.5 * copy_s,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "repeats": repeats,
    }
    for key, layer in layers.items():
        mem = saved_bytes(layer, x)
        result[key] = {
            **mem,
            "extra_saved_ratio": mem["extra_saved_bytes"] / in_bytes,
            "forward_s": med[f"{key}.forward"],
            "forward_over_bound": med[f"{key}.forward"] / (1.5 * copy_s),
            "forward_backward_s": med[f"{key}.forward_backward"],
            "forward_nograd_s": med[f"{key}.forward_nograd"],
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", default="mia", help="registered attention name with a `fused` flag")
    parser.add_argument("--shape", type=int, nargs="+", default=[64, 64, 32, 32], help="N C *spatial")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args.layer, args.shape, args.repeats, args.device, args.channels_last)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
