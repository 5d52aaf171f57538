"""Memory-saving autograd for MIA-Mind's gating step: ``out = X * (c * s + b)``.

Why
---
Written as plain tensor ops, ``X * (w_c * w_s)`` makes autograd keep the full-size attention map
``A = w_c * w_s`` (N x C x spatial, the size of X) alive until the backward pass, on top of X itself.
The gates are rank-1 per sample (a channel vector times a spatial map), so the backward pass only
needs X and the two small gates: :class:`ChannelSpatialGate` saves exactly ``(X, c, s, b)`` and
recomputes everything else.

The gating step covers three MIA-Mind fusions (``c``, ``b`` of shape (N, C, 1, ...), ``s`` of shape
(N, 1, *spatial)):

=============  ========================================  ==========================================
layer          attention map A                           as ``c * s + b``
=============  ========================================  ==========================================
mia            ``w_c * w_s``                             c = w_c, s = w_s, b = None (0)
mia_add        ``w_c + w_s``                             c = None (1), s = w_s, b = w_c
mia_adaptive   ``g w_c w_s + (1 - g)(w_c + w_s) / 2``    c = g w_c + (1 - g)/2, s = w_s, b = (1 - g)/2 w_c
=============  ========================================  ==========================================

``mia_seq`` and ``mia_code`` are sequential: their spatial gate is computed from ``X1 = X * w_c``,
so ``X1`` (full size) is an input of the spatial branch and autograd must keep it (or recompute it);
the gating step is not the whole story there and they use the plain expressions.

The math
--------
With ``P`` the flattened spatial positions, ``out[n,k,p] = X[n,k,p] * (c[n,k] s[n,p] + b[n,k])`` and
``G = dL/dout``::

    dL/dX[n,k,p] = G[n,k,p] * (c[n,k] s[n,p] + b[n,k])        full size, written once
    dL/dc[n,k]   = sum_p T[n,k,p] s[n,p]                       T = G * X (one full-size temporary)
    dL/ds[n,p]   = sum_k c[n,k] T[n,k,p]
    dL/db[n,k]   = sum_p T[n,k,p]

The two weighted sums are batched matrix-vector products over T viewed as (N, C, P)
(``s^T @ T^T`` and ``c^T @ T``), so no second full-size temporary (``T * s``) is created; T's buffer
is then reused for dL/dX. Nothing but ``(X, c, s, b)`` is saved, and dL/dX is recomputed from them.

The pooled descriptors and the small gate networks stay in ordinary autograd (O(N (C + P)) saved);
their means go through :class:`BroadcastMean`, whose backward returns an expanded view, not a full-size
``grad / n`` tensor as PyTorch's ``mean`` backward does.

Cost
----
Autograd keeps X plus O(N (C + P)) instead of X plus a full-size map (``tests/attention/test_fused.py``
checks the saved bytes; timings in ``docs/attention.md``). Eager PyTorch still reads X once per pooled
mean; the C++ kernel (:mod:`.kernel`) computes both in one read. The spatial conv's backward has its
own Function (:mod:`.spatial_conv`).

Where the plain expression is used instead: :func:`fused_gate`. Under autocast the Function keeps
each input's dtype (the gates may be bf16 while X is float32: the output follows PyTorch's type
promotion, as ``X * A`` would), returns every gradient in its input's dtype, and runs its backward
reductions without autocast. The output and dL/dX are laid out like X (channels_last in,
channels_last out, for any layout of the incoming gradient).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ._shapes import is_symbolic_tracing

__all__ = [
    "BroadcastMean",
    "ChannelSpatialGate",
    "broadcast_mean",
    "fused_gate",
    "matmul_mean",
    "reference_gate",
    "use_fused",
]

_Opt = torch.Tensor | None


def _fill_gate(out: torch.Tensor, c: _Opt, s: torch.Tensor, b: _Opt) -> torch.Tensor:
    """Write the broadcast map ``c * s + b`` into ``out`` (keeping out's layout); None is 1 / 0."""
    if c is None and b is None:
        out.copy_(s)
    elif c is None:
        assert b is not None
        torch.add(b, s, out=out)
    elif b is None:
        torch.mul(c, s, out=out)
    else:
        torch.addcmul(b, c, s, out=out)
    return out


def _autocast_off(device_type: str):
    """A context without autocast for ``device_type`` (a no-op where autocast is not on)."""
    # Meta (and other) devices have no autocast at all; asking about it would raise.
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def _gate_map(c: _Opt, s: torch.Tensor, b: _Opt) -> torch.Tensor:
    """``c * s + b`` with differentiable ops (None is 1 / 0)."""
    a = s if c is None else c * s
    return a if b is None else a + b


def _gate_kernel(x: torch.Tensor, c: _Opt, s: torch.Tensor, b: _Opt) -> torch.Tensor:
    """``x * (c * s + b)`` without autograd: the map is written into the output, then x multiplied in.

    ``empty_like`` keeps x's strides (channels_last in -> channels_last out) and no full-size
    temporary is created. The dtype is what ``x * A`` would give (bf16 gates on a float32 x under
    autocast: float32).
    """
    dtype = torch.promote_types(x.dtype, s.dtype)
    for t in (c, b):
        if t is not None:
            dtype = torch.promote_types(dtype, t.dtype)
    return _fill_gate(torch.empty_like(x, dtype=dtype), c, s, b).mul_(x)


class ChannelSpatialGate(torch.autograd.Function):
    """``out = x * (c * s + b)`` saving only ``(x, c, s, b)``; see the module docstring for the math.

    Inputs: ``x`` (N, C, *spatial); ``c`` and ``b`` (N, C, 1, ...) or None (meaning 1 and 0);
    ``s`` (N, 1, *spatial). Use :func:`fused_gate`, which checks the shapes.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, c: _Opt, s: torch.Tensor, b: _Opt) -> torch.Tensor:
        ctx.save_for_backward(x, c, s, b)
        return _gate_kernel(x, c, s, b)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[_Opt, _Opt, _Opt, _Opt]:
        x, c, s, b = ctx.saved_tensors
        need_x, need_c, need_s, need_b = ctx.needs_input_grad[:4]
        # Grad mode is on here only for create_graph=True (double backward): then differentiable ops
        # only; otherwise out= and in-place ops that avoid extra full-size buffers.
        graph = torch.is_grad_enabled()
        gx = gc = gs = gb = None
        n = x.shape[0]
        buf = None
        if need_c or need_s or need_b:
            if graph:
                prod = x * grad
            else:  # T = G * X, the one full-size temporary, laid out like x (reused for dL/dX below)
                prod = torch.empty_like(x, dtype=torch.promote_types(x.dtype, grad.dtype))
                torch.mul(x, grad, out=prod)
            # (N, C, P): a view for contiguous and channels_last tensors; sizes spelled out below,
            # not -1, so that N = 0 works
            t3 = prod.flatten(2)
            # A backward run inside an autocast region would otherwise cast these matmuls to bf16/fp16.
            with _autocast_off(x.device.type):
                if need_c:
                    # s^T @ T^T rather than T @ s: the same numbers, but CPU BLAS runs this orientation
                    # several times faster for contiguous T (a batched row-vector times a matrix).
                    gc = torch.matmul(s.reshape(n, 1, t3.shape[2]).to(prod.dtype), t3.transpose(1, 2))
                    gc = gc.reshape(c.shape).to(c.dtype)
                if need_s:
                    if c is None:
                        gs = t3.sum(1)
                    else:
                        gs = torch.matmul(c.reshape(n, 1, t3.shape[1]).to(prod.dtype), t3)
                    gs = gs.reshape(s.shape).to(s.dtype)
                if need_b:
                    gb = t3.sum(-1).reshape(b.shape).to(b.dtype)
            if not graph and prod.dtype == x.dtype:
                buf = prod
            del prod, t3
        if need_x:
            if graph:
                gx = (grad * _gate_map(c, s, b)).to(x.dtype)
            else:
                gx = _fill_gate(torch.empty_like(x) if buf is None else buf, c, s, b).mul_(grad)
        return gx, gc, gs, gb


class BroadcastMean(torch.autograd.Function):
    """``x.mean(dims, keepdim=True)`` whose backward returns ``grad / n`` as an *expanded view*.

    PyTorch's own mean backward materialises ``grad.expand(x.shape) / n`` as a full-size tensor,
    which autograd then adds to X's other gradient: a full-size write, then a read, per mean. A
    zero-stride view costs nothing to create, and autograd adds it in place into X's (dense) gradient
    buffer in one pass.
    Saves nothing for the backward pass but X's shape.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        ctx.shape = x.shape
        count = 1
        for d in dims:
            count *= x.shape[d]
        ctx.count = count
        return matmul_mean(x, dims)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (grad / ctx.count).expand(ctx.shape), None


def matmul_mean(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``x.mean(dims, keepdim=True)`` for the two means of MIA-Mind, as a product with a ones vector.

    ``dims`` is ``(1,)`` (mean over channels) or all spatial axes (mean over space) of an (N, C,
    *spatial) tensor laid out contiguously or channels_last(_3d); anything else, exporters and
    ``torch.compile`` get ``x.mean``. Why: CPU reductions over bf16 tensors are slow, while a bf16
    matrix product with a ones vector reads X once; float32 is as fast or faster. The sum is
    accumulated in float32 by the BLAS in both cases; for bf16 the sum is rounded, then divided
    (a second rounding; exact when the count is a power of two).
    Runs without autocast, so a float32 X stays float32, as with ``mean``.
    """
    # Tracers first: under torch.fx the shape checks below would be proxies (no truth value).
    if _exporting() or torch.compiler.is_compiling():
        return x.mean(dims, keepdim=True)
    n, ch, spatial = x.shape[0], x.shape[1], tuple(x.shape[2:])
    spatial_dims = tuple(range(2, x.dim()))
    if x.dim() < 3 or dims not in ((1,), spatial_dims) or not x.dtype.is_floating_point or x.numel() == 0:
        return x.mean(dims, keepdim=True)
    p = 1
    for d in spatial:
        p *= d
    if x.is_contiguous():
        rows, channels_last = x.reshape(n, ch, p), False  # (N, C, P)
    elif x.dim() in (4, 5) and x.is_contiguous(
        memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    ):
        rows, channels_last = x.permute(0, *range(2, x.dim()), 1).reshape(n, p, ch), True  # (N, P, C)
    else:
        return x.mean(dims, keepdim=True)
    with _autocast_off(x.device.type):
        if dims == (1,):
            if channels_last:
                total = torch.matmul(rows, x.new_ones(ch, 1))  # (N, P, 1)
                return (total / ch).reshape(n, *spatial, 1).movedim(-1, 1)
            return (torch.matmul(x.new_ones(1, ch), rows) / ch).reshape(n, 1, *spatial)
        if channels_last:
            total = torch.matmul(x.new_ones(1, p), rows)  # (N, 1, C)
        else:
            total = torch.matmul(rows, x.new_ones(p, 1))  # (N, C, 1)
        return (total / p).reshape(n, ch, *([1] * len(spatial)))


def broadcast_mean(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``x.mean(dims, keepdim=True)`` with the cheap backward of :class:`BroadcastMean`."""
    return BroadcastMean.apply(x, tuple(dims))


def _check_shapes(x: torch.Tensor, c: _Opt, s: torch.Tensor, b: _Opt) -> None:
    shape = tuple(x.shape)
    if x.dim() < 3:
        raise ValueError(f"fused_gate: x must be (N, C, *spatial) with 1-3 spatial dims, got {shape}")
    n, ch, sp = shape[0], shape[1], shape[2:]
    channel = (n, ch) + (1,) * len(sp)
    for name, t, want in (
        ("channel_scale", c, channel),
        ("channel_shift", b, channel),
        ("spatial_gate", s, (n, 1) + sp),
    ):
        if t is not None and tuple(t.shape) != want:
            raise ValueError(f"fused_gate: {name} must have shape {want} for x {shape}, got {tuple(t.shape)}")


def fused_gate(
    x: torch.Tensor,
    channel_scale: _Opt,
    spatial_gate: torch.Tensor,
    channel_shift: _Opt = None,
) -> torch.Tensor:
    """``x * (channel_scale * spatial_gate + channel_shift)``, by the cheapest safe route.

    - an autograd graph is being built (:func:`use_fused`): :class:`ChannelSpatialGate`, which saves
      only its four inputs (also under ``torch.compile``, which traces it);
    - ONNX export, ``torch.export``, TorchScript, or ``torch.compile`` without a graph:
      :func:`reference_gate`, plain ops that exporters and compilers handle;
    - eager without a graph (inference): the Function's forward kernel directly, which allocates
      nothing but the output and keeps X's memory format.

    Args:
        x: (N, C, *spatial).
        channel_scale: (N, C, 1, ...), or None for 1.
        spatial_gate: (N, 1, *spatial).
        channel_shift: (N, C, 1, ...), or None for 0.
    """
    args = (x, channel_scale, spatial_gate, channel_shift)
    if is_symbolic_tracing():
        return reference_gate(*args)  # shapes are proxies here: nothing to check, plain ops to record
    _check_shapes(*args)
    if use_fused(*(t for t in args if t is not None)):
        return ChannelSpatialGate.apply(*args)
    if _exporting() or torch.compiler.is_compiling():
        return reference_gate(*args)
    return _gate_kernel(*args)


def reference_gate(
    x: torch.Tensor,
    channel_scale: _Opt,
    spatial_gate: torch.Tensor,
    channel_shift: _Opt = None,
) -> torch.Tensor:
    """The same product with plain ops (autograd keeps the full-size map); for checks and export."""
    return x * _gate_map(channel_scale, spatial_gate, channel_shift)


def _exporting() -> bool:
    """An exporter, TorchScript or ``torch.fx`` is tracing: it wants plain ops (no Python autograd.Function,
    no Python decisions on shapes)."""
    return (
        torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or is_symbolic_tracing()
        or torch.compiler.is_exporting()
        or torch.onnx.is_in_onnx_export()
    )


def use_fused(*tensors: torch.Tensor) -> bool:
    """Whether the memory-saving autograd Functions should be used for these inputs right now.

    True only when an autograd graph is being built through them (grad mode on and one of them
    requires grad) and no exporter / tracer is running (:func:`_exporting`): without a graph
    nothing is saved, so there is nothing to gain.
    """
    if _exporting() or not torch.is_grad_enabled():
        return False
    return any(t.requires_grad for t in tensors)
