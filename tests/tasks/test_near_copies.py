"""Near-copies of training rows in the flow test split, and the macro-F1 on the other rows."""

import json

import numpy as np
import pytest

from miamind.tasks.near_copies import NEAR_COPY_THRESHOLD, near_copy_mask, novel_metrics


def test_a_row_within_the_threshold_is_a_near_copy_and_one_beyond_is_not():
    train = np.zeros((3, 4))
    train[1] = 1.0
    test = np.array([[0, 0, 0, NEAR_COPY_THRESHOLD / 2], [0, 0, 0, NEAR_COPY_THRESHOLD * 2], [1, 1, 1, 1]])
    assert near_copy_mask(train, test).tolist() == [True, False, True]


def test_novel_f1_counts_only_the_rows_without_a_near_copy():
    target = np.array([0, 0, 1, 1])
    preds = np.array([0, 1, 1, 1])  # the one mistake is on a near-copy
    assert novel_metrics(preds, target, 2, np.array([False, True, False, False]))["f1_macro_novel"] == 1.0
    assert novel_metrics(preds, target, 2, np.array([False, False, False, False]))["f1_macro_novel"] < 1.0
    assert novel_metrics(preds, target, 2, np.ones(4, bool))["f1_macro_novel"] is None


@pytest.mark.parametrize("model", ["flowcnn", "sklearn_logreg"])
def test_flow_runs_report_the_novel_macro_f1_and_the_near_copy_count(tmp_path, model):
    from miamind.cli import main

    argv = ["--task", "cicids2017", "--model", model, "--seed", "0", "--out", str(tmp_path / "run")]
    argv += ["--set", "data.synthetic=true", "--set", "trainer.progress_bar=false", "--set", "plots=false"]
    command = ["baseline", *argv] if model.startswith("sklearn_") else ["train", *argv, "--epochs", "1"]
    assert main(command) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    data, test = metrics["data"], metrics["test"]
    assert (
        data["near_copy_threshold"] == NEAR_COPY_THRESHOLD
        and 0 <= data["test_near_copies"] <= data["test_rows"]
    )
    assert test["f1_macro_novel"] is None or 0.0 <= test["f1_macro_novel"] <= 1.0
    if data["test_near_copies"] == 0:  # no near-copy: the same rows, the same number
        assert test["f1_macro_novel"] == pytest.approx(test["f1_macro"])
