"""EpochBatchSampler: determinism, resume, DDP sharding; stratified_indices; the batch loader."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from miamind.tasks import sampling
from miamind.tasks.sampling import (
    BatchDataset,
    BatchKey,
    EpochBatchSampler,
    batch_loader,
    mix_seed,
    stratified_indices,
)


def keys(sampler: EpochBatchSampler, epoch: int):
    sampler.set_epoch(epoch)
    return list(sampler)


def flat(ks) -> list:
    return torch.cat([k.indices for k in ks]).tolist() if ks else []


def same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x.indices, y.indices)
        and (x.epoch, x.batch, x.rank, x.seed) == (y.epoch, y.batch, y.rank, y.seed)
        for x, y in zip(a, b, strict=True)
    )


# ------------------------------------------------------------------------------ determinism


def test_same_seed_and_epoch_give_identical_batches_whatever_the_global_rng():
    a = EpochBatchSampler(50, 8, shuffle=True, seed=3, drop_last=False)
    b = EpochBatchSampler(50, 8, shuffle=True, seed=3, drop_last=False)
    torch.manual_seed(0)
    ka = keys(a, 2)
    torch.manual_seed(12345)
    np.random.seed(7)
    state = torch.get_rng_state()
    kb = keys(b, 2)
    assert same(ka, kb)
    assert torch.equal(torch.get_rng_state(), state), "the sampler must not draw from the global RNG"
    assert sorted(flat(ka)) == list(range(50))  # a permutation: every sample once
    assert flat(ka) != list(range(50))


def test_other_epoch_or_seed_gives_another_order_and_other_augmentation_seeds():
    s = EpochBatchSampler(50, 8, shuffle=True, seed=3, drop_last=False)
    e0, e1 = keys(s, 0), keys(s, 1)
    assert flat(e0) != flat(e1)
    assert {k.seed for k in e0}.isdisjoint({k.seed for k in e1})
    assert len({k.seed for k in e0}) == len(e0)  # every batch of an epoch has its own stream
    other = keys(EpochBatchSampler(50, 8, shuffle=True, seed=4, drop_last=False), 0)
    assert flat(other) != flat(e0)


def test_resume_set_epoch_reproduces_the_epoch_exactly():
    run = EpochBatchSampler(40, 6, shuffle=True, seed=11, drop_last=True)
    history = {e: keys(run, e) for e in range(4)}
    resumed = EpochBatchSampler(40, 6, shuffle=True, seed=11, drop_last=True)
    assert same(keys(resumed, 2), history[2])
    assert same(keys(resumed, 3), history[3])
    assert same(list(resumed), history[3])  # iterating again without set_epoch: the same epoch


def test_no_shuffle_keeps_the_order():
    s = EpochBatchSampler(10, 4, shuffle=False, seed=0, drop_last=False)
    assert [k.indices.tolist() for k in keys(s, 5)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [k.batch for k in s] == [0, 1, 2]


@pytest.mark.parametrize(
    "n, bs, drop", [(10, 4, False), (10, 4, True), (8, 4, True), (3, 4, True), (0, 4, False)]
)
def test_len_matches_iteration(n, bs, drop):
    s = EpochBatchSampler(n, bs, shuffle=True, seed=0, drop_last=drop)
    got = list(s)
    assert len(got) == len(s) == (n // bs if drop else -(-n // bs))
    assert all(len(k.indices) == bs for k in got[:-1])
    if drop:
        assert all(len(k.indices) == bs for k in got)


def test_mix_seed_separates_neighbours_and_rejects_bad_parts():
    seeds = {mix_seed(s, e) for s in range(5) for e in range(5)}
    assert len(seeds) == 25  # (seed=1, epoch=0) is not (seed=0, epoch=1)
    assert all(0 <= s < 2**63 for s in seeds)
    assert mix_seed(1, 2, 3) == mix_seed(1, 2, 3)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            mix_seed(0, bad)


@pytest.mark.parametrize(
    "kwargs", [dict(n=-1), dict(batch_size=0), dict(seed=-3), dict(rank=0), dict(rank=2, num_replicas=2)]
)
def test_bad_arguments(kwargs):
    args = {**dict(n=10, batch_size=2, shuffle=True, seed=0, drop_last=False), **kwargs}
    with pytest.raises(ValueError):
        EpochBatchSampler(**args)
    with pytest.raises(ValueError):
        EpochBatchSampler(10, 2, shuffle=True, seed=0, drop_last=False).set_epoch(-1)


# ------------------------------------------------------------------------------ DDP sharding


@pytest.mark.parametrize("n, world", [(12, 3), (13, 3), (2, 3), (17, 4)])
def test_padded_shards_are_equal_and_cover_everything(n, world):
    shards = []
    for rank in range(world):
        s = EpochBatchSampler(n, 2, shuffle=True, seed=5, drop_last=False, rank=rank, num_replicas=world)
        ks = keys(s, 1)
        assert len(ks) == len(s)
        assert all(k.rank == rank for k in ks)
        shards.append(flat(ks))
    per_rank = -(-n // world)
    assert all(len(sh) == per_rank for sh in shards)  # same number of samples, so of batches
    assert (
        len(
            {
                len(
                    keys(
                        EpochBatchSampler(
                            n, 2, shuffle=True, seed=5, drop_last=False, rank=r, num_replicas=world
                        ),
                        1,
                    )
                )
                for r in range(world)
            }
        )
        == 1
    )
    every = list(itertools.chain(*shards))
    assert set(every) == set(range(n))
    assert len(every) - n == per_rank * world - n  # only the wrap-around padding repeats
    if n % world == 0:
        assert len(set(every)) == len(every)  # disjoint


@pytest.mark.parametrize("n, world", [(10, 3), (2, 3), (9, 3)])
def test_unpadded_eval_shards_are_disjoint_and_exact(n, world):
    shards = []
    for rank in range(world):
        s = EpochBatchSampler(
            n, 2, shuffle=False, seed=0, drop_last=False, rank=rank, num_replicas=world, pad_shards=False
        )
        ks = list(s)
        assert len(ks) == len(s)
        shards.append(flat(ks))
    assert sorted(itertools.chain(*shards)) == list(range(n))  # every sample exactly once
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert list(itertools.chain(*shards)) == list(range(n))  # contiguous blocks, in order


def test_rank_and_world_default_to_torch_distributed(monkeypatch):
    explicit = [
        keys(EpochBatchSampler(20, 3, shuffle=True, seed=1, drop_last=True, rank=r, num_replicas=2), 4)
        for r in range(2)
    ]
    monkeypatch.setattr(sampling.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(sampling.dist, "get_world_size", lambda group=None: 2)
    for r in range(2):
        monkeypatch.setattr(sampling.dist, "get_rank", lambda group=None, r=r: r)
        s = EpochBatchSampler(20, 3, shuffle=True, seed=1, drop_last=True)
        assert s.rank_world() == (r, 2)
        assert same(keys(s, 4), explicit[r])
        assert len(s) == len(explicit[r]) == 3  # 10 samples per rank, drop_last
    assert set(flat(explicit[0])).isdisjoint(flat(explicit[1]))


# ------------------------------------------------------------------------------ loader


def test_batch_loader_yields_whole_batches_built_from_keys():
    data = torch.arange(100, dtype=torch.float32) * 10

    def build(key: BatchKey):
        noise = torch.rand(len(key.indices), generator=key.generator())
        return data[key.indices] + noise, key.indices

    sampler = EpochBatchSampler(100, 16, shuffle=True, seed=0, drop_last=True)
    loader = batch_loader(BatchDataset(100, build), sampler)
    assert loader.batch_size is None and loader.num_workers == 0 and loader.sampler is sampler
    assert len(loader) == 6
    loader.sampler.set_epoch(3)  # what Lightning calls each epoch
    first = [(x.clone(), y.clone()) for x, y in loader]
    torch.manual_seed(99)
    second = list(loader)
    for (x1, y1), (x2, y2) in zip(first, second, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
        assert x1.shape == (16,) and torch.all((x1 - data[y1] >= 0) & (x1 - data[y1] < 1))
    loader.sampler.set_epoch(4)
    assert not torch.equal(next(iter(loader))[1], first[0][1])
    with pytest.raises(TypeError, match="BatchKey"):
        BatchDataset(3, build)[0]


# ------------------------------------------------------------------------------ stratified_indices


def test_stratified_indices_exact_count_proportional_and_seeded():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    chosen, rest = stratified_indices(labels, 20, seed=0)
    assert len(chosen) == 20 and len(rest) == 80
    assert np.intersect1d(chosen, rest).size == 0 and np.union1d(chosen, rest).size == 100
    assert np.bincount(labels[chosen], minlength=4).tolist() == [10, 6, 3, 1]
    again, _ = stratified_indices(labels, 20, seed=0)
    other, _ = stratified_indices(labels, 20, seed=1)
    assert np.array_equal(chosen, again) and not np.array_equal(chosen, other)
    odd, _ = stratified_indices(labels, 7, seed=0)  # 3.5 / 2.1 / 1.05 / 0.35: largest remainders
    assert len(odd) == 7 and np.bincount(labels[odd], minlength=4).tolist() == [4, 2, 1, 0]
    assert len(stratified_indices(labels, 0, 0)[0]) == 0
    with pytest.raises(ValueError):
        stratified_indices(labels, 101, 0)
