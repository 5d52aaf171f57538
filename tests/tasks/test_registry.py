"""The task registry is the one table of what a task is: generated data, TTA, baselines and image
support come from its entry (its kind), and no module outside tasks/ and data/ branches on a task
name."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from miamind.tasks.registry import TASKS, get_task, task_names

SRC = Path(__file__).resolve().parents[2] / "src" / "miamind"
# tasks/ and data/ define the tasks and their datasets; benchmarks and the README's generated
# blocks are about particular committed results.
ALLOWED = ("tasks/", "data/", "bench/", "study/docs_blocks.py")
BRANCH = re.compile(r"""(==|!=)\s*["'](%s)["']|["'](%s)["']\s*(==|!=)""" % (("|".join(TASKS),) * 2))


@pytest.mark.parametrize("name", task_names())
def test_every_task_has_generated_data_of_its_kind(name):
    task = get_task(name)
    arrays = task.synthetic_arrays(seed=3)
    assert arrays.info.task == task.kind
    assert task.images == (task.kind != "flow-classification")
    assert task.supports_tta == (task.kind == "image-classification")
    assert task.has_baselines == (task.kind == "flow-classification")


def test_a_task_without_generated_data_says_so():
    bare = replace(get_task("cicids2017"), name="toy", synthetic=None)
    with pytest.raises(ValueError, match="task 'toy' has no generated dataset"):
        bare.synthetic_arrays(0)


def test_no_branch_on_a_task_name_outside_tasks_and_data():
    found = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if not str(path.relative_to(SRC)).startswith(ALLOWED)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BRANCH.search(line)
    ]
    assert not found, "branch on a task name (use the task's registry entry):\n" + "\n".join(found)
