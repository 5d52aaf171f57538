"""Deterministic, resumable, DDP-aware batch sampling: a batch is a pure function of its coordinates.

A training batch depends only on ``(seed, epoch, batch index, rank)``:

* :class:`EpochBatchSampler` permutes the ``n`` sample indices with a ``torch.Generator`` seeded
  from ``(seed, epoch)`` (same on every rank), shards the permutation by rank, cuts the rank's
  share into batches and yields one :class:`BatchKey` per batch: the indices plus a seed for the
  batch's own augmentation generator, mixed from ``(seed, epoch, batch, rank)``.
* a batch-building dataset (:class:`BatchDataset`) turns a key into a whole batch at once
  (vectorised gather + augmentation drawn from ``key.generator()``), so nothing touches the
  global RNG and nothing depends on what ran before.

Hence resuming at epoch ``e`` (``set_epoch(e)``, which Lightning calls on ``dataloader.sampler``
at the start of every epoch) reproduces epoch ``e`` exactly, with any number of epochs, runs or
other RNG consumers in between.

Sharding (``rank`` / ``num_replicas``; default: ``torch.distributed`` when it is initialised at
iteration time, else a single process):

* ``pad_shards=True`` (training): the permutation is wrapped around to a multiple of the world
  size and rank ``r`` takes every ``world``-th index from ``r`` (as ``DistributedSampler``), so
  every rank has the same number of samples and batches -- required, since DDP all-reduces the
  gradients of every step.
* ``pad_shards=False`` (evaluation): rank ``r`` takes the ``r``-th of ``world`` contiguous blocks
  (``np.array_split``): disjoint, nothing counted twice, shard sizes differ by at most one and
  ranks may run a different number of batches. That is fine for torchmetrics (state is synced
  once, in ``compute``) and for ``self.log(..., on_step=False, on_epoch=True, sync_dist=True)``;
  do not use per-step collectives in evaluation steps.

Build loaders with :func:`batch_loader`; with Lightning set ``Trainer(use_distributed_sampler=False)``
so it does not swap the sampler for a ``DistributedSampler``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.splits import stratified_indices  # re-exported: the samplers' users pick subsets with it

# Domain separation: the permutation stream and the augmentation stream never share a seed.
_PERMUTATION, _AUGMENTATION = 0, 1


def mix_seed(*values: int) -> int:
    """A 63-bit seed mixed from non-negative ints (``numpy.random.SeedSequence`` hashing).

    Nearby inputs (epoch 3 vs 4, batch 0 vs 1) give unrelated seeds, unlike ``seed + epoch``
    where run ``seed=1, epoch=0`` would replay run ``seed=0, epoch=1``.
    """
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"seed components must be non-negative ints, got {values}")
    lo, hi = np.random.SeedSequence([int(v) for v in values]).generate_state(2, dtype=np.uint32)
    return (int(hi) << 32 | int(lo)) & ((1 << 63) - 1)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (independent of the global RNG)."""
    return torch.Generator().manual_seed(seed)


class BatchKey(NamedTuple):
    """What identifies one batch: its sample ``indices`` (int64) and where it sits in the run.

    ``seed`` is ``mix_seed(seed, epoch, AUGMENTATION, batch, rank)``: draw the batch's random
    augmentation from ``generator()`` and nothing else.
    """

    indices: torch.Tensor
    epoch: int
    batch: int
    rank: int
    seed: int

    def generator(self) -> torch.Generator:
        return seeded_generator(self.seed)


def _dist_rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochBatchSampler(Sampler[BatchKey]):
    """Yields one :class:`BatchKey` per batch of this rank's share of ``range(n)``.

    Args:
        n: number of samples (dataset size; for on-the-fly crops, samples per epoch).
        batch_size: samples per batch (the last batch may be smaller unless ``drop_last``).
        shuffle: permute the samples, differently every epoch (from ``(seed, epoch)``).
        seed: run seed (non-negative int).
        drop_last: drop this rank's last batch when it is incomplete.
        rank, num_replicas: this process and the world size; both ``None`` (default) reads
            ``torch.distributed`` at iteration time (single process when not initialised).
        pad_shards: equal shards by wrapping around (training); ``False``: disjoint contiguous
            blocks of possibly unequal size (evaluation). See the module docstring.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        rank: int | None = None,
        num_replicas: int | None = None,
        pad_shards: bool = True,
    ):
        for name, v, low in (("n", n, 0), ("batch_size", batch_size, 1), ("seed", seed, 0)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"EpochBatchSampler: {name} must be an int >= {low}, got {v!r}")
        if (rank is None) != (num_replicas is None):
            raise ValueError("EpochBatchSampler: give both rank and num_replicas, or neither")
        if num_replicas is not None and not (num_replicas >= 1 and 0 <= rank < num_replicas):
            raise ValueError(
                f"EpochBatchSampler: need 0 <= rank < num_replicas, got rank={rank}, "
                f"num_replicas={num_replicas}"
            )
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.shuffle, self.drop_last, self.pad_shards = bool(shuffle), bool(drop_last), bool(pad_shards)
        self._rank, self._world = rank, num_replicas
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields (Lightning calls this)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def rank_world(self) -> tuple[int, int]:
        return (self._rank, self._world) if self._world is not None else _dist_rank_world()

    def _order(self) -> torch.Tensor:
        if self.shuffle:
            return torch.randperm(
                self.n, generator=seeded_generator(mix_seed(self.seed, self.epoch, _PERMUTATION))
            )
        return torch.arange(self.n)

    def shard(self) -> torch.Tensor:
        """This rank's sample indices for the current epoch, in batch order."""
        rank, world = self.rank_world()
        order = self._order()
        if world == 1 or self.n == 0:
            return order
        if self.pad_shards:
            total = math.ceil(self.n / world) * world
            order = order[torch.arange(total) % self.n]  # wrap around: every rank gets as many
            return order[rank::world]
        # np.array_split's blocks: the first n % world ranks hold one sample more.
        base, extra = divmod(self.n, world)
        start = rank * base + min(rank, extra)
        return order[start : start + self._shard_size()]

    def _shard_size(self) -> int:
        rank, world = self.rank_world()
        if world == 1 or self.n == 0:
            return self.n
        if self.pad_shards:
            return math.ceil(self.n / world)
        return self.n // world + (1 if rank < self.n % world else 0)

    def __len__(self) -> int:
        size = self._shard_size()
        return size // self.batch_size if self.drop_last else math.ceil(size / self.batch_size)

    def __iter__(self) -> Iterator[BatchKey]:
        rank, _ = self.rank_world()
        share = self.shard()
        for b in range(len(self)):
            idx = share[b * self.batch_size : (b + 1) * self.batch_size]
            yield BatchKey(idx, self.epoch, b, rank, mix_seed(self.seed, self.epoch, _AUGMENTATION, b, rank))


class BatchDataset(Dataset):
    """A map-style dataset whose items are whole batches: ``dataset[key] = build(key)``.

    ``build(key: BatchKey) -> (x, y)`` gathers ``key.indices`` and applies any augmentation
    with ``key.generator()``; it must not use the global RNG.
    """

    def __init__(self, n: int, build: Callable[[BatchKey], tuple[torch.Tensor, torch.Tensor]]):
        self.n, self.build = int(n), build

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: BatchKey) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(key, BatchKey):
            raise TypeError(
                f"BatchDataset is indexed by BatchKey (from EpochBatchSampler), got {type(key).__name__}"
            )
        return self.build(key)


def batch_loader(dataset: BatchDataset, sampler: EpochBatchSampler) -> DataLoader:
    """``DataLoader`` yielding the dataset's whole batches in the sampler's order.

    ``batch_size=None`` turns off the loader's own batching (each item already is a batch);
    ``num_workers=0`` because the batch is one vectorised gather, cheaper than worker IPC.
    """
    return DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=0)


__all__ = [
    "BatchDataset",
    "BatchKey",
    "EpochBatchSampler",
    "batch_loader",
    "mix_seed",
    "seeded_generator",
    "stratified_indices",
]
