"""Lightning data modules for the three tasks: one ``data_cfg`` dict in, (x, y) batches out.

``build_datamodule(task, data_cfg, seed, arrays=None)`` returns a ``LightningDataModule`` with

* ``setup(stage)`` -- loads (or takes ``arrays``), splits and fits preprocessing once;
  ``info``, ``class_weights`` etc. call it themselves, so the model can be built before fitting;
* ``train_dataloader() / val_dataloader() / test_dataloader()`` -> ``(x float32, y int64)``;
* ``info`` (:class:`~miamind.data.info.DatasetInfo`), ``class_weights`` (float tensor or None);
* ``preprocess_state() -> dict[str, np.ndarray]`` -- what was fitted on the TRAINING data and
  :func:`miamind.tasks.inputs.load_inputs` needs to turn raw files into model inputs;
* ``example_batch(n, split="val") -> (x, y)`` -- the first ``n`` held-out samples, prepared as
  in evaluation (for plots).

Batches come from :mod:`miamind.tasks.sampling` (use ``Trainer(use_distributed_sampler=False)``).
Training loaders shuffle, augment and drop an incomplete last batch (a batch of one breaks
BatchNorm); evaluation loaders do none of that and shard without padding.

Tasks and ``data_cfg``: a run config's ``data`` section, or a mapping validated by the task's data
model (``Task.data_class()``, :mod:`miamind.engine.schema`, which lists the keys; only keys with a
default there are optional; an unknown or missing key or a bad value is a ``ValueError`` naming it):

* ``cifar10``: ``val_size`` images are held out from the official TRAIN split (stratified by
  class, drawn with ``seed``; 0 = no validation set); ``augment``: zero-pad + random crop,
  horizontal flip, Cutout square size (0/False disable); ``limit_train``: None or a stratified
  subset size; ``limit_eval``: the same for val and for test (the image-folder copy of CIFAR-10
  stores test images class by class, so use this rather than Lightning's ``limit_test_batches``,
  which would see only airplanes). Test = the official test split. Normalisation: per-channel
  mean/std of the training images actually used. ``preprocess_state = {"mean": (3,), "std":
  (3,)}`` (float64, [0, 1] pixel units).
* ``isbi2012``: training: ``crops_per_epoch`` random ``crop`` x ``crop`` crops (random slice,
  position and one of the 8 symmetries of the square) from the fold's training slices. Validation
  AND test: the held-out fold's whole slices (the official test slices have no labels). Each
  evaluation batch is ``(x, y)`` with ``x`` (B, 1, Hp, Wp) reflect-padded at the bottom/right to
  multiples of ``pad_multiple`` and ``y`` (B, H, W) NOT padded: crop the model output with
  :func:`crop_to_target` (top-left aligned) before the loss and metrics. Images are scaled to
  [0, 1], then standardised with the mean/std of the fold's training slices.
  ``preprocess_state = {"mean": (1,), "std": (1,)}`` ([0, 1] units).
* ``cicids2017``: ``class_weights``: ``FlowSplits.class_weights`` as a tensor, else None;
  ``limit_eval`` as for cifar10. Split and fitting (``drop_duplicates``, ``nonfinite``,
  ``scale``...): ``flows.make_splits`` with ``seed``. x is (N, 1, F). ``preprocess_state``:
  ``scaler_offset``, ``scaler_scale`` (F,) float64; ``clip_posinf``, ``clip_neginf``, ``clip_nan``
  (F,) float32 only with ``nonfinite="clip"``; ``feature_names`` (F,) numpy str array (the CSV
  columns to read, in order). Use ``inputs.preprocess_state_to_json`` to store it in JSON metadata.

``arrays`` injects data instead of loading it: a ``Cifar10Arrays``, an ``IsbiArrays``, or a
``FlowSplits`` (used as is: ``label_mode``/``split``/``nonfinite``/``scale`` are then not
applied) or a raw ``FlowTable`` (split and fitted here with those keys) -- e.g. from
:mod:`miamind.tasks.synthetic`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Integral
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from pydantic import ValidationError

from ..data.augment import alternating_flips, channel_stats, cutout, normalize, random_crop_flip
from ..data.flows import FlowSplits, FlowTable, make_splits
from ..data.info import DatasetInfo
from ..data.isbi2012 import pad_to_multiple, random_crops, unpad
from ..engine.schema import DataConfig, config_error_message
from ..errors import InputError
from .registry import TASKS as TASK_REGISTRY
from .registry import get_task
from .sampling import (
    BatchDataset,
    BatchKey,
    EpochBatchSampler,
    batch_loader,
    mix_seed,
    seeded_generator,
    stratified_indices,
)

# Seed streams for the data splits (distinct from the sampler's permutation/augmentation streams).
_VAL_HOLDOUT, _TRAIN_SUBSET, _EVAL_SUBSET, _FLIP_PARITY, _WHITENING_SAMPLE = 101, 102, 103, 104, 105

Batch = tuple[torch.Tensor, torch.Tensor]


def crop_to_target(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Crop a prediction on a padded evaluation batch back to the target's (H, W).

    Padding is added at the bottom and right only (``isbi2012.pad_to_multiple``), so the
    original pixels are the top-left ``H x W`` block: ``logits[..., :H, :W]``.
    """
    return unpad(logits, tuple(target.shape[-2:]))


def validate_data_cfg(task: str, data_cfg: Mapping[str, Any] | DataConfig) -> DataConfig:
    """``data_cfg`` as the task's data model (``Task.data_class()``, :mod:`miamind.engine.schema`):
    a model is taken as it is (a run config's ``data``), a mapping is validated; an unknown or
    missing key or a bad value is an ``InputError`` naming it."""
    if task not in TASK_REGISTRY:
        raise InputError(f"unknown task {task!r}; valid: {', '.join(TASK_REGISTRY)}")
    if isinstance(data_cfg, DataConfig):
        return data_cfg
    if not isinstance(data_cfg, Mapping):
        raise InputError(f"data_cfg must be a mapping, got {type(data_cfg).__name__}")
    model = TASK_REGISTRY[task].data_class()
    try:
        return model.model_validate(dict(data_cfg))
    except ValidationError as e:
        raise InputError(config_error_message(model, e, data_style=True, task=task)) from None


def _subset(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """All rows, or a stratified seeded subset of ``limit`` rows (sorted)."""
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    return stratified_indices(labels, limit, seed)[0]


def _fitted(attr: str, doc: str) -> Any:
    """A read-only property: ``self.<attr>``, set up first (see :meth:`TaskDataModule.setup`)."""

    def get(self: TaskDataModule) -> Any:
        self._ensure()
        return getattr(self, attr)

    return property(get, doc=doc)


class TaskDataModule(pl.LightningDataModule):
    """What the three data modules share: config checks, lazy setup, the loaders."""

    task: str = ""

    def __init__(self, data_cfg: Mapping[str, Any] | DataConfig, seed: int, arrays: Any = None):
        super().__init__()
        self.cfg: Any = validate_data_cfg(self.task, data_cfg)
        if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
            raise InputError(f"seed must be an int >= 0, got {seed!r}")
        self.seed = int(seed)
        self.batch_size: int = self.cfg.batch_size
        self.eval_batch_size: int = self.cfg.eval_batch_size
        self._arrays = arrays
        self._ready = False
        self._info: DatasetInfo | None = None
        self._class_weights: torch.Tensor | None = None
        self._eval: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def setup(self, stage: str | None = None) -> None:
        """Load, split and fit once (every later call, for any stage, is a no-op)."""
        if not self._ready:
            self._setup()
            self._arrays = None  # the module keeps only what it needs
            self._ready = True

    def _setup(self) -> None:
        raise NotImplementedError

    def _ensure(self) -> None:
        if not self._ready:
            self.setup()

    info = _fitted("_info", "The dataset's :class:`~miamind.data.info.DatasetInfo`.")
    class_weights = _fitted(
        "_class_weights", "Per-class loss weights fitted on the training split, or None (unweighted)."
    )

    def preprocess_state(self) -> dict[str, np.ndarray]:
        self._ensure()
        return self._preprocess_state()

    def _preprocess_state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # ---- loaders (defaults: gather rows of ``self._train`` / ``self._eval[split]``)
    def _train_build(self, key: BatchKey) -> Batch:
        return self._train[0][key.indices], self._train[1][key.indices]

    def _train_size(self) -> int:
        return len(self._train[1])

    def _eval_build(self, split: str) -> Callable[[BatchKey], Batch]:
        x, y = self._eval[split]
        return lambda key: (x[key.indices], y[key.indices])

    def train_dataloader(self):
        self._ensure()
        n = self._train_size()
        sampler = EpochBatchSampler(n, self.batch_size, shuffle=True, seed=self.seed, drop_last=True)
        if len(sampler) == 0:
            _, world = sampler.rank_world()
            raise InputError(
                f"{self.task}: batch_size={self.batch_size} is larger than the {n} training samples"
                + (f" ({-(-n // world)} per rank on {world} ranks)" if world > 1 else "")
                + "; lower data_cfg 'batch_size'"
            )
        return batch_loader(BatchDataset(n, self._train_build), sampler)

    def _eval_loader(self, split: str):
        self._ensure()
        n = len(self._eval[split][1])
        sampler = EpochBatchSampler(
            n, self.eval_batch_size, shuffle=False, seed=self.seed, drop_last=False, pad_shards=False
        )
        return batch_loader(BatchDataset(n, self._eval_build(split)), sampler)

    def val_dataloader(self):
        """Validation batches; an empty list when there is no validation set (Lightning skips it)."""
        self._ensure()
        if len(self._eval["val"][1]) == 0:
            return []
        return self._eval_loader("val")

    def test_dataloader(self):
        return self._eval_loader("test")

    def example_positions(self, n: int, split: str = "val", spread: bool = False) -> list[int]:
        """Positions in ``split`` of the samples :meth:`example_batch` returns: the first ``n``, or
        with ``spread`` ``n`` evenly spaced over the split (first and last included), so a split
        sorted by class shows several classes. ``split="val"`` without a validation set is the test
        split (nothing is fitted on these samples; they are for plots)."""
        self._ensure()
        split = self._example_split(split)
        total = len(self._eval[split][1])
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
            raise InputError(f"n must be an int >= 1, got {n!r}")
        m = min(int(n), total)
        if not spread or m < 2:
            return list(range(m))
        return [round(i * (total - 1) / (m - 1)) for i in range(m)]

    def example_batch(self, n: int, split: str = "val", spread: bool = False) -> Batch:
        """The samples of :meth:`example_positions` (the first ``n`` of ``split``, "val" or "test",
        or ``n`` spread over it), prepared as for evaluation."""
        idx = torch.tensor(self.example_positions(n, split, spread), dtype=torch.long)
        key = BatchKey(idx, 0, 0, 0, 0)
        return self._eval_build(self._example_split(split))(key)

    def _example_split(self, split: str) -> str:
        if split not in ("val", "test"):
            raise InputError(f"split must be 'val' or 'test', got {split!r}")
        return "test" if split == "val" and len(self._eval["val"][1]) == 0 else split


class Cifar10DataModule(TaskDataModule):
    """CIFAR-10: official train minus a stratified validation hold-out; official test."""

    task = "cifar10"

    def __init__(self, data_cfg: Mapping[str, Any] | DataConfig, seed: int, arrays: Any = None):
        super().__init__(data_cfg, seed, arrays)
        cfg, aug = self.cfg, self.cfg.augment
        self.val_size: int = cfg.val_size
        self.limit_train: int | None = cfg.limit_train
        self.limit_eval: int | None = cfg.limit_eval
        self.crop_pad: int = aug.crop_pad
        self.flip: bool = aug.flip
        self.alternate_flip: bool = aug.alternate_flip
        self.cutout: int = aug.cutout
        if arrays is not None and not all(
            hasattr(arrays, a) for a in ("train_images", "test_images", "tensors")
        ):
            raise InputError(f"cifar10: arrays must be a Cifar10Arrays, got {type(arrays).__name__}")

    def _setup(self) -> None:
        arrays = self._arrays
        if arrays is None:
            from ..data.cifar10 import load_cifar10

            arrays = load_cifar10(self.cfg.data_dir)
        images, labels = arrays.tensors("train")  # uint8 NCHW, int64
        test_images, test_labels = arrays.tensors("test")
        n = len(labels)
        if self.val_size >= n:
            raise InputError(f"data_cfg 'val_size'={self.val_size} leaves no training images out of {n}")
        val_idx, train_idx = stratified_indices(
            labels.numpy(), self.val_size, mix_seed(self.seed, _VAL_HOLDOUT)
        )
        train_idx = train_idx[
            _subset(labels.numpy()[train_idx], self.limit_train, mix_seed(self.seed, _TRAIN_SUBSET))
        ]
        self._train_indices, self._val_indices = train_idx, val_idx
        self._train = (images[train_idx], labels[train_idx])
        self._eval = {"val": (images[val_idx], labels[val_idx]), "test": (test_images, test_labels)}
        eval_seed = mix_seed(self.seed, _EVAL_SUBSET)
        for split, (x, y) in self._eval.items():
            keep = torch.from_numpy(_subset(y.numpy(), self.limit_eval, eval_seed))
            self._eval[split] = (x[keep], y[keep])
        # Fitted on the training images used, never on validation or test images.
        self.mean, self.std = channel_stats(self._train[0], layout="NCHW")
        self._info = arrays.info
        # Cutout fills with the mean pixel: the same as cutting out after normalisation (value 0).
        self._fill = [int(round(255 * m)) for m in self.mean]
        parity_rng = seeded_generator(mix_seed(self.seed, _FLIP_PARITY))
        self._flip_parity = torch.rand(len(self._train[1]), generator=parity_rng) < 0.5

    train_indices = _fitted(
        "_train_indices", "Rows of the official training split used for training (sorted)."
    )
    val_indices = _fitted(
        "_val_indices", "Rows of the official training split held out for validation (sorted)."
    )

    def _preprocess_state(self) -> dict[str, np.ndarray]:
        return {"mean": np.asarray(self.mean, np.float64), "std": np.asarray(self.std, np.float64)}

    def normalized_train_sample(self, n: int) -> torch.Tensor:
        """``n`` training images (seeded, without replacement), normalised as the model sees them.

        For statistics of the training data such as the whitening initialisation of
        :func:`miamind.models.fastnet.init_whitening`; never validation or test images.
        """
        self._ensure()
        images = self._train[0]
        g = seeded_generator(mix_seed(self.seed, _WHITENING_SAMPLE))
        pick = torch.randperm(len(images), generator=g)[: min(n, len(images))]
        return normalize(images[pick], self.mean, self.std)

    def _train_build(self, key: BatchKey) -> Batch:
        x, y = self._train[0][key.indices], self._train[1][key.indices]
        g = key.generator()
        if self.crop_pad or self.flip:
            flips = (
                alternating_flips(self._flip_parity[key.indices], key.epoch) if self.alternate_flip else None
            )
            x = random_crop_flip(x, pad=self.crop_pad, flip=self.flip, generator=g, flips=flips)
        if self.cutout:
            x = cutout(x, self.cutout, generator=g, fill=self._fill)
        return normalize(x, self.mean, self.std), y

    def _eval_build(self, split: str) -> Callable[[BatchKey], Batch]:
        images, labels = self._eval[split]

        def build(key: BatchKey) -> Batch:
            return normalize(images[key.indices], self.mean, self.std), labels[key.indices]

        return build


class Isbi2012DataModule(TaskDataModule):
    """ISBI 2012: random crops of a fold's training slices; whole held-out slices for val/test."""

    task = "isbi2012"

    def __init__(self, data_cfg: Mapping[str, Any] | DataConfig, seed: int, arrays: Any = None):
        super().__init__(data_cfg, seed, arrays)
        cfg = self.cfg
        self.fold: int = cfg.fold
        self.n_folds: int = cfg.n_folds
        self.crop: int = cfg.crop
        self.crops_per_epoch: int = cfg.crops_per_epoch
        self.pad_multiple: int = cfg.pad_multiple
        if self.fold >= self.n_folds:
            raise InputError(f"data_cfg 'fold'={self.fold} must be < 'n_folds'={self.n_folds}")
        if arrays is not None and not all(
            hasattr(arrays, a) for a in ("train_images", "train_labels", "fold")
        ):
            raise InputError(f"isbi2012: arrays must be an IsbiArrays, got {type(arrays).__name__}")

    def _setup(self) -> None:
        arrays = self._arrays
        if arrays is None:
            from ..data.isbi2012 import load_isbi2012

            arrays = load_isbi2012(self.cfg.data_dir)
        h, w = arrays.train_images.shape[1:]
        if self.crop > min(h, w):
            raise InputError(f"data_cfg 'crop'={self.crop} is larger than the {h}x{w} slices")
        fold = arrays.fold(self.fold, self.n_folds)
        self._train_slices, self._val_slices = fold.train_idx, fold.val_idx
        train = fold.train_images.double()  # [0, 1]; statistics in float64, of training slices only
        self.mean, self.std = float(train.mean()), float(train.std(unbiased=False))
        if not self.std > 0:
            raise InputError("isbi2012: training slices are constant (std 0); cannot standardise")
        self._train = (self._standardise(fold.train_images), fold.train_targets)
        val_x, _ = pad_to_multiple(self._standardise(fold.val_images), self.pad_multiple, mode="reflect")
        # The official test slices are unlabelled: test = the held-out fold, like validation.
        self._eval = {"val": (val_x, fold.val_targets), "test": (val_x, fold.val_targets)}
        self._info = arrays.info

    train_slices = _fitted("_train_slices", "Indices of the labelled slices the training crops come from.")
    val_slices = _fitted("_val_slices", "Indices of the held-out slices (validation and test).")

    def _standardise(self, images: torch.Tensor) -> torch.Tensor:
        return ((images - self.mean) / self.std).float()

    def _preprocess_state(self) -> dict[str, np.ndarray]:
        return {"mean": np.array([self.mean], np.float64), "std": np.array([self.std], np.float64)}

    def _train_size(self) -> int:
        return self.crops_per_epoch

    def _train_build(self, key: BatchKey) -> Batch:
        # The sampler only says how many crops this batch has; where they come from is drawn
        # from the batch's own generator.
        return random_crops(
            self._train[0], self._train[1], crop=self.crop, n=len(key.indices), generator=key.generator()
        )


class CicIds2017DataModule(TaskDataModule):
    """CIC-IDS2017 flows (or the improved re-extraction): seeded stratified split, scaled on train."""

    task = "cicids2017"

    def __init__(self, data_cfg: Mapping[str, Any] | DataConfig, seed: int, arrays: Any = None):
        super().__init__(data_cfg, seed, arrays)
        cfg = self.cfg
        self.use_class_weights: bool = cfg.class_weights
        self.limit_eval: int | None = cfg.limit_eval
        self.scale = None if cfg.scale == "none" else cfg.scale
        self.split = tuple(float(f) for f in cfg.split)
        if arrays is not None and not isinstance(arrays, (FlowSplits, FlowTable)):
            raise InputError(
                f"cicids2017: arrays must be a FlowSplits or FlowTable, got {type(arrays).__name__}"
            )

    def _setup(self) -> None:
        cfg, arrays = self.cfg, self._arrays
        opts = dict(
            label_mode=cfg.label_mode,
            split=self.split,
            seed=self.seed,
            nonfinite=cfg.nonfinite,
            scale=self.scale,
            drop_duplicates=cfg.drop_duplicates,
        )
        if isinstance(arrays, FlowSplits):
            splits = arrays
        elif isinstance(arrays, FlowTable):
            splits = make_splits(arrays, **opts, dataset=cfg.dataset)
        elif cfg.dataset == "cicids2017":
            from ..data.cicids2017 import load_cicids2017

            splits = load_cicids2017(cfg.data_dir, **opts)
        else:
            from ..data.cicids2017_improved import load_cicids2017_improved

            splits = load_cicids2017_improved(cfg.data_dir, **opts)
        self.splits_report = splits.report
        self._split_indices = {k: np.asarray(v) for k, v in splits.indices.items()}
        shape = (-1, *splits.input_shape)

        def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            x_t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).reshape(shape)
            return x_t, torch.from_numpy(y.astype(np.int64))

        self._train = tensors(splits.x_train, splits.y_train)
        eval_seed = mix_seed(self.seed, _EVAL_SUBSET)
        self._eval = {}
        for split, x, y in (("val", splits.x_val, splits.y_val), ("test", splits.x_test, splits.y_test)):
            keep = _subset(y, self.limit_eval, eval_seed)
            self._eval[split] = tensors(x[keep], y[keep])
        self._info = splits.info
        if self.use_class_weights:
            self._class_weights = torch.as_tensor(np.asarray(splits.class_weights), dtype=torch.float32)
        state = {
            "scaler_offset": np.asarray(splits.scaler["offset"], np.float64),
            "scaler_scale": np.asarray(splits.scaler["scale"], np.float64),
            "feature_names": np.asarray(splits.feature_names, dtype=str),
        }
        if splits.clip is not None:
            state.update({f"clip_{k}": np.asarray(v, np.float32) for k, v in splits.clip.items()})
        self._state = state

    split_indices = _fitted(
        "_split_indices",
        'Rows of the parsed CSV table in each split ("train", "val", "test"), before ``limit_eval``.',
    )

    def _preprocess_state(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._state.items()}

    def split_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x (N, F) float32, y (N,) int64)`` of "train", "val" or "test": the rows, scaling and
        ``limit_eval`` subset the neural model sees (classical baselines train on the same arrays)."""
        self._ensure()
        if split == "train":
            x, y = self._train
        elif split in self._eval:
            x, y = self._eval[split]
        else:
            raise InputError(f"split must be train, val or test, got {split!r}")
        return x.reshape(len(x), -1).numpy(), y.numpy()


def build_datamodule(
    task: str, data_cfg: Mapping[str, Any] | DataConfig, seed: int, arrays: Any = None
) -> TaskDataModule:
    """The data module the task registry names for ``task``; see the module docstring."""
    return get_task(task).datamodule_class()(data_cfg, seed, arrays)


__all__ = [
    "Cifar10DataModule",
    "CicIds2017DataModule",
    "Isbi2012DataModule",
    "TaskDataModule",
    "build_datamodule",
    "crop_to_target",
    "validate_data_cfg",
]
