"""TensorBoard and MLflow beside the CSV record: what they hold equals metrics.csv, read back with
their own readers; bad logger settings are refused before the run folder is touched."""

import csv
import json

import pytest

from miamind.cli import main

TRAIN = ["train", "--task", "cicids2017", "--epochs", "2", "--threads", "1"]
TRAIN += ["--set", "data.synthetic=true", "--set", "trainer.progress_bar=false", "--set", "plots=false"]


def _csv_metric(run, key):
    """(step, value) of every row of metrics.csv that holds ``key``."""
    with open(run / "metrics.csv", newline="") as f:
        return [(int(r["step"]), float(r[key])) for r in csv.DictReader(f) if r.get(key)]


def test_tensorboard_event_files_hold_what_metrics_csv_holds(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert main([*TRAIN, "--out", str(run), "--set", "trainer.loggers=[csv,tensorboard]"]) == 0
    (folder,) = (run / "tensorboard").iterdir()
    events = EventAccumulator(str(folder)).Reload()
    for key in ("val/f1_macro", "val/loss", "train/loss_epoch"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        expected = _csv_metric(run, key)
        assert [s for s, _ in logged] == [s for s, _ in expected] and len(expected) == 2
        assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6)


def test_mlflow_on_sqlite_holds_what_metrics_csv_holds_with_the_study_tags(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tags = {"study": "s", "group": "g", "cell": "c-1"}
    monkeypatch.setenv("MIAMIND_RUN_TAGS", json.dumps(tags))
    run = tmp_path / "runs" / "run"
    assert main([*TRAIN, "--out", str(run), "--set", "trainer.loggers=[mlflow]"]) == 0
    uri = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"  # the default store: in the runs folder
    record = json.loads((run / "logs" / "mlflow_run.json").read_text())
    client = MlflowClient(tracking_uri=uri)
    mlrun = client.get_run(record["run_id"])
    assert {k: mlrun.data.tags[k] for k in tags} == tags and mlrun.data.tags["run_dir"] == "run"
    assert client.get_experiment(record["experiment_id"]).name == "miamind-s"
    for key in ("val/f1_macro", "val/loss"):
        history = sorted((m.step, m.value) for m in client.get_metric_history(record["run_id"], key))
        expected = _csv_metric(run, key)
        assert [s for s, _ in history] == [s for s, _ in expected] and len(expected) == 2
        assert [v for _, v in history] == pytest.approx([v for _, v in expected], rel=1e-6)
    assert (run / "metrics.csv").is_file()  # csv stays on


def test_an_unknown_logger_or_an_unreachable_mlflow_is_one_line_and_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*TRAIN, "--out", str(run), "--set", "trainer.loggers=[csv,wandb]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trainer.loggers" in err[0] and "'wandb'" in err[0]
    assert not run.exists()
    pytest.importorskip("mlflow")
    uri = "http://127.0.0.1:9"  # the discard port: nothing answers
    argv = [*TRAIN, "--out", str(run), "--set", "trainer.loggers=[mlflow]"]
    assert main([*argv, "--set", f"trainer.mlflow_tracking_uri={uri}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and uri in err[0] and "trainer.mlflow_tracking_uri" in err[0]
    assert not (run / "config.yaml").exists()
