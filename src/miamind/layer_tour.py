"""`miamind layers`: a short tour of the layer library (parameters, cost, equation check).

Prints, for every registered attention at C=64 on a (16, 64, 32, 32) input: parameters, and
forward+backward time as a ratio to a 3x3 conv of the same width measured in the same run, so the
numbers mean something on a noisy machine. Then checks MIA-Mind against the paper's equations.
"""

from __future__ import annotations

import time
from statistics import median

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import MIAMind, create_attention, list_attention


def _fwd_bwd_ms(module: nn.Module, x: torch.Tensor, repeats: int = 7) -> float:
    times = []
    for i in range(repeats + 2):
        xi = x.detach().requires_grad_(True)
        t0 = time.perf_counter()
        module(xi).sum().backward()
        if i >= 2:  # first two are warm-up
            times.append(time.perf_counter() - t0)
    return 1e3 * median(times)


def paper_formula(layer: MIAMind, x: torch.Tensor) -> torch.Tensor:
    """X * (w_c x w_s), written from the paper's equations with the layer's own parameters."""
    z = x.mean(dim=(2, 3))
    hidden = F.relu(F.linear(z, layer.fc1.weight.flatten(1), layer.fc1.bias))
    w_c = torch.sigmoid(F.linear(hidden, layer.fc2.weight.flatten(1), layer.fc2.bias))
    m = x.mean(dim=1, keepdim=True)
    w_s = torch.sigmoid(F.conv2d(m, layer.spatial.weight, layer.spatial.bias, padding=layer.spatial.padding))
    return x * (w_c[:, :, None, None] * w_s)


def run_layer_tour() -> int:
    torch.manual_seed(0)
    channels = 64
    x = torch.randn(16, channels, 32, 32)
    baseline = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    base_ms = _fwd_bwd_ms(baseline, x)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; input {tuple(x.shape)}")
    print(f"baseline: 3x3 conv {channels}->{channels}, forward+backward {base_ms:.2f} ms")
    print(f"{'attention':14s} {'params':>8s} {'fwd+bwd / conv3x3':>18s}")
    for name in ["none"] + list_attention():
        layer = create_attention(name, channels)
        params = sum(p.numel() for p in layer.parameters())
        ratio = _fwd_bwd_ms(layer, x) / base_ms
        print(f"{name:14s} {params:8d} {ratio:18.2f}")

    layer = MIAMind(channels).double()
    xd = x[:2].double()
    err = (layer(xd) - paper_formula(layer, xd)).abs().max().item()
    print(f"MIA-Mind vs the paper's equations (float64): max |diff| = {err:.2e}")
    if err > 1e-6:
        print("FAILED: the layer does not match the paper's equations")
        return 1
    return 0
