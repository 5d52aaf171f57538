"""`miamind bench layers | models | time-to-accuracy` run end to end (--quick) and write what they claim."""

import json

import pytest
import torch

from miamind.attention import create_attention, list_attention
from miamind.attention.kernel import kernel
from miamind.bench import layers as bench_layers
from miamind.bench import models as bench_models
from miamind.bench import time_to_accuracy as tta
from miamind.cli import main as cli_main


def test_layers_quick_covers_every_attention_dtype_and_layout(tmp_path):
    out = tmp_path / "layers.json"
    assert cli_main(["bench", "layers", "--quick", "--threads", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["command"].startswith("python -m miamind.bench.layers")
    rows = result["results"]
    keys = {(r["attention"], r["dtype"], r["layout"]) for r in rows}
    assert keys == {
        (a, d, lay) for a in list_attention() for d in bench_layers.DTYPES for lay in bench_layers.LAYOUTS
    }
    # the layers with a C++ kernel get an "on" and an "off" row, the others one "-" row
    with_kernel = {"mia", "mia_add", "mia_adaptive"} if kernel() is not None else set()
    kinds = {(r["attention"], r["kernel"]) for r in rows}
    assert kinds == {
        (a, k) for a in list_attention() for k in (("on", "off") if a in with_kernel else ("-",))
    }
    for r in rows:
        assert r["forward_ms"] > 0 and r["forward_backward_ms"] > 0 and r["copy_ms"] > 0
        assert r["forward_over_floor"] == pytest.approx(r["forward_ms"] / (1.5 * r["copy_ms"]))
        assert r["forward_backward_over_floor"] == pytest.approx(
            r["forward_backward_ms"] / (3.5 * r["copy_ms"])
        )
        assert r["parameters"] == sum(
            p.numel() for p in create_attention(r["attention"], r["input"][1]).parameters()
        )
    # FLOPs come from the counter, not a formula: SE on (2, 16, 8, 8) with rd 16 -> 1 hidden channel
    # (timm's rounding) ... whatever it is, it must match a direct count
    se = next(r for r in rows if r["attention"] == "se" and r["dtype"] == "fp32" and r["layout"] == "nchw")
    assert se["forward_flops"] == bench_layers.forward_flops(
        create_attention("se", 16), torch.randn(2, 16, 8, 8)
    )
    # the same math with the kernel on and off: the kernel's C++ convolution is not left out
    flops = {(r["attention"], r["dtype"], r["layout"], r["kernel"]): r["forward_flops"] for r in rows}
    for (a, d, lay, k), f in flops.items():
        if k == "on":
            assert f == flops[(a, d, lay, "off")] > 0, (a, d, lay)
    assert "| mia |" in out.with_suffix(".md").read_text()


def test_fused_mia_saves_less_than_one_input_copy_in_the_layers_table(tmp_path):
    rows = bench_layers.measure_config(["mia"], 2, (32, 16, 16), "fp32", "nchw", repeats=1, warmup=0)
    assert rows[0]["extra_saved_ratio"] <= 1.05  # the memory target, through the benchmark's own path


def test_models_quick_reports_ratios_against_none_of_the_same_round(tmp_path):
    out = tmp_path / "models.json"
    assert (
        cli_main(["bench", "models", "--quick", "--threads", "1", "--attention", "mia", "--out", str(out)])
        == 0
    )
    result = json.loads(out.read_text())
    by = {(r["model"], r["attention"]): r for r in result["results"]}
    arms = ("none", "mia", "mia" + bench_models.KERNEL_OFF) if kernel() is not None else ("none", "mia")
    assert set(by) == {(w["model"], a) for w in bench_models.QUICK_WORKLOADS for a in arms}
    for (_model, attention), r in by.items():
        assert r["train_img_per_s"] > 0 and r["infer_img_per_s"] > 0
        if attention == "none":
            assert r["train_ratio_vs_none"] == 1.0 and r["infer_ratio_vs_none"] == 1.0
    assert by[("flowcnn", "mia")]["parameters"] > by[("flowcnn", "none")]["parameters"]


def test_models_leaves_out_an_attention_the_network_cannot_hold(capsys):
    flows = bench_models.QUICK_WORKLOADS[1]
    rows = bench_models.measure_workload(flows, ["coordatt", "mia"], rounds=1, steps=1)
    kernel_off = ["mia" + bench_models.KERNEL_OFF] if kernel() is not None else []
    assert [r["attention"] for r in rows] == ["none", "mia", *kernel_off]
    assert "skipped flowcnn + coordatt: flowcnn: cannot build attention 'coordatt'" in capsys.readouterr().err


def test_models_study_workloads_are_the_fast_presets_networks():
    from miamind.engine.config import resolve_config

    by_model = {w["model"]: w for w in bench_models.STUDY_WORKLOADS}
    for task, model in (("cifar10", "fastnet"), ("isbi2012", "unet"), ("cicids2017", "flowcnn")):
        cfg = resolve_config(task=task, preset="fast")
        w = by_model[model]
        assert cfg.model.name == model and cfg.data.batch_size == w["batch"]
        assert {k: list(v) if isinstance(v, tuple) else v for k, v in w["kwargs"].items()} == cfg.model.kwargs
        assert w["precision"] == ("bf16" if cfg.trainer.precision == "bf16-mixed" else "fp32")


@pytest.mark.slow  # ~1-2 min: inductor compiles two small models
def test_models_compile_measures_compiled_models(tmp_path):
    out = tmp_path / "models.json"
    argv = ["--quick", "--compile", "--threads", "1", "--model", "flowcnn", "--attention", "mia"]
    assert bench_models.main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["settings"]["compile"] is True
    assert [(r["attention"], r["compiled"]) for r in result["results"]] == [("none", True), ("mia", True)]
    assert "torch.compile" in out.with_suffix(".md").read_text()


def test_attention_profile_quick_lists_the_operators_an_attention_adds(tmp_path):
    out = tmp_path / "profile.json"
    argv = [
        "bench",
        "attention-profile",
        "--quick",
        "--top",
        "500",
        "--threads",
        "1",
        "--attention",
        "mia",
        "--out",
        str(out),
    ]
    assert cli_main(argv) == 0
    result = json.loads(out.read_text())
    assert [r["model"] for r in result["results"]] == [w["model"] for w in bench_models.QUICK_WORKLOADS]
    for r in result["results"]:
        mia = r["attentions"]["mia"]
        assert mia["step_ms"] > 0 and mia["top_ops"]
        ops = {op["op"] for op in mia["top_ops"]}
        # operators only MIA-Mind runs (its gates, its training Function) are listed, with a call count
        # the kernel's Function where it applies: built, channels_last (the quick flowcnn's 12 positions
        # in a row are below the kernel's channel-first minimum)
        function = "MIALayerFunction" if kernel() is not None and r["channels_last"] else "ChannelSpatialGate"
        assert {"aten::sigmoid", function, "SameSingleChannelConv"} <= ops
        added = [op for op in mia["top_ops"] if op["op"] == function]
        assert all(op["calls_per_step"] >= 1 and op["extra_ms_per_step"] > 0 for op in added)
    assert "| operator | input shapes |" in out.with_suffix(".md").read_text()


def test_loop_quick_reports_in_loop_over_bare_per_attention(tmp_path):
    out = tmp_path / "loop.json"
    argv = ["bench", "loop", "--quick", "--batches", "4", "--attention", "none", "--attention", "mia"]
    assert cli_main([*argv, "--out", str(out)]) == 0
    rows = {r["attention"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"none", "mia"}
    for r in rows.values():
        want = r["in_loop_img_per_s"] / r["bare_img_per_s"]
        assert r["in_loop_over_bare"] == pytest.approx(want, rel=1e-6)  # one repeat: the same ratio
        assert r["lightning_step_ms"] > 0 and r["bare_step_ms"] > 0
    assert "| in-loop / bare |" in out.with_suffix(".md").read_text()


def test_models_rejects_an_unknown_model(tmp_path):
    with pytest.raises(SystemExit, match="resnet99"):
        bench_models.main(["--out", str(tmp_path / "m.json"), "--model", "resnet99"])


@pytest.mark.slow  # ~40 s: two tiny training processes
def test_time_to_accuracy_quick_trains_skips_finished_runs_and_summarises(tmp_path, monkeypatch):
    out, work = tmp_path / "tta.json", tmp_path / "runs"
    assert tta.main(["--quick", "--out", str(out), "--work", str(work)]) == 0
    result = json.loads(out.read_text())
    runs = result["runs"]["quick"]
    assert [(r["attention"], r["seed"]) for r in runs] == [("none", 0), ("mia", 0)]
    for r in runs:
        metrics = json.loads((work / "quick" / f"{r['attention']}-seed0" / "metrics.json").read_text())
        assert r["test_acc"] == metrics["test"]["acc"] and r["wall_s"] > r["fit_s"] > 0 and not r["resumed"]
    assert {s["attention"] for s in result["summary"]} == {"none", "mia"}
    # a second call reads the finished runs instead of training again
    monkeypatch.setattr(
        tta.subprocess, "run", lambda *a, **k: pytest.fail("a finished run was trained again")
    )
    assert tta.main(["--quick", "--out", str(out), "--work", str(work)]) == 0


def test_time_to_accuracy_needs_data_or_quick(tmp_path, monkeypatch):
    monkeypatch.delenv("MIAMIND_DATA", raising=False)
    with pytest.raises(SystemExit, match="MIAMIND_DATA"):
        tta.main(["--out", str(tmp_path / "t.json")])
    with pytest.raises(SystemExit, match="unknown budget"):
        tta.main(["--out", str(tmp_path / "t.json"), "--budget", "1min"])


def test_gate_mlp_quick_times_both_forms_of_every_se_layer(tmp_path):
    out = tmp_path / "gate_mlp.json"
    assert cli_main(["bench", "gate-mlp", "--quick", "--repeats", "2", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["model"] for r in rows] == [w["model"] for w in bench_models.QUICK_WORKLOADS]
    for r in rows:
        assert r["layers"] and all(x["convs_ms"] > 0 and x["matmuls_ms"] > 0 for x in r["layers"])
        assert r["saved_ms_per_step"] == pytest.approx(
            sum(x["convs_ms"] - x["matmuls_ms"] for x in r["layers"])
        )
    assert "| saved ms/step |" in out.with_suffix(".md").read_text()
