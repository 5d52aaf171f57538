"""`miamind viz attention`: tiny trained runs (generated data) of mia, cbam and coordatt drawn side by
side on their task's first test images; runs that cannot be drawn together fail in one line."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from miamind.cli import main
from miamind.engine.build import build_datamodule_for
from miamind.engine.config import load_config, resolve_config
from miamind.engine.load import load_run
from miamind.engine.train import train
from miamind.viz.gate_capture import capture_gates
from tests.viz.conftest import check_png

QUIET = ["trainer.progress_bar=false", "trainer.threads=1", "plots=false", "trainer.precision=32"]
TINY = {
    "cifar10": [
        "data.synthetic=true",
        "model.kwargs.widths=[8, 16, 16]",
        "data.limit_train=128",
        "eval.tta=none",
        "data.val_size=100",
        "data.batch_size=64",
        "data.eval_batch_size=500",
        "optim.ema_decay=null",
    ],
    "isbi2012": [
        "data.synthetic=true",
        "model.kwargs.width=4",
        "data.crop=32",
        "data.crops_per_epoch=16",
        "data.batch_size=16",
    ],
}


def _train(root: Path, task: str, attention: str) -> Path:
    cfg = resolve_config(
        task,
        "fast",
        overrides={"trainer.epochs": 1, "model.attention": attention},
        assignments=[*QUIET, *TINY[task]],
    )
    run = root / f"{task}-{attention}"
    train(cfg, run, quiet=True)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "mia": _train(root, "cifar10", "mia"),
        "cbam": _train(root, "cifar10", "cbam"),
        "coordatt": _train(root, "cifar10", "coordatt"),
        "isbi": _train(root, "isbi2012", "mia"),
    }


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("miamind: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_three_attentions_side_by_side_write_a_png_and_its_record(runs, tmp_path, capsys, monkeypatch):
    import miamind.viz.gate_comparison as comparison

    seen = {}
    draw = comparison.plot_gate_comparison

    def spy(images, columns, out_png, **kwargs):
        seen.update(images=images, columns=columns)
        return draw(images, columns, out_png, **kwargs)

    monkeypatch.setattr(comparison, "plot_gate_comparison", spy)
    out = tmp_path / "pictures" / "cifar.png"
    attentions = ("mia", "cbam", "coordatt")
    dirs = [str(runs[a]) for a in attentions]
    assert main(["viz", "attention", *dirs, "--out", str(out), "--images", "3"]) == 0
    assert capsys.readouterr().out.split() == [str(out), str(out.with_suffix(".json"))]
    check_png(out, min_width=600, min_height=600)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["task"] == "cifar10" and record["png"] == "cifar.png"
    dm = build_datamodule_for(load_config(runs["mia"] / "config.yaml"))
    positions = dm.example_positions(3, split="test", spread=True)
    assert positions[0] == 0 and positions[-1] == sum(len(y) for _, y in dm.test_dataloader()) - 1
    assert record["images"]["test_positions"] == positions
    assert record["images"]["official_test_indices"] == positions  # no limit_eval: the test split itself
    assert [r["attention"] for r in record["runs"]] == list(attentions)
    for run, attention in zip(record["runs"], attentions, strict=True):
        assert run["run"] == runs[attention].name  # folder names, no path of this machine
        assert (runs[attention] / run["checkpoint"]).is_file() and run["checkpoint"].endswith(
            "best.safetensors"
        )
        # fastnet on 32x32: groups.0 maps are 15x15 (>= 32/4), groups.1 7x7 (< 8)
        assert run["layer"] == "groups.0.attn"
        assert [layer["spatial"] for layer in run["layers"]] == [[15, 15], [7, 7], [3, 3]]
    assert record["command"][:3] == ["miamind", "viz", "attention"]
    assert f'"$RUNS_DIR"/{runs[attentions[0]].name}' in record["command"]
    assert not any(str(tmp_path) in arg for arg in record["command"])

    # What was drawn: 3 images spread over the TEST split, and each run's own gates on them.
    x, y = dm.example_batch(3, split="test", spread=True)
    assert torch.equal(seen["images"], x)
    assert record["images"]["classes"] == [dm.info.class_names[int(c)] for c in y]
    for column, name in zip(seen["columns"], attentions, strict=True):
        module, _ = load_run(runs[name], "best")
        expected = capture_gates(module.model, x)
        assert column.title == name and len(column.captures) == len(expected) == 3
        assert {c.family for c in column.captures} == {name}
        for got, want in zip(column.captures, expected, strict=True):
            torch.testing.assert_close(got.spatial, want.spatial, rtol=0, atol=1e-6)
            torch.testing.assert_close(got.channel, want.channel, rtol=0, atol=1e-6)


def test_isbi_slices_of_the_held_out_fold(runs, tmp_path, capsys):
    out = tmp_path / "isbi.png"
    assert main(["viz", "attention", str(runs["isbi"]), "--out", str(out), "--images", "2"]) == 0
    check_png(out)
    record = json.loads(out.with_suffix(".json").read_text())
    cfg = load_config(runs["isbi"] / "config.yaml")
    dm = build_datamodule_for(cfg)
    positions = dm.example_positions(2, split="test", spread=True)
    assert record["images"]["labelled_slices"] == [int(dm.val_slices[p]) for p in positions]
    assert not set(record["images"]["labelled_slices"]) & {int(s) for s in dm.train_slices}
    # the U-Net's decoder attention: the last layer is at full resolution, so it is the one drawn
    assert record["runs"][0]["layer"] == record["runs"][0]["layers"][-1]["name"]


def test_runs_of_two_tasks_fail_in_one_line_naming_the_run(runs, tmp_path, capsys):
    out = tmp_path / "mixed.png"
    assert main(["viz", "attention", str(runs["mia"]), str(runs["isbi"]), "--out", str(out)]) == 1
    err = _error_line(capsys)
    assert str(runs["isbi"]) in err and "'isbi2012'" in err and "'cifar10'" in err
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_an_attention_without_gate_pictures_fails_in_one_line(runs, tmp_path, capsys):
    # A copy of a run folder whose config says se: refused from the config, before weights are read.
    se_run = tmp_path / "cifar10-se"
    shutil.copytree(runs["mia"], se_run)
    cfg = yaml.safe_load((se_run / "config.yaml").read_text())
    cfg["model"]["attention"] = "se"
    (se_run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["viz", "attention", str(runs["cbam"]), str(se_run), "--out", str(tmp_path / "x.png")]) == 1
    err = _error_line(capsys)
    assert str(se_run) in err and "attention 'se' has no gate picture" in err


def test_an_unknown_layer_names_the_layers(runs, tmp_path, capsys):
    args = ["viz", "attention", str(runs["cbam"]), "--out", str(tmp_path / "x.png"), "--layer", "nope"]
    assert main(args) == 2
    err = _error_line(capsys)
    assert "layer 'nope' not found" in err and "groups.0.attn (15x15)" in err


def test_runs_with_other_test_images_fail_in_one_line(runs, tmp_path, capsys):
    # The same weights with limit_eval in its config: its test split is a subset, other first images.
    other = tmp_path / "cifar10-cbam-subset"
    shutil.copytree(runs["cbam"], other)
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["data"]["limit_eval"] = 50
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "x.png"
    assert main(["viz", "attention", str(runs["mia"]), str(other), "--out", str(out), "--images", "2"]) == 1
    err = _error_line(capsys)
    assert str(other) in err and "test images differ" in err and not out.exists()
