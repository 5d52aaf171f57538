"""The MindSpore backend through the CLI: train in MindSpore, evaluate in PyTorch, export, convert."""

import json

import pytest

from miamind.cli import main


@pytest.fixture(scope="module")
def ms_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ms") / "run"
    assert (
        main(
            [
                "train",
                "--backend",
                "mindspore",
                "--task",
                "cicids2017",
                "--out",
                str(run),
                "--epochs",
                "1",
                "--threads",
                "1",
                "--set",
                "data.synthetic=true",
                "--set",
                "trainer.progress_bar=false",
            ]
        )
        == 0
    )
    return run


def test_mindspore_run_evaluates_identically_in_pytorch(ms_run, capsys):
    trained = json.loads((ms_run / "metrics.json").read_text())
    assert trained["backend"] == "mindspore"
    assert main(["evaluate", str(ms_run)]) == 0
    evaluated = json.loads((ms_run / "eval-best-test.json").read_text())
    assert evaluated["checkpoint"].endswith("best_torch.safetensors")
    assert evaluated["confmat"] == trained["test_confmat"]
    assert evaluated["metrics"] == pytest.approx(trained["test"], abs=1e-4)


def test_export_and_convert_from_the_cli(ms_run, tmp_path, capsys):
    assert main(["export", str(ms_run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert main(["export", str(ms_run), "--format", "mindir", "--out", str(tmp_path / "m.mindir")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0 and any(tmp_path.glob("m*.mindir"))
    src = ms_run / "checkpoints" / "best_torch.safetensors"
    assert main(["convert", str(src), str(tmp_path / "w.ckpt")]) == 0
    assert main(["convert", str(tmp_path / "w.ckpt"), str(tmp_path / "w.safetensors")]) == 0
    from safetensors.torch import load_file

    a, b = load_file(src), load_file(tmp_path / "w.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_convert_rejects_other_suffixes(capsys, tmp_path):
    assert main(["convert", str(tmp_path / "a.pt"), str(tmp_path / "b.ckpt")]) == 2
    assert "convert goes .safetensors -> .ckpt" in capsys.readouterr().err
