"""SafetensorsCheckpointIO / save_weights: exact round trips, no pickle, atomic writes."""

from __future__ import annotations

import copy
import math
import os
from collections import OrderedDict
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from miamind.engine import checkpoint_io
from miamind.engine.checkpoint_io import (
    CheckpointFormatError,
    SafetensorsCheckpointIO,
    convert_torch_checkpoint,
    load_weights,
    save_weights,
)

from ._resume_run import TinyClassifier, make_data


def assert_identical(a, b, where="checkpoint"):
    """Recursive equality that also requires identical types (list vs tuple, dict vs OrderedDict, int vs float)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, (
            f"{where}: {a.dtype}{tuple(a.shape)} != {b.dtype}{tuple(b.shape)}"
        )
        assert torch.equal(a, b) or (
            a.is_floating_point()
            and torch.equal(a.isnan(), b.isnan())
            and torch.equal(a.nan_to_num(), b.nan_to_num())
        ), f"{where}: values differ"
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), f"{where}: keys {list(a)} != {list(b)}"
        for (ka, va), kb in zip(a.items(), b.keys(), strict=True):
            assert type(ka) is type(kb), f"{where}: key {ka!r} type"
            assert_identical(va, b[kb], f"{where}[{ka!r}]")
        assert getattr(a, "_metadata", None) == getattr(b, "_metadata", None), f"{where}: _metadata"
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def nested_checkpoint():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    state = OrderedDict([("layer.weight", base), ("layer.weight_t", base.t()), ("row", base[1])])
    state._metadata = {"": {"version": 1}, "layer": {"version": 2}}
    return {
        "state_dict": state,
        "optimizer_states": [
            {
                "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2, 3)}},
                "param_groups": [
                    {"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None, "amsgrad": False}
                ],
            }
        ],
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/loss', 'mode': 'min'}": {
                "best_model_score": torch.tensor(0.5),
                "kth_value": torch.tensor(float("inf")),
            },
            'weird/key.with "quotes" and ünïcode': [1, 2.5, None, True, "s"],
        },
        "floats": [float("inf"), float("-inf"), float("nan"), -0.0, 1e-300, 0.1 + 0.2, 2**60 + 1],
        "keys": {1: "int", "1": "str", (2, "b"): "tuple", None: "none", 2.5: "float", False: "bool"},
        "tensors": {
            "bf16": torch.randn(4, 5).to(torch.bfloat16),
            "f16": torch.randn(3).half(),
            "f64": torch.randn(2, dtype=torch.float64),
            "i8": torch.tensor([-3, 4], dtype=torch.int8),
            "u8": torch.tensor([255, 0], dtype=torch.uint8),
            "i64": torch.tensor([2**62]),
            "bool": torch.tensor([True, False]),
            "scalar": torch.tensor(7),
            "empty": torch.empty(0, 3),
            "expanded": torch.ones(3).expand(4, 3),
            "same_twice": [base, base],
            "nan": torch.tensor([float("nan"), 1.0]),
        },
        "size": torch.Size([2, 3]),
        "data_dir": Path("/data/cifar10"),
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "nested_tuple": (1, (2, [3, (4,)]), {}),
        "empty": {"list": [], "tuple": (), "str": ""},
        "epoch": 3,
        "pytorch-lightning_version": "2.6.6",
    }


def test_nested_checkpoint_round_trips_exactly_with_types(tmp_path):
    ckpt = nested_checkpoint()
    expected = copy.deepcopy(ckpt)
    path = tmp_path / "deep" / "er" / "ckpt.safetensors"  # parent folders are created
    io = SafetensorsCheckpointIO()
    io.save_checkpoint(ckpt, path)
    loaded = io.load_checkpoint(path)
    assert_identical(expected, loaded)
    # contiguous copies were written, the caller's (non-contiguous) tensors are untouched
    assert not ckpt["state_dict"]["layer.weight_t"].is_contiguous()
    assert loaded["tensors"]["bf16"].dtype == torch.bfloat16
    assert loaded["tensors"]["scalar"].dim() == 0
    # a file any safetensors reader opens, with one entry per tensor, named by its JSON key path
    with safe_open(str(path), framework="pt") as f:
        names = set(f.keys())
    assert '["state_dict", "layer.weight"]' in names
    assert '["optimizer_states", 0, "state", 0, "exp_avg"]' in names


def test_numpy_scalars_come_back_as_python_scalars(tmp_path):
    path = tmp_path / "np.safetensors"
    SafetensorsCheckpointIO().save_checkpoint(
        {"f": np.float32(0.25), "i": np.int64(5), "b": np.bool_(True), np.int32(3): "key"}, path
    )
    loaded = SafetensorsCheckpointIO().load_checkpoint(path)
    assert_identical({"f": 0.25, "i": 5, "b": True, 3: "key"}, loaded)


@pytest.mark.parametrize(
    "bad, where, type_name",
    [
        ({"hyper_parameters": {"model": torch.nn.Linear(2, 2)}}, "['hyper_parameters']['model']", "Linear"),
        ({"a": [1, {"b": object()}]}, "['a'][1]['b']", "object"),
        ({"a": b"bytes"}, "['a']", "bytes"),
        ({"a": {frozenset([1]): 1}}, "['a']", "frozenset"),
        ({"a": np.array([object()], dtype=object)}, "['a']", "object"),
        ({"a": torch.zeros(2, dtype=torch.complex128)}, "['a']", "complex128"),
    ],
)
def test_unstorable_values_raise_typeerror_naming_the_key_path(tmp_path, bad, where, type_name):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(TypeError) as err:
        SafetensorsCheckpointIO().save_checkpoint(bad, path)
    assert where in str(err.value) and type_name in str(err.value)
    assert not path.exists() and list(tmp_path.iterdir()) == []


class RecordingIO(SafetensorsCheckpointIO):
    """Keeps a deep copy of every dict Lightning hands over, to compare with what is read back."""

    def __init__(self):
        self.saved = []

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        self.saved.append(copy.deepcopy(checkpoint))
        super().save_checkpoint(checkpoint, path, storage_options)


def test_lightning_checkpoint_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    train_dl, val_dl = make_data(0)
    io = RecordingIO()
    trainer = pl.Trainer(
        max_steps=3,
        plugins=[io],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(TinyClassifier(), train_dl, val_dl)  # Adam + a step and an epoch LR scheduler
    path = tmp_path / "ckpt.safetensors"
    trainer.save_checkpoint(path)
    original = io.saved[-1]
    loaded = io.load_checkpoint(path)
    assert_identical(original, loaded)
    # the parts Lightning relies on when resuming, with their exact Python types
    assert isinstance(loaded["state_dict"], OrderedDict)
    assert set(loaded["optimizer_states"][0]["state"]) == {0, 1, 2, 3, 4, 5}
    assert loaded["optimizer_states"][0]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert len(loaded["lr_schedulers"]) == 2 and loaded["global_step"] == 3
    assert loaded["loops"]["fit_loop"]["epoch_loop.batch_progress"]["is_last_batch"] is False
    # and the model, optimizer and schedulers accept it
    fresh = TinyClassifier()
    fresh.load_state_dict(loaded["state_dict"])
    opt = torch.optim.Adam(fresh.parameters())
    opt.load_state_dict(loaded["optimizer_states"][0])


def test_failed_write_keeps_previous_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    io = SafetensorsCheckpointIO()
    io.save_checkpoint({"w": torch.ones(3), "epoch": 1}, path)
    before = path.read_bytes()

    def crash_mid_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_io, "save_file", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"w": torch.zeros(3), "epoch": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]
    assert io.load_checkpoint(path)["epoch"] == 1


def test_overwrite_replaces_atomically_with_normal_permissions(tmp_path):
    path = tmp_path / "best.safetensors"
    io = SafetensorsCheckpointIO()
    io.save_checkpoint({"epoch": 1}, path)
    io.save_checkpoint({"epoch": 2}, path)
    assert io.load_checkpoint(path) == {"epoch": 2}
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]


def test_pickled_checkpoints_are_refused_with_a_conversion_hint(tmp_path):
    legacy = tmp_path / "epoch=3.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, legacy)
    renamed = tmp_path / "sneaky.safetensors"
    renamed.write_bytes(legacy.read_bytes())
    io = SafetensorsCheckpointIO()
    for path in (legacy, renamed):
        with pytest.raises(CheckpointFormatError, match="weights_only=True") as err:
            io.load_checkpoint(path)
        assert str(path) in str(err.value) and "pickle" in str(err.value)
    for name, content in [
        ("data.bin", b"\x10\x00\x00\x00\x00\x00\x00\x00{}"),
        ("garbage.safetensors", b"\xff" * 64),
    ]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(
            CheckpointFormatError, match=r"not a safetensors file \(expected a '\.safetensors'"
        ):
            io.load_checkpoint(tmp_path / name)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{x")
    with pytest.raises(CheckpointFormatError, match="not a readable safetensors file"):
        io.load_checkpoint(corrupt)
    with pytest.raises(FileNotFoundError):
        io.load_checkpoint(tmp_path / "missing.safetensors")


def test_header_length_starting_like_a_pickle_is_still_safetensors(tmp_path):
    # the first byte of a safetensors file is the low byte of its header length: 0x80 is legal
    path = tmp_path / "c.safetensors"
    io = SafetensorsCheckpointIO()
    pad = 0
    for _ in range(10):  # grow a string until the header length is 0x80 modulo 256
        io.save_checkpoint({"w": torch.ones(1), "pad": "x" * pad}, path)
        header_len = int.from_bytes(path.read_bytes()[:8], "little")
        if header_len % 256 == 0x80:
            break
        pad += (0x80 - header_len) % 256
    assert path.read_bytes()[:1] == b"\x80"
    assert io.load_checkpoint(path)["pad"] == "x" * pad


def test_convert_trusted_torch_checkpoint(tmp_path):
    ckpt = {"state_dict": OrderedDict(w=torch.randn(2, 2)), "epoch": 4, "betas": (0.9, 0.99)}
    torch.save(ckpt, tmp_path / "old.ckpt")
    convert_torch_checkpoint(tmp_path / "old.ckpt", tmp_path / "new.safetensors")
    assert_identical(ckpt, SafetensorsCheckpointIO().load_checkpoint(tmp_path / "new.safetensors"))


def test_map_location_and_storage_options(tmp_path):
    path = tmp_path / "c.safetensors"
    io = SafetensorsCheckpointIO()
    io.save_checkpoint({"w": torch.ones(2, 3)}, path)
    assert io.load_checkpoint(path, map_location="meta")["w"].device.type == "meta"
    assert io.load_checkpoint(path, map_location=torch.device("cpu"))["w"].device.type == "cpu"
    assert io.load_checkpoint(path, map_location={"cuda:0": "cpu"})["w"].device.type == "cpu"
    # Lightning's TorchCheckpointIO default: a callable(storage, location) returning it unchanged
    assert torch.equal(io.load_checkpoint(path, map_location=lambda s, loc: s)["w"], torch.ones(2, 3))
    with pytest.raises(TypeError, match="storage_options"):
        io.save_checkpoint({"w": torch.ones(1)}, path, storage_options={"compress": True})


def test_remove_checkpoint(tmp_path):
    path = tmp_path / "c.safetensors"
    io = SafetensorsCheckpointIO()
    io.save_checkpoint({"a": 1}, path)
    io.remove_checkpoint(path)
    assert not path.exists()
    io.remove_checkpoint(path)  # already gone: no error


def test_weights_round_trip_with_tied_tensors_and_metadata(tmp_path):
    shared = torch.randn(4, 3)
    state = {
        "embed.weight": shared,
        "head.weight": shared,
        "head.bias": torch.zeros(4).to(torch.bfloat16),
        "view": shared[1:3],
    }
    meta = {
        "model": "fastnet",
        "classes": ["a", "b"],
        "metrics": {"acc": 0.5, "loss": float("nan")},
        "shape": (1, 32, 32),
        "nested": {"none": None, "flag": True},
    }
    path = tmp_path / "w" / "model.safetensors"
    save_weights(path, state, meta)
    loaded, loaded_meta = load_weights(path)
    assert set(loaded) == set(state)  # safetensors orders entries itself
    for k in state:
        assert torch.equal(loaded[k], state[k]) and loaded[k].dtype == state[k].dtype
    assert math.isnan(loaded_meta["metrics"].pop("loss"))
    assert loaded_meta == {
        "model": "fastnet",
        "classes": ["a", "b"],
        "metrics": {"acc": 0.5},
        "shape": [1, 32, 32],
        "nested": {"none": None, "flag": True},
    }
    # plain tensor names: any safetensors reader sees an ordinary state dict
    assert set(load_file(str(path))) == set(state)
    with safe_open(str(path), framework="pt") as f:
        assert set(f.metadata()) == {"miamind"}


def test_weights_errors(tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(TypeError, match=r"metadata\['a'\]: key 1"):
        save_weights(path, {"w": torch.ones(1)}, {"a": {1: "int key"}})
    with pytest.raises(TypeError, match=r"metadata\['a'\]\[0\].*ndarray"):
        save_weights(path, {"w": torch.ones(1)}, {"a": [np.zeros(2)]})
    with pytest.raises(TypeError, match=r"state_dict\['w'\] is a list"):
        save_weights(path, {"w": [1.0]}, {})
    assert not path.exists()
    SafetensorsCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(1)}}, path)
    with pytest.raises(CheckpointFormatError, match="full training checkpoint"):
        load_weights(path)
    save_weights(path, {"w": torch.ones(1)}, {})
    with pytest.raises(CheckpointFormatError, match="load_weights"):
        SafetensorsCheckpointIO().load_checkpoint(path)
