"""Classical baselines: the same split and scaling as the network, the same metrics.json shape."""

import json

import numpy as np
import pytest
import torch

from miamind.cli import main
from miamind.engine.baselines import BASELINES, train_baseline
from miamind.engine.build import build_datamodule_for
from miamind.engine.config import resolve_config
from miamind.engine.run_folder import RunError


def cfg(seed=0):
    return resolve_config("cicids2017", "fast", overrides={"seed": seed}, assignments=["data.synthetic=true"])


def test_baseline_sees_exactly_the_network_s_arrays():
    c = cfg(seed=3)
    dm = build_datamodule_for(c)
    x, y = dm.split_arrays("test")
    batches = list(dm.test_dataloader())
    xb = torch.cat([b[0] for b in batches]).reshape(len(x), -1).numpy()
    yb = torch.cat([b[1] for b in batches]).numpy()
    np.testing.assert_array_equal(x, xb)
    np.testing.assert_array_equal(y, yb)
    with pytest.raises(ValueError, match="split must be"):
        dm.split_arrays("holdout")


@pytest.mark.parametrize("name", ["sklearn_logreg", "sklearn_1nn"])
def test_baseline_writes_a_network_shaped_metrics_json(tmp_path, name):
    m = train_baseline(cfg(), name, tmp_path / name, quiet=True)
    saved = json.loads((tmp_path / name / "metrics.json").read_text())
    assert saved["model"] == name and saved["attention"] == "none"
    keys = set(saved["test"])
    assert {"acc", "f1_macro", "false_alarm_rate", "f1_per_class_benign", "auroc"} <= keys
    assert keys == set(saved["val_last_epoch"]) | {"f1_macro_novel"}  # a test-split metric
    # the synthetic attacks shift features by 3 sd: any sane classifier separates them
    assert m["test"]["acc"] > 0.9
    cm = np.array(saved["test_confmat"])
    assert cm.sum() == 450 and np.trace(cm) / cm.sum() == pytest.approx(m["test"]["acc"])
    with pytest.raises(RunError, match="already holds"):
        train_baseline(cfg(), name, tmp_path / name, quiet=True)


def test_baseline_cli_and_bad_names(tmp_path, capsys):
    out = tmp_path / "rf"
    rc = main(
        ["baseline", "--task", "cicids2017", "--model", "sklearn_logreg", "--seed", "1", "--out", str(out)]
        + ["--set", "data.synthetic=true"]
    )
    assert rc == 0 and json.loads((out / "metrics.json").read_text())["seed"] == 1
    assert "sklearn_logreg" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown baseline"):
        train_baseline(cfg(), "sklearn_svm", tmp_path / "x")
    assert set(BASELINES) == {"sklearn_rf", "sklearn_hgb", "sklearn_logreg", "sklearn_knn", "sklearn_1nn"}
