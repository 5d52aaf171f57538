"""The task registry: everything the rest of the package knows about a task, in one entry.

A task is one of the paper's three experiments. Its entry says what kind of problem it is, which
Lightning data module reads it (imported on use: Lightning is heavy and the CLI must start fast),
which config model (``miamind.engine.schema``) types its config and declares its ``data`` section,
which metrics head its summaries and reports, and what its test split is. The default values of a
task's config live in ``presets/defaults.yaml`` under the task's name. Adding a task: an entry
here, a section there, a config model with its data model, a data module.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KINDS",
    "LOWER_IS_BETTER",
    "Task",
    "TASKS",
    "get_task",
    "register_task",
    "task_names",
    "unregister_task",
]

KINDS = ("image-classification", "segmentation", "flow-classification")

#: metrics where lower is better (the sign of an improvement in reports)
LOWER_IS_BETTER = frozenset({"adapted_rand_error", "vi", "vi_split", "vi_merge", "false_alarm_rate"})


@dataclass(frozen=True)
class Task:
    """One task of the registry.

    Args:
        name: the ``--task`` name and the config section in ``presets/defaults.yaml``.
        kind: one of :data:`KINDS`; selects the loss, metrics and TTA support of the task module.
        datamodule: ``"module:Class"`` of its :class:`~miamind.tasks.datamodules.TaskDataModule`.
        config: ``"module:Class"`` of its :class:`~miamind.engine.schema.RunConfig` subclass, which
            declares the task's ``data`` section (a :class:`~miamind.engine.schema.DataConfig`
            subclass: its keys, types, bounds and optional keys' values).
        headline: the metrics of the one-line run summary, in order.
        report_metrics: the metrics a study summarises; the first is the primary one.
        test_split: what the reported test split is, in words (written to ``metrics.json``).
        datasets: the datasets (``miamind.data``) it can train on, in order of preference.
        mindspore: whether ``miamind train --backend mindspore`` trains it.
        near_copy_metrics: whether the test split's near-copies of training rows are counted and
            ``f1_macro_novel`` reported (:mod:`miamind.tasks.near_copies`).
        synthetic: ``("module:function", kwargs)`` of the small generated dataset that
            ``data.synthetic: true`` trains on (smoke tests, the demo without data); the function
            takes ``seed=`` and those keyword arguments. Sized so every preset's defaults work on it.
        inputs: ``"module:function"`` reading files for ``miamind predict``:
            ``function(paths, preprocess_state) -> (x, names)`` (:mod:`miamind.tasks.inputs`).
        defaults: the task's section of the config schema (``model``, ``data``, ``checkpoint``...)
            for a task that has none in ``presets/defaults.yaml`` (a task registered from outside
            the package).
        recipes: per preset name, the task's recipe for a preset file that has none for it.
    """

    name: str
    kind: str
    datamodule: str
    config: str
    headline: tuple[str, ...]
    report_metrics: tuple[str, ...]
    test_split: str
    datasets: tuple[str, ...] = ()
    mindspore: bool = False
    near_copy_metrics: bool = False
    synthetic: tuple[str, Mapping[str, Any]] | None = None
    inputs: str | None = None
    defaults: Mapping[str, Any] | None = None
    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def datamodule_class(self) -> type:
        module, _, cls = self.datamodule.partition(":")
        return getattr(importlib.import_module(module), cls)

    def config_class(self) -> type:
        """Its config model (a ``RunConfig`` subclass, see ``config``)."""
        module, _, cls = self.config.partition(":")
        return getattr(importlib.import_module(module), cls)

    def data_class(self) -> type:
        """The model of its ``data`` section (a ``DataConfig`` subclass)."""
        return self.config_class().model_fields["data"].annotation

    @property
    def images(self) -> bool:
        """Whether its inputs are images (attention maps and gate pictures can be drawn on them)."""
        return self.kind in ("image-classification", "segmentation")

    @property
    def supports_tta(self) -> bool:
        """Whether ``eval.tta`` (flips and translations of whole images) applies."""
        return self.kind == "image-classification"

    @property
    def has_baselines(self) -> bool:
        """Whether the classical scikit-learn baselines (``miamind baseline``) fit its rows."""
        return self.kind == "flow-classification"

    def input_loader(self):
        """The function ``miamind predict`` reads this task's input files with (see ``inputs``)."""
        if self.inputs is None:
            raise ValueError(f"task {self.name!r} reads no input files for predict (Task.inputs)")
        module, _, fn = self.inputs.partition(":")
        return getattr(importlib.import_module(module), fn)

    def synthetic_arrays(self, seed: int = 0):
        """Its generated dataset (see ``synthetic``); a ValueError for a task without one."""
        if self.synthetic is None:
            raise ValueError(f"task {self.name!r} has no generated dataset (Task.synthetic)")
        target, kwargs = self.synthetic
        module, _, fn = target.partition(":")
        return getattr(importlib.import_module(module), fn)(seed=seed, **kwargs)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            name="cifar10",
            kind="image-classification",
            datamodule="miamind.tasks.datamodules:Cifar10DataModule",
            config="miamind.engine.schema:Cifar10Config",
            headline=("acc",),
            report_metrics=("acc",),
            test_split="official test split (10,000 images)",
            datasets=("cifar10",),
            # the default val_size of 5,000 leaves 1,000 to train on
            inputs="miamind.tasks.inputs:load_cifar10_inputs",
            synthetic=("miamind.tasks.synthetic:synthetic_cifar10", {"n_train": 6000, "n_test": 1000}),
            mindspore=True,
        ),
        Task(
            name="isbi2012",
            kind="segmentation",
            datamodule="miamind.tasks.datamodules:Isbi2012DataModule",
            config="miamind.engine.schema:Isbi2012Config",
            headline=("dice_cell", "dice_membrane", "iou_cell", "pixel_acc", "adapted_rand_error", "vi"),
            report_metrics=(
                "dice_mean",
                "dice_cell",
                "dice_membrane",
                "iou_cell",
                "pixel_acc",
                "adapted_rand_error",
                "vi",
            ),
            test_split="held-out fold of whole labelled slices (the challenge's test slices are unlabelled)",
            datasets=("isbi2012",),
            inputs="miamind.tasks.inputs:load_isbi2012_inputs",
            synthetic=("miamind.tasks.synthetic:synthetic_isbi2012", {"n_slices": 10, "size": 128}),
        ),
        Task(
            name="cicids2017",
            kind="flow-classification",
            datamodule="miamind.tasks.datamodules:CicIds2017DataModule",
            config="miamind.engine.schema:CicIds2017Config",
            headline=("acc", "precision", "recall", "f1", "auroc"),
            report_metrics=(
                "f1_macro",
                "acc",
                "false_alarm_rate",
                "precision_macro",
                "recall_macro",
                "auroc",
                "f1_macro_novel",
            ),
            test_split="stratified held-out test split",
            datasets=("cicids2017", "cicids2017_improved"),
            inputs="miamind.tasks.inputs:load_cicids2017_inputs",
            synthetic=("miamind.tasks.synthetic:synthetic_flows", {"n_rows": 3000, "n_features": 20}),
            mindspore=True,
            near_copy_metrics=True,
        ),
    )
}


def register_task(task: Task) -> Task:
    """Add ``task`` to the registry (a task defined outside the package: its data module, generated
    data, input loader, config defaults and recipes are named by the entry). Returns it."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    if task.kind not in KINDS:
        raise ValueError(f"task {task.name!r}: kind must be one of {', '.join(KINDS)}, got {task.kind!r}")
    TASKS[task.name] = task
    return task


def unregister_task(name: str) -> None:
    """Remove a task :func:`register_task` added (tests)."""
    TASKS.pop(name, None)


def task_names() -> tuple[str, ...]:
    """The registered task names, in registry order."""
    return tuple(TASKS)


def get_task(name: str) -> Task:
    """The registry entry of ``name``; a ValueError listing the valid names otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]
