"""Synthetic datasets: the loaders' types and conventions, seeded, and learnable in a few steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from miamind.data.cifar10 import CLASS_NAMES, Cifar10Arrays
from miamind.data.flows import FlowSplits, FlowTable, make_splits
from miamind.data.isbi2012 import CELL_VALUE, MEMBRANE_VALUE, IsbiArrays, membrane_fraction
from miamind.tasks.datamodules import build_datamodule
from miamind.tasks.synthetic import (
    synthetic_cifar10,
    synthetic_flow_table,
    synthetic_flows,
    synthetic_isbi2012,
)


def test_cifar_arrays_look_like_the_loaders():
    a = synthetic_cifar10(120, 30, seed=1)
    assert isinstance(a, Cifar10Arrays) and a.layout == "synthetic" and a.class_names == CLASS_NAMES
    assert a.train_images.shape == (120, 32, 32, 3) and a.train_images.dtype == np.uint8
    assert a.test_images.shape == (30, 32, 32, 3)
    assert a.train_labels.dtype == np.int64 and np.bincount(a.train_labels).tolist() == [12] * 10
    x, y = a.tensors("train")
    assert x.shape == (120, 3, 32, 32) and x.dtype == torch.uint8
    assert a.info.num_classes == 10 and a.info.input_shape == (3, 32, 32)
    b, c = synthetic_cifar10(120, 30, seed=1), synthetic_cifar10(120, 30, seed=2)
    assert np.array_equal(a.train_images, b.train_images) and np.array_equal(a.test_labels, b.test_labels)
    assert not np.array_equal(a.train_images, c.train_images)
    # Classes differ in mean colour (what survives crops and flips).
    means = np.stack([a.train_images[a.train_labels == k].mean((0, 1, 2)) for k in range(10)])
    assert np.min(np.linalg.norm(means[:, None] - means[None], axis=-1) + 1e9 * np.eye(10)) > 10


def test_isbi_arrays_look_like_the_loaders():
    a = synthetic_isbi2012(6, 48, seed=0, n_test=2)
    assert isinstance(a, IsbiArrays)
    assert a.train_images.shape == a.train_labels.shape == (6, 48, 48) and a.train_images.dtype == np.uint8
    assert a.test_images.shape == (2, 48, 48)
    assert set(np.unique(a.train_labels).tolist()) == {MEMBRANE_VALUE, CELL_VALUE}
    assert 0.1 < membrane_fraction(a.train_labels) < 0.4  # the real slices: about 0.22
    membrane = a.train_labels == MEMBRANE_VALUE
    assert a.train_images[membrane].mean() + 60 < a.train_images[~membrane].mean()
    assert a.meta["source"] == "synthetic" and a.meta["n_train"] == 6 and a.info.input_shape == (1, 48, 48)
    fold = a.fold(1, 3)
    assert fold.val_idx.tolist() == [2, 3] and fold.train_images.shape == (4, 1, 48, 48)
    assert np.array_equal(synthetic_isbi2012(6, 48, seed=0, n_test=2).train_images, a.train_images)
    assert not np.array_equal(synthetic_isbi2012(6, 48, seed=1).train_images, a.train_images)


def test_flow_table_and_splits():
    t = synthetic_flow_table(300, 77, seed=0, nonfinite_rows=6)
    assert isinstance(t, FlowTable) and t.features.shape == (300, 77) and t.features.dtype == np.float32
    assert t.label_names == ("BENIGN", "DDoS", "PortScan")
    assert t.feature_names[0] == "Destination Port" and len(set(t.feature_names)) == 77  # CIC column names
    assert (~np.isfinite(t.features)).any(axis=1).sum() == 6
    assert t.label_counts() == {"BENIGN": 180, "DDoS": 75, "PortScan": 45}
    dropped = make_splits(t, nonfinite="drop", seed=0)
    assert sum(len(i) for i in dropped.indices.values()) == 294
    s = synthetic_flows(300, 8, seed=0)
    assert isinstance(s, FlowSplits) and s.class_names == ("BENIGN", "attack") and s.input_shape == (1, 8)
    assert s.feature_names == t.feature_names[:8]
    assert abs(s.x_train.mean()) < 0.1 and abs(s.x_train.std() - 1) < 0.1  # standard-scaled on train
    multi = synthetic_flows(300, 8, seed=0, label_mode="multiclass")
    assert multi.class_names == ("BENIGN", "DDoS", "PortScan")
    assert np.array_equal(synthetic_flows(300, 8, seed=0).x_val, s.x_val)
    with pytest.raises(ValueError):
        synthetic_flow_table(5, 8)


# ------------------------------------------------------------------------------ learnable


def _fit_and_score(dm, model: nn.Module, steps: int, seg: bool = False) -> float:
    torch.manual_seed(0)
    for p in model.parameters():  # deterministic init, independent of test order
        nn.init.normal_(p, 0.0, 0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    done, epoch = 0, 0
    while done < steps:
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
        epoch += 1
    correct = total = 0
    with torch.no_grad():
        for x, y in dm.val_dataloader():
            out = model(x)
            out = out[..., : y.shape[-2], : y.shape[-1]] if seg else out
            correct += int((out.argmax(1) == y).sum())
            total += y.numel()
    return correct / total


def test_cifar_is_learnable_in_a_few_steps():
    cfg = dict(
        data_dir=None,
        batch_size=32,
        eval_batch_size=100,
        val_size=100,
        limit_train=None,
        augment=dict(crop_pad=4, flip=True, cutout=8),
    )
    dm = build_datamodule("cifar10", cfg, 0, arrays=synthetic_cifar10(400, 50, seed=0))
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )
    assert _fit_and_score(dm, model, steps=60) > 0.8  # chance: 0.1


def test_isbi_is_learnable_in_a_few_steps():
    cfg = dict(
        data_dir=None,
        fold=4,
        n_folds=5,
        crop=32,
        crops_per_epoch=64,
        batch_size=8,
        eval_batch_size=2,
        pad_multiple=16,
    )
    dm = build_datamodule("isbi2012", cfg, 0, arrays=synthetic_isbi2012(10, 64, seed=0))
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    assert _fit_and_score(dm, model, steps=30, seg=True) > 0.9  # all-cell baseline: about 0.8


def test_flows_are_learnable_in_a_few_steps():
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
    dm = build_datamodule("cicids2017", cfg, 0, arrays=synthetic_flows(600, 16, seed=0))
    assert _fit_and_score(dm, nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), steps=30) > 0.9  # majority: 0.6
