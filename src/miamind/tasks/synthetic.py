"""Tiny learnable stand-ins for the three datasets, as the same objects the loaders return.

For tests, demos and smoke runs without the real data: pass them as ``arrays=`` to
``build_datamodule``. Each is a pure function of its arguments (own ``numpy`` generator, never
the global RNG) and is built so that a small network learns it in a few optimiser steps:

* :func:`synthetic_cifar10` -> ``Cifar10Arrays`` (``layout="synthetic"``): 32x32 RGB, 10
  classes; the class sets the mean colour (10 hues) and the stripe orientation and period; a
  random stripe phase and pixel noise vary each image. Colour survives crop/flip/cutout, so the
  task stays learnable under the training augmentation.
* :func:`synthetic_isbi2012` -> ``IsbiArrays``: Voronoi cells (bright, textured interior) with
  dark membranes 1-3 px wide on the cell borders, plus noise; labels 0 = membrane, 255 = cell as
  in the real label files.
* :func:`synthetic_flow_table` -> ``FlowTable`` (raw, unscaled, optionally with non-finite
  cells) and :func:`synthetic_flows` -> ``FlowSplits`` (via ``flows.make_splits``): Gaussian
  clusters on features of very different scales; BENIGN, DDoS and PortScan each shift a few
  informative features, the others are noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.cicids2017 import FEATURE_NAMES as CIC_FEATURE_NAMES
from ..data.cifar10 import CLASS_NAMES as CIFAR_CLASS_NAMES
from ..data.cifar10 import Cifar10Arrays
from ..data.flows import BENIGN, FlowSplits, FlowTable, make_splits
from ..data.isbi2012 import CELL_VALUE, ISBI_META, MEMBRANE_VALUE, IsbiArrays

SYNTHETIC_FLOW_LABELS = (BENIGN, "DDoS", "PortScan")
_FLOW_FRACTIONS = (0.6, 0.25, 0.15)


def _check_int(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _cifar_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(labels)
    hues = np.arange(10) / 10.0
    # Saturated hue wheel (HSV with s=0.7, v=0.8), as uint8-range RGB means per class.
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hues[:, None] * 6.0) % 6.0
    wheel = 0.8 - 0.8 * 0.7 * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    colours = 30.0 + 195.0 * wheel  # (10, 3)
    period = np.array([4.0, 6.0, 8.0, 5.0, 7.0])[labels % 5]  # (n,)
    horizontal = (labels // 5) % 2 == 0
    phase = rng.uniform(0.0, 2 * np.pi, n)
    coord = np.arange(32, dtype=np.float64)
    wave = np.sin(2 * np.pi * coord[None, :] / period[:, None] + phase[:, None])  # (n, 32)
    stripes = np.where(horizontal[:, None, None], wave[:, :, None], wave[:, None, :])  # (n, 32, 32)
    img = (
        colours[labels][:, None, None, :] + 35.0 * stripes[..., None] + rng.normal(0.0, 12.0, (n, 32, 32, 3))
    )
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def synthetic_cifar10(n_train: int = 500, n_test: int = 100, seed: int = 0) -> Cifar10Arrays:
    """CIFAR-10-shaped data (uint8 NHWC 32x32 RGB, labels 0..9, classes balanced to within one)."""
    _check_int("n_train", n_train, 1)
    _check_int("n_test", n_test, 0)
    rng = np.random.default_rng(seed)
    labels = {
        s: rng.permutation(np.arange(n) % 10).astype(np.int64)
        for s, n in (("train", n_train), ("test", n_test))
    }
    return Cifar10Arrays(
        train_images=_cifar_images(labels["train"], rng),
        train_labels=labels["train"],
        test_images=_cifar_images(labels["test"], rng),
        test_labels=labels["test"],
        class_names=CIFAR_CLASS_NAMES,
        layout="synthetic",
        source=Path(f"synthetic_cifar10(n_train={n_train}, n_test={n_test}, seed={seed})"),
        source_sha256="",
        md5_verified=False,
        lossy=False,
    )


def _voronoi_slice(size: int, rng: np.random.Generator):
    # Jittered grid of cell centres (about 20 px apart): cells of similar size, like EM neurites.
    side = max(2, int(round(size / 20.0)))
    step = size / side
    gy, gx = np.mgrid[0:side, 0:side]
    centres = (np.stack([gy.ravel(), gx.ravel()], 1) + 0.5) * step + rng.uniform(
        -0.35, 0.35, (side * side, 2)
    ) * step
    n_cells = len(centres)
    yy, xx = np.mgrid[0:size, 0:size]
    grid = np.stack([yy.ravel(), xx.ravel()], 1).astype(np.float64)
    d = np.sqrt(((grid[:, None, :] - centres[None, :, :]) ** 2).sum(-1))  # (size^2, cells)
    two = np.partition(d, 1, axis=1)[:, :2]
    # d2 - d1 grows by up to 2 per pixel away from a cell border: a threshold of 1.5..4 gives
    # membranes about 1..3 px wide.
    membrane = (two[:, 1] - two[:, 0]) < rng.uniform(1.5, 4.0)
    cell_id = d.argmin(1)
    brightness = rng.uniform(150.0, 215.0, n_cells)[cell_id]
    texture = 10.0 * np.sin(grid[:, 0] / rng.uniform(2.0, 5.0)) * np.cos(grid[:, 1] / rng.uniform(2.0, 5.0))
    img = np.where(membrane, rng.uniform(40.0, 70.0), brightness + texture) + rng.normal(
        0.0, 14.0, size * size
    )
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8).reshape(size, size)
    labels = np.where(membrane, MEMBRANE_VALUE, CELL_VALUE).astype(np.uint8).reshape(size, size)
    return image, labels


def synthetic_isbi2012(n_slices: int = 10, size: int = 64, seed: int = 0, n_test: int = 0) -> IsbiArrays:
    """ISBI-2012-shaped slices: uint8 (n_slices, size, size) images and 0/255 labels, plus
    ``n_test`` unlabelled slices. ``meta["source"] == "synthetic"``."""
    _check_int("n_slices", n_slices, 1)
    _check_int("size", size, 8)
    _check_int("n_test", n_test, 0)
    rng = np.random.default_rng(seed)
    pairs = [_voronoi_slice(size, rng) for _ in range(n_slices + n_test)]
    images = np.stack([p[0] for p in pairs])
    labels = np.stack([p[1] for p in pairs[:n_slices]])
    meta = dict(ISBI_META)
    meta.update(
        source="synthetic",
        root="",
        fingerprint=f"synthetic-{n_slices}-{size}-{seed}-{n_test}",
        n_train=n_slices,
        n_test=n_test,
        input_shape=[1, size, size],
    )
    return IsbiArrays(images[:n_slices], labels, images[n_slices:], meta)


def _flow_feature_names(n_features: int) -> tuple:
    """The first ``n_features`` CIC-IDS2017 names (so a table can be written as CIC CSV columns)."""
    names = list(CIC_FEATURE_NAMES[:n_features])
    names += [f"feature_{i}" for i in range(len(names), n_features)]
    return tuple(names)


def synthetic_flow_table(
    n_rows: int = 600, n_features: int = 16, seed: int = 0, *, nonfinite_rows: int = 0
) -> FlowTable:
    """Raw (unscaled) flow features: labels BENIGN 60 %, DDoS 25 %, PortScan 15 %.

    Each attack shifts its own ``max(1, min(4, n_features // 4))`` features by 3 standard
    deviations; every column then gets a different scale (1 .. 1000) and offset, so feature
    scaling matters. ``nonfinite_rows`` rows get one Infinity, -Infinity or NaN cell each
    (for the ``nonfinite`` policies).
    """
    _check_int("n_rows", n_rows, 9)
    _check_int("n_features", n_features, 2)
    _check_int("nonfinite_rows", nonfinite_rows, 0)
    if nonfinite_rows > n_rows:
        raise ValueError(f"nonfinite_rows={nonfinite_rows} exceeds n_rows={n_rows}")
    rng = np.random.default_rng(seed)
    counts = np.floor(np.array(_FLOW_FRACTIONS) * n_rows).astype(int)
    counts[0] += n_rows - counts.sum()
    codes = rng.permutation(np.repeat(np.arange(3), counts)).astype(np.int64)
    z = rng.normal(0.0, 1.0, (n_rows, n_features))
    k = max(1, min(4, n_features // 4))
    for code, first in ((1, 0), (2, k)):
        cols = np.arange(first, first + k) % n_features
        z[np.ix_(codes == code, cols)] += 3.0
    scale = 10.0 ** rng.uniform(0.0, 3.0, n_features)
    offset = rng.uniform(0.0, 5.0, n_features) * scale
    x = (offset + scale * z).astype(np.float32)
    if nonfinite_rows:
        rows = rng.choice(n_rows, nonfinite_rows, replace=False)
        cols = rng.integers(0, n_features, nonfinite_rows)
        x[rows, cols] = np.array([np.inf, -np.inf, np.nan], np.float32)[np.arange(nonfinite_rows) % 3]
    per_label = np.bincount(codes, minlength=3).tolist()
    report = {
        "synthetic": True,
        "seed": seed,
        "rows_read": n_rows,
        "label_counts_read": dict(zip(SYNTHETIC_FLOW_LABELS, per_label, strict=True)),
        "nonfinite_rows_made": nonfinite_rows,
        "n_features": n_features,
    }
    return FlowTable(x, codes, SYNTHETIC_FLOW_LABELS, _flow_feature_names(n_features), report)


def synthetic_flows(
    n_rows: int = 600,
    n_features: int = 16,
    seed: int = 0,
    *,
    label_mode: str = "binary",
    scale: str | None = "standard",
) -> FlowSplits:
    """``make_splits`` of :func:`synthetic_flow_table` (70/15/15, stratified, fitted on train)."""
    table = synthetic_flow_table(n_rows, n_features, seed)
    return make_splits(table, label_mode=label_mode, seed=seed, scale=scale, dataset="cicids2017")


__all__ = [
    "SYNTHETIC_FLOW_LABELS",
    "synthetic_cifar10",
    "synthetic_flow_table",
    "synthetic_flows",
    "synthetic_isbi2012",
]
