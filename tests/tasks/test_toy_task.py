"""The task registry is complete: a task registered from a test module trains, evaluates and
predicts through the command line, and no file of the package names it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from miamind.cli import main
from miamind.tasks.registry import register_task, unregister_task
from tests.tasks.toy_task import N_FEATURES, TOY


@pytest.fixture
def toy():
    register_task(TOY)
    yield TOY
    unregister_task(TOY.name)


def test_a_task_from_outside_the_package_trains_evaluates_and_predicts(toy, tmp_path, capsys):
    run = tmp_path / "run"
    quiet = ["--set", "trainer.progress_bar=false", "--set", "plots=false", "--threads", "1"]
    assert main(["train", "--task", "toyflows", "--preset", "fast", "--out", str(run), *quiet]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "toyflows" and metrics["test_split"] == TOY.test_split
    assert {"acc", "f1_macro"} <= set(metrics["test"])

    assert main(["evaluate", str(run)]) == 0
    rows = np.random.default_rng(0).normal(size=(5, N_FEATURES))
    np.save(tmp_path / "rows.npy", rows)
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "rows.npy"), "--out", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].startswith("input,predicted,probability") and len(lines) == 1 + 5


def test_the_cli_offers_it_only_while_registered(toy, capsys):
    from miamind.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert "toyflows" in next(a for a in sub.choices["train"]._actions if a.dest == "task").choices
    unregister_task("toyflows")
    assert main(["train", "--task", "toyflows", "--out", "x"]) == 2
    assert "invalid choice: 'toyflows'" in capsys.readouterr().err
    register_task(TOY)  # the fixture removes it again
