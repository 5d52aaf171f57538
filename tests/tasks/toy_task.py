"""A task defined outside the package, as a user would: 3-class rows of 6 features, generated data,
inputs read from .npy files. ``test_toy_task.py`` registers it and runs it through the CLI."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import field_validator

from miamind.data.splits import apply_scaler
from miamind.engine.schema import CicIds2017Data, RunConfig, rule_error
from miamind.tasks.registry import Task
from miamind.tasks.synthetic import synthetic_flow_table

N_FEATURES = 6


def toy_arrays(seed: int = 0, n_rows: int = 900):
    """Generated rows of the toy task: the flow generator's table with 6 features, multiclass."""
    from miamind.data.flows import make_splits

    table = synthetic_flow_table(n_rows, N_FEATURES, seed)
    return make_splits(table, label_mode="multiclass", seed=seed, scale="standard", dataset="cicids2017")


def toy_inputs(paths, state):
    """``.npy`` files of raw rows (N, 6) -> the scaled batch (N, 1, 6) and a name per row."""
    xs, names = [], []
    for path in [paths] if isinstance(paths, str) else paths:
        rows = np.load(path, allow_pickle=False).astype(np.float64)
        xs.append(apply_scaler(rows, {"offset": state["scaler_offset"], "scale": state["scaler_scale"]}))
        names += [f"{path}:row {i}" for i in range(len(rows))]
    x = np.concatenate(xs).astype(np.float32)
    return torch.from_numpy(x).reshape(len(x), 1, N_FEATURES), names


class ToyData(CicIds2017Data):
    """The toy task's data section: the flow data module's keys; its rows are always generated."""

    @field_validator("synthetic")
    @classmethod
    def _generated_only(cls, v: bool) -> bool:
        if not v:
            raise rule_error("must be true: the toy task has no data files")
        return v


class ToyConfig(RunConfig):
    """The toy task's config model, named by its registry entry: its own data section."""

    data: ToyData


TOY = Task(
    name="toyflows",
    kind="flow-classification",
    datamodule="miamind.tasks.datamodules:CicIds2017DataModule",
    config="tests.tasks.toy_task:ToyConfig",
    headline=("acc", "f1_macro"),
    report_metrics=("f1_macro", "acc"),
    test_split="stratified held-out test split of generated rows",
    synthetic=("tests.tasks.toy_task:toy_arrays", {}),
    inputs="tests.tasks.toy_task:toy_inputs",
    defaults={
        "model": {"name": "flowcnn", "attention": "mia", "attention_kwargs": {}, "kwargs": {}},
        "data": {
            "data_dir": None,
            "synthetic": True,
            "dataset": "cicids2017",
            "label_mode": "multiclass",
            "split": [0.7, 0.15, 0.15],
            "nonfinite": "drop",
            "scale": "standard",
            "batch_size": 64,
            "eval_batch_size": 256,
            "class_weights": False,
            "limit_eval": None,
            "drop_duplicates": True,
        },
        "checkpoint": {"monitor": "val/f1_macro", "mode": "max", "evaluate": "best"},
    },
    recipes={"fast": {"optim": {"name": "adamw", "lr": 3.0e-3}, "trainer": {"epochs": 2}}},
)
