"""The spatial gate's 1 -> 1 channel k x k convolution, with a fast backward (MIA-Mind's ``conv_kxk(M)``,
arXiv 2504.19080 Sec. 3).

Why: oneDNN has no fast path for a convolution with one input and one output channel, so
:func:`single_channel_conv` reads the map ``M`` (N, 1, *spatial) as one sample with N channels and
runs a depthwise convolution (its kernels are fast). Through autograd, that depthwise convolution's
backward is slow: oneDNN computes N per-sample weight gradients and PyTorch sums them (in a CIFAR
fastnet step it was most of MIA-Mind's extra time). For the gate's "same" convolution (stride 1,
dilation 1, odd kernel, padding k // 2) :class:`SameSingleChannelConv` supplies the backward
itself, both parts as single convolutions:

* dL/dM = the depthwise convolution of dL/dout with the kernel flipped (a transposed convolution
  with stride 1 is a correlation with the flipped kernel, same padding);
* dL/dW = one convolution with the batch as its input channels: ``M`` (1, N, *spatial) correlated
  with dL/dout (1, N, *spatial) used as the kernel gives (1, 1, *k), the sum over samples and
  positions, in float32;
* dL/db = the sum of dL/dout.

Same values as ``conv(M)`` and the same gradients (``tests/attention/test_spatial_conv.py``,
gradcheck in float64).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .fused import _autocast_off, _exporting

__all__ = ["SameSingleChannelConv", "depthwise", "single_channel_conv", "weight_grad_by_conv"]

_CONV = (F.conv1d, F.conv2d, F.conv3d)


def depthwise(
    m: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding, stride=1, dilation=1
) -> torch.Tensor:
    """``m`` (N, 1, *spatial) convolved with the 1 x 1 x k kernel ``weight``, as a depthwise
    convolution over the batch read as channels (one group a sample)."""
    n, spatial = m.shape[0], tuple(m.shape[2:])
    dims = len(spatial)
    inp = m.reshape(1, n, *spatial)
    if dims == 2 and spatial[0] * spatial[1] >= 256:
        # oneDNN's depthwise kernels are faster channels_last from 16 x 16 up (plain below 8 x 8)
        inp = inp.contiguous(memory_format=torch.channels_last)
    kernel = weight.expand(n, *weight.shape[1:])
    b = None if bias is None else bias.expand(n)
    out = _CONV[dims - 1](inp, kernel, b, stride=stride, padding=padding, dilation=dilation, groups=n)
    return out.reshape(n, 1, *out.shape[2:])


def weight_grad_by_conv(m: torch.Tensor, grad: torch.Tensor, padding) -> torch.Tensor:
    """dL/dW (1, 1, *kernel) of the "same" 1 -> 1 convolution: sum over samples and positions of
    ``grad`` times the correspondingly shifted ``m``, accumulated in at least float32 (bf16 would
    round a sum of N * spatial products to 8 bits)."""
    acc = torch.promote_types(m.dtype, torch.float32)
    m, grad = m.to(acc), grad.to(acc)
    n, spatial = m.shape[0], tuple(m.shape[2:])
    # one convolution with the batch as input channels and ``grad`` as its kernel
    return _CONV[len(spatial) - 1](m.reshape(1, n, *spatial), grad.reshape(1, n, *spatial), padding=padding)


class SameSingleChannelConv(torch.autograd.Function):
    """``conv(m)`` for a 1 -> 1 channel stride-1 convolution with an odd kernel and padding k // 2.

    Under autocast the convolution runs in the autocast dtype (as ``conv`` would); the backward
    returns each gradient in its input's dtype.
    """

    @staticmethod
    def forward(ctx, m, weight, bias, padding, weight_grad=None, conv=None):
        dtypes = (m.dtype, weight.dtype, None if bias is None else bias.dtype)
        device = m.device.type
        if torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)
            m, weight = m.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
        ctx.conv = conv or depthwise
        with _autocast_off(device):
            out = ctx.conv(m, weight, bias, padding)
        ctx.save_for_backward(m, weight)
        ctx.padding, ctx.dtypes, ctx.weight_grad = padding, dtypes, weight_grad or weight_grad_by_conv
        return out

    @staticmethod
    def backward(ctx, grad):
        m, weight = ctx.saved_tensors
        m_dtype, w_dtype, b_dtype = ctx.dtypes
        grad = grad.to(m.dtype)
        dims = m.dim() - 2
        grad_m = grad_w = grad_b = None
        # create_graph=True (double backward): the differentiable convolutions, not the given ones
        conv, weight_grad = (
            (depthwise, weight_grad_by_conv) if torch.is_grad_enabled() else (ctx.conv, ctx.weight_grad)
        )
        with _autocast_off(m.device.type):
            if ctx.needs_input_grad[0]:
                flipped = weight.flip(list(range(2, 2 + dims)))
                grad_m = conv(grad, flipped, None, ctx.padding).to(m_dtype)
            if ctx.needs_input_grad[1]:
                grad_w = weight_grad(m, grad, ctx.padding).to(w_dtype)
            if ctx.needs_input_grad[2]:
                acc = torch.promote_types(grad.dtype, torch.float32)
                grad_b = grad.to(acc).sum().reshape(1).to(b_dtype)
        return grad_m, grad_w, grad_b, None, None, None


def _is_same_conv(conv: torch.nn.modules.conv._ConvNd) -> bool:
    k, padding = conv.kernel_size, conv.padding
    return (
        not isinstance(padding, str)
        and all(s == 1 for s in conv.stride)
        and all(d == 1 for d in conv.dilation)
        and all(kk % 2 == 1 and p == kk // 2 for kk, p in zip(k, padding, strict=True))
    )


def single_channel_conv(
    conv: torch.nn.modules.conv._ConvNd,
    m: torch.Tensor,
    weight_grad: Callable | None = None,
    same_conv: Callable | None = None,
) -> torch.Tensor:
    """``conv(m)`` for a 1 -> 1 channel convolution (the spatial gate's), computed as a depthwise
    convolution over the batch; a "same" convolution (stride 1, odd kernel, padding k // 2) gets the
    fast backward of :class:`SameSingleChannelConv`, its weight gradient from ``weight_grad(m, grad,
    padding)`` and the convolution itself from ``same_conv(m, weight, bias, padding)`` when given (the
    C++ kernel's, :func:`miamind.attention.kernel.same_conv_weight_grad` and
    :func:`~miamind.attention.kernel.same_conv`).

    Exporters, ``torch.compile``, N <= 1 (a convolution with 0 groups does not exist) and any other
    convolution get the plain ``conv(m)``.
    """
    if _exporting() or torch.compiler.is_compiling():
        return conv(m)
    n = m.shape[0]
    if (
        n <= 1
        or m.shape[1] != 1
        or conv.weight.shape[:2] != (1, 1)
        or conv.groups != 1
        or conv.padding_mode != "zeros"
    ):
        return conv(m)
    if _is_same_conv(conv) and (torch.is_grad_enabled() or same_conv is not None):
        return SameSingleChannelConv.apply(m, conv.weight, conv.bias, conv.padding, weight_grad, same_conv)
    return depthwise(m, conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation)
