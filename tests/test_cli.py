"""The command line: one-line errors (no traceback), exit codes, and a working `info`."""

import json
import subprocess
import sys

import pytest

from miamind.cli import main


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "miamind", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_help_lists_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    for cmd in ("info", "demo", "data", "train", "evaluate", "predict", "visualize", "layers"):
        assert cmd in out.stdout


def test_unknown_dataset_is_one_line_error(capsys):
    assert main(["data", "check", "--dataset", "mnist", "--path", "."]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("miamind: error:") and "mnist" in err and "cifar10" in err
    assert len(err.splitlines()) == 1


def test_path_without_dataset_is_an_error(capsys):
    assert main(["data", "check", "--path", "."]) == 2
    assert "--dataset" in capsys.readouterr().err


def test_empty_data_dir_reports_missing_datasets(tmp_path, capsys):
    assert main(["data", "check", "--data-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"cifar10", "isbi2012", "cicids2017"}
    for name, rep in report.items():
        assert rep["status"] == "missing", name
        assert str(tmp_path) in rep["error"]  # says where it looked


@pytest.mark.parametrize("dataset", ["cifar10", "isbi2012", "cicids2017"])
def test_bad_file_gives_one_line_without_traceback(tmp_path, dataset):
    bad = tmp_path / "empty.bin"
    bad.write_bytes(b"")
    out = run_cli("data", "check", "--dataset", dataset, "--path", str(bad))
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "empty.bin" in lines[0], out.stderr


def test_info_lists_attentions(capsys):
    assert main(["info", "--data-dir", "/nonexistent-miamind-root"]) == 0
    out = capsys.readouterr().out
    assert "mia" in out and "se" in out and "missing" in out
    from miamind.engine.config import PRESETS

    presets_line = next(line for line in out.splitlines() if line.startswith("presets:"))
    assert all(p in presets_line for p in PRESETS)  # fast12 was missing from a hand-written list


@pytest.mark.parametrize(
    "args,match",
    [
        (["train", "--out", "x"], "train needs --task and --out"),
        (
            ["train", "--task", "cifar10", "--out", "x", "--set", "optim.lrr=1"],
            "unknown config key 'optim.lrr'",
        ),
        (["train", "--task", "cifar10", "--out", "x", "--set", "optim.lr"], "--set expects KEY=VALUE"),
        (
            ["train", "--task", "cifar10", "--out", "x", "--attention", "nope"],
            "'model.attention' must be one of",
        ),
        (
            ["train", "--resume", "x", "--epochs", "3"],
            "--resume RUN_DIR continues the run with its saved config",
        ),
        (["evaluate", "does-not-exist"], "does-not-exist: no such run folder"),
        (["predict", "does-not-exist", "a.png"], "does-not-exist: no such run folder"),
        (["visualize", "does-not-exist"], "does-not-exist: no such run folder"),
    ],
)
def test_train_family_errors_are_one_line(args, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("miamind: error:") and match in err, err
    assert len(err.splitlines()) == 1


def test_print_config_shows_the_resolved_config(capsys):
    import yaml

    assert (
        main(
            [
                "train",
                "--task",
                "cicids2017",
                "--out",
                "x",
                "--preset",
                "paper",
                "--seed",
                "5",
                "--print-config",
            ]
        )
        == 0
    )
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["seed"] == 5 and cfg["optim"]["lr"] == 0.01 and cfg["data"]["batch_size"] == 16


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch, capsys):
    """UserError (bad input) -> one line, exit 2; a plain ValueError is a bug and propagates."""
    import miamind.cli.data as data_cli
    from miamind.errors import InputError

    def user_error(args):
        raise InputError("data check: the field 'x' is wrong")

    monkeypatch.setattr(data_cli, "_cmd_info", user_error)
    assert main(["info"]) == 2
    assert capsys.readouterr().err.strip() == "miamind: error: data check: the field 'x' is wrong"

    def bug(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(data_cli, "_cmd_info", bug)
    with pytest.raises(ValueError, match="internal invariant"):
        main(["info"])


def test_a_bad_command_line_is_one_line_naming_the_command():
    out = run_cli("data", "fetch", "mnist")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "invalid choice: 'mnist'" in lines[0]
        and "`miamind data fetch --help`" in lines[0]
    )


def test_choices_come_from_the_registries():
    from miamind.cli import build_parser
    from miamind.data import DATASETS
    from miamind.tasks.registry import task_names

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    train = sub.choices["train"]
    assert next(a for a in train._actions if a.dest == "task").choices == task_names()
    data = next(a for a in sub.choices["data"]._actions if a.dest == "data_command")
    assert next(a for a in data.choices["fetch"]._actions if a.dest == "datasets").choices == [
        *DATASETS,
        "all",
    ]


def test_visualize_is_the_old_name_of_viz_maps():
    from miamind.cli import build_parser

    parser = build_parser()
    old = parser.parse_args(["visualize", "runs/x", "--n", "2"])
    new = parser.parse_args(["viz", "maps", "runs/x", "--n", "2"])
    assert old.func is new.func and (old.run_dir, old.n) == (new.run_dir, new.n)
