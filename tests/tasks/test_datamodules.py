"""Data modules: deterministic batches, held-out splits, train-only statistics, padding, config errors."""

from __future__ import annotations

import dataclasses
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from miamind.data.augment import channel_stats, cutout, normalize, random_crop_flip
from miamind.data.flows import make_splits
from miamind.data.isbi2012 import IsbiArrays
from miamind.data.splits import balanced_class_weights
from miamind.tasks import sampling
from miamind.tasks.datamodules import build_datamodule, crop_to_target, validate_data_cfg
from miamind.tasks.inputs import load_inputs
from miamind.tasks.registry import get_task
from miamind.tasks.synthetic import (
    synthetic_cifar10,
    synthetic_flow_table,
    synthetic_flows,
    synthetic_isbi2012,
)


def cifar_cfg(**kw):
    cfg = dict(
        data_dir=None,
        batch_size=16,
        eval_batch_size=32,
        val_size=40,
        limit_train=None,
        augment=dict(crop_pad=4, flip=True, cutout=6),
    )
    cfg.update(kw)
    return cfg


def isbi_cfg(**kw):
    cfg = dict(
        data_dir=None,
        fold=4,
        n_folds=5,
        crop=24,
        crops_per_epoch=40,
        batch_size=8,
        eval_batch_size=1,
        pad_multiple=16,
    )
    cfg.update(kw)
    return cfg


def flow_cfg(**kw):
    cfg = dict(
        data_dir=None,
        dataset="cicids2017",
        label_mode="binary",
        split=[0.7, 0.15, 0.15],
        nonfinite="drop",
        scale="standard",
        batch_size=32,
        eval_batch_size=64,
        class_weights=True,
    )
    cfg.update(kw)
    return cfg


@pytest.fixture(scope="module")
def cifar():
    return synthetic_cifar10(200, 40, seed=0)


@pytest.fixture(scope="module")
def isbi():
    return synthetic_isbi2012(10, 56, seed=0)


def epoch_batches(dm, epoch):
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [(x.clone(), y.clone()) for x, y in loader]


def equal_batches(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )


def fake_world(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(sampling.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(sampling.dist, "get_rank", lambda group=None: rank)
    monkeypatch.setattr(sampling.dist, "get_world_size", lambda group=None: world)


# ------------------------------------------------------------------------------ CIFAR-10


def test_cifar_batches_are_a_function_of_seed_and_epoch_only(cifar):
    a = build_datamodule("cifar10", cifar_cfg(), 7, arrays=cifar)
    b = build_datamodule("cifar10", cifar_cfg(), 7, arrays=cifar)
    torch.manual_seed(0)
    e1 = epoch_batches(a, 1)
    torch.manual_seed(1)
    torch.rand(100)
    assert equal_batches(e1, epoch_batches(b, 1))
    assert len(e1) == 160 // 16
    x, y = e1[0]
    assert x.dtype == torch.float32 and x.shape == (16, 3, 32, 32) and y.dtype == torch.int64
    assert not equal_batches(e1, epoch_batches(a, 2))
    assert not equal_batches(e1, epoch_batches(build_datamodule("cifar10", cifar_cfg(), 8, arrays=cifar), 1))


def test_cifar_resume_reproduces_an_epoch(cifar):
    run = build_datamodule("cifar10", cifar_cfg(), 3, arrays=cifar)
    history = [epoch_batches(run, e) for e in range(3)]
    resumed = build_datamodule("cifar10", cifar_cfg(), 3, arrays=cifar)
    assert equal_batches(epoch_batches(resumed, 2), history[2])


def test_cifar_augmentation_is_drawn_from_the_batch_generator(cifar):
    dm = build_datamodule("cifar10", cifar_cfg(), 0, arrays=cifar)
    images = cifar.tensors("train")[0][dm.train_indices]
    mean, std = dm.preprocess_state()["mean"], dm.preprocess_state()["std"]
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(4)
    key = next(iter(loader.sampler))
    x, _ = next(iter(loader))
    plain = normalize(images[key.indices], mean, std)
    assert not torch.equal(x, plain)  # augmented
    g = key.generator()
    expected = random_crop_flip(images[key.indices], pad=4, flip=True, generator=g)
    expected = cutout(expected, 6, generator=g, fill=[round(255 * m) for m in mean])
    assert torch.equal(x, normalize(expected, mean, std))
    off = build_datamodule(
        "cifar10", cifar_cfg(augment=dict(crop_pad=0, flip=False, cutout=0)), 0, arrays=cifar
    )
    loader = off.train_dataloader()
    loader.sampler.set_epoch(4)
    assert torch.equal(next(iter(loader))[0], plain)


def test_cifar_val_is_held_out_from_train_stratified_and_seeded(cifar):
    dm = build_datamodule("cifar10", cifar_cfg(val_size=40), 0, arrays=cifar)
    tr, va = dm.train_indices, dm.val_indices
    assert len(va) == 40 and len(tr) == 160
    assert np.intersect1d(tr, va).size == 0 and np.union1d(tr, va).size == 200
    assert np.bincount(cifar.train_labels[va], minlength=10).tolist() == [4] * 10
    other = build_datamodule("cifar10", cifar_cfg(val_size=40), 1, arrays=cifar)
    other.setup()
    assert not np.array_equal(other.val_indices, va)
    # Evaluation: every held-out image once, in order, normalised, the same in every epoch.
    state = dm.preprocess_state()
    expected = normalize(cifar.tensors("train")[0][va], state["mean"], state["std"])
    got = [b for b in dm.val_dataloader()]
    assert [len(y) for _, y in got] == [32, 8]  # eval_batch_size, no drop_last
    assert torch.equal(torch.cat([x for x, _ in got]), expected)
    assert torch.equal(torch.cat([y for _, y in got]), torch.from_numpy(cifar.train_labels[va]))
    test_x = torch.cat([x for x, _ in dm.test_dataloader()])
    assert torch.equal(test_x, normalize(cifar.tensors("test")[0], state["mean"], state["std"]))


def test_cifar_normalisation_uses_training_images_only(cifar):
    dm = build_datamodule("cifar10", cifar_cfg(), 0, arrays=cifar)
    dm.setup()
    # Same training images; the held-out validation images and the test images made white.
    train_images = cifar.train_images.copy()
    train_images[dm.val_indices] = 255
    bright = dataclasses.replace(
        cifar, train_images=train_images, test_images=np.full_like(cifar.test_images, 255)
    )
    dm2 = build_datamodule("cifar10", cifar_cfg(), 0, arrays=bright)
    s1, s2 = dm.preprocess_state(), dm2.preprocess_state()
    assert np.array_equal(s1["mean"], s2["mean"]) and np.array_equal(s1["std"], s2["std"])
    mean, std = channel_stats(cifar.train_images[dm.train_indices], layout="NHWC")
    assert np.allclose(s1["mean"], mean) and np.allclose(s1["std"], std)
    assert not np.allclose(channel_stats(bright.train_images, layout="NHWC")[0], mean, atol=0.05)
    assert set(s1) == {"mean", "std"} and s1["mean"].shape == (3,) and s1["mean"].dtype == np.float64


def test_cifar_limits_and_no_validation(cifar):
    dm = build_datamodule("cifar10", cifar_cfg(limit_train=50, limit_eval=20), 0, arrays=cifar)
    dm.setup()
    assert len(dm.train_indices) == 50 and np.intersect1d(dm.train_indices, dm.val_indices).size == 0
    assert np.bincount(cifar.train_labels[dm.train_indices], minlength=10).tolist() == [5] * 10
    assert sum(len(y) for _, y in dm.val_dataloader()) == 20
    test_y = torch.cat([y for _, y in dm.test_dataloader()])
    assert len(test_y) == 20 and torch.bincount(test_y, minlength=10).tolist() == [2] * 10
    none = build_datamodule("cifar10", cifar_cfg(val_size=0), 0, arrays=cifar)
    assert none.val_dataloader() == [] and len(none.train_indices) == 200
    x, y = none.example_batch(5)  # falls back to the test split
    assert x.shape == (5, 3, 32, 32) and torch.equal(y, torch.from_numpy(cifar.test_labels[:5]))
    with pytest.raises(ValueError, match="batch_size=300 is larger than the 160 training samples"):
        build_datamodule("cifar10", cifar_cfg(batch_size=300), 0, arrays=cifar).train_dataloader()
    with pytest.raises(ValueError, match="val_size"):
        build_datamodule("cifar10", cifar_cfg(val_size=200), 0, arrays=cifar).setup()


def test_example_positions_are_the_first_or_spread_over_the_split(cifar):
    dm = build_datamodule("cifar10", cifar_cfg(), 0, arrays=cifar)
    dm.setup()
    total = sum(len(y) for _, y in dm.test_dataloader())
    assert dm.example_positions(3, split="test") == [0, 1, 2]
    spread = dm.example_positions(3, split="test", spread=True)
    assert spread == [0, round((total - 1) / 2), total - 1]
    assert dm.example_positions(10**6, split="test", spread=True) == list(range(total))
    x, y = dm.example_batch(3, split="test", spread=True)
    test_x = torch.cat([x for x, _ in dm.test_dataloader()])
    assert torch.equal(x, test_x[spread])


def test_cifar_info_and_example_batch(cifar):
    dm = build_datamodule("cifar10", cifar_cfg(), 0, arrays=cifar)
    assert dm.info.num_classes == 10 and dm.info.input_shape == (3, 32, 32)  # triggers setup itself
    assert dm.class_weights is None
    x, y = dm.example_batch(6)
    first = next(iter(dm.val_dataloader()))
    assert torch.equal(x, first[0][:6]) and torch.equal(y, first[1][:6])


# ------------------------------------------------------------------------------ ISBI 2012


def test_isbi_eval_batches_are_padded_whole_slices_and_crop_to_target_restores(isbi):
    dm = build_datamodule("isbi2012", isbi_cfg(eval_batch_size=1), 0, arrays=isbi)
    batches = list(dm.val_dataloader())
    assert len(batches) == 2  # fold 4 of 5 over 10 slices: slices 8, 9
    state = dm.preprocess_state()
    fold = isbi.fold(4, 5)
    for k, (x, y) in enumerate(batches):
        assert x.shape == (1, 1, 64, 64) and y.shape == (1, 56, 56) and y.dtype == torch.int64
        inner = x[..., :56, :56]
        expected = (fold.val_images[k : k + 1] - float(state["mean"][0])) / float(state["std"][0])
        assert torch.allclose(inner, expected, atol=1e-6)
        assert torch.equal(y, fold.val_targets[k : k + 1])
        # Reflect padding at the bottom and right (not zeros, not wrap-around).
        assert torch.equal(x[..., 56:, :56], inner.flip(-2)[..., 1:9, :])
        assert torch.equal(x[..., :56, 56:], inner.flip(-1)[..., :, 1:9])
        logits = torch.randn(1, 2, 64, 64)
        cropped = crop_to_target(logits, y)
        assert cropped.shape == (1, 2, 56, 56) and torch.equal(cropped, logits[..., :56, :56])
    test = list(dm.test_dataloader())  # the unlabelled official test slices cannot be scored
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(test, batches, strict=True)
    )
    x, y = dm.example_batch(5)
    assert x.shape == (2, 1, 64, 64) and y.shape == (2, 56, 56)
    with pytest.raises(ValueError):
        crop_to_target(torch.zeros(1, 2, 40, 40), y)


def test_isbi_training_crops_come_from_training_slices_only():
    # Slice i is uniformly grey at 20 i + 10: a crop's value tells which slice it came from.
    rng = np.random.default_rng(0)
    images = np.repeat((np.arange(10) * 20 + 10).astype(np.uint8)[:, None, None], 32, 1).repeat(32, 2)
    labels = np.where(rng.random((10, 32, 32)) < 0.3, 0, 255).astype(np.uint8)
    arrays = IsbiArrays(images, labels, np.zeros((0, 32, 32), np.uint8), {"source": "test"})
    dm = build_datamodule("isbi2012", isbi_cfg(fold=1, crop=16, crops_per_epoch=64), 0, arrays=arrays)
    state = dm.preprocess_state()
    seen = set()
    for x, y in epoch_batches(dm, 0):
        assert x.shape == (8, 1, 16, 16) and y.shape == (8, 16, 16)
        raw = (x * float(state["std"][0]) + float(state["mean"][0])) * 255
        assert torch.allclose(raw.amax((1, 2, 3)), raw.amin((1, 2, 3)), atol=1e-3)  # one slice per crop
        seen.update(((raw[:, 0, 0, 0] - 10) / 20).round().long().tolist())
    assert seen <= {0, 1, 4, 5, 6, 7, 8, 9} and len(seen) >= 5  # fold 1 of 5 holds out slices 2, 3
    train = images[[0, 1, 4, 5, 6, 7, 8, 9]] / 255.0
    assert np.isclose(state["mean"][0], train.mean()) and np.isclose(state["std"][0], train.std())


def test_isbi_stats_ignore_validation_slices_and_batches_are_deterministic(isbi):
    dm = build_datamodule("isbi2012", isbi_cfg(), 0, arrays=isbi)
    changed = isbi.train_images.copy()
    changed[8:] = 255  # the held-out fold
    dm2 = build_datamodule(
        "isbi2012", isbi_cfg(), 0, arrays=IsbiArrays(changed, isbi.train_labels, isbi.test_images, isbi.meta)
    )
    assert dm.preprocess_state()["mean"] == dm2.preprocess_state()["mean"]
    e1 = epoch_batches(dm, 1)
    assert len(e1) == 40 // 8
    assert equal_batches(e1, epoch_batches(dm2, 1))  # training crops do not see the held-out slices
    assert not equal_batches(e1, epoch_batches(dm, 2))
    assert dm.class_weights is None and dm.info.num_classes == 2
    with pytest.raises(ValueError, match="'crop'=80 is larger than the 56x56 slices"):
        build_datamodule("isbi2012", isbi_cfg(crop=80), 0, arrays=isbi).setup()
    with pytest.raises(ValueError, match="'fold'=5 must be < 'n_folds'=5"):
        build_datamodule("isbi2012", isbi_cfg(fold=5), 0, arrays=isbi)


# ------------------------------------------------------------------------------ flows


def test_flow_class_weights_and_state():
    table = synthetic_flow_table(400, 12, seed=1, nonfinite_rows=4)
    dm = build_datamodule("cicids2017", flow_cfg(label_mode="multiclass", nonfinite="clip"), 5, arrays=table)
    splits = make_splits(table, label_mode="multiclass", seed=5, nonfinite="clip")
    y_train = torch.cat(
        [
            y
            for _, y in epoch_batches(
                build_datamodule(
                    "cicids2017",
                    flow_cfg(label_mode="multiclass", nonfinite="clip", batch_size=1),
                    5,
                    arrays=table,
                ),
                0,
            )
        ]
    )
    assert sorted(y_train.tolist()) == sorted(splits.y_train.tolist())  # the same split, all rows per epoch
    counts = np.bincount(splits.y_train, minlength=3)
    expected = len(splits.y_train) / (3 * counts)  # n / (K n_c), on the training rows only
    assert dm.class_weights.dtype == torch.float32
    assert torch.allclose(dm.class_weights, torch.as_tensor(expected, dtype=torch.float32))
    assert np.allclose(balanced_class_weights(splits.y_train, 3), expected)
    assert dm.info.class_names == ("BENIGN", "DDoS", "PortScan") and dm.info.input_shape == (1, 12)
    state = dm.preprocess_state()
    assert set(state) == {
        "scaler_offset",
        "scaler_scale",
        "feature_names",
        "clip_posinf",
        "clip_neginf",
        "clip_nan",
    }
    assert np.array_equal(state["scaler_offset"], splits.scaler["offset"])
    assert state["feature_names"].tolist() == list(table.feature_names)
    off = build_datamodule("cicids2017", flow_cfg(class_weights=False), 5, arrays=table)
    assert off.class_weights is None and "clip_posinf" not in off.preprocess_state()
    x, y = off.example_batch(3, split="test")
    assert x.shape == (3, 1, 12) and x.dtype == torch.float32


def test_flow_splits_are_used_as_given_and_batches_deterministic():
    splits = synthetic_flows(300, 8, seed=2)
    dm = build_datamodule("cicids2017", flow_cfg(label_mode="multiclass"), 0, arrays=splits)
    assert dm.info.class_names == ("BENIGN", "attack")  # a FlowSplits is not re-split
    val = torch.cat([x for x, _ in dm.val_dataloader()])
    assert torch.equal(val, torch.from_numpy(splits.x_val).reshape(-1, 1, 8))
    assert equal_batches(
        epoch_batches(dm, 3), epoch_batches(build_datamodule("cicids2017", flow_cfg(), 0, arrays=splits), 3)
    )


def test_eval_shards_under_simulated_ddp_cover_each_sample_once(monkeypatch):
    splits = synthetic_flows(300, 8, seed=2)
    n_val = len(splits.y_val)
    parts, train_lens = [], set()
    for rank in range(3):
        fake_world(monkeypatch, rank, 3)
        dm = build_datamodule("cicids2017", flow_cfg(eval_batch_size=4, batch_size=8), 0, arrays=splits)
        parts.append(torch.cat([x for x, _ in dm.val_dataloader()]))
        train_lens.add(len(dm.train_dataloader()))
    assert len(train_lens) == 1  # every rank runs the same number of training steps
    everything = torch.cat(parts)
    assert len(everything) == n_val
    assert torch.equal(everything, torch.from_numpy(splits.x_val).reshape(-1, 1, 8))


# ------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    "task, cfg", [("cifar10", cifar_cfg()), ("isbi2012", isbi_cfg()), ("cicids2017", flow_cfg())]
)
def test_unknown_and_missing_keys(task, cfg):
    with pytest.raises(
        ValueError, match=r"unknown data_cfg key\(s\) for task '\w+': 'batchsize'; valid keys: data_dir"
    ):
        build_datamodule(task, {**cfg, "batchsize": 3}, 0)
    partial = {k: v for k, v in cfg.items() if k != "eval_batch_size"}
    with pytest.raises(ValueError, match=r"missing data_cfg key\(s\) for task '\w+': 'eval_batch_size'"):
        build_datamodule(task, partial, 0)
    assert isinstance(validate_data_cfg(task, cfg), get_task(task).data_class())


def test_bad_values_and_tasks(cifar):
    with pytest.raises(ValueError, match=r"augment\.crop"):
        build_datamodule("cifar10", cifar_cfg(augment=dict(crop=4, flip=True, cutout=0)), 0)
    with pytest.raises(ValueError, match=r"missing data_cfg key\(s\) augment\.cutout"):
        build_datamodule("cifar10", cifar_cfg(augment=dict(crop_pad=4, flip=True)), 0)
    with pytest.raises(ValueError, match="'augment.flip' must be true or false"):
        build_datamodule("cifar10", cifar_cfg(augment=dict(crop_pad=4, flip="yes", cutout=0)), 0)
    with pytest.raises(ValueError, match="'batch_size' must be an int >= 1"):
        build_datamodule("cifar10", cifar_cfg(batch_size=0), 0)
    with pytest.raises(ValueError, match="unknown task 'mnist'; valid: cifar10, isbi2012, cicids2017"):
        build_datamodule("mnist", {}, 0)
    with pytest.raises(ValueError, match="'dataset' must be one of cicids2017, cicids2017_improved"):
        build_datamodule("cicids2017", flow_cfg(dataset="unsw"), 0)
    with pytest.raises(ValueError, match="arrays must be a Cifar10Arrays"):
        build_datamodule("cifar10", cifar_cfg(), 0, arrays=synthetic_flows(100, 4))
    with pytest.raises(ValueError, match="seed"):
        build_datamodule("cifar10", cifar_cfg(), -1, arrays=cifar)


# ------------------------------------------------------------------------------ Lightning


class _Recorder(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(8, 2)
        self.seen = {}

    def forward(self, x):
        return self.net(x.flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen.setdefault(self.current_epoch, []).append((x.clone(), y.clone()))
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_sets_the_epoch_on_the_sampler():
    splits = synthetic_flows(200, 8, seed=0)
    model = _Recorder()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        use_distributed_sampler=False,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # num_workers=0 advice and the like
        trainer.fit(model, datamodule=build_datamodule("cicids2017", flow_cfg(), 4, arrays=splits))
    fresh = build_datamodule("cicids2017", flow_cfg(), 4, arrays=splits)
    for epoch in (0, 1):
        assert equal_batches(model.seen[epoch], epoch_batches(fresh, epoch))
    assert not equal_batches(model.seen[0], model.seen[1])


# ------------------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_real_data_one_batch_each(real_data_dir, shared_cache_dir, monkeypatch):
    monkeypatch.setenv("MIAMIND_CACHE", str(shared_cache_dir))  # decode CIFAR-10 once per session
    d = str(real_data_dir)
    cifar = build_datamodule(
        "cifar10", cifar_cfg(data_dir=d, val_size=1000, limit_train=64, limit_eval=30), 0
    )
    x, y = next(iter(cifar.train_dataloader()))
    assert x.shape == (16, 3, 32, 32) and len(cifar.train_indices) == 64 and len(cifar.val_indices) == 1000
    test_y = torch.cat([y for _, y in cifar.test_dataloader()])
    assert torch.bincount(test_y, minlength=10).tolist() == [3] * 10  # stratified, despite class-major files
    mean = cifar.preprocess_state()["mean"]
    assert np.all((mean > 0.4) & (mean < 0.55))  # CIFAR-10 channel means are 0.42..0.49

    isbi = build_datamodule("isbi2012", isbi_cfg(data_dir=d, crop=128, crops_per_epoch=8, batch_size=4), 0)
    x, y = next(iter(isbi.train_dataloader()))
    assert x.shape == (4, 1, 128, 128) and y.shape == (4, 128, 128)
    xv, yv = next(iter(isbi.val_dataloader()))
    assert xv.shape == (1, 1, 512, 512) and yv.shape == (1, 512, 512) and len(isbi.val_dataloader()) == 6

    for dataset, features in (("cicids2017", 77), ("cicids2017_improved", 83)):
        flows = build_datamodule("cicids2017", flow_cfg(data_dir=d, dataset=dataset, nonfinite="clip"), 0)
        x, y = next(iter(flows.train_dataloader()))
        assert x.shape == (32, 1, features) and torch.isfinite(x).all()
        assert flows.class_weights.shape == (2,) and bool((flows.class_weights > 0).all())
    # predict on the released CSV: its test rows come back exactly as the model was scored on them
    csv = real_data_dir / "cicids2017" / "MachineLearningCVE_subset.csv.gz"
    flows = build_datamodule("cicids2017", flow_cfg(data_dir=d, nonfinite="clip", drop_duplicates=False), 0)
    x_all, names = load_inputs("cicids2017", [csv], flows.preprocess_state())
    assert len(x_all) == sum(len(v) for v in flows.split_indices.values())  # every row read, nothing dropped
    test_x = next(iter(flows.test_dataloader()))[0]
    assert torch.equal(x_all[torch.from_numpy(flows.split_indices["test"][: len(test_x)])], test_x)
    assert names[0] == f"{csv}:line 2"
