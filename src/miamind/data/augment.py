"""CIFAR-style training augmentation on whole uint8 batches, plus normalisation statistics.

Conventions (the training-engine side):

* images are ``torch.uint8`` tensors in **NCHW** (``Cifar10Arrays.tensors()`` gives them), on any
  device; augmentation keeps dtype, device and shape;
* randomness comes only from the ``torch.Generator`` passed in (a CPU generator; the random
  numbers are drawn on it and moved to the images' device), so a seeded generator gives the same
  batch every time, independent of the global RNG;
* every function works on the whole batch at once: offsets, flips and masks are index tensors,
  there is no Python loop over images.

The recipe is the standard one for CIFAR ResNets (He et al. 2016): zero-pad 4 pixels, take a
random 32x32 crop, flip horizontally with probability 1/2; optionally Cutout (DeVries & Taylor
2017). Normalisation statistics must come from the training split only (:func:`channel_stats`
takes the training array and nothing else), otherwise test data leaks into training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | torch.Tensor


def _check_batch(images: torch.Tensor, fn: str) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{fn}: expected a torch.Tensor batch (N, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{fn}: expected a batch of shape (N, C, H, W), got shape {tuple(images.shape)}")


def _default_generator(generator: torch.Generator | None) -> torch.Generator:
    # A fresh unseeded generator would silently make runs irreproducible; fall back to the global
    # default generator instead, which torch.manual_seed controls.
    return generator if generator is not None else torch.default_generator


def random_crop_flip(
    images: torch.Tensor,
    pad: int = 4,
    flip: bool = True,
    generator: torch.Generator | None = None,
    flips: torch.Tensor | None = None,
) -> torch.Tensor:
    """Zero-pad by ``pad``, crop back to (H, W) at a random offset, flip left-right with p=1/2.

    Zero padding (not reflect), as torchvision's ``RandomCrop(32, padding=4)``. Each image gets its
    own offset in ``[0, 2*pad]`` per axis and its own flip decision.

    Args:
        images: (N, C, H, W) tensor, any dtype (uint8 expected).
        pad: padding in pixels on each side; 0 disables the crop.
        flip: whether to apply random horizontal flips.
        generator: CPU ``torch.Generator`` drawing offsets and flips.
        flips: (N,) bool tensor, the flip decision of each image, for a caller that chooses them
            (alternating flips, see :func:`alternating_flips`); ``flip`` is then ignored and no
            flip is drawn from ``generator``.
    """
    _check_batch(images, "random_crop_flip")
    if pad < 0:
        raise ValueError(f"random_crop_flip: pad must be >= 0, got {pad}")
    g = _default_generator(generator)
    n, c, h, w = images.shape
    dev = images.device
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=g.device).to(dev)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=g.device).to(dev)
    if flips is not None:
        if flips.shape != (n,) or flips.dtype != torch.bool:
            raise ValueError(
                f"random_crop_flip: flips must be a ({n},) bool tensor, got {flips.dtype} {tuple(flips.shape)}"
            )
        do_flip: torch.Tensor | None = flips.to(dev)
    else:
        do_flip = (torch.rand(n, generator=g, device=g.device) < 0.5).to(dev) if flip else None

    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
    rows = oy[:, None] + torch.arange(h, device=dev)  # (N, H) rows of the padded image to keep
    cols = ox[:, None] + torch.arange(w, device=dev)  # (N, W)
    if do_flip is not None:
        cols = torch.where(do_flip[:, None], cols.flip(1), cols)
    # Two gathers with expanded (not materialised) indices: memory stays O(batch).
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, padded.shape[3]))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def alternating_flips(parity: torch.Tensor, epoch: int) -> torch.Tensor:
    """Flip decisions that alternate per image between epochs (airbench, Jordan 2024).

    ``parity`` is each image's random bit, drawn once per run: an image whose bit is set is
    flipped in even epochs, the others in odd epochs. The first epoch sees the usual random
    flips; after it every image alternates, without the repeats of independent coin tosses.
    """
    if parity.dtype != torch.bool:
        raise ValueError(f"alternating_flips: parity must be a bool tensor, got {parity.dtype}")
    return parity ^ bool(epoch % 2)


def cutout(
    images: torch.Tensor,
    size: int,
    generator: torch.Generator | None = None,
    fill: int | float | Sequence[float] = 0,
) -> torch.Tensor:
    """Cutout: set one ``size`` x ``size`` square per image to ``fill``.

    The square's centre is uniform over the image and the square is clipped at the border
    (DeVries & Taylor 2017). Applied to uint8 images, ``fill=0`` is black; to mimic cutout after
    normalisation (filling with the mean), pass the per-channel mean pixel, e.g.
    ``fill=[round(255 * m) for m in mean]``. ``size=0`` returns the batch unchanged (a copy).
    """
    _check_batch(images, "cutout")
    if size < 0:
        raise ValueError(f"cutout: size must be >= 0, got {size}")
    if size == 0:
        return images.clone()
    g = _default_generator(generator)
    n, c, h, w = images.shape
    dev = images.device
    cy = torch.randint(0, h, (n,), generator=g, device=g.device).to(dev)
    cx = torch.randint(0, w, (n,), generator=g, device=g.device).to(dev)
    y0, x0 = cy - size // 2, cx - size // 2
    ys, xs = torch.arange(h, device=dev), torch.arange(w, device=dev)
    in_y = (ys[None] >= y0[:, None]) & (ys[None] < y0[:, None] + size)  # (N, H)
    in_x = (xs[None] >= x0[:, None]) & (xs[None] < x0[:, None] + size)  # (N, W)
    mask = (in_y[:, :, None] & in_x[:, None, :])[:, None]  # (N, 1, H, W)
    fill_t = torch.as_tensor(fill, dtype=images.dtype, device=dev)
    if fill_t.ndim == 1:
        if fill_t.numel() != c:
            raise ValueError(f"cutout: fill has {fill_t.numel()} values for {c} channels")
        fill_t = fill_t.view(1, c, 1, 1)
    return torch.where(mask, fill_t, images)


def normalize(
    images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float ``(x / 255 - mean) / std``, per channel.

    ``mean`` and ``std`` are in [0, 1] units, as :func:`channel_stats` returns them.
    """
    _check_batch(images, "normalize")
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize: expected uint8 images, got {images.dtype}")
    c = images.shape[1]
    m = torch.as_tensor(mean, dtype=dtype, device=images.device).flatten()
    s = torch.as_tensor(std, dtype=dtype, device=images.device).flatten()
    if m.numel() != c or s.numel() != c:
        raise ValueError(f"normalize: {c} channels but mean has {m.numel()} and std {s.numel()} values")
    if bool((s <= 0).any()):
        raise ValueError(f"normalize: std must be > 0, got {s.tolist()}")
    return (images.to(dtype) / 255.0 - m.view(1, c, 1, 1)) / s.view(1, c, 1, 1)


def channel_stats(
    train_images: ArrayLike,
    layout: str = "NCHW",
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of the TRAINING images, in [0, 1] units.

    Pass the training split only: statistics fitted on test images leak test data into the
    model. ``train_images`` is a uint8 array or tensor in ``layout`` "NCHW" (the augmentation
    side) or "NHWC" (``Cifar10Arrays.train_images`` as loaded). Computed exactly from per-channel
    histograms of the 256 pixel values (no float accumulation error, no float copy of the data).
    """
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"channel_stats: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    arr = (
        train_images.detach().cpu().numpy()
        if isinstance(train_images, torch.Tensor)
        else np.asarray(train_images)
    )
    if arr.dtype != np.uint8:
        raise TypeError(f"channel_stats: expected uint8 images, got {arr.dtype}")
    if arr.ndim != 4 or arr.shape[0] == 0:
        raise ValueError(f"channel_stats: expected a non-empty 4-D {layout} batch, got shape {arr.shape}")
    cdim = 1 if layout == "NCHW" else 3
    other = 3 if layout == "NCHW" else 1
    if arr.shape[cdim] > 4 and arr.shape[other] in (1, 3, 4):
        raise ValueError(
            f"channel_stats: shape {arr.shape} looks like {'NHWC' if layout == 'NCHW' else 'NCHW'}; "
            f"pass layout={'NHWC' if layout == 'NCHW' else 'NCHW'!r}"
        )
    values = np.arange(256, dtype=np.float64)
    means, stds = [], []
    for ch in range(arr.shape[cdim]):
        hist = np.bincount(np.take(arr, ch, axis=cdim).ravel(), minlength=256).astype(np.float64)
        total = hist.sum()
        mean = (hist * values).sum() / total
        var = (hist * (values - mean) ** 2).sum() / total
        means.append(float(mean / 255.0))
        stds.append(float(np.sqrt(var) / 255.0))
    return tuple(means), tuple(stds)
