"""Decoded ISBI 2012 slices and one fold of them as training tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..info import DatasetInfo
from .encoding import CLASS_NAMES, labels_to_target
from .folds import DEFAULT_FOLD, N_FOLDS, kfold_slices
from .release import NAME
from .tensors import images_to_tensor


@dataclass(frozen=True, eq=False)
class IsbiFold:
    """One train/validation split over the labelled slices, as tensors ready for training.

    Images are float32 in [0, 1] with shape (n, 1, H, W); targets are int64 class indices
    (0 = membrane, 1 = cell) with shape (n, H, W). Validation slices are whole slices, never
    seen in training (``train_idx`` and ``val_idx`` are disjoint).
    """

    fold: int
    n_folds: int
    train_idx: np.ndarray
    val_idx: np.ndarray
    train_images: torch.Tensor
    train_targets: torch.Tensor
    val_images: torch.Tensor
    val_targets: torch.Tensor


@dataclass(frozen=True, eq=False)
class IsbiArrays:
    """Decoded ISBI 2012 slices.

    ``train_images``: uint8 (N, H, W); ``train_labels``: uint8 (N, H, W) with 0 = membrane,
    255 = cell (label-file values); ``train_targets``: the same as class indices 0 = membrane,
    1 = cell; ``test_images``: uint8 (M, H, W), unlabelled (M may be 0); ``meta``: ``ISBI_META``
    plus per-load fields (source, fingerprint, counts, input_shape).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    meta: dict[str, object]

    @property
    def train_targets(self) -> np.ndarray:
        return labels_to_target(self.train_labels)

    @property
    def info(self) -> DatasetInfo:
        """Targets are class indices into ``CLASS_NAMES``: 0 = membrane, 1 = cell."""
        h, w = self.train_images.shape[1:]
        return DatasetInfo(NAME, "segmentation", CLASS_NAMES, (1, h, w))

    def fold(self, fold: int = DEFAULT_FOLD, n_folds: int = N_FOLDS, gap: int = 0) -> IsbiFold:
        """Tensors for one fold of ``kfold_slices`` (see there for ``gap``)."""
        train_idx, val_idx = kfold_slices(len(self.train_images), n_folds, fold, gap=gap)
        targets = self.train_targets
        return IsbiFold(
            fold=fold,
            n_folds=n_folds,
            train_idx=train_idx,
            val_idx=val_idx,
            train_images=images_to_tensor(self.train_images[train_idx]),
            train_targets=torch.from_numpy(targets[train_idx].astype(np.int64)),
            val_images=images_to_tensor(self.train_images[val_idx]),
            val_targets=torch.from_numpy(targets[val_idx].astype(np.int64)),
        )
