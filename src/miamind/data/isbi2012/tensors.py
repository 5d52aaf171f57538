"""Slices as tensors: [0, 1] float images, random training crops, padding for whole-slice evaluation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1]. No dataset statistics are used."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W), got {images.dtype} {images.shape}")
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


def random_crops(
    images: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    crop: int = 256,
    n: int = 8,
    generator: torch.Generator | None = None,
    *,
    return_params: bool = False,
):
    """``n`` random square crops with random flips and 90-degree rotations, for training.

    ``images``: (N, H, W) or (N, 1, H, W); ``targets``: (N, H, W). Crops are drawn only from the
    slices passed in (pass a fold's training slices, never validation ones). Each sample gets a
    uniformly random slice, position and one of the 8 symmetries of the square (identity, 3
    rotations, 4 reflections), applied through **one shared index grid** to image and target,
    so they stay aligned. Vectorised: one gather per tensor, no Python loop over samples.

    Returns ``(images (n, 1, crop, crop), targets (n, crop, crop))`` with the input dtypes, and
    with ``return_params=True`` also a dict of per-sample ``slice``, ``top``, ``left``,
    ``transpose``, ``flip_v``, ``flip_h`` (applied in that order to the crop).
    """
    images = torch.as_tensor(images)
    targets = torch.as_tensor(targets)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, 1, H, W), got shape {tuple(images.shape)}")
    if targets.shape != images.shape:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} must match images {tuple(images.shape)} (N, H, W)"
        )
    N, H, W = images.shape
    if N == 0:
        raise ValueError("no slices to crop from")
    if not 1 <= crop <= min(H, W):
        raise ValueError(f"crop must be in 1..{min(H, W)} for slices of {H}x{W}, got {crop}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    dev = images.device
    g = generator

    def draw(high: int) -> torch.Tensor:
        return torch.randint(0, high, (n,), generator=g).to(dev)

    slice_idx, top, left = draw(N), draw(H - crop + 1), draw(W - crop + 1)
    transpose, flip_v, flip_h = (draw(2).bool() for _ in range(3))

    # Output pixel (i, j) reads crop pixel (a, b); transpose and the two flips generate all 8
    # symmetries of the square, so one index grid serves image and target alike.
    r = torch.arange(crop, device=dev)
    i = r.view(1, crop, 1).expand(n, crop, crop)
    j = r.view(1, 1, crop).expand(n, crop, crop)
    # Flipping the output coordinates, then swapping them, reads the crop as
    # flip_h(flip_v(transpose(crop))): the order the docstring promises.
    i = torch.where(flip_v.view(n, 1, 1), crop - 1 - i, i)
    j = torch.where(flip_h.view(n, 1, 1), crop - 1 - j, j)
    t = transpose.view(n, 1, 1)
    a, b = torch.where(t, j, i), torch.where(t, i, j)
    rows = top.view(n, 1, 1) + a
    cols = left.view(n, 1, 1) + b
    s = slice_idx.view(n, 1, 1)
    out_images = images[s, rows, cols].unsqueeze(1)
    out_targets = targets[s, rows, cols]
    if return_params:
        params = {
            "slice": slice_idx,
            "top": top,
            "left": left,
            "transpose": transpose,
            "flip_v": flip_v,
            "flip_h": flip_h,
        }
        return out_images, out_targets, params
    return out_images, out_targets


def pad_to_multiple(
    x: torch.Tensor, multiple: int = 16, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the last two dims of ``x`` (..., H, W) at the bottom/right to multiples of ``multiple``.

    For evaluating a U-Net on whole slices of any size; returns ``(padded, (H, W))`` for
    ``unpad``. 512 x 512 ISBI slices are already multiples of 16 and come back unchanged.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dims (..., H, W), got shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    if ph == 0 and pw == 0:
        return x, (H, W)
    if mode == "reflect" and (ph >= H or pw >= W):
        raise ValueError(f"reflect padding by ({ph}, {pw}) needs H, W larger than that, got {H}x{W}")
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, H, W)
    padded = F.pad(flat if flat.is_floating_point() else flat.float(), (0, pw, 0, ph), mode=mode)
    return padded.to(x.dtype).reshape(*lead, H + ph, W + pw), (H, W)


def unpad(y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dims of ``y`` back to ``size = (H, W)`` from ``pad_to_multiple``."""
    H, W = size
    if y.shape[-2] < H or y.shape[-1] < W:
        raise ValueError(f"cannot unpad shape {tuple(y.shape)} to {H}x{W}")
    return y[..., :H, :W]
