"""`miamind export --format hf` and `miamind.from_pretrained`: the folder loads back to the run's exact
network, predicts what the run folder predicts, and bad folders are one clear line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import miamind
from miamind.cli import main
from miamind.engine.hf_folder import export_hf
from miamind.engine.load import load_trained_model
from miamind.engine.predict import predict
from miamind.engine.run_folder import RunError
from miamind.engine.train import train
from tests.engine.test_run import tiny_cfg


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("hf") / "run"
    cfg = tiny_cfg("cifar10", "data.synthetic=true", "data.limit_train=600", "data.val_size=100", epochs=1)
    train(cfg, run, quiet=True)
    return run


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory):
    return export_hf(run, tmp_path_factory.mktemp("export") / "model")


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_folder_layout_config_and_card(run, folder):
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["library_name"] == "miamind" and config["format"] == 1
    assert config["architecture"] == "fastnet" and config["model_kwargs"]["attention"] == "mia"
    assert config["dataset"]["class_names"] == json.loads((run / "dataset.json").read_text())["class_names"]
    assert config["preprocessing"] == json.loads((run / "preprocess.json").read_text())
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: miamind" in card
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert f"| acc | {test['acc']:.4f} |" in card
    assert "**Generated data**" in card  # a synthetic run says so
    assert "miamind train --task cifar10 --config run_config.yaml --out RUN_DIR" in card
    assert str(run.parent) not in card  # no machine path in a file meant to be shared


def test_from_pretrained_is_the_runs_network_exactly(run, folder):
    _, _, want, _ = load_trained_model(run, "best")
    got = miamind.from_pretrained(folder)
    assert not got.training
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(got(x), want(x), rtol=0, atol=0)


def test_predict_on_the_folder_equals_predict_on_the_run(run, folder, tmp_path, capsys):
    from PIL import Image

    from miamind.tasks import synthetic

    arrays = synthetic.synthetic_cifar10(n_train=10, n_test=4, seed=1)
    for i in range(4):
        Image.fromarray(arrays.test_images[i]).save(tmp_path / f"img{i}.png")
    from_run = predict(run, [tmp_path], quiet=True)
    from_folder = predict(folder, [tmp_path], quiet=True)
    assert from_folder == from_run
    assert main(["predict", str(folder), str(tmp_path / "img0.png")]) == 0
    assert from_run[0]["predicted"] in capsys.readouterr().out


def test_cli_export_and_the_run_folder_is_left_as_it_was(run, tmp_path, capsys):
    before = _digest(run)
    assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "m")
    assert _digest(run) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.part")]


def test_export_refuses_a_folder_that_holds_something(run, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["export", str(run), "--format", "hf", "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "not an empty folder" in err[0]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def _copy(folder: Path, to: Path) -> Path:
    to.mkdir()
    for p in folder.iterdir():
        (to / p.name).write_bytes(p.read_bytes())
    return to


def test_bad_folders_are_one_line_naming_the_file(folder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunError, match=r"config.json: missing"):
        miamind.from_pretrained(empty)

    foreign = _copy(folder, tmp_path / "foreign")
    (foreign / "config.json").write_text(json.dumps({"model_type": "bert", "library_name": "transformers"}))
    with pytest.raises(
        RunError, match=r"config.json: not a miamind model config \(library_name 'transformers'"
    ):
        miamind.from_pretrained(foreign)

    lacking = _copy(folder, tmp_path / "lacking")
    config = json.loads((folder / "config.json").read_text())
    del config["architecture"]
    (lacking / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match=r"config.json: missing field 'architecture'"):
        miamind.from_pretrained(lacking)

    other = _copy(folder, tmp_path / "other")
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if ".attn." not in k}, str(other / "model.safetensors"))
    with pytest.raises(RunError, match=r"model.safetensors: weights do not fit the fastnet of config.json"):
        miamind.from_pretrained(other)

    garbage = _copy(folder, tmp_path / "garbage")
    (garbage / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(RunError, match=r"model.safetensors: not a safetensors file"):
        miamind.from_pretrained(garbage)


def test_the_cards_command_gives_the_runs_config_back(run, folder, tmp_path, capsys):
    import yaml

    (tmp_path / "run_config.yaml").write_text(
        yaml.safe_dump(json.loads((folder / "config.json").read_text())["run_config"])
    )
    args = ["train", "--task", "cifar10", "--config", str(tmp_path / "run_config.yaml")]
    assert main([*args, "--out", str(tmp_path / "again"), "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == yaml.safe_load((run / "config.yaml").read_text())
