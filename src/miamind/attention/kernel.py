"""MIA-Mind's training step in four full-size passes: a C++ CPU kernel built at first use.

Why
---
Per element of X the layer's forward must read X once for both pooled means (over space for the
channel MLP, over channels for the spatial conv) and then read X and write X' once; its backward must
read dX' and X once for the gates' gradients and then read dX' and write dX once (the gradient of both
means included). That is the traffic of SE. Eager PyTorch needs more passes (one per mean, the map,
the product, a temporary per gradient, one accumulation per mean); :class:`MIALayerFunction` makes
exactly these four, with the tiny gate networks (MLP, 7x7 one-channel conv) run by ordinary
autograd in between::

    forward   zsum, msum = dual_sum(X)              one read of X
              c, s, b = gates(zsum / P, msum / C)   O(N (C + P)), autograd graph kept
              X' = gate(X, c, s, b)                 read X, write X'
    backward  gc, gs, gb = gate_grads(G, X, c, s)   one read of G and X
              gz, gm = autograd through the gates   O(N (C + P))
              dX = G (c s + b) + gz / P + gm / C    read G, write dX

Where
-----
Eager CPU training (grad on), float32 or bfloat16 X, contiguous or channels_last, 1-3 spatial dims,
for the fusions written as ``X (c s + b)`` (``mia``, ``mia_add``, ``mia_adaptive``); a contiguous X
needs at least ``MIN_CHANNEL_FIRST_POSITIONS`` positions (shorter rows train faster on the PyTorch
path, e.g. flowcnn's 1-D stages: ``results/bench/models_flowcnn.md``). Everything else
(inference, tracing, export, ``torch.compile``, CUDA, an empty batch, other dtypes) keeps the
:mod:`.fused` path. The extension is compiled once per CPU capability with the machine's C++
compiler (``torch.utils.cpp_extension``, cached under ``TORCH_EXTENSIONS_DIR``); without a compiler
the layer warns once and keeps the :mod:`.fused` path. ``MIAMIND_KERNEL=0`` turns the kernel off.

Numerics: sums in float32 over fixed tiles, reduced in a fixed order: the same result run to run
and for any thread count; equal to the plain layer up to float32 rounding (bf16: the map and the
product are computed in float32 and rounded once).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .spatial_conv import depthwise, weight_grad_by_conv

__all__ = ["MIALayerFunction", "kernel", "kernel_applies", "same_conv", "same_conv_weight_grad"]

_SOURCE = Path(__file__).with_name("csrc") / "mia_cpu.cpp"
#: compiler flags per CPU capability (torch.backends.cpu.get_cpu_capability()); a build is cached per
#: capability, so a cache shared by machines of several kinds never runs an instruction one lacks
_ARCH_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mavx2"],
    "AVX2": ["-mavx2", "-mfma"],
}
_state: dict[str, Any] = {"module": None, "tried": False}
_lock = threading.Lock()


def kernel() -> Any | None:
    """The compiled extension, built on first call; None (after one warning) where it cannot be."""
    if _state["tried"]:
        return _state["module"]
    with _lock:
        if _state["tried"]:
            return _state["module"]
        if os.environ.get("MIAMIND_KERNEL", "1") == "0":
            _state["tried"] = True
            return None
        try:
            # importing it logs a CUDA_HOME guess on CPU-only machines: not this module's concern
            quiet = logging.getLogger("torch.utils.cpp_extension")
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                from torch.utils import cpp_extension
            finally:
                quiet.setLevel(level)

            capability = torch.backends.cpu.get_cpu_capability()
            flags = _ARCH_FLAGS.get(capability, [])
            _state["module"] = cpp_extension.load(
                name=f"miamind_mia_cpu_{capability.lower()}",
                sources=[str(_SOURCE)],
                extra_cflags=["-O3", "-fopenmp-simd", *flags],
                verbose=False,
            )
        except Exception as e:  # noqa: BLE001 - no compiler, headers, ...: the layer still works
            warnings.warn(
                f"miamind: the MIA-Mind CPU kernel could not be built ({type(e).__name__}: "
                f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''}); using the PyTorch path",
                RuntimeWarning,
                stacklevel=2,
            )
        _state["tried"] = True
        return _state["module"]


#: channel-first (contiguous) inputs with fewer positions than this keep the PyTorch path: the
#: kernel's per-row sums over so few positions cost more than the passes they save
MIN_CHANNEL_FIRST_POSITIONS = 128


def kernel_applies(x: torch.Tensor) -> bool:
    """Whether :class:`MIALayerFunction` can take ``x`` and is used for it (module docstring)."""
    if x.device.type != "cpu" or x.dtype not in _DTYPES or not 3 <= x.dim() <= 5 or x.numel() == 0:
        return False
    short_rows = False
    if not x.is_contiguous():
        fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.dim())
        if fmt is None or not x.is_contiguous(memory_format=fmt):
            return False
    else:
        short_rows = math.prod(x.shape[2:]) < MIN_CHANNEL_FIRST_POSITIONS
    return kernel() is not None and not short_rows  # built (or its warning given) either way


#: float64 is for gradcheck (the kernel then computes in float64); float32 and bfloat16 in float32
_DTYPES = (torch.float32, torch.bfloat16, torch.float64)


def _acc(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _flat(t: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """A gate as the kernel reads it: (N, C) or (N, P), contiguous, in the compute dtype."""
    return None if t is None else t.detach().reshape(x.shape[0], -1).to(_acc(x)).contiguous()


def _like(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The incoming gradient in x's dtype and layout (autograd may hand over any layout)."""
    if g.stride() == x.stride() and g.dtype == x.dtype:
        return g
    return torch.empty_like(x).copy_(g)


def _plain_grads(x: torch.Tensor, gates: Any, params: tuple, grad: torch.Tensor) -> tuple:
    """(dL/dx, *dL/dparams) of the layer written in plain ops, with a graph (double backward)."""
    spatial = tuple(range(2, x.dim()))
    c, s, b = gates(x.mean(spatial, keepdim=True), x.mean(1, keepdim=True))
    a = s if c is None else c * s
    out = x * (a if b is None else a + b)
    return torch.autograd.grad(out, (x, *params), grad, create_graph=True, allow_unused=True)


def _map_kernel(m: torch.Tensor, k: tuple[int, ...]) -> tuple[Any, int, int]:
    """The extension and (kh, kw) for the spatial gate's map ``m``; no extension where it does not apply."""
    ext = kernel()
    if ext is None or m.device.type != "cpu" or m.dim() not in (3, 4) or m.dtype not in _DTYPES:
        return None, 0, 0
    kh, kw = (1, k[0]) if m.dim() == 3 else (k[0], k[1])
    return ext, kh, kw


def same_conv(m: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: Any) -> torch.Tensor:
    """The spatial gate's "same" 1 -> 1 convolution of ``m`` (N, 1, *spatial) in ``m``'s dtype, in one C++
    pass (float32 sums, rounded once: as oneDNN's bfloat16 convolution); 3-D maps, other devices or
    no kernel: :func:`~miamind.attention.spatial_conv.depthwise` (oneDNN)."""
    ext, kh, kw = _map_kernel(m, tuple(weight.shape[2:]))
    if ext is None:
        return depthwise(m, weight, bias, padding)
    # parameters rounded to m's dtype first, as a convolution in that dtype would
    w = weight.detach().to(m.dtype).to(_acc(m)).reshape(-1).contiguous()
    b = 0.0 if bias is None else float(bias.detach().to(m.dtype))
    return ext.same_conv(m.contiguous(), w, b, kh, kw)


def same_conv_weight_grad(m: torch.Tensor, grad: torch.Tensor, padding: Any) -> torch.Tensor:
    """dL/dW (1, 1, *k) of the spatial gate's "same" 1 -> 1 convolution (``padding`` = k // 2) in one
    C++ pass, accumulated in float32 (float64 for float64); 3-D maps, other devices or no kernel: the
    convolution of :func:`~miamind.attention.spatial_conv.weight_grad_by_conv`."""
    k = tuple(2 * p + 1 for p in padding)
    ext, kh, kw = _map_kernel(m, k)
    if ext is None or grad.dtype != m.dtype:
        return weight_grad_by_conv(m, grad, padding)
    return ext.same_conv_weight_grad(m.contiguous(), grad.contiguous(), kh, kw).reshape(1, 1, *k)


#: gates(z, m) -> (c or None, s, b or None), z (N, C, 1, ...) and m (N, 1, *spatial) in X's dtype
Gates = Callable[[torch.Tensor, torch.Tensor], tuple]


class MIALayerFunction(torch.autograd.Function):
    """``X * (c s + b)`` with ``(c, s, b) = gates(mean over space, mean over channels)``, in the four
    full-size passes of the module docstring. ``params`` are the tensors ``gates`` uses that need
    gradients (the layer's parameters); they are inputs so that autograd routes their gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, gates: Gates, *params: torch.Tensor) -> torch.Tensor:
        ext: Any = kernel()
        n, ch, spatial = x.shape[0], x.shape[1], x.shape[2:]
        p = math.prod(spatial)
        zsum, msum = ext.dual_sum(x)
        z = (zsum / p).to(x.dtype).reshape(n, ch, *([1] * len(spatial)))
        m = (msum / ch).to(x.dtype).reshape(n, 1, *spatial)
        with torch.enable_grad():
            z_leaf, m_leaf = z.requires_grad_(), m.requires_grad_()
            c, s, b = gates(z_leaf, m_leaf)
        cf, sf, bf = _flat(c, x), _flat(s, x), _flat(b, x)
        out = ext.gate(x, cf, sf, bf)
        ctx.save_for_backward(x, cf, sf, bf)
        ctx.graph = (z_leaf, m_leaf, c, s, b, params)
        ctx.gates = gates
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        x, cf, sf, bf = ctx.saved_tensors
        z_leaf, m_leaf, c, s, b, params = ctx.graph
        if torch.is_grad_enabled():  # create_graph=True: a plain recomputation, differentiable again
            gx, *gparams = _plain_grads(x, ctx.gates, params, grad)
            return (gx, None, *gparams)
        ext: Any = kernel()
        n, ch, p = x.shape[0], x.shape[1], math.prod(x.shape[2:])
        g = _like(grad, x)
        gc, gs, gb = ext.gate_grads(g, x, cf, sf)
        outputs, grads = [], []
        for t, gt in ((c, gc), (s, gs), (b, gb)):
            if t is not None and t.requires_grad:
                outputs.append(t)
                grads.append(gt.reshape(t.shape).to(t.dtype))
        inputs = (z_leaf, m_leaf, *params)
        # retain_graph: the gates' graph is small (O(N (C + P))) and a retained outer graph may come back
        found = (
            torch.autograd.grad(outputs, inputs, grads, allow_unused=True, retain_graph=True)
            if outputs
            else (None,) * len(inputs)
        )
        gz, gm, *gparams = found
        # the means' gradients, spread over what was averaged: added to dX in its one pass
        u = None if gz is None else (gz.to(sf.dtype) / p).reshape(n, ch).contiguous()
        v = None if gm is None else (gm.to(sf.dtype) / ch).reshape(n, -1).contiguous()
        gx = ext.gate_input_grad(g, x, cf, sf, bf, u, v) if ctx.needs_input_grad[0] else None
        return (gx, None, *gparams)
