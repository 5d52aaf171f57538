"""Decoded CIFAR-10 arrays (uint8 NHWC images, int64 labels) and what they came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..info import DatasetInfo
from .release import CIFAR10_INFO


@dataclass(frozen=True, eq=False)
class Cifar10Arrays:
    """Decoded CIFAR-10. Images uint8 NHWC ``(N, 32, 32, 3)``; labels int64 in ``0..9``."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    layout: str  # "python" | "binary" | "image-folder"
    source: Path  # the folder or archive read
    source_sha256: str  # sha256 of the archive, or cache.fingerprint of the files in a folder
    md5_verified: bool  # every file matched its published md5 (python layout only)
    lossy: bool  # True for JPEG image folders: pixels are not the official ones
    files: tuple[tuple[str, str], ...] = field(default=())  # (name, md5) of the batch files
    info: DatasetInfo = CIFAR10_INFO

    def tensors(self, split: str = "train"):
        """``(images, labels)`` as torch tensors: uint8 NCHW (contiguous) and int64."""
        import torch

        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        images = getattr(self, f"{split}_images")
        labels = getattr(self, f"{split}_labels")
        return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean/std in [0, 1] units, from the TRAINING images only."""
        from ..augment import channel_stats

        return channel_stats(self.train_images, layout="NHWC")

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class, per split."""
        splits = {"train": self.train_labels, "test": self.test_labels}
        return {split: class_counts(labels, self.class_names) for split, labels in splits.items()}


def class_counts(labels: np.ndarray, class_names: Sequence[str]) -> dict[str, int]:
    """Images per class name (classes without images included, as 0)."""
    counts = np.bincount(labels, minlength=len(class_names))
    return {name: int(n) for name, n in zip(class_names, counts, strict=True)}
